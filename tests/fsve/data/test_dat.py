"""SpikeCV .dat layout, round trips, windowed reads and error messages."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fsve.data.dat import DatWriter, count_frames, read_dat, write_dat


def spikecv_pack(spikes: np.ndarray) -> bytes:
    """Independent statement of SpikeCV's writer: flip rows, bit p%8 of byte p//8, LSB first."""
    n, h, w = spikes.shape
    flipped = spikes[:, ::-1, :].reshape(n, h * w).astype(np.uint8)
    weights = 1 << np.arange(8, dtype=np.uint8)  # pixel p -> bit p % 8
    return (flipped.reshape(n, -1, 8) * weights).sum(axis=2).astype(np.uint8).tobytes()


def test_bit_layout_matches_spikecv(tmp_path):
    rng = np.random.default_rng(0)
    spikes = rng.random((3, 4, 6)) < 0.3
    write_dat(tmp_path / "a.dat", spikes)
    assert (tmp_path / "a.dat").read_bytes() == spikecv_pack(spikes)


def test_single_pixel_bit_position(tmp_path):
    # H=2, W=8: pixel (row 0, col 3) lands in the bottom stored row (flipud) -> byte 1, bit 3
    spikes = np.zeros((1, 2, 8), dtype=bool)
    spikes[0, 0, 3] = True
    write_dat(tmp_path / "b.dat", spikes)
    assert list((tmp_path / "b.dat").read_bytes()) == [0, 0b0000_1000]
    write_dat(tmp_path / "c.dat", spikes, flipud=False)
    assert list((tmp_path / "c.dat").read_bytes()) == [0b0000_1000, 0]


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 7),
    h=st.integers(1, 12),
    w=st.integers(1, 12),
    p=st.floats(0.0, 1.0),
    flip=st.booleans(),
)
def test_round_trip_random_odd_sizes(tmp_path_factory, n, h, w, p, flip):
    if (h * w) % 8:
        w = w * 8  # the layout needs H*W % 8 == 0; odd H and W stay possible
    spikes = np.random.default_rng(n * 1000 + h * 10 + w).random((n, h, w)) < p
    path = tmp_path_factory.mktemp("rt") / "s.dat"
    write_dat(path, spikes, flipud=flip)
    back = read_dat(path, h, w, flipud=flip)
    assert back.dtype == bool and back.shape == (n, h, w)
    np.testing.assert_array_equal(back, spikes)


def test_windowed_read_equals_slice(tmp_path):
    spikes = np.random.default_rng(1).random((50, 5, 8)) < 0.2
    write_dat(tmp_path / "w.dat", spikes)
    full = read_dat(tmp_path / "w.dat", 5, 8)
    for start, stop in [(0, 50), (0, 1), (13, 29), (49, 50), (20, 20)]:
        np.testing.assert_array_equal(
            read_dat(tmp_path / "w.dat", 5, 8, start, stop), full[start:stop]
        )
    np.testing.assert_array_equal(read_dat(tmp_path / "w.dat", 5, 8, start=45), full[45:])


def test_windowed_read_touches_only_window(tmp_path, monkeypatch):
    spikes = np.random.default_rng(2).random((100, 8, 8)) < 0.5
    write_dat(tmp_path / "t.dat", spikes)
    counts = []
    original = np.fromfile

    def counting_fromfile(f, dtype, count=-1, **kw):
        counts.append(count)
        return original(f, dtype=dtype, count=count, **kw)

    monkeypatch.setattr(np, "fromfile", counting_fromfile)
    read_dat(tmp_path / "t.dat", 8, 8, 10, 13)
    assert counts == [3 * 8]  # 3 frames x 64 pixels / 8 bits


def test_truncated_file_error_names_file_and_sizes(tmp_path):
    path = tmp_path / "trunc.dat"
    write_dat(path, np.ones((4, 4, 4), dtype=bool))
    path.write_bytes(path.read_bytes()[:-1])  # 4 frames x 2 bytes - 1 = 7 bytes
    with pytest.raises(ValueError, match=r"trunc\.dat.*size 7 bytes.*4x4.*2 bytes each.*6 or 8"):
        read_dat(path, 4, 4)


def test_bad_sizes_and_ranges(tmp_path):
    path = tmp_path / "ok.dat"
    write_dat(path, np.zeros((3, 4, 4), dtype=bool))
    with pytest.raises(ValueError, match="multiple of 8.*3x5"):
        read_dat(path, 3, 5)
    with pytest.raises(ValueError, match=r"ok\.dat.*\[2, 5\).*3 frames"):
        read_dat(path, 4, 4, 2, 5)
    with pytest.raises(ValueError, match=r"\[-1, 2\)"):
        read_dat(path, 4, 4, -1, 2)
    with pytest.raises(FileNotFoundError, match=r"missing\.dat"):
        read_dat(tmp_path / "missing.dat", 4, 4)
    with pytest.raises(ValueError, match=r"x\.dat.*multiple of 8"):
        write_dat(tmp_path / "x.dat", np.zeros((2, 3, 3), dtype=bool))
    assert not (tmp_path / "x.dat").exists()
    assert count_frames(path, 4, 4) == 3


def test_writer_streams_chunks_and_is_atomic(tmp_path):
    path = tmp_path / "stream.dat"
    write_dat(path, np.ones((2, 4, 4), dtype=bool))
    before = path.read_bytes()
    with pytest.raises(RuntimeError), DatWriter(path, 4, 4) as writer:
        writer.write(np.zeros((5, 4, 4), dtype=bool))
        raise RuntimeError("interrupted")
    assert path.read_bytes() == before  # the old file survives a failed write
    assert [p.name for p in tmp_path.iterdir()] == ["stream.dat"]  # no temp file left
    chunks = [np.random.default_rng(i).random((k, 4, 4)) < 0.5 for i, k in enumerate((3, 1, 6))]
    with DatWriter(path, 4, 4) as writer:
        for chunk in chunks:
            writer.write(chunk)
    np.testing.assert_array_equal(read_dat(path, 4, 4), np.concatenate(chunks))
