"""Energy sections of the reports: re-pricing, Table 6 files and markdown, per-model energy."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest
import torch

from apps.reports.energy import PAPER_TABLE6, energy_tables, inference_energy, reprice
from apps.reports.paper_scale import paper_scale_estimate
from energy.costs import PRESETS
from energy.profile import profile_model
from fsve.checkpoint import save_checkpoint
from fsve.data.dataset import SpikeDataset, collate, window_of
from fsve.models.config import teacher_config
from fsve.models.student import FSVE, calibrate_statistics, fsve_config
from fsve.models.teacher import SPKLIP

FLAT = dataclasses.replace(
    PRESETS["paper"], name="flat", e_ac_pj=0.9, e_mem_pj=7.0, e_state_pj=2.0, e_spike_pj=1.5
)


@pytest.fixture(scope="module")
def data(synth_data):
    """12 classes x 1 test clip (+1 train) of 250 frames at 32x32."""
    return synth_data("reports", 1, 0, 1)


@pytest.fixture(scope="module")
def models(data, micro_fsve, micro_teacher):
    torch.manual_seed(0)
    fsve = FSVE(fsve_config(micro_fsve))
    train = SpikeDataset(data, "train", window=window_of(fsve.cfg))
    calibrate_statistics(fsve, collate([train[i] for i in range(4)])["spikes"])
    teacher = SPKLIP(teacher_config(micro_teacher)).eval()
    return fsve, teacher


@pytest.fixture(scope="module")
def test_set(data, models):
    return SpikeDataset(data, "test", window=window_of(models[0].cfg))


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory, models):
    folder = tmp_path_factory.mktemp("ckpt")
    fsve, teacher = models
    return (
        save_checkpoint(folder / "fsve.pt", "fsve", fsve.cfg, fsve.state_dict()),
        save_checkpoint(folder / "teacher.pt", "teacher", teacher.cfg, teacher.state_dict()),
    )


@pytest.mark.parametrize("costs", ["loihi1", "truenorth", FLAT])
@pytest.mark.parametrize("baseline", ["twin", "teacher"])
def test_reprice_equals_a_profile_under_those_costs(models, test_set, costs, baseline):
    fsve, teacher = models
    base = teacher if baseline == "teacher" else "twin"
    clips = [collate([test_set[i]]) for i in range(3)]
    paper = profile_model(fsve, clips, costs="paper", baseline=base)
    direct = profile_model(fsve, clips, costs=costs, baseline=base)
    priced = reprice(paper.layers, costs)
    assert set(priced) == {"ann", "snn"}
    for model in ("ann", "snn"):
        row = direct.row(model)
        for col in ("compute_j", "neuron_j", "memory_j", "total_j"):
            assert priced[model][col] == pytest.approx(float(row[col]), rel=1e-12, abs=1e-18)
    assert priced["snn"]["total_j"] > 0


def test_reprice_refuses_size_dependent_memory(models, test_set):
    report = profile_model(models[0], collate([test_set[0]]), costs="paper")
    with pytest.raises(ValueError, match="sram"):
        reprice(report.layers, "horowitz45")


def test_energy_tables_files_and_markdown(checkpoints, data, tmp_path):
    fsve_ckpt, teacher_ckpt = checkpoints
    md = energy_tables(fsve_ckpt, teacher_ckpt, data, tmp_path, samples=3, progress=False)
    table = pd.read_csv(tmp_path / "table6.csv")
    assert len(table) == 2 * len(PRESETS)  # every preset against the twin and the teacher
    assert set(table["costs"]) == set(PRESETS)
    assert (table["samples"] == 3).all()
    assert set(table.loc[table["costs"].isin(["loihi1", "truenorth"]), "priced"]) == {"re-priced"}
    for side in ("ann", "snn"):
        parts = table[[f"{side}_compute_j", f"{side}_neuron_j", f"{side}_memory_j"]].sum(axis=1)
        assert table[f"{side}_total_j"].to_numpy() == pytest.approx(parts.to_numpy(), rel=1e-12)
    saving = 100 * (1 - table["snn_total_j"] / table["ann_total_j"])
    assert table["saving_pct"].to_numpy() == pytest.approx(saving.to_numpy(), rel=1e-9)
    # the paper-preset rows are the saved reports
    for folder, is_twin in (("fsve-vs-twin", True), ("fsve-vs-teacher", False)):
        summary = pd.read_csv(tmp_path / folder / "summary.csv").set_index("model")
        row = table[(table["costs"] == "paper") & ((table["baseline"] == "twin") == is_twin)]
        assert row["ann_total_j"].item() == pytest.approx(summary.loc["ann", "total_j"])
        assert row["snn_total_j"].item() == pytest.approx(summary.loc["snn", "total_j"])
        assert (tmp_path / folder / "layers.csv").is_file()
        assert (tmp_path / folder / "energy.png").stat().st_size > 0
    # the same SNN pass against both baselines
    snn = table.groupby("costs")["snn_total_j"].agg(["min", "max"])
    assert snn["min"].to_numpy() == pytest.approx(snn["max"].to_numpy(), rel=1e-12)
    assert summary.loc["ann", "network"] == "SPKLIP"
    assert "1.375 J" in md and "1.147 J" in md and "74.1%" in md and "16.6%" in md
    assert not md.startswith("#")  # the caller adds the heading
    for preset in PRESETS:
        assert f"| {preset} |" in md or preset == "paper"


def test_paper_table6_is_consistent():
    p = PAPER_TABLE6
    assert p.ann_compute_j + p.ann_memory_j == pytest.approx(p.ann_total_j, abs=1e-3)
    assert p.snn_compute_j + p.snn_memory_j == pytest.approx(p.snn_total_j, abs=1e-3)
    assert 100 * (1 - p.snn_compute_j / p.ann_compute_j) == pytest.approx(74.1, abs=0.1)
    assert 100 * (1 - p.snn_total_j / p.ann_total_j) == pytest.approx(16.6, abs=0.1)
    assert p.ann_ops == pytest.approx(1.372 / 4.6e-12)  # 2.98e11 operations


def test_inference_energy_fewer_time_steps_and_the_teacher(models, test_set):
    fsve, teacher = models
    five = inference_energy(fsve, test_set, samples=3)
    short = FSVE(dataclasses.replace(fsve.cfg, num_blocks=3))
    short.load_state_dict(fsve.state_dict())
    short.eval()
    three = inference_energy(short, test_set, samples=3)  # re-read with 3 sub-blocks
    assert 0 < three["total_j"] < five["total_j"]
    for e in (five, three):
        assert e["total_j"] == pytest.approx(e["compute_j"] + e["neuron_j"] + e["memory_j"])
        assert 0 < e["firing_rate"] < 1
        assert e["neuron_j"] > 0
    ann = inference_energy(teacher, test_set, samples=2)
    assert ann["firing_rate"] is None
    assert ann["neuron_j"] == 0.0
    assert ann["total_j"] == pytest.approx(ann["compute_j"] + ann["memory_j"])
    # an ANN costs the same on every clip: 2 samples or 1 give the same energy
    assert inference_energy(teacher, test_set, samples=1)["total_j"] == pytest.approx(
        ann["total_j"], rel=1e-12
    )


def test_paper_scale_estimate_small(tmp_path, micro_fsve, micro_teacher):
    fcfg, tcfg = fsve_config(micro_fsve), teacher_config(micro_teacher)
    root = tmp_path / "data-paper"
    md = paper_scale_estimate(tmp_path / "ps", root, samples=2, progress=False,
                              fsve_config=fcfg, teacher_config=tcfg)  # fmt: skip
    table = pd.read_csv(tmp_path / "ps" / "paper_scale.csv")
    assert len(table) == 2 and (table["samples"] == 2).all()
    assert list(table["baseline"].str.startswith("teacher")) == [False, True]
    assert table["ann_network"].tolist() == ["FSVE (ANN twin)", "SPKLIP"]
    ds = SpikeDataset(root, "test", window=window_of(fcfg))
    assert len(ds) == 12  # one test clip per class
    density = 100 * float(collate([ds[0], ds[1]])["spikes"].float().mean())
    assert table["input_density_pct"].to_numpy() == pytest.approx([density, density], rel=1e-6)
    assert "untrained" in md and f"{density:.3f}%" in md
    assert "`visual.stages.0`" in md and "`visual.final_lif`" in md
    assert "1.375 J" in md
    assert (tmp_path / "ps" / "fsve-vs-teacher" / "summary.csv").is_file()

    # a clip slower than the budget: one clip only, and the markdown says so
    md = paper_scale_estimate(tmp_path / "ps1", root, samples=2, progress=False,
                              fsve_config=fcfg, teacher_config=tcfg, max_clip_s=0.0)  # fmt: skip
    assert (pd.read_csv(tmp_path / "ps1" / "paper_scale.csv")["samples"] == 1).all()
    assert "so one clip was profiled" in md
