"""Atomic file writes: a temporary file beside the target, fsync, then ``os.replace``.

A crash or an exception mid-write never leaves a half-written file at the target, and an
existing file there survives until the new one is complete. Files get the usual permissions
(``0o666`` less the umask), not the ``0o600`` of :func:`tempfile.mkstemp`. :func:`csv_text`
formats report rows for them;
:func:`replace_output_set` removes what an earlier run of a command left that the new run does
not write.

A temporary file is named ``.NAME.PID.XXXXXXXX<suffix>`` after the target and the writing
process. A process killed mid-write (``kill -9``) leaves its temporary behind; the next write of
the same target removes it (issue 16, case 10): only names of that exact pattern for that
target, only when their process is gone (or, for the older ``.NAME.XXXXXXXX<suffix>`` names
without a process id, when untouched for :data:`LEGACY_STALE_S` seconds).
"""

from __future__ import annotations

import csv
import io
import os
import re
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


def _default_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


LEGACY_STALE_S = 3600.0  # age after which a temporary without a process id counts as stale
_RANDOM = "[a-z0-9_]{8}"  # the random part of a mkstemp name


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists (on this machine)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_stale_temps(path: str | os.PathLike, suffix: str = ".tmp") -> list[Path]:
    """Remove the temporaries of earlier writes of ``path`` whose writer is gone; the removed.

    Only ``.NAME.PID.XXXXXXXX<suffix>`` files of this target with a dead PID (or the older
    ``.NAME.XXXXXXXX<suffix>`` untouched for :data:`LEGACY_STALE_S` s) are removed.
    """
    path = Path(path)
    pattern = re.compile(
        rf"\.{re.escape(path.name)}\.(?:(\d+)\.)?{_RANDOM}{re.escape(suffix)}", re.ASCII
    )
    removed = []
    try:
        names = os.listdir(path.parent)
    except OSError:
        return removed
    now = time.time()
    for name in names:
        match = pattern.fullmatch(name)
        if match is None:
            continue
        tmp = path.parent / name
        try:
            if match.group(1) is not None:
                stale = int(match.group(1)) != os.getpid() and not _alive(int(match.group(1)))
            else:
                stale = now - tmp.stat().st_mtime > LEGACY_STALE_S
            if stale and tmp.is_file() and not tmp.is_symlink():
                tmp.unlink()
                removed.append(tmp)
        except OSError:
            continue  # gone meanwhile, or not ours to remove
    return removed


def temp_beside(path: str | os.PathLike, suffix: str = ".tmp") -> tuple[int, Path]:
    """Create ``.NAME.PID.XXXXXXXX<suffix>`` in the target's folder (made if missing), after
    removing stale ones of the same target (:func:`remove_stale_temps`): ``(fd, tmp)``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path, suffix)
    prefix = f".{path.name}.{os.getpid()}."
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=path.parent)
    os.fchmod(fd, _default_mode())
    return fd, Path(tmp)


def commit_temp(file: IO[Any], tmp: Path, path: str | os.PathLike) -> None:
    """Flush, fsync and close ``file`` (open on ``tmp``), then move it over ``path``."""
    file.flush()
    os.fsync(file.fileno())
    file.close()
    os.replace(tmp, path)


@contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb", **kwargs: Any) -> Iterator[IO[Any]]:
    """``with atomic_open(path, "w") as f: ...`` writes ``path`` atomically.

    If the block raises, the temporary file is removed and ``path`` is left as it was.
    """
    fd, tmp = temp_beside(path)
    try:
        with os.fdopen(fd, mode, **kwargs) as f:
            yield f
            commit_temp(f, tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path with the target's suffix, for writers that take a file name
    (``savefig``, ``to_csv``); when the block ends it is synced and moved over ``path``."""
    fd, tmp = temp_beside(path, suffix=Path(path).suffix or ".tmp")
    os.close(fd)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_open(path, "w") as f:
        f.write(text)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_open(path, "wb") as f:
        f.write(data)


def replace_output_set(
    family: Iterable[str | os.PathLike], written: Iterable[str | os.PathLike]
) -> list[Path]:
    """Finish writing a command's output set: remove the files of ``family`` (every name the
    command can write for these arguments) that this run did not write (issue 16, case 7).

    Only those exact names, only plain files or links (never a folder), so an earlier run's
    optional file (a CSV of an option not given now) cannot pass for part of the new set and
    other files in the folder are untouched. Returns the removed paths.
    """
    keep = {os.path.abspath(p) for p in written}
    removed = []
    for path in map(Path, family):
        if os.path.abspath(path) in keep or not (path.is_file() or path.is_symlink()):
            continue
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        removed.append(path)
    return removed


def csv_text(rows: Sequence[Mapping[str, Any]]) -> str:
    """Rows of one shape as CSV text with a header from the first row's keys ("" if none)."""
    buf = io.StringIO()
    if rows:
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return buf.getvalue()
