"""Command-line scaffolding shared by every ``python -m ...`` command of fsve, energy and export.

Every command reports bad input the same way: one line on stderr, exit code 2
(:data:`EXIT_USAGE`), never a traceback. :class:`Parser` does it for argparse errors,
:func:`run_command` for errors raised while the command runs; :func:`open_dataset` gives the
one dataset check (folder, manifest, frame size) the commands share; :func:`check_output`
refuses an output path that would overwrite an input or cannot be written; :func:`text_table`
prints the fixed-width tables the reports write.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

__all__ = [
    "EXIT_USAGE",
    "Parser",
    "UsageError",
    "check_frame_size",
    "check_output",
    "open_dataset",
    "positive_int",
    "require_dataset",
    "run_command",
    "text_table",
]

EXIT_USAGE = 2  # bad input: one line on stderr (argparse uses the same code)

MAKE_DATA = "`python -m fsve.data synth --out data/synth`"  # the command that makes the data


class UsageError(ValueError):
    """Bad input from the command line; printed as one line, exit code 2."""


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line and exit code :data:`EXIT_USAGE`."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def positive_int(text: str) -> int:
    """argparse ``type`` for counts: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def run_command(
    run: Callable[[], int],
    prefix: str,
    errors: tuple[type[BaseException], ...] = (UsageError,),
) -> int:
    """``run()``, turning any of ``errors`` into ``"{prefix}: {error}"`` on stderr and exit 2."""
    try:
        return run()
    except errors as err:
        print(f"{prefix}: {err}", file=sys.stderr)
        return EXIT_USAGE


def check_output(
    out: str | os.PathLike,
    inputs: Iterable[str | os.PathLike] = (),
    *,
    folder: bool = False,
) -> Path:
    """Refuse an output path before anything is computed or written (issue 16, item 2).

    Raises :class:`UsageError` (one line) when ``out`` is one of ``inputs`` (the same file,
    through symlinks and hard links too), when it exists but is a directory where a file is
    expected (``folder=False``) or a file where a folder is expected (``folder=True``), or when
    its nearest existing folder cannot be written (probed with a temporary file, removed at
    once). Returns ``out`` as a :class:`~pathlib.Path`.
    """
    out = Path(out)
    for item in inputs:
        if _same_file(out, Path(item)):
            raise UsageError(
                f"{out}: is the input {item}; refusing to write over an input"
                " (choose another output path)"
            )
    if out.exists():
        if not folder and out.is_dir():
            raise UsageError(f"{out}: is a directory; expected a file path")
        if folder and not out.is_dir():
            raise UsageError(f"{out}: exists and is not a folder")
    parent = out if folder else out.parent
    parent = Path(os.path.abspath(parent))
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise UsageError(f"{out}: cannot be created: {parent} is not a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=".fsve-probe.", dir=parent)
    except OSError as err:
        raise UsageError(f"{out}: cannot write in {parent} ({err.strerror or err})") from None
    os.close(fd)
    os.unlink(probe)
    return out


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (or cannot be read): not the same file
        return False


def require_dataset(root: Path, why: str = "") -> None:
    """One-line error with the command that makes the data if ``root`` holds no dataset."""
    if not (Path(root) / "manifest.csv").is_file():
        reason = f"{why}; " if why else ""
        raise UsageError(
            f"{root}: no dataset here (no manifest.csv; {reason}make one with {MAKE_DATA})"
        )


def check_frame_size(dataset: Any, height: int, width: int, what: str = "the checkpoint") -> None:
    """One-line error if the clips of ``dataset`` are not ``height x width``."""
    sizes = {
        (int(h), int(w))
        for h, w in zip(dataset.table["height"], dataset.table["width"], strict=True)
    }
    if sizes != {(int(height), int(width))}:
        found = ", ".join(f"{h}x{w}" for h, w in sorted(sizes))
        raise UsageError(f"{dataset.root}: frames are {found} but {what} expects {height}x{width}")


def open_dataset(root: Path, split: str, window: Any, size: tuple[int, int] | None = None) -> Any:
    """The ``split`` of the dataset at ``root`` cut into ``window``, frame size checked.

    Raises :class:`UsageError` (one line naming the folder) for a missing or unreadable
    dataset or clips of another size than ``size`` (``(height, width)``; ``None``: any).
    """
    from fsve.data.dataset import SpikeDataset

    require_dataset(root)
    try:
        dataset = SpikeDataset(root, split, window=window)
    except (OSError, ValueError) as err:
        raise UsageError(f"{root}: {err}") from None
    if size is not None:
        check_frame_size(dataset, *size)
    return dataset


def text_table(
    rows: Sequence[Mapping[str, Any]],
    cols: Sequence[str] | None = None,
    align: str = "left",
    indent: str = "",
    empty: str = "(none)",
) -> str:
    """A fixed-width text table of ``rows`` (dicts; columns ``cols`` or the first row's keys).

    ``align``: ``"left"``, ``"right"``, or ``"auto"`` (columns whose cells are all numbers or
    blank are right-aligned, the rest left). Lines start with ``indent``; trailing blanks are
    stripped. An empty ``rows`` gives ``indent + empty``.
    """
    if not rows:
        return f"{indent}{empty}\n"
    cols = list(cols or rows[0])
    cells = [[str(r[c]) for c in cols] for r in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(cols)]
    if align == "auto":
        right = [all(_is_number(r[i]) for r in cells) for i in range(len(cols))]
    else:
        right = [align == "right"] * len(cols)

    def line(values: Sequence[str]) -> str:
        padded = (
            v.rjust(w) if r else v.ljust(w) for v, w, r in zip(values, widths, right, strict=True)
        )
        return (indent + "  ".join(padded)).rstrip()

    rule = ["-" * w for w in widths]
    return "\n".join([line(cols), line(rule), *map(line, cells)]) + "\n"


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return text == ""
    return True
