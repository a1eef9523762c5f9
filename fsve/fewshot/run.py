"""One few-shot experiment: draw k shots per class, adapt, score on the test split
(:func:`run_fewshot`, the pipeline behind ``python -m fsve.fewshot``)."""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset, Subset

from fsve.fewshot.adapt import (
    adapt_batchnorm,
    cache_logits,
    finetune,
    select_cache,
    tune_video_path,
)
from fsve.fewshot.methods import DEFAULT_METHOD, METHODS, PROMPT, ZERO_SHOT, Method
from fsve.fewshot.scoring import embed, topk_pct, zero_shot_pct

__all__ = ["adapt_and_score", "ensure_real_data", "pick_shots", "run_fewshot"]


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


def adapt_and_score(
    base: nn.Module,
    tokenizer: Any,
    method: Method,
    shots: Subset,
    val: Dataset,
    test: Dataset,
    text: torch.Tensor,
    epochs: int,
    lr: float,
    batch_size: int,
    seed: int,
    device: torch.device,
) -> dict[str, Any]:
    """One (seed, k) run of ``method``: test Top-1/Top-5 and what was chosen on ``val``."""
    model = adapt_batchnorm(base, shots, batch_size, device) if method.adabn else base
    row: dict[str, Any] = {"epoch": 0, "alpha": 0.0, "beta": float("nan")}
    if method.tune == "last2":
        model = copy.deepcopy(model)
        finetune(model, tokenizer, shots, epochs, lr, batch_size, seed, device)
        row["epoch"] = epochs
    elif method.tune == "video":
        model = copy.deepcopy(model)
        row["epoch"], _ = tune_video_path(
            model, shots, val, text, epochs, lr, batch_size, seed, device
        )
    model.eval()
    scale = float(model.scale().detach())
    val_emb, val_labels = embed(model, val, batch_size, device)
    test_emb, test_labels = embed(model, test, batch_size, device)
    keys, key_labels = val_emb[:0], val_labels[:0]
    if method.cache:
        keys, key_labels = embed(model, shots, batch_size, device)
        row["alpha"], row["beta"], _ = select_cache(
            val_emb, val_labels, text, keys, key_labels, scale
        )
    alpha, beta = row["alpha"], 1.0 if row["alpha"] == 0 else row["beta"]
    val_logits = cache_logits(val_emb, text, keys, key_labels, alpha, beta, scale)
    test_logits = cache_logits(test_emb, text, keys, key_labels, alpha, beta, scale)
    row["val_top1_pct"] = topk_pct(val_logits, val_labels)["top1_pct"]
    if method.cache:  # the same model without the cache head, to show what the head adds
        row["val_top1_nocache_pct"] = zero_shot_pct(val_emb, val_labels, text)
        row["top1_nocache_pct"] = zero_shot_pct(test_emb, test_labels, text)
    else:
        row["val_top1_nocache_pct"], row["top1_nocache_pct"] = row["val_top1_pct"], float("nan")
    return {**topk_pct(test_logits, test_labels), **row}


def run_fewshot(
    ckpt_path: str | os.PathLike,
    data: Path,
    shots: Sequence[int],
    seeds: Sequence[int] = (0, 1, 2),
    method: str = DEFAULT_METHOD,
    epochs: int | None = None,
    lr: float | None = None,
    batch_size: int = 16,
    device: str = "cpu",
) -> list[dict[str, Any]]:
    """One row per seed and k (k = 0 included): test Top-1/Top-5 in %, validation Top-1, the
    fine-tuning epoch and cache ``alpha``/``beta`` chosen on the validation split, seconds.

    ``epochs`` and ``lr`` default to the method's (:data:`METHODS`)."""
    from fsve.checkpoint import load_model
    from fsve.cli import open_dataset
    from fsve.eval.evaluate import model_frame_size, window_for_model
    from fsve.eval.metrics import encode_texts
    from fsve.models.text import WordTokenizer

    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; expected one of {list(METHODS)}")
    if not shots or any(k < 1 for k in shots):
        raise ValueError(f"--shots must be >= 1, got {list(shots)}")
    if not seeds:
        raise ValueError("give at least one seed")
    spec = METHODS[method]
    epochs = spec.epochs if epochs is None else epochs
    lr = spec.lr if lr is None else lr
    if spec.tune and (epochs < 1 or not lr > 0):
        raise ValueError(f"{method}: --epochs must be >= 1 and --lr > 0")
    dev = torch.device(device)
    base, ckpt = load_model(ckpt_path, map_location=dev)
    base.to(dev).eval()
    base.requires_grad_(False)
    ensure_real_data(data, base.cfg.height, base.cfg.width)
    tokenizer = WordTokenizer.from_dict(ckpt["tokenizer"])
    window = window_for_model(base)
    train = open_dataset(data, "train", window, model_frame_size(base))
    val = open_dataset(data, "val", window)
    test = open_dataset(data, "test", window)
    text = encode_texts(base, tokenizer, [PROMPT.format(c) for c in test.class_names], dev)
    started = time.perf_counter()
    zero = adapt_and_score(
        base, tokenizer, ZERO_SHOT, Subset(train, []), val, test, text, 0, lr, batch_size, 0, dev
    )
    zero_s = time.perf_counter() - started
    rows = []
    for seed in seeds:
        rows.append({"seed": seed, "shots": 0, "train_clips": 0, "method": "zero-shot", **zero,
                     "seconds": zero_s})  # fmt: skip
        for k in shots:
            started = time.perf_counter()
            picked = pick_shots(train.labels, k, seed)
            result = adapt_and_score(
                base, tokenizer, spec, Subset(train, picked), val, test, text, epochs, lr,
                batch_size, seed * 1000 + k, dev,
            )  # fmt: skip
            rows.append({"seed": seed, "shots": k, "train_clips": len(picked), "method": method,
                         **result, "seconds": time.perf_counter() - started})  # fmt: skip
            r = rows[-1]
            print(
                f"seed {seed}, {k} shots: test top1 {r['top1_pct']:.1f}% (val"
                f" {r['val_top1_pct']:.1f}%, epoch {r['epoch']}, alpha {r['alpha']:g},"
                f" beta {r['beta']:g}; {r['seconds']:.0f} s)",
                flush=True,
            )
    return rows
