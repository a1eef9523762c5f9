"""Spike-text contrastive loss (STCL, Eq. 6) and zero-shot logits.

``logit_scale`` arguments are the logit multiplier ``1/τ`` itself (what ``SPKLIP.forward``
returns, already exponentiated and clamped), not its logarithm.

Factor: Eq. 6 sums the video->text and text->video cross-entropies; :func:`stcl_loss` returns
their MEAN, i.e. Eq. 6 / 2 (CLIP's convention), so a chance-level batch scores ``log B``.

Duplicate captions: two clips of one class in a batch often share a caption, and Eq. 6 would
push each away from the other's (identical) text. With ``labels`` given, every same-label pair is
a positive: the target row of sample i is uniform over ``{j : labels_j = labels_i}`` (soft
multi-positive cross-entropy); with all labels distinct this is exactly Eq. 6 / 2.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["similarity_logits", "stcl_loss", "zero_shot_logits"]


def similarity_logits(
    a: torch.Tensor, b: torch.Tensor, logit_scale: torch.Tensor | float
) -> torch.Tensor:
    """Scaled cosine similarities ``sim(a_i, b_j) / τ``: ``[N, D], [M, D]`` -> ``[N, M]``."""
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(
            f"embeddings must be [N, D] and [M, D], got {tuple(a.shape)}, {tuple(b.shape)}"
        )
    return logit_scale * F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).T


def stcl_loss(
    video_emb: torch.Tensor,
    text_emb: torch.Tensor,
    logit_scale: torch.Tensor | float,
    labels: torch.Tensor | None = None,
) -> torch.Tensor:
    """Symmetric InfoNCE of Eq. 6 over a batch of B matched pairs, ``[B, D], [B, D]`` -> scalar.

    Returns ``(CE(v->t) + CE(t->v)) / 2`` with cosine similarity and temperature ``1/logit_scale``.
    ``labels [B]`` (optional) makes all same-label pairs positives (see the module docstring).
    """
    if video_emb.shape != text_emb.shape or video_emb.ndim != 2:
        raise ValueError(
            f"video and text embeddings must both be [B, D], got {tuple(video_emb.shape)}"
            f" and {tuple(text_emb.shape)}"
        )
    if video_emb.shape[0] == 0:
        raise ValueError("stcl_loss needs a non-empty batch")
    logits = similarity_logits(video_emb, text_emb, logit_scale)  # [B, B], rows: videos
    b = logits.shape[0]
    if labels is None:
        target = torch.arange(b, device=logits.device)
        return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))
    if labels.shape != (b,):
        raise ValueError(f"labels must be [B] = [{b}], got {tuple(labels.shape)}")
    same = (labels[:, None] == labels[None, :]).to(logits.dtype)  # [B, B], symmetric
    target = same / same.sum(dim=1, keepdim=True)
    v2t = -(target * F.log_softmax(logits, dim=1)).sum(dim=1).mean()
    t2v = -(target * F.log_softmax(logits.T, dim=1)).sum(dim=1).mean()
    return 0.5 * (v2t + t2v)


def zero_shot_logits(
    video_emb: torch.Tensor, class_text_emb: torch.Tensor, logit_scale: torch.Tensor | float
) -> torch.Tensor:
    """Class logits from prompt embeddings: ``[B, D], [C, D]`` -> ``[B, C]``; argmax = class."""
    return similarity_logits(video_emb, class_text_emb, logit_scale)
