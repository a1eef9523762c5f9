"""Our layouts <-> Lava's: ``[*shape, T]`` buffers, ``(W, H, C)`` images and flipped
``(C_out, kw, kh, C_in)`` true-convolution kernels appear only here."""

from __future__ import annotations

import numpy as np

__all__ = [
    "from_lava_time_first",
    "from_lava_time_last",
    "lava_array",
    "lava_conv_weight",
    "lava_shape",
    "lava_time_last",
]


def lava_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """Our (n,) or (C, H, W) -> Lava's (n,) or (W, H, C)."""
    return tuple(shape[::-1]) if len(shape) == 3 else tuple(shape)


def lava_array(a: np.ndarray) -> np.ndarray:
    """[*ours] -> [*Lava] for one state array, (C, H, W) -> (W, H, C)."""
    return a.transpose(2, 1, 0) if a.ndim == 3 else a


def lava_time_last(x: np.ndarray) -> np.ndarray:
    """Time-first [T, *ours] -> Lava buffer [*Lava, T]."""
    if x.ndim == 4:  # [T, C, H, W] -> [W, H, C, T]
        return x.transpose(3, 2, 1, 0)
    return x.T  # [T, n] -> [n, T]


def from_lava_time_last(x: np.ndarray) -> np.ndarray:
    """Lava buffer [*Lava, T] -> time-first [T, *ours]."""
    if x.ndim == 4:  # [W, H, C, T] -> [T, C, H, W]
        return x.transpose(3, 2, 1, 0)
    return x.T


def from_lava_time_first(x: np.ndarray) -> np.ndarray:
    """Monitor data [T, *Lava] -> [T, *ours]."""
    if x.ndim == 4:  # [T, W, H, C] -> [T, C, H, W]
        return x.transpose(0, 3, 2, 1)
    return x


def lava_conv_weight(w: np.ndarray) -> np.ndarray:
    """Cross-correlation kernel [C_out, C_in, kh, kw] -> Lava's convolution kernel (C_out, kw,
    kh, C_in): Lava convolves (flips the kernel), so the flip here cancels it."""
    return np.ascontiguousarray(w[:, :, ::-1, ::-1].transpose(0, 3, 2, 1))
