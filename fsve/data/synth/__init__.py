"""Built-in procedural spike-video action dataset with captions (the default data).

Each sample is a single object moving over a static background. The twelve action classes in
:data:`CLASSES` differ only in how the object moves, never in what it looks like: shape, size,
brightness, background level and texture, sensor noise, start position and speed are drawn per
sample from one distribution shared by every class, so a model has to use time to tell them
apart. Motion is defined in units of the image size and of the clip length, so a larger
``height x width`` or a longer clip shows the same action (it always spans the whole clip).

Rendering is vectorised (:mod:`~fsve.data.synth.render`): per-frame object parameters (centre,
radius, angle, intensity; drawn by :func:`~fsve.data.synth.plan.plan_sample`) are broadcast
against the pixel grid to give all ``[N, H, W]`` frames at once, with anti-aliased edges from a
soft signed-distance mask. The float frames then go through the spike camera
(paper Eq. 1, :func:`fsve.data.camera.simulate`), so intensity is encoded as spike rate:
with ``threshold=5`` an intensity of 0.8 fires about 0.16 spikes per frame.

``domain="real"`` draws a shifted, "real-like" domain for few-shot adaptation (paper
Appendix A.2): sparser activity (dimmer scene, little dark noise), local motion of a smaller
object, and horizontal line artifacts (a few rows that fire spuriously). Classes and captions
are the same.

Captions state the sample's class (a verb phrase), speed, shape, size, brightness, background
and position (the object's mean centre on a 3x3 grid of the frame), and for half of the noisy
clips the sensor noise, each in one of several phrasings (vocabulary and classes:
:mod:`~fsve.data.synth.spec`); :class:`CaptionSignature` is that
content as values, and :mod:`fsve.data.captions` counts the clips each caption fits (the
retrieval ceiling). Caption draws come after every draw that shapes the spikes.

:func:`generate_dataset` (:mod:`~fsve.data.synth.generate`) writes
``<out>/<split>/<class>_<index>.dat`` plus ``manifest.csv`` (:mod:`fsve.data.manifest`) and
``synth_config.json``. Every sample's random state derives from
``(seed, domain, split, class, index)`` through :class:`numpy.random.SeedSequence`
(:func:`sample_seed`), so files do not depend on generation order or worker count, and a
second call with the same configuration returns at once.
"""

from fsve.data.synth.generate import (
    MAX_DATASET_GB,
    check_size,
    dataset_bytes,
    generate_dataset,
    read_config,
    sample_path,
    sample_seed,
)
from fsve.data.synth.plan import Plan, plan_sample
from fsve.data.synth.render import make_sample, render_frames, render_sample, spike_chunks
from fsve.data.synth.spec import (
    ADVERBS,
    BACKGROUNDS,
    BG_PHRASES,
    BRIGHT_WORDS,
    CLASS_NAMES,
    CLASSES,
    CONFIG_NAME,
    DEFAULT_PROMPT_TEMPLATE,
    DOMAINS,
    GENERATOR_VERSION,
    POSITION_PHRASES,
    POSITIONS,
    SHAPES,
    SIZE_WORDS,
    ActionClass,
    CaptionSignature,
    SynthConfig,
    class_prompts,
    parse_size,
    position_cell,
)

__all__ = [
    "ADVERBS",
    "BACKGROUNDS",
    "BG_PHRASES",
    "BRIGHT_WORDS",
    "CLASSES",
    "CLASS_NAMES",
    "CONFIG_NAME",
    "DEFAULT_PROMPT_TEMPLATE",
    "DOMAINS",
    "GENERATOR_VERSION",
    "MAX_DATASET_GB",
    "POSITIONS",
    "POSITION_PHRASES",
    "SHAPES",
    "SIZE_WORDS",
    "ActionClass",
    "CaptionSignature",
    "Plan",
    "SynthConfig",
    "check_size",
    "class_prompts",
    "dataset_bytes",
    "generate_dataset",
    "make_sample",
    "parse_size",
    "plan_sample",
    "position_cell",
    "read_config",
    "render_frames",
    "render_sample",
    "sample_path",
    "sample_seed",
    "spike_chunks",
]
