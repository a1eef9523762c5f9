"""Atomic writes keep the old file on failure and give the usual permissions."""

import os

import pytest

from fsve.io import atomic_open, atomic_path, atomic_write_text


def test_atomic_write_permissions_and_failure(tmp_path):
    target = tmp_path / "sub" / "a.txt"
    atomic_write_text(target, "one")
    umask = os.umask(0)
    os.umask(umask)
    assert target.read_text() == "one"
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0600
    with pytest.raises(RuntimeError), atomic_open(target, "w") as f:
        f.write("two")
        raise RuntimeError("crash mid-write")
    assert target.read_text() == "one"
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "p.csv") as tmp:
        assert tmp.suffix == ".csv"
        tmp.write_text("x")
        raise RuntimeError("crash")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sub"]
    assert os.listdir(tmp_path / "sub") == ["a.txt"]
