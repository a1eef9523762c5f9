"""Scoring for few-shot: video embeddings of a split and zero-shot Top-k in %."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

__all__ = ["embed", "topk_pct", "zero_shot_pct", "zero_shot_top1"]


def embed(
    model: nn.Module, data: Dataset, batch_size: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Video embeddings ``[N, D]`` and labels ``[N]`` of a dataset (eval mode, no grad)."""
    from fsve.eval.metrics import encode_videos

    model.eval()
    return encode_videos(model, data, batch_size, device)


def zero_shot_pct(video: torch.Tensor, labels: torch.Tensor, text: torch.Tensor) -> float:
    """Zero-shot Top-1 (%) of video embeddings ``[N, D]`` against class embeddings ``[C, D]``."""
    from fsve.eval.metrics import topk_accuracy

    logits = F.normalize(video.float(), dim=-1) @ F.normalize(text.float().cpu(), dim=-1).T
    return 100.0 * topk_accuracy(logits, labels, (1,))[1]


def zero_shot_top1(
    model: nn.Module, data: Dataset, text: torch.Tensor, batch_size: int, device: torch.device
) -> float:
    """Zero-shot Top-1 (%) of ``data`` against the class embeddings ``text [C, D]``."""
    return zero_shot_pct(*embed(model, data, batch_size, device), text)


def topk_pct(logits: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """``top1_pct`` and ``top5_pct`` (Top-5 counts every sample when there are <= 5 classes)."""
    from fsve.eval.metrics import topk_accuracy

    ks = [k for k in (1, 5) if k <= logits.shape[1]] or [1]
    acc = topk_accuracy(logits, labels, ks)
    return {f"top{k}_pct": 100.0 * acc.get(k, 1.0) for k in (1, 5)}
