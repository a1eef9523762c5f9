"""``python -m export.loihi GRAPH.nir|CKPT``: float against Loihi fixed point.

On dataset clips (``--data``, class prompts give Top-1) or, for any NIR graph, on the user's
time-first spikes (``--input spikes.npy``: spike agreement per layer, no dataset). Parses,
calls :func:`export.loihi.compare.compare_fixed_point`, prints and writes
:func:`export.loihi.report.report_text` (``loihi.txt`` + two CSVs, under
``reports/loihi/<stem>`` by default).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from fsve.cli import Parser, UsageError, check_output, positive_int, run_command

__all__ = ["PROG", "main"]

PROG = "python -m export.loihi"
DEFAULT_DATA = Path("data/synth")


def _parser() -> argparse.ArgumentParser:
    p = Parser(
        prog=PROG,
        description="Quantise a NIR graph (or an FSVE checkpoint) to Loihi fixed point and run"
        " float and fixed point side by side on dataset clips or on your own input.",
    )
    p.add_argument(
        "model", type=Path, help="GRAPH.nir (host program OUT.host.pt beside it) or CKPT"
    )
    p.add_argument(
        "--input",
        type=Path,
        default=None,
        metavar="FILE",
        help="your spikes .npy/.npz, time-first [T, B, *shape] (or [T, *shape] for one sample)"
        " for the graph's Input: measured without a dataset, ranges from its first samples",
    )
    p.add_argument(
        "--data", type=Path, default=None, help=f"dataset folder (default {DEFAULT_DATA})"
    )
    p.add_argument("--out", type=Path, default=None, help="report folder (reports/loihi/<stem>)")
    p.add_argument("--split", default="test", help="split measured (default test)")
    p.add_argument("--dt", type=float, default=None, help="time step, s (graph's dt_s or 1e-4)")
    p.add_argument(
        "--samples", type=positive_int, default=None, help="clips/samples measured (default all)"
    )
    p.add_argument("--batch-size", type=positive_int, default=8, help="clips per batch")
    p.add_argument(
        "--calibration",
        type=positive_int,
        default=16,
        help="train clips (or first samples of --input) for the ranges",
    )
    p.add_argument("--checkpoint", type=Path, default=None, help="FSVE checkpoint for the"
                   " class prompts when MODEL is a .nir (Top-1 needs them)")  # fmt: skip
    p.add_argument("--headroom", type=float, default=2.0, help="u, v below 2^23/headroom")
    p.add_argument(
        "--weight-terms",
        type=int,
        choices=(1, 2),
        default=1,
        help="Dense/Conv processes per weight set: 2 adds one for the rounding residue"
        " (about 15-bit weights at twice the synapses)",
    )
    p.add_argument(
        "--lava-timing",
        action="store_true",
        help="also run with Lava's one-step delay per Dense/Conv (not aligned)",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return run_command(lambda: _run(args), f"{PROG}: error", (ValueError, OSError, KeyError))


def _run(args: argparse.Namespace) -> int:
    from export.loihi.compare import compare_fixed_point
    from export.loihi.layers import QuantConfig
    from export.loihi.report import REPORT_FILES, report_text, write_report

    data = args.data
    if args.input is not None and data is not None:
        raise UsageError("give --input (your spikes) or --data (a dataset folder), not both")
    if args.input is None:
        data = data or DEFAULT_DATA
        if args.model.suffix == ".nir" and not (data / "manifest.csv").is_file():
            raise UsageError(
                f"{args.model}: no --input given and no dataset at {data}: give --input"
                " spikes.npy (time-first [T, B, *shape] or [T, *shape])"
            )
    out_dir = args.out or Path("reports/loihi") / args.model.stem
    inputs = [p for p in (args.model, args.input, args.checkpoint) if p is not None]
    check_output(out_dir, inputs, folder=True)
    result = compare_fixed_point(
        args.model,
        data=data,
        inputs=args.input,
        dt=args.dt,
        split=args.split,
        samples=args.samples,
        batch_size=args.batch_size,
        calibration=args.calibration,
        checkpoint=args.checkpoint,
        config=QuantConfig(headroom=args.headroom, weight_terms=args.weight_terms),
        lava_timing=args.lava_timing,
    )
    write_report(result, out_dir)
    print(report_text(result), end="")
    print(f"wrote {out_dir}/{', '.join(REPORT_FILES)}")
    return 0
