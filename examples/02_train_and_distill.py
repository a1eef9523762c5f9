"""Example 2: train the SPKLIP teacher, distil it into the spiking FSVE, evaluate both.

Teaches the training entry points on the built-in synthetic dataset:

1. the dataset (:func:`fsve.data.synth.generate_dataset`; returns at once if already there);
2. ``python -m fsve.train teacher`` called as a function (:func:`fsve.train.__main__.main`):
   SPKLIP with STCL (Eq. 6) and the ``default`` recipe; the run folder gets ``best.pt``,
   ``last.pt``, ``metrics.csv``, ``curves.png`` and ``test_metrics.json``;
3. ``python -m fsve.train distill``: the FSVE student learns from the frozen teacher
   (``a L_con + b L_kl + c L_emb``); its text encoder is a frozen copy of the teacher's, so
   both embed text identically (checked below);
4. zero-shot Top-1/Top-5 and text-to-video R@k on the test split
   (:func:`fsve.eval.evaluate_checkpoint`, the function behind ``python -m fsve.eval``).

Run: ``.venv/bin/python examples/02_train_and_distill.py``: the default recipe, shortened to
fit five minutes (teacher 8 epochs, FSVE 2) on ``data/synth`` (480 train, 120 val, 120 test
clips at 64x64); timed below. ``--teacher-epochs 12 --fsve-epochs 12`` is the accuracy run of
``benchmarks/accuracy.py`` (about 12 minutes on one core).
``--quick``: 2 train / 1 val / 1 test clips per class in ``--out/data`` and one epoch each,
about 10 s. A stopped run resumes from its ``last.pt``.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path
from typing import Any

import torch

from fsve.checkpoint import load_checkpoint
from fsve.data.synth import SynthConfig, generate_dataset
from fsve.eval import evaluate_checkpoint
from fsve.train.__main__ import main as train_main


def run_step(name: str, argv: list[str], run_dir: Path) -> float:
    """Run one ``fsve.train`` command (resuming an interrupted run); return its seconds."""
    if (run_dir / "last.pt").is_file():
        argv = [*argv, "--resume"]  # continue (or, if finished, just re-evaluate) that run
    t0 = time.perf_counter()
    code = train_main(argv)
    if code:
        raise SystemExit(f"{name}: fsve.train exited with code {code}")
    return time.perf_counter() - t0


def prepare_data(out: Path, data: Path | None, quick: bool) -> Path:
    """Step 1. The dataset folder: a tiny copy under ``out`` (quick) or the built-in one."""
    # 12 action classes of 64x64 spike clips with captions. Quick mode writes a tiny copy next
    # to its outputs; the full run uses (or makes) the built-in dataset. (generate_dataset
    # returns at once when the folder already holds that configuration.)
    if quick:
        data = out / "data"
        config = SynthConfig(train_per_class=2, val_per_class=1, test_per_class=1)
        generate_dataset(data, config, progress=False)
    else:
        data = data or Path("data/synth")
        if not (data / "manifest.csv").is_file():  # never regenerate someone's dataset
            generate_dataset(data, SynthConfig())
    print(f"dataset {data}")
    return data


def shared_text_encoder(teacher_dir: Path, fsve_dir: Path) -> bool:
    """The student's text encoder is the teacher's, frozen: same weights, same text space."""
    t_state = load_checkpoint(teacher_dir / "best.pt", kind="teacher")["state_dict"]
    s_state = load_checkpoint(fsve_dir / "best.pt", kind="fsve")["state_dict"]
    text_keys = [k for k in t_state if k.startswith("text.")]
    shared_text = bool(text_keys) and all(torch.equal(t_state[k], s_state[k]) for k in text_keys)
    print(f"FSVE text encoder identical to the teacher's ({len(text_keys)} tensors): {shared_text}")
    return shared_text


def evaluate(runs: dict[str, Path], data: Path) -> list[dict[str, Any]]:
    """Step 4. Test-split metrics of each run's ``best.pt``, printed as a table."""
    # zero-shot classification through the prompts "a video of an object {class}", and
    # retrieval of each clip from its caption
    rows = []
    for name, run in runs.items():
        row = evaluate_checkpoint(run / "best.pt", data, split="test")
        with open(run / "metrics.csv", newline="") as f:
            epochs = list(csv.DictReader(f))
        rows.append({"model": name, "epochs": len(epochs), **row})
    print()
    print(
        f"{'model':16s} epochs  top1 %  top5 %   R@1 %   R@5 %  R@10 %  (test, {row['samples']}"
        " clips)"
    )
    for r in rows:
        print(
            f"{r['model']:16s} {r['epochs']:6d}  {r['top1_pct']:6.1f}  {r['top5_pct']:6.1f}"
            f"  {r['r1_pct']:6.1f}  {r['r5_pct']:6.1f}  {r['r10_pct']:6.1f}"
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/examples/02_train_and_distill"))
    parser.add_argument("--quick", action="store_true", help="tiny dataset, 1 epoch each")
    parser.add_argument("--data", type=Path, default=None, help="full mode (data/synth)")
    parser.add_argument("--teacher-epochs", type=int, default=None, help="default 8 (quick 1)")
    parser.add_argument("--fsve-epochs", type=int, default=None, help="default 2 (quick 1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    teacher_epochs = args.teacher_epochs or (1 if args.quick else 8)
    fsve_epochs = args.fsve_epochs or (1 if args.quick else 2)
    data = prepare_data(args.out, args.data, args.quick)

    # Flags shared by both training runs: CPU, fixed seed, no progress bars.
    common = ["--data", str(data), "--seed", str(args.seed), "--device", "cpu", "--quiet"]
    common += ["--threads", str(args.threads)]
    teacher_dir, fsve_dir = args.out / "teacher", args.out / "fsve"
    seconds = {}

    # 2. The teacher: SPKLIP (tiny config) trained with the default recipe (AdamW, warmup +
    #    cosine, random shifts). Same as `python -m fsve.train teacher --out ... --epochs N`.
    teacher_argv = ["teacher", "--out", str(teacher_dir), "--epochs", str(teacher_epochs)]
    seconds["teacher"] = run_step("teacher", [*teacher_argv, *common], teacher_dir)

    # 3. Distillation: the FSVE (tiny config) from the teacher's best checkpoint.
    distill_argv = ["distill", "--teacher", str(teacher_dir / "best.pt"), "--out", str(fsve_dir)]
    distill_argv += ["--epochs", str(fsve_epochs)]
    seconds["distill"] = run_step("distill", [*distill_argv, *common], fsve_dir)
    shared_text = shared_text_encoder(teacher_dir, fsve_dir)

    t0 = time.perf_counter()
    rows = evaluate({"SPKLIP teacher": teacher_dir, "FSVE distilled": fsve_dir}, data)
    seconds["eval"] = time.perf_counter() - t0
    seconds["total"] = time.perf_counter() - started
    results = {"data": str(data), "shared_text": shared_text, "rows": rows, "seconds": seconds}
    (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print("seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in seconds.items()))
    print(f"checkpoints in {teacher_dir} and {fsve_dir}; table in {args.out / 'results.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
