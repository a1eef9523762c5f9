"""``python -m fsve.fewshot CKPT --shots 2 4 6 8``: few-shot adaptation, "real" domain (Fig. 4).

For each k, a fresh copy of the checkpoint is fine-tuned on k clips per class of the shifted
domain's train split (``data/synth-real``, generated with ``SynthConfig(domain="real")`` at the
model's frame size if missing) and scored by zero-shot Top-1 through the class prompts on that
domain's test split. ``k = 0`` (no fine-tuning) is always reported as the reference.

Only the last two layers of the video path are trained (:func:`trainable_layers`):

- teacher (SPKLIP): the attention pooling ``backbone.pool`` and the last temporal Transformer
  layer ``temporal.encoder.layers[-1]`` with the final ``temporal.encoder.norm``; without
  STAR-Net (ablations) ``backbone.layer4[-1]`` and ``backbone.pool``; the Table 1 baselines:
  ``backbone.stages[-1]`` and ``backbone.proj`` (frame CNN), ``backbone.encoder.layers[-1]``
  with ``backbone.encoder.norm`` and ``backbone.proj`` (ViT);
- FSVE: the last spiking transformer block ``visual.blocks[-1]`` (or, with ``attn_depth=0``, the
  last MS-ResNet block) and the projection ``visual.proj``.

The text encoder, ``logit_scale`` and all earlier layers stay frozen, and the model stays in eval
mode (frozen BatchNorm/TDBN and SN statistics; no dropout). The loss is the teacher's
(:class:`fsve.train.loop.StclPromptLoss`: STCL on captions + class-prompt cross-entropy). The k
clips per class are drawn with a generator seeded by ``(seed, k)``. Writes ``fewshot.csv`` and
``fewshot.png`` into ``--out``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Subset

from fsve.io import atomic_path

REAL_DATA = Path("data/synth-real")


def trainable_layers(model: nn.Module) -> dict[str, nn.Module]:
    """The last two layers of the video path, by name (see the module docstring)."""
    from fsve.models.student import FSVE
    from fsve.models.teacher import SPKLIP

    if isinstance(model, SPKLIP):
        backbone = model.backbone
        if model.cfg.video_encoder == "frame_cnn":
            return {"backbone.stages[-1]": backbone.stages[-1], "backbone.proj": backbone.proj}
        if model.cfg.video_encoder == "vit":
            return {
                "backbone.encoder.layers[-1]": backbone.encoder.layers[-1],
                "backbone.encoder.norm": backbone.encoder.norm,
                "backbone.proj": backbone.proj,
            }
        if model.temporal is not None:
            encoder = model.temporal.encoder
            return {
                "backbone.pool": model.backbone.pool,
                "temporal.encoder.layers[-1]": encoder.layers[-1],
                "temporal.encoder.norm": encoder.norm,
            }
        return {
            "backbone.layer4[-1]": model.backbone.layer4[-1],
            "backbone.pool": model.backbone.pool,
        }
    if isinstance(model, FSVE):
        visual = model.visual
        if len(visual.blocks):
            return {"visual.blocks[-1]": visual.blocks[-1], "visual.proj": visual.proj}
        return {"visual.stages[-1][-1]": visual.stages[-1][-1], "visual.proj": visual.proj}
    raise ValueError(f"few-shot knows SPKLIP and FSVE models, got {type(model).__name__}")


def freeze_all_but_last_two(model: nn.Module) -> list[nn.Parameter]:
    """Set ``requires_grad`` on the :func:`trainable_layers` only; returns their parameters."""
    model.requires_grad_(False)
    params = []
    for layer in trainable_layers(model).values():
        layer.requires_grad_(True)
        params += list(layer.parameters())
    return params


def pick_shots(labels: Sequence[int], k: int, seed: int) -> list[int]:
    """Indices of ``k`` samples per class, drawn without replacement, seeded by ``(seed, k)``."""
    labels = np.asarray(labels)
    rng = np.random.default_rng([seed, k])
    picked = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        if len(idx) < k:
            raise ValueError(f"class {c} has {len(idx)} training clips, fewer than {k} shots")
        picked += sorted(rng.choice(idx, size=k, replace=False).tolist())
    return picked


def ensure_real_data(root: Path, height: int, width: int) -> Path:
    """The shifted-domain dataset; generated (``domain="real"``) if ``root`` has none."""
    if (root / "manifest.csv").is_file():
        return root
    from fsve.data.synth import SynthConfig, generate_dataset

    print(f"generating the 'real' domain dataset in {root} ({height}x{width})", flush=True)
    return generate_dataset(root, SynthConfig(height=height, width=width, domain="real"))


def finetune(
    model: nn.Module,
    tokenizer: Any,
    train: Any,
    epochs: int,
    lr: float,
    batch_size: int,
    seed: int,
    device: torch.device,
) -> float:
    """Fine-tune the last two layers in eval mode; returns the mean loss of the last epoch."""
    from fsve.data.dataset import collate
    from fsve.train.loop import (
        PROMPT_TEMPLATES,
        LoopConfig,
        StclPromptLoss,
        make_optimizer,
        make_scheduler,
        prompt_bank,
    )

    params = freeze_all_but_last_two(model)
    model.eval()
    batch_size = min(batch_size, len(train))
    cfg = LoopConfig(epochs=epochs, batch_size=batch_size, lr=lr, warmup_epochs=0.0, seed=seed)
    names = train.dataset.class_names
    length = model.text.cfg.context_length
    loss_fn = StclPromptLoss(tokenizer, prompt_bank(tokenizer, names, PROMPT_TEMPLATES, length))
    optimizer = make_optimizer(params, cfg)
    steps = -(-len(train) // batch_size)
    scheduler = make_scheduler(optimizer, cfg, steps)
    torch.manual_seed(seed)
    last = float("nan")
    for epoch in range(epochs):
        g = torch.Generator().manual_seed(seed * 1000 + epoch)
        loader = DataLoader(train, batch_size, shuffle=True, generator=g, collate_fn=collate)
        losses = []
        for batch in loader:
            batch = {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}
            loss = loss_fn(model, batch)
            if not torch.isfinite(loss):
                raise ValueError(f"non-finite fine-tuning loss at epoch {epoch + 1}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            scheduler.step()
            losses.append(float(loss.detach()))
        last = float(np.mean(losses))
    return last


def run_fewshot(
    ckpt_path: str | os.PathLike,
    data: Path,
    shots: Sequence[int],
    epochs: int,
    lr: float,
    batch_size: int,
    seed: int,
    device: str = "cpu",
    split: str = "test",
) -> list[dict[str, Any]]:
    """One row per k (plus k = 0): shots, clips, Top-1/Top-5 on ``split`` in %, seconds.

    ``split="val"`` scores on the shifted domain's validation split, for choosing the
    fine-tuning settings without looking at the test split."""
    from fsve.checkpoint import load_model
    from fsve.data.dataset import SpikeDataset
    from fsve.eval import check_frame_size, window_for_model
    from fsve.models.text import WordTokenizer
    from fsve.train.evaluate import evaluate_model

    if any(k < 1 for k in shots):
        raise ValueError(f"--shots must be >= 1, got {list(shots)}")
    dev = torch.device(device)
    model, ckpt = load_model(ckpt_path, map_location=dev)
    ensure_real_data(data, model.cfg.height, model.cfg.width)
    tokenizer = WordTokenizer.from_dict(ckpt["tokenizer"])
    window = window_for_model(model)
    train = SpikeDataset(data, "train", window=window)
    test = SpikeDataset(data, split, window=window)
    check_frame_size(model, train)
    prompts = [f"a video of an object {c}" for c in test.class_names]
    rows = []
    for k in [0, *shots]:
        started = time.perf_counter()
        model, _ = load_model(ckpt_path, map_location=dev)
        model.to(dev)
        loss = float("nan")
        picked: list[int] = []
        if k:
            picked = pick_shots(train.labels, k, seed)
            loss = finetune(
                model, tokenizer, Subset(train, picked), epochs, lr, batch_size, seed, dev
            )
        model.eval()
        metrics = evaluate_model(model, tokenizer, test, prompts, batch_size, dev, retrieval=False)
        rows.append(
            {
                "shots": k,
                "train_clips": len(picked),
                "top1_pct": metrics["top1_pct"],
                "top5_pct": metrics["top5_pct"],
                "final_loss": loss,
                "epochs": epochs if k else 0,
                "seconds": time.perf_counter() - started,
            }
        )
        print(
            f"{k} shots: top1 {metrics['top1_pct']:.1f}% top5 {metrics['top5_pct']:.1f}%"
            f" ({rows[-1]['seconds']:.0f} s)",
            flush=True,
        )
    return rows


def plot_fewshot(path: Path, rows: Sequence[dict[str, Any]], title: str) -> None:
    """Top-1 (%) against shots per class, PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 3.5))
    ax.plot([r["shots"] for r in rows], [r["top1_pct"] for r in rows], "o-")
    ax.set_xlabel("shots per class")
    ax.set_ylabel("test top-1 (%)")
    ax.set_ylim(0, 100)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=100)
    finally:
        plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m fsve.fewshot",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("checkpoint", type=Path, help="teacher or FSVE checkpoint")
    parser.add_argument("--shots", type=int, nargs="+", default=[2, 4, 6, 8], help="k per class")
    parser.add_argument("--data", type=Path, default=REAL_DATA, help="shifted-domain dataset")
    parser.add_argument("--out", type=Path, default=None, help="default runs/fewshot/<ckpt stem>")
    parser.add_argument("--epochs", type=int, default=15, help="fine-tuning epochs per k")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--split", choices=["val", "test"], default="test", help="scored on")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    args = parser.parse_args(argv)
    out = args.out or Path("runs/fewshot") / args.checkpoint.stem
    try:
        if args.epochs < 1 or args.batch_size < 1 or not args.lr > 0:
            raise ValueError("--epochs and --batch-size must be >= 1 and --lr > 0")
        rows = run_fewshot(
            args.checkpoint,
            args.data,
            args.shots,
            args.epochs,
            args.lr,
            args.batch_size,
            args.seed,
            args.device,
            args.split,
        )
    except (ValueError, FileNotFoundError, ImportError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    from fsve.train.loop import write_metrics_csv

    out.mkdir(parents=True, exist_ok=True)
    write_metrics_csv(out / "fewshot.csv", rows)
    plot_fewshot(out / "fewshot.png", rows, f"{args.checkpoint.name} on {args.data}")
    print(f"wrote {out / 'fewshot.csv'} and {out / 'fewshot.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
