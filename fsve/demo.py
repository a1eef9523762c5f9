"""``make demo``: the main job on the built-in dataset.

Today: generate the synthetic dataset (skipped if already there with the same settings), write
a TFI and a TFP reconstruction of one sample per class as PNG, and a summary of the dataset.
Training, distillation, evaluation and energy profiling join as their issues land.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from fsve.io import atomic_write_text


def contact_sheet(images: list[np.ndarray], columns: int) -> np.ndarray:
    """Tile equally sized uint8 images into one grid with 2-pixel gaps."""
    h, w = images[0].shape
    rows = -(-len(images) // columns)
    sheet = np.full((rows * (h + 2) - 2, columns * (w + 2) - 2), 255, dtype=np.uint8)
    for i, image in enumerate(images):
        r, c = divmod(i, columns)
        sheet[r * (h + 2) : r * (h + 2) + h, c * (w + 2) : c * (w + 2) + w] = image
    return sheet


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fsve.demo", description=__doc__)
    parser.add_argument("--data", type=Path, default=Path("data/synth"), help="dataset folder")
    parser.add_argument("--out", type=Path, default=Path("runs/demo"), help="output folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train", type=int, default=40, help="train samples per class")
    parser.add_argument("--val", type=int, default=10, help="validation samples per class")
    parser.add_argument("--test", type=int, default=10, help="test samples per class")
    args = parser.parse_args(argv)

    from fsve.data.__main__ import save_png
    from fsve.data.dat import read_dat
    from fsve.data.manifest import read_manifest
    from fsve.data.recon import tfi, tfp
    from fsve.data.synth import SynthConfig, generate_dataset

    started = time.perf_counter()
    config = SynthConfig(
        seed=args.seed,
        train_per_class=args.train,
        val_per_class=args.val,
        test_per_class=args.test,
    )
    generate_dataset(args.data, config, progress=True)
    generation_s = time.perf_counter() - started
    table = read_manifest(args.data)

    # one test sample per class: TFI at the clip centre, TFP over +-20 frames
    firsts = table[table["split"] == "test"].drop_duplicates("label").sort_values("label")
    tfi_images, tfp_images, rates = [], [], []
    for row in firsts.itertuples():
        spikes = read_dat(row.file, row.height, row.width)
        centre = row.frames // 2
        tfi_images.append(tfi(spikes, centre))
        tfp_images.append(tfp(spikes, centre, 20))
        rates.append(float(spikes.mean()))
    columns = min(6, len(tfi_images))
    save_png(args.out / "tfi.png", contact_sheet(tfi_images, columns))
    save_png(args.out / "tfp.png", contact_sheet(tfp_images, columns))

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
    lines = [
        "# fsve demo",
        "",
        f"Dataset `{args.data}`: {len(table)} samples, {len(summary['classes'])} classes,"
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
    atomic_write_text(args.out / "summary.md", "\n".join(lines))
    print("\n".join(lines))
    print(f"wrote {args.out}/tfi.png, tfp.png, summary.md, summary.json in {summary['seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
