"""Atomic file writes: a temporary file beside the target, fsync, then ``os.replace``.

A crash or an exception mid-write never leaves a half-written file at the target, and an
existing file there survives until the new one is complete. Files get the usual permissions
(``0o666`` less the umask), not the ``0o600`` of :func:`tempfile.mkstemp`. :func:`csv_text`
formats report rows for them.
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


def _default_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def temp_beside(path: str | os.PathLike, suffix: str = ".tmp") -> tuple[int, Path]:
    """Create ``.NAME.XXXX<suffix>`` in the target's folder (made if missing): ``(fd, tmp)``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
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


def csv_text(rows: Sequence[Mapping[str, Any]]) -> str:
    """Rows of one shape as CSV text with a header from the first row's keys ("" if none)."""
    buf = io.StringIO()
    if rows:
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return buf.getvalue()
