"""Few-shot adaptation: which layers train, shot sampling, the CLI's files."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from fsve.fewshot import freeze_all_but_last_two, main, pick_shots, trainable_layers
from fsve.models.config import teacher_config
from fsve.models.student import build_fsve
from fsve.models.teacher import SPKLIP
from fsve.train.__main__ import main as train_main


def test_last_two_layers_of_teacher_and_fsve(micro):
    teacher = SPKLIP(teacher_config(micro))
    assert list(trainable_layers(teacher)) == [
        "backbone.pool",
        "temporal.encoder.layers[-1]",
        "temporal.encoder.norm",
    ]
    params = freeze_all_but_last_two(teacher)
    trainable = {n for n, p in teacher.named_parameters() if p.requires_grad}
    assert trainable and all(
        n.startswith(("backbone.pool.", "temporal.encoder.")) for n in trainable
    )
    assert (
        "temporal.positional_embedding" not in trainable and not teacher.logit_scale.requires_grad
    )
    assert sum(p.numel() for p in params) == sum(
        p.numel() for p in teacher.parameters() if p.requires_grad
    )
    ablation = SPKLIP(teacher_config({**micro, "components": "mtf_sa"}))
    assert list(trainable_layers(ablation)) == ["backbone.layer4[-1]", "backbone.pool"]
    fsve = build_fsve(
        {
            "height": 32,
            "width": 32,
            "stem_width": 8,
            "widths": [8, 16],
            "layers": [1, 1],
            "attn_heads": 2,
            "embed_dim": 16,
            "text": micro["text"],
        }
    )
    assert list(trainable_layers(fsve)) == ["visual.blocks[-1]", "visual.proj"]
    with pytest.raises(ValueError, match="SPKLIP and FSVE"):
        trainable_layers(torch.nn.Linear(2, 2))


def test_pick_shots_is_per_class_and_seeded():
    labels = [0, 1, 0, 1, 0, 1, 2, 2]
    picked = pick_shots(labels, 2, seed=0)
    assert sorted(labels[i] for i in picked) == [0, 0, 1, 1, 2, 2]
    assert picked == pick_shots(labels, 2, seed=0) and len(set(picked)) == 6
    with pytest.raises(ValueError, match="fewer than 3 shots"):
        pick_shots(labels, 3, seed=0)


def test_fewshot_cli_writes_csv_and_plot(tiny_data, tiny_real_data, micro_config, tmp_path):
    run = tmp_path / "teacher"
    args = ["teacher", "--data", str(tiny_data), "--config", str(micro_config), "--out", str(run)]
    assert train_main([*args, "--epochs", "1", "--batch-size", "8", "--quiet"]) == 0
    out = tmp_path / "fs"
    argv = [str(run / "best.pt"), "--shots", "1", "2", "--data", str(tiny_real_data)]
    assert main([*argv, "--epochs", "2", "--out", str(out)]) == 0
    rows = pd.read_csv(out / "fewshot.csv")
    assert rows["shots"].tolist() == [0, 1, 2] and rows["train_clips"].tolist() == [0, 12, 24]
    assert rows["top1_pct"].between(0, 100).all()
    assert (out / "fewshot.png").stat().st_size > 0
