"""Issue 16, cases 1, 6, 9 and 11 (empty splits): training runs never lose or mix data.

Every refusal is one line with exit 2 and leaves every byte of the run folder as it was.
"""

from __future__ import annotations

import hashlib
import json
import shutil

import pandas as pd
import pytest
import torch

from fsve.checkpoint import load_checkpoint
from fsve.train.__main__ import main
from fsve.train.losses import StclPromptLoss
from fsve.train.runfolder import RUN_FILES, check_config, earlier_run_files


def teacher_args(data, config, out, *extra: str) -> list[str]:
    return ["teacher", "--data", str(data), "--config", str(config), "--out", str(out),
            "--batch-size", "8", "--quiet", *extra]  # fmt: skip


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    return err


def snapshot(folder) -> dict[str, str]:
    """SHA-256 of every file under ``folder`` (hidden ones too), by relative path."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture()
def data_copy(tiny_data, tmp_path):
    """A private copy of the tiny dataset (the tests change it)."""
    return shutil.copytree(tiny_data, tmp_path / "data")


@pytest.fixture()
def one_epoch(data_copy, micro_config, tmp_path):
    """A finished one-epoch teacher run on ``data_copy``: its folder."""
    out = tmp_path / "run"
    assert main(teacher_args(data_copy, micro_config, out, "--epochs", "1")) == 0
    return out


def test_resume_refuses_other_data_recipe_seed_and_config(
    one_epoch, data_copy, tiny_data, micro, micro_config, tmp_path, capsys
):
    capsys.readouterr()
    before = snapshot(one_epoch)
    base = ["teacher", "--out", str(one_epoch), "--quiet", "--resume"]
    run = [*base, "--data", str(data_copy)]
    other = tmp_path / "other.json"
    other.write_text(json.dumps({**micro, "temporal_layers": 2}))
    cases = [
        ([*base, "--data", str(tiny_data)], f"--data differs from the run's (stored {data_copy}"),
        ([*run, "--seed", "1"], "--seed differs from the run's (stored 0, given 1)"),
        ([*run, "--lr", "0.5"], "--lr differs from the run's (stored 0.001, given 0.5)"),
        ([*run, "--epochs", "3"], "--epochs differs from the run's (stored 1, given 3)"),
        ([*run, "--batch-size", "4"], "--batch-size differs from the run's (stored 8, given 4)"),
        ([*run, "--recipe", "paper"], "--recipe differs from the run's (stored default, given"),
        ([*run, "--shift", "3"], "--shift differs from the run's (stored 16, given 3)"),
        ([*run, "--config", str(other)], "--config (temporal_layers) differs from the run's"),
        ([*run, "--overwrite"], "--overwrite starts a new run and --resume continues one"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        assert message in one_line_error(capsys), argv
    # same folder, other content: one flipped byte of one spike file
    dat = sorted((data_copy / "train").glob("*.dat"))[0]
    raw = bytearray(dat.read_bytes())
    raw[0] ^= 0xFF
    dat.write_bytes(bytes(raw))
    assert main(run) == 2
    err = one_line_error(capsys)
    assert f"resume: the content of --data {data_copy} differs from the run's" in err
    assert "the folder changed since the run started" in err
    assert snapshot(one_epoch) == before  # no byte of the run changed
    raw[0] ^= 0xFF
    dat.write_bytes(bytes(raw))
    # the run's own config and data are accepted: a finished run resumes to a no-op
    assert main([*run, "--config", str(micro_config), "--seed", "0"]) == 0
    stored = load_checkpoint(one_epoch / "last.pt")["training"]["run"]
    assert stored["data"] == str(data_copy.resolve()) and len(stored["data_sha256"]) == 64


def test_check_config_names_the_differing_keys():
    stored = {"width": 8, "text": {"vocab_size": 40, "heads": 2}, "layers": [1, 1]}
    check_config({**stored, "text": {"vocab_size": 64, "heads": 2}}, stored, ("text.vocab_size",))
    check_config({**stored, "layers": (1, 1)}, stored)  # tuples as lists
    with pytest.raises(ValueError) as err:
        check_config({**stored, "width": 16, "layers": [2, 2]}, stored)
    assert str(err.value) == (
        "resume: --config (layers, width) differs from the run's"
        " (stored layers=[1, 1], width=8, given layers=[2, 2], width=16)"
    )


def test_distill_resume_refuses_another_teacher(
    tiny_data, micro_config, micro_fsve_config, tmp_path, capsys
):
    teacher = tmp_path / "teacher"
    assert main(teacher_args(tiny_data, micro_config, teacher, "--epochs", "1")) == 0
    out = tmp_path / "fsve"
    common = ["--data", str(tiny_data), "--out", str(out), "--batch-size", "8", "--quiet"]
    args = ["distill", "--teacher", str(teacher / "best.pt"), *common]
    assert main([*args, "--config", str(micro_fsve_config), "--epochs", "1"]) == 0
    capsys.readouterr()
    before = snapshot(out)
    assert main([*args, "--resume", "--w-kl", "0.5"]) == 2
    assert "resume: --w-kl differs from the run's (stored 1.0, given 0.5)" in one_line_error(capsys)
    assert main([*args, "--resume", "--live-teacher"]) == 2
    assert "resume: --live-teacher differs" in one_line_error(capsys)
    assert main([*args, "--resume", "--teacher", str(teacher / "last.pt")]) == 2
    assert "resume: --teacher differs from the run's" in one_line_error(capsys)
    # a retrained teacher at the same path
    shutil.copyfile(teacher / "last.pt", teacher / "best.pt")
    assert main([*args, "--resume"]) == 2
    err = one_line_error(capsys)
    assert f"resume: the content of --teacher {teacher / 'best.pt'} differs" in err
    assert snapshot(out) == before


@pytest.mark.parametrize("name", RUN_FILES)
def test_any_earlier_file_stops_a_new_run(name, tiny_data, micro_config, tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / name).write_bytes(b"an earlier run's " + name.encode())
    (out / "notes.txt").write_text("not ours")
    before = snapshot(out)
    assert main(teacher_args(tiny_data, micro_config, out, "--epochs", "1")) == 2
    err = one_line_error(capsys)
    assert f"{out} holds an earlier run ({name}):" in err and "--overwrite" in err
    assert ("--resume" in err) == (name == "last.pt")
    assert snapshot(out) == before


def test_overwrite_replaces_the_old_set_as_a_whole(
    tiny_data, micro, micro_config, tmp_path, capsys, monkeypatch
):
    out = tmp_path / "run"
    out.mkdir()
    for name in RUN_FILES:
        (out / name).write_bytes(b"old " + name.encode())
    (out / "notes.txt").write_text("not ours")
    before = snapshot(out)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**micro, "widht": 3}))
    # a refused --overwrite run (bad config) removes nothing
    assert main(teacher_args(tiny_data, bad, out, "--overwrite")) == 2
    assert "unknown config key" in one_line_error(capsys)
    assert snapshot(out) == before

    # killed in its first step: the old set is already gone, nothing of it mixes in later
    def killed(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(StclPromptLoss, "__call__", killed)
    with pytest.raises(KeyboardInterrupt):
        main(teacher_args(tiny_data, micro_config, out, "--epochs", "1", "--overwrite"))
    assert earlier_run_files(out) == [] and (out / "notes.txt").read_text() == "not ours"
    monkeypatch.undo()
    for name in RUN_FILES:
        (out / name).write_bytes(b"old " + name.encode())
    assert main(teacher_args(tiny_data, micro_config, out, "--epochs", "1", "--overwrite")) == 0
    for name in RUN_FILES:
        assert not (out / name).read_bytes().startswith(b"old "), name
    assert json.loads((out / "test_metrics.json").read_text())["epoch"] == 1
    assert pd.read_csv(out / "metrics.csv")["epoch"].tolist() == [1]


@pytest.mark.parametrize("split", ["test", "val"])
def test_an_empty_split_stops_the_run_before_the_first_step(
    split, data_copy, micro_config, tmp_path, capsys, monkeypatch
):
    table = pd.read_csv(data_copy / "manifest.csv")
    table[table["split"] != split].to_csv(data_copy / "manifest.csv", index=False)
    calls = []
    monkeypatch.setattr(StclPromptLoss, "__call__", lambda *a: calls.append(1))
    out = tmp_path / "run"
    assert main(teacher_args(data_copy, micro_config, out, "--epochs", "1")) == 2
    err = one_line_error(capsys)
    assert f"error: {data_copy}: split {split!r} has no samples; the run needs it" in err
    assert calls == [] and not out.exists()
    args = ["distill", "--no-teacher", "--data", str(data_copy), "--out", str(out), "--quiet"]
    assert main(args) == 2
    assert f"split {split!r} has no samples" in one_line_error(capsys)


def test_lr_10_divergence_stops_with_epoch_and_step(tiny_data, micro_config, tmp_path, capsys):
    """The issue's ``--lr 10``: with one step per epoch the step that breaks the weights is the
    epoch's last, so only the validation sees it (it used to end in "scores contain NaN")."""
    out = tmp_path / "run"
    argv = teacher_args(tiny_data, micro_config, out, "--epochs", "2", "--lr", "10")
    assert main([*argv, "--recipe", "paper", "--batch-size", "24"]) == 2
    err = one_line_error(capsys)
    assert "non-finite output of '" in err and "in validation after epoch 1 step 1" in err
    assert "no checkpoint was written" in err
    assert earlier_run_files(out) == []


def test_non_finite_weight_after_an_update_keeps_the_last_good_files(
    tiny_data, micro_config, tmp_path, capsys, monkeypatch
):
    out = tmp_path / "run"
    step = torch.optim.AdamW.step
    calls = []
    kept = {}

    def poisons_at_step_5(self, *args, **kwargs):  # 3 steps per epoch: epoch 2, step 2
        result = step(self, *args, **kwargs)
        calls.append(1)
        if len(calls) == 4:
            kept.update(snapshot(out))
        if len(calls) == 5:
            with torch.no_grad():
                self.param_groups[0]["params"][0].fill_(float("inf"))
        return result

    monkeypatch.setattr(torch.optim.AdamW, "step", poisons_at_step_5)
    assert main(teacher_args(tiny_data, micro_config, out, "--epochs", "3")) == 2
    err = one_line_error(capsys)
    assert "non-finite weight '" in err and "after the update of epoch 2 step 2" in err
    assert "last.pt (epoch 1) left untouched, and best.pt" in err
    assert snapshot(out) == kept and {"last.pt", "best.pt"} <= set(kept)
    assert load_checkpoint(out / "last.pt")["training"]["epoch"] == 1


def test_non_finite_validation_output_keeps_the_last_good_files(
    tiny_data, micro_config, tmp_path, capsys, monkeypatch
):
    import fsve.eval.metrics as metrics

    out = tmp_path / "run"
    evaluate = metrics.evaluate_model
    kept = {}

    def nan_weights_in_epoch_2(model, *args, **kwargs):
        if kept == {} and (out / "last.pt").exists():
            kept.update(snapshot(out))
            with torch.no_grad():
                for p in model.parameters():
                    p.fill_(float("nan"))
        return evaluate(model, *args, **kwargs)

    monkeypatch.setattr(metrics, "evaluate_model", nan_weights_in_epoch_2)
    assert main(teacher_args(tiny_data, micro_config, out, "--epochs", "3")) == 2
    err = one_line_error(capsys)
    assert "non-finite output of '" in err and "in validation after epoch 2 step 3" in err
    assert "last.pt (epoch 1) left untouched" in err
    assert snapshot(out) == kept


def test_first_non_finite_names_the_tensor_and_ignores_overflowing_norms():
    from fsve.train.loop import _first_non_finite

    big = torch.full((4,), 1e20)  # finite, but its float32 norm overflows to inf
    assert torch.isinf(torch.linalg.vector_norm(big))
    assert _first_non_finite([("big", big), ("int", torch.arange(3))]) is None
    inf = torch.tensor([1.0, float("inf")])
    nan = torch.tensor([float("nan")], dtype=torch.bfloat16)
    assert _first_non_finite([("ok", torch.ones(2)), ("inf", inf), ("nan", nan)]) == "inf"
    assert _first_non_finite([("ok", torch.ones(2)), ("nan", nan)]) == "nan"


def test_a_folder_in_place_of_a_run_file_is_refused(tiny_data, micro_config, tmp_path, capsys):
    out = tmp_path / "run"
    (out / "best.pt").mkdir(parents=True)
    argv = teacher_args(tiny_data, micro_config, out, "--epochs", "1", "--overwrite")
    assert main(argv) == 2
    assert f"{out / 'best.pt'} is a folder where the run writes a file" in one_line_error(capsys)
    assert (out / "best.pt").is_dir()
