"""Caption content of the built-in dataset and the retrieval ceiling (fsve.data.captions)."""

from __future__ import annotations

import hashlib
import json
import re

import numpy as np
import pandas as pd
import pytest

from fsve.data import synth
from fsve.data.__main__ import main
from fsve.data.captions import (
    caption_signature,
    ceiling_counts,
    ceiling_recall,
    clip_attributes,
    retrieval_ceiling,
    split_signatures,
)
from fsve.data.synth import CLASSES, POSITIONS, SHAPES, CaptionSignature, SynthConfig

TINY = SynthConfig(
    height=16, width=16, frames=12, train_per_class=2, val_per_class=1, test_per_class=1, seed=3
)
POSITION_OF = {p: cell for cell, phrases in synth.POSITION_PHRASES.items() for p in phrases}


def draw(cls_index: int, seed, config: SynthConfig):
    return synth.plan_sample(cls_index, np.random.default_rng(seed), config)


def one_of(caption: str, table: dict) -> object:
    """The value of the one entry of ``{phrase: value}`` that occurs in ``caption``."""
    found = {v for p, v in table.items() if re.search(rf"\b{re.escape(p)}\b", caption)}
    assert len(found) == 1, (caption, found)
    return found.pop()


def parse(caption: str) -> CaptionSignature:
    """Read a caption back into a signature from the phrase tables alone."""
    text = caption.lower()
    noise = text.endswith(", with sensor noise.")
    text = text.removesuffix(", with sensor noise.").removesuffix(".")
    body, _, where = text.rpartition(", ")
    adverbs = {a: k for k, words in enumerate(synth.ADVERBS) for a in words}
    classes = {}
    for c, cls in enumerate(CLASSES):
        for phrase in cls.phrases:
            for adverb in adverbs:
                classes[phrase.format(adv=adverb)] = c
    backgrounds = {p: kind for kind, ps in synth.BG_PHRASES.items() for p in ps if p}
    return CaptionSignature(
        label=one_of(body, classes),
        shape=one_of(body, {s: s for s in SHAPES}),
        size=one_of(body, {w: k for k, ws in enumerate(synth.SIZE_WORDS) for w in ws}),
        brightness=one_of(body, {w: k for k, ws in enumerate(synth.BRIGHT_WORDS) for w in ws}),
        speed=one_of(body, adverbs),
        background=(one_of(body, backgrounds) if any(p in body for p in backgrounds) else "plain"),
        position=POSITION_OF[where],
        noise=True if noise else None,
    )


# --- captions --------------------------------------------------------------------------------


def test_caption_states_its_signature() -> None:
    """Every attribute in the signature is in the caption's words, and nothing else."""
    seen: dict[str, set] = {name: set() for name in CaptionSignature._fields}
    for domain in ("sim", "real"):
        cfg = SynthConfig(height=32, width=32, frames=6, domain=domain)
        for c in range(len(CLASSES)):
            for i in range(12):
                plan = draw(c, [domain == "real", c, i], cfg)
                assert parse(plan.caption) == plan.signature, plan.caption
                assert plan.signature.noise is None or plan.noisy
                for name, value in plan.signature._asdict().items():
                    seen[name].add(value)
    # every attribute varies, so each one can tell captions apart
    assert len(seen["label"]) == len(CLASSES) and len(seen["shape"]) == len(SHAPES)
    assert seen["size"] == {0, 1, 2, 3} and seen["speed"] == {0, 1, 2}
    assert seen["brightness"] == {0, 1, 2} and len(seen["background"]) == 3
    assert len(seen["position"]) == 9 and seen["noise"] == {True, None}


def test_caption_position_matches_rendered_object() -> None:
    """The position phrase names the 3x3 cell of the object's mean centroid in the frames."""
    cfg = SynthConfig(height=36, width=36, frames=10)
    edges = np.array([12, 24]) - 0.5  # cell boundaries in pixel-centre coordinates
    checked, cells = 0, set()
    for c in range(len(CLASSES)):
        for i in range(8):
            plan = draw(c, [11, c, i], cfg)
            frames = synth.render_frames(plan, 0, cfg.frames)
            fg = np.clip(frames - plan.background, 0.0, None)
            mass = fg.sum(axis=(1, 2))
            seen = mass > 0.5 * mass.max()  # a flickering object fades out
            x = (fg.sum(axis=1) * np.arange(cfg.width)).sum(axis=1)[seen] / mass[seen]
            y = (fg.sum(axis=2) * np.arange(cfg.height)).sum(axis=1)[seen] / mass[seen]
            mx, my = float(x.mean()), float(y.mean())
            if np.abs(edges - mx).min() < 1.0 or np.abs(edges - my).min() < 1.0:
                continue  # too close to a cell boundary to tell from the pixels
            col, row = int(np.searchsorted(edges, mx)), int(np.searchsorted(edges, my))
            cell = POSITIONS[3 * row + col]
            where = plan.caption.removesuffix(", with sensor noise.").removesuffix(".")
            assert POSITION_OF[where.rpartition(", ")[2]] == cell, (plan.caption, mx, my)
            assert plan.signature.position == cell
            checked += 1
            cells.add(cell)
    assert checked >= 60 and len(cells) >= 7, (checked, cells)


def test_position_cell() -> None:
    assert synth.position_cell(0, 0, 30, 60) == "top left"
    assert synth.position_cell(59, 29, 30, 60) == "bottom right"
    assert synth.position_cell(29.5, 14.5, 30, 60) == "middle"
    assert synth.position_cell(50, 3, 30, 60) == "top right"
    assert synth.position_cell(5, 20, 30, 60) == "bottom left"


def test_caption_draws_come_after_the_spike_draws() -> None:
    """The camera and artifact seeds are those of version 1 (whose captions had no position),
    so every draw that shapes the spikes is unchanged: caption code draws after them.

    Regenerate the hash only for a change that is meant to alter the spikes (and bump
    GENERATOR_VERSION with it).
    """
    seeds = []
    for domain in ("sim", "real"):
        cfg = SynthConfig(height=16, width=24, frames=8, domain=domain, seed=7)
        for c in range(len(CLASSES)):
            for i in range(2):
                plan = draw(c, synth.sample_seed(cfg, "train", c, i), cfg)
                seeds.append((plan.camera_seed, plan.artifact_seed))
    assert seeds[0] == (468968805034278902, 6923961344430336267)
    assert hashlib.sha256(repr(seeds).encode()).hexdigest()[:16] == "e8fdac29fea6d4af"


def test_signature_functions_and_differences() -> None:
    cfg = SynthConfig(height=16, width=16, frames=4, train_per_class=3)
    paths, captions, stated, actual = split_signatures(cfg, "train")
    assert len(paths) == len(captions) == len(stated) == 3 * len(CLASSES)
    assert paths[1] == synth.sample_path("train", 1, 0)
    assert stated[1] == caption_signature(cfg, "train", 1, 0)
    assert actual[1] == clip_attributes(cfg, "train", 1, 0)
    assert all(s.fits(a) for s, a in zip(stated, actual, strict=True))
    assert all(isinstance(a.noise, bool) for a in actual)
    assert len(set(captions)) == len(captions)
    # a caption never fits a clip that differs from its own in any stated attribute
    base = stated[0]._replace(noise=None)
    clip = actual[0]
    other = {"label": 5, "shape": "other", "size": 9, "brightness": 9, "speed": 9}
    other |= {"background": "other", "position": "other"}
    for name, value in other.items():
        assert not base._replace(**{name: value}).fits(clip), name
        assert base._replace(**{name: value}) != base
    assert base._replace(noise=not clip.noise).fits(clip) is False
    assert base.fits(clip._replace(noise=True)) and base.fits(clip._replace(noise=False))


# --- ceiling ---------------------------------------------------------------------------------


def sig(label: int, position: str = "middle", noise: bool | None = None) -> CaptionSignature:
    return CaptionSignature(label, "disc", 1, 1, 1, "plain", position, noise)


def test_ceiling_math() -> None:
    a, b = sig(0), sig(1)
    counts = ceiling_counts([a, a, b], [a, a, b])
    assert counts.tolist() == [2, 2, 1]
    recall = ceiling_recall(counts)
    assert recall[1] == pytest.approx(100 * (0.5 + 0.5 + 1) / 3)
    assert recall[5] == recall[10] == pytest.approx(100.0)
    assert ceiling_recall([20, 4], ks=(1, 5, 10)) == pytest.approx(
        {1: 100 * (1 / 20 + 1 / 4) / 2, 5: 100 * (5 / 20 + 1) / 2, 10: 100 * (10 / 20 + 1) / 2}
    )
    # unstated noise fits clips either way; stated noise only noisy clips
    noisy, clean = sig(0, noise=True), sig(0, noise=False)
    queries = [sig(0), sig(0), sig(0, noise=True), sig(0, "top")]
    clips = [noisy, clean, noisy, sig(0, "top", noise=False)]
    assert ceiling_counts(queries, clips).tolist() == [3, 3, 2, 1]
    with pytest.raises(ValueError, match="own clip"):
        ceiling_counts([b], [a])
    with pytest.raises(ValueError, match="one caption per clip"):
        ceiling_counts([a], [a, b])
    with pytest.raises(ValueError):
        ceiling_recall([])


def test_retrieval_ceiling_of_a_folder(tmp_path, capsys) -> None:
    out = synth.generate_dataset(tmp_path / "d", TINY, progress=False)
    table = pd.read_csv(out / "manifest.csv")
    for split in ("train", "test"):
        result = retrieval_ceiling(out, split)
        rows = table[table.split == split]
        assert result.paths == rows.path.tolist() and result.captions == rows.caption.tolist()
        assert (result.counts >= 1).all() and result.max_count >= 1
        assert result.recall == pytest.approx(ceiling_recall(result.counts))
        assert 0 < result.recall[1] <= result.recall[5] <= result.recall[10] <= 100
    assert main(["info", str(out)]) == 0
    text = capsys.readouterr().out
    assert "retrieval ceiling" in text
    assert re.search(r"test: 12 captions fit [\d.]+ clips on average.*R@1/5/10 [\d.]+ / ", text)

    # a manifest whose captions are not the generator's is refused
    edited = table.copy()
    edited.loc[3, "caption"] = "something else."
    edited.to_csv(out / "manifest.csv", index=False)
    with pytest.raises(ValueError, match=r"manifest.csv: row 5: caption of train/"):
        retrieval_ceiling(out, "train")
    table.to_csv(out / "manifest.csv", index=False)

    # another generator version is refused with one line naming the file
    config = out / synth.CONFIG_NAME
    record = json.loads(config.read_text())
    config.write_text(json.dumps({**record, "version": synth.GENERATOR_VERSION - 1}))
    with pytest.raises(ValueError, match=r"synth_config.json: generator version 1") as err:
        retrieval_ceiling(out, "test")
    assert "\n" not in str(err.value)
    assert main(["info", str(out)]) == 2
    assert "synth_config.json" in capsys.readouterr().err.strip().splitlines()[-1]
    config.write_text(json.dumps({**record, "generator": "elsewhere"}))
    with pytest.raises(ValueError, match="not written by"):
        synth.read_config(out)
    config.write_text(json.dumps(record))
    assert synth.read_config(out) == TINY
    config.unlink()
    with pytest.raises(FileNotFoundError):
        synth.read_config(out)
    assert main(["info", str(out)]) == 0  # a folder of other data: no ceiling, no error
    assert "retrieval ceiling" not in capsys.readouterr().out
