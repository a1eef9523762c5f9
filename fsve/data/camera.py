"""Spike camera model: intensity frames -> binary spike frames (paper Eq. 1, Appendix A.8.2).

Every pixel integrates ``alpha * I`` once per read-out. When the integral reaches ``threshold``
the pixel fires (at most one spike per read-out) and the threshold is subtracted (reset by
subtraction, so the remainder carries over, Eq. 1's ``mod theta``). Pixels start at a random
charge ``U(0, 1) * threshold`` as SpikeCV's converter does, so first spikes are not synchronised.
Optional dark noise adds spurious spikes with a fixed probability per pixel and read-out.

Frames are ``[N, H, W]`` float in [0, 1]; spikes are ``[N, H, W]`` bool. Long videos stream
through :func:`simulate_chunks`, which carries the charge from chunk to chunk, so memory stays
bounded by the chunk size.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

DEFAULT_THRESHOLD = 5.0  # the paper's converter (Appendix A.8.2)


@dataclass(frozen=True)
class CameraParams:
    """Parameters of the integrate-and-fire pixel."""

    threshold: float = DEFAULT_THRESHOLD  # theta, charge units
    alpha: float = 1.0  # photo-conversion rate, charge per unit intensity per read-out
    dark_rate: float = 0.0  # probability of a spurious spike per pixel per read-out

    def __post_init__(self) -> None:
        if not self.threshold > 0:
            raise ValueError(f"camera threshold must be > 0, got {self.threshold}")
        if not self.alpha > 0:
            raise ValueError(f"camera alpha must be > 0, got {self.alpha}")
        if not 0.0 <= self.dark_rate < 1.0:
            raise ValueError(f"camera dark_rate must be in [0, 1), got {self.dark_rate}")


def initial_charge(
    shape: tuple[int, int], threshold: float, rng: np.random.Generator
) -> np.ndarray:
    """Random starting charge ``U(0, 1) * threshold`` per pixel, float64 ``[H, W]``."""
    return rng.random(shape) * threshold


def integrate_and_fire(
    frames: np.ndarray, charge: np.ndarray, params: CameraParams
) -> tuple[np.ndarray, np.ndarray]:
    """Run the pixel model over ``frames [n, H, W]`` from ``charge [H, W]``.

    Returns ``(spikes [n, H, W] bool, charge_after [H, W])``; the given charge is not modified.
    Dark noise is not applied here (it needs a random source; see :func:`simulate_chunks`).
    """
    frames = np.asarray(frames)
    if frames.ndim != 3:
        raise ValueError(f"frames must be [N, H, W], got shape {frames.shape}")
    if frames.shape[1:] != charge.shape:
        raise ValueError(f"frames are {frames.shape[1:]} but charge is {charge.shape}")
    acc = charge.astype(np.float64, copy=True)
    spikes = np.empty(frames.shape, dtype=bool)
    gain = params.alpha
    theta = params.threshold
    for n in range(frames.shape[0]):
        acc += gain * frames[n]
        fired = spikes[n]
        np.greater_equal(acc, theta, out=fired)
        acc -= theta * fired
    return spikes, acc


def simulate_chunks(
    chunks: Iterable[np.ndarray],
    threshold: float = DEFAULT_THRESHOLD,
    alpha: float = 1.0,
    seed: int | None = None,
    dark_rate: float = 0.0,
) -> Iterator[np.ndarray]:
    """Stream the camera over an iterable of frame chunks ``[n_i, H, W]``.

    Yields one bool spike chunk per input chunk; the charge carries across chunks, so the
    result equals :func:`simulate` on the concatenated frames with the same seed.
    """
    params = CameraParams(threshold=threshold, alpha=alpha, dark_rate=dark_rate)
    rng = np.random.default_rng(seed)
    charge: np.ndarray | None = None
    for chunk in chunks:
        chunk = np.asarray(chunk)
        if chunk.ndim != 3:
            raise ValueError(f"frame chunks must be [n, H, W], got shape {chunk.shape}")
        if charge is None:
            charge = initial_charge(chunk.shape[1:], params.threshold, rng)
        if not np.isfinite(chunk).all():
            raise ValueError("frames contain NaN or infinite intensities")
        spikes, charge = integrate_and_fire(chunk, charge, params)
        if params.dark_rate > 0:
            spikes |= rng.random(chunk.shape) < params.dark_rate
        yield spikes


def simulate(
    frames: np.ndarray,
    threshold: float = DEFAULT_THRESHOLD,
    alpha: float = 1.0,
    seed: int | None = None,
    dark_rate: float = 0.0,
) -> np.ndarray:
    """Float frames ``[N, H, W]`` in [0, 1] -> bool spikes ``[N, H, W]`` (Eq. 1)."""
    frames = np.asarray(frames)
    if frames.ndim != 3:
        raise ValueError(f"frames must be [N, H, W], got shape {frames.shape}")
    if frames.shape[0] == 0:
        return np.zeros(frames.shape, dtype=bool)
    return next(simulate_chunks([frames], threshold, alpha, seed, dark_rate))
