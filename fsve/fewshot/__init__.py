"""Few-shot adaptation of a checkpoint to the shifted "real" domain (Fig. 4).

:mod:`~fsve.fewshot.methods` (what each method runs), :mod:`~fsve.fewshot.adapt` (AdaBN,
fine-tuning, the cache head), :mod:`~fsve.fewshot.scoring`, :mod:`~fsve.fewshot.run` (one
experiment over shots and seeds), :mod:`~fsve.fewshot.summary` (mean ± std per k, target check,
plot) and the command ``python -m fsve.fewshot`` (``__main__``, whose docstring describes the
methods in full).
"""

from fsve.fewshot.adapt import (
    adapt_batchnorm,
    cache_logits,
    finetune,
    freeze_all_but_last_two,
    select_cache,
    trainable_layers,
    tune_video_path,
    video_batchnorms,
    video_parameters,
)
from fsve.fewshot.methods import (
    ALPHAS,
    BETAS,
    DEFAULT_METHOD,
    METHODS,
    PROMPT,
    REAL_DATA,
    ZERO_SHOT,
    Method,
    describe,
)
from fsve.fewshot.run import adapt_and_score, ensure_real_data, pick_shots, run_fewshot
from fsve.fewshot.scoring import embed, topk_pct, zero_shot_pct, zero_shot_top1
from fsve.fewshot.summary import check_target, plot_fewshot, summarize

__all__ = [
    "ALPHAS",
    "BETAS",
    "DEFAULT_METHOD",
    "METHODS",
    "PROMPT",
    "REAL_DATA",
    "ZERO_SHOT",
    "Method",
    "adapt_and_score",
    "adapt_batchnorm",
    "cache_logits",
    "check_target",
    "describe",
    "embed",
    "ensure_real_data",
    "finetune",
    "freeze_all_but_last_two",
    "main",
    "pick_shots",
    "plot_fewshot",
    "run_fewshot",
    "select_cache",
    "summarize",
    "topk_pct",
    "trainable_layers",
    "tune_video_path",
    "video_batchnorms",
    "video_parameters",
    "zero_shot_pct",
    "zero_shot_top1",
]


def main(argv: list[str] | None = None) -> int:
    """``python -m fsve.fewshot`` called as a function (see :mod:`fsve.fewshot.__main__`)."""
    from fsve.fewshot.__main__ import main as run

    return run(argv)
