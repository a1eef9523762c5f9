"""``python -m fsve.fewshot CKPT --shots 2 4 6 8 --seeds 0 1 2``: few-shot adaptation (Fig. 4).

The checkpoint (teacher or FSVE) is adapted to the shifted "real" domain (``data/synth-real``,
generated with ``SynthConfig(domain="real")`` at the model's frame size if missing: sparser
spikes, a smaller object, half the motion, line artifacts) from k labelled clips per class of
that domain's train split, and scored by Top-1/Top-5 on its test split. Everything that is
chosen per run (fine-tuning epoch, cache weights) is chosen on the domain's validation split;
the test split is only scored. ``k = 0`` (the checkpoint as it is, zero-shot through the class
prompts ``"a video of an object {class}"``) is the reference. The k clips per class are drawn by
:func:`pick_shots` with a generator seeded by ``(seed, k)``; each ``--seeds`` value is one draw.

``--method`` composes three steps (:data:`METHODS`):

- AdaBN (``adabn``, :func:`adapt_batchnorm`): the running mean/var of every BatchNorm layer of
  the video path (teacher BN, FSVE TDBN; the FSVE's SN attention thresholds are kept) are
  re-estimated on the k x C shot clips, without their labels. Only the shots are used, no other
  clip of the shifted domain, so the method stays strictly k-shot (the unlabelled train split
  would give more data but is not part of a k-shot budget).
- fine-tuning (``tune``, :func:`tune_video_path`): the whole video path (every parameter outside
  the text encoder and ``logit_scale``) is trained in eval mode (the adapted BN statistics stay
  fixed) with cross-entropy of ``scale * cos(video, prompt)`` against the frozen class-prompt
  embeddings, AdamW with a cosine schedule (default 30 epochs at lr 3e-4: val Top-1 was higher
  than with 16 epochs at 2 and 4 shots, equal at 6 and 8); the validation split is scored
  before training and every ``eval_every`` epochs, and the weights with the best validation
  Top-1 are kept (epoch 0, no fine-tuning, when none beats it).
- a training-free cache head (``cache``, :func:`cache_logits`, Tip-Adapter, Zhang et al. 2022):
  ``logits = scale * cos(v, prompts) + alpha * exp(-beta (1 - cos(v, keys))) @ one_hot(labels)``
  with the normalised video embeddings of the shots as keys; ``alpha`` and ``beta`` are chosen
  on the validation split from :data:`ALPHAS` x :data:`BETAS` (``alpha = 0`` included).

``finetune`` is the earlier method, kept for reference: only the last two layers of the video path
(:func:`trainable_layers`) trained for a fixed number of epochs with the teacher's loss
(:class:`fsve.train.loop.StclPromptLoss`), no AdaBN, no validation choice; it did not improve on
zero-shot. The default :data:`DEFAULT_METHOD` had the best validation Top-1 at every k on a
seed-1 teacher (README, "Fig. 4"): AdaBN alone lifts zero-shot most (sparser spikes shift the
activation statistics), fine-tuning the whole video path then adds what the labels teach, and
the cache head adds a little on val (chosen there, so partly selection) and nothing measurable
on test.

Writes into ``--out``: ``fewshot_runs.csv`` (one row per seed and k: test and validation Top-1,
the chosen epoch, alpha and beta), ``fewshot.csv`` (per k: mean ± sample std of Top-1 over the
seeds and each seed's Top-1) and ``fewshot.png`` (mean ± std against k). :func:`check_target`
says whether Top-1 rises with the shots.
"""

from __future__ import annotations

import argparse
import copy
import itertools
import os
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from fsve.io import atomic_path

REAL_DATA = Path("data/synth-real")
PROMPT = "a video of an object {}"  # the zero-shot prompt of fsve.eval
# the cache head's grid (Tip-Adapter's ranges; the zero-shot logits carry the model's 1/tau)
ALPHAS = (0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
BETAS = (1.0, 3.0, 5.5, 10.0, 20.0)


@dataclass(frozen=True)
class Method:
    """Which steps adapt the model: AdaBN on the shots, fine-tuning, the cache head."""

    adabn: bool
    tune: str | None  # None, "video" (tune_video_path) or "last2" (finetune, the old method)
    cache: bool
    lr: float  # default learning rate of the fine-tuning step
    epochs: int  # default epochs of the fine-tuning step


METHODS: dict[str, Method] = {
    "adabn-tune-cache": Method(adabn=True, tune="video", cache=True, lr=3e-4, epochs=30),
    "adabn-tune": Method(adabn=True, tune="video", cache=False, lr=3e-4, epochs=30),
    "adabn-cache": Method(adabn=True, tune=None, cache=True, lr=3e-4, epochs=0),
    "adabn": Method(adabn=True, tune=None, cache=False, lr=3e-4, epochs=0),
    "cache": Method(adabn=False, tune=None, cache=True, lr=3e-4, epochs=0),
    "finetune": Method(adabn=False, tune="last2", cache=False, lr=3e-4, epochs=15),
}
DEFAULT_METHOD = "adabn-tune-cache"
ZERO_SHOT = Method(adabn=False, tune=None, cache=False, lr=0.0, epochs=0)  # the k = 0 reference
_STEPS = {
    "adabn": "BatchNorm statistics of the video path re-estimated on the shot clips (AdaBN)",
    "video": "the whole video path fine-tuned on the shots (prompt cross-entropy, epoch chosen"
    " on val)",
    "last2": "the last two layers of the video path fine-tuned on the shots (fixed epochs)",
    "cache": "a Tip-Adapter cache of the shots' embeddings added to the zero-shot logits"
    " (alpha, beta chosen on val)",
}


def _step(loss: torch.Tensor, optimizer: Any, scheduler: Any, params: Any, epoch: int) -> None:
    """One clipped optimizer step of fine-tuning; a non-finite loss is an error naming the epoch."""
    if not torch.isfinite(loss):
        raise ValueError(f"non-finite fine-tuning loss at epoch {epoch}")
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    nn.utils.clip_grad_norm_(params, 1.0)
    optimizer.step()
    scheduler.step()


def describe(method: str) -> str:
    """The steps of a :data:`METHODS` entry, in words (for reports)."""
    spec = METHODS[method]
    steps = [_STEPS["adabn"]] if spec.adabn else []
    steps += [_STEPS[spec.tune]] if spec.tune else []
    steps += [_STEPS["cache"]] if spec.cache else []
    return "; then ".join(steps)


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
    from fsve.train.loop import LoopConfig, make_optimizer, make_scheduler
    from fsve.train.losses import PROMPT_TEMPLATES, StclPromptLoss, prompt_bank

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
            _step(loss, optimizer, scheduler, params, epoch + 1)
            losses.append(float(loss.detach()))
        last = float(np.mean(losses))
    return last


# ---------------------------------------------------------------- AdaBN


def video_batchnorms(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """BatchNorm layers (``BatchNorm*d``, TDBN) with running statistics outside ``model.text``."""
    text = getattr(model, "text", None)
    skip = {id(m) for m in text.modules()} if isinstance(text, nn.Module) else set()
    return [
        m
        for m in model.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm)
        and m.track_running_stats
        and id(m) not in skip
    ]


@torch.no_grad()
def adapt_batchnorm(
    model: nn.Module, clips: Dataset, batch_size: int = 16, device: str | torch.device = "cpu"
) -> nn.Module:
    """AdaBN (Li et al. 2016): a copy of ``model`` whose video-path BN statistics are ``clips``'.

    The running mean and variance of every :func:`video_batchnorms` layer are reset and
    re-estimated in one pass over ``clips`` (their labels are not used): each layer normalises
    with its batch statistics during the pass (train mode, everything else in eval mode) and
    its running statistics become the clip-weighted average of the batches'. The returned copy
    is in eval mode, so its outputs use the new statistics; ``model`` is not modified.
    """
    from fsve.data.dataset import collate

    if len(clips) == 0:
        raise ValueError("AdaBN needs at least one clip")
    adapted = copy.deepcopy(model).eval()
    layers = video_batchnorms(adapted)
    if not layers:
        return adapted
    momenta = [bn.momentum for bn in layers]
    for bn in layers:
        bn.reset_running_stats()
        bn.train()
    seen = 0
    try:
        for batch in DataLoader(clips, batch_size=batch_size, collate_fn=collate):
            n = len(batch["label"])
            seen += n
            for bn in layers:  # running = running + n / seen * (batch - running): a clip average
                bn.momentum = n / seen
            adapted.encode_video(batch["spikes"].to(device))
    finally:
        for bn, momentum in zip(layers, momenta, strict=True):
            bn.momentum = momentum
            bn.eval()
    return adapted


# ---------------------------------------------------------------- cache head


def cache_logits(
    query: torch.Tensor,
    text: torch.Tensor,
    keys: torch.Tensor,
    key_labels: torch.Tensor,
    alpha: float,
    beta: float,
    scale: float = 1.0,
) -> torch.Tensor:
    """Tip-Adapter logits ``[N, C]``: zero-shot text logits plus ``alpha`` x the cache's vote.

    ``scale * cos(query, text) + alpha * exp(-beta * (1 - cos(query, keys))) @ one_hot(labels)``
    with ``query [N, D]``, class embeddings ``text [C, D]``, cache keys ``[M, D]`` (the shots'
    video embeddings) and their labels ``[M]``. ``alpha = 0`` gives the zero-shot logits exactly.
    """
    q = F.normalize(query.float(), dim=-1)
    zero_shot = scale * q @ F.normalize(text.float(), dim=-1).T
    affinity = torch.exp(-beta * (1.0 - q @ F.normalize(keys.float(), dim=-1).T))  # [N, M]
    values = F.one_hot(key_labels.long(), text.shape[0]).float()  # [M, C]
    return zero_shot + alpha * affinity @ values


def select_cache(
    val: torch.Tensor,
    val_labels: torch.Tensor,
    text: torch.Tensor,
    keys: torch.Tensor,
    key_labels: torch.Tensor,
    scale: float,
    alphas: Sequence[float] = ALPHAS,
    betas: Sequence[float] = BETAS,
) -> tuple[float, float, float]:
    """``(alpha, beta, val Top-1 %)`` with the best validation Top-1 on the grid.

    Ties go to the lower validation cross-entropy, then to the smaller alpha and beta.
    """
    from fsve.train.evaluate import topk_accuracy

    best: tuple[float, float, float, float] | None = None  # (-top1, nll, alpha, beta)
    for alpha in sorted(alphas):
        for beta in sorted(betas):
            logits = cache_logits(val, text, keys, key_labels, alpha, beta, scale)
            top1 = 100.0 * topk_accuracy(logits, val_labels, (1,))[1]
            nll = float(F.cross_entropy(logits, val_labels.long()))
            cand = (-top1, nll, alpha, beta)
            if best is None or cand[:2] < best[:2]:
                best = cand
            if alpha == 0:
                break  # beta does not matter
    assert best is not None
    return best[2], best[3], -best[0]


# ---------------------------------------------------------------- fine-tuning


def video_parameters(model: nn.Module) -> list[nn.Parameter]:
    """Every parameter outside the text encoder and ``logit_scale``: the video path."""
    return [
        p
        for name, p in model.named_parameters()
        if not name.startswith("text.") and name != "logit_scale"
    ]


def tune_video_path(
    model: nn.Module,
    shots: Dataset,
    val: Dataset,
    text: torch.Tensor,
    epochs: int,
    lr: float,
    batch_size: int,
    seed: int,
    device: torch.device,
    eval_every: int = 2,
) -> tuple[int, float]:
    """Fine-tune the video path in place on ``shots``; keeps the best weights on ``val``.

    Eval mode throughout (BN statistics fixed); loss: cross-entropy of ``scale * cos(video,
    text)`` with the frozen class embeddings ``text [C, D]``; AdamW, cosine schedule. The
    validation split is scored (zero-shot Top-1) before training, every ``eval_every`` epochs
    and after the last; returns ``(best epoch, its validation Top-1 %)`` (0: no epoch beat the
    untrained model; ties go to the earlier epoch).
    """
    from fsve.data.dataset import collate
    from fsve.train.loop import LoopConfig, make_optimizer, make_scheduler

    model.eval()
    model.requires_grad_(False)
    params = video_parameters(model)
    for p in params:
        p.requires_grad_(True)
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    text = F.normalize(text.float(), dim=-1).to(device)
    scale = float(model.scale().detach())

    def score() -> float:
        return zero_shot_top1(model, val, text, batch_size, device)

    def snapshot() -> dict[str, torch.Tensor]:
        state = model.state_dict()
        return {n: state[n].detach().clone() for n in names}

    best_epoch, best_top1, best_state = 0, score(), snapshot()
    batch_size = min(batch_size, len(shots))
    cfg = LoopConfig(epochs=epochs, batch_size=batch_size, lr=lr, warmup_epochs=0.0, seed=seed)
    optimizer = make_optimizer(params, cfg)
    scheduler = make_scheduler(optimizer, cfg, -(-len(shots) // batch_size))
    for epoch in range(1, epochs + 1):
        g = torch.Generator().manual_seed(seed * 1000 + epoch)
        loader = DataLoader(shots, batch_size, shuffle=True, generator=g, collate_fn=collate)
        for batch in loader:
            video = F.normalize(model.encode_video(batch["spikes"].to(device)).float(), dim=-1)
            loss = F.cross_entropy(scale * video @ text.T, batch["label"].to(device))
            _step(loss, optimizer, scheduler, params, epoch)
        if epoch % eval_every == 0 or epoch == epochs:
            top1 = score()
            if top1 > best_top1:
                best_epoch, best_top1, best_state = epoch, top1, snapshot()
    model.load_state_dict(best_state, strict=False)
    model.requires_grad_(False)
    return best_epoch, best_top1


# ---------------------------------------------------------------- scoring


def embed(
    model: nn.Module, data: Dataset, batch_size: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Video embeddings ``[N, D]`` and labels ``[N]`` of a dataset (eval mode, no grad)."""
    from fsve.train.evaluate import encode_videos

    model.eval()
    return encode_videos(model, data, batch_size, device)


def zero_shot_pct(video: torch.Tensor, labels: torch.Tensor, text: torch.Tensor) -> float:
    """Zero-shot Top-1 (%) of video embeddings ``[N, D]`` against class embeddings ``[C, D]``."""
    from fsve.train.evaluate import topk_accuracy

    logits = F.normalize(video.float(), dim=-1) @ F.normalize(text.float().cpu(), dim=-1).T
    return 100.0 * topk_accuracy(logits, labels, (1,))[1]


def zero_shot_top1(
    model: nn.Module, data: Dataset, text: torch.Tensor, batch_size: int, device: torch.device
) -> float:
    """Zero-shot Top-1 (%) of ``data`` against the class embeddings ``text [C, D]``."""
    return zero_shot_pct(*embed(model, data, batch_size, device), text)


def topk_pct(logits: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """``top1_pct`` and ``top5_pct`` (Top-5 counts every sample when there are <= 5 classes)."""
    from fsve.train.evaluate import topk_accuracy

    ks = [k for k in (1, 5) if k <= logits.shape[1]] or [1]
    acc = topk_accuracy(logits, labels, ks)
    return {f"top{k}_pct": 100.0 * acc.get(k, 1.0) for k in (1, 5)}


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
    from fsve.data.dataset import SpikeDataset
    from fsve.eval import check_frame_size, window_for_model
    from fsve.models.text import WordTokenizer
    from fsve.train.evaluate import encode_texts

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
    train = SpikeDataset(data, "train", window=window)
    val = SpikeDataset(data, "val", window=window)
    test = SpikeDataset(data, "test", window=window)
    check_frame_size(base, train)
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


# ---------------------------------------------------------------- aggregation


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m fsve.fewshot",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("checkpoint", type=Path, help="teacher or FSVE checkpoint")
    parser.add_argument("--shots", type=int, nargs="+", default=[2, 4, 6, 8], help="k per class")
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds of the shot draw"
    )
    parser.add_argument("--method", choices=list(METHODS), default=DEFAULT_METHOD, help="see above")
    parser.add_argument("--data", type=Path, default=REAL_DATA, help="shifted-domain dataset")
    parser.add_argument("--out", type=Path, default=None, help="default runs/fewshot/<ckpt stem>")
    parser.add_argument("--epochs", type=int, default=None, help="default: the method's")
    parser.add_argument("--lr", type=float, default=None, help="default: the method's")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    args = parser.parse_args(argv)
    out = args.out or Path("runs/fewshot") / args.checkpoint.stem
    try:
        if args.batch_size < 1 or (args.epochs is not None and args.epochs < 1):
            raise ValueError("--epochs and --batch-size must be >= 1")
        if args.lr is not None and not args.lr > 0:
            raise ValueError("--lr must be > 0")
        rows = run_fewshot(
            args.checkpoint,
            args.data,
            args.shots,
            list(dict.fromkeys(args.seeds)),
            args.method,
            args.epochs,
            args.lr,
            args.batch_size,
            args.device,
        )
    except (ValueError, FileNotFoundError, ImportError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    from fsve.train.history import write_metrics_csv

    out.mkdir(parents=True, exist_ok=True)
    summary = summarize(rows)
    write_metrics_csv(out / "fewshot_runs.csv", rows)
    write_metrics_csv(out / "fewshot.csv", summary)
    plot_fewshot(out / "fewshot.png", summary, f"{args.checkpoint.name}, {args.method}")
    for r in summary:
        print(f"{r['shots']} shots: test top1 {r['top1_mean_pct']:.1f} ± {r['top1_std_pct']:.1f}%"
              f" (val {r['val_top1_mean_pct']:.1f}%)")  # fmt: skip
    print(check_target(summary)[1])
    print(f"wrote {out / 'fewshot.csv'}, {out / 'fewshot_runs.csv'} and {out / 'fewshot.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
