"""Few-shot results over seeds: the per-k summary, the target check and the plot."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fsve.io import atomic_path

__all__ = ["check_target", "plot_fewshot", "summarize"]


def summarize(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per k: Top-1/Top-5 mean ± sample std over the seeds (0 for one seed), validation Top-1
    mean, and each seed's test Top-1 (``top1_seed<s>_pct``), in order of k."""
    out = []
    seeds = sorted({int(r["seed"]) for r in rows})
    for k in sorted({int(r["shots"]) for r in rows}):
        group = {int(r["seed"]): r for r in rows if int(r["shots"]) == k}
        if sorted(group) != seeds:
            raise ValueError(f"{k} shots: seeds {sorted(group)}, expected {seeds}")
        entry: dict[str, Any] = {
            "shots": k,
            "train_clips": int(group[seeds[0]]["train_clips"]),
            "method": group[seeds[0]]["method"],
            "seeds": len(seeds),
        }
        for key in ("top1_pct", "top5_pct", "val_top1_pct"):
            values = np.array([float(group[s][key]) for s in seeds])
            std = float(values.std(ddof=1)) if len(values) > 1 else 0.0
            entry[key.replace("_pct", "_mean_pct")] = round(float(values.mean()), 2)
            if key != "val_top1_pct":
                entry[key.replace("_pct", "_std_pct")] = round(std, 2)
        for s in seeds:
            entry[f"top1_seed{s}_pct"] = round(float(group[s]["top1_pct"]), 2)
        out.append(entry)
    return out


def check_target(summary: Sequence[Mapping[str, Any]], gain: float = 15.0) -> tuple[bool, str]:
    """Does Top-1 rise with the shots? ``(held, one-line account)``.

    Held when the largest k's mean Top-1 is at least ``gain`` points above k = 0's and no step
    between consecutive k >= 1 drops the mean by more than the previous k's seed std.
    """
    by_k = {int(r["shots"]): r for r in summary}
    if 0 not in by_k or len(by_k) < 2:
        raise ValueError("check_target needs k = 0 and at least one k >= 1")
    ks = sorted(k for k in by_k if k > 0)
    mean = {k: float(by_k[k]["top1_mean_pct"]) for k in by_k}
    std = {k: float(by_k[k]["top1_std_pct"]) for k in by_k}
    rise = mean[ks[-1]] - mean[0]
    parts = [f"{ks[-1]}-shot {mean[ks[-1]]:.1f}% vs 0-shot {mean[0]:.1f}% ({rise:+.1f} points,"
             f" target >= +{gain:g})"]  # fmt: skip
    held = rise >= gain
    steps = []
    for prev, k in itertools.pairwise(ks):
        delta = mean[k] - mean[prev]
        ok = delta >= -std[prev]
        held &= ok
        steps.append(f"{prev}->{k} {delta:+.1f}" + ("" if ok else f" (< -{std[prev]:.1f})"))
    if steps:
        parts.append("steps " + ", ".join(steps) + " (a drop may not exceed the previous k's std)")
    return held, "; ".join(parts) + (": target met" if held else ": target NOT met")


def plot_fewshot(path: Path, summary: Sequence[Mapping[str, Any]], title: str) -> None:
    """Mean Top-1 (%) ± seed std against shots per class, PNG."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.5, 3.5), layout="tight")
    ax = fig.subplots()
    ax.errorbar([int(r["shots"]) for r in summary],
                [float(r["top1_mean_pct"]) for r in summary],
                yerr=[float(r["top1_std_pct"]) for r in summary], fmt="o-", capsize=3)  # fmt: skip
    ax.set_xlabel("shots per class (0: zero-shot)")
    ax.set_ylabel("test top-1 (%), mean ± std over seeds")
    ax.set_ylim(0, 100)
    ax.set_title(title, fontsize=8)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
