"""Profiling overhead of the public ``profile_model`` vs SpikingJelly's ``op_counter`` (issue 15).

Usage: ``python benchmarks/bench_energy.py [--threads 1] [--repeats 31] [--batch-sizes 1]
[--data data/synth] [--clock wall|cpu]``. On the FSVE ``tiny`` preset (untrained, its
normalisation calibrated on the inputs so that it spikes) prints, per batch size, the median
time of a plain forward (``model.encode_video(x)`` under ``torch.no_grad()``) and, as ratios to
it (median over the interleaved rounds of the per-round ratio, with its 25-75% spread):

- ``profile``: ``energy.profile.profile_model(model, x)`` with default arguments, the public
  call as a user makes it (collector setup, the audit of the first batch, the counting, the
  report object);
- ``+ tables``: the same, then reading ``report.layers`` and ``report.row("snn")`` (the
  report builds its tables on first use);
- ``no audit``: the same with ``audit=False``;
- ``hooks``: the counting hooks alone (attach, forward, end-of-batch resolution, detach);
- ``SJ``: SpikingJelly 2.0 ``DispatchCounterMode([SynOpCounter(), MACCounter(), ACCounter()])``.

All six run in each round, in a shuffled order, so that load from other processes and the cache
state left by the previous call hit them alike. It also checks that our SOP total equals
SpikingJelly's SynOps. Target: ``profile`` <= 1.3x at batch 1.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
from spikingjelly.activation_based.op_counter import (
    ACCounter,
    DispatchCounterMode,
    MACCounter,
    SynOpCounter,
)

from energy.counting import Collector
from energy.profile import profile_model
from fsve.models.student import FSVE, calibrate_statistics, fsve_config

VARIANTS = ("plain", "profile", "+ tables", "no audit", "hooks", "SJ")


def _inputs(model: FSVE, batch: int, root: Path) -> torch.Tensor:
    """Clips of the built-in test split if present, else random spikes at the same rate."""
    cfg = model.cfg
    if (root / "manifest.csv").is_file():
        from fsve.data.dataset import SpikeDataset, collate

        ds = SpikeDataset(root, "test")
        if len(ds) >= batch and tuple(ds[0]["spikes"].shape[-2:]) == (cfg.height, cfg.width):
            return collate([ds[i] for i in range(batch)])["spikes"]
    g = torch.Generator().manual_seed(0)
    shape = (batch, cfg.num_blocks, cfg.block_frames, cfg.height, cfg.width)
    return torch.rand(shape, generator=g) < 0.06


def _variants(model: FSVE, x: torch.Tensor) -> dict[str, Callable[[], object]]:
    """The timed calls; each returns its SOP total (per batch) or None."""
    batch = x.shape[0]
    collector = Collector(model, time_steps=model.cfg.num_blocks)

    def plain() -> None:
        with torch.no_grad():
            model.encode_video(x)

    def profile() -> object:
        return profile_model(model, x)

    def with_tables() -> float:
        report = profile_model(model, x)
        _ = report.layers
        return float(report.row("snn")["sops"]) * batch

    def no_audit() -> object:
        return profile_model(model, x, audit=False)

    def hooks() -> float:
        collector.attach()
        try:
            with torch.no_grad():
                collector.begin_batch(batch)
                model.encode_video(x)
                records = collector.end_batch()
        finally:
            collector.detach()
        return sum(r.prims.get("sops", 0.0) for r in records.values())

    def spikingjelly() -> float:
        counters = [SynOpCounter(), MACCounter(), ACCounter()]
        with torch.no_grad(), DispatchCounterMode(counters):
            model.encode_video(x)
        return float(counters[0].get_total())

    fns = (plain, profile, with_tables, no_audit, hooks, spikingjelly)
    return dict(zip(VARIANTS, fns, strict=True))


def bench(
    batch: int, warmup: int, repeats: int, data: Path, clock: Callable[[], float]
) -> dict[str, object]:
    """Median ms of the plain forward; per variant the median and quartiles of its ratio to
    the plain forward of the same round; the SOP totals of the last round."""
    torch.manual_seed(0)
    model = FSVE(fsve_config("tiny"))
    x = _inputs(model, batch, data)
    calibrate_statistics(model, x)
    model.eval()
    fns = _variants(model, x)
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    sops: dict[str, float] = {}
    rng = random.Random(0)
    for _ in range(repeats):
        order = list(fns)
        rng.shuffle(order)  # no variant always runs after the same one (cache state)
        for name in order:
            t0 = clock()
            out = fns[name]()
            times[name].append(clock() - t0)
            if isinstance(out, float):
                sops[name] = out
    ratios = {}
    for name in VARIANTS[1:]:
        r = [t / p for t, p in zip(times[name], times["plain"], strict=True)]
        q = statistics.quantiles(r, n=4)
        ratios[name] = (statistics.median(r), q[0], q[2])
    return {"plain_ms": 1e3 * statistics.median(times["plain"]), "ratios": ratios, "sops": sops}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1)")
    parser.add_argument("--repeats", type=int, default=31)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1])
    parser.add_argument("--data", type=Path, default=Path("data/synth"))
    parser.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="wall time, or this process's CPU time (steadier on a shared machine; one thread)",
    )
    args = parser.parse_args(argv)
    clock = time.perf_counter if args.clock == "wall" else time.process_time
    torch.set_num_threads(args.threads)
    print(
        f"FSVE tiny, CPU, {args.threads} thread(s), {args.clock} time, {args.repeats} interleaved "
        "rounds; "
        "ratio to the plain forward: median [25%-75%]"
    )
    print(f"{'batch':>5} {'plain ms':>9}" + "".join(f" {v:>18}" for v in VARIANTS[1:]))
    for batch in args.batch_sizes:
        r = bench(batch, args.warmup, args.repeats, args.data, clock)
        cells = "".join(
            f" {f'{m:.2f} [{lo:.2f}-{hi:.2f}]':>18}" for m, lo, hi in r["ratios"].values()
        )
        print(f"{batch:>5} {r['plain_ms']:>9.1f}{cells}")
        s = r["sops"]
        same = "equal" if s["+ tables"] == s["hooks"] == s["SJ"] else "DIFFERENT"
        print(
            f"      SOPs: profile {s['+ tables']:.0f}, hooks {s['hooks']:.0f}, "
            f"SJ SynOps {s['SJ']:.0f} ({same})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
