"""Zero-shot classification (Top-k, paper Table 1) and text-to-video retrieval (R@k, Table 5).

Metric math is in pure functions over score matrices; :func:`evaluate_model` runs a model with
``encode_video``/``encode_text`` (teacher or FSVE) over a dataset split.

Ties count against the sample (pessimistic rank): the rank of the correct entry is the number
of OTHER entries scoring greater than OR EQUAL to it, and a sample is a hit at ``k`` if that
rank is ``< k``. A model giving every class the same score thus scores 0 at Top-1 (not 100%),
and exact float ties cannot inflate a result.

Zero-shot: class ``c`` is scored by the cosine similarity of the video embedding with the
embedding of its prompt (``"a video of an object {class name}"`` by default), Eq. 6's
similarity. Retrieval: caption ``i`` queries all videos of the split; its ground truth is video
``i`` (the video it describes), even if other videos of the same class fit the caption.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from fsve.data.dataset import collate

__all__ = [
    "encode_texts",
    "encode_videos",
    "evaluate_model",
    "recall_at_k",
    "target_ranks",
    "topk_accuracy",
]


def target_ranks(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Pessimistic 0-based rank of ``scores[i, targets[i]]`` in row i: ``[N, M], [N] -> [N]``.

    rank = #{j != t : scores[i, j] >= scores[i, t]} (ties count against the target).
    """
    if scores.ndim != 2:
        raise ValueError(f"scores must be [N, M], got {tuple(scores.shape)}")
    n, m = scores.shape
    if targets.shape != (n,):
        raise ValueError(f"targets must be [N] = [{n}], got {tuple(targets.shape)}")
    targets = targets.long()
    if n and (targets.min() < 0 or targets.max() >= m):
        raise ValueError(f"targets must lie in [0, {m}), got [{targets.min()}, {targets.max()}]")
    if torch.isnan(scores).any():
        raise ValueError("scores contain NaN")
    own = scores.gather(1, targets[:, None])  # [N, 1]
    return (scores >= own).sum(dim=1) - 1  # minus the target itself


def topk_accuracy(
    logits: torch.Tensor, labels: torch.Tensor, ks: Iterable[int] = (1, 5)
) -> dict[int, float]:
    """Fraction of rows whose label is among the top k classes, per k (ties count against).

    ``logits [N, C]`` (any monotone score), ``labels [N]`` -> ``{k: fraction in [0, 1]}``.
    """
    ks = _check_ks(ks)
    if logits.shape[0] == 0:
        raise ValueError("topk_accuracy needs at least one sample")
    ranks = target_ranks(logits, labels)
    return {k: float((ranks < k).double().mean()) for k in ks}


def recall_at_k(
    sim_text_to_video: torch.Tensor, ks: Iterable[int] = (1, 5, 10)
) -> dict[int, float]:
    """Text-to-video Recall@k: caption i's ground truth is video i (ties count against).

    ``sim_text_to_video [N_text, N_video]``, ``N_text <= N_video`` -> ``{k: fraction}``.
    """
    ks = _check_ks(ks)
    n = sim_text_to_video.shape[0]
    if sim_text_to_video.ndim != 2 or n == 0 or n > sim_text_to_video.shape[1]:
        raise ValueError(
            f"similarities must be [N_text, N_video] with 0 < N_text <= N_video,"
            f" got {tuple(sim_text_to_video.shape)}"
        )
    ranks = target_ranks(sim_text_to_video, torch.arange(n))
    return {k: float((ranks < k).double().mean()) for k in ks}


def _check_ks(ks: Iterable[int]) -> list[int]:
    ks = list(ks)
    if not ks or any(isinstance(k, bool) or not isinstance(k, int) or k < 1 for k in ks):
        raise ValueError(f"ks must be ints >= 1, got {ks}")
    return ks


# ---------------------------------------------------------------- running a model


def _rank_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


@torch.no_grad()
def encode_videos(
    model: nn.Module,
    dataset: Dataset,
    batch_size: int = 32,
    device: torch.device | str = "cpu",
    workers: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Video embeddings ``[N, D]`` (float32, CPU) and labels ``[N]`` of a whole dataset, in order.

    In a process group each rank encodes every ``world``-th sample and the results are
    all-gathered, so every rank returns the full, ordered set.
    """
    device = torch.device(device)
    rank, world = _rank_world()
    part = Subset(dataset, list(range(rank, len(dataset), world)))
    loader = DataLoader(part, batch_size=batch_size, collate_fn=collate, num_workers=workers)
    embs, labels = [], []
    for batch in loader:
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda"):
            emb = model.encode_video(batch["spikes"].to(device, non_blocking=True))
        embs.append(emb.float().cpu())
        labels.append(batch["label"])
    emb = torch.cat(embs) if embs else torch.empty(0)
    lab = torch.cat(labels) if labels else torch.empty(0, dtype=torch.long)
    if world == 1:
        return emb, lab
    return _gather_strided(emb, lab, len(dataset), world, device)


def _gather_strided(
    emb: torch.Tensor, lab: torch.Tensor, total: int, world: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """All-gather the rank-strided shards and interleave them back into dataset order."""
    size = -(-total // world)
    dim = torch.tensor([emb.shape[1] if emb.ndim == 2 else 0], device=device)
    dist.all_reduce(dim, op=dist.ReduceOp.MAX)
    d = int(dim)
    pad_e = torch.zeros(size, d, device=device)
    pad_l = torch.full((size,), -1, dtype=torch.long, device=device)
    pad_e[: len(emb)] = emb.to(device)
    pad_l[: len(lab)] = lab.to(device)
    all_e = [torch.empty_like(pad_e) for _ in range(world)]
    all_l = [torch.empty_like(pad_l) for _ in range(world)]
    dist.all_gather(all_e, pad_e)
    dist.all_gather(all_l, pad_l)
    out_e = torch.empty(total, d)
    out_l = torch.empty(total, dtype=torch.long)
    for r in range(world):
        idx = torch.arange(r, total, world)
        out_e[idx] = all_e[r][: len(idx)].cpu()
        out_l[idx] = all_l[r][: len(idx)].cpu()
    return out_e, out_l


@torch.no_grad()
def encode_texts(
    model: nn.Module,
    tokenizer: Any,
    texts: Sequence[str],
    device: torch.device | str = "cpu",
    batch_size: int = 256,
) -> torch.Tensor:
    """Text embeddings ``[M, D]`` (float32, CPU) through ``model.encode_text``."""
    device = torch.device(device)
    length = _context_length(model)
    out = []
    for start in range(0, len(texts), batch_size):
        tokens = tokenizer.encode(list(texts[start : start + batch_size]), length).to(device)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda"):
            out.append(model.encode_text(tokens).float().cpu())
    return torch.cat(out)


def _context_length(model: nn.Module) -> int:
    text = getattr(model, "text", None)
    cfg = getattr(text, "cfg", None)
    if cfg is None or not hasattr(cfg, "context_length"):
        raise ValueError(f"{type(model).__name__} has no text encoder with a context length")
    return int(cfg.context_length)


def evaluate_model(
    model: nn.Module,
    tokenizer: Any,
    dataset: Any,
    prompts: Sequence[str],
    batch_size: int = 32,
    device: torch.device | str = "cpu",
    retrieval: bool = True,
    workers: int = 0,
) -> dict[str, float]:
    """Zero-shot Top-1/Top-5 through ``prompts`` (one per class, label order) and R@1/5/10, in %.

    ``dataset`` is a :class:`~fsve.data.dataset.SpikeDataset` (its ``captions`` are the
    retrieval queries). Keys: ``top1_pct, top5_pct`` and, with ``retrieval``, ``r1_pct, r5_pct,
    r10_pct``. Call with the model in eval mode.
    """
    video, labels = encode_videos(model, dataset, batch_size, device, workers)
    classes = encode_texts(model, tokenizer, prompts, device)
    if labels.numel() and int(labels.max()) >= len(prompts):
        raise ValueError(f"labels reach {int(labels.max())} but only {len(prompts)} prompts")
    logits = F.normalize(video, dim=-1) @ F.normalize(classes, dim=-1).T  # [N, C]
    ks = [k for k in (1, 5) if k <= len(prompts)] or [1]
    acc = topk_accuracy(logits, labels, ks)
    out = {f"top{k}_pct": 100.0 * acc.get(k, 1.0) for k in (1, 5)}
    if retrieval:
        text = encode_texts(model, tokenizer, dataset.captions, device)
        sim = F.normalize(text, dim=-1) @ F.normalize(video, dim=-1).T  # [N_text, N_video]
        rec = recall_at_k(sim, (1, 5, 10))
        out.update({f"r{k}_pct": 100.0 * v for k, v in rec.items()})
    return out
