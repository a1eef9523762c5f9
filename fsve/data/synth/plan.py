"""The random draws of one sample (:func:`plan_sample`): appearance, per-frame trajectory,
sensor artifacts and caption; rendering a plan is pure (:mod:`fsve.data.synth.render`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fsve.data.synth.spec import (
    ADVERBS,
    BACKGROUNDS,
    BG_PHRASES,
    BRIGHT_WORDS,
    CAPTION_FRAMES,
    CLASSES,
    NOISY_DARK_RATE,
    POSITION_PHRASES,
    SHAPES,
    SIZE_WORDS,
    CaptionSignature,
    SynthConfig,
    position_cell,
)

__all__ = ["Plan", "plan_sample"]


@dataclass(frozen=True)
class Plan:
    """Every random choice of one sample; rendering it is deterministic."""

    shape: str
    background: np.ndarray  # [H, W] float32
    x: np.ndarray  # [N] centre column, px
    y: np.ndarray  # [N] centre row, px
    radius: np.ndarray  # [N] px
    angle: np.ndarray  # [N] rad; increasing = clockwise on screen (rows grow downwards)
    level: np.ndarray  # [N] object intensity
    dark_rate: float
    line_rows: np.ndarray  # rows with line artifacts ("real" domain)
    line_rates: np.ndarray  # spurious spike probability per pixel and frame, per row
    camera_seed: int
    artifact_seed: int
    caption: str
    signature: CaptionSignature  # what the caption states
    noisy: bool  # dark noise high enough that a caption may mention it


def plan_sample(cls_index: int, rng: np.random.Generator, config: SynthConfig) -> Plan:
    """Draw every random attribute of one sample and its per-frame trajectory.

    The draws come in a fixed order (appearance, trajectory, line artifacts, camera seeds,
    caption) that the generated files depend on: the caption's draws come after every draw that
    shapes the spikes, so the wording never changes the data.
    """
    if not 0 <= cls_index < len(CLASSES):
        raise ValueError(f"class index must be in [0, {len(CLASSES)}), got {cls_index}")
    real = config.domain == "real"
    look = _draw_look(rng, config)
    x, y, radius, angle, level = _trajectory(CLASSES[cls_index].key, look, rng, config)
    line_rows, line_rates = _line_artifacts(rng, config.height, real)
    camera_seed = int(rng.integers(2**63))
    artifact_seed = int(rng.integers(2**63))
    position = position_cell(float(np.mean(x)), float(np.mean(y)), config.height, config.width)
    noisy = bool(look.dark_rate > NOISY_DARK_RATE)
    caption, signature = _caption(cls_index, look, position, noisy, rng)
    return Plan(
        shape=look.shape,
        background=look.background,
        x=x.astype(np.float32),
        y=y.astype(np.float32),
        radius=radius.astype(np.float32),
        angle=angle.astype(np.float32),
        level=level.astype(np.float32),
        dark_rate=float(look.dark_rate),
        line_rows=line_rows,
        line_rates=line_rates,
        camera_seed=camera_seed,
        artifact_seed=artifact_seed,
        caption=caption,
        signature=signature,
        noisy=noisy,
    )


@dataclass(frozen=True)
class _Look:
    """A sample's appearance, drawn from one distribution for every class."""

    shape: str
    rel_size: float  # object radius / min(H, W), before the "real" domain's shrink
    r0: float  # object radius, px
    background: np.ndarray  # [H, W] float32
    bg_kind: str  # one of BACKGROUNDS
    bright: float  # object intensity
    dark_rate: float
    angle0: float  # rad
    speed: float  # position within the class's speed range, [0, 1)


def _draw_look(rng: np.random.Generator, config: SynthConfig) -> _Look:
    real = config.domain == "real"
    shape = SHAPES[rng.integers(len(SHAPES))]
    rel_size = rng.uniform(0.10, 0.20)
    r0 = rel_size * float(min(config.height, config.width)) * (0.6 if real else 1.0)
    background, bg_kind = _background(rng, config.height, config.width, real)
    lo = float(background.max()) + (0.15 if real else 0.3)
    bright = _span(rng, max(lo, 0.3 if real else 0.5), 0.7 if real else 1.0)
    dark_rate = rng.uniform(0.0, 0.001) if real else rng.uniform(0.0, 0.008)
    angle0 = rng.uniform(0, 2 * np.pi)
    speed = rng.random()
    return _Look(shape, rel_size, r0, background, bg_kind, bright, dark_rate, angle0, speed)


def _trajectory(
    key: str, look: _Look, rng: np.random.Generator, config: SynthConfig
) -> tuple[np.ndarray, ...]:
    """Per-frame ``x, y, radius, angle, level`` (each ``[N]``) of the action ``key``."""
    h, w, n = config.height, config.width, config.frames
    side = float(min(h, w))
    t = np.linspace(0.0, 1.0, n)
    real = config.domain == "real"
    motion = 0.5 if real else 1.0  # "real" data: local motion
    r0, speed, bright = look.r0, look.speed, look.bright
    radius = np.full(n, r0)
    angle = np.full(n, look.angle0)
    level = np.full(n, bright)
    extent = r0  # how far the object reaches from its centre

    def place(reach_x: float, reach_y: float) -> tuple[float, float]:
        """A random centre keeping a motion of +-reach (px) plus the object inside."""
        return (
            _span(rng, reach_x + extent, w - reach_x - extent),
            _span(rng, reach_y + extent, h - reach_y - extent),
        )

    if key in ("drift_left", "drift_right", "drift_up", "drift_down"):
        horizontal = key in ("drift_left", "drift_right")
        length = w if horizontal else h
        dist = length * motion * (0.3 + 0.3 * speed)
        sign = -1.0 if key in ("drift_left", "drift_up") else 1.0
        cx, cy = place(dist / 2, 0) if horizontal else place(0, dist / 2)
        path = sign * dist * (t - 0.5)
        x = cx + path if horizontal else np.full(n, cx)
        y = np.full(n, cy) if horizontal else cy + path
    elif key in ("rotate_cw", "rotate_ccw"):
        turns = 0.75 + 1.75 * speed
        sign = 1.0 if key == "rotate_cw" else -1.0
        angle = look.angle0 + sign * 2 * np.pi * turns * t
        cx, cy = place(0, 0)
        x, y = np.full(n, cx), np.full(n, cy)
    elif key in ("grow", "shrink"):
        factor = min(1.5 + 0.8 * speed, (0.3 if real else 0.42) * side / r0)
        exponent = t if key == "grow" else -t
        radius = r0 * factor**exponent
        extent = float(radius.max())
        cx, cy = place(0, 0)
        x, y = np.full(n, cx), np.full(n, cy)
    elif key == "flicker":
        cycles = 3.0 + 5.0 * speed
        base = float(look.background.mean())
        level = base + (bright - base) * (0.5 + 0.5 * np.cos(2 * np.pi * cycles * t))
        cx, cy = place(0, 0)
        x, y = np.full(n, cx), np.full(n, cy)
    elif key == "bounce":
        hops = 2.0 + 3.0 * speed
        height = h * motion * rng.uniform(0.25, 0.4)
        cx, cy = place(0, height / 2)
        y = cy + height / 2 - height * np.abs(np.sin(np.pi * hops * t))
        x = np.full(n, cx)
    elif key == "orbit":
        turns = 1.0 + 1.5 * speed
        orbit = side * motion * rng.uniform(0.18, 0.28)
        sense = rng.choice([-1.0, 1.0])
        phase = rng.uniform(0, 2 * np.pi)
        cx, cy = place(orbit, orbit)
        x = cx + orbit * np.cos(phase + sense * 2 * np.pi * turns * t)
        y = cy + orbit * np.sin(phase + sense * 2 * np.pi * turns * t)
    elif key == "sway":
        cycles = 2.0 + 3.0 * speed
        amp = w * motion * rng.uniform(0.15, 0.25)
        cx, cy = place(amp, 0)
        x = cx + amp * np.sin(2 * np.pi * cycles * t)
        y = np.full(n, cy)
    else:  # pragma: no cover - CLASSES and this table must agree
        raise AssertionError(key)
    return x, y, radius, angle, level


def _line_artifacts(rng: np.random.Generator, h: int, real: bool) -> tuple[np.ndarray, np.ndarray]:
    """Rows with line artifacts and their spurious spike rates (none outside "real")."""
    if real:  # horizontal line artifacts: a few rows with elevated spurious firing
        count = int(rng.integers(1, 4) * max(1, round(h / 64)))
        line_rows = np.sort(rng.choice(h, size=min(count, h), replace=False))
        line_rates = rng.uniform(0.03, 0.15, size=line_rows.size)
    else:
        line_rows = np.zeros(0, dtype=np.int64)
        line_rates = np.zeros(0)
    return line_rows, line_rates


def _caption(
    cls_index: int, look: _Look, position: str, noisy: bool, rng: np.random.Generator
) -> tuple[str, CaptionSignature]:
    """The caption of a sample in one of several phrasings, and what it states."""
    # Caption: attributes of this sample in one of several phrasings. Its random draws come
    # after every draw that shapes the spikes, so the wording never changes the data.
    size_bin = min(int((look.rel_size - 0.10) / 0.025), 3)
    bright_bin = 0 if look.bright < 0.6 else 1 if look.bright < 0.8 else 2
    speed_bin = min(int(look.speed * 3), 2)
    adjectives = [
        str(rng.choice(SIZE_WORDS[size_bin])),
        str(rng.choice(BRIGHT_WORDS[bright_bin])),
    ]
    if rng.random() < 0.3:
        adjectives.reverse()
    obj = " ".join([*adjectives, look.shape])
    article = _article(obj)
    phrases = CLASSES[cls_index].phrases
    vp = phrases[rng.integers(len(phrases))].format(adv=rng.choice(ADVERBS[speed_bin]))
    bg_phrase = str(rng.choice(BG_PHRASES[look.bg_kind]))
    frame = CAPTION_FRAMES[rng.integers(len(CAPTION_FRAMES) - (0 if bg_phrase else 1))]
    mention_noise = noisy and rng.random() < 0.5
    # The position is drawn last and goes at the end, so that the rest of the caption is that
    # of version 1, word for word: a text encoder with a short context (16 tokens keep 14
    # words) still sees the verb phrase and adverb where it did, and loses the position first.
    where = str(rng.choice(POSITION_PHRASES[position]))
    caption = frame.format(
        obj=f"{article} {obj}", vp=vp, bg=f" {bg_phrase}" if bg_phrase else "", bgl=bg_phrase
    )
    caption = f"{caption[:-1]}, {where}."
    if mention_noise:
        caption = caption[:-1] + ", with sensor noise."
    caption = caption[0].upper() + caption[1:]
    signature = CaptionSignature(
        label=cls_index,
        shape=look.shape,
        size=size_bin,
        brightness=bright_bin,
        speed=speed_bin,
        background=look.bg_kind,
        position=position,
        noise=True if mention_noise else None,
    )
    return caption, signature


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _background(rng: np.random.Generator, h: int, w: int, real: bool) -> tuple[np.ndarray, str]:
    kind = BACKGROUNDS[rng.integers(len(BACKGROUNDS))]
    mean = rng.uniform(0.035, 0.11) if real else rng.uniform(0.14, 0.4)
    amp = rng.uniform(0.3, 0.8) * mean if real else rng.uniform(0.05, 0.2)
    if kind == "plain":
        field = np.zeros((h, w), np.float32)
    elif kind == "gradient":
        theta = rng.uniform(0, 2 * np.pi)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        ramp = np.cos(theta) * xx / max(w - 1, 1) + np.sin(theta) * yy / max(h - 1, 1)
        field = (ramp - ramp.mean()) / max(np.ptp(ramp), 1e-6)
    else:  # smooth noise: a coarse random grid, bilinearly upsampled
        g = int(rng.integers(3, 9))
        coarse = rng.random((g, g))
        ys = np.linspace(0, g - 1, h)
        xs = np.linspace(0, g - 1, w)
        rows = np.array([np.interp(xs, np.arange(g), r) for r in coarse])  # [g, W]
        field = np.array([np.interp(ys, np.arange(g), c) for c in rows.T]).T  # [H, W]
        field = (field - field.mean()) / max(np.ptp(field), 1e-6)
    bg = np.clip(mean + amp * field, 0.0, 1.0).astype(np.float32)
    return bg, kind


def _span(rng: np.random.Generator, lo: float, hi: float) -> float:
    """Uniform in [lo, hi], or the midpoint when the interval is empty."""
    return float(rng.uniform(lo, hi)) if hi > lo else 0.5 * (lo + hi)
