"""Checkpoint contract: atomic save, weights_only load, rebuild from config, clear errors."""

import os
import pickle

import pytest
import torch

from fsve.checkpoint import CheckpointError, load_checkpoint, load_model, save_checkpoint
from fsve.models.config import tiny
from fsve.models.teacher import SPKLIP

MARKER = "fsve_pickle_payload_ran"


class Payload:
    """Unpickling this object would run code (exec): the load must refuse before that."""

    def __reduce__(self):
        return (exec, (f"import os; os.environ[{MARKER!r}] = '1'",))


def saved_teacher(path):
    torch.manual_seed(0)
    cfg = tiny()
    model = SPKLIP(cfg).eval()
    save_checkpoint(
        path,
        "teacher",
        cfg,
        model.state_dict(),
        tokenizer={"vocab": ["a"]},
        classes=["x", "y"],
        metrics={"top1": 0.5},
    )
    return model, cfg


def test_round_trip_gives_identical_outputs(tmp_path):
    model, cfg = saved_teacher(tmp_path / "t.pt")
    loaded, ckpt = load_model(tmp_path / "t.pt", kind="teacher")
    assert ckpt["classes"] == ["x", "y"] and ckpt["metrics"] == {"top1": 0.5}
    assert not loaded.training
    spikes = torch.rand(2, cfg.num_blocks, cfg.block_frames, cfg.height, cfg.width) < 0.1
    tokens = torch.randint(4, cfg.text.vocab_size, (2, cfg.text.context_length))
    with torch.no_grad():
        for a, b in zip(model(spikes, tokens), loaded(spikes, tokens), strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
    # the file holds only plain values: a bare weights_only load works
    assert torch.load(tmp_path / "t.pt", weights_only=True)["format"] == "fsve-checkpoint"


def test_injected_pickle_is_refused_without_running(tmp_path):
    saved_teacher(tmp_path / "t.pt")
    ckpt = torch.load(tmp_path / "t.pt", weights_only=True)
    ckpt["metrics"]["evil"] = Payload()
    torch.save(ckpt, tmp_path / "evil.pt")
    os.environ.pop(MARKER, None)
    with pytest.raises(CheckpointError, match=r"evil\.pt: refused to load"):
        load_checkpoint(tmp_path / "evil.pt")
    assert MARKER not in os.environ
    # a raw pickle, not a torch zip file, is refused too
    (tmp_path / "raw.pt").write_bytes(pickle.dumps(Payload()))
    with pytest.raises(CheckpointError, match=r"raw\.pt"):
        load_checkpoint(tmp_path / "raw.pt")
    assert MARKER not in os.environ


def test_truncated_wrong_format_version_kind(tmp_path):
    saved_teacher(tmp_path / "t.pt")
    data = (tmp_path / "t.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"cut\.pt: not a readable checkpoint"):
        load_checkpoint(tmp_path / "cut.pt")
    with pytest.raises(FileNotFoundError, match=r"none\.pt"):
        load_checkpoint(tmp_path / "none.pt")
    with pytest.raises(CheckpointError, match="holds a 'teacher' model, expected 'fsve'"):
        load_checkpoint(tmp_path / "t.pt", kind="fsve")
    ckpt = torch.load(tmp_path / "t.pt", weights_only=True)
    torch.save({**ckpt, "version": 99}, tmp_path / "v.pt")
    with pytest.raises(CheckpointError, match="version 99 is not supported"):
        load_checkpoint(tmp_path / "v.pt")
    torch.save({"state_dict": {}}, tmp_path / "f.pt")
    with pytest.raises(CheckpointError, match="not an fsve checkpoint"):
        load_checkpoint(tmp_path / "f.pt")
    torch.save({**ckpt, "config": {**ckpt["config"], "wings": 2}}, tmp_path / "k.pt")
    with pytest.raises(CheckpointError, match="bad model config.*wings"):
        load_model(tmp_path / "k.pt")


def test_save_is_atomic(tmp_path, monkeypatch):
    model, cfg = saved_teacher(tmp_path / "t.pt")
    before = (tmp_path / "t.pt").read_bytes()

    def failing_save(obj, f):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(tmp_path / "t.pt", "teacher", cfg, model.state_dict())
    assert (tmp_path / "t.pt").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.pt"]
