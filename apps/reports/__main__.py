"""``python -m apps.reports`` (``make reports``): every table and figure our data allow.

Trains what is missing (resuming interrupted runs, two runs at a time by default, one CPU
thread each), then writes into ``--out`` (default ``reports/``) ``summary.md`` and the CSV/PNG
behind each item:

- ``table1/``: Top-1/Top-5 of the teacher, the distilled FSVE, the FSVE trained alone, a
  half-width FSVE and two baselines (Table 1); ``table5/``: text-to-video R@1/5/10 (Table 5);
- ``ablation/``: Tables 4, 2 and 3 (MTF / MTF+SA / full, channel slicing, 3/5/7 sub-blocks),
  mean ± std over ``--seeds``;
- ``fig4/``: few-shot Top-1 for 2/4/6/8 shots on the shifted domain, mean ± std over three
  shot draws (Fig. 4);
- ``table6/``: the energy table with the paper's constants next to the paper's figures, the
  other cost presets, and a paper-scale (240x320) estimate;
- ``tradeoff/``: Top-1 against energy per inference for FSVE variants, the teacher for reference;
- ``fig5/``: centred cosine correlation of the HSFE's block features for two clips (Fig. 5).

Runs live under ``--runs`` (default ``runs/reports``); a finished run is never retrained, so a
second call only rewrites the tables. With one thread per run and a fixed seed, training is
deterministic on a given CPU: the committed ``reports/`` are what this command writes for the
default seed and settings.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from apps.reports import commit, tables
from apps.reports.runs import ABLATIONS, Plan, run_jobs
from fsve.io import atomic_write_text, csv_text


def describe_data(root: Path) -> str:
    """One sentence on the test split: clips, classes, frame size and clip length."""
    from fsve.data.manifest import read_manifest

    table = read_manifest(root)
    test = table[table["split"] == "test"]
    sizes = sorted({f"{h}x{w}" for h, w in zip(test["height"], test["width"], strict=True)})
    frames = sorted({int(n) for n in test["frames"]})
    return (
        f"Test split: {len(test)} clips, {test['label'].nunique()} classes,"
        f" {', '.join(sizes)} pixels, {', '.join(map(str, frames))} frames per clip."
    )


def build_parser() -> argparse.ArgumentParser:
    from fsve.fewshot import DEFAULT_METHOD, METHODS

    p = argparse.ArgumentParser(
        prog="python -m apps.reports",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--data", type=Path, default=Path("data/synth"), help="dataset folder")
    p.add_argument("--real-data", type=Path, default=Path("data/synth-real"),
                   help="shifted-domain dataset for Fig. 4 (generated if missing)")  # fmt: skip
    p.add_argument("--runs", type=Path, default=Path("runs/reports"), help="training runs")
    p.add_argument("--out", type=Path, default=Path("reports"), help="report folder")
    p.add_argument("--seed", type=int, default=0, help="seed of the single-seed tables")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="ablation seeds")
    p.add_argument("--shots", type=int, nargs="+", default=[2, 4, 6, 8], help="Fig. 4 shots")
    p.add_argument("--fewshot-seeds", type=int, nargs="+", default=[0, 1, 2],
                   help="Fig. 4 shot draws (mean ± std)")  # fmt: skip
    p.add_argument("--fewshot-method", choices=list(METHODS), default=DEFAULT_METHOD,
                   help="Fig. 4 adaptation (python -m fsve.fewshot --method)")  # fmt: skip
    p.add_argument("--workers", type=int, default=2, help="training runs at a time")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                   help="where the runs train (cuda is not bit-reproducible)")  # fmt: skip
    p.add_argument("--teacher-epochs", type=int, default=12)
    p.add_argument("--fsve-epochs", type=int, default=36)
    p.add_argument("--ablation-epochs", type=int, default=12)
    p.add_argument("--energy-samples", type=int, default=None,
                   help="test clips profiled per energy figure (default: all)")  # fmt: skip
    p.add_argument("--paper-samples", type=int, default=2,
                   help="clips profiled for the paper-scale estimate")  # fmt: skip
    p.add_argument("--no-paper-scale", action="store_true",
                   help="skip the paper-scale (240x320) energy estimate")  # fmt: skip
    p.add_argument("--teacher-config", default=None,
                   help="teacher preset or JSON file (default: tiny)")  # fmt: skip
    p.add_argument("--fsve-config", default=None,
                   help="FSVE preset or JSON file (default: tiny)")  # fmt: skip
    p.add_argument("--no-train", action="store_true",
                   help="write tables from finished runs only")  # fmt: skip
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except (ValueError, FileNotFoundError, RuntimeError) as err:
        print(f"python -m apps.reports: error: {err}", file=sys.stderr)
        return 2


def run(args: argparse.Namespace) -> int:
    """Train what is missing, then write ``summary.md`` and every table and figure."""
    check_args(args)
    progress = not args.no_progress
    started = time.perf_counter()
    plan = plan_of(args)
    if not args.no_train:
        train_missing(plan, args.workers, progress)
    train_s = time.perf_counter() - started
    import torch

    torch.set_num_threads(1)  # the evaluations below repeat bit for bit, as the training runs

    out = args.out
    sections = header_section(plan, out)
    sections += table1_sections(plan, out)
    sections += ablation_sections(plan, out)
    sections += fewshot_sections(plan, out)
    sections += energy_sections(args, plan, out, progress)
    text = "\n".join(sections).rstrip() + "\n"
    atomic_write_text(out / "summary.md", text)
    print(text)
    total_s = time.perf_counter() - started
    print(f"wrote {out / 'summary.md'}; seconds: training {train_s:.0f}, total {total_s:.0f}")
    return 0


def check_args(args: argparse.Namespace) -> None:
    """Raise ``ValueError`` naming the first option below its minimum."""
    if min(args.shots) < 1:
        raise ValueError("--shots must be >= 1")
    for name in ("workers", "teacher_epochs", "fsve_epochs", "ablation_epochs", "paper_samples"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1")


def plan_of(args: argparse.Namespace) -> Plan:
    """The runs the tables need, from the command line."""
    return Plan(
        data=args.data,
        runs=args.runs,
        seeds=tuple(dict.fromkeys(args.seeds)),
        seed=args.seed,
        teacher_epochs=args.teacher_epochs,
        fsve_epochs=args.fsve_epochs,
        ablation_epochs=args.ablation_epochs,
        real_data=args.real_data,
        shots=tuple(args.shots),
        fewshot_seeds=tuple(dict.fromkeys(args.fewshot_seeds)),
        fewshot_method=args.fewshot_method,
        teacher_config=args.teacher_config,
        fsve_config=args.fsve_config,
        device=args.device,
    )


def train_missing(plan: Plan, workers: int, progress: bool) -> None:
    """Generate the built-in dataset if absent, then train or resume every unfinished run."""
    if not (plan.data / "manifest.csv").is_file():  # never overwrite a user's dataset
        from fsve.data.synth import SynthConfig, generate_dataset

        generate_dataset(plan.data, SynthConfig(), progress=progress)
    run_jobs(plan.jobs(), workers=workers, progress=progress)


def header_section(plan: Plan, out: Path) -> list[str]:
    """The title and the paragraph on data, models and reproducibility."""
    code = commit(outputs=out)
    cmd = "`make reports` (`python -m apps.reports`)"
    where = f"data `{plan.data}`, runs `{plan.runs}`, commit {code}"
    return [
        "# fsve reports: the paper's tables and figures on the built-in dataset",
        "",
        f"Written by {cmd}; {where}. {describe_data(plan.data)} Models: teacher config"
        f" `{plan.teacher_config or 'tiny'}`, FSVE config `{plan.fsve_config or 'tiny'}`; each"
        " model's `best.pt` is chosen on the validation split and scored on the test split."
        " Training: one CPU thread per run, so the numbers repeat exactly on the same CPU type;"
        " see the README for what may differ elsewhere.",
        "",
    ]


def table1_sections(plan: Plan, out: Path) -> list[str]:
    """Tables 1 and 5 (``table1/table1.csv``)."""
    rows = tables.table1_rows(plan)
    (out / "table1").mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "table1" / "table1.csv", csv_text(rows))
    return [
        "## Table 1 analog: zero-shot classification",
        "",
        f"Seed {plan.seed}; teacher and baselines {plan.teacher_epochs} epochs, FSVEs"
        f" {plan.fsve_epochs} epochs (`python -m fsve.train`, default recipes). The baselines"
        " replace SPKLIP's video encoder and keep its text tower and loss. CSV:"
        " `table1/table1.csv`.",
        "",
        tables.table1_markdown(rows),
        "",
        "## Table 5 analog: text-to-video retrieval",
        "",
        f"Seed {plan.seed}; queries are the test split's per-sample captions (120 queries"
        " over 120 clips; many captions describe the same action, so R@1 is bounded by how"
        " distinguishable the captions are). CSV: `table1/table1.csv`.",
        "",
        tables.table5_markdown(rows),
        "",
    ]


def ablation_sections(plan: Plan, out: Path) -> list[str]:
    """Tables 4, 2 and 3 (``ablation/``)."""
    abl = tables.ablation_rows(plan)
    (out / "ablation").mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "ablation" / "runs.csv", csv_text(abl))
    seeds = ", ".join(map(str, plan.seeds))
    sections = [
        "## Ablations: Tables 4, 2 and 3",
        "",
        f"SPKLIP teacher variants, seeds {seeds}; {plan.ablation_epochs} epochs each, default"
        " recipe (the full model at the default seed is the Table 1 teacher when the epochs"
        " match); mean ± sample std of test Top-1. The 7-block row spaces its blocks 31 frames"
        " apart instead of 45, as 7 blocks 45 apart need 331 frames and our clips have 250. Per-run"
        " CSV: `ablation/runs.csv`; per table: `ablation/table4.csv`, `table2.csv`,"
        " `table3.csv`. Variants: "
        + "; ".join(f"`{k}` {v or '(defaults)'}" for k, v in ABLATIONS.items())
        + ".",
        "",
    ]
    for name, title, table in tables.ABLATION_TABLES:
        atomic_write_text(out / "ablation" / f"{name}.csv", tables.ablation_csv(abl, table))
        sections += [tables.ablation_markdown(abl, title, table), ""]
    return sections


def fewshot_sections(plan: Plan, out: Path) -> list[str]:
    """Fig. 4 (``fig4/``)."""
    return [
        "## Fig. 4 analog: few-shot adaptation to the shifted domain",
        "",
        f"`python -m fsve.fewshot {' '.join(plan.fewshot_argv())}`; the shifted domain is the"
        " generator's `real` domain (sparser spikes, a smaller object, half the motion, line"
        " artifacts). The method sees k labelled clips per class of that domain's train split;"
        " what it chooses (fine-tuning epoch, cache weights) is chosen on the domain's"
        " validation split, and the test split is only scored.",
        "",
        tables.fewshot_section(plan, out / "fig4"),
        "",
    ]


def energy_sections(args: argparse.Namespace, plan: Plan, out: Path, progress: bool) -> list[str]:
    """Table 6, the paper-scale estimate, the trade-off plot and Fig. 5."""
    from apps.reports.energy import energy_tables
    from apps.reports.figures import fig5_correlation
    from apps.reports.paper_scale import paper_scale_estimate
    from apps.reports.tradeoff import tradeoff, tradeoff_markdown

    base = plan.runs / f"seed{plan.seed}"
    fsve, teacher = base / "fsve" / "best.pt", plan.teacher_run / "best.pt"
    table6 = energy_tables(
        fsve,
        teacher,
        plan.data,
        out / "table6",
        samples=args.energy_samples,
        progress=progress,
        md_dir=out,
    )
    paper_scale = "Skipped (`--no-paper-scale`)."
    if not args.no_paper_scale:
        paper_scale = paper_scale_estimate(
            out / "table6" / "paper-scale",
            plan.runs / "data-paper",
            samples=args.paper_samples,
            seed=plan.seed,
            progress=progress,
            md_dir=out,
        )
    points = [
        ("SPKLIP teacher", teacher, [None]),
        ("FSVE distilled", fsve, [1, 2, 3, 4, 5]),
        ("FSVE half width, distilled", base / "fsve_half" / "best.pt", [1, 3, 5]),
        ("FSVE trained alone", base / "fsve_alone" / "best.pt", [5]),
        ("Frame-count CNN baseline", base / "frame_cnn" / "best.pt", [None]),
        ("Spike ViT baseline", base / "vit" / "best.pt", [None]),
    ]
    rows = tradeoff(points, plan.data, out / "tradeoff", energy_samples=args.energy_samples,
                    progress=progress)  # fmt: skip
    fig5 = fig5_correlation(teacher, plan.data, out / "fig5", md_dir=out)
    return [
        "## Table 6 analog: energy per inference",
        "",
        f"`python -m energy.profile {fsve} --baseline teacher:{teacher}` and `--baseline twin`"
        " under each cost preset; CSV: `table6/table6.csv`.",
        "",
        table6.strip(),
        "",
        "### Paper-scale estimate (240x320, `paper` configurations)",
        "",
        paper_scale.strip(),
        "",
        "## Accuracy-energy trade-off",
        "",
        f"Seed {plan.seed}; the distilled FSVEs run for T = K sub-blocks without retraining (see"
        " `apps.reports.tradeoff`); the teacher and the Table 1 baselines are ANNs; paper"
        " constants. CSV: `tradeoff/tradeoff.csv`.",
        "",
        tradeoff_markdown(rows, "tradeoff"),
        "",
        "## Fig. 5 analog: HSFE temporal correlation",
        "",
        fig5.strip(),
        "",
    ]


if __name__ == "__main__":
    raise SystemExit(main())
