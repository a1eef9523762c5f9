"""profile_model tables and files, and the ``python -m energy.profile`` command."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch
from torch import nn

from energy.profile import main, profile_checkpoint, profile_model
from energy.report import LAYER_COLUMNS, SUMMARY_COLUMNS
from fsve.checkpoint import save_checkpoint
from fsve.models.student import FSVE, fsve_config

ISSUE_SUMMARY = [
    "model",
    "compute_j",
    "neuron_j",
    "memory_j",
    "total_j",
    "memory_share",
    "saving_vs_ann",
]
ISSUE_LAYERS = [
    "model",
    "layer",
    "type",
    "sops",
    "macs",
    "dense_macs",
    "neuron_updates",
    "spikes_in",
    "spikes_out",
    "mem_reads",
    "mem_writes",
    "energy_j",
]


def test_tables_have_the_promised_columns_and_add_up(micro_fsve, clips):
    x = clips(micro_fsve.cfg, 2, seed=4)
    report = profile_model(micro_fsve, x)
    assert list(report.summary.columns) == list(SUMMARY_COLUMNS)
    assert set(ISSUE_SUMMARY) <= set(report.summary.columns)
    assert set(ISSUE_LAYERS) <= set(report.layers.columns) == set(LAYER_COLUMNS)
    assert list(report.summary["model"]) == ["ann", "snn"]
    for model in ("ann", "snn"):
        row, layers = report.row(model), report.layers[report.layers["model"] == model]
        assert row["total_j"] == pytest.approx(layers["energy_j"].sum())
        assert row["sops"] == pytest.approx(layers["sops"].sum())
        assert row["samples"] == 2
    ann, snn = report.row("ann"), report.row("snn")
    assert ann["sops"] == 0 and ann["neuron_updates"] == 0 and ann["potential_reads"] == 0
    assert ann["macs"] >= snn["dense_macs"]  # the twin does every synaptic op densely
    assert snn["sops"] < snn["dense_macs"]
    assert 0 < snn["firing_rate"] < 1
    text = report.table()
    for metric in (
        "Computational energy",
        "Neuron-update energy",
        "Memory access energy",
        "Total estimated energy",
        "Memory energy ratio",
    ):
        assert metric in text


def test_counts_are_per_inference_with_spread(micro_fsve, clips):
    x = clips(micro_fsve.cfg, 3, seed=5)
    whole = profile_model(micro_fsve, x)
    per_sample = profile_model(micro_fsve, [{"spikes": x[i : i + 1]} for i in range(3)])
    a, b = whole.row("snn"), per_sample.row("snn")
    assert a["sops"] == pytest.approx(b["sops"])  # batching does not change counts
    assert a["total_j"] == pytest.approx(b["total_j"])
    assert a["total_j_std"] == 0 and b["total_j_std"] > 0  # spread over single samples


def test_lemaire_convention_and_other_presets(micro_fsve, clips):
    x = clips(micro_fsve.cfg, 1, seed=6)
    simple = profile_model(micro_fsve, x, convention="simple").row("snn")
    lemaire = profile_model(micro_fsve, x, convention="lemaire").row("snn")
    assert lemaire["sops"] == simple["sops"]  # compute does not depend on the convention
    assert lemaire["potential_reads"] > simple["potential_reads"]  # per-synapse membrane RMW
    for name in ("horowitz45", "int8-45nm", "loihi1", "truenorth"):
        report = profile_model(micro_fsve, x, costs=name)
        assert report.row("snn")["total_j"] > 0
    assert "pre-silicon" in profile_model(micro_fsve, x, costs="loihi1").table()


def test_teacher_baseline_module(micro_fsve, micro_teacher, clips):
    x = clips(micro_fsve.cfg, 1, seed=7)
    report = profile_model(micro_fsve, x, baseline=micro_teacher)
    ann = report.layers[report.layers["model"] == "ann"]
    assert ann["layer"].str.startswith("hsfe").any()
    assert report.row("ann")["network"] == "SPKLIP"


def test_bad_arguments(micro_fsve, clips):
    x = clips(micro_fsve.cfg, 1)
    with pytest.raises(ValueError, match="convention"):
        profile_model(micro_fsve, x, convention="exact")
    with pytest.raises(ValueError, match="baseline"):
        profile_model(micro_fsve, x, baseline="gpu")
    with pytest.raises(ValueError, match="no samples"):
        profile_model(micro_fsve, [])


def test_save_writes_readable_files(micro_fsve, clips, tmp_path):
    report = profile_model(micro_fsve, clips(micro_fsve.cfg, 1))
    paths = report.save(tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "energy.png",
        "energy_vs_rate.png",
        "layers.csv",
        "provenance.json",
        "summary.csv",
        "table.txt",
    ]
    assert "Total estimated energy" in paths["table"].read_text()
    summary = pd.read_csv(paths["summary"])
    assert list(summary["model"]) == ["ann", "snn"]
    assert paths["plot"].read_bytes()[:4] == b"\x89PNG"


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory, micro_fsve, micro_teacher):
    folder = tmp_path_factory.mktemp("ckpt")
    fsve = save_checkpoint(folder / "fsve.pt", "fsve", micro_fsve.cfg, micro_fsve.state_dict())
    teacher = save_checkpoint(
        folder / "teacher.pt", "teacher", micro_teacher.cfg, micro_teacher.state_dict()
    )
    big = FSVE(fsve_config({**_cfg_dict(micro_fsve), "height": 64, "width": 64}))
    wrong = save_checkpoint(folder / "big.pt", "fsve", big.cfg, big.state_dict())
    corrupt = folder / "corrupt.pt"
    corrupt.write_bytes(b"not a checkpoint")
    return {"fsve": fsve, "teacher": teacher, "wrong_size": wrong, "corrupt": corrupt}


def _cfg_dict(model):
    from fsve.models.config import config_to_dict

    return config_to_dict(model.cfg)


def test_cli_profiles_a_checkpoint(checkpoints, tiny_data, tmp_path, capsys):
    out = tmp_path / "rep"
    code = main(
        [
            str(checkpoints["fsve"]),
            "--data",
            str(tiny_data),
            "--samples",
            "2",
            "--out",
            str(out),
            "--no-progress",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "Total estimated energy" in printed and "Not counted: nothing" in printed
    summary = pd.read_csv(out / "summary.csv")
    assert list(summary["model"]) == ["ann", "snn"]
    assert (summary["samples"] == 2).all()
    layers = pd.read_csv(out / "layers.csv")
    assert {"ann", "snn"} == set(layers["model"])


def test_profile_checkpoint_is_what_the_cli_writes(checkpoints, tiny_data, tmp_path, capsys):
    out = tmp_path / "rep"
    args = [str(checkpoints["fsve"]), "--data", str(tiny_data), "--samples", "2"]
    assert main([*args, "--out", str(out), "--no-progress"]) == 0
    capsys.readouterr()
    report = profile_checkpoint(checkpoints["fsve"], data=tiny_data, samples=2)
    assert report.checkpoint_kind == "fsve"
    assert report.table() + "\n" == (out / "table.txt").read_text()
    pd.testing.assert_frame_equal(report.summary, pd.read_csv(out / "summary.csv"))


def test_cli_teacher_baseline_and_teacher_alone(checkpoints, tiny_data, tmp_path, capsys):
    code = main(
        [
            str(checkpoints["fsve"]),
            "--data",
            str(tiny_data),
            "--samples",
            "1",
            "--baseline",
            f"teacher:{checkpoints['teacher']}",
            "--convention",
            "lemaire",
            "--out",
            str(tmp_path / "a"),
            "--no-progress",
        ]
    )
    assert code == 0
    summary = pd.read_csv(tmp_path / "a" / "summary.csv")
    assert summary.loc[0, "network"] == "SPKLIP"
    assert summary.loc[0, "baseline"].startswith("teacher:")
    code = main(
        [
            str(checkpoints["teacher"]),
            "--data",
            str(tiny_data),
            "--samples",
            "1",
            "--out",
            str(tmp_path / "b"),
            "--no-progress",
        ]
    )
    assert code == 0
    assert list(pd.read_csv(tmp_path / "b" / "summary.csv")["model"]) == ["ann"]
    capsys.readouterr()


@pytest.mark.parametrize(
    "case,extra,match",
    [
        ("missing", [], "no such checkpoint"),
        ("corrupt", [], "corrupt.pt: "),
        ("fsve", ["--costs", "gpu"], "unknown cost preset"),
        ("fsve", ["--costs", "BADFILE"], "malformed"),
        ("fsve", ["--samples", "0"], "must be >= 1"),
        ("wrong_size", [], "expects 64x64"),
        ("fsve", ["--data", "NODATA"], "no dataset here"),
        ("fsve", ["--baseline", "gpu"], "--baseline"),
        ("fsve", ["--baseline", "teacher:MISSING"], "no such checkpoint"),
        ("teacher", ["--baseline", "teacher:TEACHER"], "compares an FSVE"),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(
    checkpoints, tiny_data, tmp_path, capsys, case, extra, match
):
    bad = tmp_path / "bad.json"
    bad.write_text("{oops")
    subst = {
        "BADFILE": str(bad),
        "NODATA": str(tmp_path / "none"),
        "teacher:MISSING": f"teacher:{tmp_path / 'none.pt'}",
        "teacher:TEACHER": f"teacher:{checkpoints['teacher']}",
    }
    extra = [subst.get(a, a) for a in extra]
    ckpt = tmp_path / "missing.pt" if case == "missing" else checkpoints[case]
    args = [str(ckpt), "--data", str(tiny_data), "--no-progress", "--out", str(tmp_path), *extra]
    if "--data" in extra:
        args = [str(ckpt), "--no-progress", *extra]
    assert run(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and match in err


def run(args: list[str]) -> int:
    """``main(args)``; argparse errors exit through SystemExit with the same code."""
    try:
        return main(args)
    except SystemExit as exc:
        return int(exc.code)


def test_cuda_is_refused_cleanly_without_a_gpu(checkpoints, tiny_data, capsys):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    assert main([str(checkpoints["fsve"]), "--data", str(tiny_data), "--device", "cuda"]) == 2
    assert "CUDA" in capsys.readouterr().err


def test_cli_sdt_writes_side_by_side_and_provenance(
    checkpoints, micro_fsve, tiny_data, tmp_path, capsys
):
    from importlib.metadata import version

    out = tmp_path / "sdt"
    args = [str(checkpoints["fsve"]), "--data", str(tiny_data), "--samples", "1"]
    assert main([*args, "--convention", "sdt", "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "Side by side" in printed and "Break-even firing rate" in printed
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["convention"] == "sdt" and prov["costs"]["name"] == "horowitz45"
    assert prov["memory_counted"] is False and prov["neuron_updates_counted"] is False
    assert prov["costs"]["constants_pj"]["E_MAC"] == 4.6
    assert prov["costs"]["constants_pj"]["E_AC"] == 0.9
    assert prov["time_steps"] == micro_fsve.cfg.num_blocks and prov["samples"] == 1
    assert prov["baseline"] == "twin" and prov["checkpoint_kind"] == "fsve"
    assert prov["estimator"]["version"] == version("fsve")
    assert "spikes_out / neuron_updates" in prov["firing_rate"]
    sides = pd.read_csv(out / "conventions.csv")
    assert list(sides["convention"]) == ["simple", "lemaire", "sdt"]
    summary = pd.read_csv(out / "summary.csv").set_index("model")
    assert sides.set_index("convention").loc["sdt", "snn_j"] == pytest.approx(
        summary.loc["snn", "total_j"]
    )
    assert summary.loc["snn", "break_even_rate"] > 0


def test_every_report_carries_its_provenance(micro_fsve, clips, tmp_path):
    report = profile_model(micro_fsve, clips(micro_fsve.cfg, 1), costs="int8-45nm")
    text = report.table()
    assert "Provenance: fsve energy" in text and "memory counted, neuron updates counted" in text
    assert "E_MAC 0.23, E_AC 0.03" in text and "words 8 bit, potentials 32 bit" in text
    assert f"T = {micro_fsve.cfg.num_blocks} steps per sample" in text
    prov = report.provenance()
    assert prov["costs"]["sram_bytes_pj"][0] == [8192.0, 5.0]
    assert prov["norm"] == "fold" and prov["convention"] == "simple"
    saved = json.loads(report.save(tmp_path)["provenance"].read_text())
    assert saved == json.loads(json.dumps(prov))


@pytest.mark.parametrize("value", [float("nan"), float("inf"), "complex"])
def test_non_finite_or_complex_inputs_are_refused(value):
    """Issue 16, item 3: a NaN, Inf or complex input gives one line, not a table of zeros."""
    net = nn.Sequential(nn.Linear(4, 3))
    if value == "complex":
        x, match = torch.zeros(2, 4, dtype=torch.complex64), "real numbers"
    else:
        x, match = torch.zeros(2, 4), "1 NaN or infinite"
        x[0, 0] = value
    with pytest.raises(ValueError, match=match) as err:
        profile_model(net, x)
    assert "\n" not in str(err.value)
