"""Exact reductions of activity tensors, kept on the device (no sync inside hooks)."""

from __future__ import annotations

import torch

__all__ = ["exact_sum", "integral_", "magnitude"]

_CHUNK = 1 << 16


def exact_sum(t: torch.Tensor) -> torch.Tensor:
    """``Σ t`` as a float64 0-d tensor, exact for integer values up to 256 in magnitude.

    Float32 partial sums over chunks of 2^16 elements stay below 2^24 (exact), and only the
    partials are summed in float64: a float64 reduction of the whole tensor is ~60x slower.
    """
    flat = t.reshape(-1)
    n = flat.numel()
    k = n // _CHUNK
    if k == 0:
        return flat.sum().to(torch.float64)
    chunk = n & -n  # the largest power of two dividing n: one reduction when it is large
    if chunk >= 1024:
        chunk = min(chunk, _CHUNK)
        return flat.view(n // chunk, chunk).sum(1).to(torch.float64).sum()
    total = flat[: k * _CHUNK].view(k, _CHUNK).sum(1).to(torch.float64).sum()
    if n > k * _CHUNK:
        total = total + flat[k * _CHUNK :].sum().to(torch.float64)
    return total


def integral_(t: torch.Tensor) -> torch.Tensor:
    """Whether ``t`` is integer-valued, as a 0-d bool tensor (no sync). Overwrites ``t`` with its
    fractional part: pass a temporary (saves a pass and an allocation on large inputs)."""
    return torch.count_nonzero(t.frac_()) == 0


def magnitude(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(|x|, x is integer-valued)`` for an input of unknown kind (no host sync)."""
    ax = x.abs()  # one pass, cheaper than a min reduction and a sync for the sign
    is_int = torch.count_nonzero(torch.frac(x)) == 0
    return ax, is_int
