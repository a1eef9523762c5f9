"""The compiler on NIR graphs from other frameworks, from files, on the user's own spikes
(issue 15, item 4): ``export.loihi``, ``export.lava compile`` and ``export.map`` with
``--input spikes.npy`` and no dataset.

Graphs: written by SpikingJelly's exporter (``nir_exchange.export_to_nir``), by Norse's
(``norse.torch.to_nir``) and by hand with ``nir.write`` (Affine, Conv2d, LIF, CubaLIF, IF,
SumPool2d, Flatten). Each is scaled so that every layer spikes on its input. snnTorch's
exporter fails nir 1.0.8's type inference: pinned below so we learn when it is fixed.
"""

from __future__ import annotations

import csv
import itertools
import subprocess
import sys
import warnings
from pathlib import Path

import nir
import numpy as np
import pytest
import torch

from export.lava import lava_python, load_results, load_run
from export.loihi import main as loihi_main
from export.map import main as map_main
from export.sim import Simulator

T, B = 8, 4
NORSE_DT = 1e-3  # Norse's own step; its graphs carry no dt_s


def _write(path: Path, graph: nir.NIRGraph) -> Path:
    nir.write(path, graph)
    return path


def _spikes(rng: np.random.Generator, shape: tuple[int, ...], p: float) -> np.ndarray:
    return rng.random(shape) < p  # bool spikes, time-first


def _sj_graph(folder: Path) -> dict:
    """SpikingJelly multi-step conv -> LIF -> flatten -> linear -> IF, exported by SpikingJelly."""
    sj = pytest.importorskip("spikingjelly.activation_based.nir_exchange")
    from spikingjelly.activation_based import functional, layer, neuron

    torch.manual_seed(0)
    net = torch.nn.Sequential(
        layer.Conv2d(2, 8, 3, padding=1), neuron.LIFNode(tau=2.0),
        layer.Flatten(), layer.Linear(8 * 8 * 8, 10), neuron.IFNode(),
    )  # fmt: skip
    functional.set_step_mode(net, "m")
    with torch.no_grad():  # well-scaled: every layer spikes on the input below
        net[0].weight.mul_(6)
        net[3].weight.mul_(8)
    x = _spikes(np.random.default_rng(0), (T, B, 2, 8, 8), 0.3)
    xt = torch.as_tensor(x, dtype=torch.float32)
    graph = sj.export_to_nir(net, xt)
    with torch.no_grad():
        out = net(xt)  # [T, B, 10] SpikingJelly's own spikes of the last layer
    np.save(folder / "sj_in.npy", x)
    return {"nir": _write(folder / "sj.nir", graph), "input": folder / "sj_in.npy",
            "layers": ["_1", "_4"], "dt": None, "torch_out": ("_4", int(out.sum()))}  # fmt: skip


def _norse_graph(folder: Path) -> dict:
    """Norse linear -> LIFBox -> linear -> LIF (CubaLIF) -> linear -> IAF, exported by Norse.

    Norse 1.1.0 writes ``tau = dt / tau_mem_inv``: ``dt=1.0`` gives tau in seconds (see
    :func:`test_norse_exporter_writes_dt_over_tau_inv`); the graph then runs at Norse's 1 ms.
    Parameters are per neuron (scalars make ``nir.write`` fail: h5py refuses compression of
    0-d datasets) and the sample has no batch axis (nirtorch would put it in the Input shape).
    """
    norse = pytest.importorskip("norse.torch")
    torch.manual_seed(1)
    box = norse.LIFBoxParameters(tau_mem_inv=torch.full((16,), 100.0), v_th=torch.ones(16),
                                 v_leak=torch.zeros(16), v_reset=torch.zeros(16))  # fmt: skip
    cuba = norse.LIFParameters(tau_mem_inv=torch.full((10,), 100.0),
                               tau_syn_inv=torch.full((10,), 200.0), v_th=torch.ones(10),
                               v_leak=torch.zeros(10), v_reset=torch.zeros(10))  # fmt: skip
    iaf = norse.IAFParameters(v_th=torch.ones(5), v_reset=torch.zeros(5))
    net = norse.SequentialState(
        torch.nn.Linear(20, 16), norse.LIFBoxCell(box), torch.nn.Linear(16, 10),
        norse.LIFCell(cuba), torch.nn.Linear(10, 5), norse.IAFCell(iaf),
    )  # fmt: skip
    with torch.no_grad():  # well-scaled at 1 ms: the first layers integrate 10% per step
        net[0].weight.mul_(20)
        net[2].weight.mul_(150)
        net[4].weight.mul_(4000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nirtorch's torch.jit deprecation warning
        graph = norse.to_nir(net, torch.rand(20), dt=1.0)
    x = _spikes(np.random.default_rng(1), (20, 3, 20), 0.3)
    np.save(folder / "norse_in.npy", x)
    return {"nir": _write(folder / "norse.nir", graph), "input": folder / "norse_in.npy",
            "layers": ["1", "3", "5"], "dt": NORSE_DT, "torch_out": None}  # fmt: skip


def _hand_graph(folder: Path) -> dict:
    """Conv2d -> IF -> SumPool2d -> Flatten -> Affine -> LIF -> Affine -> CubaLIF, by nir."""
    rng = np.random.default_rng(2)
    f32 = np.float32
    nodes = {
        "input": nir.Input({"input": np.array([2, 8, 8])}),
        "conv": nir.Conv2d(
            (8, 8), rng.normal(0.0, 0.4, (4, 2, 3, 3)).astype(f32), 1, 1, 1, 1, np.zeros(4, f32)
        ),
        "if1": nir.IF(
            r=np.full((4, 8, 8), 1e4, f32),
            v_threshold=np.ones((4, 8, 8), f32),
            v_reset=np.zeros((4, 8, 8), f32),
        ),
        "pool": nir.SumPool2d(np.array([2, 2]), np.array([2, 2]), np.array([0, 0])),
        "flat": nir.Flatten({"input": np.array([4, 4, 4])}, 0, -1),
        "fc1": nir.Affine(rng.normal(0.0, 0.3, (16, 64)).astype(f32), np.zeros(16, f32)),
        "lif": nir.LIF(
            tau=np.full(16, 2e-4, f32),
            r=np.ones(16, f32),
            v_leak=np.zeros(16, f32),
            v_threshold=np.ones(16, f32),
            v_reset=np.zeros(16, f32),
        ),
        "fc2": nir.Affine(rng.normal(0.5, 1.0, (6, 16)).astype(f32), np.zeros(6, f32)),
        "cuba": nir.CubaLIF(
            tau_syn=np.full(6, 2e-4, f32),
            tau_mem=np.full(6, 4e-4, f32),
            r=np.full(6, 2.0, f32),
            v_leak=np.zeros(6, f32),
            v_threshold=np.ones(6, f32),
            v_reset=np.zeros(6, f32),
        ),
        "output": nir.Output({"output": np.array([6])}),
    }
    names = list(nodes)
    graph = nir.NIRGraph(nodes, list(itertools.pairwise(names)))
    x = _spikes(rng, (T, B, 2, 8, 8), 0.3)
    np.save(folder / "hand_in.npy", x)
    return {"nir": _write(folder / "hand.nir", graph), "input": folder / "hand_in.npy",
            "layers": ["if1", "lif", "cuba"], "dt": None, "torch_out": None}  # fmt: skip


BUILDERS = {"spikingjelly": _sj_graph, "norse": _norse_graph, "hand": _hand_graph}


@pytest.fixture(scope="module", params=list(BUILDERS))
def foreign(request, tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp(request.param)
    return {"name": request.param, **BUILDERS[request.param](folder)}


def _dt_args(g: dict) -> list[str]:
    return [] if g["dt"] is None else ["--dt", str(g["dt"])]


def _float_spikes(g: dict) -> dict[str, np.ndarray]:
    """export.sim's spikes per layer ``[T, B, ...]`` on the graph's input (the reference)."""
    sim = Simulator(nir.read(g["nir"]), g["dt"] or 1e-4)
    out = sim.run(np.load(g["input"]).astype(np.float32), record=g["layers"])
    return {k: v.numpy() for k, v in out.items()}


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path) as f:
        return list(csv.DictReader(f))


# fixed point agrees with float on at least this share of all neuron-steps (measured: 99.94%
# SpikingJelly, 96.67% Norse (a CubaLIF of 10 ms and an IF of 5 ms), 99.42% hand-built)
MIN_AGREEMENT = {"spikingjelly": 99.5, "norse": 95.0, "hand": 99.0}


def test_loihi_on_the_users_input(foreign, tmp_path, capsys):
    """export.loihi GRAPH.nir --input: exit 0, three files, one row per neuron layer whose float
    spikes are export.sim's (and SpikingJelly's own), fixed point within the measured bound."""
    out = tmp_path / "loihi"
    argv = [str(foreign["nir"]), "--input", str(foreign["input"]), "--out", str(out)]
    assert loihi_main(argv + _dt_args(foreign)) == 0
    text = capsys.readouterr().out
    assert "no classes (the user's input)" in text and "calibrated on the user's input" in text
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["loihi.txt", "loihi_summary.csv", "loihi_layers.csv"]
    )
    layers = _rows(out / "loihi_layers.csv")
    assert [r["layer"] for r in layers] == foreign["layers"]
    ref = _float_spikes(foreign)
    for row in layers:
        assert int(row["float_spikes"]) == int(ref[row["layer"]].sum()) > 0
        assert abs(int(row["fixed_spikes"]) - int(row["float_spikes"])) <= 0.2 * int(
            row["float_spikes"]
        )
        step = row["first_divergence_step"]
        assert step == "" or 0 <= int(step) < ref[row["layer"]].shape[0]
    if foreign["torch_out"]:
        layer, spikes = foreign["torch_out"]  # the framework's own forward pass
        assert int(next(r for r in layers if r["layer"] == layer)["float_spikes"]) == spikes
    summary = _rows(out / "loihi_summary.csv")
    assert [r["model"] for r in summary] == ["float", "fixed (aligned)"]
    assert "top1_pct" not in summary[0]
    assert int(summary[0]["spikes"]) == sum(int(v.sum()) for v in ref.values())
    assert float(summary[1]["agreement_pct"]) >= MIN_AGREEMENT[foreign["name"]]
    assert int(summary[1]["u_wrapped"]) == 0


def test_lava_compile_writes_a_run_file(foreign, tmp_path, capsys):
    """export.lava compile (main venv): the run file holds one Lava layer per neuron node and
    the sample's spikes, zero-padded by the depth; the expected run is export.loihi's."""
    from export.lava.cli import main as lava_main
    from export.loihi import quantize_on_input, simulate_quantized

    out = tmp_path / "run.npz"
    argv = ["compile", str(foreign["nir"]), str(out), "--input", str(foreign["input"]),
            "--sample", "1", *_dt_args(foreign)]  # fmt: skip
    assert lava_main(argv) == 0
    assert "export.lava run" in capsys.readouterr().out
    graph, inputs, _ = load_run(out)
    assert [layer.name for layer in graph.layers] == foreign["layers"]
    x = np.load(foreign["input"])
    (given,) = inputs.values()
    depth = given.shape[0] - x.shape[0]
    assert depth >= len(foreign["layers"])  # one step per Dense/Conv on every path
    np.testing.assert_array_equal(given[: x.shape[0]], x[:, 1])
    assert not given[x.shape[0] :].any()
    expected = load_results(out.with_name("run.expected.npz"))
    q, _ = quantize_on_input(foreign["nir"], foreign["input"], dt=foreign["dt"])
    run = simulate_quantized(q, x[:, 1:2].astype(np.int64), align=False)
    for layer in foreign["layers"]:
        np.testing.assert_array_equal(expected[layer]["s"], run.values[layer][:, 0])


def test_lava_runs_the_compiled_graph(foreign, tmp_path, capsys):
    """With .venv-lava: Lava's s, u, v equal export.loihi's at every step of every layer."""
    if lava_python() is None:
        pytest.skip("no Lava environment (.venv-lava with Python 3.10): run `make lava-env`")
    from export.lava.cli import main as lava_main

    argv = ["compile", str(foreign["nir"]), str(tmp_path / "run.npz"), "--input",
            str(foreign["input"]), "--run", *_dt_args(foreign)]  # fmt: skip
    assert lava_main(argv) == 0
    text = capsys.readouterr().out
    rows = [line.split() for line in text.splitlines() if line.split()[:1] in [[n] for n in
            foreign["layers"]]]  # fmt: skip
    assert len(rows) == len(foreign["layers"]) and all(r[-1] == "yes" for r in rows)


def test_map_on_the_users_input(foreign, tmp_path):
    """export.map GRAPH.nir --input: right neuron counts, spikes per step measured on the
    input (export.sim's spikes / (T x B))."""
    out = tmp_path / "map"
    argv = [str(foreign["nir"]), "--input", str(foreign["input"]), "--out", str(out)]
    assert map_main(argv + _dt_args(foreign)) == 0
    rows = {r["layer"]: r for r in _rows(out / "mapping.csv")}
    ref = _float_spikes(foreign)
    for layer in foreign["layers"]:
        t, b, *shape = ref[layer].shape
        assert int(rows[layer]["neurons"]) == int(np.prod(shape))
        want = ref[layer].sum() / (t * b)
        assert float(rows[layer]["spikes_per_step"]) == pytest.approx(want, abs=0.005)  # 2 decimals
    assert "measured on" in (out / "mapping.txt").read_text()


def test_one_sample_input_gets_a_batch_axis(tmp_path):
    """``[T, *shape]`` is one sample: the same figures as its ``[T, 1, *shape]``."""
    g = _hand_graph(tmp_path)
    x = np.load(g["input"])[:, 0]  # [T, 2, 8, 8]
    np.save(tmp_path / "one.npy", x)
    np.save(tmp_path / "one_b.npy", x[:, None])
    outs = []
    for name in ("one", "one_b"):
        out = tmp_path / name
        assert loihi_main([str(g["nir"]), "--input", str(tmp_path / f"{name}.npy"), "--out",
                           str(out)]) == 0  # fmt: skip
        outs.append((out / "loihi_layers.csv").read_text())
    assert outs[0] == outs[1]


def test_bad_input_is_one_line_exit_2(tmp_path, capsys):
    g = _hand_graph(tmp_path)
    nirf = str(g["nir"])
    # no --input and no dataset
    assert loihi_main([nirf, "--data", str(tmp_path / "nodata")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no --input given" in err
    # a shape that is not the graph's: both shapes named, by every command
    np.save(tmp_path / "bad.npy", np.zeros((T, B, 3, 8, 8), bool))
    bad = str(tmp_path / "bad.npy")
    from export.lava.cli import main as lava_main

    for run in (
        lambda: loihi_main([nirf, "--input", bad, "--out", str(tmp_path / "o")]),
        lambda: map_main([nirf, "--input", bad, "--out", str(tmp_path / "m")]),
        lambda: lava_main(["compile", nirf, str(tmp_path / "r.npz"), "--input", bad]),
    ):
        assert run() == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1
        assert "(8, 4, 3, 8, 8)" in err and "(2, 8, 8)" in err
    assert not (tmp_path / "o").exists() and not (tmp_path / "r.npz").exists()


def test_a_node_lava_cannot_run_is_named(tmp_path, capsys):
    """An LI node (no spikes): one line naming the node and its type."""
    f32 = np.float32
    graph = nir.NIRGraph(
        {"input": nir.Input({"input": np.array([4])}),
         "fc": nir.Affine(np.eye(4, dtype=f32), np.zeros(4, f32)),
         "li": nir.LI(tau=np.full(4, 2e-4, f32), r=np.ones(4, f32), v_leak=np.zeros(4, f32)),
         "output": nir.Output({"output": np.array([4])})},
        [("input", "fc"), ("fc", "li"), ("li", "output")],
    )  # fmt: skip
    path = _write(tmp_path / "li.nir", graph)
    np.save(tmp_path / "x.npy", np.ones((T, 4), bool))
    assert loihi_main([str(path), "--input", str(tmp_path / "x.npy"), "--out",
                       str(tmp_path / "o")]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'li'" in err and "LI" in err


@pytest.mark.filterwarnings("ignore:nirtorch.extract_nir_graph is being deprecated")
def test_snntorch_exporter_fails_type_inference():
    """snnTorch 1.0.0's export_to_nir fails nir 1.0.8's type inference, with and without a
    batch axis in the sample (docs/export.md). When this test fails, the exporter works:
    add snnTorch graphs to the builders above."""
    snn = pytest.importorskip("snntorch")
    from snntorch.export_nir import export_to_nir

    net = torch.nn.Sequential(
        torch.nn.Linear(20, 16), snn.Leaky(beta=0.9, init_hidden=True),
        torch.nn.Linear(16, 5), snn.Leaky(beta=0.9, init_hidden=True, output=True),
    )  # fmt: skip
    with pytest.raises(ValueError, match=r"type mismatch: input.output: \[\[ 1 20\]\] -> 0"):
        export_to_nir(net, torch.rand(1, 20))
    with pytest.raises(ValueError, match=r"type mismatch: 0.output: \[\[16\]\] -> 1.input: \[\]"):
        export_to_nir(net, torch.rand(20))


def test_norse_exporter_writes_dt_over_tau_inv():
    """Norse 1.1.0 writes ``tau = dt / tau_mem_inv`` (its importer reads ``1 / tau``): with the
    default dt = 1 ms a 10 ms membrane becomes 10 µs. Export with ``dt=1.0`` (docs/export.md)."""
    norse = pytest.importorskip("norse.torch")
    p = norse.LIFBoxParameters(tau_mem_inv=torch.full((3,), 100.0), v_th=torch.ones(3),
                               v_leak=torch.zeros(3), v_reset=torch.zeros(3))  # fmt: skip
    net = norse.SequentialState(torch.nn.Linear(2, 3), norse.LIFBoxCell(p))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        taus = [float(np.asarray(norse.to_nir(net, torch.rand(2), dt=dt).nodes["1"].tau)[0])
                for dt in (1e-3, 1.0)]  # fmt: skip
    assert taus == pytest.approx([1e-5, 1e-2])


def test_shared_input_loader():
    """export.inputs: [T, *shape] gains a batch axis, [T, B, *shape] passes, else both shapes."""
    from export.inputs import time_first

    nodes = {"x": nir.Input({"input": np.array([3, 2])})}
    arrays, single = time_first({"x": np.zeros((5, 3, 2))}, nodes)
    assert single and arrays["x"].shape == (5, 1, 3, 2)
    arrays, single = time_first({"x": np.zeros((5, 4, 3, 2))}, nodes)
    assert not single and arrays["x"].shape == (5, 4, 3, 2)
    with pytest.raises(ValueError, match=r"shape \(5, 2, 3\) but .* shape \(3, 2\)"):
        time_first({"x": np.zeros((5, 2, 3))}, nodes)


def test_lava_compile_module_imports_without_torch_or_nir():
    """export.lava.compile imports torch and nir only when it compiles, as the Lava venv needs."""
    from export.lava import REPO_ROOT

    block = "import sys; sys.modules['torch'] = sys.modules['nir'] = None"
    code = f"{block}; import export.lava.compile"
    subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, check=True)
