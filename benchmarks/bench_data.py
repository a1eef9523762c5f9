"""Data-layer throughput: windowed .dat reads against np.unpackbits, synthetic generation.

Prints (1) our windowed ``read_dat`` throughput in MB/s of packed data, reading from a real
file on disk (page cache warm), against the peer ``np.unpackbits`` on the same bytes already in
memory, and their ratio; (2) synthetic dataset generation speed in samples/s on one core.

    python benchmarks/bench_data.py [--frames 2000] [--size 240x320] [--samples 40]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np


def best_of(fn, repeats: int) -> float:
    """Fastest wall time of ``repeats`` calls, seconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def bench_read(frames: int, height: int, width: int, window: int, repeats: int) -> None:
    from fsve.data.dat import read_dat, write_dat

    rng = np.random.default_rng(0)
    spikes = rng.random((frames, height, width)) < 0.06
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.dat"
        write_dat(path, spikes)
        packed_all = np.fromfile(path, dtype=np.uint8).reshape(frames, -1)
        starts = rng.integers(0, frames - window, size=16)
        mb = window * height * width / 8 / 1e6

        def ours() -> None:
            for s in starts:
                read_dat(path, height, width, int(s), int(s) + window)

        def ours_no_flip() -> None:
            for s in starts:
                read_dat(path, height, width, int(s), int(s) + window, flipud=False)

        def peer() -> None:
            for s in starts:
                np.unpackbits(packed_all[s : s + window], axis=1, bitorder="little")

        ours()  # warm the page cache
        t_ours = best_of(ours, repeats) / len(starts)
        t_no_flip = best_of(ours_no_flip, repeats) / len(starts)
        t_peer = best_of(peer, repeats) / len(starts)
    print(
        f"windowed .dat read, {window} of {frames} frames at {height}x{width} ({mb:.2f} MB packed)"
    )
    print(f"  ours  read_dat (disk, seek + unpack + row flip): {mb / t_ours:8.1f} MB/s")
    print(f"  ours  read_dat, flipud=False (disk, seek + unpack): {mb / t_no_flip:8.1f} MB/s")
    print(f"  peer  np.unpackbits (bytes already in memory):   {mb / t_peer:8.1f} MB/s")
    print(f"  ratio ours / peer: {t_peer / t_ours:.2f} (flipud=False: {t_peer / t_no_flip:.2f})")


def bench_synth(samples: int) -> None:
    from fsve.data.synth import CLASSES, SynthConfig, make_sample

    config = SynthConfig()
    make_sample(0, 0, config)  # warm-up
    start = time.perf_counter()
    for i in range(samples):
        make_sample(i % len(CLASSES), i, config)
    simulate_s = time.perf_counter() - start

    from fsve.data.synth import generate_dataset

    per_class = max(1, samples // len(CLASSES))
    with tempfile.TemporaryDirectory() as tmp:
        cfg = SynthConfig(train_per_class=per_class, val_per_class=0, test_per_class=0)
        start = time.perf_counter()
        generate_dataset(Path(tmp) / "synth", cfg, progress=False)
        total_s = time.perf_counter() - start
    n_written = per_class * len(CLASSES)
    print(
        f"synthetic generation at {config.height}x{config.width}, {config.frames} frames"
        f" (threads: {os.environ.get('OMP_NUM_THREADS', 'default')})"
    )
    print(f"  render + camera:            {samples / simulate_s:6.1f} samples/s")
    print(f"  render + camera + .dat + manifest: {n_written / total_s:6.1f} samples/s")


def main(argv: list[str] | None = None) -> int:
    from fsve.data.__main__ import parse_size

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=2000)
    parser.add_argument("--size", type=parse_size, default=(240, 320))
    parser.add_argument("--window", type=int, default=250, help="frames per windowed read")
    parser.add_argument("--samples", type=int, default=48, help="synthetic samples to time")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    bench_read(args.frames, *args.size, args.window, args.repeats)
    bench_synth(args.samples)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
