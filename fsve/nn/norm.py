"""Threshold-dependent batch normalisation (TDBN, Zheng et al. AAAI 2021) for multi-step SNNs.

TDBN normalises the pre-synaptic currents of a layer with statistics taken over time as well as
batch and space, per channel, and initialises the affine weight to ``alpha · V_th`` (the threshold
of the neurons it feeds) so that the normalised currents start on the scale of that threshold::

    y = alpha V_th (x - E[x]) / sqrt(Var[x] + eps) + beta      (train: E, Var over T, B, H, W)

Both classes are ``torch.nn.BatchNorm{1,2}d`` whose ``forward`` folds time into the batch, so the
state dict, running statistics, ``eval()`` behaviour and BN folding are exactly those of plain BN
(in eval TDBN is a fixed per-channel affine map that folds into the preceding conv or linear
layer). This equals SpikingJelly's ``layer.ThresholdDependentBatchNorm2d(alpha, v_th, C)``
(multi-step) numerically; the 1-D variant works on channel-last transformer tokens.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["TDBN1d", "TDBN2d", "ThresholdDependent"]


def _init_weight(bn: nn.BatchNorm1d | nn.BatchNorm2d, alpha: float, v_threshold: float) -> None:
    for name, value in (("alpha", alpha), ("v_threshold", v_threshold)):
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise ValueError(f"TDBN {name} must be a finite number, got {value!r}")
    bn.alpha = float(alpha)
    bn.v_threshold = float(v_threshold)
    with torch.no_grad():
        bn.weight.fill_(bn.alpha * bn.v_threshold)


class ThresholdDependent:
    """The TDBN part of :class:`TDBN1d` and :class:`TDBN2d`, mixed in before the BatchNorm class:
    an affine BN with the weight initialised to ``alpha · v_threshold``, both in its repr."""

    alpha: float
    v_threshold: float

    def __init__(
        self,
        num_features: int,
        alpha: float = 1.0,
        v_threshold: float = 1.0,
        eps: float = 1e-5,
        momentum: float = 0.1,
    ) -> None:
        super().__init__(num_features, eps=eps, momentum=momentum, affine=True)
        _init_weight(self, alpha, v_threshold)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, alpha={self.alpha}, v_threshold={self.v_threshold}"


class TDBN2d(ThresholdDependent, nn.BatchNorm2d):
    """TDBN for conv feature maps ``[T, B, C, H, W]``: statistics over ``T·B·H·W`` per channel.

    ``alpha = 0`` gives a zero-initialised TDBN (the last one of an MS-ResNet block).
    """

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        if x_seq.ndim != 5:
            raise ValueError(f"TDBN2d expects [T, B, C, H, W], got shape {tuple(x_seq.shape)}")
        y = super().forward(x_seq.flatten(0, 1))  # [T*B, C, H, W]
        return y.unflatten(0, x_seq.shape[:2])  # [T, B, C, H, W]


class TDBN1d(ThresholdDependent, nn.BatchNorm1d):
    """TDBN for channel-last tokens ``[T, B, ..., C]`` (e.g. ``[T, B, N, C]``).

    Statistics per channel over every other dimension (``T·B·N``). Equals SpikingJelly's
    ``ThresholdDependentBatchNorm1d`` applied to the channel-first ``[T, B, C, N]`` layout.
    """

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        if x_seq.ndim < 3 or x_seq.shape[-1] != self.num_features:
            raise ValueError(
                f"TDBN1d expects [T, B, ..., {self.num_features}], got shape {tuple(x_seq.shape)}"
            )
        y = super().forward(x_seq.reshape(-1, self.num_features))  # [T*B*N, C]
        return y.view(x_seq.shape)  # [T, B, ..., C]
