"""Fuzzing the NIR file readers: ``export.sim.Simulator`` from a path, ``export.loihi``'s
``load_graph`` and the energy profiler's ``profile_nir`` from a path (the entry points the
commands use; all read through ``export.graph.read_nir``).

Errors: ``ValueError`` (not HDF5, not a NIR graph, a node the reader or our checks refuse, a
node type without a kernel or rule) and ``FileNotFoundError``, one line naming the file. A
simulator it builds runs the graph's Input on zeros to outputs of the declared shape; an
unmutated file gives the graph that was written.
"""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import h5py
import nir
import numpy as np
import pytest
import torch
from fuzzing import expect, fuzz, mutated
from hypothesis import strategies as st

from energy.profile.nirgraph import profile_nir
from export.loihi.sources import load_graph
from export.nir.host import write_nir
from export.sim import Simulator

ERRORS = (ValueError, FileNotFoundError)
RNG = np.random.default_rng(0)


def small_graph() -> nir.NIRGraph:
    """Input 4 -> Affine -> LIF 3 -> Linear -> IF 2 -> Output: every kind of field (weights,
    biases, time constants, thresholds, shapes) in a few bytes."""
    nodes = {
        "input": nir.Input(input_type={"input": np.array([4])}),
        "fc1": nir.Affine(weight=RNG.normal(size=(3, 4)), bias=RNG.normal(size=3)),
        "lif": nir.LIF(
            tau=np.full(3, 0.01),
            r=np.ones(3),
            v_leak=np.zeros(3),
            v_threshold=np.ones(3),
            v_reset=np.zeros(3),
        ),
        "fc2": nir.Linear(weight=RNG.normal(size=(2, 3))),
        "if": nir.IF(r=np.ones(2), v_threshold=np.ones(2), v_reset=np.zeros(2)),
        "output": nir.Output(output_type={"output": np.array([2])}),
    }
    edges = [("input", "fc1"), ("fc1", "lif"), ("lif", "fc2"), ("fc2", "if"), ("if", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges)


GRAPH = small_graph()


def valid_bytes() -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        return write_nir(Path(tmp) / "g.nir", GRAPH).read_bytes()


VALID = valid_bytes()


def sane_sim(sim: Simulator) -> None:
    """The graph runs on zeros of its Inputs' declared shapes."""
    from export.inputs import input_shape

    given = {}
    for name in sim.inputs:
        shape = input_shape(sim.nodes, name)
        given[name] = torch.zeros(3, 1, *(shape or (1,)))
    try:
        sim.run(given)
    except (ValueError, RuntimeError):
        pass  # a graph whose shapes do not chain is refused when run (a message, not a crash)


def check(data: bytes, entry: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "g.nir"
        path.write_bytes(data)
        if entry == "sim":
            sim = expect(lambda: Simulator(path), ERRORS, path)
            if sim is not None:
                sane_sim(sim)
        elif entry == "loihi":
            got = expect(lambda: load_graph(path), ERRORS, path)
            assert got is None or isinstance(got[0], nir.NIRGraph)
        else:
            x = np.zeros((3, 1, 4))
            report = expect(lambda: profile_nir(path, x, layout="TB"), ERRORS, path)
            assert report is None or set(report.summary["model"]) == {"snn", "ann"}


# -------------------------------------------------------------- a node's HDF5 field mutated

FIELDS = [
    ("fc1", "weight"),
    ("fc1", "bias"),
    ("lif", "tau"),
    ("lif", "v_threshold"),
    ("fc2", "weight"),
    ("if", "r"),
    ("input", "shape"),
    ("output", "shape"),
    ("fc1", "type"),
    ("lif", "type"),
]
values = st.one_of(
    st.sampled_from([np.zeros(0), np.zeros((2, 2, 2)), np.float64("nan"), np.float64("inf")]),
    st.sampled_from([b"LIF", b"Nope", b"", "text", np.int64(-3), np.array([0]), np.array([-1])]),
    st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), max_size=5).map(np.array),
    st.lists(st.integers(-5, 5), min_size=1, max_size=4).map(np.array),
)


@st.composite
def mutated_fields(draw: st.DrawFn) -> bytes:
    """The valid file with 1..3 node fields replaced (any type, shape, value) or deleted."""
    buf = io.BytesIO(VALID)
    with h5py.File(buf, "r+") as f:
        nodes = f["node"]["nodes"]
        for _ in range(draw(st.integers(1, 3))):
            node, field = draw(st.sampled_from(FIELDS))
            group = nodes[node]
            if field in group:
                del group[field]
            if draw(st.integers(0, 4)):
                group[field] = draw(values)
        if draw(st.integers(0, 5)) == 0:
            del f["node"]["edges"]
            f["node"]["edges"] = draw(st.sampled_from([np.zeros(0), np.array([[b"input", b"x"]])]))
    return buf.getvalue()


entries = st.sampled_from(("sim", "loihi", "energy"))
test_random_bytes, test_random_bytes_slow = fuzz(20, data=st.binary(max_size=256), entry=entries)(
    check
)
test_mutated_bytes, test_mutated_bytes_slow = fuzz(30, data=mutated(VALID), entry=entries)(check)
test_mutated_fields, test_mutated_fields_slow = fuzz(40, data=mutated_fields(), entry=entries)(
    check
)


def test_unmutated_file_reads_back(tmp_path):
    path = tmp_path / "g.nir"
    path.write_bytes(VALID)
    sim = Simulator(path)
    assert set(sim.nodes) == set(GRAPH.nodes) and sim.inputs == ["input"]
    np.testing.assert_array_equal(sim.nodes["fc1"].weight, GRAPH.nodes["fc1"].weight)
    graph, host = load_graph(path)
    assert host is None and sorted(graph.edges) == sorted(GRAPH.edges)


def with_field(tmp_path: Path, node: str, field: str, value) -> Path:
    """The valid file with one node field replaced."""
    path = tmp_path / "g.nir"
    path.write_bytes(VALID)
    with h5py.File(path, "r+") as f:
        del f["node"]["nodes"][node][field]
        f["node"]["nodes"][node][field] = value
    return path


@pytest.mark.parametrize(
    ("node", "field", "value", "match"),
    [
        # found by fuzzing: nir.read's bare AssertionError for a type it does not know
        ("fc1", "type", b"Nope", "node 'fc1' has type 'Nope', which nir .* does not know"),
        # found by fuzzing: h5py/nir errors (OSError, KeyError, TypeError) without the file
        ("fc1", "weight", np.zeros(3), "not a readable NIR graph .AssertionError: Weight must"),
        # found by fuzzing: a text bias reached torch as a TypeError
        ("fc1", "bias", b"LIF", "node 'fc1': bias 'LIF' is not numbers"),
        ("fc1", "weight", np.full((3, 4), np.nan), "node 'fc1': weight holds NaN"),
    ],
)
def test_a_broken_node_is_one_line_naming_the_file(tmp_path, node, field, value, match):
    path = with_field(tmp_path, node, field, value)
    for read in (Simulator, load_graph, lambda p: profile_nir(p, np.zeros((3, 1, 4)))):
        with pytest.raises(ValueError, match=f"^{path}: {match}"):
            read(path)


def test_not_hdf5_and_missing_files(tmp_path):
    path = tmp_path / "g.nir"
    path.write_text("not a graph")
    with pytest.raises(ValueError, match=f"^{path}: not a readable NIR graph .not an HDF5 file"):
        Simulator(path)
    with pytest.raises(FileNotFoundError, match=f"^{tmp_path / 'none.nir'}: no such NIR file"):
        Simulator(tmp_path / "none.nir")
