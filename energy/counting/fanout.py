"""Fan-out of a convolution: how many (output position, kernel tap) pairs read each input."""

from __future__ import annotations

import functools

import torch
from torch import nn

__all__ = ["conv_fanout", "conv_pads", "shared_fanout"]


def _fanout_1d(n_in: int, n_out: int, k: int, stride: int, pad_left: int, dilation: int) -> list:
    """Per input index: how many (output index, kernel tap) pairs read it."""
    f = [0] * n_in
    for o in range(n_out):
        for j in range(k):
            i = o * stride - pad_left + j * dilation
            if 0 <= i < n_in:
                f[i] += 1
    return f


@functools.lru_cache(maxsize=512)
def shared_fanout(
    in_size: tuple[int, ...],
    out_size: tuple[int, ...],
    kernel: tuple[int, ...],
    stride: tuple[int, ...],
    pad_left: tuple[int, ...],
    dilation: tuple[int, ...],
) -> torch.Tensor:
    """``fanout[*S]`` (float64, CPU): output positions x taps reached by each input position,
    built once per geometry per process (issue 15: every ``profile_model`` call used to rebuild
    it in Python loops). Read it, never write it; :func:`conv_fanout` gives a fresh copy.

    Equals ``conv_transpose(ones(out_size), ones(kernel))`` cropped to ``in_size``; zero padding
    on the left by ``pad_left`` (right padding only shows in ``out_size``).
    """
    maps = [
        torch.tensor(_fanout_1d(n, o, k, s, p, d), dtype=torch.float64)
        for n, o, k, s, p, d in zip(
            in_size, out_size, kernel, stride, pad_left, dilation, strict=True
        )
    ]
    fan = maps[0]
    for m in maps[1:]:
        fan = fan.unsqueeze(-1) * m  # outer product, [*S]
    return fan


def conv_fanout(
    in_size: tuple[int, ...],
    out_size: tuple[int, ...],
    kernel: tuple[int, ...],
    stride: tuple[int, ...],
    pad_left: tuple[int, ...],
    dilation: tuple[int, ...],
) -> torch.Tensor:
    """:func:`shared_fanout` as a fresh tensor the caller may modify."""
    return shared_fanout(in_size, out_size, kernel, stride, pad_left, dilation).clone()


def conv_pads(m: nn.modules.conv._ConvNd, nsp: int) -> tuple[int, ...]:
    """Left zero padding per spatial dim (``padding='same'`` puts the extra one on the right)."""
    if isinstance(m.padding, str):
        if m.padding == "valid":
            return (0,) * nsp
        return tuple(d * (k - 1) // 2 for d, k in zip(m.dilation, m.kernel_size, strict=True))
    return tuple(m.padding)
