"""``python -m export.nir CKPT OUT.nir``: parse, :func:`export_checkpoint`, print the report."""

from __future__ import annotations

import argparse
from pathlib import Path

from export.nir.pipeline import ACCUMULATE, export_checkpoint
from fsve.cli import Parser, positive_int, run_command


def main(argv: list[str] | None = None) -> int:
    p = Parser(
        prog="python -m export.nir",
        description="Export an FSVE checkpoint to NIR (+ host program and partition report).",
    )
    p.add_argument("checkpoint", type=Path, help="FSVE checkpoint (.pt)")
    p.add_argument("out", type=Path, help="NIR file to write (the host program goes beside it)")
    p.add_argument(
        "--report",
        type=Path,
        default=None,
        help="partition report (text; CSV tables beside it). Default OUT_partition.txt",
    )
    p.add_argument("--data", type=Path, default=Path("data/synth"), help="dataset folder")
    p.add_argument("--split", default="test", help="split measured (default: test)")
    p.add_argument(
        "--samples", type=positive_int, default=None, help="clips measured (default: all)"
    )
    p.add_argument("--batch-size", type=positive_int, default=8, help="clips per simulated batch")
    p.add_argument(
        "--accumulate",
        choices=tuple(ACCUMULATE),
        default="float64",
        help="dtype of the simulator's synaptic sums (neurons stay float32); float64 (default)"
        " rounds every synaptic current from its exact sum",
    )
    p.add_argument(
        "--no-verify",
        action="store_true",
        help="measure traffic only; skip the spike-by-spike comparison",
    )
    args = p.parse_args(argv)
    return run_command(lambda: _run(args), "error", (ValueError, FileNotFoundError, OSError))


def _run(args: argparse.Namespace) -> int:
    res = export_checkpoint(
        args.checkpoint,
        args.out,
        data=args.data,
        split=args.split,
        samples=args.samples,
        batch_size=args.batch_size,
        accumulate=args.accumulate,
        verify=not args.no_verify,
        report=args.report,
    )
    print(res.text, end="")
    print(f"wrote {res.nir_path}, {res.host_path}, {res.report['text']} (+ CSV tables)")
    return 0
