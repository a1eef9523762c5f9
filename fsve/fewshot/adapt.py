"""The adaptation steps of few-shot: AdaBN, fine-tuning (the whole video path, or the last two
layers) and the training-free cache head (Tip-Adapter)."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from fsve.fewshot.methods import ALPHAS, BETAS
from fsve.fewshot.scoring import zero_shot_top1

__all__ = [
    "adapt_batchnorm",
    "cache_logits",
    "finetune",
    "freeze_all_but_last_two",
    "select_cache",
    "trainable_layers",
    "tune_video_path",
    "video_batchnorms",
    "video_parameters",
]


def _step(loss: torch.Tensor, optimizer: Any, scheduler: Any, params: Any, epoch: int) -> None:
    """One clipped optimizer step of fine-tuning; a non-finite loss is an error naming the epoch."""
    if not torch.isfinite(loss):
        raise ValueError(f"non-finite fine-tuning loss at epoch {epoch}")
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    nn.utils.clip_grad_norm_(params, 1.0)
    optimizer.step()
    scheduler.step()


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
    from fsve.eval.metrics import topk_accuracy

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
