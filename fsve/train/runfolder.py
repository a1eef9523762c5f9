"""A run folder's guards (issue 16): a new run never mixes with an earlier one, ``--resume``
never continues on other data, config or recipe, and every split the run needs has samples.

- :func:`guard_new_run`: any file of an earlier run in ``--out`` stops a new run unless
  ``--overwrite``; then :func:`remove_run_files` removes the whole old set just before the first
  step (after every other check passed), so no old file survives next to the new ones.
- :func:`check_resume_data`: the dataset of ``--resume`` must be the stored folder (resolved
  path) with the stored content hash (:func:`fsve.data.identity.data_sha256`).
- :func:`mismatch`: the one-line refusal naming what differs, stored and given value.
- :func:`check_splits`: train, val and test must hold samples before anything is trained.

A refusal raises before any file of the run folder is touched.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fsve.cli import UsageError

__all__ = [
    "RUN_FILES",
    "check_config",
    "check_resume_data",
    "check_splits",
    "earlier_run_files",
    "guard_new_run",
    "mismatch",
    "remove_run_files",
]

# What a run writes into --out (fsve.train.loop and fsve.train.common.finish).
RUN_FILES = ("last.pt", "best.pt", "metrics.csv", "curves.png", "test_metrics.json")
SPLIT_USE = {  # why a run needs each split
    "train": "to train on",
    "val": "to choose best.pt",
    "test": "for the final evaluation of best.pt",
}


def mismatch(what: str, stored: Any, given: Any) -> ValueError:
    """The refusal of a resume whose ``what`` differs from the stored run."""
    return ValueError(f"resume: {what} differs from the run's (stored {stored}, given {given})")


def earlier_run_files(out: str | os.PathLike) -> list[Path]:
    """The files of an earlier run in ``out`` (:data:`RUN_FILES` present, links included)."""
    out = Path(out)
    return [out / name for name in RUN_FILES if (out / name).is_symlink() or (out / name).exists()]


def guard_new_run(out: str | os.PathLike, overwrite: bool) -> list[Path]:
    """The earlier run's files a new run in ``out`` will replace (``overwrite``), or a one-line
    :class:`FileExistsError` naming them."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file, not a run folder")
    found = earlier_run_files(out)
    folders = [p for p in found if p.is_dir() and not p.is_symlink()]
    if folders:
        raise UsageError(f"{folders[0]} is a folder where the run writes a file: move it away")
    if found and not overwrite:
        names = ", ".join(p.name for p in found)
        hint = "pass --resume to continue it, " if (out / "last.pt").exists() else ""
        raise FileExistsError(
            f"{out} holds an earlier run ({names}): {hint}--overwrite to replace it, or another"
            " --out"
        )
    return found


def remove_run_files(files: list[Path]) -> None:
    """Remove an earlier run's files (``--overwrite``), just before the new run's first step."""
    for path in files:
        path.unlink(missing_ok=True)


def check_splits(data: str | os.PathLike) -> None:
    """One-line :class:`UsageError` naming the split and the folder if a split the run needs
    (train, val, test) has no samples."""
    from fsve.data.manifest import read_manifest

    try:
        table = read_manifest(data, check_files=False)
    except (OSError, ValueError) as err:
        raise UsageError(str(err)) from None
    counts = table["split"].value_counts()
    for split, use in SPLIT_USE.items():
        if int(counts.get(split, 0)) == 0:
            raise UsageError(f"{data}: split {split!r} has no samples; the run needs it {use}")


def check_resume_data(stored: Mapping[str, Any], data: str | os.PathLike) -> dict[str, str]:
    """The identity of ``data`` (``path``, ``sha256``) if it is the stored run's dataset; else
    :func:`mismatch`. Runs stored before the hash existed are checked on the path only."""
    from fsve.data.identity import data_identity

    given = Path(data).resolve()
    stored_path = stored.get("data")
    if stored_path is not None and Path(stored_path).resolve() != given:
        raise mismatch("--data", stored_path, given)
    identity = data_identity(data)
    old = stored.get("data_sha256")
    if old is not None and old != identity["sha256"]:
        raise mismatch(
            f"the content of --data {given}",
            f"sha256 {old[:16]}",
            f"sha256 {identity['sha256'][:16]}: the folder changed since the run started",
        )
    return identity


def _flat(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, Mapping):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = list(value) if isinstance(value, tuple) else value
    return out


def check_config(
    given: Mapping[str, Any], stored: Mapping[str, Any], ignore: tuple[str, ...] = ()
) -> None:
    """:func:`mismatch` naming every key where the ``--config`` of a resume differs from the
    stored config (keys in ``ignore``, such as the tokenizer's ``text.vocab_size``, skipped)."""
    a, b = _flat(stored), _flat(given)
    keys = sorted((set(a) | set(b)) - set(ignore))
    diffs = [k for k in keys if a.get(k) != b.get(k)]
    if diffs:
        shown = diffs[:3] + (["..."] if len(diffs) > 3 else [])
        raise mismatch(
            f"--config ({', '.join(shown)})",
            ", ".join(f"{k}={a.get(k)!r}" for k in diffs[:3]),
            ", ".join(f"{k}={b.get(k)!r}" for k in diffs[:3]),
        )
