"""``python -m fsve.eval CKPT``: zero-shot Top-1/Top-5 (Table 1) and text-to-video R@k (Table 5).

Works on teacher and FSVE checkpoints (both expose ``encode_video``/``encode_text``). Classes are
scored through the prompts ``--template`` (default ``"a video of an object {}"``) filled with the
dataset's class names; retrieval queries are the split's per-sample captions, the ground truth
of caption i being clip i. Metric definitions and tie handling: :mod:`fsve.train.evaluate`.
``--out`` writes the row as ``.json`` or ``.csv``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from pathlib import Path
from typing import Any

import torch

from fsve.io import atomic_open


def window_for_model(model: torch.nn.Module) -> Any:
    """The sub-block layout (Eq. 2) of a model's config (K blocks of 2r+1 frames)."""
    from fsve.data.dataset import WindowSpec, window_of

    cfg = getattr(model, "cfg", None)
    if getattr(cfg, "num_blocks", None) is None or getattr(cfg, "block_frames", None) is None:
        return WindowSpec()
    return window_of(cfg)


def check_frame_size(model: torch.nn.Module, dataset: Any) -> None:
    """One-line error if the data's frames are not the model's ``height x width``."""
    cfg = getattr(model, "cfg", None)
    want = (getattr(cfg, "height", None), getattr(cfg, "width", None))
    if None in want:
        return
    sizes = set(zip(dataset.table["height"], dataset.table["width"], strict=True))
    if sizes != {want}:
        found = ", ".join(f"{h}x{w}" for h, w in sorted(sizes))
        raise ValueError(
            f"{dataset.root}: frames are {found} but the checkpoint's model expects"
            f" {want[0]}x{want[1]}"
        )


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
    from fsve.data.dataset import SpikeDataset
    from fsve.models.text import WordTokenizer
    from fsve.train.evaluate import evaluate_model

    if "{}" not in template:
        raise ValueError(f"--template needs '{{}}' for the class name, got {template!r}")
    model, ckpt = load_model(ckpt_path, map_location=device)
    model.to(device)
    if not ckpt.get("tokenizer"):
        raise ValueError(f"{ckpt_path}: the checkpoint holds no tokenizer")
    tokenizer = WordTokenizer.from_dict(ckpt["tokenizer"])
    dataset = SpikeDataset(data, split, window=window_for_model(model))
    check_frame_size(model, dataset)
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m fsve.eval",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("checkpoint", type=Path, help="teacher or FSVE checkpoint (.pt)")
    parser.add_argument("--data", type=Path, default=Path("data/synth"), help="dataset folder")
    parser.add_argument("--split", choices=["train", "val", "test"], default="test")
    parser.add_argument("--out", type=Path, default=None, help="write the row to .json or .csv")
    parser.add_argument("--template", default="a video of an object {}", help="class prompt")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    args = parser.parse_args(argv)
    try:
        if args.out is not None and args.out.suffix not in (".json", ".csv"):
            raise ValueError(f"--out must end in .json or .csv, got {args.out}")
        if args.device == "cuda" and not torch.cuda.is_available():
            raise ValueError("--device cuda was asked for, but torch sees no CUDA device")
        row = evaluate_checkpoint(
            args.checkpoint,
            args.data,
            args.split,
            args.template,
            args.batch_size,
            args.device,
            args.workers,
        )
        if args.out is not None:
            write_row(args.out, row)
    except (ValueError, FileNotFoundError, ImportError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(
        f"{row['kind']} {row['checkpoint']} on {row['data']} {row['split']}"
        f" ({row['samples']} clips, {row['classes']} classes)"
    )
    print("zero-shot   top1 {top1_pct:5.1f}%  top5 {top5_pct:5.1f}%".format(**row))
    print("text->video R@1 {r1_pct:5.1f}%  R@5 {r5_pct:5.1f}%  R@10 {r10_pct:5.1f}%".format(**row))
    if args.out is not None:
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
