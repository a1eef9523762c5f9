"""Evaluation: the metrics (:mod:`fsve.eval.metrics`), scoring a checkpoint
(:mod:`fsve.eval.evaluate`) and the command ``python -m fsve.eval CKPT`` (``__main__``)."""

from fsve.eval.evaluate import evaluate_checkpoint, model_frame_size, window_for_model, write_row
from fsve.eval.metrics import evaluate_model, recall_at_k, topk_accuracy

__all__ = [
    "evaluate_checkpoint",
    "evaluate_model",
    "main",
    "model_frame_size",
    "recall_at_k",
    "topk_accuracy",
    "window_for_model",
    "write_row",
]


def main(argv: list[str] | None = None) -> int:
    """``python -m fsve.eval`` called as a function (see :mod:`fsve.eval.__main__`)."""
    from fsve.eval.__main__ import main as run

    return run(argv)
