"""The few-shot methods: which adaptation steps each runs, and the constants they share."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "ALPHAS",
    "BETAS",
    "DEFAULT_METHOD",
    "METHODS",
    "PROMPT",
    "REAL_DATA",
    "ZERO_SHOT",
    "Method",
    "describe",
]

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


def describe(method: str) -> str:
    """The steps of a :data:`METHODS` entry, in words (for reports)."""
    spec = METHODS[method]
    steps = [_STEPS["adabn"]] if spec.adabn else []
    steps += [_STEPS[spec.tune]] if spec.tune else []
    steps += [_STEPS["cache"]] if spec.cache else []
    return "; then ".join(steps)
