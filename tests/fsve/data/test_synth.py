"""Tests of the procedural spike-video action dataset (fsve.data.synth)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from fsve.data import synth
from fsve.data.dat import read_dat
from fsve.data.manifest import SPLITS, read_manifest
from fsve.data.synth import (
    CLASSES,
    SHAPES,
    SynthConfig,
    class_prompts,
    generate_dataset,
    make_sample,
    parse_size,
    render_sample,
    sample_seed,
)
from fsve.data.synth import generate as synth_generate
from fsve.data.synth import render as synth_render

KEYS = [c.key for c in CLASSES]
TINY = SynthConfig(
    height=16, width=16, frames=12, train_per_class=2, val_per_class=1, test_per_class=1, seed=3
)


def idx(key: str) -> int:
    return KEYS.index(key)


def foreground(frames: np.ndarray) -> np.ndarray:
    """Object intensity above the static background (per-pixel temporal minimum)."""
    return frames - frames.min(axis=0, keepdims=True)


def centroids(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame centroid (x, y) of non-negative weights ``[N, H, W]``."""
    _, h, w = weights.shape
    mass = weights.sum(axis=(1, 2)) + 1e-9
    x = (weights.sum(axis=1) * np.arange(w)).sum(axis=1) / mass
    y = (weights.sum(axis=2) * np.arange(h)).sum(axis=1) / mass
    return x, y


# --- classes, prompts, config --------------------------------------------------------------


def test_classes_and_prompts() -> None:
    assert len(CLASSES) >= 10
    assert len(set(KEYS)) == len(KEYS)
    assert len(set(synth.CLASS_NAMES)) == len(CLASSES)
    assert CLASSES[idx("drift_left")].prompt == "a video of an object drifting left"
    prompts = class_prompts("a spike clip of a shape {}.")
    assert prompts[idx("grow")] == "a spike clip of a shape growing."
    assert class_prompts("{name}") == list(synth.CLASS_NAMES)
    assert class_prompts() == [c.prompt for c in CLASSES]
    with pytest.raises(ValueError, match="template"):
        class_prompts("no placeholder")
    assert all(len(c.phrases) >= 3 for c in CLASSES)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"height": 0},
        {"width": 7},
        {"height": 9, "width": 9},
        {"frames": 1},
        {"train_per_class": -1},
        {"train_per_class": 0, "val_per_class": 0, "test_per_class": 0},
        {"seed": -1},
        {"threshold": 0.0},
        {"threshold": "5"},
        {"domain": "lab"},
        {"height": 64.0},
    ],
)
def test_config_rejects(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        SynthConfig(**kwargs)


def test_config_round_trip_and_size() -> None:
    cfg = SynthConfig(height=240, width=320, frames=2000, domain="real", threshold=4)
    assert SynthConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert cfg.per_class("val") == 10
    with pytest.raises(ValueError):
        SynthConfig.from_dict({"colour": 1})
    assert parse_size("240x320") == (240, 320)
    assert parse_size(" 64X48 ") == (64, 48)
    with pytest.raises(ValueError):
        parse_size("240,320")
    with pytest.raises(ValueError):
        make_sample(len(CLASSES), 0, TINY)


# --- samples --------------------------------------------------------------------------------


def test_shapes_and_dtypes() -> None:
    cfg = SynthConfig(height=24, width=40, frames=30)
    frames, caption = render_sample(0, np.random.default_rng(0), cfg)
    assert frames.shape == (30, 24, 40) and frames.dtype == np.float32
    assert 0.0 <= frames.min() and frames.max() <= 1.0
    spikes, caption2 = make_sample(0, 0, cfg)
    assert spikes.shape == (30, 24, 40) and spikes.dtype == bool
    assert isinstance(caption, str) and caption.endswith(".") and caption == caption2


def test_chunked_rendering_matches(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = SynthConfig(height=16, width=24, frames=40, domain="real")
    whole = make_sample(4, 11, cfg)[0]
    monkeypatch.setattr(synth_render, "CHUNK_ELEMENTS", 16 * 24 * 7)  # 7 frames a chunk
    np.testing.assert_array_equal(make_sample(4, 11, cfg)[0], whole)


def test_determinism() -> None:
    cfg = SynthConfig(height=32, width=32, frames=60)
    for c in (0, 5, 8):
        a, cap_a = make_sample(c, 7, cfg)
        b, cap_b = make_sample(c, 7, cfg)
        np.testing.assert_array_equal(a, b)
        assert cap_a == cap_b
        other, _ = make_sample(c, 8, cfg)
        assert (other != a).mean() > 0.01
    seeds = [sample_seed(cfg, s, c, i) for s in SPLITS for c in range(3) for i in range(3)]
    states = {tuple(s.generate_state(2)) for s in seeds}
    assert len(states) == len(seeds)


def test_mean_firing_rate_and_real_domain_is_sparser() -> None:
    rates = {}
    for domain in ("sim", "real"):
        cfg = SynthConfig(height=32, width=32, frames=100, domain=domain)
        rates[domain] = np.mean(
            [make_sample(c, 50 + c, cfg)[0].mean() for c in range(len(CLASSES)) for _ in range(2)]
        )
    assert 0.03 < rates["sim"] < 0.09  # paper A.2: about 0.058
    assert 0.008 < rates["real"] < 0.03  # paper A.2: about 0.018
    assert rates["real"] < 0.6 * rates["sim"]


def test_real_domain_has_line_artifacts() -> None:
    cfg = SynthConfig(height=32, width=32, frames=200, domain="real")
    spikes, _ = make_sample(idx("grow"), 1, cfg)
    row_rate = spikes.mean(axis=(0, 2))
    # artifact rows fire far above the median row, across the whole row
    assert row_rate.max() > 3 * np.median(row_rate)
    hot = int(row_rate.argmax())
    assert spikes[:, hot].mean(axis=0).min() > 0.01


# --- classes differ in motion ----------------------------------------------------------------


def window_shift(spikes: np.ndarray, window: int = 50) -> tuple[float, float]:
    """Centroid (x, y) displacement between the first and last windows of spikes.

    The static background is removed by subtracting the clip's mean count map.
    """
    mean = spikes.mean(axis=0)
    first = np.clip(spikes[:window].mean(axis=0) - mean, 0, None)[None]
    last = np.clip(spikes[-window:].mean(axis=0) - mean, 0, None)[None]
    (x0,), (y0,) = centroids(first)
    (x1,), (y1,) = centroids(last)
    return float(x1 - x0), float(y1 - y0)


@pytest.mark.parametrize(
    "key,axis,sign",
    [
        ("drift_left", 0, -1),
        ("drift_right", 0, 1),
        ("drift_up", 1, -1),
        ("drift_down", 1, 1),
    ],
)
def test_drift_moves_spike_centroid(key: str, axis: int, sign: int) -> None:
    cfg = SynthConfig()  # 64x64, 250 frames
    for seed in range(4):
        spikes, _ = make_sample(idx(key), seed, cfg)
        shift = window_shift(spikes)
        assert sign * shift[axis] > 2.0, (key, seed, shift)
        assert abs(shift[1 - axis]) < abs(shift[axis]) / 2, (key, seed, shift)


def test_grow_and_shrink_change_active_area_in_opposite_directions() -> None:
    cfg = SynthConfig()
    for seed in range(6):
        counts = {}
        for key in ("grow", "shrink"):
            spikes, _ = make_sample(idx(key), seed, cfg)
            first = spikes[:80].sum(axis=0).astype(int)
            last = spikes[-80:].sum(axis=0).astype(int)
            # a change of more than 3 spikes in 80 frames: the object, not dark noise
            counts[key] = (
                int((last - first > 3).sum()),
                int((first - last > 3).sum()),
                int(first.sum()),
                int(last.sum()),
            )
        # pixels that light up vs go dark (a notch or a ring's hole may add a few either way)
        up, down, total_first, total_last = counts["grow"]
        assert up > 2 * down + 10 and total_last > total_first, (seed, counts)
        up, down, total_first, total_last = counts["shrink"]
        assert down > 2 * up + 10 and total_last < total_first, (seed, counts)


def test_real_domain_keeps_the_motion() -> None:
    """Sparser and more local, but drift direction and growth still show in the spikes."""
    cfg = SynthConfig(domain="real")
    right = [window_shift(make_sample(idx("drift_right"), s, cfg)[0], 100)[0] for s in range(8)]
    left = [window_shift(make_sample(idx("drift_left"), s, cfg)[0], 100)[0] for s in range(8)]
    assert sum(x > 0 for x in right) >= 7 and sum(x < 0 for x in left) >= 7, (right, left)
    change = {}
    for key in ("grow", "shrink"):
        spikes = [make_sample(idx(key), s, cfg)[0] for s in range(8)]
        change[key] = [int(x[-100:].sum()) - int(x[:100].sum()) for x in spikes]
    assert sum(d > 0 for d in change["grow"]) >= 7, change
    assert sum(d < 0 for d in change["shrink"]) >= 7, change


def orientation(frames: np.ndarray) -> np.ndarray:
    """Unwrapped orientation (radians, x right, rows down) of the foreground per frame."""
    fg = foreground(frames)
    _, h, w = fg.shape
    yy, xx = np.mgrid[0:h, 0:w]
    mass = fg.sum(axis=(1, 2))
    cx = (fg * xx).sum(axis=(1, 2)) / mass
    cy = (fg * yy).sum(axis=(1, 2)) / mass
    dx = xx[None] - cx[:, None, None]
    dy = yy[None] - cy[:, None, None]
    mu20, mu02, mu11 = (
        (fg * dx * dx).sum((1, 2)),
        (fg * dy * dy).sum((1, 2)),
        (fg * dx * dy).sum((1, 2)),
    )
    return np.unwrap(np.arctan2(2 * mu11, mu20 - mu02)) / 2


def seeds_with_shape(key: str, shapes: tuple[str, ...], count: int, cfg: SynthConfig) -> list:
    found = []
    for seed in range(200):
        _, caption = render_sample(idx(key), np.random.default_rng(seed), cfg)
        if any(f" {s}" in caption for s in shapes):
            found.append(seed)
        if len(found) == count:
            return found
    raise AssertionError(f"no {shapes} among the samples of {key}")


@pytest.mark.parametrize("key,sign", [("rotate_cw", 1), ("rotate_ccw", -1)])
def test_rotation_sense(key: str, sign: int) -> None:
    cfg = SynthConfig(frames=120)
    for seed in seeds_with_shape(key, ("bar", "ellipse"), 3, cfg):
        frames, _ = render_sample(idx(key), np.random.default_rng(seed), cfg)
        turn = orientation(frames)
        # clockwise on screen = increasing angle in (x, row) coordinates; >= 0.75 turns
        assert sign * (turn[-1] - turn[0]) > 1.2 * np.pi, (key, seed, turn[-1] - turn[0])


def test_periodic_classes_move_along_their_axis() -> None:
    cfg = SynthConfig(frames=120)
    for seed in range(3):
        spread = {}
        for key in ("bounce", "sway", "orbit", "flicker"):
            frames, _ = render_sample(idx(key), np.random.default_rng(seed), cfg)
            fg = foreground(frames)
            x, y = centroids(fg)
            mass = fg.sum(axis=(1, 2))
            seen = mass > 0.5 * mass.max()  # a flickering object fades out completely
            spread[key] = (np.ptp(x[seen]), np.ptp(y[seen]), mass.min() / mass.max())
        assert spread["bounce"][1] > 8 and spread["bounce"][0] < 1, spread
        assert spread["sway"][0] > 8 and spread["sway"][1] < 1, spread
        assert spread["orbit"][0] > 8 and spread["orbit"][1] > 8, spread
        assert spread["flicker"][2] < 0.1 and max(spread["flicker"][:2]) < 1, spread  # fades out
        assert min(spread[k][2] for k in ("bounce", "sway", "orbit")) > 0.5, spread


# --- static appearance does not give the class away ------------------------------------------


def eta_squared(values: np.ndarray) -> float:
    """Between-class share of the variance of ``values [classes, samples]``."""
    centred = values - values.mean()
    between = values.shape[1] * ((values.mean(axis=1) - values.mean()) ** 2).sum()
    return float(between / (centred**2).sum())


def test_static_appearance_does_not_identify_class() -> None:
    cfg = SynthConfig(height=32, width=32, frames=4)
    per_class = 20
    means = np.zeros((len(CLASSES), per_class))
    areas = np.zeros((len(CLASSES), per_class))
    shapes: list[set[str]] = []
    sizes: list[set[str]] = []
    size_words = {w: k for k, words in enumerate(synth.SIZE_WORDS) for w in words}
    for c in range(len(CLASSES)):
        seen, seen_size = set(), set()
        for i in range(per_class):
            frames, caption = render_sample(c, np.random.default_rng([c, i]), cfg)
            first = frames[0]
            means[c, i] = first.mean()
            areas[c, i] = (first > np.median(first) + 0.25).mean()  # the object's pixels
            seen |= {s for s in SHAPES if re.search(rf"\b{s}\b", caption)}
            seen_size |= {size_words[w] for w in size_words if re.search(rf"\b{w}\b", caption)}
        shapes.append(seen)
        sizes.append(seen_size)
    # the first frame carries (almost) no class information
    assert eta_squared(means) < 0.25, eta_squared(means)
    assert eta_squared(areas) < 0.25, eta_squared(areas)
    lo, hi = np.percentile(means, [10, 90])
    assert all(lo <= m <= hi for m in np.median(means, axis=1))
    # attributes named in the captions come from one shared distribution
    assert all(len(s) >= 4 for s in shapes), shapes
    assert all(len(s) >= 3 for s in sizes), sizes


def test_caption_variety() -> None:
    cfg = SynthConfig(height=16, width=16, frames=4)
    for c, cls in enumerate(CLASSES):
        captions = [render_sample(c, np.random.default_rng([99, c, i]), cfg)[1] for i in range(24)]
        assert len(set(captions)) >= 20
        patterns = [
            re.compile(re.escape(p).replace(re.escape("{adv}"), r"[a-z ]+")) for p in cls.phrases
        ]
        used = {k for cap in captions for k, p in enumerate(patterns) if p.search(cap)}
        assert len(used) >= 3, (cls.key, captions)
        assert all(any(re.search(rf"\b{s}\b", cap) for s in SHAPES) for cap in captions)
        other = [p for o in CLASSES if o is not cls for p in o.phrases]
        assert all(cap.split()[0][0].isupper() for cap in captions)
        assert not any(p.format(adv="") in cap for p in other for cap in captions)


# --- dataset folders -------------------------------------------------------------------------


def test_generate_dataset(tmp_path) -> None:
    out = generate_dataset(tmp_path / "a", TINY, progress=False)
    table = read_manifest(out)
    assert len(table) == 4 * len(CLASSES)
    for split in SPLITS:
        counts = table[table.split == split].label.value_counts()
        assert len(counts) == len(CLASSES) and counts.nunique() == 1
        assert counts.iloc[0] == TINY.per_class(split)
    assert set(table.class_name) == set(synth.CLASS_NAMES)
    assert (table.frames == TINY.frames).all() and (table.height == 16).all()
    row = table.iloc[5]
    spikes, caption = make_sample(
        int(row.label), sample_seed(TINY, row.split, int(row.label), int(row.path[-8:-4])), TINY
    )
    np.testing.assert_array_equal(read_dat(row.file, 16, 16), spikes)
    assert row.caption == caption
    stored = json.loads((out / "synth_config.json").read_text())
    assert SynthConfig.from_dict({k: stored[k] for k in TINY.to_dict()}) == TINY

    # byte-identical on regeneration, whatever the worker count
    again = generate_dataset(tmp_path / "b", TINY, progress=False, workers=2)
    for rel in [*table.path, "manifest.csv"]:
        assert (out / rel).read_bytes() == (again / rel).read_bytes(), rel


def test_generate_skips_existing_and_overwrites(tmp_path, monkeypatch) -> None:
    out = generate_dataset(tmp_path, TINY, progress=False)
    file = out / synth.sample_path("train", 0, 0)
    stamp = file.stat().st_mtime_ns

    def boom(job):
        raise RuntimeError("regenerated")

    monkeypatch.setattr(synth_generate, "_write_sample", boom)
    assert generate_dataset(tmp_path, TINY, progress=False) == out  # skipped
    assert file.stat().st_mtime_ns == stamp
    file.unlink()  # an incomplete folder is rebuilt
    with pytest.raises(RuntimeError, match="regenerated"):
        generate_dataset(tmp_path, TINY, progress=False)
    with pytest.raises(RuntimeError, match="regenerated"):
        generate_dataset(tmp_path, TINY, progress=False, overwrite=True)
    monkeypatch.undo()
    # the interrupted run left no config, so the folder is rebuilt
    generate_dataset(tmp_path, TINY, progress=False)
    assert (out / "synth_config.json").is_file() and file.stat().st_mtime_ns != stamp

    # a smaller configuration drops the stale files
    smaller = SynthConfig(**{**TINY.to_dict(), "train_per_class": 1})
    generate_dataset(tmp_path, smaller, progress=False)
    assert not (out / synth.sample_path("train", 0, 1)).exists()
    assert len(read_manifest(out)) == 3 * len(CLASSES)


def test_generate_refuses_foreign_manifest(tmp_path) -> None:
    (tmp_path / "manifest.csv").write_text("path,split\n")
    with pytest.raises(FileExistsError):
        generate_dataset(tmp_path, TINY, progress=False)
