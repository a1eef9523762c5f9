"""Figures of ``make reports``: the Fig. 5 analog (centred HSFE block-feature correlations)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from apps.reports import save_png
from fsve.data.dataset import SpikeDataset, collate, window_of
from fsve.io import atomic_write_text, csv_text
from fsve.models.teacher import hsfe_block_features, temporal_correlation

__all__ = ["fig5_correlation", "mean_off_diagonal"]


def mean_off_diagonal(corr: np.ndarray) -> np.ndarray:
    """Mean of the ``i != j`` entries of each ``[K, K]`` matrix of ``corr [S, K, K]``: ``[S]``.

    For K centred vectors of equal norm it is exactly ``-1/(K-1)`` (they sum to zero), so the
    pattern of a heatmap carries the information, not this mean.
    """
    k = corr.shape[-1]
    off = ~np.eye(k, dtype=bool)
    return corr[:, off].mean(axis=1)


def _plot(corr: np.ndarray, titles: Sequence[str], path: Path) -> None:
    """Heatmaps of ``corr [S, K, K]`` side by side, values written in the cells, one colorbar."""
    from matplotlib.figure import Figure  # no pyplot: no global backend or figure state

    s, k = corr.shape[0], corr.shape[-1]
    fig = Figure(figsize=(4.2 * s + 1.2, 4.4), layout="constrained")
    axes = fig.subplots(1, s, squeeze=False)[0]
    image = None
    ticks = [f"B{i + 1}" for i in range(k)]
    for ax, c, title in zip(axes, corr, titles, strict=True):
        image = ax.imshow(c, cmap="coolwarm", vmin=-1.0, vmax=1.0)
        for i in range(k):
            for j in range(k):
                color = "white" if abs(c[i, j]) > 0.6 else "black"
                ax.text(j, i, f"{c[i, j]:.2f}", ha="center", va="center", fontsize=9, color=color)
        ax.set_xticks(range(k), ticks)
        ax.set_yticks(range(k), ticks)
        ax.set_title(title, fontsize=10)
    fig.colorbar(image, ax=list(axes), shrink=0.85, label="centred cosine correlation")
    fig.suptitle("HSFE block features V1..V5 minus their mean (Fig. 5 analog)", fontsize=11)
    save_png(fig, path, dpi=120)


def fig5_correlation(
    teacher_ckpt: str | os.PathLike,
    data: str | os.PathLike,
    out: str | os.PathLike,
    sample_indices: Sequence[int] = (0, 1),
    *,
    md_dir: str | os.PathLike | None = None,
) -> str:
    """Fig. 5 analog for test clips ``sample_indices`` (of different classes) of ``data``.

    The teacher's HSFE features per sub-block (:func:`hsfe_block_features`, spatial means
    ``[K, C_h]``) less their mean over the K blocks, as cosine correlations
    (:func:`temporal_correlation`). Writes ``fig5_correlation.png`` and ``fig5_correlation.csv``
    (sample, class, i, j, value; blocks numbered from 1) into ``out`` and returns a markdown
    snippet whose image link is relative to ``md_dir`` (default: as given in ``out``).
    """
    from fsve.checkpoint import load_model

    indices = [int(i) for i in sample_indices]
    if not indices:
        raise ValueError("sample_indices is empty")
    teacher, _ = load_model(teacher_ckpt, kind="teacher")
    dataset = SpikeDataset(data, "test", window=window_of(teacher.cfg))
    for i in indices:
        if not 0 <= i < len(dataset):
            raise ValueError(f"sample index {i} is outside the test split (0..{len(dataset) - 1})")
    items = [dataset[i] for i in indices]
    labels = [int(item["label"]) for item in items]
    if len(set(labels)) != len(labels):
        raise ValueError(f"samples {indices} must be of different classes, got labels {labels}")
    names = [dataset.class_names[label] for label in labels]
    with torch.no_grad():
        features = hsfe_block_features(teacher, collate(items)["spikes"])  # [S, K, C_h]
        corr = temporal_correlation(features).double().numpy()  # [S, K, K]
    k = corr.shape[-1]
    if k < 2:
        raise ValueError(f"the teacher has {k} sub-block; a correlation needs at least 2")

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = [
        {"sample": idx, "class": name, "i": i + 1, "j": j + 1, "value": float(c[i, j])}
        for idx, name, c in zip(indices, names, corr, strict=True)
        for i in range(k)
        for j in range(k)
    ]
    atomic_write_text(out / "fig5_correlation.csv", csv_text(rows))
    means = mean_off_diagonal(corr)
    titles = [
        f"test clip {idx}: {name}\nmean off-diagonal {m:+.2f}"
        for idx, name, m in zip(indices, names, means, strict=True)
    ]
    png = out / "fig5_correlation.png"
    _plot(corr, titles, png)

    link = png.as_posix() if md_dir is None else Path(os.path.relpath(png, md_dir)).as_posix()
    lowest = [np.unravel_index(np.argmin(np.where(np.eye(k) > 0, 2.0, c)), c.shape) for c in corr]
    per_sample = "; ".join(
        f'"{name}" (test clip {idx}) mean off-diagonal {m:+.3f}, most anti-correlated '
        f"blocks {i + 1} and {j + 1} ({c[i, j]:+.2f})"
        for idx, name, m, c, (i, j) in zip(indices, names, means, corr, lowest, strict=True)
    )
    return (
        f"![Fig. 5 analog: centred HSFE block-feature correlations]({link})\n\n"
        f"Centred cosine correlations of the trained teacher's K = {k} HSFE block features "
        f"(`{teacher_ckpt}`), one heatmap per clip: {per_sample}. The patterns differ between "
        f"the classes, as in the paper's Fig. 5; the mean itself says little, since K centred "
        f"vectors of equal norm always average -1/(K-1) = {-1 / (k - 1):+.2f} off the diagonal."
    )
