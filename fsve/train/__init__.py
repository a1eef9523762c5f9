"""Training: STCL loss (Eq. 6), zero-shot logits, the epoch loop, evaluation metrics."""

from fsve.eval.metrics import recall_at_k, topk_accuracy
from fsve.train.loop import LoopConfig, fit
from fsve.train.losses import similarity_logits, stcl_loss, zero_shot_logits

__all__ = [
    "LoopConfig",
    "fit",
    "recall_at_k",
    "similarity_logits",
    "stcl_loss",
    "topk_accuracy",
    "zero_shot_logits",
]
