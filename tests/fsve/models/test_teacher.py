"""SPKLIP teacher (HSFE, STAR-Net), word tokenizer and text encoder, STCL loss (Eq. 6)."""

from __future__ import annotations

import dataclasses
import io
import math

import pytest
import torch

from fsve.models.config import TeacherConfig, paper, tiny, with_vocab_size
from fsve.models.teacher import (
    SPKLIP,
    AttentionPool2d,
    AvgPoolHead,
    hsfe_block_features,
    parameter_counts,
    temporal_correlation,
)
from fsve.models.text import EOS_ID, PAD_ID, SOS_ID, UNK_ID, TextEncoder, WordTokenizer
from fsve.train.losses import stcl_loss, zero_shot_logits

CAPTIONS = ["A person waves a hand.", "a dog runs", "the person jumps; the DOG waves!"]


def spikes_for(cfg: TeacherConfig, batch: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    shape = (batch, cfg.num_blocks, cfg.block_frames, cfg.height, cfg.width)
    return torch.rand(shape, generator=g) < 0.1


# ---------------------------------------------------------------- tokenizer and text encoder


def test_tokenizer_vocab_is_deterministic_and_ordered():
    tok = WordTokenizer.from_texts(CAPTIONS)
    # counts: a 3, person 2, waves 2, dog 2, the 2, hand 1, runs 1, jumps 1; ties alphabetical
    assert tok.vocab == [
        *["<pad>", "<unk>", "<sos>", "<eos>"],
        *["a", "dog", "person", "the", "waves", "hand", "jumps", "runs"],
    ]
    assert WordTokenizer.from_texts(list(reversed(CAPTIONS))) == tok
    assert len(tok) == tok.vocab_size == 12
    assert WordTokenizer.from_texts(CAPTIONS, min_count=2).vocab[4:] == [
        "a",
        "dog",
        "person",
        "the",
        "waves",
    ]
    assert WordTokenizer.from_texts(CAPTIONS, max_size=6).vocab[4:] == ["a", "dog"]


def test_tokenizer_encode_decode():
    tok = WordTokenizer.from_texts(CAPTIONS)
    ids = tok.encode(["A dog waves", "cat-person"], context_length=6)
    a, dog, person, waves = (tok.index[w] for w in ("a", "dog", "person", "waves"))
    assert ids.dtype == torch.long
    assert ids.tolist() == [
        [SOS_ID, a, dog, waves, EOS_ID, PAD_ID],
        [SOS_ID, UNK_ID, person, EOS_ID, PAD_ID, PAD_ID],  # "cat" is unknown, "-" splits
    ]
    assert tok.decode(ids[0]) == "a dog waves"
    long = tok.encode("a a a a a a a a", context_length=4)  # truncated, <eos> kept
    assert long.tolist() == [[SOS_ID, a, a, EOS_ID]]
    with pytest.raises(ValueError, match="context_length"):
        tok.encode("a", context_length=1)


def test_tokenizer_state_round_trip_weights_only():
    tok = WordTokenizer.from_texts(CAPTIONS)
    buf = io.BytesIO()
    torch.save({"tokenizer": tok.to_dict()}, buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)["tokenizer"]
    again = WordTokenizer.from_dict(state)
    assert again == tok
    assert torch.equal(again.encode(CAPTIONS, 12), tok.encode(CAPTIONS, 12))
    with pytest.raises(ValueError, match="unsupported tokenizer"):
        WordTokenizer.from_dict({**state, "version": 99})
    with pytest.raises(ValueError, match="must start with"):
        WordTokenizer(["a", "b"])


def test_text_encoder_shape_and_padding_invariance():
    torch.manual_seed(0)
    tok = WordTokenizer.from_texts(CAPTIONS)
    cfg = dataclasses.replace(tiny().text, vocab_size=len(tok))
    enc = TextEncoder(cfg).eval()
    short = tok.encode(CAPTIONS, 10)
    padded = tok.encode(CAPTIONS, 16)  # same tokens, 6 more <pad> columns
    with torch.no_grad():
        a, b = enc(short), enc(padded)
    assert a.shape == (3, cfg.embed_dim)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)  # pads are masked out entirely
    with pytest.raises(ValueError, match="vocab_size"):
        enc(torch.tensor([[SOS_ID, len(tok), EOS_ID]]))
    with pytest.raises(ValueError, match="all <pad>"):
        enc(torch.zeros(1, 4, dtype=torch.long))


# ---------------------------------------------------------------- SPKLIP teacher


@pytest.fixture(scope="module")
def tiny_setup():
    torch.manual_seed(0)
    tok = WordTokenizer.from_texts(CAPTIONS)
    cfg = with_vocab_size(tiny(), len(tok))
    return cfg, tok


def test_tiny_forward_shapes(tiny_setup):
    cfg, tok = tiny_setup
    model = SPKLIP(cfg)
    x = spikes_for(cfg, 2)
    tokens = tok.encode(CAPTIONS, cfg.text.context_length)
    video, text, scale = model(x, tokens)
    assert video.shape == (2, 64) and text.shape == (3, 64) and scale.shape == ()
    assert math.isclose(scale.item(), 1 / 0.07, rel_tol=1e-5)
    feats = model.forward_features(x)
    assert feats.shape == (2, 5, 16, 64, 64)  # C_h = 1 + 2 + 4 + 9
    assert model.forward_blocks(feats).shape == (2, 5, 64)
    blocks = hsfe_block_features(model, x)
    assert blocks.shape == (2, 5, 16)
    corr = temporal_correlation(blocks)
    assert corr.shape == (2, 5, 5)
    torch.testing.assert_close(torch.diagonal(corr, dim1=1, dim2=2), torch.ones(2, 5))
    with pytest.raises(ValueError, match="spikes must be"):
        model.encode_video(x[:, :, :60])


def test_tiny_backward_reaches_every_parameter_group(tiny_setup):
    cfg, tok = tiny_setup
    torch.manual_seed(1)
    model = SPKLIP(cfg)
    x = spikes_for(cfg, 4, seed=1)
    tokens = tok.encode([*CAPTIONS, "a person runs"], cfg.text.context_length)
    loss = stcl_loss(*model(x, tokens))
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
    groups = {
        "hsfe": model.hsfe,
        "hsfe.masks": model.hsfe.masks,
        "hsfe.sa": model.hsfe.sa,
        "backbone": model.backbone,
        "backbone.pool": model.backbone.pool,
        "temporal": model.temporal,
        "text": model.text,
    }
    for name, module in groups.items():
        norm = sum(p.grad.abs().sum() for p in module.parameters())
        assert norm > 0, name
    assert model.logit_scale.grad.abs() > 0


def test_logit_scale_is_clamped_at_100(tiny_setup):
    cfg, _ = tiny_setup
    model = SPKLIP(cfg)
    assert math.isclose(model.logit_scale.item(), math.log(1 / 0.07), rel_tol=1e-6)
    with torch.no_grad():
        model.logit_scale.fill_(10.0)
    assert math.isclose(model.scale().item(), 100.0, rel_tol=1e-5)


def test_hsfe_windows_and_channel_allocation(tiny_setup):
    cfg, _ = tiny_setup
    hsfe = SPKLIP(cfg).hsfe
    # nested windows centred on frame 30 of 61: radii (30, 15, 7, 3)
    assert hsfe.windows == ((0, 61), (15, 46), (23, 38), (27, 34))
    assert [b.conv.in_channels for b in hsfe.branches] == [61, 31, 15, 7]
    assert [b.conv.out_channels for b in hsfe.branches] == [1, 2, 4, 9]  # Eq. 3: k ∝ 1/T
    assert [m.numel() for m in hsfe.masks] == [61, 31, 15, 7]
    # branch i depends only on its window: change frames 0-26 and 34-60 (outside branch 3's
    # window [27, 34)), and branch 3's output stays put while branch 0's moves
    hsfe.eval()
    x = spikes_for(cfg, 1)[:, 0].float()  # [1, 61, 64, 64]
    y = x.clone()
    y[:, :27] = 1 - y[:, :27]
    y[:, 34:] = 1 - y[:, 34:]
    with torch.no_grad():
        hx, hy = hsfe.forward_branches(x), hsfe.forward_branches(y)
    torch.testing.assert_close(hx[3], hy[3])
    assert not torch.allclose(hx[0], hy[0])


def test_channel_slicing_ablation(tiny_setup):
    cfg, tok = tiny_setup
    model = SPKLIP(dataclasses.replace(cfg, channel_slicing=False))
    hsfe = model.hsfe
    assert hsfe.windows == ((0, 61),) * 4  # every branch sees the full window (Table 2)
    assert [b.conv.in_channels for b in hsfe.branches] == [61] * 4
    assert [b.conv.out_channels for b in hsfe.branches] == [1, 2, 4, 9]  # allocation unchanged
    assert [m.numel() for m in hsfe.masks] == [61] * 4
    video, _, _ = model(spikes_for(cfg, 2), tok.encode(CAPTIONS[:2], 16))
    assert video.shape == (2, 64) and torch.isfinite(video).all()


@pytest.mark.parametrize("components", ["mtf", "mtf_sa", "full"])
def test_components_ablation(tiny_setup, components):
    cfg, tok = tiny_setup
    model = SPKLIP(dataclasses.replace(cfg, components=components))
    assert (model.hsfe.sa is None) == (components == "mtf")
    assert (model.temporal is None) == (components != "full")
    pool = AttentionPool2d if components == "full" else AvgPoolHead
    assert isinstance(model.backbone.pool, pool)
    video, text, _ = model(spikes_for(cfg, 2), tok.encode(CAPTIONS[:2], 16))
    assert video.shape == text.shape == (2, 64) and torch.isfinite(video).all()
    counts = parameter_counts(model)
    if components != "full":
        assert counts["temporal"] == 0


@pytest.mark.parametrize("num_blocks", [3, 5, 7])
def test_number_of_sub_blocks(tiny_setup, num_blocks):
    cfg, _ = tiny_setup
    cfg = dataclasses.replace(cfg, num_blocks=num_blocks)
    model = SPKLIP(cfg)
    assert model.temporal.positional_embedding.shape == (num_blocks, 64)
    assert model.encode_video(spikes_for(cfg, 1)).shape == (1, 64)


def test_attention_pool_grid_matches_trunk_for_odd_sizes(tiny_setup):
    cfg, _ = tiny_setup
    cfg = dataclasses.replace(cfg, height=33, width=95, num_blocks=1)  # grid (1, 3)
    model = SPKLIP(cfg).eval()
    assert model.backbone.pool.positional_embedding.shape == (1 * 3 + 1, 512)
    with torch.no_grad():
        assert model.encode_video(spikes_for(cfg, 1)).shape == (1, 64)


def test_tiny_parameter_counts(tiny_setup):
    cfg, _ = tiny_setup
    counts = parameter_counts(SPKLIP(cfg))
    # HSFE: convs 9 (61*1 + 31*2 + 15*4 + 7*9) = 2214, BN 2*16 = 32, masks 61+31+15+7 = 114,
    # SA 16*8*9 + 8 = 1160 and 8*4 + 4 = 36 -> 3556
    assert counts["hsfe"] == 3556
    assert counts["total"] == sum(v for k, v in counts.items() if k != "total")
    assert counts["total"] < 2_000_000


def test_paper_parameter_count():
    model = SPKLIP(paper())
    counts = parameter_counts(model)
    # HSFE: convs 9 (61*4 + 31*8 + 15*17 + 7*35) = 8928, BN 128, masks 114, SA 64*16*9 + 16 = 9232
    # and 16*4 + 4 = 68 -> 18470
    assert counts["hsfe"] == 18470
    pool = model.backbone.pool
    assert pool.positional_embedding.shape == (7 * 10 + 1, 2048)
    # attention pool: pos 71*2048, q/k/v 3 (2048^2 + 2048), c_proj 2048*512 + 512
    assert sum(p.numel() for p in pool.parameters()) == 71 * 2048 + 3 * (2048**2 + 2048) + (
        2048 * 512 + 512
    )
    assert model.backbone.layer4[-1].conv3.out_channels == 2048
    assert counts["total"] == 57_504_551  # measured; printed in the report


@pytest.mark.slow
def test_paper_forward_batch_1():
    cfg = paper()
    model = SPKLIP(cfg).eval()
    with torch.no_grad():
        video = model.encode_video(spikes_for(cfg, 1))
    assert video.shape == (1, 512) and torch.isfinite(video).all()


# ---------------------------------------------------------------- STCL loss (Eq. 6)


def test_stcl_loss_matches_hand_computation_2x2():
    v = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    t = torch.tensor([[2.0, 0.0], [1.0, 1.0]])  # cosines: v0.t = (1, s), v1.t = (0, s)
    s = 1 / math.sqrt(2)
    # video -> text rows: [1, s] target 0, [0, s] target 1
    v2t = -(math.log(math.e / (math.e + math.exp(s))) + math.log(math.exp(s) / (1 + math.exp(s))))
    # text -> video rows (columns above): [1, 0] target 0, [s, s] target 1
    t2v = -(math.log(math.e / (math.e + 1)) + math.log(0.5))
    expected = 0.5 * (v2t / 2 + t2v / 2)  # mean over B = 2, mean of the two directions
    assert math.isclose(stcl_loss(v, t, 1.0).item(), expected, rel_tol=1e-6)
    # the logit scale multiplies the cosines: scale 2 == cosines doubled
    v2t2 = -(math.log(math.e**2 / (math.e**2 + math.exp(2 * s))))
    v2t2 -= math.log(math.exp(2 * s) / (1 + math.exp(2 * s)))
    t2v2 = -(math.log(math.e**2 / (math.e**2 + 1)) + math.log(0.5))
    expected2 = 0.5 * (v2t2 + t2v2) / 2
    assert math.isclose(stcl_loss(v, t, torch.tensor(2.0)).item(), expected2, rel_tol=1e-6)


def test_stcl_loss_chance_and_aligned():
    g = torch.Generator().manual_seed(0)
    b, d = 64, 256
    v = torch.randn(b, d, generator=g)
    t = torch.randn(b, d, generator=g)
    # random directions: cosines ~ N(0, 1/256), so with 1/τ = 1 the loss is log B to ~1e-3
    assert abs(stcl_loss(v, t, 1.0).item() - math.log(b)) < 0.01
    aligned = stcl_loss(v, v + 0.1 * t, 1 / 0.07).item()
    assert aligned < 0.05 * math.log(b)


def test_stcl_loss_with_labels_treats_same_label_pairs_as_positives():
    g = torch.Generator().manual_seed(0)
    v, t = torch.randn(3, 8, generator=g), torch.randn(3, 8, generator=g)
    # distinct labels: exactly the plain loss
    distinct = stcl_loss(v, t, 5.0, labels=torch.tensor([0, 1, 2]))
    torch.testing.assert_close(distinct, stcl_loss(v, t, 5.0))
    # labels (0, 0, 1): targets rows (1/2, 1/2, 0), (1/2, 1/2, 0), (0, 0, 1) in both directions
    logits = (
        5.0 * torch.nn.functional.normalize(v, dim=1) @ torch.nn.functional.normalize(t, dim=1).T
    )
    target = torch.tensor([[0.5, 0.5, 0.0], [0.5, 0.5, 0.0], [0.0, 0.0, 1.0]])
    by_hand = 0.5 * (
        -(target * logits.log_softmax(1)).sum(1).mean()
        - (target * logits.T.log_softmax(1)).sum(1).mean()
    )
    torch.testing.assert_close(stcl_loss(v, t, 5.0, labels=torch.tensor([0, 0, 1])), by_hand)
    with pytest.raises(ValueError, match="labels"):
        stcl_loss(v, t, 5.0, labels=torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="both be"):
        stcl_loss(v, t[:2], 5.0)


def test_zero_shot_logits():
    classes = torch.tensor([[1.0, 0.0], [0.0, 3.0]])
    video = torch.tensor([[0.1, 2.0], [5.0, 0.0]])
    logits = zero_shot_logits(video, classes, 10.0)
    assert logits.shape == (2, 2)
    assert logits.argmax(1).tolist() == [1, 0]
    torch.testing.assert_close(logits[1], torch.tensor([10.0, 0.0]))  # cosines (1, 0) x 10
