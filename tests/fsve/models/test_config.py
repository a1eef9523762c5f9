"""Teacher configs: presets, Eq. 3 channel allocation, strict dict round trips."""

from __future__ import annotations

import io
import itertools
import json
from dataclasses import dataclass, field

import pytest
import torch

from fsve.models.config import (
    TeacherConfig,
    TextConfig,
    attnpool_grid,
    channel_allocation,
    config_from_dict,
    config_to_dict,
    paper,
    teacher_config,
    tiny,
    with_vocab_size,
)


def test_presets_build_with_documented_sizes():
    t, p = tiny(), paper()
    assert (t.height, t.width, t.num_blocks, t.block_frames) == (64, 64, 5, 61)
    assert (p.height, p.width, p.num_blocks, p.block_frames) == (240, 320, 5, 61)
    assert p.layers == (2, 2, 2, 2) and p.base_width == 64 and p.embed_dim == 512
    assert p.pool_heads == 8 and 32 * p.base_width == 2048  # widths 64..2048
    assert p.branch_frames == (61, 31, 15, 7)
    assert t.pool_grid == (2, 2)  # 64 -> 32 (stem conv) -> 16 -> 8 -> 4 -> 2
    assert p.pool_grid == (7, 10)  # 240 -> 120 -> 60 -> 30 -> 15 -> 7; 320 -> ... -> 10
    assert teacher_config("tiny") == t and teacher_config("paper") == p
    assert teacher_config(p) is p


def test_unknown_preset_name_raises():
    with pytest.raises(ValueError, match="huge"):
        teacher_config("huge")


def test_channel_allocation_follows_eq3():
    # quotas 16 (1/T_i) / sum_j(1/T_j) = (1.02, 1.999, 4.13, 8.85): floors sum 14, +1 to .999, .85
    assert channel_allocation((61, 31, 15, 7), 16) == (1, 2, 4, 9)
    # 64 * ... = (4.06, 7.99, 16.52, 35.42): floors (4, 7, 16, 35) = 62, +1 to .99 and .52
    assert channel_allocation((61, 31, 15, 7), 64) == (4, 8, 17, 35)
    for frames, total in [((61, 31, 15, 7), 64), ((61, 45, 29, 13), 40), ((9, 3), 5)]:
        k = channel_allocation(frames, total)
        assert sum(k) == total
        # shorter window -> at least as many channels (strictly more here)
        assert all(a < b for a, b in itertools.pairwise(k))
        # k_i * T_i is constant ("photon total") up to rounding: |k_i - quota_i| < 1
        ideal = total / sum(1 / t for t in frames)
        assert all(abs(ki * t - ideal) < t for ki, t in zip(k, frames, strict=True))
    assert channel_allocation((7, 7), 6) == (3, 3)  # equal windows share equally
    assert channel_allocation((1001, 1), 2) == (1, 1)  # no branch is left with 0 channels
    with pytest.raises(ValueError, match="cannot give"):
        channel_allocation((61, 31, 15, 7), 3)


def test_config_branch_channels_use_allocation():
    assert tiny().branch_channels == (1, 2, 4, 9)
    assert paper().branch_channels == (4, 8, 17, 35)


def test_attnpool_grid():
    assert attnpool_grid(240, 320) == (7, 10)
    assert attnpool_grid(64, 64) == (2, 2)
    assert attnpool_grid(33, 95) == (1, 3)  # ceil(33/2)=17 -> 8 -> 4 -> 2 -> 1; 95: 48 -> 3
    with pytest.raises(ValueError, match="too small"):
        TeacherConfig(height=30, width=64)


def test_dict_round_trip_plain_json_and_weights_only():
    for cfg in (tiny(), paper(), TeacherConfig(components="mtf", channel_slicing=False)):
        d = config_to_dict(cfg)
        assert d["branch_radii"] == list(cfg.branch_radii)  # tuples stored as lists
        assert isinstance(d["text"], dict)
        assert config_from_dict(TeacherConfig, d) == cfg
        assert config_from_dict(TeacherConfig, json.loads(json.dumps(d))) == cfg
        buf = io.BytesIO()
        torch.save({"config": d}, buf)
        buf.seek(0)
        loaded = torch.load(buf, weights_only=True)["config"]
        assert teacher_config(loaded) == cfg


def test_unknown_keys_raise_naming_the_key():
    d = config_to_dict(tiny())
    with pytest.raises(ValueError, match="'colour'"):
        config_from_dict(TeacherConfig, {**d, "colour": "red"})
    with pytest.raises(ValueError, match="'text.vocab'"):
        config_from_dict(TeacherConfig, {**d, "text": {**d["text"], "vocab": 3}})
    with pytest.raises(ValueError, match="'bogus'"):
        teacher_config({"bogus": 1})


def test_missing_keys_take_defaults_and_types_are_checked():
    assert config_from_dict(TeacherConfig, {}) == TeacherConfig()
    assert config_from_dict(TeacherConfig, {"dropout": 0}) == TeacherConfig(dropout=0.0)
    with pytest.raises(ValueError, match="'layers'"):
        config_from_dict(TeacherConfig, {"layers": "2222"})
    with pytest.raises(ValueError, match="'channel_slicing'"):
        config_from_dict(TeacherConfig, {"channel_slicing": 1})
    with pytest.raises(ValueError, match="'height'"):
        config_from_dict(TeacherConfig, {"height": 64.0})
    with pytest.raises(ValueError, match="'text'"):
        config_from_dict(TeacherConfig, {"text": 5})


@dataclass(frozen=True)
class Inner:
    a: int = 1
    b: tuple[float, ...] = (0.5,)


@dataclass(frozen=True)
class Outer:
    name: str = "x"
    inner: Inner = field(default_factory=Inner)
    pair: tuple[int, str] = (1, "a")
    maybe: float | None = None


def test_generic_helpers_on_another_dataclass():
    cfg = Outer("y", Inner(3, (1.0, 2.0)), (2, "b"), 0.25)
    d = config_to_dict(cfg)
    assert d == {"name": "y", "inner": {"a": 3, "b": [1.0, 2.0]}, "pair": [2, "b"], "maybe": 0.25}
    assert config_from_dict(Outer, d) == cfg
    assert config_from_dict(Outer, {"maybe": None}) == Outer()
    with pytest.raises(ValueError, match="'inner.c'"):
        config_from_dict(Outer, {"inner": {"c": 1}})
    with pytest.raises(ValueError, match="expected 2 items"):
        config_from_dict(Outer, {"pair": [1]})
    with pytest.raises(ValueError, match="dataclass instance"):
        config_to_dict({"a": 1})


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"block_frames": 60}, "odd"),
        ({"branch_radii": (30, 30, 7)}, "strictly decreasing"),
        ({"branch_radii": (31, 7)}, r"\[0, 30\]"),
        ({"branch_radii": ()}, "non-empty"),
        ({"components": "mtf+sa"}, "components"),
        ({"layers": (2, 2, 2)}, "4 stages"),
        ({"embed_dim": 256}, "text.embed_dim"),
        ({"hsfe_channels": 3}, "cannot give"),
        ({"num_blocks": 0}, "num_blocks"),
        ({"channel_slicing": "no"}, "channel_slicing"),
    ],
)
def test_invalid_teacher_configs_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TeacherConfig(**kwargs)


def test_text_config_validation_and_vocab_size():
    with pytest.raises(ValueError, match="divisible"):
        TextConfig(width=30, heads=4)
    with pytest.raises(ValueError, match="vocab_size"):
        TextConfig(vocab_size=3)
    cfg = with_vocab_size(tiny(), 37)
    assert cfg.text.vocab_size == 37 and cfg.text.width == tiny().text.width
