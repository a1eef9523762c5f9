"""The generic epoch loop: a step lowers the loss, schedule, resume equivalence, NaN guard."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch

from fsve.checkpoint import load_checkpoint
from fsve.data.dataset import SpikeDataset
from fsve.models.config import teacher_config, with_vocab_size
from fsve.models.teacher import SPKLIP
from fsve.models.text import WordTokenizer
from fsve.train.loop import (
    LoopConfig,
    NonFiniteLossError,
    fit,
    load_resume,
    lr_factor,
    make_optimizer,
)
from fsve.train.losses import PROMPT_TEMPLATES, StclPromptLoss, prompt_bank
from fsve.train.seeding import epoch_seed, get_rng_state, seed_everything, set_rng_state


def setup(data, seed: int = 0):
    """Micro teacher, its tokenizer, loss and the train set of the tiny dataset."""
    from conftest import MICRO

    train = SpikeDataset(data, "train")
    prompts = [t.format(c) for t in PROMPT_TEMPLATES for c in train.class_names]
    tok = WordTokenizer.from_texts([*train.captions, *prompts])
    cfg = with_vocab_size(teacher_config(MICRO), len(tok))
    seed_everything(seed)
    model = SPKLIP(cfg)
    bank = prompt_bank(tok, train.class_names, PROMPT_TEMPLATES, cfg.text.context_length)
    return model, cfg, tok, StclPromptLoss(tok, bank), train


def meta(cfg, tok, train):
    return {"kind": "teacher", "config": cfg, "tokenizer": tok.to_dict(), "classes": ["x"]}


def test_one_step_reduces_loss_on_a_fixed_batch(tiny_data):
    model, _, _, loss_fn, train = setup(tiny_data)
    from fsve.data.dataset import collate

    batch = collate([train[i] for i in range(12)])
    opt = make_optimizer(model.parameters(), LoopConfig(epochs=1, batch_size=12, lr=3e-3))
    torch.manual_seed(1)
    before = loss_fn(model, batch)
    opt.zero_grad()
    before.backward()
    opt.step()
    torch.manual_seed(1)  # the same prompt template
    after = loss_fn(model, batch)
    assert float(after.detach()) < float(before.detach())


def test_lr_factor_warmup_then_cosine():
    cfg = LoopConfig(epochs=1, batch_size=1, lr=1.0, min_lr_ratio=0.1)
    # 2 warmup steps of 10: 1/2, 2/2; then cosine over steps 2..9 (span 7)
    assert [lr_factor(s, 10, 2, cfg) for s in (0, 1, 2)] == [0.5, 1.0, 1.0]
    assert lr_factor(9, 10, 2, cfg) == pytest.approx(0.1)
    assert lr_factor(2 + 3.5, 10, 2, cfg) == pytest.approx(0.1 + 0.9 * 0.5)
    const = LoopConfig(epochs=1, batch_size=1, lr=1.0, schedule="constant")
    assert lr_factor(9, 10, 0, const) == 1.0


def test_loop_config_rejects_bad_values():
    with pytest.raises(ValueError, match="epochs"):
        LoopConfig(epochs=0, batch_size=1, lr=1.0)
    with pytest.raises(ValueError, match="schedule"):
        LoopConfig(epochs=1, batch_size=1, lr=1.0, schedule="step")


def test_rng_state_round_trip_is_weights_only_safe(tmp_path):
    import random

    import numpy as np

    seed_everything(3)
    state = get_rng_state()
    torch.save(state, tmp_path / "s.pt")
    a = (torch.rand(2).tolist(), np.random.rand(), random.random())  # noqa: NPY002
    set_rng_state(torch.load(tmp_path / "s.pt", weights_only=True))
    assert (torch.rand(2).tolist(), np.random.rand(), random.random()) == a  # noqa: NPY002
    assert epoch_seed(0, 1) != epoch_seed(0, 2) and epoch_seed(0, 1) == epoch_seed(0, 1)


class Killed(Exception):
    """Stands in for SIGKILL in the middle of an epoch."""


def counting(loss_fn, on_call: int, action):
    calls = {"n": 0}

    def wrapped(model, batch):
        calls["n"] += 1
        if calls["n"] == on_call:
            return action(model, batch)
        return loss_fn(model, batch)

    return wrapped


def test_resume_reaches_the_same_final_state(tiny_data, tmp_path):
    cfg_loop = LoopConfig(epochs=2, batch_size=8, lr=3e-3, warmup_epochs=0.5, seed=5)
    # 24 train clips / batch 8 = 3 steps per epoch
    model, cfg, tok, loss_fn, train = setup(tiny_data)
    fit(model, loss_fn, train, cfg_loop, tmp_path / "a", meta(cfg, tok, train), progress=False)

    model, cfg, tok, loss_fn, train = setup(tiny_data)

    def kill(model, batch):
        raise Killed

    with pytest.raises(Killed):  # dies in epoch 2, step 2 (call 5)
        fit(
            model,
            counting(loss_fn, 5, kill),
            train,
            cfg_loop,
            tmp_path / "b",
            meta(cfg, tok, train),
            progress=False,
        )
    assert load_checkpoint(tmp_path / "b" / "last.pt")["training"]["epoch"] == 1
    model, cfg, tok, loss_fn, train = setup(tiny_data, seed=99)  # other init: overwritten
    ckpt = load_resume(tmp_path / "b", "teacher")
    fit(
        model,
        loss_fn,
        train,
        cfg_loop,
        tmp_path / "b",
        meta(cfg, tok, train),
        resume=ckpt,
        progress=False,
    )
    a = load_checkpoint(tmp_path / "a" / "last.pt")
    b = load_checkpoint(tmp_path / "b" / "last.pt")
    assert a["training"]["epoch"] == b["training"]["epoch"] == 2
    for key, value in a["state_dict"].items():
        assert torch.equal(value, b["state_dict"][key]), key
    opt_a, opt_b = a["training"]["optimizer"]["state"], b["training"]["optimizer"]["state"]
    for i in opt_a:
        assert torch.equal(opt_a[i]["exp_avg_sq"], opt_b[i]["exp_avg_sq"])
    rows_a = pd.read_csv(tmp_path / "a" / "metrics.csv")
    rows_b = pd.read_csv(tmp_path / "b" / "metrics.csv")
    same = ["epoch", "train_loss", "lr"]
    pd.testing.assert_frame_equal(rows_a[same], rows_b[same])
    assert (tmp_path / "b" / "curves.png").stat().st_size > 0


def test_nan_loss_stops_with_one_line_and_keeps_last_checkpoint(tiny_data, tmp_path):
    cfg_loop = LoopConfig(epochs=3, batch_size=8, lr=1e-3)
    model, cfg, tok, loss_fn, train = setup(tiny_data)
    seen = {}

    def nan(model, batch):  # epoch 2, step 1 = call 4
        seen["last"] = (tmp_path / "last.pt").read_bytes()
        return loss_fn(model, batch) * math.nan

    with pytest.raises(NonFiniteLossError) as err:
        fit(
            model,
            counting(loss_fn, 4, nan),
            train,
            cfg_loop,
            tmp_path,
            meta(cfg, tok, train),
            progress=False,
        )
    message = str(err.value)
    assert "\n" not in message and "epoch 2 step 1" in message and "nan" in message
    assert "last.pt (epoch 1) left untouched" in message
    assert (tmp_path / "last.pt").read_bytes() == seen["last"]
    assert len(pd.read_csv(tmp_path / "metrics.csv")) == 1


def test_random_shift_rolls_each_clip_by_one_offset():
    from fsve.train.augment import RandomShift, random_shift

    x = torch.zeros(3, 2, 4, 8, 8, dtype=torch.bool)  # [B, K, F, H, W]
    x[:, :, :, 4, 4] = True
    torch.manual_seed(0)
    y = random_shift(x, 2)
    torch.manual_seed(0)
    offsets = torch.randint(-2, 3, (3, 2)).tolist()
    for clip, (dy, dx) in zip(y, offsets, strict=True):
        assert clip.sum() == 2 * 4 and clip[:, :, 4 + dy, 4 + dx].all()
    assert torch.equal(random_shift(x, 0), x)
    batch = {"spikes": x, "label": torch.tensor([0, 1, 2])}
    assert RandomShift(1)(batch)["label"] is batch["label"]
    with pytest.raises(ValueError, match="shift"):
        RandomShift(-1)


def test_distill_terms_hand_computed():
    from fsve.train.losses import DistillWeights, distill_terms

    # prompts t0 = (1, 0), t1 = (0, 1); teacher video (1, 0), student video (0, 1).
    # Both scales 2 at T = 2 give logits (1, 0) and (0, 1): p_t = (a, b), p_s = (b, a) with
    # a = e / (e + 1), b = 1 / (e + 1); KL = (a - b) log(a / b) = (e - 1) / (e + 1), times T^2.
    terms = distill_terms(
        torch.tensor([[0.0, 1.0]]),
        torch.tensor([[1.0, 0.0]]),
        torch.tensor([[0.0, 3.0]]),  # one pair: the contrastive CE of a 1x1 matrix is 0
        torch.eye(2),
        2.0,
        2.0,
        None,
        2.0,
    )
    e = math.e
    assert float(terms["con"]) == pytest.approx(0.0, abs=1e-7)
    assert float(terms["kl"]) == pytest.approx(4 * (e - 1) / (e + 1), rel=1e-6)
    assert float(terms["emb"]) == pytest.approx(1.0)
    same = distill_terms(*[torch.tensor([[1.0, 2.0]])] * 3, torch.eye(2), 5.0, 5.0, None, 1.0)
    assert float(same["kl"]) == pytest.approx(0.0, abs=1e-7)
    assert float(same["emb"]) == pytest.approx(0.0, abs=1e-7)
    with pytest.raises(ValueError, match="temperature"):
        DistillWeights(temperature=0.0)


def test_class_anchors_are_orthonormal_and_seeded():
    from fsve.train.losses import class_anchors

    a = class_anchors(12, 64)
    assert a.shape == (12, 64)
    assert torch.allclose(a @ a.T, torch.eye(12), atol=1e-6)
    assert torch.equal(a, class_anchors(12, 64))  # same seed, same anchors (resume)
    assert not torch.equal(a, class_anchors(12, 64, seed=1))
    with pytest.raises(ValueError, match="embed_dim >= 13"):
        class_anchors(13, 12)


def test_detached_video_trains_text_on_text_terms_and_video_on_anchors(tiny_data):
    """detach_video: video-encoder gradients come from the anchor term alone, text-encoder
    gradients from the caption and prompt terms alone."""
    from fsve.data.dataset import collate
    from fsve.train.losses import class_anchors, zero_shot_logits

    model, cfg, tok, _, train = setup(tiny_data)
    bank = prompt_bank(tok, train.class_names, PROMPT_TEMPLATES[:1], cfg.text.context_length)
    batch = collate([train[i] for i in range(8)])
    lit = StclPromptLoss(tok, bank, w_caption=0.5, w_class=1.0, detach_video=True)
    model.zero_grad()
    lit(model, batch).backward()
    got = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    model.zero_grad()  # the anchor term by hand: only the video encoder
    video = model.encode_video(batch["spikes"])
    anchors = class_anchors(len(train.class_names), cfg.embed_dim)
    torch.nn.functional.cross_entropy(video @ anchors.T, batch["label"]).backward()
    for n, p in model.named_parameters():
        if n.startswith(("hsfe.", "backbone.", "temporal.")) and p.grad is not None:
            assert torch.allclose(got[n], p.grad, atol=1e-6), n
    # the text encoder's gradient equals that of the two text terms on a detached video
    model.zero_grad()
    text_only = StclPromptLoss(tok, bank, w_caption=0.5)
    tokens = torch.cat([tok.encode(batch["caption"], cfg.text.context_length), bank[0]])
    v, t, s = model(batch["spikes"], tokens)
    from fsve.train.losses import stcl_loss

    b = len(batch["label"])
    loss = 0.5 * stcl_loss(v.detach(), t[:b], s, batch["label"])
    loss = loss + torch.nn.functional.cross_entropy(
        zero_shot_logits(v.detach(), t[b:], s), batch["label"]
    )
    loss.backward()
    assert text_only.detach_video is False
    name = "text.token_embedding.weight"
    assert torch.allclose(got[name], model.get_parameter(name).grad, atol=1e-6)
    with pytest.raises(ValueError, match="needs w_class > 0"):
        StclPromptLoss(tok, bank, detach_video=True)


def test_step_distillation_term_matches_hand_computation(tiny_data):
    """L_step alone: mean over steps and clips of 1 - cos(student step k, teacher block k)."""
    from conftest import MICRO_FSVE

    from fsve.data.dataset import collate
    from fsve.models.config import fsve_config
    from fsve.train.distill import build_student
    from fsve.train.losses import DistillLoss, DistillWeights, teacher_block_embeddings

    teacher, cfg, tok, _, train = setup(tiny_data)
    teacher.eval()
    student = build_student(fsve_config({**MICRO_FSVE, "text": cfg.text.__dict__}), teacher)
    prompts = tok.encode([f"a video of an object {c}" for c in train.class_names], 16)
    batch = collate([train[i] for i in range(4)])
    w = DistillWeights(contrastive=0.0, kl=0.0, embed=0.0, steps=1.0)
    torch.manual_seed(0)
    got = DistillLoss(teacher, tok, prompts, w)(student, batch)
    with torch.no_grad():
        blocks = teacher_block_embeddings(teacher, batch["spikes"])  # [B, K, D]
        assert torch.allclose(blocks.mean(1), teacher.encode_video(batch["spikes"]), atol=1e-5)
    rates = student.visual.forward_features(batch["spikes"]).mean(dim=2)  # [T, B, C]
    assert rates.shape == (5, 4, student.visual.width)
    per_step = student.visual.proj(rates)  # [T, B, D]
    want = (1 - torch.nn.functional.cosine_similarity(per_step, blocks.transpose(0, 1), -1)).mean()
    assert torch.allclose(got, want, atol=1e-5)
    assert torch.allclose(per_step.mean(0), student.visual(batch["spikes"]), atol=1e-5)
