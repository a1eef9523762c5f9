"""Rendering a sample plan: intensity frames, then spikes through the camera model (Eq. 1).

Rendering is vectorised: per-frame object parameters (centre, radius, angle, intensity) are
broadcast against the pixel grid, with anti-aliased edges from a soft signed-distance mask.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from fsve.data.camera import simulate_chunks
from fsve.data.synth.plan import Plan, plan_sample
from fsve.data.synth.spec import SynthConfig

__all__ = ["chunk_frames", "make_sample", "render_frames", "render_sample", "spike_chunks"]

# Pixels (frames x H x W) rendered at once: small enough that the temporaries stay in cache
# (several times faster than one [N, H, W] pass) and memory stays bounded for paper-scale clips.
CHUNK_ELEMENTS = 1 << 17


def _shape_distance(shape: str, lx: np.ndarray, ly: np.ndarray) -> np.ndarray:
    """Approximate signed distance to the shape in units of its radius (< 0 inside).

    Disc and ring carry an off-centre hole / gap so that their rotation is visible.
    """
    if shape in ("disc", "ring"):
        r = np.sqrt(lx * lx + ly * ly)
        if shape == "disc":
            d = r - 1.0
            hole_x, hole_r = 0.5, 0.25
        else:
            d = np.abs(r - 0.75) - 0.25
            hole_x, hole_r = 0.75, 0.35
        hole = hole_r - np.sqrt((lx - hole_x) ** 2 + ly * ly)
        return np.maximum(d, hole)
    ax, ay = np.abs(lx), np.abs(ly)
    if shape == "square":
        return np.maximum(ax, ay) - 0.8
    if shape == "bar":
        return np.maximum(ax - 1.0, ay - 0.3)
    if shape == "cross":
        return np.minimum(np.maximum(ax - 1.0, ay - 0.3), np.maximum(ax - 0.3, ay - 1.0))
    if shape == "ellipse":
        return np.sqrt(lx * lx + (ly * 2.0) ** 2) - 1.0
    if shape == "triangle":  # equilateral, circumradius 1, a vertex along +x
        c, s = np.float32(0.5), np.float32(np.sqrt(3) / 2)
        d = np.maximum(-lx, c * lx + s * ay)
        return d - 0.5
    raise ValueError(f"unknown shape {shape!r}")


def render_frames(plan: Plan, start: int, stop: int) -> np.ndarray:
    """Frames ``[start, stop)`` of a plan as float32 ``[n, H, W]`` in [0, 1]."""
    h, w = plan.background.shape
    sl = slice(start, stop)
    x = plan.x[sl, None, None]
    y = plan.y[sl, None, None]
    inv = (1.0 / plan.radius[sl])[:, None, None]
    cos = np.cos(plan.angle[sl])[:, None, None]
    sin = np.sin(plan.angle[sl])[:, None, None]
    dx = (np.arange(w, dtype=np.float32)[None, None, :] - x) * inv  # [n, 1, W]
    dy = (np.arange(h, dtype=np.float32)[None, :, None] - y) * inv  # [n, H, 1]
    lx = cos * dx + sin * dy  # object frame: rotate by -angle
    ly = cos * dy - sin * dx
    dist = _shape_distance(plan.shape, lx, ly)
    dist *= plan.radius[sl, None, None]  # -> pixels
    mask = np.clip(0.5 - dist, 0.0, 1.0, out=dist)  # one-pixel soft edge (anti-aliasing)
    contrast = plan.level[sl, None, None] - plan.background  # [n, H, W]
    mask *= contrast
    mask += plan.background
    return np.clip(mask, 0.0, 1.0, out=mask)


def chunk_frames(config: SynthConfig) -> int:
    return max(1, CHUNK_ELEMENTS // (config.height * config.width))


def spike_chunks(plan: Plan, config: SynthConfig) -> Iterator[np.ndarray]:
    """Yield bool spike chunks of a plan (camera model, dark noise, line artifacts)."""
    n, step = config.frames, chunk_frames(config)
    frames = (render_frames(plan, s, min(s + step, n)) for s in range(0, n, step))
    artifacts = np.random.default_rng(plan.artifact_seed)
    for spikes in simulate_chunks(
        frames, threshold=config.threshold, seed=plan.camera_seed, dark_rate=plan.dark_rate
    ):
        if plan.line_rows.size:
            noise = artifacts.random((spikes.shape[0], plan.line_rows.size, config.width))
            spikes[:, plan.line_rows] |= noise < plan.line_rates[None, :, None]
        yield spikes


def render_sample(
    cls_index: int, rng: np.random.Generator, config: SynthConfig | None = None
) -> tuple[np.ndarray, str]:
    """Float intensity frames ``[N, H, W]`` (float32 in [0, 1]) and a caption.

    ``render_sample(c, np.random.default_rng(s), cfg)`` gives the frames that
    ``make_sample(c, s, cfg)`` feeds to the camera. Sensor effects (dark noise, line
    artifacts) are not part of the frames.
    """
    config = config or SynthConfig()
    plan = plan_sample(cls_index, rng, config)
    frames = np.empty((config.frames, config.height, config.width), dtype=np.float32)
    step = chunk_frames(config)
    for start in range(0, config.frames, step):
        stop = min(start + step, config.frames)
        frames[start:stop] = render_frames(plan, start, stop)
    return frames, plan.caption


def make_sample(
    cls_index: int,
    seed: int | np.random.SeedSequence,
    config: SynthConfig | None = None,
) -> tuple[np.ndarray, str]:
    """Bool spikes ``[N, H, W]`` and caption of one sample (camera: paper Eq. 1).

    Deterministic in ``(cls_index, seed, config)``; see :func:`sample_seed` for the seeds that
    :func:`generate_dataset` uses.
    """
    config = config or SynthConfig()
    plan = plan_sample(cls_index, np.random.default_rng(seed), config)
    return np.concatenate(list(spike_chunks(plan, config))), plan.caption
