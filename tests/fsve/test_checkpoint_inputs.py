"""Checkpoints refused before harm (issue 16, items 3, 4, 12): non-finite or complex weights
are named at load, a config that does not fit its weights is refused before any module is built,
and no refusal suggests turning the ``weights_only`` safety off."""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path

import pytest
import torch

from energy.profile.cli import main as profile_main
from fsve.checkpoint import BUILDERS, CheckpointError, load_checkpoint, load_model
from fsve.eval.__main__ import main as eval_main

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "checkpoints" / "fsve-tiny-distilled-seed0.pt"
STEM = "visual.stem.conv.weight"  # [32 out, 61 frames, 3, 3] = 17568 values
MARKER = "fsve_issue16_payload_ran"


class Payload:
    """Unpickling this would run code: every load must refuse before that."""

    def __reduce__(self):
        return (exec, (f"import os; os.environ[{MARKER!r}] = '1'",))


@pytest.fixture(scope="module")
def shipped() -> dict:
    return torch.load(SHIPPED, weights_only=True)


def edited(tmp_path: Path, ckpt: dict, name: str, **tensors: torch.Tensor) -> Path:
    """A copy of ``ckpt`` with some state-dict entries replaced (keys with '.' as '__')."""
    state = dict(ckpt["state_dict"])
    state.update({k.replace("__", "."): v for k, v in tensors.items()})
    path = tmp_path / name
    torch.save({**ckpt, "state_dict": state}, path)
    return path


def one_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.endswith("\n") and err.count("\n") == 1, err
    return err.strip()


def test_nan_inf_and_complex_weights_are_named_at_load(tmp_path, shipped):
    stem = shipped["state_dict"][STEM].clone()
    assert stem.numel() == 32 * 61 * 3 * 3 == 17568
    stem.view(-1)[:12] = float("nan")
    path = edited(tmp_path, shipped, "nan.pt", visual__stem__conv__weight=stem)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path)
    assert str(err.value) == f"{path}: tensor '{STEM}' has NaN (12 of 17568 values)"
    stem.view(-1)[12:15] = float("-inf")
    path = edited(tmp_path, shipped, "naninf.pt", visual__stem__conv__weight=stem)
    with pytest.raises(CheckpointError, match=r"has NaN \(12 of 17568 values\) and Inf \(3 of"):
        load_checkpoint(path)
    cplx = shipped["state_dict"][STEM].to(torch.complex64)
    path = edited(tmp_path, shipped, "complex.pt", visual__stem__conv__weight=cplx)
    with pytest.raises(CheckpointError, match=rf"tensor '{STEM}' is complex \(torch.complex64\)"):
        load_checkpoint(path)
    path = edited(tmp_path, shipped, "str.pt", visual__stem__conv__weight="w")
    with pytest.raises(CheckpointError, match=rf"entry '{STEM}' is a str, not a tensor"):
        load_checkpoint(path)
    assert load_checkpoint(SHIPPED)["kind"] == "fsve"  # the shipped weights are all finite


def test_eval_and_profile_refuse_nan_weights(tmp_path, shipped, capsys):
    # the cases of the issue: fsve.eval printed metrics for a NaN conv, energy.profile printed a
    # full table ("98.52% reduction") for an all-NaN checkpoint; no dataset is read before
    nan_stem = shipped["state_dict"][STEM].clone()
    nan_stem.view(-1)[:12] = float("nan")
    one = edited(tmp_path, shipped, "one.pt", visual__stem__conv__weight=nan_stem)
    every = {
        k.replace(".", "__"): torch.full_like(v, float("nan"))
        for k, v in shipped["state_dict"].items()
        if v.is_floating_point()
    }
    first = next(k for k, v in shipped["state_dict"].items() if v.is_floating_point())
    count = shipped["state_dict"][first].numel()
    all_nan = edited(tmp_path, shipped, "all.pt", **every)
    data = tmp_path / "no-data"
    assert eval_main([str(one), "--data", str(data)]) == 2
    assert one_line(capsys) == f"error: {one}: tensor '{STEM}' has NaN (12 of 17568 values)"
    assert profile_main([str(all_nan), "--data", str(data), "--out", str(tmp_path / "e")]) == 2
    assert one_line(capsys) == (
        f"python -m energy.profile: error: {all_nan}: tensor '{first}' has NaN"
        f" ({count} of {count} values)"
    )
    assert not (tmp_path / "e").exists()


def test_config_is_checked_against_the_weights_before_building(
    tmp_path, shipped, capsys, monkeypatch
):
    # the case of the issue: widths of 65,536 made fsve.eval allocate 154 GB
    wide = {**shipped["config"], "widths": [65536] * 4}
    path = tmp_path / "wide.pt"
    torch.save({**shipped, "config": wide}, path)
    devices = []
    build = BUILDERS["fsve"]

    def spy(config):
        devices.append(torch.empty(0).device.type)  # where this build would allocate
        return build(config)

    monkeypatch.setitem(BUILDERS, "fsve", spy)
    assert eval_main([str(path), "--data", str(tmp_path)]) == 2
    # stem 32 channels -> first stage conv [out 65536, in 32, 3, 3] by the config, 32 stored
    assert one_line(capsys) == (
        f"error: {path}: the config does not fit the stored weights (318 G parameters implied,"
        f" 1.91 M stored): tensor 'visual.stages.0.0.conv1.weight' is [32, 32, 3, 3] in the"
        f" file, [65536, 32, 3, 3] by the config; the model was not built"
    )
    assert devices == ["meta"]  # only the shape-only build ran


def test_config_bounds_and_missing_or_extra_tensors(tmp_path, shipped):
    path = tmp_path / "big.pt"
    torch.save({**shipped, "config": {**shipped["config"], "height": 100000}}, path)
    with pytest.raises(CheckpointError) as err:
        load_model(path)
    assert str(err.value) == (
        f"{path}: config height=100000 is beyond the sane bound 4096; refusing to build the model"
    )
    state = dict(shipped["state_dict"])
    del state[STEM]
    torch.save({**shipped, "state_dict": state}, path)
    with pytest.raises(CheckpointError, match=rf"needs 1 tensors the file lacks, e.g. '{STEM}'"):
        load_model(path)
    state = {**shipped["state_dict"], "extra.weight": torch.zeros(2)}
    torch.save({**shipped, "state_dict": state}, path)
    with pytest.raises(CheckpointError, match="holds 1 tensors the config has no place for"):
        load_model(path)


def bad_files(folder: Path, shipped: dict) -> dict[str, bool]:
    """Files that are no fsve checkpoint -> whether the message must say "not an fsve ..."."""
    rng = torch.Generator().manual_seed(0)
    noise = torch.randint(0, 256, (4096,), generator=rng, dtype=torch.uint8).numpy().tobytes()
    (folder / "random.pt").write_bytes(noise)
    (folder / "random80.pt").write_bytes(b"\x80" + noise)  # looks like a pickle at first
    (folder / "empty.pt").write_bytes(b"")
    (folder / "text.pt").write_text("hello, not a checkpoint\n")
    (folder / "latin1.pt").write_bytes("café".encode("latin-1"))
    (folder / "h5.pt").write_bytes(b"\x89HDF\r\n\x1a\n" + noise[:100])
    (folder / "raw4.pt").write_bytes(pickle.dumps(Payload(), protocol=4))
    (folder / "raw0.pt").write_bytes(pickle.dumps(Payload(), protocol=0))
    torch.save({**shipped, "metrics": {"evil": Payload()}}, folder / "evil.pt")
    torch.save(shipped, folder / "good.pt")
    (folder / "cut.pt").write_bytes((folder / "good.pt").read_bytes()[:5000])
    with zipfile.ZipFile(folder / "zip.pt", "w") as z:
        z.writestr("x.txt", "not torch")
    (folder / "good.pt").unlink()
    expect = {"random", "random80", "empty", "text", "latin1", "h5", "raw4", "raw0"}
    return {p.stem: p.stem in expect for p in folder.iterdir()}


def test_refusals_name_the_file_and_never_suggest_disabling_the_safety(tmp_path, shipped, capsys):
    os.environ.pop(MARKER, None)
    for stem, foreign in bad_files(tmp_path, shipped).items():
        path = tmp_path / f"{stem}.pt"
        with pytest.raises(CheckpointError) as err:
            load_checkpoint(path)
        message = str(err.value)
        assert message.startswith(f"{path}: ") and "\n" not in message, message
        assert "weights_only" not in message and "likely succeed" not in message, message
        if foreign:
            assert message.startswith(f"{path}: not an fsve checkpoint ("), message
        assert eval_main([str(path), "--data", str(tmp_path)]) == 2
        assert one_line(capsys) == f"error: {message}"
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(tmp_path / "evil.pt")
    assert "refused to load" in str(err.value) and "pickled global exec" in str(err.value)
    assert MARKER not in os.environ  # nothing was executed
    with pytest.raises(CheckpointError, match="is a directory, not a checkpoint file"):
        load_checkpoint(tmp_path)
