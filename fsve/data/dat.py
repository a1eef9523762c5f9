"""SpikeCV ``.dat`` spike streams: byte-compatible read and write, windowed reads.

Layout (SpikeCV ``spkData/load_dat.py`` / ``save_dat.py``; REFERENCE.md 1): no header; frames
in time order, ``H*W/8`` bytes each; each byte holds 8 consecutive pixels of the row-major
flattened frame, pixel ``p`` in bit ``p % 8`` (least significant bit first); rows are stored
upside down (``flipud=True`` on both sides undoes that).

A windowed read ``[start, stop)`` seeks to ``start * H*W/8`` and reads only those bytes. Writes
are atomic: data go to a temporary file beside the target, renamed over it when complete.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType

import numpy as np

from fsve.io import commit_temp, temp_beside

PathLike = str | os.PathLike


def frame_bytes(height: int, width: int) -> int:
    """Bytes per packed frame; raises if ``H*W`` is not a multiple of 8."""
    if height <= 0 or width <= 0:
        raise ValueError(f"frame size must be positive, got {height}x{width}")
    if (height * width) % 8:
        raise ValueError(
            f"H*W must be a multiple of 8 for the .dat layout, got {height}x{width}"
            f" = {height * width} pixels"
        )
    return height * width // 8


def pack_frames(spikes: np.ndarray, flipud: bool = True) -> np.ndarray:
    """Bool/0-1 spikes ``[N, H, W]`` -> packed bytes ``[N, H*W/8]`` in SpikeCV layout."""
    spikes = np.asarray(spikes)
    if spikes.ndim != 3:
        raise ValueError(f"spikes must be [N, H, W], got shape {spikes.shape}")
    n, h, w = spikes.shape
    frame_bytes(h, w)
    if flipud:
        spikes = spikes[:, ::-1]
    bits = np.ascontiguousarray(spikes, dtype=bool).reshape(n, h * w)
    return np.packbits(bits, axis=1, bitorder="little")


def unpack_frames(packed: np.ndarray, height: int, width: int, flipud: bool = True) -> np.ndarray:
    """Packed bytes ``[N, H*W/8]`` (or flat) -> bool spikes ``[N, H, W]``."""
    nbytes = frame_bytes(height, width)
    packed = np.asarray(packed, dtype=np.uint8).reshape(-1, nbytes)
    if flipud and width % 8 == 0:
        # rows are byte-aligned: flip the packed rows (8x less data) and unpack straight into
        # a contiguous result, instead of unpacking and then copying a flipped view
        rows = packed.reshape(-1, height, width // 8)[:, ::-1]
        return np.unpackbits(rows, axis=2, bitorder="little").view(bool).reshape(-1, height, width)
    bits = np.unpackbits(packed, axis=1, bitorder="little").view(bool)
    spikes = bits.reshape(-1, height, width)
    if flipud:
        spikes = np.ascontiguousarray(spikes[:, ::-1])
    return spikes


def count_frames(path: PathLike, height: int, width: int) -> int:
    """Number of frames in a ``.dat`` file of ``height x width`` frames, validating its size."""
    path = Path(path)
    try:
        nbytes = frame_bytes(height, width)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such .dat file")
    size = path.stat().st_size
    if size % nbytes:
        raise ValueError(
            f"{path}: size {size} bytes is not a whole number of {height}x{width} frames"
            f" ({nbytes} bytes each): {size // nbytes} frames and {size % nbytes} bytes left"
            f" over; expected {size // nbytes * nbytes} or {(size // nbytes + 1) * nbytes} bytes"
        )
    return size // nbytes


def read_dat(
    path: PathLike,
    height: int,
    width: int,
    start: int = 0,
    stop: int | None = None,
    flipud: bool = True,
) -> np.ndarray:
    """Read frames ``[start, stop)`` of a ``.dat`` file as bool ``[N, H, W]``.

    Only the bytes of the window are read. Raises ``FileNotFoundError`` for a missing file and
    ``ValueError`` for a size that is not whole frames or a window out of range.
    """
    path = Path(path)
    total = count_frames(path, height, width)
    stop = total if stop is None else stop
    if not 0 <= start <= stop <= total:
        raise ValueError(
            f"{path}: frame window [{start}, {stop}) is out of range; the file has {total}"
            f" frames of {height}x{width}, so 0 <= start <= stop <= {total}"
        )
    nbytes = frame_bytes(height, width)
    count = (stop - start) * nbytes
    with open(path, "rb") as f:
        f.seek(start * nbytes)
        buf = np.fromfile(f, dtype=np.uint8, count=count)
    if buf.size != count:  # the file shrank between stat and read
        raise ValueError(
            f"{path}: expected {count} bytes at offset {start * nbytes}, got {buf.size}"
        )
    return unpack_frames(buf, height, width, flipud=flipud)


class DatWriter:
    """Append spike chunks to a ``.dat`` file; the file appears atomically on close.

    Use as a context manager. If the block raises, the partial temporary file is removed and
    any existing file at ``path`` is left untouched.
    """

    def __init__(self, path: PathLike, height: int, width: int, flipud: bool = True) -> None:
        self.path = Path(path)
        self.height, self.width = height, width
        self.flipud = flipud
        self.frames_written = 0
        frame_bytes(height, width)
        fd, self._tmp = temp_beside(self.path)
        self._file = os.fdopen(fd, "wb")

    def write(self, spikes: np.ndarray) -> None:
        """Append frames ``[n, H, W]``."""
        spikes = np.asarray(spikes)
        if spikes.ndim != 3 or spikes.shape[1:] != (self.height, self.width):
            raise ValueError(
                f"{self.path}: expected spike frames [n, {self.height}, {self.width}],"
                f" got shape {spikes.shape}"
            )
        self._file.write(pack_frames(spikes, self.flipud).tobytes())
        self.frames_written += spikes.shape[0]

    def close(self) -> None:
        """Flush, sync and move the file into place."""
        if not self._file.closed:
            try:
                commit_temp(self._file, self._tmp, self.path)
            except BaseException:  # e.g. the target is a directory: leave no temporary file
                self._tmp.unlink(missing_ok=True)
                raise

    def abort(self) -> None:
        """Drop the partial file."""
        if not self._file.closed:
            self._file.close()
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> DatWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_dat(path: PathLike, spikes: np.ndarray, flipud: bool = True) -> None:
    """Write bool/0-1 spikes ``[N, H, W]`` to ``path`` in SpikeCV layout, atomically."""
    spikes = np.asarray(spikes)
    if spikes.ndim != 3:
        raise ValueError(f"{path}: spikes must be [N, H, W], got shape {spikes.shape}")
    _, h, w = spikes.shape
    try:
        frame_bytes(h, w)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None
    with DatWriter(path, h, w, flipud=flipud) as writer:
        writer.write(spikes)
