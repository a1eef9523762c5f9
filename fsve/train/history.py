"""The per-epoch history of a run as files: ``metrics.csv`` and ``curves.png``."""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from fsve.io import atomic_open, atomic_path

__all__ = ["plot_curves", "write_metrics_csv"]


def write_metrics_csv(path: str | os.PathLike, rows: Sequence[Mapping[str, Any]]) -> Path:
    """Write the per-epoch rows (dicts with the same keys) as CSV, atomically."""
    path = Path(path)
    with atomic_open(path, "w", newline="") as f:
        keys = list(rows[0]) if rows else ["epoch"]
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: row.get(k, "") for k in keys})
    return path


def plot_curves(path: str | os.PathLike, rows: Sequence[Mapping[str, Any]]) -> Path:
    """Loss (left) and validation accuracy (right, every ``val_*_pct`` column) per epoch, PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    epochs = [r["epoch"] for r in rows]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(9, 3.5))
    ax_loss.plot(epochs, [r["train_loss"] for r in rows], "o-", label="train")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("loss")
    ax_loss.legend()
    keys = [k for k in (rows[0] if rows else {}) if k.startswith("val_") and k.endswith("_pct")]
    for key in keys:
        ax_acc.plot(epochs, [r[key] for r in rows], "o-", label=key[4:-4])
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("validation %")
    ax_acc.set_ylim(0, 100)
    if keys:
        ax_acc.legend()
    fig.tight_layout()
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=100)
    finally:
        plt.close(fig)
    return path
