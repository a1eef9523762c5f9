"""Fuzzed export readers (issue 16): a Lava run file, a host program and a NIR graph, truncated
or with bytes overwritten at random, either read as before or raise one of our error types
(``ValueError``, ``FileNotFoundError``), never another exception. Bounded for the default suite;
the ``slow`` variant tries more files.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import nir
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from export.graph import read_nir
from export.lava.exchange import load_run, save_run
from export.lava.graph import LIFQ, LavaGraph, LavaLayer, Synapse
from export.nir.host import HostProgram, HostReadout

OUR_ERRORS = (ValueError, FileNotFoundError)


def _run_file(path: Path) -> Path:
    rng = np.random.default_rng(1)
    layer = LavaLayer(
        "out", (4,), LIFQ(du=100, dv=200, vth=10), (Synapse("x", rng.integers(-9, 9, (4, 6))),)
    )
    return save_run(path, LavaGraph({"x": (6,)}, (layer,)), {"x": np.ones((3, 6), np.int8)})


def _host_file(path: Path) -> Path:
    import torch

    torch.manual_seed(0)
    readout = HostReadout("readout", ("features",), "out", (2, 2), torch.randn(4, 8), None)
    return HostProgram([readout]).save(path)


def _nir_file(path: Path) -> Path:
    lif = nir.LIF(tau=np.full(3, 2e-3), r=np.ones(3), v_leak=np.zeros(3), v_threshold=np.ones(3))
    nir.write(path, nir.NIRGraph.from_list(nir.Linear(np.eye(3, dtype=np.float32)), lif))
    return path


READERS = {  # name -> (writer of a valid file, reader)
    "run.npz": (_run_file, load_run),
    "g.host.pt": (_host_file, HostProgram.load),
    "g.nir": (_nir_file, read_nir),
}
VALID = {}


def valid_bytes(name: str) -> bytes:
    if name not in VALID:
        with tempfile.TemporaryDirectory() as tmp:
            VALID[name] = READERS[name][0](Path(tmp) / name).read_bytes()
    return VALID[name]


mutations = st.tuples(
    st.sampled_from(sorted(READERS)),
    st.floats(0.0, 1.0),  # keep this fraction of the file (1: all)
    st.lists(st.tuples(st.floats(0.0, 1.0, exclude_max=True), st.integers(0, 255)), max_size=8),
)


def check_mutation(case: tuple) -> None:
    name, keep, edits = case
    data = bytearray(valid_bytes(name))
    data = data[: max(0, round(len(data) * keep))]
    for where, value in edits:
        if data:
            data[int(where * len(data))] = value
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_bytes(bytes(data))
        try:
            READERS[name][1](path)
        except OUR_ERRORS:
            pass


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutations)
def test_mutated_files_read_or_raise_our_errors(case):
    check_mutation(case)


@pytest.mark.slow
@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutations)
def test_mutated_files_read_or_raise_our_errors_slow(case):
    check_mutation(case)


def test_valid_files_read():
    with tempfile.TemporaryDirectory() as tmp:
        for name, (write, read) in READERS.items():
            assert read(write(Path(tmp) / name)) is not None
