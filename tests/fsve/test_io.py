"""Atomic writes keep the old file on failure, give the usual permissions and clean up after
killed writers."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fsve.io import LEGACY_STALE_S, atomic_open, atomic_path, atomic_write_bytes, atomic_write_text


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


def dead_pid() -> int:
    """The id of a process that has exited (reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_stale_temporaries_of_the_target_go_on_its_next_write(tmp_path):
    """Issue 16, case 10: a killed writer's ``.NAME.PID.XXXXXXXX.tmp`` is removed by the next
    write of NAME; live writers', other targets' and other files are left alone."""
    pid = dead_pid()
    stale = [tmp_path / f".last.pt.{pid}.ab_12xyz.tmp", tmp_path / ".last.pt.k2j4h5g6.tmp"]
    kept = [
        tmp_path / f".last.pt.{os.getppid()}.abcdefgh.tmp",  # a live writer
        tmp_path / ".last.pt.q1w2e3r4.tmp",  # no pid, recent
        tmp_path / f".best.pt.{pid}.abcdefgh.tmp",  # another target
        tmp_path / f".last.pt.bak.{pid}.abcdefgh.tmp",  # the target last.pt.bak
        tmp_path / f".last.pt.{pid}.abcdefgh.png",  # another suffix
        tmp_path / "notes.txt",
    ]
    for i, path in enumerate(stale + kept):
        path.write_bytes(b"x" * (i + 1))
    old = time.time() - LEGACY_STALE_S - 60
    os.utime(stale[1], (old, old))
    before = {p.name: p.read_bytes() for p in kept}
    atomic_write_bytes(tmp_path / "last.pt", b"new")
    assert (tmp_path / "last.pt").read_bytes() == b"new"
    assert not any(p.exists() for p in stale)
    assert {p.name: p.read_bytes() for p in kept} == before
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(["last.pt", *before])


def test_a_temporary_left_by_kill_9_is_removed_by_the_next_write(tmp_path):
    target = tmp_path / "last.pt"
    writer = (
        "import sys, time\n"
        "from fsve.io import atomic_open\n"
        "with atomic_open(sys.argv[1], 'wb') as f:\n"
        "    f.write(b'x' * 100000); f.flush(); print('writing', flush=True); time.sleep(60)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", writer, str(target)],
        cwd=Path(__file__).resolve().parents[2],  # the repository root: fsve importable
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout.readline().strip() == "writing"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        proc.kill()
    left = [p.name for p in tmp_path.iterdir()]
    assert len(left) == 1 and left[0].startswith(f".last.pt.{proc.pid}.")
    assert (tmp_path / left[0]).stat().st_size == 100000 and not target.exists()
    atomic_write_bytes(target, b"new")
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]
