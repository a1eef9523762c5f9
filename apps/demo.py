"""``make demo``: the main job on the built-in dataset, end to end.

1. Generate the synthetic dataset (skipped if already there with the same settings); write TFI
   and TFP reconstructions of one test sample per class and a dataset summary.
2. Train the SPKLIP teacher, then distil the FSVE from it (each resumes from its ``last.pt``,
   so a killed demo continues, and a finished one is not retrained).
3. Evaluate both on the test split (zero-shot Top-1/Top-5, retrieval R@1/5/10).
4. Profile the FSVE's energy against its ANN twin and against the teacher
   (``reports/energy/``), export it to NIR with its partition report and map it onto Loihi 2
   cores (``reports/export/``), and compare float with Loihi fixed point (``reports/loihi/``).

Checkpoints go to ``--out`` (default ``runs/demo``): ``teacher/best.pt`` and ``fsve/best.pt``.
The demo's epochs fit a 15-minute budget on 2 cores (both used: ``--procs 2`` trains under
DDP), shorter than the accuracy recipe of ``benchmarks/accuracy.py`` (see the README).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from fsve.io import atomic_write_text
from fsve.train.runfolder import earlier_run_files


def contact_sheet(images: list[np.ndarray], columns: int) -> np.ndarray:
    """Tile equally sized uint8 images into one grid with 2-pixel gaps."""
    h, w = images[0].shape
    rows = -(-len(images) // columns)
    sheet = np.full((rows * (h + 2) - 2, columns * (w + 2) - 2), 255, dtype=np.uint8)
    for i, image in enumerate(images):
        r, c = divmod(i, columns)
        sheet[r * (h + 2) : r * (h + 2) + h, c * (w + 2) : c * (w + 2) + w] = image
    return sheet


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m apps.demo", description=__doc__)
    parser.add_argument("--data", type=Path, default=Path("data/synth"), help="dataset folder")
    parser.add_argument("--out", type=Path, default=Path("runs/demo"), help="output folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train", type=int, default=40, help="train samples per class")
    parser.add_argument("--val", type=int, default=10, help="validation samples per class")
    parser.add_argument("--test", type=int, default=10, help="test samples per class")
    parser.add_argument("--teacher-epochs", type=int, default=12)
    parser.add_argument("--fsve-epochs", type=int, default=30)
    parser.add_argument(
        "--started-at",
        type=float,
        default=None,
        help="Unix time the whole job started (make demo passes it, to count the setup)",
    )
    parser.add_argument("--reports", type=Path, default=Path("reports"), help="report folder")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch CPU threads (1 is robust on a busy CPU)"
    )
    parser.add_argument(
        "--procs",
        type=int,
        default=min(2, os.cpu_count() or 1),
        help="training processes (DDP under torchrun; default: 2 where there are 2+ cores)",
    )
    parser.add_argument(
        "--data-only", action="store_true", help="stop after the dataset and reconstructions"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.procs < 1 or args.threads < 1:
        parser.error("--procs and --threads must be >= 1")
    started = time.perf_counter()
    prepare_data(args, started)
    if args.data_only:
        return 0
    return run_models(args, started)


# ---- step 1: the dataset, its reconstructions and summary ----


def prepare_data(args: argparse.Namespace, started: float) -> None:
    """Generate the dataset (skipped when present), write ``tfi.png``, ``tfp.png`` and summaries."""
    from fsve.data.manifest import read_manifest
    from fsve.data.synth import SynthConfig, generate_dataset

    config = SynthConfig(
        seed=args.seed,
        train_per_class=args.train,
        val_per_class=args.val,
        test_per_class=args.test,
    )
    generate_dataset(args.data, config, progress=True)
    generation_s = time.perf_counter() - started
    table = read_manifest(args.data)
    firsts = table[table["split"] == "test"].drop_duplicates("label").sort_values("label")
    rates = write_reconstructions(firsts, args.out)
    splits = table.groupby("split").size().to_dict()
    summary = {
        "dataset": str(args.data),
        "classes": [str(name) for name in firsts["class_name"]],
        "samples": {split: int(n) for split, n in splits.items()},
        "size": [int(table["height"].iloc[0]), int(table["width"].iloc[0])],
        "frames": int(table["frames"].iloc[0]),
        "mean_firing_rate_test": float(np.mean(rates)),
        "seconds": round(time.perf_counter() - started, 2),
        "generation_seconds": round(generation_s, 2),
    }
    atomic_write_text(args.out / "summary.json", json.dumps(summary, indent=2) + "\n")
    lines = data_summary_lines(args.data, len(table), summary)
    atomic_write_text(args.out / "summary.md", "\n".join(lines))
    print("\n".join(lines))
    print(f"wrote {args.out}/tfi.png, tfp.png, summary.md, summary.json in {summary['seconds']} s")


def write_reconstructions(firsts: Any, out: Path) -> list[float]:
    """TFI at the clip centre and TFP over +-20 frames of each row; the rows' firing rates."""
    from fsve.data.__main__ import save_png
    from fsve.data.dat import read_dat
    from fsve.data.recon import tfi, tfp

    tfi_images, tfp_images, rates = [], [], []
    for row in firsts.itertuples():
        spikes = read_dat(row.file, row.height, row.width)
        centre = row.frames // 2
        tfi_images.append(tfi(spikes, centre))
        tfp_images.append(tfp(spikes, centre, 20))
        rates.append(float(spikes.mean()))
    columns = min(6, len(tfi_images))
    save_png(out / "tfi.png", contact_sheet(tfi_images, columns))
    save_png(out / "tfp.png", contact_sheet(tfp_images, columns))
    return rates


def data_summary_lines(data: Path, samples: int, summary: dict[str, Any]) -> list[str]:
    """``summary.md`` of the dataset step, line by line."""
    return [
        "# fsve demo",
        "",
        f"Dataset `{data}`: {samples} samples, {len(summary['classes'])} classes,"
        f" {summary['size'][0]}x{summary['size'][1]} pixels, {summary['frames']} spike frames.",
        "",
        "| split | samples |",
        "|---|---|",
        *[f"| {split} | {n} |" for split, n in summary["samples"].items()],
        "",
        f"Mean firing rate (one test sample per class): {summary['mean_firing_rate_test']:.4f}"
        " spikes/pixel/frame.",
        "",
        "TFI reconstructions at the clip centre, one per class, in label order:"
        " `tfi.png`; TFP (+-20 frames): `tfp.png`.",
        "",
        "Classes: " + ", ".join(summary["classes"]),
        "",
    ]


# ---- steps 2-4: one function per pipeline step ----


def _resume_flag(run: Path) -> list[str]:
    """``--resume`` from ``last.pt``; ``--overwrite`` when only files of an attempt killed before
    its first ``last.pt`` are there (the demo's own run folder: nothing to keep)."""
    if (run / "last.pt").is_file():
        return ["--resume"]
    return ["--overwrite"] if earlier_run_files(run) else []


def _step(name: str, code: int) -> None:
    if code:
        raise SystemExit(f"demo: step {name!r} failed with exit code {code}")


def _train(args: argparse.Namespace, argv: list[str]) -> int:
    """``python -m fsve.train ARGV``: in this process, or under ``torchrun`` with ``--procs``.

    With 2+ processes each trains on its share of every batch (DDP, gloo, one thread each):
    on a 2-core machine about 1.8x faster than one process. The numbers differ from a
    1-process run (BatchNorm statistics are per process), but repeat for the same count.
    """
    if args.procs == 1:
        from fsve.train.__main__ import main as train_main

        return train_main(argv)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    cmd += ["--nproc_per_node", str(args.procs), "-m", "fsve.train", *argv]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    return subprocess.run(cmd, env=env).returncode


def _common(args: argparse.Namespace) -> list[str]:
    """Options every training command of the demo takes."""
    return ["--data", str(args.data), "--seed", str(args.seed), "--quiet",
            "--threads", str(args.threads), "--device", "cpu"]  # fmt: skip


def train_teacher(args: argparse.Namespace, out: Path) -> None:
    """Train (or resume) the SPKLIP teacher into ``out``."""
    argv = ["teacher", "--out", str(out), "--epochs", str(args.teacher_epochs)]
    _step("teacher", _train(args, [*argv, *_common(args), *_resume_flag(out)]))


def distill_fsve(args: argparse.Namespace, teacher: Path, out: Path) -> None:
    """Distil (or resume) the FSVE from the ``teacher`` checkpoint into ``out``."""
    argv = ["distill", "--teacher", str(teacher), "--out", str(out)]
    argv += ["--epochs", str(args.fsve_epochs)]
    _step("distill", _train(args, [*argv, *_common(args), *_resume_flag(out)]))


def evaluate_run(run: Path, data: Path, out: Path) -> dict[str, Any]:
    """Test-split metrics of ``run/best.pt`` (:func:`fsve.eval.evaluate_checkpoint`), written
    to ``out`` (JSON) and returned."""
    from fsve.eval.evaluate import evaluate_checkpoint, format_row, write_row

    with _failing(f"eval {run.name}"):
        row = evaluate_checkpoint(run / "best.pt", data)
        write_row(out, row)
    print(format_row(row))
    print(f"wrote {out}")
    return row


def profile_energy(name: str, checkpoint: Path, data: Path, out: Path, baseline: str = "twin"):
    """Table 6 files of ``checkpoint`` in ``out`` (:func:`energy.profile.profile_checkpoint`)."""
    from energy.profile import profile_checkpoint

    with _failing(name):
        report = profile_checkpoint(checkpoint, data=data, baseline=baseline, progress=False)
        paths = report.save(out)
    print(f"{checkpoint} ({report.checkpoint_kind}), {data} split test:")
    print(report.table())
    print(f"wrote {', '.join(str(p) for p in paths.values())}")


def export_nir(checkpoint: Path, graph: Path, report: Path, data: Path) -> None:
    """NIR graph, host program and partition report (:func:`export.nir.export_checkpoint`)."""
    from export.nir import export_checkpoint

    with _failing("export"):
        res = export_checkpoint(checkpoint, graph, data=data, samples=24, report=report)
    print(res.text, end="")
    print(f"wrote {res.nir_path}, {res.host_path}, {res.report['text']} (+ CSV tables)")


def map_onto_loihi(checkpoint: Path, data: Path, out: Path, note: str) -> None:
    """Cores, synapses and traffic per layer on Loihi 2 (:func:`export.mapping.map_source`)."""
    from export.mapping import map_source
    from export.mapping.report import write_report

    with _failing("mapping"):
        result, header = map_source(checkpoint, "loihi2", data=data, note=note)
        paths = write_report(result, out, header)
    print(paths["text"].read_text(), end="")
    print(f"wrote {paths['csv']} and {paths['text']}")


def compare_fixed_point(checkpoint: Path, data: Path, out: Path) -> None:
    """Float against Loihi fixed point, test split (:func:`export.loihi.compare_fixed_point`)."""
    from export.loihi import compare_fixed_point as compare
    from export.loihi.report import REPORT_FILES, report_text, write_report

    with _failing("loihi"):
        result = compare(checkpoint, data=data)
        write_report(result, out)
    print(report_text(result), end="")
    print(f"wrote {out}/{', '.join(REPORT_FILES)}")


@contextmanager
def _failing(step: str) -> Iterator[None]:
    """Bad input in a step ends the demo with one line naming the step (exit code 1)."""
    try:
        yield
    except (ValueError, OSError, KeyError) as err:
        raise SystemExit(f"demo: step {step!r} failed: {err}") from None


@contextmanager
def _timed(seconds: dict[str, float], key: str) -> Iterator[None]:
    t0 = time.perf_counter()
    yield
    seconds[key] = time.perf_counter() - t0


def run_models(args: argparse.Namespace, started: float) -> int:
    """Teacher -> distilled FSVE -> evaluation -> energy -> NIR export; prints a short table."""
    teacher_dir, fsve_dir = args.out / "teacher", args.out / "fsve"
    seconds: dict[str, float] = {}
    with _timed(seconds, "teacher"):
        train_teacher(args, teacher_dir)
    with _timed(seconds, "distill"):
        distill_fsve(args, teacher_dir / "best.pt", fsve_dir)
    with _timed(seconds, "eval"):
        rows = {
            name: evaluate_run(run, args.data, args.out / f"eval_{run.name}.json")
            for name, run in (("SPKLIP teacher", teacher_dir), ("FSVE (distilled)", fsve_dir))
        }
    fsve_ckpt = fsve_dir / "best.pt"
    energy_twin = args.reports / "energy" / "demo-fsve"
    energy_teacher = args.reports / "energy" / "demo-fsve-vs-teacher"
    with _timed(seconds, "energy"):
        profile_energy("energy", fsve_ckpt, args.data, energy_twin)
        baseline = f"teacher:{teacher_dir / 'best.pt'}"
        profile_energy("energy vs teacher", fsve_ckpt, args.data, energy_teacher, baseline=baseline)
    with _timed(seconds, "export"):
        report = args.reports / "export" / "partition.txt"
        export_nir(fsve_ckpt, args.out / "export" / "fsve.nir", report, args.data)
        note = f"demo FSVE {fsve_ckpt} (make demo, seed {args.seed})"
        map_onto_loihi(fsve_ckpt, args.data, args.reports / "export", note)
        compare_fixed_point(fsve_ckpt, args.data, args.reports / "loihi/demo-fsve")
    seconds["total"] = time.perf_counter() - started
    report_lines = results_report(args, rows, energy_twin, energy_teacher, seconds)
    atomic_write_text(args.reports / "demo.md", "\n".join(report_lines))
    print("\n".join(report_lines))
    return 0


def results_report(
    args: argparse.Namespace,
    rows: dict[str, dict[str, Any]],
    energy_twin: Path,
    energy_teacher: Path,
    seconds: dict[str, float],
) -> list[str]:
    """``reports/demo.md``, line by line: the metrics table, both energy tables, the timings."""
    table = [
        "| model | Top-1 % | Top-5 % | R@1 % | R@5 % | R@10 % |",
        "|---|---|---|---|---|---|",
    ]
    for name, row in rows.items():
        table.append(
            f"| {name} | {_pct(row, 'top1')} | {_pct(row, 'top5')} | {_pct(row, 'r1')}"
            f" | {_pct(row, 'r5')} | {_pct(row, 'r10')} |"
        )
    wall = []
    if args.started_at is not None:
        wall = [
            "",
            f"Wall time since `make demo` started, setup of `.venv` included:"
            f" {time.time() - args.started_at:.0f} s ({os.cpu_count()} CPUs).",
        ]
    return [
        "# fsve demo: results",
        "",
        f"Built-in dataset `{args.data}`, seed {args.seed}; teacher {args.teacher_epochs} epochs,"
        f" FSVE distilled {args.fsve_epochs} epochs ({args.procs} training process(es),"
        f" {args.threads} thread(s) each; the demo's budget, not the accuracy recipe).",
        "Command: `make demo`.",
        "",
        *table,
        "",
        "Energy of the FSVE (paper constants, `simple` convention) against its ANN twin:",
        "",
        "```",
        (energy_twin / "table.txt").read_text().rstrip(),
        "```",
        "",
        "and against the SPKLIP teacher:",
        "",
        "```",
        (energy_teacher / "table.txt").read_text().rstrip(),
        "```",
        "",
        "NIR export partition report: `export/partition.txt`; Loihi 2 mapping:"
        " `export/mapping.txt`; float vs Loihi fixed point: `loihi/demo-fsve/`.",
        "",
        "Seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in seconds.items()),
        *wall,
        "",
    ]


def _pct(row: dict, key: str) -> str:
    """Format a metric from an eval row, whichever of ``key`` / ``key_pct`` it uses."""
    for name in (f"{key}_pct", key):
        if name in row:
            value = float(row[name])
            return f"{value:.1f}" if name.endswith("_pct") or value > 1 else f"{100 * value:.1f}"
    return "n/a"


if __name__ == "__main__":
    sys.exit(main())
