"""Bit-exact fixed-point simulator vs Lava fixed point: steps/s on 1000 inputs -> 1000 LIF.

Usage: ``python benchmarks/bench_loihi.py [--steps 1000] [--batch 256] [--density 0.05]``.

One network (Dense 1000x1000 of mixed-sign 8-bit weights into 1000 LIF, Poisson input spikes),
in one run on this machine:

- ours: :func:`export.loihi.simulate_dense_lif` over ``[T, B, 1000]`` input spikes, T = warm-up
  + ``--steps``, for B = 1 and B = ``--batch``. A step of a batch of B counts as B steps.
- Lava (lava-nc 0.10.0, ``Loihi2SimCfg(select_tag='fixed_pt')``, in ``.venv-lava``): the same
  network on sample 0 of the batch, built by :class:`export.lava.LavaNetwork`; the warm-up
  steps (compilation and process start) run first, then ``--steps`` steps are timed. Only the
  output spikes are recorded (one sink, read once after the run).

The spikes of Lava and of ours (sample 0) are compared over all T steps. Without
``.venv-lava`` (``make lava-env``) the Lava half is skipped with a message.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from export.lava import (  # pure numpy: imports under the Lava interpreter too
    LIFQ,
    REPO_ROOT,
    LavaNetwork,
    QuantGraph,
    QuantLayer,
    Synapse,
    lava_python,
    load_run,
    save_run,
)

N = 1000  # inputs and LIF neurons
NEURON = LIFQ(du=410, dv=205, vth=3000)  # 10 % current and 5 % voltage decay per step


def _network(seed: int = 0) -> QuantGraph:
    w = np.random.default_rng(seed).integers(-256, 256, (N, N))  # mixed-sign 9-bit range
    layer = QuantLayer("lif", (N,), NEURON, (Synapse("in", w),))
    return QuantGraph({"in": (N,)}, (layer,))


def _ours(graph: QuantGraph, x: np.ndarray) -> tuple[float, np.ndarray]:
    """Wall seconds and spikes ``[T, B, N]`` of simulate_dense_lif on ``x [T, B, N]``."""
    from export.loihi import simulate_dense_lif

    syn, n = graph.layers[0].synapses[0], graph.layers[0].neuron
    t0 = time.perf_counter()
    out = simulate_dense_lif(syn.weight, x, du=n.du, dv=n.dv, vth=n.vth)
    return time.perf_counter() - t0, out["s"]


def _lava_worker(src: Path, dst: Path, warm: int) -> int:
    """Under the Lava interpreter: run the saved network, time the steps after ``warm``."""
    graph, inputs, _ = load_run(src)
    t0 = time.perf_counter()
    with LavaNetwork(graph, inputs, record=("s",), layers=["lif"]) as net:
        t1 = time.perf_counter()
        net.run(warm)  # compiles, starts the processes
        t2 = time.perf_counter()
        net.run()
        t3 = time.perf_counter()
        s = net.read()["lif"]["s"]
    np.save(dst.with_suffix(".npy"), s)
    timing = {
        "build_s": t1 - t0,
        "warm_s": t2 - t1,
        "timed_s": t3 - t2,
        "timed_steps": net.num_steps - warm,
    }
    dst.write_text(json.dumps(timing))
    return 0


def _lava(graph: QuantGraph, x: np.ndarray, warm: int) -> tuple[dict, np.ndarray] | str:
    """Timing dict and spikes ``[T, N]`` from Lava, or the reason it was skipped."""
    py = lava_python()
    if py is None:
        return "no .venv-lava (Python 3.10 + lava-nc): run `make lava-env`"
    with tempfile.TemporaryDirectory(prefix="bench-loihi-") as tmp:
        src, dst = Path(tmp) / "net.npz", Path(tmp) / "timing.json"
        save_run(src, graph, {"in": x}, record=("s",), layers=["lif"])
        env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
        cmd = [str(py), __file__, "--lava-worker", str(src), str(dst), "--warmup", str(warm)]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
        if proc.returncode != 0:
            raise RuntimeError(f"Lava worker failed:\n{proc.stderr[-4000:]}")
        return json.loads(dst.read_text()), np.load(dst.with_suffix(".npy"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=1000, help="timed steps")
    parser.add_argument("--warmup", type=int, default=20, help="steps run before timing")
    parser.add_argument("--batch", type=int, default=32, help="batch of our batched run")
    parser.add_argument("--density", type=float, default=0.05, help="input spikes per step")
    parser.add_argument(
        "--lava-worker", nargs=2, type=Path, metavar=("NET", "OUT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.lava_worker:
        return _lava_worker(*args.lava_worker, warm=args.warmup)

    graph = _network()
    total = args.warmup + args.steps
    rng = np.random.default_rng(1)
    x = (rng.random((total, args.batch, N)) < args.density).astype(np.int8)  # [T, B, N]

    rows = []
    t1, s1 = _ours(graph, x[:, :1])
    rows.append(("ours, batch 1", total, t1))
    tb, sb = _ours(graph, x)
    rows.append((f"ours, batch {args.batch}", total * args.batch, tb))
    lava = _lava(graph, x[:, 0], args.warmup)

    print(
        f"Dense {N}x{N} -> {N} LIF, fixed point, {total} steps ({args.warmup} warm-up), "
        f"input density {args.density}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '?')}"
    )
    print(f"output spikes/neuron/step: {float(sb.mean()):.4f}")
    if isinstance(lava, str):
        print(f"Lava: skipped ({lava})")
        lava_rate = None
    else:
        timing, s_lava = lava
        lava_rate = timing["timed_steps"] / timing["timed_s"]
        rows.insert(0, ("Lava fixed_pt (timed part)", timing["timed_steps"], timing["timed_s"]))
        equal = np.array_equal(s_lava, sb[:, 0]) and np.array_equal(s1[:, 0], sb[:, 0])
        print(
            f"Lava build {timing['build_s']:.2f} s, warm-up (compile, start) "
            f"{timing['warm_s']:.2f} s; spikes equal to ours over all {total} steps: {equal}"
        )
    print(f"{'run':<30} {'steps':>9} {'wall s':>9} {'steps/s':>12} {'x Lava':>8}")
    for name, steps, wall in rows:
        rate = steps / wall
        ratio = f"{rate / lava_rate:8.1f}" if lava_rate else f"{'-':>8}"
        print(f"{name:<30} {steps:>9} {wall:>9.3f} {rate:>12,.0f} {ratio}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
