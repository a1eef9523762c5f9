"""``python -m fsve.eval CKPT``: zero-shot Top-1/Top-5 (Table 1) and text-to-video R@k (Table 5).

Works on teacher and FSVE checkpoints (both expose ``encode_video``/``encode_text``). Classes are
scored through the prompts ``--template`` (default ``"a video of an object {}"``) filled with the
dataset's class names; retrieval queries are the split's per-sample captions, the ground truth
of caption i being clip i. Metric definitions and tie handling: :mod:`fsve.train.evaluate`.
``--out`` writes the row as ``.json`` or ``.csv``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from fsve.cli import Parser, check_output, positive_int, run_command
from fsve.eval.evaluate import evaluate_checkpoint, format_row, write_row

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    parser = Parser(
        prog="python -m fsve.eval",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("checkpoint", type=Path, help="teacher or FSVE checkpoint (.pt)")
    parser.add_argument("--data", type=Path, default=Path("data/synth"), help="dataset folder")
    parser.add_argument("--split", choices=["train", "val", "test"], default="test")
    parser.add_argument("--out", type=Path, default=None, help="write the row to .json or .csv")
    parser.add_argument("--template", default="a video of an object {}", help="class prompt")
    parser.add_argument("--batch-size", type=positive_int, default=32)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    args = parser.parse_args(argv)
    return run_command(lambda: _run(args), "error", (ValueError, OSError, ImportError))


def _run(args: argparse.Namespace) -> int:
    if args.out is not None and args.out.suffix not in (".json", ".csv"):
        raise ValueError(f"--out must end in .json or .csv, got {args.out}")
    if args.out is not None:
        check_output(args.out, (args.checkpoint,))
    if args.device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for, but torch sees no CUDA device")
    row = evaluate_checkpoint(
        args.checkpoint,
        args.data,
        args.split,
        args.template,
        args.batch_size,
        args.device,
        args.workers,
    )
    if args.out is not None:
        write_row(args.out, row)
    print(format_row(row))
    if args.out is not None:
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
