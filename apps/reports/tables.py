"""Tables 1-5 and Fig. 4 of ``make reports`` from finished runs: rows, CSV and markdown.

Every number comes from a run folder's ``test_metrics.json`` (the run's ``best.pt``, chosen on
the validation split, scored on the test split) or, for Fig. 4, ``fewshot.csv`` and
``fewshot_runs.csv``. Spreads over seeds are the sample standard deviation (``ddof = 1``).
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from apps.reports import markdown_table, save_png
from apps.reports.runs import Plan
from fsve.data.manifest import read_manifest
from fsve.io import atomic_write_text, csv_text

METRICS = ("top1_pct", "top5_pct", "r1_pct", "r5_pct", "r10_pct")
# Table 1 rows: label -> run folder name under <runs>/seed<N>/
TABLE1 = {
    "SPKLIP teacher (HSFE + STAR-Net)": "teacher",
    "FSVE, distilled from the teacher": "fsve",
    "FSVE, trained alone (same loss)": "fsve_alone",
    "FSVE half width, distilled": "fsve_half",
    "Frame-count CNN baseline": "frame_cnn",
    "Spike ViT baseline (image encoder adapted to spikes)": "vit",
}
# Tables 2-4: (table, title, [(row label, ablation variant)])
ABLATION_TABLES = (
    (
        "table4",
        "Table 4 analog: contribution of MTF, SA and STAR-Net (Top-1 %)",
        [("MTF", "mtf"), ("MTF + SA", "mtf_sa"), ("MTF + SA + STAR-Net (full)", "full")],
    ),
    (
        "table2",
        "Table 2 analog: HSFE channel slicing, Eq. 3 (Top-1 %)",
        [("without channel slicing", "no_slicing"), ("with channel slicing (full)", "full")],
    ),
    (
        "table3",
        "Table 3 analog: number of HSFE sub-blocks (Top-1 %)",
        [("3 sub-blocks", "blocks3"), ("5 sub-blocks (full)", "full"), ("7 sub-blocks", "blocks7")],
    ),
)


def read_metrics(run: Path) -> dict[str, float]:
    """The test metrics of a finished run; a clear error if the run is missing or broken."""
    path = run / "test_metrics.json"
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: missing; the run has not finished") from None
    except ValueError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None
    try:
        return {k: float(data[k]) for k in METRICS} | {"epoch": int(data["epoch"])}
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"{path}: lacks one of {METRICS} or epoch") from None


def epochs_of(run: Path) -> int:
    """Epochs a run trained: the rows of its ``metrics.csv``."""
    lines = (run / "metrics.csv").read_text().splitlines()
    return max(0, len(lines) - 1)


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, 0.0
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))


def _pct(x: float) -> str:
    return f"{x:.1f}"


def table1_rows(plan: Plan) -> list[dict[str, Any]]:
    """Top-1/Top-5 and R@k of the single-seed models (Tables 1 and 5)."""
    base = plan.runs / f"seed{plan.seed}"
    rows = []
    for label, name in TABLE1.items():
        run = base / name
        m = read_metrics(run)
        row = {"model": label, "run": name, "seed": plan.seed, "epochs": epochs_of(run)}
        row.update({k: round(m[k], 2) for k in METRICS})
        row["best_epoch"] = m["epoch"]
        rows.append(row)
    return rows


def table1_markdown(rows: Sequence[Mapping[str, Any]]) -> str:
    body = [[r["model"], str(r["epochs"]), _pct(r["top1_pct"]), _pct(r["top5_pct"])] for r in rows]
    return markdown_table(["model", "epochs", "Top-1 %", "Top-5 %"], body)


def table5_markdown(rows: Sequence[Mapping[str, Any]]) -> str:
    body = [[r["model"], *(_pct(r[k]) for k in ("r1_pct", "r5_pct", "r10_pct"))] for r in rows]
    return markdown_table(["model", "R@1 %", "R@5 %", "R@10 %"], body)


def ablation_rows(plan: Plan) -> list[dict[str, Any]]:
    """One row per ablation variant and seed: Top-1/Top-5 on the test split."""
    from apps.reports.runs import ABLATIONS

    rows = []
    for name, overrides in ABLATIONS.items():
        for seed in plan.seeds:
            m = read_metrics(plan.ablation_run(name, seed))
            rows.append(
                {
                    "variant": name,
                    "overrides": json.dumps(overrides, sort_keys=True),
                    "seed": seed,
                    "top1_pct": round(m["top1_pct"], 2),
                    "top5_pct": round(m["top5_pct"], 2),
                    "best_epoch": m["epoch"],
                }
            )
    return rows


def ablation_markdown(rows: Sequence[Mapping[str, Any]], title: str, table: list) -> str:
    """One ablation table: mean +- std of Top-1 over the seeds, the seeds' own values."""
    body = []
    for label, variant in table:
        vals = [float(r["top1_pct"]) for r in rows if r["variant"] == variant]
        mean, std = mean_std(vals)
        body.append([label, f"{mean:.1f} ± {std:.1f}", ", ".join(_pct(v) for v in vals)])
    header = ["variant", "Top-1 % (mean ± std)", "per seed"]
    return f"**{title}**\n\n" + markdown_table(header, body)


def ablation_csv(rows: Sequence[Mapping[str, Any]], table: list) -> str:
    """Mean/std rows of one ablation table, one per variant."""
    out = []
    for label, variant in table:
        vals = [float(r["top1_pct"]) for r in rows if r["variant"] == variant]
        top5 = [float(r["top5_pct"]) for r in rows if r["variant"] == variant]
        mean, std = mean_std(vals)
        mean5, std5 = mean_std(top5)
        out.append(
            {
                "variant": variant,
                "label": label,
                "seeds": len(vals),
                "top1_mean_pct": round(mean, 2),
                "top1_std_pct": round(std, 2),
                "top5_mean_pct": round(mean5, 2),
                "top5_std_pct": round(std5, 2),
            }
        )
    return csv_text(out)


def fewshot_section(plan: Plan, out: Path) -> str:
    """Fig. 4 analog: Top-1 per k, mean ± std over the shot-draw seeds, and the plot.

    Copies the run's ``fewshot.csv`` (per k) and ``fewshot_runs.csv`` (per seed and k, without
    the wall times, which vary from run to run) into ``out``."""
    from fsve.fewshot import check_target, describe

    src = plan.runs / f"seed{plan.seed}" / "fewshot"
    out.mkdir(parents=True, exist_ok=True)
    summary, runs = _read_csv(src / "fewshot.csv"), _read_csv(src / "fewshot_runs.csv")
    atomic_write_text(out / "fewshot.csv", csv_text(summary))
    atomic_write_text(
        out / "fewshot_runs.csv",
        csv_text([{k: v for k, v in r.items() if k != "seconds"} for r in runs]),
    )
    classes = len(read_manifest(plan.real_data)["label"].unique())
    plot_fewshot(out / "fewshot.png", summary, runs, classes=classes)
    methods = sorted({r["method"] for r in summary if int(r["shots"]) > 0})
    seeds = sorted({int(r["seed"]) for r in runs})
    cells = []
    for r in summary:
        mean, std = float(r["top1_mean_pct"]), float(r["top1_std_pct"])
        per_seed = ", ".join(f"{float(r[f'top1_seed{s}_pct']):.1f}" for s in seeds)
        cells.append([r["shots"], f"{mean:.1f} ± {std:.1f}", per_seed,
                      f"{float(r['val_top1_mean_pct']):.1f}"])  # fmt: skip
    account = check_target(summary)[1]
    how = "; ".join(f"`{m}`: {describe(m)}" for m in methods)
    return (
        f'Method {how}. Test Top-1 on the shifted ("real") domain, mean ± sample std over the'
        f" shot draws (seeds {', '.join(map(str, seeds))}); 0 shots is the checkpoint zero-shot."
        f" CSV: `{out.name}/fewshot.csv` (per k), `{out.name}/fewshot_runs.csv` (per seed, with"
        " what was chosen on the validation split).\n\n"
        + markdown_table(["shots", "test Top-1 %", "per seed", "val Top-1 %"], cells)
        + f"\n\nTarget (Top-1 rises with shots): {account}.\n\n"
        f"![few-shot]({out.name}/fewshot.png)"
    )


def _read_csv(path: Path) -> list[dict[str, str]]:
    try:
        with open(path, newline="") as f:
            return list(csv.DictReader(f))
    except FileNotFoundError:
        raise FileNotFoundError(
            f"{path}: missing; the few-shot run has not finished (or predates --seeds)"
        ) from None


# Fig. 4 of the paper: Top-1 on its real spike-camera dataset (30 classes) by shots per class
PAPER_FIG4 = {2: 55.17, 4: 73.11, 6: 85.78, 8: 88.12}


def plot_fewshot(
    path: Path,
    summary: Sequence[Mapping[str, Any]],
    runs: Sequence[Mapping[str, Any]],
    classes: int,
) -> None:
    """Our few-shot Top-1 (mean ± std over seeds, each seed's dot) against shots, with the
    paper's Fig. 4 points and chance for scale."""
    from matplotlib.figure import Figure  # no pyplot: no global backend or figure state

    fig = Figure(figsize=(5, 3.6), layout="tight")
    ax = fig.subplots()
    shots = [int(r["shots"]) for r in summary]
    ax.scatter([int(r["shots"]) for r in runs], [float(r["top1_pct"]) for r in runs], s=10,
               color="C0", alpha=0.35, label="ours: each shot draw")  # fmt: skip
    ax.errorbar(shots, [float(r["top1_mean_pct"]) for r in summary],
                yerr=[float(r["top1_std_pct"]) for r in summary], fmt="o-", color="C0",
                capsize=3, label="ours: teacher, shifted domain (mean ± std)")  # fmt: skip
    ax.plot(list(PAPER_FIG4), list(PAPER_FIG4.values()), "s--", color="grey",
            label="paper Fig. 4 (real camera, 30 classes)")  # fmt: skip
    ax.axhline(100 / classes, color="k", lw=0.8, ls=":", label=f"chance ({classes} classes)")
    ax.set_xlabel("shots per class (0: zero-shot)")
    ax.set_ylabel("test Top-1 (%)")
    ax.set_ylim(0, 100)
    ax.set_xticks(sorted(set(shots) | set(PAPER_FIG4)))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    save_png(fig, path, dpi=110)
