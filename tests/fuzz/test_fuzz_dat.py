"""Fuzzing the SpikeCV ``.dat`` reader (``fsve.data.dat.read_dat``, windowed).

Errors: ``ValueError`` (size not whole frames, frame size not a multiple of 8 or not positive,
window out of range) and ``FileNotFoundError``, one line naming the file. A ``.dat`` file has no
header, so any byte string of whole frames is valid: the result must then equal an independent
decoding of the bytes (SpikeCV layout: LSB first, rows stored upside down).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from fuzzing import expect, fuzz, mutated
from hypothesis import strategies as st

from fsve.data.dat import read_dat, write_dat

ERRORS = (ValueError, FileNotFoundError)
H, W, N = 4, 6, 5  # the valid file: 5 frames of 4x6 (3 bytes each)
VALID = np.random.default_rng(0).random((N, H, W)) < 0.3


def decode(data: bytes, h: int, w: int) -> np.ndarray:
    """Independent statement of the layout: bit p % 8 of byte p // 8, flipped rows."""
    bits = np.unpackbits(np.frombuffer(data, np.uint8), bitorder="little").astype(bool)
    return bits.reshape(-1, h, w)[:, ::-1]


def valid_bytes() -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        write_dat(Path(tmp) / "v.dat", VALID)
        return (Path(tmp) / "v.dat").read_bytes()


VALID_BYTES = valid_bytes()
sizes = st.integers(-1, 12)
windows = st.one_of(st.none(), st.integers(-2, 12))


def check_read(data: bytes, h: int, w: int, start: int | None, stop: int | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "s.dat"
        path.write_bytes(data)
        kwargs = {} if start is None else {"start": start}
        spikes = expect(lambda: read_dat(path, h, w, stop=stop, **kwargs), ERRORS, path)
    if spikes is None:
        return
    assert h > 0 and w > 0 and (h * w) % 8 == 0 and len(data) % (h * w // 8) == 0
    full = decode(data, h, w)
    begin = start or 0
    assert spikes.dtype == bool and spikes.shape == (len(full[begin:stop]), h, w)
    np.testing.assert_array_equal(spikes, full[begin:stop])


test_random_bytes, test_random_bytes_slow = fuzz(
    40, data=st.binary(max_size=64), h=sizes, w=sizes, start=windows, stop=windows
)(check_read)
test_mutated_file, test_mutated_file_slow = fuzz(
    40, data=mutated(VALID_BYTES), h=st.just(H), w=st.just(W), start=windows, stop=windows
)(check_read)


def test_unmutated_file_reads_back():
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "v.dat"
        path.write_bytes(VALID_BYTES)
        np.testing.assert_array_equal(read_dat(path, H, W), VALID)
        np.testing.assert_array_equal(read_dat(path, H, W, 1, 3), VALID[1:3])


@pytest.mark.parametrize(("h", "w"), [(0, 8), (3, 3), (-1, 8)])
def test_a_bad_frame_size_names_the_file(tmp_path, h, w):
    # found by fuzzing: the frame-size error did not name the file being read
    path = tmp_path / "s.dat"
    path.write_bytes(bytes(8))
    with pytest.raises(ValueError, match=f"^{path}: "):
        read_dat(path, h, w)
