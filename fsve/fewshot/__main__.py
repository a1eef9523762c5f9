"""``python -m fsve.fewshot CKPT --shots 2 4 6 8 --seeds 0 1 2``: few-shot adaptation (Fig. 4).

The checkpoint (teacher or FSVE) is adapted to the shifted "real" domain (``data/synth-real``,
generated with ``SynthConfig(domain="real")`` at the model's frame size if missing: sparser
spikes, a smaller object, half the motion, line artifacts) from k labelled clips per class of
that domain's train split, and scored by Top-1/Top-5 on its test split. Everything that is
chosen per run (fine-tuning epoch, cache weights) is chosen on the domain's validation split;
the test split is only scored. ``k = 0`` (the checkpoint as it is, zero-shot through the class
prompts ``"a video of an object {class}"``) is the reference. The k clips per class are drawn by
:func:`pick_shots` with a generator seeded by ``(seed, k)``; each ``--seeds`` value is one draw.

``--method`` composes three steps (:data:`METHODS`):

- AdaBN (``adabn``, :func:`adapt_batchnorm`): the running mean/var of every BatchNorm layer of
  the video path (teacher BN, FSVE TDBN; the FSVE's SN attention thresholds are kept) are
  re-estimated on the k x C shot clips, without their labels. Only the shots are used, no other
  clip of the shifted domain, so the method stays strictly k-shot (the unlabelled train split
  would give more data but is not part of a k-shot budget).
- fine-tuning (``tune``, :func:`tune_video_path`): the whole video path (every parameter outside
  the text encoder and ``logit_scale``) is trained in eval mode (the adapted BN statistics stay
  fixed) with cross-entropy of ``scale * cos(video, prompt)`` against the frozen class-prompt
  embeddings, AdamW with a cosine schedule (default 30 epochs at lr 3e-4: val Top-1 was higher
  than with 16 epochs at 2 and 4 shots, equal at 6 and 8); the validation split is scored
  before training and every ``eval_every`` epochs, and the weights with the best validation
  Top-1 are kept (epoch 0, no fine-tuning, when none beats it).
- a training-free cache head (``cache``, :func:`cache_logits`, Tip-Adapter, Zhang et al. 2022):
  ``logits = scale * cos(v, prompts) + alpha * exp(-beta (1 - cos(v, keys))) @ one_hot(labels)``
  with the normalised video embeddings of the shots as keys; ``alpha`` and ``beta`` are chosen
  on the validation split from :data:`ALPHAS` x :data:`BETAS` (``alpha = 0`` included).

``finetune`` is the earlier method, kept for reference: only the last two layers of the video path
(:func:`trainable_layers`) trained for a fixed number of epochs with the teacher's loss
(:class:`fsve.train.loop.StclPromptLoss`), no AdaBN, no validation choice; it did not improve on
zero-shot. The default :data:`DEFAULT_METHOD` had the best validation Top-1 at every k on a
seed-1 teacher (README, "Fig. 4"): AdaBN alone lifts zero-shot most (sparser spikes shift the
activation statistics), fine-tuning the whole video path then adds what the labels teach, and
the cache head adds a little on val (chosen there, so partly selection) and nothing measurable
on test.

Writes into ``--out``: ``fewshot_runs.csv`` (one row per seed and k: test and validation Top-1,
the chosen epoch, alpha and beta), ``fewshot.csv`` (per k: mean ± sample std of Top-1 over the
seeds and each seed's Top-1) and ``fewshot.png`` (mean ± std against k). :func:`check_target`
says whether Top-1 rises with the shots.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from fsve.cli import Parser, check_output, positive_int, run_command
from fsve.fewshot.methods import DEFAULT_METHOD, METHODS, REAL_DATA
from fsve.fewshot.run import run_fewshot
from fsve.fewshot.summary import check_target, plot_fewshot, summarize

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    parser = Parser(
        prog="python -m fsve.fewshot",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("checkpoint", type=Path, help="teacher or FSVE checkpoint")
    parser.add_argument("--shots", type=int, nargs="+", default=[2, 4, 6, 8], help="k per class")
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds of the shot draw"
    )
    parser.add_argument("--method", choices=list(METHODS), default=DEFAULT_METHOD, help="see above")
    parser.add_argument("--data", type=Path, default=REAL_DATA, help="shifted-domain dataset")
    parser.add_argument("--out", type=Path, default=None, help="default runs/fewshot/<ckpt stem>")
    parser.add_argument("--epochs", type=positive_int, default=None, help="default: the method's")
    parser.add_argument("--lr", type=float, default=None, help="default: the method's")
    parser.add_argument("--batch-size", type=positive_int, default=16)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    args = parser.parse_args(argv)
    return run_command(lambda: _run(args), "error", (ValueError, OSError, ImportError))


def _run(args: argparse.Namespace) -> int:
    from fsve.train.history import write_metrics_csv

    out = check_output(args.out or Path("runs/fewshot") / args.checkpoint.stem, (), folder=True)
    if args.lr is not None and not args.lr > 0:
        raise ValueError("--lr must be > 0")
    rows = run_fewshot(
        args.checkpoint,
        args.data,
        args.shots,
        list(dict.fromkeys(args.seeds)),
        args.method,
        args.epochs,
        args.lr,
        args.batch_size,
        args.device,
    )

    out.mkdir(parents=True, exist_ok=True)
    summary = summarize(rows)
    write_metrics_csv(out / "fewshot_runs.csv", rows)
    write_metrics_csv(out / "fewshot.csv", summary)
    plot_fewshot(out / "fewshot.png", summary, f"{args.checkpoint.name}, {args.method}")
    for r in summary:
        print(f"{r['shots']} shots: test top1 {r['top1_mean_pct']:.1f} ± {r['top1_std_pct']:.1f}%"
              f" (val {r['val_top1_mean_pct']:.1f}%)")  # fmt: skip
    print(check_target(summary)[1])
    print(f"wrote {out / 'fewshot.csv'}, {out / 'fewshot_runs.csv'} and {out / 'fewshot.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
