"""Fuzzing the dataset manifest reader (``fsve.data.manifest.read_manifest``).

Errors: ``ValueError`` (unreadable CSV, missing columns, bad values, labels not ``0..C-1`` with
a name each, spike files of the wrong size) and ``FileNotFoundError`` (no manifest, a missing
spike file), one line naming ``manifest.csv``. A table it returns has every column, integer
sizes and labels, labels ``0..C-1`` and spike files of the stated size.
"""

from __future__ import annotations

import csv
import io
import tempfile
from pathlib import Path

import numpy as np
from fuzzing import expect, fuzz, mutated
from hypothesis import strategies as st

from fsve.data.dat import write_dat
from fsve.data.manifest import COLUMNS, MANIFEST_NAME, SPLITS, read_manifest, write_manifest

ERRORS = (ValueError, FileNotFoundError)
ROWS = [
    {
        "path": f"c{i}.dat",
        "split": SPLITS[i % 3],
        "label": i % 3,
        "class_name": f"class {i % 3}",
        "caption": f"a clip, number {i}",
        "height": 4,
        "width": 6,
        "frames": 2,
    }
    for i in range(5)
]


def dataset(folder: Path, manifest: bytes | None = None) -> Path:
    """``folder`` with the valid spike files and ``manifest`` (default: the valid one)."""
    for i, row in enumerate(ROWS):
        write_dat(folder / row["path"], np.random.default_rng(i).random((2, 4, 6)) < 0.5)
    if manifest is None:
        write_manifest(folder, ROWS)
    else:
        (folder / MANIFEST_NAME).write_bytes(manifest)
    return folder


def valid_manifest() -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        return (dataset(Path(tmp)) / MANIFEST_NAME).read_bytes()


VALID = valid_manifest()


def sane(table, folder: Path, check_files: bool) -> None:
    """What every command downstream relies on."""
    assert set(COLUMNS) <= set(table.columns) and "file" in table.columns and len(table) > 0
    for col in ("label", "height", "width", "frames"):
        assert table[col].dtype.kind == "i", col
    assert set(table["split"]) <= set(SPLITS)
    labels = set(table["label"])
    assert labels == set(range(len(labels)))
    assert ((table["height"] * table["width"]) % 8 == 0).all()
    assert (table[["height", "width", "frames"]] >= 1).all().all()
    if check_files:
        sizes = table[["file", "height", "width", "frames"]].itertuples(index=False)
        for file, h, w, n in sizes:
            assert Path(file).stat().st_size == n * h * w // 8


def check(manifest: bytes, check_files: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = dataset(Path(tmp), manifest)
        path = folder / MANIFEST_NAME
        table = expect(lambda: read_manifest(folder, check_files=check_files), ERRORS, path)
        if table is not None:
            sane(table, folder, check_files)


# ------------------------------------------------------------------- structured CSV mutations

cells = st.one_of(
    st.text(max_size=6),
    st.sampled_from(["", "0", "-1", "99", "1.5", "1e400", "inf", "nan", "train", "TEST", "a,b"]),
    st.integers(-(2**65), 2**65).map(str),
)


@st.composite
def mutated_rows(draw: st.DrawFn) -> bytes:
    """The valid rows as CSV with cells replaced, fields added or removed, rows dropped or
    repeated, the header changed."""
    header = list(COLUMNS)
    rows = [[str(r[c]) for c in COLUMNS] for r in ROWS]
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(("cell", "extra", "short", "drop", "repeat", "header")))
        i = draw(st.integers(0, len(rows) - 1)) if rows else 0
        if op == "cell" and rows:
            rows[i][draw(st.integers(0, len(rows[i]) - 1))] = draw(cells)
        elif op == "extra" and rows:
            rows[i].append(draw(cells))
        elif op == "short" and rows and rows[i]:
            rows[i].pop(draw(st.integers(0, len(rows[i]) - 1)))
        elif op == "drop" and rows:
            rows.pop(i)
        elif op == "repeat" and rows:
            rows.append(list(rows[i]))
        elif op == "header":
            header[draw(st.integers(0, len(header) - 1))] = draw(cells)
    out = io.StringIO()
    csv.writer(out).writerows([header, *rows])
    return out.getvalue().encode()


test_random_bytes, test_random_bytes_slow = fuzz(
    25, manifest=st.binary(max_size=256), check_files=st.booleans()
)(check)
test_mutated_bytes, test_mutated_bytes_slow = fuzz(
    40, manifest=mutated(VALID), check_files=st.booleans()
)(check)
test_mutated_fields, test_mutated_fields_slow = fuzz(
    40, manifest=mutated_rows(), check_files=st.booleans()
)(check)


def test_unmutated_manifest_reads_back(tmp_path):
    table = read_manifest(dataset(tmp_path))
    for col in COLUMNS:
        assert list(table[col]) == [row[col] for row in ROWS]
    assert list(table["file"]) == [str(tmp_path / row["path"]) for row in ROWS]
