"""Profiling overhead of energy counting: ours vs SpikingJelly's ``op_counter`` on the same FSVE.

Usage: ``python benchmarks/bench_energy.py [--threads N] [--repeats R] [--batch-sizes 1 4]``.
For the FSVE ``tiny`` preset (untrained, its normalisation calibrated on the inputs so that it
spikes) prints, per batch size, the median wall time of a plain forward and the ratio
time / plain-forward time of

- ours: a forward with our counting hooks attached, plus the end-of-batch resolution;
- SpikingJelly 2.0 ``DispatchCounterMode([SynOpCounter(), MACCounter(), ACCounter()])``;

measured interleaved in the same run, and the SOP totals both report. Target: ours <= 1.5x.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from spikingjelly.activation_based.op_counter import (
    ACCounter,
    DispatchCounterMode,
    MACCounter,
    SynOpCounter,
)
from timing import interleaved_median_ms

from energy.counting import Collector
from fsve.models.student import FSVE, calibrate_statistics, fsve_config


def _inputs(model: FSVE, batch: int) -> torch.Tensor:
    """Clips of the built-in test split if present, else random spikes at the same rate."""
    cfg = model.cfg
    root = Path("data/synth")
    if (root / "manifest.csv").is_file():
        from fsve.data.dataset import SpikeDataset, collate

        ds = SpikeDataset(root, "test")
        if len(ds) >= batch and tuple(ds[0]["spikes"].shape[-2:]) == (cfg.height, cfg.width):
            return collate([ds[i] for i in range(batch)])["spikes"]
    g = torch.Generator().manual_seed(0)
    shape = (batch, cfg.num_blocks, cfg.block_frames, cfg.height, cfg.width)
    return torch.rand(shape, generator=g) < 0.06


def bench(batch: int, warmup: int, repeats: int) -> dict[str, float]:
    torch.manual_seed(0)
    model = FSVE(fsve_config("tiny"))
    x = _inputs(model, batch)
    calibrate_statistics(model, x)
    collector = Collector(model, time_steps=model.cfg.num_blocks)
    sj_counters: list = []
    ours_sops: list[float] = []

    def plain() -> None:
        with torch.no_grad():
            model.encode_video(x)

    def ours() -> None:
        collector.attach()
        try:
            with torch.no_grad():
                collector.begin_batch(batch)
                model.encode_video(x)
                records = collector.end_batch()
        finally:
            collector.detach()
        ours_sops.append(sum(r.prims.get("sops", 0.0) for r in records.values()))

    def spikingjelly() -> None:
        counters = [SynOpCounter(), MACCounter(), ACCounter()]
        with torch.no_grad(), DispatchCounterMode(counters):
            model.encode_video(x)
        sj_counters.append(counters[0].get_total())

    ms = interleaved_median_ms(
        {"plain": plain, "ours": ours, "spikingjelly": spikingjelly}, warmup, repeats
    )
    return {**ms, "ours_sops": ours_sops[-1], "sj_synops": sj_counters[-1]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1)")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 4])
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"FSVE tiny, CPU, {args.threads} thread(s), median of {args.repeats} (interleaved)")
    head = (
        f"{'batch':>5} {'plain ms':>9} {'ours ms':>9} {'ours x':>7} {'SJ ms':>9} {'SJ x':>7}"
        f" {'our SOPs':>12} {'SJ SynOps':>12}"
    )
    print(head)
    for batch in args.batch_sizes:
        r = bench(batch, args.warmup, args.repeats)
        print(
            f"{batch:>5} {r['plain']:>9.1f} {r['ours']:>9.1f} {r['ours'] / r['plain']:>7.2f}"
            f" {r['spikingjelly']:>9.1f} {r['spikingjelly'] / r['plain']:>7.2f}"
            f" {r['ours_sops']:>12.0f} {r['sj_synops']:>12.0f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
