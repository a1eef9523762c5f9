"""Fuzzing the ``--input`` array reader (``export.inputs.load_array`` of ``.npy``/``.npz``).

Errors: ``ValueError`` (not a numpy file, damaged, an ``.npz`` without exactly one array, object
arrays, non-numeric or non-finite values) and ``FileNotFoundError``, one line naming the file. An
array it returns is bool, integer or float and finite; an unmutated file gives the saved array.
"""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import numpy as np
import pytest
from fuzzing import expect, fuzz, mutated
from hypothesis import strategies as st

from export.inputs import load_array

ERRORS = (ValueError, FileNotFoundError)
ARRAY = (np.random.default_rng(0).random((5, 2, 3)) < 0.3).astype(np.float32)


def npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=True)
    return buf.getvalue()


def npz(compressed: bool = False, **arrays: np.ndarray) -> bytes:
    buf = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buf, **arrays)
    return buf.getvalue()


VALID_NPY, VALID_NPZ = npy(ARRAY), npz(spikes=ARRAY)


def sane(arr: np.ndarray) -> None:
    assert isinstance(arr, np.ndarray) and arr.dtype.kind in "biuf"
    assert arr.dtype.kind != "f" or bool(np.isfinite(arr).all())


def check(data: bytes, suffix: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"x{suffix}"
        path.write_bytes(data)
        arr = expect(lambda: load_array(path), ERRORS, path)
    if arr is not None:
        sane(arr)


odd_arrays = st.sampled_from(
    [
        ARRAY,
        np.zeros(0),
        np.array(3.5),
        np.array(["spikes"]),
        np.array([b"x"]),
        np.array([1 + 2j]),
        np.array([np.nan, 1.0]),
        np.array([np.inf]),
        np.array([1, 2], dtype=np.uint64),
        np.array([None, 1], dtype=object),
        np.zeros(2, dtype=[("a", "f4"), ("b", "i4")]),
        np.array(["2026-01-01"], dtype="datetime64[D]"),
        np.ones((1, 0, 2), dtype=np.float16),
    ]
)


@st.composite
def structured(draw: st.DrawFn) -> bytes:
    """``.npy`` or ``.npz`` of odd dtypes and shapes, 0-3 arrays, compressed or not."""
    if draw(st.booleans()):
        return npy(draw(odd_arrays))
    names = draw(st.lists(st.sampled_from(["spikes", "x", "a/b", "meta"]), max_size=3, unique=True))
    return npz(draw(st.booleans()), **{n: draw(odd_arrays) for n in names})


suffixes = st.sampled_from((".npy", ".npz"))
test_random_bytes, test_random_bytes_slow = fuzz(25, data=st.binary(max_size=256), suffix=suffixes)(
    check
)
test_mutated_npy, test_mutated_npy_slow = fuzz(30, data=mutated(VALID_NPY), suffix=suffixes)(check)
test_mutated_npz, test_mutated_npz_slow = fuzz(30, data=mutated(VALID_NPZ), suffix=suffixes)(check)
test_odd_arrays, test_odd_arrays_slow = fuzz(40, data=structured(), suffix=suffixes)(check)


@pytest.mark.parametrize(("name", "data"), [("x.npy", VALID_NPY), ("x.npz", VALID_NPZ)])
def test_unmutated_file_reads_back(tmp_path, name, data):
    (tmp_path / name).write_bytes(data)
    arr = load_array(tmp_path / name)
    assert arr.dtype == ARRAY.dtype
    np.testing.assert_array_equal(arr, ARRAY)


@pytest.mark.parametrize(
    ("name", "data", "match"),
    [
        # found by fuzzing: an .npy named .npz failed as "ndarray ... context manager"
        ("x.npz", VALID_NPY, None),
        # found by fuzzing: zipfile.BadZipFile and tokenize errors escaped
        ("x.npz", VALID_NPZ[:-30], "not a numpy array file .BadZipFile"),
        ("x.npy", VALID_NPY.replace(b"{", b"(", 1), "not a numpy array file|Cannot parse header"),
        ("x.npz", npz(a=ARRAY, b=ARRAY), "an .npz input must hold one array"),
        # found by fuzzing: numpy reads any other file as a pickle and suggests allow_pickle
        ("x.npy", b"junk\n", "not a numpy array file .neither .npy nor .npz"),
        ("x.npy", npy(np.array([None], dtype=object)), "Object arrays cannot be loaded"),
    ],
)
def test_a_damaged_input_file_is_one_line_naming_it(tmp_path, name, data, match):
    path = tmp_path / name
    path.write_bytes(data)
    if match is None:
        np.testing.assert_array_equal(load_array(path), ARRAY)
        return
    with pytest.raises(ValueError, match=f"^{path}: ({match})"):
        load_array(path)
