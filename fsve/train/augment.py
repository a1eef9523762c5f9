"""Training-time augmentation: random translation of whole clips."""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["RandomShift", "random_shift"]


def random_shift(spikes: torch.Tensor, max_px: int) -> torch.Tensor:
    """Roll each clip ``[B, ..., H, W]`` by its own random ``(dy, dx)`` in ``[-max_px, max_px]``.

    One offset per clip (all blocks and frames alike), drawn with the global torch RNG (so a
    resumed run draws the same); pixels leaving one edge re-enter at the other. Labels and
    captions are unchanged: the built-in classes are defined by motion, not position.
    """
    if max_px <= 0:
        return spikes
    offsets = torch.randint(-max_px, max_px + 1, (spikes.shape[0], 2)).tolist()
    return torch.stack(
        [
            torch.roll(x, (dy, dx), dims=(-2, -1))
            for x, (dy, dx) in zip(spikes, offsets, strict=True)
        ]
    )


class RandomShift:
    """``augment`` for :func:`fit`: :func:`random_shift` of ``batch["spikes"]``."""

    def __init__(self, max_px: int) -> None:
        if max_px < 0:
            raise ValueError(f"shift must be >= 0 pixels, got {max_px}")
        self.max_px = max_px

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        return {**batch, "spikes": random_shift(batch["spikes"], self.max_px)}
