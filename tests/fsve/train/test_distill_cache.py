"""Teacher targets computed once per clip (the distill default; ``--live-teacher`` turns it off)."""

from __future__ import annotations

import pytest
import torch
from conftest import MICRO, MICRO_FSVE

from fsve.data.dataset import SpikeDataset, collate, window_of
from fsve.data.synth import DEFAULT_PROMPT_TEMPLATE
from fsve.models.config import teacher_config, with_vocab_size
from fsve.models.teacher import SPKLIP
from fsve.models.text import WordTokenizer
from fsve.train.distill import build_student, student_config, teacher_targets
from fsve.train.losses import DistillLoss, DistillWeights, teacher_block_embeddings


@pytest.fixture(scope="module")
def setup(tiny_data):
    torch.manual_seed(0)
    train = SpikeDataset(tiny_data, "train", window=window_of(teacher_config(MICRO)))
    tokenizer = WordTokenizer.from_texts(train.captions + train.class_names)
    teacher = SPKLIP(with_vocab_size(teacher_config(MICRO), len(tokenizer))).eval()
    teacher.requires_grad_(False)
    student = build_student(student_config(MICRO_FSVE, teacher.cfg), teacher)
    length = teacher.cfg.text.context_length
    prompts = tokenizer.encode(
        [DEFAULT_PROMPT_TEMPLATE.format(c) for c in train.class_names], length
    )
    return train, tokenizer, teacher, student, prompts


def test_targets_are_the_teachers_outputs_per_clip_by_index(setup):
    train, _, teacher, _, _ = setup
    targets = teacher_targets(teacher, train, batch_size=5, device=torch.device("cpu"))
    assert targets.shape == (len(train), teacher.cfg.num_blocks, teacher.cfg.embed_dim)
    for i in (0, 7, len(train) - 1):  # one clip at a time: same as in the batched pass
        spikes = train[i]["spikes"].unsqueeze(0).float()
        torch.testing.assert_close(targets[i], teacher_block_embeddings(teacher, spikes)[0])


def test_cached_loss_equals_the_live_loss_and_skips_the_teacher(setup, monkeypatch):
    train, tokenizer, teacher, student, prompts = setup
    w = DistillWeights(steps=1.0)  # every term, L_step included, reads the targets
    targets = teacher_targets(teacher, train, batch_size=8, device=torch.device("cpu"))
    batch = collate([train[i] for i in (5, 2, 9, 0)])  # out of order: lookup is by index
    batch["spikes"] = batch["spikes"].float()
    student.train()
    torch.manual_seed(1)
    live = DistillLoss(teacher, tokenizer, prompts, w)(student, batch)
    monkeypatch.setattr(teacher, "forward_features", lambda *a: pytest.fail("teacher ran"))
    torch.manual_seed(1)
    cached = DistillLoss(teacher, tokenizer, prompts, w, targets)(student, batch)
    torch.testing.assert_close(cached, live)


def test_targets_must_be_per_clip_blocks(setup):
    _, tokenizer, teacher, _, prompts = setup
    with pytest.raises(ValueError, match=r"\[N, K, D\]"):
        DistillLoss(teacher, tokenizer, prompts, DistillWeights(), torch.zeros(3, 4))
