"""Cost presets, user overrides, the memory-size table and the paper's Eq. 12-13."""

from __future__ import annotations

import json

import pytest

from energy.costs import PRESETS, CostModel, ann_energy_j, load_costs, snn_energy_j, sram_pj
from energy.profile import profile_model


def test_presets_and_their_sources():
    assert set(PRESETS) == {"paper", "horowitz45", "int8-45nm", "loihi1", "truenorth"}
    for cost in PRESETS.values():
        assert cost.source
    paper = PRESETS["paper"]
    assert (paper.e_mac_pj, paper.e_ac_pj, paper.e_neuron_pj, paper.e_mem_pj) == (
        4.6,
        4.6,
        0.9,
        5.0,
    )
    assert PRESETS["horowitz45"].e_mac_pj == 4.6 and PRESETS["horowitz45"].e_ac_pj == 0.9
    assert "pre-silicon" in PRESETS["loihi1"].source
    assert PRESETS["truenorth"].e_ac_pj == 26.0 and PRESETS["truenorth"].e_neuron_pj == 0.0


def test_eq12_and_eq13_on_given_counts():
    # Eq. 12: 1e6 ops x 4.6 pJ + 2e5 accesses x 5 pJ = 4.6 uJ + 1.0 uJ = 5.6 uJ
    assert ann_energy_j(1e6, 2e5) == pytest.approx(5.6e-6)
    # Eq. 13: 1e5 SOPs x 4.6 + 3e4 updates x 0.9 + 2e5 accesses x 5 = 0.46 + 0.027 + 1.0 uJ
    assert snn_energy_j(1e5, 3e4, 2e5) == pytest.approx(1.487e-6)
    assert snn_energy_j(1, 1, 1, e_c_pj=1, e_u_pj=2, e_m_pj=3) == pytest.approx(6e-12)


def test_horowitz_sram_cost_by_capacity():
    h = PRESETS["horowitz45"]
    assert h.access_pj("weight", 100) == 5.0  # 400 B: at or below 8 KB, 10 pJ / 64 bit
    assert h.access_pj("weight", 8 * 1024) == pytest.approx(10.0)  # 32 KB of fp32 words
    # 16 KB halfway from 8 KB (5 pJ) to 32 KB (10 pJ): 5 + 5 x 8/24
    assert sram_pj(h.sram, 16 * 1024) == pytest.approx(5 + 5 * 8 / 24)
    assert h.access_pj("state", 10**9) == 50.0  # clamped at the 1 MB point
    i8 = PRESETS["int8-45nm"]
    assert i8.access_pj("weight", 100) == pytest.approx(5.0 * 8 / 32)  # 8-bit word
    assert i8.access_pj("state", 100) == 5.0  # 32-bit potential
    with pytest.raises(ValueError, match="memory kind"):
        h.access_pj("cache", 1)


def test_user_file_overrides_json_and_toml(tmp_path):
    j = tmp_path / "mine.json"
    j.write_text(json.dumps({"base": "horowitz45", "e_ac_pj": 0.5, "note": "mine"}))
    cost = load_costs(j)
    assert cost.name == "horowitz45+mine" and cost.e_ac_pj == 0.5 and cost.e_mac_pj == 4.6
    t = tmp_path / "flat.toml"
    t.write_text("e_mem_pj = 2.5\ne_state_pj = 7.0\nsram = [[1024, 1.0], [4096, 2.0]]\n")
    cost = load_costs(t)
    assert cost.e_mem_pj == 2.5 and cost.e_neuron_pj == 0.9  # base: paper
    assert cost.access_pj("weight", 640) == pytest.approx(1.5)  # 2560 B: halfway 1 -> 2 pJ
    assert load_costs(cost) is cost


@pytest.mark.parametrize(
    "text,suffix,match",
    [
        ('{"e_mac": 1}', ".json", "unknown cost keys"),
        ("{not json", ".json", "malformed"),
        ("e_ac_pj = [", ".toml", "malformed"),
        ('{"e_ac_pj": -1}', ".json", ">= 0"),
        ('{"e_ac_pj": "x"}', ".json", "number"),
        ('{"base": "nope"}', ".json", "base preset"),
        ("[1, 2]", ".json", "table/object"),
    ],
)
def test_bad_cost_files(tmp_path, text, suffix, match):
    path = tmp_path / f"bad{suffix}"
    path.write_text(text)
    with pytest.raises(ValueError, match=match):
        load_costs(path)


def test_unknown_preset_and_missing_file():
    with pytest.raises(ValueError, match="unknown cost preset"):
        load_costs("gpu")
    with pytest.raises(ValueError, match="no such cost file"):
        load_costs("missing.json")
    with pytest.raises(ValueError, match=">= 1"):
        CostModel("x", "y", 1, 1, 1, 1, word_bits=0)


def test_report_equals_eq12_and_eq13_with_the_paper_costs(micro_fsve, clips):
    report = profile_model(micro_fsve, clips(micro_fsve.cfg, 2, seed=3), costs="paper")
    ann, snn = report.row("ann"), report.row("snn")
    # with E_C for every op, compute energy = all operations x E_C
    expect_ann = ann_energy_j(ann["ops"], ann["mem_reads"] + ann["mem_writes"])
    expect_snn = snn_energy_j(
        snn["ops"], snn["neuron_updates"], snn["mem_reads"] + snn["mem_writes"]
    )
    assert ann["total_j"] == pytest.approx(expect_ann, rel=1e-12)
    assert snn["total_j"] == pytest.approx(expect_snn, rel=1e-12)
    assert snn["saving_vs_ann"] == pytest.approx(1 - snn["total_j"] / ann["total_j"])
    assert snn["memory_share"] == pytest.approx(snn["memory_j"] / snn["total_j"])
