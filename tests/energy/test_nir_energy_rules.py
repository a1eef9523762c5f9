"""Energy of hand-built NIR graphs, node type by node type, checked by hand; refusals; the CLI
``python -m energy.profile GRAPH.nir --input spikes.npy`` (issue 15, item 3)."""

from __future__ import annotations

from itertools import pairwise

import nir
import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from energy.profile import main, profile_nir
from export.sim import simulate

T, B = 5, 2


def spikes(shape: tuple[int, ...], rate: float = 0.4, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).random(shape) < rate).astype(np.float32)


def full(n: int | tuple[int, ...], value: float) -> np.ndarray:
    return np.full(n, value, dtype=np.float64)


def lif(shape: int | tuple[int, ...], tau_s: float = 2e-4) -> nir.LIF:
    return nir.LIF(
        tau=full(shape, tau_s),
        r=full(shape, 2.0),
        v_leak=full(shape, 0.0),
        v_threshold=full(shape, 1.0),
        v_reset=full(shape, 0.0),
    )


def conv_pool_graph() -> nir.NIRGraph:
    """Input [2, 6, 6] -> Conv2d 3x3 (pad 1, bias) -> LIF -> SumPool2d 2 -> Flatten -> Affine
    (27 -> 4, zero bias) -> LIF -> Output."""
    rng = np.random.default_rng(1)
    nodes = {
        "input": nir.Input(input_type={"input": np.array([2, 6, 6])}),
        "conv": nir.Conv2d(
            input_shape=(6, 6),
            weight=rng.normal(0, 0.8, (3, 2, 3, 3)),
            stride=1,
            padding=1,
            dilation=1,
            groups=1,
            bias=full(3, 0.1),
        ),
        "lif1": lif((3, 6, 6)),
        "pool": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=0),
        "flat": nir.Flatten(input_type={"input": np.array([3, 3, 3])}, start_dim=0),
        "fc": nir.Affine(weight=rng.normal(0, 0.4, (4, 27)), bias=full(4, 0.0)),
        "lif2": lif(4),
        "output": nir.Output(output_type={"output": np.array([4])}),
    }
    chain = list(nodes)
    return nir.NIRGraph(nodes, list(pairwise(chain)), type_check=False)


def snn_layers(report) -> pd.DataFrame:
    return report.layers[report.layers["model"] == "snn"].set_index("layer")


def test_conv_lif_sumpool_flatten_affine_by_hand():
    graph = conv_pool_graph()
    x = spikes((T, B, 2, 6, 6), seed=2)
    report = profile_nir(graph, x)
    rows, snn = snn_layers(report), report.row("snn")
    rec = simulate(graph, x, record="all")
    s1, pooled, s2 = rec["lif1"].numpy(), rec["pool"].numpy(), rec["lif2"].numpy()
    assert s1.sum() > 0 and s2.sum() > 0 and report.samples == B
    # conv SOPs: each output position accumulates the input events of its window, for each
    # of the 3 output channels (a ones kernel [3, 2, 3, 3] sums exactly that); per sample
    ones = torch.ones(3, 2, 3, 3)
    conv_sops = F.conv2d(torch.as_tensor(x).flatten(0, 1), ones, padding=1).sum().item() / B
    assert rows.loc["conv", "sops"] == conv_sops
    assert rows.loc["conv", "adds"] == T * 3 * 6 * 6  # bias, per output element
    assert rows.loc["lif1", "neuron_updates"] == T * 108
    assert rows.loc["lif1", "spikes_out"] == s1.sum() / B
    assert rows.loc["pool", "adds"] == T * (108 - 27)  # 4 values summed into each output
    assert rows.loc["pool", "macs"] == 0  # a sum pool does not divide
    # sums of spikes are integers: the Affine stays event-driven, value x fan-out (4)
    assert rows.loc["fc", "sops"] == pooled.sum() * 4 / B
    assert rows.loc["fc", "macs"] == 0 and rows.loc["fc", "adds"] == 0  # zero bias: none
    assert rows.loc["lif2", "spikes_out"] == s2.sum() / B
    assert "flat" not in rows.index and "input" not in rows.index  # free
    assert snn["neuron_updates"] == T * (108 + 4)
    assert snn["dense_macs"] == T * (108 * 2 * 9 + 27 * 4)
    assert snn["macs"] == 0
    assert report.row("ann")["macs"] == snn["dense_macs"]
    assert report.row("ann")["neuron_updates"] == 0


def mixed_graph() -> nir.NIRGraph:
    """Fan-in into a CubaLIF, Scale, LI, CubaLI; Threshold -> IF -> I (all n = 3 or 4)."""
    rng = np.random.default_rng(3)
    n = 3
    cuba = dict(tau_syn=full(n, 2e-4), tau_mem=full(n, 4e-4), r=full(n, 4.0), v_leak=full(n, 0))
    nodes = {
        "input": nir.Input(input_type={"input": np.array([4])}),
        "a": nir.Affine(weight=rng.normal(0, 2, (n, 4)), bias=full(n, 0.5)),
        "b": nir.Linear(weight=rng.normal(0, 2, (n, 4))),
        "cuba": nir.CubaLIF(**cuba, v_threshold=full(n, 0.5), v_reset=full(n, 0), w_in=full(n, 2)),
        "scale": nir.Scale(scale=full(n, 0.5)),
        "li": nir.LI(tau=full(n, 2e-4), r=full(n, 1.0), v_leak=full(n, 0.0)),
        "cubali": nir.CubaLI(**cuba),
        "thr": nir.Threshold(threshold=full(4, 0.5)),
        "if": nir.IF(r=full(4, 1e4), v_threshold=full(4, 1.5), v_reset=full(4, 0.0)),
        "i": nir.I(r=full(4, 1.0)),
        "out1": nir.Output(output_type={"output": np.array([n])}),
        "out2": nir.Output(output_type={"output": np.array([n])}),
        "out3": nir.Output(output_type={"output": np.array([4])}),
    }
    edges = [
        ("input", "a"),
        ("input", "b"),
        ("a", "cuba"),
        ("b", "cuba"),
        ("cuba", "scale"),
        ("scale", "li"),
        ("scale", "cubali"),
        ("li", "out1"),
        ("cubali", "out2"),
        ("li", "out2"),  # an Output summing two edges
        ("input", "thr"),
        ("thr", "if"),
        ("if", "i"),
        ("i", "out3"),
    ]
    return nir.NIRGraph(nodes, edges, type_check=False)


def test_every_neuron_type_fan_in_and_scale_by_hand():
    graph = mixed_graph()
    x = spikes((T, B, 4), seed=5)
    rec = simulate(graph, x, record="all")
    report = profile_nir(graph, x)
    rows = snn_layers(report)
    events = x.sum() / B  # input spikes per sample
    assert rows.loc["a", "sops"] == rows.loc["b", "sops"] == events * 3
    assert rows.loc["a", "adds"] == T * 3 and rows.loc["b", "adds"] == 0  # Linear: no bias
    # two edges into the CubaLIF: their sum is one add per element and step
    assert rows.loc["cuba:add", "adds"] == T * 3 and rows.loc["cuba:add", "kind"] == "elementwise"
    assert rows.loc["out2:add", "adds"] == T * 3 and "out2" not in rows.index
    assert rows.loc["scale", "macs"] == T * 3  # one multiply per element (dense)
    for name, n in (("cuba", 3), ("li", 3), ("cubali", 3), ("thr", 4), ("if", 4), ("i", 4)):
        assert rows.loc[name, "kind"] == "neuron"
        assert rows.loc[name, "neuron_updates"] == T * n, name
    for name in ("cuba", "thr", "if"):  # spiking neurons
        assert rows.loc[name, "spikes_out"] == rec[name].sum().item() / B > 0, name
    for name in ("li", "cubali", "i"):  # their output is a voltage, not spikes
        assert rows.loc[name, "spikes_out"] == 0, name
    # simple convention: a membrane is read and written per update; Threshold has none
    assert rows.loc["if", "potential_reads"] == T * 4
    assert rows.loc["li", "potential_writes"] == T * 3
    assert rows.loc["thr", "potential_reads"] == 0
    # I reads the IF's spikes, LI a Scale of spikes: no synapse, so no SOPs anywhere else
    assert report.row("snn")["sops"] == 2 * events * 3


def test_a_nested_graph_counts_as_its_flat_twin():
    inner = conv_pool_graph()
    outer = nir.NIRGraph(
        {
            "input": nir.Input(input_type={"input": np.array([2, 6, 6])}),
            "net": inner,
            "output": nir.Output(output_type={"output": np.array([4])}),
        },
        [("input", "net"), ("net", "output")],
        type_check=False,
    )
    x = spikes((T, B, 2, 6, 6), seed=4)
    nested, flat = profile_nir(outer, x), profile_nir(inner, x)
    assert list(snn_layers(nested).index) == ["net." + n for n in snn_layers(flat).index]
    for col in ("sops", "neuron_updates", "spikes_out", "adds", "total_j"):
        assert nested.row("snn")[col] == flat.row("snn")[col], col


def test_two_input_nodes_by_name(tmp_path, capsys):
    nodes = {
        "left": nir.Input(input_type={"input": np.array([3])}),
        "right": nir.Input(input_type={"input": np.array([3])}),
        "lif": lif(3),
        "output": nir.Output(output_type={"output": np.array([3])}),
    }
    edges = [("left", "lif"), ("right", "lif"), ("lif", "output")]
    graph = nir.NIRGraph(nodes, edges, type_check=False)
    a, b = spikes((T, B, 3), seed=1), spikes((T, B, 3), seed=2)
    rows = snn_layers(profile_nir(graph, {"left": a, "right": b}))
    assert rows.loc["lif:add", "adds"] == T * 3 and rows.loc["lif", "neuron_updates"] == T * 3
    with pytest.raises(ValueError, match="pass a dict name -> array"):
        profile_nir(graph, a)
    with pytest.raises(ValueError, match="disagree on"):
        profile_nir(graph, {"left": a, "right": b[:, :1]})
    nir.write(tmp_path / "two.nir", graph)
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "b.npy", b)
    args = [str(tmp_path / "two.nir"), "--out", str(tmp_path / "out")]
    assert (
        run(
            [
                *args,
                "--input",
                f"left={tmp_path / 'a.npy'}",
                "--input",
                f"right={tmp_path / 'b.npy'}",
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert run([*args, "--input", str(tmp_path / "a.npy")]) == 2
    assert "Input nodes ['left', 'right']" in capsys.readouterr().err


def test_real_valued_input_costs_dense_macs():
    graph = conv_pool_graph()
    x = np.random.default_rng(6).random((T, B, 2, 6, 6)).astype(np.float32)  # pixels
    rows = snn_layers(profile_nir(graph, x))
    assert rows.loc["conv", "sops"] == 0
    assert rows.loc["conv", "macs"] == rows.loc["conv", "dense_macs"] == T * 108 * 18
    assert np.isnan(rows.loc["conv", "rate_in"])  # no firing rate of real values


def test_layouts_and_per_sample_spread():
    graph = conv_pool_graph()
    x = spikes((T, 3, 2, 6, 6), seed=7)
    report = profile_nir(graph, x)  # auto: [T, B, 2, 6, 6] from the declared [2, 6, 6]
    assert report.samples == 3 and report.row("snn")["total_j_std"] > 0
    singles = [profile_nir(graph, x[:, b]).row("snn")["sops"] for b in range(3)]
    assert report.row("snn")["sops"] == pytest.approx(np.mean(singles), rel=1e-12)
    assert profile_nir(graph, x[:, 0], layout="T").samples == 1


def with_bad(x: np.ndarray) -> np.ndarray:
    """``x`` with one NaN and one infinity."""
    x = x.copy()
    x.flat[3], x.flat[-1] = np.nan, np.inf
    return x


def untyped_graph() -> nir.NIRGraph:
    nodes = {
        "input": nir.Input(input_type={"input": None}),
        "fc": nir.Linear(weight=np.ones((2, 3))),
        "lif": lif(2),
        "output": nir.Output(output_type={"output": None}),
    }
    return nir.NIRGraph(
        nodes, [("input", "fc"), ("fc", "lif"), ("lif", "output")], type_check=False
    )


def delay_graph() -> nir.NIRGraph:
    nodes = {
        "input": nir.Input(input_type={"input": np.array([3])}),
        "wait": nir.Delay(delay=full(3, 2e-4)),
        "output": nir.Output(output_type={"output": np.array([3])}),
    }
    return nir.NIRGraph(nodes, [("input", "wait"), ("wait", "output")], type_check=False)


@pytest.mark.parametrize(
    ("graph", "value", "kwargs", "match"),
    [
        (delay_graph, spikes((T, 1, 3)), {}, "node 'wait': NIR type Delay has no energy"),
        (conv_pool_graph, spikes((T, 2, 6)), {}, "give [T, 2, 6, 6] (one sample)"),
        (conv_pool_graph, spikes((T, 1, 2, 6, 6)), {"layout": "T"}, "must be [T, 2, 6, 6] as"),
        (conv_pool_graph, with_bad(spikes((T, 2, 6, 6))), {}, "2 values are NaN or infinite"),
        (conv_pool_graph, np.array([["a"]]), {}, "expected numbers"),
        (conv_pool_graph, {"x": spikes((T, 2, 6, 6))}, {}, "not graph Input nodes"),
        (conv_pool_graph, spikes((0, 1, 2, 6, 6)), {}, "no samples to profile"),
        (conv_pool_graph, spikes((T, 2, 6, 6)), {"dt": -1.0}, "dt must be"),
        (conv_pool_graph, spikes((T, 2, 6, 6)), {"layout": "BT"}, "layout must be"),
        (conv_pool_graph, spikes((T, 2, 6, 6)), {"convention": "x"}, "unknown convention"),
        (untyped_graph, spikes((T, 2, 3)), {}, "declares no shape"),
    ],
)
def test_bad_graphs_and_inputs_are_one_line(graph, value, kwargs, match):
    with pytest.raises(ValueError) as err:
        profile_nir(graph(), value, **kwargs)
    assert match in str(err.value)
    assert "\n" not in str(err.value)


def test_untyped_input_with_a_stated_layout():
    x = spikes((T, 2, 3), seed=8)
    one = profile_nir(untyped_graph(), x[:, 0], layout="T")
    both = profile_nir(untyped_graph(), x, layout="TB")
    assert one.samples == 1 and both.samples == 2
    assert one.row("snn")["sops"] == x[:, 0].sum() * 2


# -- the command ------------------------------------------------------------------------------


def run(args: list[str]) -> int:
    try:
        return main(args)
    except SystemExit as exc:
        return int(exc.code)


@pytest.fixture
def graph_file(tmp_path):
    path = tmp_path / "pool.nir"
    nir.write(path, conv_pool_graph())
    return path


def test_cli_profiles_a_graph_file(graph_file, tmp_path, capsys):
    x = spikes((T, B, 2, 6, 6), seed=9)
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "out"
    args = [str(graph_file), "--input", str(tmp_path / "x.npy"), "--out", str(out)]
    assert run([*args, "--convention", "lemaire", "--costs", "horowitz45"]) == 0
    text = capsys.readouterr().out
    assert "(NIR graph), 2 samples" in text and "Total estimated energy" in text
    for name in ("summary.csv", "layers.csv", "energy.png", "table.txt"):
        assert (out / name).stat().st_size > 0
    assert (out / "energy.png").read_bytes()[:4] == b"\x89PNG"
    summary = pd.read_csv(out / "summary.csv")
    want = profile_nir(graph_file, x, costs="horowitz45", convention="lemaire").summary
    assert list(summary["model"]) == ["ann", "snn"]
    assert summary["sops"].tolist() == want["sops"].tolist()
    assert summary["total_j"].tolist() == pytest.approx(want["total_j"].tolist(), rel=1e-9)
    assert set(pd.read_csv(out / "layers.csv")["layer"]) >= {"conv", "lif1", "pool", "fc"}
    # one sample [T, ...] from a one-array .npz, the Input named
    np.savez(tmp_path / "one.npz", spikes=x[:, 0])
    args = [str(graph_file), "--input", f"input={tmp_path / 'one.npz'}", "--out", str(out)]
    assert run(args) == 0
    assert pd.read_csv(out / "summary.csv")["samples"].tolist() == [1, 1]


@pytest.mark.parametrize(
    ("make", "extra", "match"),
    [
        (None, [], "needs --input"),
        ("x.npy:short", ["--input", "X"], "give [T, 2, 6, 6]"),
        ("x.npy:nan", ["--input", "X"], "NaN or infinite"),
        ("x.npy:text", ["--input", "X"], "expected numbers"),
        ("x.npy:ok", ["--input", "X", "--baseline", "teacher:T.pt"], "dense twin only"),
        ("x.npy:ok", ["--input", "X", "--dt", "0"], "dt must be"),
        ("missing", ["--input", "X"], "no such input file"),
        ("bad.nir", ["--input", "X"], "not a readable NIR graph"),
        ("delay.nir", ["--input", "X"], "NIR type Delay has no energy counting rule"),
        ("model.pt", ["--input", "X"], "--input is for NIR graphs"),
        ("x.npy:ok", ["--input", "X", "--input", "X"], "a second value for the same Input"),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(graph_file, tmp_path, capsys, make, extra, match):
    data = tmp_path / "x.npy"
    graph = graph_file
    kind = make.split(":")[-1] if make else ""
    arrays = {
        "short": spikes((T, 2, 6)),
        "nan": np.full((T, 2, 6, 6), np.nan),
        "text": np.array(["spikes"]),
        "ok": spikes((T, 2, 6, 6)),
    }
    if kind in arrays:
        np.save(data, arrays[kind])
    else:
        np.save(data, spikes((T, 3)))
    if make == "missing":
        data = tmp_path / "none.npy"
    elif make == "bad.nir":
        graph = tmp_path / "bad.nir"
        graph.write_bytes(b"not hdf5")
    elif make == "delay.nir":
        graph = tmp_path / "delay.nir"
        nir.write(graph, delay_graph())
    elif make == "model.pt":
        graph = tmp_path / "model.pt"
    extra = [str(data) if a == "X" else a for a in extra]
    assert run([str(graph), "--out", str(tmp_path / "out"), *extra]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and match in err, err
