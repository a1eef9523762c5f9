"""Dataset folders: ``manifest.csv`` plus one SpikeCV ``.dat`` file per sample.

The same format holds the built-in synthetic dataset and real data: a user with SpikeCV files
writes a manifest with these columns and every command downstream works.

=========== ============================================================
column      meaning
=========== ============================================================
path        ``.dat`` file, relative to the folder (or absolute)
split       ``train``, ``val`` or ``test``
label       integer class index, 0-based
class_name  class name used in prompts ("drifting left")
caption     natural-language description of this sample
height      frame height in pixels
width       frame width in pixels
frames      number of spike frames in the file
=========== ============================================================
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import pandas as pd

from fsve.io import atomic_open

MANIFEST_NAME = "manifest.csv"
COLUMNS = ("path", "split", "label", "class_name", "caption", "height", "width", "frames")
SPLITS = ("train", "val", "test")
INT_COLUMNS = ("label", "height", "width", "frames")


def write_manifest(folder: str | os.PathLike, rows: Iterable[Mapping[str, object]]) -> Path:
    """Write ``rows`` (dicts with :data:`COLUMNS`) to ``folder/manifest.csv`` atomically."""
    folder = Path(folder)
    table = pd.DataFrame(list(rows))
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"manifest rows lack the columns {missing}; expected {list(COLUMNS)}")
    table = table[list(COLUMNS)]
    target = folder / MANIFEST_NAME
    with atomic_open(target, "w", newline="") as f:
        table.to_csv(f, index=False)
    return target


def read_manifest(folder: str | os.PathLike, check_files: bool = True) -> pd.DataFrame:
    """Read and validate ``folder/manifest.csv``.

    Returns the table with an extra ``file`` column (absolute path). Raises
    ``FileNotFoundError`` or ``ValueError`` with a one-line message naming the file, the row and
    the problem: missing columns, unknown splits, bad sizes, labels that are not ``0..C-1`` with
    a class name each, missing or wrongly sized files.
    """
    folder = Path(folder)
    path = folder / MANIFEST_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no manifest; a dataset folder needs {MANIFEST_NAME}")
    try:
        table = pd.read_csv(path, dtype={"caption": str, "class_name": str, "path": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        reason = " ".join(str(err).split())  # pandas' messages may end in a newline
        raise ValueError(f"{path}: unreadable CSV ({reason})") from None
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"{path}: missing columns {missing}; expected {list(COLUMNS)}")
    if not isinstance(table.index, pd.RangeIndex):  # pandas made the extra fields an index
        raise ValueError(f"{path}: rows have more fields than the header's {len(table.columns)}")
    if table.empty:
        raise ValueError(f"{path}: the manifest has no samples")
    for col in INT_COLUMNS:
        values = pd.to_numeric(table[col], errors="coerce")
        # NaN, inf and values past int64 are no integer either
        bad = values.isna() | ~(values.abs() < 2**62) | (values != values.round())
        if bad.any():
            row = int(bad.idxmax())
            value = table[col][row]
            shown = repr(value) if isinstance(value, str) else str(value)  # 'x', 0.5, inf
            raise ValueError(f"{path}: row {row + 2}: {col}={shown} is not an integer")
        table[col] = values.astype(int)
    unknown = sorted(set(table["split"]) - set(SPLITS))
    if unknown:
        row = int((~table["split"].isin(SPLITS)).idxmax())
        raise ValueError(
            f"{path}: row {row + 2}: unknown split {unknown[0]!r}; expected one of {list(SPLITS)}"
        )
    for col, low in (("label", 0), ("height", 1), ("width", 1), ("frames", 1)):
        if (table[col] < low).any():
            row = int((table[col] < low).idxmax())
            raise ValueError(f"{path}: row {row + 2}: {col}={table[col][row]} must be >= {low}")
    odd = (table["height"] * table["width"]) % 8 != 0
    if odd.any():
        row = int(odd.idxmax())
        raise ValueError(
            f"{path}: row {row + 2}: H*W = {table['height'][row]}x{table['width'][row]}"
            " is not a multiple of 8, which the .dat layout needs"
        )
    names = table.groupby("label")["class_name"].nunique()
    if (names > 1).any():
        label = int(names.idxmax())
        raise ValueError(f"{path}: label {label} has several class names; one per label")
    _check_labels(path, table)
    blank = table["path"].isna() | (table["path"].astype(str).str.strip() == "")
    if blank.any():  # found by fuzzing: an empty path cell was a float NaN and a TypeError
        raise ValueError(f"{path}: row {_rows(blank)}: no path; every sample needs a .dat file")
    table["file"] = [str(p if Path(p).is_absolute() else folder / p) for p in table["path"]]
    if check_files:
        for row, (file, h, w, n) in enumerate(
            zip(table["file"], table["height"], table["width"], table["frames"], strict=True)
        ):
            if not Path(file).is_file():
                raise FileNotFoundError(f"{path}: row {row + 2}: missing spike file {file}")
            size = Path(file).stat().st_size
            expected = n * h * w // 8
            if size != expected:
                raise ValueError(
                    f"{path}: row {row + 2}: {file} has {size} bytes, expected {expected}"
                    f" for {n} frames of {h}x{w}"
                )
    return table


def _rows(mask: pd.Series, limit: int = 3) -> str:
    """The manifest lines (header = line 1) of the first ``limit`` rows where ``mask`` holds."""
    lines = [str(int(i) + 2) for i in mask[mask].index]
    more = f" and {len(lines) - limit} more" if len(lines) > limit else ""
    return ", ".join(lines[:limit]) + more


def _few(values: Iterable[int], limit: int = 3) -> str:
    values = sorted(values)
    more = f" ... ({len(values)} in all)" if len(values) > limit else ""
    return ", ".join(map(str, values[:limit])) + more


def _check_labels(path: Path, table: pd.DataFrame) -> None:
    """Labels must be ``0..C-1`` with a class name each (issue 16, item 5): a label past the
    end would make every command count classes that have no name and no sample."""
    names = table["class_name"]
    blank = names.isna() | (names.astype(str).str.strip() == "")
    if blank.any():
        raise ValueError(f"{path}: row {_rows(blank)}: no class_name; every label needs a name")
    labels = set(table["label"])
    n = len(labels)
    outside = table["label"] >= n
    if outside.any():
        missing = set(range(n)) - labels
        raise ValueError(
            f"{path}: labels must be 0..{n - 1} for {n} classes, but row {_rows(outside)} has"
            f" label {_few(set(table['label'][outside]))} and label {_few(missing)} has no row"
        )
