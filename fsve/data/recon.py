"""Images from spike streams: TFI (texture from inter-spike interval) and TFP (from playback).

Both follow SpikeCV (``spkProc/reconstruction/tfi.py``, ``tfp.py``; REFERENCE.md 1) and add one
calibration factor. A pixel of intensity ``I`` fires every ``threshold / (alpha * I)`` read-outs
(paper Eq. 1), so ``I = threshold / (alpha * interval) = (threshold / alpha) * rate``. With the
defaults (``threshold=5.0, alpha=1.0``, the camera model's defaults) the images are in
intensity units x 255; ``threshold=1.0`` gives SpikeCV's raw ``255 / interval`` and
``255 * rate``. :func:`check_threshold` refuses a threshold with which every pixel would come
out the same grey whatever the spikes (issue 16, item 11).
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


def _check_camera(threshold: float, alpha: float) -> None:
    for name, value in (("threshold", threshold), ("alpha", alpha)):
        number = isinstance(value, int | float | np.number) and not isinstance(value, bool)
        if not number or not np.isfinite(value) or value <= 0:
            raise ValueError(f"{name} must be a finite number > 0, got {value!r}")


def check_threshold(method: str, threshold: float, half_window: int, alpha: float = 1.0) -> None:
    """Raise ``ValueError`` if ``method`` ("tfi" or "tfp") with this ``threshold`` gives one
    grey for every pixel whatever the spikes: all black (a pixel firing every frame still
    rounds to 0) or, for TFI, all white (a pixel without a spike in the window reaches 255)."""
    _check_camera(1.0, alpha)
    number = isinstance(threshold, int | float | np.number) and not isinstance(threshold, bool)
    if not number or not np.isfinite(threshold):
        raise ValueError(f"threshold must be a finite number > 0, got {threshold!r}")
    brightest = threshold / alpha * 255.0  # grey of a pixel firing every frame
    if brightest <= 0.5:
        why = (
            f"a pixel firing every frame maps to {brightest:.2g} grey levels (< 0.5)"
            if threshold > 0
            else "grey = 255 x threshold x spike rate is never above 0"
        )
        raise ValueError(
            f"threshold {threshold:g} gives an all-black image: {why}; use a threshold above"
            f" {0.5 * alpha / 255:.2g} ({DEFAULT_THRESHOLD:g}: the camera's, 1: SpikeCV raw)"
        )
    window = 2 * half_window + 1
    if method == "tfi" and brightest / window > 254.5:
        raise ValueError(
            f"threshold {threshold:g} gives an all-white image: a pixel without a spike in the"
            f" {window}-frame window maps to {brightest / window:.0f} grey levels (> 255); use a"
            f" threshold below {254.5 * window * alpha / 255:.4g}"
        )


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
    _check_camera(threshold, alpha)
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
    _check_camera(threshold, alpha)
    if half_window < 0:
        raise ValueError(f"half_window must be >= 0, got {half_window}")
    window = spikes[max(0, t - half_window) : t + half_window + 1]
    rate = window.mean(axis=0, dtype=np.float64)
    return _to_uint8(rate * threshold / alpha)
