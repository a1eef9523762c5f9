"""Cost files refused before they print nonsense (issue 16, items 11 and 12): non-finite or
absurd costs and non-UTF-8 files are one line naming the file and the key."""

from __future__ import annotations

import pytest

from energy.costs import MAX_PJ, PRESETS, CostModel, load_costs
from energy.profile.cli import main as profile_main


@pytest.mark.parametrize(
    ("name", "text", "key", "shown"),
    [
        ("huge.json", '{"e_mac_pj": 1e308}', "e_mac_pj", "1e+308"),  # the issue: "inf J"
        ("over.json", '{"base": "horowitz45", "e_neuron_pj": 2e6}', "e_neuron_pj", "2000000.0"),
        ("inf.json", '{"e_mem_pj": 1e999}', "e_mem_pj", "inf"),  # json reads 1e999 as inf
        ("nan.json", '{"e_ac_pj": NaN}', "e_ac_pj", "nan"),
        ("inf.toml", "e_state_pj = inf\n", "e_state_pj", "inf"),
        ("neg.toml", "e_op_pj = -1.0\n", "e_op_pj", "-1.0"),
    ],
)
def test_non_finite_or_absurd_costs_name_the_file_and_key(tmp_path, name, text, key, shown):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ValueError) as err:
        load_costs(path)
    assert str(err.value) == (
        f"{path}: cost {key} must be finite, >= 0 and <= {MAX_PJ:g} pJ, got {shown}"
    )


def test_sram_and_word_bits_bounds(tmp_path):
    path = tmp_path / "sram.json"
    path.write_text('{"base": "horowitz45", "sram": [[1024, 5.0], [2048, 1e300]]}')
    with pytest.raises(ValueError, match=r"sram\.json: sram entry \(2048, 1e\+300\) needs"):
        load_costs(path)
    path.write_text('{"word_bits": 1000000}')
    with pytest.raises(
        ValueError, match=r"sram\.json: cost word_bits must be an int >= 1 and <= 64"
    ):
        load_costs(path)


def test_largest_allowed_cost_stays_finite():
    # 1e6 pJ (1 uJ) per op: 1e12 ops would be 1e6 J, finite; the bound is inclusive
    cost = CostModel(name="x", source="test", e_mac_pj=MAX_PJ, e_ac_pj=0, e_op_pj=0, e_neuron_pj=0)
    assert cost.e_mac_pj == 1e6
    assert all(model.e_mac_pj <= MAX_PJ for model in PRESETS.values())


def test_non_utf8_cost_file_is_named(tmp_path):
    path = tmp_path / "latin.json"
    path.write_bytes('{"note": "café"}'.encode("latin-1"))
    with pytest.raises(ValueError) as err:
        load_costs(path)
    assert str(err.value) == f"{path}: cost file is not UTF-8 text (invalid continuation byte)"


def test_profile_cli_refuses_the_cost_file_first(tmp_path, capsys):
    path = tmp_path / "huge.json"
    path.write_text('{"e_mac_pj": 1e308}')
    # the cost file is checked before the checkpoint or the data is read
    argv = [str(tmp_path / "none.pt"), "--costs", str(path), "--out", str(tmp_path / "e")]
    assert profile_main(argv) == 2
    err = capsys.readouterr().err
    assert err == (
        f"python -m energy.profile: error: {path}: cost e_mac_pj must be finite, >= 0 and"
        " <= 1e+06 pJ, got 1e+308\n"
    )
