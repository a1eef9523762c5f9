"""``python -m fsve.train teacher|distill``: train SPKLIP with STCL, or distil it into the FSVE.

``teacher`` trains SPKLIP (Eq. 6) on the captions of a dataset folder. The text targets mix the
per-sample captions with class prompts (:class:`fsve.train.loop.StclPromptLoss`): STCL over the
captions with same-class pairs as positives, plus cross-entropy of each video against the C
class prompts of a template drawn per step from :data:`fsve.train.loop.PROMPT_TEMPLATES`. The
tokenizer is built from the train captions and all those prompts and stored in the checkpoint.

Recipes (each value can be overridden by its flag):

- ``default``: tuned for the built-in dataset with the ``tiny`` config on a 2-core CPU: AdamW,
  linear warmup then cosine decay, random translation of each training clip by up to
  ``--shift`` pixels (see :data:`RECIPES`);
- ``paper``: the paper's AdamW, lr 2e-5, batch 8, 30 epochs; it gives no schedule or weight
  decay, so the lr is constant and the weight decay is AdamW's usual 0.01.

The run folder gets ``last.pt``, ``best.pt``, ``metrics.csv``, ``curves.png`` (see
:mod:`fsve.train.loop`) and, at the end, ``test_metrics.json`` (best checkpoint on the test
split). ``--resume`` continues from ``last.pt`` with the settings stored there; flags, data,
teacher or config that differ from them are an error (exit 2). A new run refuses an ``--out``
holding any earlier run's file unless ``--overwrite``. A diverged run (non-finite loss, gradient,
weights or validation output) stops with exit 2, its last good checkpoints kept. Runs under
``torchrun --nproc_per_node N`` unchanged.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch

from fsve.cli import Parser, positive_int, run_command
from fsve.train.common import RECIPES, read_config_arg
from fsve.train.distill import cmd_distill
from fsve.train.distributed import DistEnv, cleanup_distributed, setup_distributed
from fsve.train.loop import NonFiniteLossError
from fsve.train.losses import DistillWeights
from fsve.train.teacher import cmd_teacher

__all__ = ["build_parser", "main", "read_config_arg"]  # read_config_arg: used by the reports

# exit 2, one line; NonFiniteLossError: a diverged run (issue 16, case 9)
USAGE_ERRORS = (ValueError, FileNotFoundError, FileExistsError, ImportError, NonFiniteLossError)


def add_common(p: argparse.ArgumentParser, out: str) -> None:
    """Flags shared by the subcommands."""
    p.add_argument("--data", type=Path, default=Path("data/synth"), help="dataset folder")
    p.add_argument("--out", type=Path, default=Path(out), help="run folder")
    p.add_argument(
        "--epochs", type=positive_int, default=None, help="epochs (default: from the recipe)"
    )
    p.add_argument("--batch-size", type=positive_int, default=None, help="global batch size")
    p.add_argument("--lr", type=float, default=None, help="peak learning rate")
    p.add_argument("--seed", type=int, default=None, help="seed (default 0)")
    p.add_argument(
        "--recipe", choices=sorted(RECIPES), default=None, help="hyperparameters (default)"
    )
    p.add_argument(
        "--shift", type=int, default=None, help="random translation, max pixels (recipe)"
    )
    p.add_argument("--resume", action="store_true", help="continue from <out>/last.pt")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an earlier run's files in --out (removed as a whole before the first step)",
    )
    p.add_argument("--device", choices=["cpu", "cuda"], default=None, help="default: cuda if any")
    p.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    p.add_argument(
        "--threads",
        type=positive_int,
        default=None,
        help="torch CPU threads (default: torch's choice)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="python -m fsve.train",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("teacher", help="train the SPKLIP teacher with STCL (Eq. 6)")
    add_common(p, "runs/teacher")
    p.add_argument(
        "--config", default=None, help="tiny | paper | FILE.json of TeacherConfig keys (tiny)"
    )
    p.set_defaults(func=cmd_teacher)
    add_distill_parser(sub)
    return parser


def add_distill_parser(sub: Any) -> None:
    """Register the ``distill`` subcommand."""
    p = sub.add_parser("distill", help="distil the teacher into the spiking FSVE student")
    add_common(p, "runs/fsve")
    p.add_argument("--teacher", type=Path, default=None, help="teacher checkpoint (.pt)")
    p.add_argument(
        "--no-teacher", action="store_true", help="train the FSVE alone (STCL + class prompts)"
    )
    p.add_argument("--config", default=None, help="tiny | paper | FILE.json of FSVEConfig keys")
    d = DistillWeights()
    p.add_argument("--w-contrastive", type=float, default=None, help=f"a (L_con), {d.contrastive}")
    p.add_argument("--w-kl", type=float, default=None, help=f"b (L_kl), default {d.kl}")
    p.add_argument("--w-embed", type=float, default=None, help=f"c (L_emb), default {d.embed}")
    p.add_argument(
        "--temperature", type=float, default=None, help=f"T of L_kl, default {d.temperature}"
    )
    p.add_argument("--w-steps", type=float, default=None, help=f"d (L_step), default {d.steps}")
    p.add_argument(
        "--live-teacher",
        action="store_true",
        help="run the teacher on every (shifted) batch instead of once per unshifted train clip",
    )
    p.set_defaults(func=cmd_distill)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    env: DistEnv | None = None

    def run() -> int:
        nonlocal env
        if args.threads is not None:
            torch.set_num_threads(args.threads)
        env = setup_distributed(args.device)
        return args.func(args, env)

    code = run_command(run, "error", USAGE_ERRORS)
    if env is not None and env.distributed:
        cleanup_distributed(barrier=code == 0)  # after an error other ranks may be gone
    return code


if __name__ == "__main__":
    raise SystemExit(main())
