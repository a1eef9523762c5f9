"""The evaluation metrics moved to :mod:`fsve.eval.metrics`; this name is kept for old imports."""

from fsve.eval.metrics import (
    encode_texts,
    encode_videos,
    evaluate_model,
    recall_at_k,
    target_ranks,
    topk_accuracy,
)

__all__ = [
    "encode_texts",
    "encode_videos",
    "evaluate_model",
    "recall_at_k",
    "target_ranks",
    "topk_accuracy",
]
