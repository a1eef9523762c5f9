"""What the built-in dataset is made of: the action classes, the caption vocabulary, the
dataset configuration and the content a caption states (:class:`CaptionSignature`)."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, fields
from typing import NamedTuple

import numpy as np

from fsve.data.dat import frame_bytes
from fsve.data.manifest import SPLITS

CONFIG_NAME = "synth_config.json"
# Bump when the rendered data or the captions change, so cached datasets regenerate.
# 2: captions name the object's position (the spikes are byte-identical to version 1).
GENERATOR_VERSION = 2
DOMAINS = ("sim", "real")
DEFAULT_PROMPT_TEMPLATE = "a video of an object {}"
SHAPES = ("disc", "ring", "square", "triangle", "bar", "cross", "ellipse")
BACKGROUNDS = ("plain", "gradient", "textured")


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

ADVERBS = (
    ("slowly", "gently", "lazily"),
    ("steadily", "smoothly", "at a moderate pace"),
    ("quickly", "rapidly", "fast"),
)
SIZE_WORDS = (("tiny", "little"), ("small",), ("medium-sized", "mid-sized"), ("large", "big"))
BRIGHT_WORDS = (("dim", "faint", "dull"), ("grey", "softly lit"), ("bright", "glowing"))
BG_PHRASES = {
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
POSITION_PHRASES = {
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
NOISY_DARK_RATE = 0.006  # a caption may mention sensor noise above this dark-noise rate
CAPTION_FRAMES = (
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
