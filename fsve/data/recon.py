"""Images from spike streams: TFI (texture from inter-spike interval) and TFP (from playback).

Both follow SpikeCV (``spkProc/reconstruction/tfi.py``, ``tfp.py``; REFERENCE.md 1) and add one
calibration factor. A pixel of intensity ``I`` fires every ``threshold / (alpha * I)`` read-outs
(paper Eq. 1), so ``I = threshold / (alpha * interval) = (threshold / alpha) * rate``. With the
defaults (``threshold=5.0, alpha=1.0``, the camera model's defaults) the images are in
intensity units x 255; ``threshold=1.0`` gives SpikeCV's raw ``255 / interval`` and
``255 * rate``.
"""

from __future__ import annotations

import numpy as np

from fsve.data.camera import DEFAULT_THRESHOLD


def _check_stream(spikes: np.ndarray, t: int) -> np.ndarray:
    spikes = np.asarray(spikes)
    if spikes.ndim != 3:
        raise ValueError(f"spikes must be [N, H, W], got shape {spikes.shape}")
    if not 0 <= t < spikes.shape[0]:
        raise ValueError(f"time {t} is outside the stream of {spikes.shape[0]} frames")
    return spikes


def _to_uint8(intensity: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(intensity * 255.0), 0, 255).astype(np.uint8)


def tfi_intensity(
    spikes: np.ndarray,
    t: int,
    half_window: int = 20,
    threshold: float = DEFAULT_THRESHOLD,
    alpha: float = 1.0,
) -> np.ndarray:
    """Float intensity ``[H, W]`` at frame ``t`` from the interval between the spikes around it.

    The interval runs from the last spike at or before ``t`` to the first spike after ``t``,
    each searched within ``half_window`` frames. A pixel with no spike on one side gets the
    interval ``2 * half_window + 1``, longer than any interval the window can see.
    """
    spikes = _check_stream(spikes, t)
    if half_window < 1:
        raise ValueError(f"half_window must be >= 1, got {half_window}")
    no_spike = 2 * half_window + 1
    past = spikes[max(0, t - half_window) : t + 1][::-1]  # past[0] is frame t
    future = spikes[t + 1 : t + 1 + half_window]  # future[0] is frame t + 1
    # distance back to the last spike (0 if t itself spiked); argmax finds the first True
    back = np.where(past.any(axis=0), past.argmax(axis=0), no_spike)
    ahead = np.where(future.any(axis=0), future.argmax(axis=0) + 1, no_spike)
    interval = np.minimum(back + ahead, no_spike)
    return (threshold / alpha) / interval


def tfi(
    spikes: np.ndarray,
    t: int,
    half_window: int = 20,
    threshold: float = DEFAULT_THRESHOLD,
    alpha: float = 1.0,
) -> np.ndarray:
    """TFI image, uint8 ``[H, W]``: :func:`tfi_intensity` x 255, clipped."""
    return _to_uint8(tfi_intensity(spikes, t, half_window, threshold, alpha))


def tfp(
    spikes: np.ndarray,
    t: int,
    half_window: int,
    threshold: float = DEFAULT_THRESHOLD,
    alpha: float = 1.0,
) -> np.ndarray:
    """TFP image, uint8 ``[H, W]``: firing rate over ``[t - h, t + h]`` (clipped to the stream)
    times ``threshold / alpha`` x 255."""
    spikes = _check_stream(spikes, t)
    if half_window < 0:
        raise ValueError(f"half_window must be >= 0, got {half_window}")
    window = spikes[max(0, t - half_window) : t + half_window + 1]
    rate = window.mean(axis=0, dtype=np.float64)
    return _to_uint8(rate * threshold / alpha)
