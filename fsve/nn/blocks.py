"""Multi-step conv helpers and membrane-shortcut (MS-ResNet) blocks, Appendix A.5 (Eq. 7-8).

Feature maps are time-first ``[T, B, C, H, W]``. Convolutions are plain ``nn.Conv2d`` modules run
on ``[T*B, C, H, W]`` by :func:`seq_forward`, so hooks on them (energy counting, the spike-driven
check) see ordinary 4-D inputs; normalisation is TDBN (:mod:`fsve.nn.norm`).

In an MS-ResNet the tensor passed between blocks is a real-valued *membrane input* ``x`` (the
current fed to the next LIF), never spikes; every convolution reads spikes, so its synaptic
operations are accumulations (spike-driven), and the shortcut adds membrane potentials.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from fsve.nn.neurons import LIF, LIFParams
from fsve.nn.norm import TDBN2d

__all__ = ["ConvTDBN", "MSBlock", "ms_stage", "seq_forward"]


def seq_forward(
    module: Callable[[torch.Tensor], torch.Tensor], x_seq: torch.Tensor
) -> torch.Tensor:
    """Apply a stateless per-sample ``module`` to every step of ``[T, B, ...]``.

    Time is folded into the batch (``[T*B, ...]``), which is exact for layers without state
    across samples (conv, linear, pooling; not training-mode BN, which TDBN handles itself).
    """
    if x_seq.ndim < 3:
        raise ValueError(f"seq_forward expects [T, B, ...], got shape {tuple(x_seq.shape)}")
    y = module(x_seq.flatten(0, 1))  # [T*B, ...]
    return y.unflatten(0, x_seq.shape[:2])  # [T, B, ...]


class ConvTDBN(nn.Module):
    """``TDBN(Conv2d(x))`` on ``[T, B, C_in, H, W]`` -> ``[T, B, C_out, H', W']`` (no bias).

    Used for the stem (on binary input frames) and the downsampling shortcut (on spikes).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        tdbn_alpha: float = 1.0,
        v_threshold: float = 1.0,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(
            in_channels, out_channels, kernel_size, stride, padding=kernel_size // 2, bias=False
        )
        self.bn = TDBN2d(out_channels, alpha=tdbn_alpha, v_threshold=v_threshold)

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        return self.bn(seq_forward(self.conv, x_seq))


class MSBlock(nn.Module):
    """Membrane-shortcut basic block (MS-ResNet, Eq. 7-8): ``[T, B, C_in, H, W]`` -> membrane.

    ``out = TDBN2(conv2(LIF2(TDBN1(conv1(LIF1(x)))))) + shortcut`` where ``x`` is the real-valued
    membrane input of the block. ``TDBN2`` starts with weight 0 (``alpha = 0``), so at
    initialisation the block returns its shortcut exactly (identity when shapes match).

    Shortcut: ``x`` itself when stride is 1 and channels match (an addition of membrane
    potentials, no multiplication). When the shape changes it is ``TDBN(conv1x1_stride(LIF1(x)))``:
    the 1x1 conv reads the SPIKES of the block's first LIF, not the real ``x``. The original
    MS-ResNet (Ariande1/MS-ResNet) convolves the real ``x`` there, a multiply-accumulate on
    analogue values; reading ``LIF1(x)`` keeps every synapse of the network spike-driven at no
    extra neuron cost (LIF1 is shared with the residual branch; an own LIF with the same
    parameters would emit the same spikes).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        lif: LIFParams | None = None,
        tdbn_alpha: float = 1.0,
    ) -> None:
        super().__init__()
        p = LIFParams() if lif is None else lif
        v_th = p.v_threshold
        self.lif1 = LIF(p)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, padding=1, bias=False)
        self.bn1 = TDBN2d(out_channels, alpha=tdbn_alpha, v_threshold=v_th)
        self.lif2 = LIF(p)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, padding=1, bias=False)
        self.bn2 = TDBN2d(out_channels, alpha=0.0, v_threshold=v_th)  # zero-init: identity block
        self.shortcut: ConvTDBN | None = None
        if stride != 1 or in_channels != out_channels:
            self.shortcut = ConvTDBN(in_channels, out_channels, 1, stride, tdbn_alpha, v_th)

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        """Membrane input ``[T, B, C_in, H, W]`` -> membrane output ``[T, B, C_out, H', W']``."""
        if x_seq.ndim != 5:
            raise ValueError(f"MSBlock expects [T, B, C, H, W], got shape {tuple(x_seq.shape)}")
        s = self.lif1(x_seq)  # spikes [T, B, C_in, H, W]
        y = self.bn1(seq_forward(self.conv1, s))
        y = self.bn2(seq_forward(self.conv2, self.lif2(y)))
        short = x_seq if self.shortcut is None else self.shortcut(s)
        return y + short


def ms_stage(
    in_channels: int,
    out_channels: int,
    blocks: int,
    stride: int,
    lif: LIFParams | None = None,
    tdbn_alpha: float = 1.0,
) -> nn.Sequential:
    """``blocks`` MS-ResNet blocks; the first one changes channels and applies ``stride``."""
    if blocks < 1:
        raise ValueError(f"a stage needs at least one block, got {blocks}")
    layers = [MSBlock(in_channels, out_channels, stride, lif, tdbn_alpha)]
    layers += [MSBlock(out_channels, out_channels, 1, lif, tdbn_alpha) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)
