"""``python -m fsve.train teacher`` and ``python -m fsve.eval`` end to end on a tiny dataset."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
import torch

from fsve.checkpoint import load_checkpoint, load_model
from fsve.eval import main as eval_main
from fsve.train.__main__ import main
from fsve.train.losses import StclPromptLoss


def teacher_args(data, config, out, *extra: str) -> list[str]:
    return [
        "teacher",
        "--data",
        str(data),
        "--config",
        str(config),
        "--out",
        str(out),
        "--batch-size",
        "8",
        "--quiet",
        *extra,
    ]


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    return err


def test_teacher_then_eval_writes_all_files(tiny_data, micro_config, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(teacher_args(tiny_data, micro_config, out, "--epochs", "2")) == 0
    for name in ("last.pt", "best.pt", "metrics.csv", "curves.png", "test_metrics.json"):
        assert (out / name).stat().st_size > 0, name
    rows = pd.read_csv(out / "metrics.csv")
    assert rows["epoch"].tolist() == [1, 2]
    for column in ("train_loss", "val_top1_pct", "val_top5_pct", "lr", "seconds"):
        assert rows[column].notna().all(), column
    _, ckpt = load_model(out / "best.pt", kind="teacher")
    assert ckpt["config"]["text"]["vocab_size"] == len(ckpt["tokenizer"]["vocab"])
    assert len(ckpt["classes"]) == 12 and "training" not in ckpt
    last = load_checkpoint(out / "last.pt")
    assert last["training"]["epoch"] == 2 and len(last["training"]["history"]) == 2

    test = json.loads((out / "test_metrics.json").read_text())
    assert (
        eval_main(
            [str(out / "best.pt"), "--data", str(tiny_data), "--out", str(tmp_path / "e.json")]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "top1" in printed and "R@10" in printed
    row = json.loads((tmp_path / "e.json").read_text())
    assert row["kind"] == "teacher" and row["samples"] == 12 and row["split"] == "test"
    for key in ("top1_pct", "top5_pct", "r1_pct", "r5_pct", "r10_pct"):
        assert row[key] == pytest.approx(test[key]), key
    assert (
        eval_main(
            [
                str(out / "last.pt"),
                "--data",
                str(tiny_data),
                "--split",
                "val",
                "--out",
                str(tmp_path / "e.csv"),
            ]
        )
        == 0
    )
    assert pd.read_csv(tmp_path / "e.csv")["split"].tolist() == ["val"]


def test_cli_resume_after_a_kill_matches_an_uninterrupted_run(
    tiny_data, micro_config, tmp_path, monkeypatch
):
    assert main(teacher_args(tiny_data, micro_config, tmp_path / "a", "--epochs", "2")) == 0
    original = StclPromptLoss.__call__
    calls = {"n": 0}

    def dies_in_epoch_two(self, model, batch):
        calls["n"] += 1
        if calls["n"] == 5:  # 3 steps per epoch: epoch 2, step 2
            raise KeyboardInterrupt
        return original(self, model, batch)

    monkeypatch.setattr(StclPromptLoss, "__call__", dies_in_epoch_two)
    with pytest.raises(KeyboardInterrupt):
        main(teacher_args(tiny_data, micro_config, tmp_path / "b", "--epochs", "2"))
    monkeypatch.setattr(StclPromptLoss, "__call__", original)
    resume = ["teacher", "--data", str(tiny_data), "--out", str(tmp_path / "b"), "--quiet"]
    assert main([*resume, "--resume"]) == 0
    a = load_checkpoint(tmp_path / "a" / "last.pt")["state_dict"]
    b = load_checkpoint(tmp_path / "b" / "last.pt")["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    # a finished run resumes to a no-op
    assert main([*resume, "--resume"]) == 0


def test_resume_and_overwrite_guards(tiny_data, micro_config, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["teacher", "--out", str(out), "--data", str(tiny_data), "--resume"]) == 2
    assert "nothing to resume" in one_line_error(capsys)
    assert main(teacher_args(tiny_data, micro_config, out, "--epochs", "1")) == 0
    capsys.readouterr()
    assert main(teacher_args(tiny_data, micro_config, out, "--epochs", "1")) == 2
    assert "pass --resume" in one_line_error(capsys)
    base = ["teacher", "--data", str(tiny_data), "--out", str(out), "--quiet", "--resume"]
    assert main([*base, "--lr", "0.5"]) == 2
    assert "resume: --lr differs from the run's (stored 0.001, given 0.5)" in one_line_error(capsys)
    assert main([*base, "--config", "tiny"]) == 2
    assert "resume: --config (" in one_line_error(capsys)


def test_bad_config_and_data_are_one_line_errors(tiny_data, micro, tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**micro, "widht": 3}))
    assert main(teacher_args(tiny_data, bad, tmp_path / "r")) == 2
    assert "unknown config key 'widht'" in one_line_error(capsys)
    assert main(teacher_args(tmp_path / "nowhere", "tiny", tmp_path / "r")) == 2
    assert "python -m fsve.data synth" in one_line_error(capsys)
    assert main(teacher_args(tiny_data, "tiny", tmp_path / "r")) == 2  # 64x64 model, 32x32 data
    assert "expects 64x64" in one_line_error(capsys)
    assert eval_main([str(tmp_path / "none.pt"), "--data", str(tiny_data)]) == 2
    assert "no such checkpoint" in one_line_error(capsys)


def test_nan_loss_exits_2_with_one_line(tiny_data, micro_config, tmp_path, monkeypatch, capsys):
    def nan_loss(self, model, batch):
        video, _, _ = model(batch["spikes"], self.prompt_tokens[0])
        return video.sum() * math.nan

    monkeypatch.setattr(StclPromptLoss, "__call__", nan_loss)
    assert main(teacher_args(tiny_data, micro_config, tmp_path / "r", "--epochs", "1")) == 2
    err = one_line_error(capsys)
    assert "epoch 1 step 1" in err and "no checkpoint was written" in err
    assert not (tmp_path / "r" / "last.pt").exists()


def test_distill_and_no_teacher_runs(tiny_data, micro_config, micro_fsve_config, tmp_path):
    teacher = tmp_path / "teacher"
    assert main(teacher_args(tiny_data, micro_config, teacher, "--epochs", "1")) == 0
    common = ["--data", str(tiny_data), "--config", str(micro_fsve_config), "--epochs", "1"]
    common += ["--batch-size", "8", "--quiet"]
    out = tmp_path / "fsve"
    args = ["distill", "--teacher", str(teacher / "best.pt"), "--out", str(out), *common]
    assert main([*args, "--w-kl", "0.5", "--temperature", "3"]) == 0
    student, ckpt = load_model(out / "best.pt", kind="fsve")
    t_model, t_ckpt = load_model(teacher / "best.pt", kind="teacher")
    assert ckpt["tokenizer"] == t_ckpt["tokenizer"]
    for key, value in t_model.text.state_dict().items():  # copied and frozen
        assert torch.equal(student.text.state_dict()[key], value), key
    run = load_checkpoint(out / "last.pt")["training"]["run"]
    assert run["weights"] == {
        "contrastive": 1.0,
        "kl": 0.5,
        "embed": 1.0,
        "temperature": 3.0,
        "steps": 0.0,
    }
    assert (out / "test_metrics.json").exists() and (out / "curves.png").exists()
    alone = tmp_path / "alone"
    assert main(["distill", "--no-teacher", "--out", str(alone), *common]) == 0
    _, ckpt = load_model(alone / "best.pt", kind="fsve")
    assert ckpt["config"]["text"]["vocab_size"] == len(ckpt["tokenizer"]["vocab"])
