"""Built-in procedural spike-video action dataset with captions (the default data).

Each sample is a single object moving over a static background. The twelve action classes in
:data:`CLASSES` differ only in how the object moves, never in what it looks like: shape, size,
brightness, background level and texture, sensor noise, start position and speed are drawn per
sample from one distribution shared by every class, so a model has to use time to tell them
apart. Motion is defined in units of the image size and of the clip length, so a larger
``height x width`` or a longer clip shows the same action (it always spans the whole clip).

Rendering is vectorised: per-frame object parameters (centre, radius, angle, intensity) are
broadcast against the pixel grid to give all ``[N, H, W]`` frames at once, with anti-aliased
edges from a soft signed-distance mask. The float frames then go through the spike camera
(paper Eq. 1, :func:`fsve.data.camera.simulate`), so intensity is encoded as spike rate:
with ``threshold=5`` an intensity of 0.8 fires about 0.16 spikes per frame.

``domain="real"`` draws a shifted, "real-like" domain for few-shot adaptation (paper
Appendix A.2): sparser activity (dimmer scene, little dark noise), local motion of a smaller
object, and horizontal line artifacts (a few rows that fire spuriously). Classes and captions
are the same.

Captions state the sample's class (a verb phrase), speed, shape, size, brightness, background
and position (the object's mean centre on a 3x3 grid of the frame), and for half of the noisy
clips the sensor noise, each in one of several phrasings; :class:`CaptionSignature` is that
content as values, and :mod:`fsve.data.captions` counts the clips each caption fits (the
retrieval ceiling). Caption draws come after every draw that shapes the spikes.

:func:`generate_dataset` writes ``<out>/<split>/<class>_<index>.dat`` plus ``manifest.csv``
(:mod:`fsve.data.manifest`) and ``synth_config.json``. Every sample's random state derives from
``(seed, domain, split, class, index)`` through :class:`numpy.random.SeedSequence`
(:func:`sample_seed`), so files do not depend on generation order or worker count, and a
second call with the same configuration returns at once.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import NamedTuple

import numpy as np
from tqdm import tqdm

from fsve.data.camera import simulate_chunks
from fsve.data.dat import DatWriter, frame_bytes
from fsve.data.manifest import MANIFEST_NAME, SPLITS, read_manifest, write_manifest
from fsve.io import atomic_write_text

CONFIG_NAME = "synth_config.json"
# Bump when the rendered data or the captions change, so cached datasets regenerate.
# 2: captions name the object's position (the spikes are byte-identical to version 1).
GENERATOR_VERSION = 2
DOMAINS = ("sim", "real")
DEFAULT_PROMPT_TEMPLATE = "a video of an object {}"
SHAPES = ("disc", "ring", "square", "triangle", "bar", "cross", "ellipse")
BACKGROUNDS = ("plain", "gradient", "textured")

# Pixels (frames x H x W) rendered at once: small enough that the temporaries stay in cache
# (several times faster than one [N, H, W] pass) and memory stays bounded for paper-scale clips.
_CHUNK_ELEMENTS = 1 << 17


@dataclass(frozen=True)
class ActionClass:
    """One action: ``key`` names files, ``name`` goes into prompts and the manifest."""

    key: str  # file-name slug, "drift_left"
    name: str  # "drifting left"
    phrases: tuple[str, ...]  # caption verb phrases; "{adv}" takes a speed adverb

    @property
    def prompt(self) -> str:
        """The default zero-shot prompt, ``"a video of an object drifting left"``."""
        return DEFAULT_PROMPT_TEMPLATE.format(self.name)


CLASSES: tuple[ActionClass, ...] = (
    ActionClass(
        "drift_left",
        "drifting left",
        (
            "drifts {adv} to the left",
            "moves {adv} leftwards",
            "slides {adv} from right to left",
            "glides {adv} towards the left edge",
        ),
    ),
    ActionClass(
        "drift_right",
        "drifting right",
        (
            "drifts {adv} to the right",
            "moves {adv} rightwards",
            "slides {adv} from left to right",
            "glides {adv} towards the right edge",
        ),
    ),
    ActionClass(
        "drift_up",
        "drifting up",
        (
            "drifts {adv} upwards",
            "rises {adv}",
            "slides {adv} from bottom to top",
            "moves {adv} towards the top",
        ),
    ),
    ActionClass(
        "drift_down",
        "drifting down",
        (
            "drifts {adv} downwards",
            "sinks {adv}",
            "slides {adv} from top to bottom",
            "falls {adv} towards the bottom",
        ),
    ),
    ActionClass(
        "rotate_cw",
        "rotating clockwise",
        (
            "spins {adv} clockwise",
            "rotates {adv} in a clockwise direction",
            "turns {adv} clockwise in place",
            "twists {adv} clockwise about its centre",
        ),
    ),
    ActionClass(
        "rotate_ccw",
        "rotating counter-clockwise",
        (
            "spins {adv} counter-clockwise",
            "rotates {adv} anticlockwise",
            "turns {adv} counter-clockwise in place",
            "twists {adv} anticlockwise about its centre",
        ),
    ),
    ActionClass(
        "grow",
        "growing",
        ("grows {adv}", "expands {adv}", "swells {adv} in size", "gets bigger {adv}"),
    ),
    ActionClass(
        "shrink",
        "shrinking",
        ("shrinks {adv}", "contracts {adv}", "dwindles {adv} in size", "gets smaller {adv}"),
    ),
    ActionClass(
        "flicker",
        "flickering",
        (
            "flickers {adv}",
            "blinks on and off {adv}",
            "pulses {adv} in brightness",
            "fades in and out {adv}",
        ),
    ),
    ActionClass(
        "bounce",
        "bouncing",
        (
            "bounces {adv} up and down",
            "hops {adv} up and down",
            "bounces {adv} like a ball",
            "jumps {adv} up and down on the spot",
        ),
    ),
    ActionClass(
        "orbit",
        "moving in a circle",
        (
            "circles {adv} around a point",
            "orbits {adv} around a centre",
            "travels {adv} along a circular path",
            "moves {adv} round in a circle",
        ),
    ),
    ActionClass(
        "sway",
        "swaying side to side",
        (
            "sways {adv} from side to side",
            "shakes {adv} left and right",
            "oscillates {adv} horizontally",
            "wobbles {adv} back and forth sideways",
        ),
    ),
)
CLASS_NAMES: tuple[str, ...] = tuple(c.name for c in CLASSES)

_ADVERBS = (
    ("slowly", "gently", "lazily"),
    ("steadily", "smoothly", "at a moderate pace"),
    ("quickly", "rapidly", "fast"),
)
_SIZE_WORDS = (("tiny", "little"), ("small",), ("medium-sized", "mid-sized"), ("large", "big"))
_BRIGHT_WORDS = (("dim", "faint", "dull"), ("grey", "softly lit"), ("bright", "glowing"))
_BG_PHRASES = {
    "plain": ("on a plain background", "against a uniform backdrop", ""),
    "gradient": ("over a shaded gradient", "against a gradient background"),
    "textured": (
        "over a textured background",
        "on a mottled background",
        "against a noisy, textured backdrop",
    ),
}
# Where the object is: its mean centre over the clip on a 3x3 grid of the frame, row-major.
POSITIONS = (
    "top left",
    "top",
    "top right",
    "left",
    "middle",
    "right",
    "bottom left",
    "bottom",
    "bottom right",
)
_POSITION_PHRASES = {
    "top left": ("in the top left", "in the upper left"),
    "top": ("at the top", "near the top"),
    "top right": ("in the top right", "in the upper right"),
    "left": ("on the left", "on the left side"),
    "middle": ("in the middle", "near the middle"),
    "right": ("on the right", "on the right side"),
    "bottom left": ("in the bottom left", "in the lower left"),
    "bottom": ("at the bottom", "near the bottom"),
    "bottom right": ("in the bottom right", "in the lower right"),
}
_NOISY_DARK_RATE = 0.006  # a caption may mention sensor noise above this dark-noise rate
_FRAMES = (
    "{obj} {vp}{bg}.",
    "in this clip, {obj} {vp}{bg}.",
    "a spike camera records {obj} that {vp}{bg}.",
    "{obj} can be seen as it {vp}{bg}.",
    "{bgl}, {obj} {vp}.",
)


def class_prompts(template: str = DEFAULT_PROMPT_TEMPLATE) -> list[str]:
    """Zero-shot prompts, one per class in label order.

    ``template`` holds ``{}`` or ``{name}`` for the class name, e.g. ``"a clip of a shape {}"``.
    """
    if "{}" not in template and "{name}" not in template:
        raise ValueError(f"prompt template needs '{{}}' or '{{name}}', got {template!r}")
    return [template.format(c.name, name=c.name) for c in CLASSES]


@dataclass(frozen=True)
class SynthConfig:
    """Size, length, split sizes, seed, camera threshold and domain of the dataset."""

    height: int = 64
    width: int = 64
    frames: int = 250
    train_per_class: int = 40
    val_per_class: int = 10
    test_per_class: int = 10
    seed: int = 0
    threshold: float = 5.0
    domain: str = "sim"

    def __post_init__(self) -> None:
        for name in (
            "height",
            "width",
            "frames",
            "train_per_class",
            "val_per_class",
            "test_per_class",
            "seed",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer):
                raise ValueError(f"SynthConfig.{name} must be an integer, got {value!r}")
        if self.height < 8 or self.width < 8:
            raise ValueError(f"frame size must be at least 8x8, got {self.height}x{self.width}")
        try:
            frame_bytes(self.height, self.width)
        except ValueError as err:
            raise ValueError(f"SynthConfig: {err}") from None
        if self.frames < 2:
            raise ValueError(f"SynthConfig.frames must be >= 2, got {self.frames}")
        counts = (self.train_per_class, self.val_per_class, self.test_per_class)
        if min(counts) < 0 or sum(counts) == 0:
            raise ValueError(f"samples per class must be >= 0 and not all 0, got {counts}")
        if self.seed < 0:
            raise ValueError(f"SynthConfig.seed must be >= 0, got {self.seed}")
        if not isinstance(self.threshold, int | float | np.number) or not self.threshold > 0:
            raise ValueError(f"SynthConfig.threshold must be > 0, got {self.threshold}")
        if self.domain not in DOMAINS:
            raise ValueError(f"SynthConfig.domain must be one of {DOMAINS}, got {self.domain!r}")

    def per_class(self, split: str) -> int:
        """Samples per class in ``split``."""
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
        return int(getattr(self, f"{split}_per_class"))

    def to_dict(self) -> dict[str, object]:
        """JSON-ready fields (plain ints, floats and strings)."""
        out = asdict(self)
        out["threshold"] = float(self.threshold)
        return {k: v if isinstance(v, str | float) else int(v) for k, v in out.items()}

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> SynthConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise ``ValueError``."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown SynthConfig fields {unknown}")
        return cls(**data)  # type: ignore[arg-type]


def parse_size(text: str) -> tuple[int, int]:
    """``"240x320"`` -> ``(240, 320)`` (height x width)."""
    match = re.fullmatch(r"\s*(\d+)\s*[xX×]\s*(\d+)\s*", text)
    if not match:
        raise ValueError(f"size must look like HEIGHTxWIDTH, e.g. 240x320; got {text!r}")
    return int(match.group(1)), int(match.group(2))


# ----------------------------------------------------------------------------------------------
# Sample plan: every random choice of one sample, then pure rendering.


class CaptionSignature(NamedTuple):
    """The attributes of a clip that its caption states, as values rather than words.

    Two captions with equal signatures say the same thing about their clips in different
    words. ``size``, ``brightness`` and ``speed`` are bins (``0`` = tiny / dim / slow);
    ``position`` is one of :data:`POSITIONS`. ``noise`` is ``True`` when the caption mentions
    sensor noise and ``None`` when it does not (it mentions it for about half of the noisy
    clips, so silence says nothing). The background is always known: only a plain background
    may go unnamed. :func:`fsve.data.captions.clip_attributes` gives the same fields for the
    clip itself, with ``noise`` a ``bool``.
    """

    label: int
    shape: str
    size: int
    brightness: int
    speed: int
    background: str
    position: str
    noise: bool | None

    def fits(self, clip: CaptionSignature) -> bool:
        """Whether a clip with attributes ``clip`` matches everything this caption states."""
        if self.noise is not None and clip.noise != self.noise:
            return False
        return self[:-1] == clip[:-1]


def position_cell(x: float, y: float, height: int, width: int) -> str:
    """The :data:`POSITIONS` cell of a point (column ``x``, row ``y``, pixel centres)."""
    col = min(max(int(3 * (x + 0.5) / width), 0), 2)
    row = min(max(int(3 * (y + 0.5) / height), 0), 2)
    return POSITIONS[3 * row + col]


@dataclass(frozen=True)
class _Plan:
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


def _plan(cls_index: int, rng: np.random.Generator, config: SynthConfig) -> _Plan:
    """Draw every random attribute of one sample and its per-frame trajectory."""
    if not 0 <= cls_index < len(CLASSES):
        raise ValueError(f"class index must be in [0, {len(CLASSES)}), got {cls_index}")
    key = CLASSES[cls_index].key
    h, w, n = config.height, config.width, config.frames
    real = config.domain == "real"
    side = float(min(h, w))
    t = np.linspace(0.0, 1.0, n)
    motion = 0.5 if real else 1.0  # "real" data: local motion

    # Appearance: one distribution for every class.
    shape = SHAPES[rng.integers(len(SHAPES))]
    rel_size = rng.uniform(0.10, 0.20)
    r0 = rel_size * side * (0.6 if real else 1.0)
    background, bg_kind = _background(rng, h, w, real)
    lo = float(background.max()) + (0.15 if real else 0.3)
    bright = _span(rng, max(lo, 0.3 if real else 0.5), 0.7 if real else 1.0)
    dark_rate = rng.uniform(0.0, 0.001) if real else rng.uniform(0.0, 0.008)
    angle0 = rng.uniform(0, 2 * np.pi)
    speed = rng.random()  # position within the class's speed range

    radius = np.full(n, r0)
    angle = np.full(n, angle0)
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
        angle = angle0 + sign * 2 * np.pi * turns * t
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
        base = float(background.mean())
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

    if real:  # horizontal line artifacts: a few rows with elevated spurious firing
        count = int(rng.integers(1, 4) * max(1, round(h / 64)))
        line_rows = np.sort(rng.choice(h, size=min(count, h), replace=False))
        line_rates = rng.uniform(0.03, 0.15, size=line_rows.size)
    else:
        line_rows = np.zeros(0, dtype=np.int64)
        line_rates = np.zeros(0)
    camera_seed = int(rng.integers(2**63))
    artifact_seed = int(rng.integers(2**63))

    # Caption: attributes of this sample in one of several phrasings. Its random draws come
    # after every draw that shapes the spikes, so the wording never changes the data.
    size_bin = min(int((rel_size - 0.10) / 0.025), 3)
    bright_bin = 0 if bright < 0.6 else 1 if bright < 0.8 else 2
    speed_bin = min(int(speed * 3), 2)
    position = position_cell(float(np.mean(x)), float(np.mean(y)), h, w)
    noisy = bool(dark_rate > _NOISY_DARK_RATE)
    adjectives = [
        str(rng.choice(_SIZE_WORDS[size_bin])),
        str(rng.choice(_BRIGHT_WORDS[bright_bin])),
    ]
    if rng.random() < 0.3:
        adjectives.reverse()
    obj = " ".join([*adjectives, shape])
    article = _article(obj)
    phrases = CLASSES[cls_index].phrases
    vp = phrases[rng.integers(len(phrases))].format(adv=rng.choice(_ADVERBS[speed_bin]))
    bg_phrase = str(rng.choice(_BG_PHRASES[bg_kind]))
    frame = _FRAMES[rng.integers(len(_FRAMES) - (0 if bg_phrase else 1))]
    mention_noise = noisy and rng.random() < 0.5
    # The position is drawn last and goes at the end, so that the rest of the caption is that
    # of version 1, word for word: a text encoder with a short context (16 tokens keep 14
    # words) still sees the verb phrase and adverb where it did, and loses the position first.
    where = str(rng.choice(_POSITION_PHRASES[position]))
    caption = frame.format(
        obj=f"{article} {obj}", vp=vp, bg=f" {bg_phrase}" if bg_phrase else "", bgl=bg_phrase
    )
    caption = f"{caption[:-1]}, {where}."
    if mention_noise:
        caption = caption[:-1] + ", with sensor noise."
    caption = caption[0].upper() + caption[1:]
    signature = CaptionSignature(
        label=cls_index,
        shape=shape,
        size=size_bin,
        brightness=bright_bin,
        speed=speed_bin,
        background=bg_kind,
        position=position,
        noise=True if mention_noise else None,
    )

    return _Plan(
        shape=shape,
        background=background,
        x=x.astype(np.float32),
        y=y.astype(np.float32),
        radius=radius.astype(np.float32),
        angle=angle.astype(np.float32),
        level=level.astype(np.float32),
        dark_rate=float(dark_rate),
        line_rows=line_rows,
        line_rates=line_rates,
        camera_seed=camera_seed,
        artifact_seed=artifact_seed,
        caption=caption,
        signature=signature,
        noisy=noisy,
    )


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


def _render(plan: _Plan, start: int, stop: int) -> np.ndarray:
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


def _chunk(config: SynthConfig) -> int:
    return max(1, _CHUNK_ELEMENTS // (config.height * config.width))


def _spike_chunks(plan: _Plan, config: SynthConfig) -> Iterator[np.ndarray]:
    """Yield bool spike chunks of a plan (camera model, dark noise, line artifacts)."""
    n, step = config.frames, _chunk(config)
    frames = (_render(plan, s, min(s + step, n)) for s in range(0, n, step))
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
    plan = _plan(cls_index, rng, config)
    frames = np.empty((config.frames, config.height, config.width), dtype=np.float32)
    step = _chunk(config)
    for start in range(0, config.frames, step):
        stop = min(start + step, config.frames)
        frames[start:stop] = _render(plan, start, stop)
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
    plan = _plan(cls_index, np.random.default_rng(seed), config)
    return np.concatenate(list(_spike_chunks(plan, config))), plan.caption


def sample_seed(
    config: SynthConfig, split: str, cls_index: int, index: int
) -> np.random.SeedSequence:
    """The seed of sample ``index`` of class ``cls_index`` in ``split`` of a dataset."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    if not 0 <= cls_index < len(CLASSES) or index < 0:
        raise ValueError(f"bad class index {cls_index} or sample index {index}")
    key = [config.seed, DOMAINS.index(config.domain), SPLITS.index(split), cls_index, index]
    return np.random.SeedSequence(key)


def sample_path(split: str, cls_index: int, index: int) -> str:
    """Relative path of a sample in a generated dataset, ``"train/drift_left_0003.dat"``."""
    return f"{split}/{CLASSES[cls_index].key}_{index:04d}.dat"


def _write_sample(job: tuple[Path, SynthConfig, str, int, int]) -> str:
    folder, config, split, cls_index, index = job
    plan = _plan(
        cls_index, np.random.default_rng(sample_seed(config, split, cls_index, index)), config
    )
    with DatWriter(
        folder / sample_path(split, cls_index, index), config.height, config.width
    ) as writer:
        for spikes in _spike_chunks(plan, config):
            writer.write(spikes)
    return plan.caption


def _stored_config(folder: Path) -> dict[str, object] | None:
    try:
        return json.loads((folder / CONFIG_NAME).read_text())
    except (OSError, ValueError):
        return None


def _config_record(config: SynthConfig) -> dict[str, object]:
    return {"generator": "fsve.data.synth", "version": GENERATOR_VERSION, **config.to_dict()}


def read_config(folder: str | os.PathLike) -> SynthConfig:
    """The :class:`SynthConfig` stored in a generated dataset folder's ``synth_config.json``.

    Raises ``FileNotFoundError`` without the file and a one-line ``ValueError`` naming it when
    it is unreadable, was not written by this generator, or holds another
    :data:`GENERATOR_VERSION` (its captions, so anything derived from them, would differ).
    """
    path = Path(folder) / CONFIG_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no {CONFIG_NAME}; not a generated synthetic dataset")
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ValueError(f"{path}: unreadable ({err})") from None
    if not isinstance(record, dict) or record.get("generator") != "fsve.data.synth":
        raise ValueError(f"{path}: not written by fsve.data.synth")
    version = record.get("version")
    if version != GENERATOR_VERSION:
        raise ValueError(
            f"{path}: generator version {version}, this code is version {GENERATOR_VERSION};"
            " regenerate the folder with python -m fsve.data synth"
        )
    try:
        return SynthConfig.from_dict(
            {k: v for k, v in record.items() if k not in ("generator", "version")}
        )
    except (TypeError, ValueError) as err:
        raise ValueError(f"{path}: {err}") from None


_SAMPLE_NAME = re.compile(r"[a-z_]+_\d{4,}\.dat")


def generate_dataset(
    out_dir: str | os.PathLike,
    config: SynthConfig | None = None,
    progress: bool = True,
    overwrite: bool = False,
    workers: int = 1,
) -> Path:
    """Write the dataset to ``out_dir`` and return ``out_dir`` as a :class:`~pathlib.Path`.

    Layout: ``<split>/<class key>_<index>.dat`` (SpikeCV layout), ``manifest.csv`` and
    ``synth_config.json``; every split holds the same number of samples per class. If the folder
    already holds a complete dataset of the same configuration (every file present) this returns
    at once, unless ``overwrite``; any other configuration is regenerated in place, dropping
    stale sample files. A folder with a manifest that this generator did not write (e.g. real data)
    is never overwritten without ``overwrite=True``. ``workers > 1`` renders in processes;
    the files are byte-identical whatever the worker count.
    """
    config = config or SynthConfig()
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    folder = Path(out_dir)
    record = _config_record(config)
    stored = _stored_config(folder)
    manifest = folder / MANIFEST_NAME
    if not overwrite and manifest.is_file():
        if stored == record:
            try:  # complete: every file present with the right size
                read_manifest(folder)
                return folder
            except (OSError, ValueError):
                pass
        elif stored is None:
            raise FileExistsError(
                f"{manifest} exists but was not written by the synthetic generator (no"
                f" {CONFIG_NAME}); pass overwrite=True to replace it"
            )
    # The folder is incomplete until the end: an interrupted run leaves neither file behind.
    (folder / CONFIG_NAME).unlink(missing_ok=True)
    manifest.unlink(missing_ok=True)

    jobs = [
        (folder, config, split, c, i)
        for split in SPLITS
        for i in range(config.per_class(split))
        for c in range(len(CLASSES))
    ]
    bar = tqdm(total=len(jobs), desc="synthetic dataset", unit="clip", disable=not progress)
    try:
        if workers == 1:
            captions = []
            for job in jobs:
                captions.append(_write_sample(job))
                bar.update()
        else:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                captions = []
                for caption in pool.map(_write_sample, jobs, chunksize=4):
                    captions.append(caption)
                    bar.update()
    finally:
        bar.close()

    rows = [
        {
            "path": sample_path(split, c, i),
            "split": split,
            "label": c,
            "class_name": CLASSES[c].name,
            "caption": caption,
            "height": config.height,
            "width": config.width,
            "frames": config.frames,
        }
        for (_, _, split, c, i), caption in zip(jobs, captions, strict=True)
    ]
    keep = {row["path"] for row in rows}
    for split in SPLITS:  # drop samples of an earlier, larger configuration
        split_dir = folder / split
        if split_dir.is_dir():
            for file in split_dir.iterdir():
                if _SAMPLE_NAME.fullmatch(file.name) and f"{split}/{file.name}" not in keep:
                    file.unlink()
    write_manifest(folder, rows)
    atomic_write_text(folder / CONFIG_NAME, json.dumps(record, indent=2, sort_keys=True) + "\n")
    return folder
