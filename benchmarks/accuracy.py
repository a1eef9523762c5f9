"""Accuracy targets of issue 4 on the built-in dataset: teacher, distilled FSVE, FSVE alone.

Usage: ``python benchmarks/accuracy.py [--data data/synth] [--out runs/accuracy] [--seeds 0]
[--teacher-epochs 12] [--fsve-epochs 36] [--threads 1] [--reports reports/accuracy]``.

For each seed it trains (or resumes, or reuses a finished run under ``--out/seed<N>/``):

1. the SPKLIP teacher, default recipe (``python -m fsve.train teacher``);
2. the FSVE distilled from that teacher (``python -m fsve.train distill --teacher``);
3. the same FSVE trained without the teacher (``--no-teacher``, the teacher's own loss);

then evaluates each ``best.pt`` on the test split (zero-shot Top-1/Top-5 through the class
prompts, text-to-video R@1/5/10 with the per-sample captions) and writes ``accuracy.csv`` (one
row per model and seed) and ``accuracy.md`` (the table, the targets and the ratios) to
``--reports``. Targets: teacher Top-1 >= 90%; distilled FSVE Top-1 >= 95% of the teacher's.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

TEACHER_TARGET = 90.0  # % Top-1
FSVE_RATIO_TARGET = 0.95  # distilled FSVE Top-1 / teacher Top-1
METRICS = ("top1_pct", "top5_pct", "r1_pct", "r5_pct", "r10_pct")


def _train(argv: list[str]) -> None:
    from fsve.train.__main__ import main as train_main

    code = train_main(argv)
    if code:
        raise SystemExit(f"accuracy: `python -m fsve.train {' '.join(argv)}` exited with {code}")


def _run(kind: list[str], run: Path, common: list[str]) -> None:
    """Train one model unless ``run/best.pt`` and ``test_metrics.json`` exist."""
    if (run / "test_metrics.json").is_file():
        return
    resume = ["--resume"] if (run / "last.pt").is_file() else []
    _train([*kind, "--out", str(run), *common, *resume])


def _train_seconds(run: Path) -> float:
    """Training wall time of a run: the sum of its epochs' ``seconds`` in ``metrics.csv``."""
    with open(run / "metrics.csv", newline="") as f:
        return sum(float(row["seconds"]) for row in csv.DictReader(f))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data", type=Path, default=Path("data/synth"))
    p.add_argument("--out", type=Path, default=Path("runs/accuracy"))
    p.add_argument("--reports", type=Path, default=Path("reports/accuracy"))
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--teacher-epochs", type=int, default=12)
    p.add_argument("--fsve-epochs", type=int, default=36)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)

    from fsve.eval import evaluate_checkpoint
    from fsve.io import atomic_write_text, csv_text
    from fsve.reports import commit

    rows = []
    for seed in args.seeds:
        base = args.out / f"seed{seed}"
        common = ["--data", str(args.data), "--seed", str(seed), "--quiet"]
        common += ["--threads", str(args.threads), "--device", "cpu"]
        teacher = base / "teacher"
        distill = ["distill", "--teacher", str(teacher / "best.pt")]
        runs = {
            "SPKLIP teacher": (["teacher", "--epochs", str(args.teacher_epochs)], teacher),
            "FSVE distilled": ([*distill, "--epochs", str(args.fsve_epochs)], base / "fsve"),
            "FSVE alone": (
                ["distill", "--no-teacher", "--epochs", str(args.fsve_epochs)],
                base / "fsve_alone",
            ),
        }
        for name, (kind, run) in runs.items():
            _run(kind, run, common)
            metrics = evaluate_checkpoint(run / "best.pt", args.data, split="test")
            row = {"model": name, "seed": seed, "checkpoint": str(run / "best.pt")}
            row.update({k: round(float(metrics[k]), 2) for k in METRICS})
            row["train_seconds"] = round(_train_seconds(run), 1)
            rows.append(row)
            print(json.dumps(row), flush=True)

    atomic_write_text(args.reports / "accuracy.csv", csv_text(rows))

    def mean(name: str, key: str) -> float:
        vals = [r[key] for r in rows if r["model"] == name]
        return sum(vals) / len(vals)

    teacher_top1 = mean("SPKLIP teacher", "top1_pct")
    fsve_top1 = mean("FSVE distilled", "top1_pct")
    ratio = fsve_top1 / teacher_top1 if teacher_top1 else float("nan")
    lines = [
        "# Accuracy on the built-in dataset (test split, 120 clips, 12 classes)",
        "",
        f"Command: `python benchmarks/accuracy.py --seeds {' '.join(map(str, args.seeds))}"
        f" --teacher-epochs {args.teacher_epochs} --fsve-epochs {args.fsve_epochs}`;"
        f" data `{args.data}`; commit {commit(outputs=args.reports)}.",
        "",
        "| model | seed | Top-1 % | Top-5 % | R@1 % | R@5 % | R@10 % | train s |",
        "|---|---|---|---|---|---|---|---|",
        *[
            f"| {r['model']} | {r['seed']} | {r['top1_pct']:.1f} | {r['top5_pct']:.1f}"
            f" | {r['r1_pct']:.1f} | {r['r5_pct']:.1f} | {r['r10_pct']:.1f}"
            f" | {r['train_seconds']:.0f} |"
            for r in rows
        ],
        "",
        f"- Teacher Top-1 {teacher_top1:.1f}% (target >= {TEACHER_TARGET:.0f}%):"
        f" {'met' if teacher_top1 >= TEACHER_TARGET else 'missed'}.",
        f"- Distilled FSVE Top-1 {fsve_top1:.1f}% = {100 * ratio:.1f}% of the teacher's"
        f" (target >= {100 * FSVE_RATIO_TARGET:.0f}%):"
        f" {'met' if ratio >= FSVE_RATIO_TARGET else 'missed'}.",
        f"- FSVE without the teacher: {mean('FSVE alone', 'top1_pct'):.1f}% Top-1.",
        "- train s: the sum of the epochs' wall times in each run's `metrics.csv` (one thread,"
        " shared 2-core machine).",
        "",
    ]
    atomic_write_text(args.reports / "accuracy.md", "\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
