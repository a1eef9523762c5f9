"""Bit-exact fixed-point simulator vs Lava fixed point: steps/s on 1000 inputs -> 1000 LIF.

Usage: ``python benchmarks/bench_loihi.py [--steps 1000] [--batch 32] [--density 0.05]
[--fsve [--checkpoint CKPT] [--fsve-batch 8]]``.

One network (Dense 1000x1000 of mixed-sign 8-bit weights into 1000 LIF, Poisson input spikes),
in one run on this machine:

- ours: :func:`export.loihi.simulate_dense_lif` over ``[T, B, 1000]`` input spikes, T = warm-up
  + ``--steps``, for B = 1 and B = ``--batch``. A step of a batch of B counts as B steps.
- Lava (lava-nc 0.10.0, ``Loihi2SimCfg(select_tag='fixed_pt')``, in ``.venv-lava``): the same
  network on sample 0 of the batch, built by :class:`export.lava.LavaNetwork`; the warm-up
  steps (compilation and process start) run first, then ``--steps`` steps are timed. Only the
  output spikes are recorded (one sink, read once after the run).

The spikes of Lava and of ours (sample 0) are compared over all T steps. ``--fsve`` adds the
neuromorphic partition of FSVE tiny (a checkpoint, or untrained and calibrated on clips of
``data/synth``), quantised by :func:`export.loihi.quantize`: ours is
:func:`export.loihi.simulate_quantized` with Lava's timing on a batch of clips, Lava runs the
first clip with the host inputs taken from our run (several minutes: Lava's Python Conv takes
seconds per step). Without ``.venv-lava`` (``make lava-env``) the Lava half is skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from export.lava import (  # pure numpy: imports under the Lava interpreter too
    LIFQ,
    REPO_ROOT,
    LavaGraph,
    LavaLayer,
    LavaNetwork,
    Synapse,
    lava_python,
    load_results,
    load_run,
    save_results,
    save_run,
)

N = 1000  # inputs and LIF neurons
NEURON = LIFQ(du=410, dv=205, vth=3000)  # 10 % current and 5 % voltage decay per step


def _network(seed: int = 0) -> LavaGraph:
    w = np.random.default_rng(seed).integers(-256, 256, (N, N))  # mixed-sign 9-bit range
    layer = LavaLayer("lif", (N,), NEURON, (Synapse("in", w),))
    return LavaGraph({"in": (N,)}, (layer,))


def _ours(graph: LavaGraph, x: np.ndarray) -> tuple[float, np.ndarray]:
    """Wall seconds and spikes ``[T, B, N]`` of simulate_dense_lif on ``x [T, B, N]``."""
    from export.loihi import simulate_dense_lif

    syn, n = graph.layers[0].synapses[0], graph.layers[0].neuron
    t0 = time.perf_counter()
    out = simulate_dense_lif(syn.weight, x, du=n.du, dv=n.dv, vth=n.vth)
    return time.perf_counter() - t0, out["s"]


def _lava_worker(src: Path, dst: Path, warm: int) -> int:
    """Under the Lava interpreter: run the saved network, time the steps after ``warm``."""
    graph, inputs, opts = load_run(src)
    t0 = time.perf_counter()
    with LavaNetwork(graph, inputs, record=opts["record"], layers=opts["layers"]) as net:
        t1 = time.perf_counter()
        net.run(warm)  # compiles, starts the processes
        t2 = time.perf_counter()
        net.run()
        t3 = time.perf_counter()
        save_results(dst.with_suffix(".npz"), net.read())
    timing = {
        "build_s": t1 - t0,
        "warm_s": t2 - t1,
        "timed_s": t3 - t2,
        "timed_steps": net.num_steps - warm,
    }
    dst.write_text(json.dumps(timing))
    return 0


def _lava(
    graph: LavaGraph, inputs: dict[str, np.ndarray], warm: int
) -> tuple[dict, dict[str, np.ndarray]] | str:
    """Timing dict and spikes ``{layer: [T, *shape]}`` from Lava, or why it was skipped."""
    py = lava_python()
    if py is None:
        return "no .venv-lava (Python 3.10 + lava-nc): run `make lava-env`"
    with tempfile.TemporaryDirectory(prefix="bench-loihi-") as tmp:
        src, dst = Path(tmp) / "net.npz", Path(tmp) / "timing.json"
        save_run(src, graph, inputs, record=("s",))
        env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
        cmd = [str(py), __file__, "--lava-worker", str(src), str(dst), "--warmup", str(warm)]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
        if proc.returncode != 0:
            raise RuntimeError(f"Lava worker failed:\n{proc.stderr[-4000:]}")
        results = load_results(dst.with_suffix(".npz"))
        return json.loads(dst.read_text()), {k: v["s"] for k, v in results.items()}


def _add_lava_row(lava, rows: list[tuple[str, int, float]]) -> tuple[float | None, Any, Any]:
    """``(steps/s, timing, spikes)`` of a Lava run put first in ``rows``; or print why it was
    skipped (``lava`` is then the reason) and return ``(None, None, None)``."""
    if isinstance(lava, str):
        print(f"Lava: skipped ({lava})")
        return None, None, None
    timing, s_lava = lava
    rows.insert(0, ("Lava fixed_pt (timed part)", timing["timed_steps"], timing["timed_s"]))
    return timing["timed_steps"] / timing["timed_s"], timing, s_lava


def _print_rows(rows: list[tuple[str, int, float]], lava_rate: float | None) -> None:
    print(f"{'run':<34} {'steps':>9} {'wall s':>9} {'steps/s':>12} {'x Lava':>8}")
    for name, steps, wall in rows:
        rate = steps / wall
        ratio = f"{rate / lava_rate:8.1f}" if lava_rate else f"{'-':>8}"
        shown = f"{rate:>12,.0f}" if rate >= 100 else f"{rate:>12.3g}"
        print(f"{name:<34} {steps:>9} {wall:>9.3f} {shown} {ratio}")


def bench_dense(args: argparse.Namespace) -> None:
    graph = _network()
    total = args.warmup + args.steps
    rng = np.random.default_rng(1)
    x = (rng.random((total, args.batch, N)) < args.density).astype(np.int8)  # [T, B, N]
    rows = []
    t1, s1 = _ours(graph, x[:, :1])
    rows.append(("ours, batch 1", total, t1))
    tb, sb = _ours(graph, x)
    rows.append((f"ours, batch {args.batch}", total * args.batch, tb))
    lava = _lava(graph, {"in": x[:, 0]}, args.warmup)

    print(
        f"Dense {N}x{N} -> {N} LIF, fixed point, {total} steps ({args.warmup} warm-up), "
        f"input density {args.density}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '?')}"
    )
    print(f"output spikes/neuron/step: {float(sb.mean()):.4f}")
    lava_rate, timing, s_lava = _add_lava_row(lava, rows)
    if timing is not None:
        equal = np.array_equal(s_lava["lif"], sb[:, 0]) and np.array_equal(s1[:, 0], sb[:, 0])
        print(
            f"Lava build {timing['build_s']:.2f} s, warm-up (compile, start) "
            f"{timing['warm_s']:.2f} s; spikes equal to ours over all {total} steps: {equal}"
        )
    _print_rows(rows, lava_rate)


def _fsve_quantized(checkpoint: Path | None, batch: int):
    """FSVE tiny (checkpoint, or untrained and calibrated), exported, quantised; clips."""
    import torch
    from torch import nn

    from export.loihi import layer_ranges, quantize
    from export.nir import SplitModel, to_nir
    from export.sim import HostCall
    from fsve.models.student import FSVE, calibrate_statistics, fsve_config

    torch.set_num_threads(1)
    if checkpoint is not None:
        from fsve.checkpoint import load_model

        model, _ = load_model(checkpoint, kind="fsve")
    else:
        torch.manual_seed(0)
        model = FSVE(fsve_config("tiny"))
    cfg = model.cfg
    root = Path("data/synth")
    x = None
    if (root / "manifest.csv").is_file():
        from fsve.data.dataset import SpikeDataset, collate

        ds = SpikeDataset(root, "test")
        if tuple(ds[0]["spikes"].shape[-2:]) == (cfg.height, cfg.width):
            x = collate([ds[i % len(ds)] for i in range(2 * batch)])["spikes"]
    if x is None:
        g = torch.Generator().manual_seed(0)
        shape = (2 * batch, cfg.num_blocks, cfg.block_frames, cfg.height, cfg.width)
        x = torch.rand(shape, generator=g) < 0.06
    if checkpoint is None:
        with torch.no_grad():
            for m in model.modules():  # give the zero-initialised residual branches weight
                if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d) and not m.weight.any():
                    m.weight.fill_(0.5)
        calibrate_statistics(model, x[:batch])
    export = to_nir(model, x[:2])
    split = SplitModel(export.graph, export.host, accumulate=torch.float64)
    stateful = [n for n in split.sim.neuron_nodes() if "sn" not in n.split(".")[-1]]
    rec = split.run(x[:batch], record="all", states=stateful)
    q = quantize(export.graph, layer_ranges(export.graph, {k: v.numpy() for k, v in rec.items()}))
    calls = {
        op.output: HostCall(tuple(op.inputs), lambda d, op=op: op(*(d[n] for n in op.inputs)))
        for op in export.host.ops
        if op.feeds_graph
    }
    clips = x[batch:].transpose(0, 1).numpy().astype(np.int64)  # [T, B, 61, H, W], unseen
    return q, calls, clips


def bench_fsve(args: argparse.Namespace) -> None:
    from export.lava import from_quantized
    from export.loihi import simulate_quantized

    q, calls, x = _fsve_quantized(args.checkpoint, args.fsve_batch)
    neurons = sum(int(np.prod(layer.shape)) for layer in q.layers.values())
    rows = []
    t0 = time.perf_counter()
    one = simulate_quantized(q, x[:, :1], align=False, host=calls)
    rows.append(("ours, batch 1", one.steps, time.perf_counter() - t0))
    t0 = time.perf_counter()
    run = simulate_quantized(q, x, align=False, host=calls)
    rows.append((f"ours, batch {x.shape[1]}", run.steps * x.shape[1], time.perf_counter() - t0))
    graph = from_quantized(q)
    inputs = {name: run.values[name][:, 0] for name in graph.inputs if name in run.values}
    inputs["input"] = np.zeros((run.steps, *x.shape[2:]), np.int64)  # zero-padded tail
    inputs["input"][: len(x)] = x[:, 0]
    warm = min(2, run.steps - 1)
    lava = _lava(graph, inputs, warm)
    synapses = sum(len(layer.synapses) for layer in graph.layers)
    print(
        f"\nFSVE tiny partition ({'checkpoint' if args.checkpoint else 'untrained, calibrated'}):"
        f" {len(graph.layers)} layers, {neurons:,} neurons, {synapses} Dense/Conv processes;"
        f" {run.steps} steps ({len(x)} inputs + the depth), Lava's timing"
    )
    lava_rate, timing, s_lava = _add_lava_row(lava, rows)
    if timing is not None:
        equal = all(np.array_equal(s_lava[n], run.values[n][:, 0]) for n in q.layers)
        print(
            f"Lava build {timing['build_s']:.2f} s, {warm} warm-up steps (compile, start) "
            f"{timing['warm_s']:.2f} s; spikes of every layer equal to ours: {equal}"
        )
    _print_rows(rows, lava_rate)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=1000, help="timed steps")
    parser.add_argument("--warmup", type=int, default=20, help="steps run before timing")
    parser.add_argument("--batch", type=int, default=32, help="batch of our batched run")
    parser.add_argument("--density", type=float, default=0.05, help="input spikes per step")
    parser.add_argument("--fsve", action="store_true", help="also the FSVE tiny partition")
    parser.add_argument("--fsve-batch", type=int, default=8, help="clips of our FSVE run")
    parser.add_argument("--checkpoint", type=Path, default=None, help="FSVE checkpoint")
    parser.add_argument(
        "--lava-worker", nargs=2, type=Path, metavar=("NET", "OUT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.lava_worker:
        return _lava_worker(*args.lava_worker, warm=args.warmup)
    bench_dense(args)
    if args.fsve:
        bench_fsve(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
