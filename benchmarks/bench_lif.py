"""Forward+backward time of fsve's multi-step LIF vs SpikingJelly's LIFNode with surrogate.Rect.

Usage: ``python benchmarks/bench_lif.py [--threads N] [--repeats R] [--warmup W] [--quick]``.
Prints the median wall time per forward+backward (and forward alone) in ms and the speed-up
ratio SpikingJelly / ours, for FSVE layer shapes ``[T, B, C, H, W]`` on CPU.
"""

from __future__ import annotations

import argparse

import torch
from spikingjelly.activation_based import neuron, surrogate
from timing import interleaved_median_ms

from fsve.nn import LIF, LIFParams

SHAPES: tuple[tuple[int, ...], ...] = (  # [T, B, C, H, W]
    (5, 8, 64, 32, 32),
    (5, 8, 128, 16, 16),
    (5, 8, 256, 8, 8),
    (5, 2, 64, 120, 160),  # paper scale: 240x320 input after a stride-2 stem
)
QUICK_SHAPES: tuple[tuple[int, ...], ...] = ((5, 2, 16, 16, 16), (5, 2, 64, 8, 8))


def _bench_shape(shape: tuple[int, ...], warmup: int, repeats: int) -> dict[str, float]:
    gen = torch.Generator().manual_seed(0)
    x = (torch.randn(shape, generator=gen) * 1.5 + 0.5).requires_grad_()
    grad = torch.randn(shape, generator=gen)
    ours = LIF(LIFParams(tau=2.0, v_threshold=1.0, v_reset=0.0, detach_reset=True))
    sj = neuron.LIFNode(
        tau=2.0,
        decay_input=True,
        v_threshold=1.0,
        v_reset=0.0,
        surrogate_function=surrogate.Rect(alpha=1.0),
        detach_reset=True,
        step_mode="m",
    )

    def run_ours(backward: bool) -> None:
        x.grad = None
        s = ours(x)
        if backward:
            s.backward(grad)

    def run_sj(backward: bool) -> None:
        x.grad = None
        sj.reset()
        s = sj(x)
        if backward:
            s.backward(grad)

    row = interleaved_median_ms(
        {
            "ours_fb_ms": lambda: run_ours(True),
            "sj_fb_ms": lambda: run_sj(True),
            "ours_f_ms": lambda: run_ours(False),
            "sj_f_ms": lambda: run_sj(False),
        },
        warmup,
        repeats,
    )
    row["ratio_fb"] = row["sj_fb_ms"] / row["ours_fb_ms"]
    row["ratio_f"] = row["sj_f_ms"] / row["ours_f_ms"]
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    parser.add_argument("--repeats", type=int, default=15, help="timed runs per case (median)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs per case")
    parser.add_argument("--quick", action="store_true", help="tiny shapes, for a smoke test")
    args = parser.parse_args(argv)
    if args.threads is not None:
        if args.threads < 1:
            parser.error("--threads must be >= 1")
        torch.set_num_threads(args.threads)

    shapes = QUICK_SHAPES if args.quick else SHAPES
    rows = [(shape, _bench_shape(shape, args.warmup, args.repeats)) for shape in shapes]

    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU, float32, "
        f"median of {args.repeats} (warmup {args.warmup}); ratio = SpikingJelly / ours"
    )
    header = (
        f"{'[T, B, C, H, W]':<22} {'ours f+b ms':>12} {'SJ f+b ms':>12} {'ratio':>7}"
        f" {'ours f ms':>10} {'SJ f ms':>10} {'ratio':>7}"
    )
    print(header)
    for shape, r in rows:
        print(
            f"{list(shape)!s:<22} {r['ours_fb_ms']:>12.2f} {r['sj_fb_ms']:>12.2f}"
            f" {r['ratio_fb']:>6.2f}x {r['ours_f_ms']:>10.2f} {r['sj_f_ms']:>10.2f}"
            f" {r['ratio_f']:>6.2f}x"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
