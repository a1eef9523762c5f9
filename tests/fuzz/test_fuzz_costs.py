"""Fuzzing the cost-file reader (``energy.costs.load_costs`` of ``.json`` and ``.toml`` files).

Errors: ``ValueError``, one line naming the file (unreadable, not UTF-8, malformed, not a
table, unknown keys or base preset, values of the wrong type, non-finite or absurd costs). A
model it returns has finite costs in ``[0, MAX_PJ]``, integer word widths in ``1..MAX_BITS``, a
strictly increasing SRAM table and text where text is expected.
"""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

import pytest
from fuzzing import expect, fuzz, json_values, mutated
from hypothesis import strategies as st

from energy.costs import _FIELDS, MAX_BITS, MAX_PJ, PRESETS, CostModel, load_costs

ERRORS = (ValueError,)
VALID = {
    "base": "horowitz45",
    "e_mem_pj": 7.5,
    "e_spike_pj": 1,
    "sram": [[1024, 3.0], [4096, 6.5]],
    "word_bits": 16,
    "note": "fuzzed",
}
VALID_JSON = json.dumps(VALID).encode()
VALID_TOML = b"""base = "horowitz45"
e_mem_pj = 7.5
e_spike_pj = 1
sram = [[1024, 3.0], [4096, 6.5]]
word_bits = 16
note = "fuzzed"
"""


def sane(model: CostModel) -> None:
    for name in _FIELDS:
        value = getattr(model, name)
        if name.endswith("_pj"):
            assert type(value) is float and math.isfinite(value) and 0 <= value <= MAX_PJ
    for name in ("word_bits", "state_bits"):
        value = getattr(model, name)
        assert type(value) is int and 1 <= value <= MAX_BITS
    for name in ("name", "source", "note"):
        assert isinstance(getattr(model, name), str), name
    caps = [cap for cap, _ in model.sram]
    assert caps == sorted(set(caps))
    assert all(math.isfinite(pj) and 0 <= pj <= MAX_PJ for _, pj in model.sram)


def check(data: bytes, suffix: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"costs{suffix}"
        path.write_bytes(data)
        model = expect(lambda: load_costs(path), ERRORS, path)
    if model is not None:
        sane(model)


@st.composite
def mutated_fields(draw: st.DrawFn) -> bytes:
    """The valid JSON object with values replaced by any JSON value, keys added or removed."""
    data = dict(VALID)
    keys = sorted(_FIELDS | {"base"})
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(("value", "value", "add", "remove", "sram")))
        if op == "value":
            data[draw(st.sampled_from(keys))] = draw(json_values)
        elif op == "add":
            data[draw(st.text(max_size=6))] = draw(json_values)
        elif op == "remove" and data:
            data.pop(draw(st.sampled_from(sorted(data))))
        elif op == "sram":
            data["sram"] = draw(st.lists(st.lists(json_values, max_size=3), max_size=3))
    if draw(st.booleans()):
        return json.dumps(data).encode()  # NaN and Infinity as JSON extensions
    return json.dumps(data, allow_nan=True).replace("NaN", "1e999").encode()


suffixes = st.sampled_from((".json", ".toml", ".JSON"))
test_random_bytes, test_random_bytes_slow = fuzz(30, data=st.binary(max_size=128), suffix=suffixes)(
    check
)
test_mutated_json, test_mutated_json_slow = fuzz(
    30, data=mutated(VALID_JSON), suffix=st.just(".json")
)(check)
test_mutated_toml, test_mutated_toml_slow = fuzz(
    30, data=mutated(VALID_TOML), suffix=st.just(".toml")
)(check)
test_mutated_fields, test_mutated_fields_slow = fuzz(
    60, data=mutated_fields(), suffix=st.just(".json")
)(check)


def test_unmutated_files_read_back(tmp_path):
    for suffix, data in ((".json", VALID_JSON), (".toml", VALID_TOML)):
        path = tmp_path / f"mine{suffix}"
        path.write_bytes(data)
        model = load_costs(path)
        assert model.name == "horowitz45+mine" and model.note == "fuzzed"
        assert (model.e_mem_pj, model.e_spike_pj, model.word_bits) == (7.5, 1.0, 16)
        assert model.sram == ((1024.0, 3.0), (4096.0, 6.5))
        assert model.e_mac_pj == PRESETS["horowitz45"].e_mac_pj


def test_a_base_of_the_wrong_type_is_one_line(tmp_path):
    # found by fuzzing: {"base": ["paper"]} was a TypeError (unhashable list)
    path = tmp_path / "c.json"
    path.write_text('{"base": ["paper"]}')
    with pytest.raises(ValueError, match=f"^{path}: unknown base preset \\['paper'\\]"):
        load_costs(path)


def test_a_name_that_is_not_text_is_refused(tmp_path):
    # found by fuzzing: {"name": null} gave a model named None
    path = tmp_path / "c.json"
    path.write_text('{"name": null}')
    with pytest.raises(ValueError, match=f"^{path}: cost name must be text, got None"):
        load_costs(path)
