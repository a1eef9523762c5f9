"""Accuracy-energy trade-off of ``make reports``: FSVE variants against energy per inference.

Variants are the trained FSVEs (default width, half width, trained alone) and, for the distilled
FSVE of each width, the same weights run for fewer time steps T: an FSVE's K sub-blocks are its
time steps and no parameter depends on K, so lowering ``num_blocks`` in its config runs the
network on the central T sub-blocks (Eq. 2 with K = T) with no retraining. The SPKLIP teacher is
the reference point, priced as an ANN. Energy: :func:`apps.reports.energy.inference_energy`
(paper constants unless told otherwise), Top-1: zero-shot on the test split.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from apps.reports import markdown_table, save_png
from fsve.io import atomic_write_text, csv_text

PROMPT = "a video of an object {}"


def load_with_time_steps(path: Path, time_steps: int | None = None) -> tuple[Any, dict]:
    """A checkpoint's model in eval mode, an FSVE rebuilt for ``time_steps`` sub-blocks if given."""
    from fsve.checkpoint import build_model, load_checkpoint

    ckpt = load_checkpoint(path)
    if time_steps is not None:
        if ckpt["kind"] != "fsve":
            raise ValueError(
                f"{path}: only an FSVE runs for other time steps, not a {ckpt['kind']}"
            )
        ckpt = copy.copy(ckpt)
        ckpt["config"] = {**ckpt["config"], "num_blocks": int(time_steps)}
    model = build_model(ckpt, path)
    model.eval()
    return model, ckpt


def measure_point(
    label: str,
    path: Path,
    data: Path,
    time_steps: int | None = None,
    costs: str = "paper",
    energy_samples: int | None = None,
) -> dict[str, Any]:
    """Top-1/Top-5 on the test split and energy per inference of one model variant."""
    from apps.reports.energy import inference_energy
    from fsve.data.dataset import SpikeDataset, window_of
    from fsve.models.text import WordTokenizer
    from fsve.train.evaluate import evaluate_model

    model, ckpt = load_with_time_steps(path, time_steps)
    dataset = SpikeDataset(data, "test", window=window_of(model.cfg))
    tokenizer = WordTokenizer.from_dict(ckpt["tokenizer"])
    prompts = [PROMPT.format(c) for c in dataset.class_names]
    metrics = evaluate_model(model, tokenizer, dataset, prompts, retrieval=False)
    energy = inference_energy(model, dataset, costs=costs, samples=energy_samples)
    return {
        "model": label,
        "kind": ckpt["kind"],
        "checkpoint": str(path),
        "time_steps": int(model.cfg.num_blocks),
        "parameters": sum(p.numel() for p in model.parameters()),
        "top1_pct": round(float(metrics["top1_pct"]), 2),
        "top5_pct": round(float(metrics["top5_pct"]), 2),
        "energy_uj": float(energy["total_j"]) * 1e6,
        "compute_uj": float(energy["compute_j"]) * 1e6,
        "memory_uj": float(energy["memory_j"]) * 1e6,
        "firing_rate": energy.get("firing_rate"),
        "costs": costs,
    }


def plot_tradeoff(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    """Top-1 against energy per inference (log x); one line per FSVE family, teacher a star."""
    from matplotlib.figure import Figure  # no pyplot: no global backend or figure state

    fig = Figure(figsize=(6, 4), layout="tight")
    ax = fig.subplots()
    families: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        families.setdefault(r["model"], []).append(r)
    for name, pts in families.items():
        pts = sorted(pts, key=lambda r: r["energy_uj"])
        xs, ys = [p["energy_uj"] for p in pts], [p["top1_pct"] for p in pts]
        if pts[0]["kind"] == "teacher":  # SPKLIP and the baselines: ANNs, one point each
            marker = "*" if name == "SPKLIP teacher" else "P"
            ax.plot(xs, ys, marker, markersize=12, label=f"{name} (ANN)")
            continue
        ax.plot(xs, ys, "o-", label=name)
        if len(pts) > 1:
            for p in pts:
                ax.annotate(f"T={p['time_steps']}", (p["energy_uj"], p["top1_pct"]), fontsize=7,
                            textcoords="offset points", xytext=(4, -10))  # fmt: skip
    ax.set_xscale("log")
    ax.set_xlabel(f"energy per inference (µJ, {rows[0]['costs']} constants)")
    ax.set_ylabel("test Top-1 (%)")
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower left")
    save_png(fig, path, dpi=110)


def tradeoff(
    points: Sequence[tuple[str, Path, Sequence[int | None]]],
    data: Path,
    out: Path,
    costs: str = "paper",
    energy_samples: int | None = None,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Measure every ``(label, checkpoint, time steps)`` point; write ``tradeoff.csv``/``.png``."""
    from tqdm import tqdm

    todo = [(label, path, t) for label, path, steps in points for t in steps]
    rows = []
    for label, path, t in tqdm(todo, desc="reports: trade-off", unit="point", disable=not progress):
        rows.append(measure_point(label, path, data, t, costs, energy_samples))
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "tradeoff.csv", csv_text(rows))
    plot_tradeoff(out / "tradeoff.png", rows)
    return rows


def tradeoff_markdown(rows: Sequence[dict[str, Any]], folder: str) -> str:
    body = []
    for r in rows:
        rate = "-" if r["firing_rate"] is None else f"{100 * float(r['firing_rate']):.2f}%"
        cells = [r["model"], str(r["time_steps"]), f"{r['top1_pct']:.1f}", f"{r['energy_uj']:.1f}"]
        body.append([*cells, rate])
    header = ["model", "T", "Top-1 %", "energy per inference (µJ)", "firing rate"]
    table = markdown_table(header, body)
    return f"{table}\n\n![accuracy-energy trade-off]({folder}/tradeoff.png)"
