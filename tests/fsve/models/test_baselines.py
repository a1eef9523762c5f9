"""Table 1 video-encoder baselines: SPKLIP with a frame-count CNN or a ViT as its video path."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from fsve.checkpoint import load_model, save_checkpoint
from fsve.fewshot import freeze_all_but_last_two, trainable_layers
from fsve.models.config import (
    VIDEO_ENCODERS,
    TeacherConfig,
    config_from_dict,
    config_to_dict,
    tiny,
)
from fsve.models.teacher import (
    HSFE,
    SPKLIP,
    FrameCountCNN,
    MAPResNet,
    SpikeViT,
    TemporalTransformer,
    hsfe_block_features,
    parameter_counts,
)
from fsve.models.text import TextEncoder
from fsve.train.losses import stcl_loss

BASELINES = ("frame_cnn", "vit")


def baseline_cfg(encoder: str, **changes: object) -> TeacherConfig:
    return dataclasses.replace(tiny(), video_encoder=encoder, **changes)


def spikes_for(cfg: TeacherConfig, batch: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    shape = (batch, cfg.num_blocks, cfg.block_frames, cfg.height, cfg.width)
    return torch.rand(shape, generator=g) < 0.1


def tokens_for(cfg: TeacherConfig, batch: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(4, cfg.text.vocab_size, (batch, cfg.text.context_length), generator=g)


# ---------------------------------------------------------------- config


def test_video_encoder_is_validated_and_round_trips():
    assert tiny().video_encoder == "spklip" and VIDEO_ENCODERS == ("spklip", "frame_cnn", "vit")
    with pytest.raises(ValueError, match="video_encoder must be one of"):
        baseline_cfg("resnet")
    with pytest.raises(ValueError, match="video_encoder"):
        config_from_dict(TeacherConfig, {**config_to_dict(tiny()), "video_encoder": "cnn"})
    # a ViT needs one 8x8 patch; the frame CNN and the ViT skip the trunk's ~32x size check
    with pytest.raises(ValueError, match="height and width >= 8"):
        baseline_cfg("vit", height=64, width=7)
    with pytest.raises(ValueError, match="too small"):
        dataclasses.replace(tiny(), height=16, width=16)
    assert baseline_cfg("frame_cnn", height=16, width=16).height == 16
    with pytest.raises(ValueError, match="ViT width 8\\*16 is not divisible by pool_heads 3"):
        baseline_cfg("vit", pool_heads=3)
    cfg = baseline_cfg("vit")
    assert config_from_dict(TeacherConfig, config_to_dict(cfg)) == cfg


# ---------------------------------------------------------------- shapes and structure


@pytest.mark.parametrize("encoder", BASELINES)
def test_baseline_shapes_and_parts(encoder):
    cfg = baseline_cfg(encoder)
    model = SPKLIP(cfg).eval()
    assert model.hsfe is None and model.temporal is None
    assert isinstance(model.backbone, {"frame_cnn": FrameCountCNN, "vit": SpikeViT}[encoder])
    spikes = spikes_for(cfg, 2)
    with torch.no_grad():
        video = model.encode_video(spikes)
        blocks = model.encode_blocks(spikes)
    assert video.shape == (2, cfg.embed_dim) and blocks.shape == (2, cfg.num_blocks, 64)
    torch.testing.assert_close(video, blocks.mean(dim=1), rtol=0, atol=0)  # Eq. 5
    counts = parameter_counts(model)
    assert counts["hsfe"] == 0 and counts["temporal"] == 0
    assert counts["total"] == sum(p.numel() for p in model.parameters())
    for call in (
        lambda: model.forward_features(spikes),
        lambda: model.forward_head(torch.zeros(2, cfg.num_blocks, 1, 4, 4)),
        lambda: hsfe_block_features(model, spikes),
    ):
        with pytest.raises(ValueError, match=f"has no HSFE: video_encoder='{encoder}'"):
            call()


def test_frame_cnn_widths():
    cfg = baseline_cfg("frame_cnn")  # base_width 16 -> 16, 32, 64, 128
    cnn = SPKLIP(cfg).backbone
    assert [s.conv.out_channels for s in cnn.stages] == [16, 32, 64, 128]
    assert cnn.stages[0].conv.in_channels == 1 and cnn.stages[0].conv.stride == (2, 2)
    # 64 -> 32 -> 16 -> 8 -> 4 pixels
    assert cnn.forward_features(torch.zeros(1, cfg.block_frames, 64, 64)).shape == (1, 128, 4, 4)


def test_vit_sizes_and_non_square_input():
    cfg = baseline_cfg("vit", height=64, width=40)  # 8 x 5 patches
    vit = SPKLIP(cfg).backbone
    assert vit.patch_embed.in_channels == cfg.block_frames and vit.grid == (8, 5)
    assert vit.positional_embedding.shape == (8 * 5 + 1, 128)  # width 8 * base_width
    assert len(vit.encoder.layers) == sum(cfg.layers) == 4
    assert vit.encoder.layers[0].self_attn.num_heads == cfg.pool_heads
    assert vit.encoder.layers[0].linear1.out_features == 4 * 128
    # every layer gets its own weights, not deep copies of one
    a, b = (layer.linear1.weight for layer in vit.encoder.layers[:2])
    assert not torch.equal(a, b)
    model = SPKLIP(cfg).eval()
    with torch.no_grad():
        assert model.encode_video(spikes_for(cfg, 2)).shape == (2, cfg.embed_dim)


# ---------------------------------------------------------------- training, checkpoints


@pytest.mark.parametrize("encoder", BASELINES)
def test_one_optimizer_step_is_finite_and_moves_the_video_path(encoder):
    torch.manual_seed(0)
    cfg = baseline_cfg(encoder)
    model = SPKLIP(cfg).train()
    before = {n: p.detach().clone() for n, p in model.backbone.named_parameters()}
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loss = stcl_loss(*model(spikes_for(cfg, 3), tokens_for(cfg, 3)))
    loss.backward()
    assert torch.isfinite(loss)
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    opt.step()
    after = dict(model.backbone.named_parameters())
    assert all(torch.isfinite(p).all() for p in model.parameters())
    moved = [n for n in before if not torch.equal(before[n], after[n])]
    assert len(moved) == len(before), sorted(set(before) - set(moved))


@pytest.mark.parametrize("encoder", BASELINES)
def test_checkpoint_round_trip_rebuilds_the_baseline(encoder, tmp_path):
    torch.manual_seed(0)
    cfg = baseline_cfg(encoder)
    model = SPKLIP(cfg).eval()
    save_checkpoint(tmp_path / "t.pt", "teacher", cfg, model.state_dict(), classes=["x"])
    loaded, ckpt = load_model(tmp_path / "t.pt", kind="teacher")
    assert loaded.cfg == cfg and ckpt["config"]["video_encoder"] == encoder
    spikes, tokens = spikes_for(cfg, 2), tokens_for(cfg, 2)
    with torch.no_grad():
        for a, b in zip(model(spikes, tokens), loaded(spikes, tokens), strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_default_spklip_is_unchanged():
    """Same submodules, order and seeded init as before the baselines existed."""
    cfg = tiny()
    torch.manual_seed(0)
    model = SPKLIP(cfg)
    # the pre-baseline constructor, step by step
    torch.manual_seed(0)
    hsfe = HSFE(cfg)
    reference = {
        "hsfe": hsfe,
        "backbone": MAPResNet(cfg, hsfe.out_channels, "attention"),
        "temporal": TemporalTransformer(cfg),
        "text": TextEncoder(cfg.text),
    }
    expected = {
        f"{part}.{k}": v for part, m in reference.items() for k, v in m.state_dict().items()
    }
    state = model.state_dict()
    assert list(state) == ["logit_scale", *expected]  # parameters before submodules
    assert not any(k.startswith(("backbone.stages.", "backbone.patch_embed.")) for k in state)
    for key, value in expected.items():
        assert torch.equal(state[key], value), key
    torch.manual_seed(0)
    explicit = SPKLIP(dataclasses.replace(cfg, video_encoder="spklip"))
    assert torch.equal(next(explicit.hsfe.parameters()), next(model.hsfe.parameters()))


# ---------------------------------------------------------------- properties


def test_frame_cnn_sees_counts_only_but_vit_sees_frame_order():
    g = torch.Generator().manual_seed(1)
    spikes = spikes_for(baseline_cfg("vit"), 2)
    perm = torch.randperm(spikes.shape[2], generator=g)  # the same shuffle in every sub-block
    assert not torch.equal(perm, torch.arange(len(perm)))
    shuffled = spikes[:, :, perm]
    for encoder in BASELINES:
        torch.manual_seed(0)
        model = SPKLIP(baseline_cfg(encoder)).eval()
        with torch.no_grad():
            a, b = model.encode_video(spikes), model.encode_video(shuffled)
        if encoder == "frame_cnn":  # counts of 0/1 spikes are exact, whatever the order
            torch.testing.assert_close(a, b, rtol=0, atol=0)
        else:  # each frame has its own patch-embedding weights
            assert (a - b).abs().max() > 1e-3 * a.abs().max()


@pytest.mark.parametrize(
    ("encoder", "names"),
    [
        ("frame_cnn", ["backbone.stages[-1]", "backbone.proj"]),
        ("vit", ["backbone.encoder.layers[-1]", "backbone.encoder.norm", "backbone.proj"]),
    ],
)
def test_fewshot_trains_the_last_two_layers(encoder, names):
    model = SPKLIP(baseline_cfg(encoder))
    assert list(trainable_layers(model)) == names
    freeze_all_but_last_two(model)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    last = "backbone.stages.3." if encoder == "frame_cnn" else "backbone.encoder.layers.3."
    assert trainable and all(
        n.startswith((last, "backbone.encoder.norm.", "backbone.proj.")) for n in trainable
    )
    assert any(n.startswith(last) for n in trainable) and "backbone.proj.weight" in trainable
