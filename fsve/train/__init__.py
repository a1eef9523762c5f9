"""Training: STCL loss (Eq. 6), zero-shot logits."""

from fsve.train.losses import similarity_logits, stcl_loss, zero_shot_logits

__all__ = ["similarity_logits", "stcl_loss", "zero_shot_logits"]
