"""FSVE student: config and presets, spike-driven check, gradients, checkpoint, paper size."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from fsve.checkpoint import load_model, save_checkpoint
from fsve.models.config import (
    FSVEConfig,
    config_from_dict,
    config_to_dict,
    fsve_config,
    fsve_paper,
    fsve_tiny,
    fsve_token_grid,
    paper,
    tiny,
    with_vocab_size,
)
from fsve.models.student import (
    FSVE,
    SPIKE_DRIVEN_EXCEPTIONS,
    build_fsve,
    parameter_counts,
    spike_driven_report,
)
from fsve.models.teacher import LOGIT_SCALE_INIT
from fsve.models.text import TextEncoder
from fsve.nn.attention import SN
from fsve.train.losses import stcl_loss


def spikes_for(cfg: FSVEConfig, batch: int, seed: int = 0, p: float = 0.1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    shape = (batch, cfg.num_blocks, cfg.block_frames, cfg.height, cfg.width)
    return torch.rand(shape, generator=g) < p


def tokens_for(cfg: FSVEConfig, batch: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(4, cfg.text.vocab_size, (batch, 6), generator=g)


def calibrate(model: FSVE, spikes: torch.Tensor) -> None:
    """Set every running statistic (TDBN, SN) to that of one train-mode batch.

    An untrained network evaluated with its initial running statistics (mean 0, var 1, E|x| 1)
    is silent; with momentum 1 a single pass replaces them by the batch's.
    """
    saved = {}
    for m in model.modules():
        if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d | SN):
            saved[m] = m.momentum
            m.momentum = 1.0
    model.train()
    with torch.no_grad():
        model.encode_video(spikes)
    for m, momentum in saved.items():
        m.momentum = momentum


@pytest.fixture(scope="module")
def tiny_model() -> FSVE:
    torch.manual_seed(0)
    return FSVE(fsve_tiny())


# ---------------------------------------------------------------- config


def test_presets_share_the_teachers_text_space():
    t, p = fsve_tiny(), fsve_paper()
    assert (t.embed_dim, t.text) == (tiny().embed_dim, tiny().text)
    assert (p.embed_dim, p.text) == (paper().embed_dim, paper().text)
    assert FSVEConfig().text == paper().text and FSVEConfig().embed_dim == 512
    assert (p.height, p.width, p.widths, p.layers) == (240, 320, (64, 128, 256, 512), (2, 2, 2, 2))
    # 240 -> 120 (stem) -> 120 -> 60 -> 30 -> 15; 320 -> 160 -> 160 -> 80 -> 40 -> 20
    assert p.token_grid == (15, 20) and p.num_tokens == 300
    assert t.token_grid == (4, 4)  # 64 -> 32 -> 32 -> 16 -> 8 -> 4
    assert fsve_token_grid(15, 15, 2, 2) == (4, 4)  # 15 -> 8 -> 4


def test_config_dict_round_trip_and_strict_keys():
    cfg = dataclasses.replace(fsve_tiny(), lif_v_reset=None, attn_depth=0)
    d = config_to_dict(cfg)
    assert d["widths"] == [32, 64, 128, 256] and d["text"]["embed_dim"] == cfg.embed_dim
    assert config_from_dict(FSVEConfig, d) == cfg
    assert fsve_config(d) == cfg and fsve_config("tiny") == fsve_tiny()
    with pytest.raises(ValueError, match="unknown config key 'bogus'"):
        fsve_config({**d, "bogus": 1})
    with pytest.raises(ValueError, match="unknown config key 'text.nope'"):
        build_fsve({**d, "text": {**d["text"], "nope": 0}})
    with pytest.raises(ValueError, match="unknown FSVE preset"):
        fsve_config("huge")
    assert with_vocab_size(cfg, 300).text.vocab_size == 300  # works for FSVEConfig too


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"attn_heads": 3}, "not divisible by attn_heads"),
        ({"widths": (8, 16)}, "same non-zero number of stages"),
        ({"embed_dim": 32}, "must equal embed_dim"),
        ({"lif_tau": 1.0}, "lif_tau"),
        ({"sn_momentum": 0.0}, "sn_momentum"),
        ({"stem_stride": 4}, "stem_stride"),
        ({"attn_depth": -1}, "attn_depth"),
    ],
)
def test_config_validation(change, message):
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(fsve_tiny(), **change)


# ---------------------------------------------------------------- API and spike-driven check


def test_same_api_as_the_teacher(tiny_model):
    cfg = tiny_model.cfg
    x = spikes_for(cfg, 2)
    tokens = tokens_for(cfg, 3)
    video, text, scale = tiny_model(x, tokens)
    assert video.shape == (2, cfg.embed_dim) and text.shape == (3, cfg.embed_dim)
    assert scale.item() == pytest.approx(1 / 0.07)
    assert tiny_model.logit_scale.item() == pytest.approx(LOGIT_SCALE_INIT)
    assert isinstance(tiny_model.text, TextEncoder)
    feats = tiny_model.forward_features(x)
    assert feats.shape == (cfg.num_blocks, 2, cfg.num_tokens, cfg.widths[-1])  # [T, B, N, C]
    assert bool(((feats == 0) | (feats == 1)).all())
    assert torch.allclose(tiny_model.forward_head(feats), tiny_model.encode_video(x), atol=1e-6)
    with pytest.raises(ValueError, match=r"spikes must be \[B, K, 2r\+1, H, W\]"):
        tiny_model.encode_video(torch.zeros(2, 5, 61, 32, 32, dtype=torch.bool))


def test_spike_driven_report_lists_exactly_the_documented_exception(tiny_model):
    x = spikes_for(tiny_model.cfg, 2)
    before = {k: v.clone() for k, v in tiny_model.state_dict().items()}
    modes = [m.training for m in tiny_model.modules()]
    assert SPIKE_DRIVEN_EXCEPTIONS == ("proj",)
    assert spike_driven_report(tiny_model, x) == ["visual.proj"]
    assert spike_driven_report(tiny_model.visual, x) == ["proj"]
    after = tiny_model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # running stats restored
    assert [m.training for m in tiny_model.modules()] == modes


def test_spike_driven_report_catches_real_valued_inputs():
    torch.manual_seed(1)
    model = FSVE(fsve_tiny())
    x = spikes_for(model.cfg, 2)
    analog = x.float() * torch.rand(x.shape)  # grey values instead of spikes
    assert spike_driven_report(model, analog) == ["visual.stem.conv", "visual.proj"]
    model.visual.stages[1][0].lif1 = nn.Identity()  # block 1.0 convolves its membrane input
    assert spike_driven_report(model, x) == [
        "visual.stages.1.0.conv1",
        "visual.stages.1.0.shortcut.conv",
        "visual.proj",
    ]
    with pytest.raises(ValueError, match="FSVE or SpikingVisualEncoder"):
        spike_driven_report(nn.Linear(2, 2), x)


# ---------------------------------------------------------------- training


def _groups(model: FSVE) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for name, _ in model.named_parameters():
        parts = name.split(".")
        if parts[0] == "visual" and parts[1] in ("stages", "blocks"):
            key = ".".join(parts[:4] if parts[1] == "blocks" else parts[:3])
        elif parts[0] == "visual":
            key = ".".join(parts[:2])
        else:
            key = parts[0]
        groups.setdefault(key, []).append(name)
    return groups


def test_tiny_forward_backward_reaches_every_parameter_group():
    torch.manual_seed(2)
    model = FSVE(fsve_tiny())
    cfg = model.cfg
    groups = _groups(model)
    expected = {"visual.stem", "visual.proj", "text", "logit_scale"}
    expected |= {f"visual.stages.{i}" for i in range(len(cfg.widths))}
    expected |= {"visual.blocks.0.attn", "visual.blocks.0.mlp"}
    assert set(groups) == expected
    params = dict(model.named_parameters())
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, tokens = spikes_for(cfg, 2, seed=3), tokens_for(cfg, 2, seed=3)
    for step in range(2):
        opt.zero_grad()
        stcl_loss(*model(x, tokens)).backward()  # the teacher's loss (Eq. 6)
        assert all(torch.isfinite(p.grad).all() for p in params.values())
        for key, names in groups.items():
            assert sum(params[n].grad.abs().sum() for n in names) > 0, (step, key)
        zero = {n for n, p in params.items() if p.grad.abs().sum() == 0}
        if step == 0:  # only the branches behind a zero-init TDBN (MS-ResNet identity init)
            assert zero and all(n.split(".")[-2] in ("conv1", "bn1", "conv2") for n in zero)
        else:  # one step later every parameter learns
            assert zero == set()
        opt.step()


def test_checkpoint_round_trip(tmp_path):
    torch.manual_seed(4)
    cfg = fsve_tiny()
    model = FSVE(cfg)
    calibrate(model, spikes_for(cfg, 4, seed=1))
    model.eval()
    assert "visual.blocks.0.attn.q.sn.running_abs_mean" in model.state_dict()
    path = save_checkpoint(tmp_path / "fsve.pt", "fsve", cfg, model.state_dict())
    loaded, ckpt = load_model(path)
    assert isinstance(loaded, FSVE) and ckpt["kind"] == "fsve" and loaded.cfg == cfg
    assert not loaded.training
    x, tokens = spikes_for(cfg, 2, seed=9), tokens_for(cfg, 2, seed=9)
    with torch.no_grad():
        for a, b in zip(model(x, tokens), loaded(x, tokens), strict=True):
            assert torch.equal(a, b)
        assert model.forward_features(x).sum() > 0  # a non-silent network was compared


# ---------------------------------------------------------------- paper size


def _paper_visual_parameters() -> int:
    f, c0, widths, layers, d, ratio = 61, 64, (64, 128, 256, 512), (2, 2, 2, 2), 512, 4
    n = f * c0 * 9 + 2 * c0  # stem conv 3x3 (no bias) + TDBN
    cin = c0
    for i, (w, blocks) in enumerate(zip(widths, layers, strict=True)):
        for b in range(blocks):
            src = cin if b == 0 else w
            n += 9 * src * w + 2 * w + 9 * w * w + 2 * w  # conv1 + bn1, conv2 + bn2
            if b == 0 and (i > 0 or src != w):
                n += src * w + 2 * w  # 1x1 shortcut conv + TDBN
        cin = w
    c = widths[-1]
    attn = 4 * (c * c + 2 * c) + 5  # q, k, v, proj Linear + TDBN1d; α of 5 SNs
    mlp = c * ratio * c + 2 * ratio * c + ratio * c * c + 2 * c
    n += 2 * (attn + mlp)
    return n + c * d + d  # proj


def test_paper_parameter_count():
    model = FSVE(fsve_paper())
    counts = parameter_counts(model)
    visual = counts["stem"] + counts["stages"] + counts["transformer"] + counts["proj"]
    assert visual == _paper_visual_parameters() == 17_774_794
    assert counts["text"] == sum(p.numel() for p in TextEncoder(paper().text).parameters())
    assert counts["total"] == visual + counts["text"] + 1


@pytest.mark.slow
def test_paper_forward():
    torch.manual_seed(5)
    model = FSVE(fsve_paper())
    x = spikes_for(model.cfg, 1)
    with torch.no_grad():
        video = model.encode_video(x)
    assert video.shape == (1, 512) and torch.isfinite(video).all()
    assert spike_driven_report(model, x) == ["visual.proj"]
