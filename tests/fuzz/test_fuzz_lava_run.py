"""Fuzzing the Lava run-file reader (``export.lava.exchange.load_run``, the ``.npz`` that
``python -m export.lava run IN OUT`` reads in the Lava environment; no Lava needed here).

Errors: ``ValueError`` (not an ``.npz``, damaged, not a run file, metadata or arrays of the
wrong type, shape or range, inputs that do not fit the graph) and ``FileNotFoundError``, one
line naming the file. A run it returns is a checked ``LavaGraph``, integer inputs of shape
``[T, *input shape]`` and record settings of known variables and layers; an unmutated file
gives back what was saved.
"""

from __future__ import annotations

import io
import json
import tempfile
from pathlib import Path

import numpy as np
import pytest
from fuzzing import expect, fuzz, json_values, mutated
from hypothesis import strategies as st

from export.lava.exchange import load_results, load_run, save_results, save_run
from export.lava.graph import LIFQ, RECORD_VARS, LavaGraph, LavaLayer, Synapse

ERRORS = (ValueError, FileNotFoundError)
RNG = np.random.default_rng(0)
GRAPH = LavaGraph(
    {"img": (1, 4, 4)},
    (
        LavaLayer(
            "conv",
            (2, 2, 2),
            LIFQ(du=500, dv=250, vth=50, bias_mant=3, bias_exp=1),
            (Synapse("img", RNG.integers(-40, 40, (2, 1, 3, 3)), stride=2, padding=1),),
        ),
        LavaLayer(
            "fc",
            (3,),
            LIFQ(du=800, dv=100, vth=30),
            (Synapse("conv", RNG.integers(-9, 9, (3, 8))),),
        ),
    ),
)
SPIKES = (RNG.random((4, 1, 4, 4)) < 0.3).astype(np.int8)


def valid_bytes() -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        path = save_run(Path(tmp) / "run.npz", GRAPH, {"img": SPIKES}, layers=["fc"])
        return path.read_bytes()


VALID = valid_bytes()


def sane(run) -> None:
    graph, inputs, opts = run
    assert isinstance(graph, LavaGraph) and graph.layers
    for name, x in inputs.items():
        assert x.dtype.kind in "biu" and x.shape[1:] == graph.inputs[name]
    assert set(opts["record"]) <= set(RECORD_VARS)
    assert opts["layers"] is None or set(opts["layers"]) <= {la.name for la in graph.layers}


def check(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "run.npz"
        path.write_bytes(data)
        run = expect(lambda: load_run(path), ERRORS, path)
    if run is not None:
        sane(run)


def unpack(data: bytes) -> tuple[dict, dict[str, np.ndarray]]:
    with np.load(io.BytesIO(data)) as f:
        arrays = {k: f[k] for k in f.files}
    return json.loads(str(arrays.pop("meta"))), arrays


def pack(meta, arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, meta=np.array(json.dumps(meta)), **arrays)
    return buf.getvalue()


arrays_odd = st.sampled_from(
    [
        np.zeros(0),
        np.zeros((2, 1, 3, 3), dtype=np.int64),
        np.ones((3, 8)) * 0.5,
        np.array(["x"]),
        np.full(3, 2**40),
        np.zeros((4, 1, 4, 4), dtype=np.float32),
        np.zeros((4, 2, 2), dtype=np.int8),
    ]
)


@st.composite
def mutated_fields(draw: st.DrawFn) -> bytes:
    """The valid run file with metadata fields (any JSON value) or arrays (other dtypes and
    shapes) replaced or removed."""
    meta, arrays = unpack(VALID)
    for _ in range(draw(st.integers(1, 3))):
        where = draw(st.sampled_from(("meta", "layer", "synapse", "array", "drop")))
        if where == "meta":
            meta[draw(st.sampled_from(sorted(meta)))] = draw(json_values)
        elif where == "layer" and isinstance(meta.get("layers"), list) and meta["layers"]:
            layer = meta["layers"][draw(st.integers(0, len(meta["layers"]) - 1))]
            if isinstance(layer, dict):
                layer[draw(st.sampled_from(sorted(layer)))] = draw(json_values)
        elif where == "synapse":
            syn = unpack(VALID)[0]["layers"][0]["synapses"][0]
            syn[draw(st.sampled_from(sorted(syn)))] = draw(json_values)
            if isinstance(meta.get("layers"), list) and meta["layers"]:
                if isinstance(meta["layers"][0], dict):
                    meta["layers"][0]["synapses"] = [syn]
        elif where == "array":
            arrays[draw(st.sampled_from(sorted(arrays)))] = draw(arrays_odd)
        elif arrays:
            arrays.pop(draw(st.sampled_from(sorted(arrays))))
    return pack(meta, arrays)


test_random_bytes, test_random_bytes_slow = fuzz(25, data=st.binary(max_size=256))(check)
test_mutated_bytes, test_mutated_bytes_slow = fuzz(30, data=mutated(VALID))(check)
test_mutated_fields, test_mutated_fields_slow = fuzz(60, data=mutated_fields())(check)


def test_unmutated_run_file_reads_back(tmp_path):
    path = tmp_path / "run.npz"
    path.write_bytes(VALID)
    graph, inputs, opts = load_run(path)
    assert graph.inputs == GRAPH.inputs
    np.testing.assert_array_equal(inputs["img"], SPIKES)
    assert opts == {"record": RECORD_VARS, "layers": ["fc"]}
    for a, b in zip(graph.layers, GRAPH.layers, strict=True):
        assert (a.name, a.shape, a.neuron.du, a.neuron.vth) == (
            b.name,
            b.shape,
            b.neuron.du,
            b.neuron.vth,
        )
        np.testing.assert_array_equal(a.synapses[0].weight, b.synapses[0].weight)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        # found by fuzzing (and issue 16, item 8): numpy, zip, JSON and KeyError tracebacks
        (b"junk", r"not an \.npz file \(no zip archive\)"),
        (VALID[:-40], "not a readable .npz file, truncated or corrupt .BadZipFile"),
        (
            pack({"format": "fsve-lava-run"}, {}),
            "not a complete fsve-lava-run file .meta 'inputs' is no list",
        ),
        (pack([1], {}), "not a fsve-lava-run file$"),
        (
            pack({**unpack(VALID)[0], "record": ["s", "w"]}, unpack(VALID)[1]),
            "record must name",
        ),
        (
            pack(unpack(VALID)[0], {**unpack(VALID)[1], "input0": np.zeros((4, 2, 2), np.int8)}),
            "input .* must be integer spikes",
        ),
    ],
)
def test_a_broken_run_file_is_one_line_naming_it(tmp_path, data, match):
    path = tmp_path / "run.npz"
    path.write_bytes(data)
    with pytest.raises(ValueError, match=f"^{path}: {match}"):
        load_run(path)


# ---------------------------------------------------------------- the results file read back


def results_bytes() -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        rec = {"s": SPIKES[:, 0].astype(np.int64), "v": np.zeros((4, 4, 4), np.int64)}
        return save_results(Path(tmp) / "res.npz", {"conv": rec, "fc": rec}).read_bytes()


RESULTS = results_bytes()


def check_results(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "res.npz"
        path.write_bytes(data)
        out = expect(lambda: load_results(path), ERRORS, path)
    for rec in (out or {}).values():
        assert set(rec) <= set(RECORD_VARS)
        assert all(isinstance(a, np.ndarray) for a in rec.values())


test_results_random, test_results_random_slow = fuzz(15, data=st.binary(max_size=128))(
    check_results
)
test_results_mutated, test_results_mutated_slow = fuzz(25, data=mutated(RESULTS))(check_results)


def test_results_read_back_and_refuse_other_keys(tmp_path):
    path = tmp_path / "res.npz"
    path.write_bytes(RESULTS)
    out = load_results(path)
    assert set(out) == {"conv", "fc"} and set(out["fc"]) == {"s", "v"}
    np.testing.assert_array_equal(out["conv"]["s"], SPIKES[:, 0])
    np.savez(path, nokey=np.zeros(2))  # found by fuzzing-style probes: a bare ValueError
    with pytest.raises(ValueError, match=f"^{path}: 'nokey' is not a <var>/<layer> result"):
        load_results(path)
