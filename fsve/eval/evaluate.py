"""Score one checkpoint on one dataset split: the pipeline behind ``python -m fsve.eval``.

Works on teacher and FSVE checkpoints (both expose ``encode_video``/``encode_text``); the metric
definitions and tie handling are in :mod:`fsve.eval.metrics`.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any

import torch

from fsve.cli import open_dataset
from fsve.eval.metrics import evaluate_model
from fsve.io import atomic_open

__all__ = ["evaluate_checkpoint", "format_row", "model_frame_size", "window_for_model", "write_row"]


def window_for_model(model: torch.nn.Module) -> Any:
    """The sub-block layout (Eq. 2) of a model's config (K blocks of 2r+1 frames)."""
    from fsve.data.dataset import WindowSpec, window_of

    cfg = getattr(model, "cfg", None)
    if getattr(cfg, "num_blocks", None) is None or getattr(cfg, "block_frames", None) is None:
        return WindowSpec()
    return window_of(cfg)


def model_frame_size(model: torch.nn.Module) -> tuple[int, int] | None:
    """The ``(height, width)`` a model's config expects, or ``None`` if it names none."""
    cfg = getattr(model, "cfg", None)
    height, width = getattr(cfg, "height", None), getattr(cfg, "width", None)
    return None if height is None or width is None else (int(height), int(width))


def evaluate_checkpoint(
    ckpt_path: str | os.PathLike,
    data: str | os.PathLike,
    split: str = "test",
    template: str = "a video of an object {}",
    batch_size: int = 32,
    device: str = "cpu",
    workers: int = 0,
) -> dict[str, Any]:
    """Metrics row of one checkpoint on one split: kind, epoch, samples, ``*_pct`` values."""
    from fsve.checkpoint import load_model
    from fsve.models.text import WordTokenizer

    if "{}" not in template:
        raise ValueError(f"--template needs '{{}}' for the class name, got {template!r}")
    model, ckpt = load_model(ckpt_path, map_location=device)
    model.to(device)
    if not ckpt.get("tokenizer"):
        raise ValueError(f"{ckpt_path}: the checkpoint holds no tokenizer")
    tokenizer = WordTokenizer.from_dict(ckpt["tokenizer"])
    dataset = open_dataset(Path(data), split, window_for_model(model), model_frame_size(model))
    prompts = [template.format(c) for c in dataset.class_names]
    metrics = evaluate_model(
        model, tokenizer, dataset, prompts, batch_size, device, workers=workers
    )
    return {
        "checkpoint": str(ckpt_path),
        "kind": ckpt["kind"],
        "epoch": ckpt.get("metrics", {}).get("epoch"),
        "data": str(data),
        "split": split,
        "samples": len(dataset),
        "classes": len(prompts),
        **metrics,
    }


def write_row(path: Path, row: dict[str, Any]) -> None:
    """Write one metrics row as JSON or CSV (by suffix), atomically."""
    if path.suffix not in (".json", ".csv"):
        raise ValueError(f"--out must end in .json or .csv, got {path}")
    with atomic_open(path, "w", newline="") as f:
        if path.suffix == ".json":
            json.dump(row, f, indent=2)
            f.write("\n")
        else:
            writer = csv.DictWriter(f, fieldnames=list(row))
            writer.writeheader()
            writer.writerow(row)


def format_row(row: dict[str, Any]) -> str:
    """The three lines ``python -m fsve.eval`` prints for a metrics row."""
    return "\n".join(
        [
            f"{row['kind']} {row['checkpoint']} on {row['data']} {row['split']}"
            f" ({row['samples']} clips, {row['classes']} classes)",
            "zero-shot   top1 {top1_pct:5.1f}%  top5 {top5_pct:5.1f}%".format(**row),
            "text->video R@1 {r1_pct:5.1f}%  R@5 {r5_pct:5.1f}%  R@10 {r10_pct:5.1f}%".format(
                **row
            ),
        ]
    )
