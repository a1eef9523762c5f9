"""Lava equivalence: Intel Lava's fixed-point run equals export.loihi's simulator, bit for bit.

Lava (lava-nc 0.10.0) runs in ``.venv-lava`` (Python 3.10, ``make lava-env``) through
:func:`export.lava.run_in_lava_env`; these tests skip with that reason when it is absent. The
reference for every layer is :func:`export.loihi.simulate_dense_lif`: a conv is the same
integer sum as its unrolled dense matrix, a chain feeds one layer's spikes to the next, and a
residual join of two Dense synapses is one Dense over the concatenated inputs (exact when both
matrices are mixed-sign with the same ``num_weight_bits`` and ``weight_exp``, so Lava truncates
each as it truncates their concatenation). NIR graphs quantised by :func:`export.loihi.quantize`
(and the micro FSVE's partition, slow) are checked against
:func:`export.loihi.simulate_quantized` with Lava's timing, through
:func:`export.lava.from_quantized`.
"""

from __future__ import annotations

import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

from export.lava import (
    LIFQ,
    LavaGraph,
    LavaLayer,
    NetxError,
    Synapse,
    from_quantized,
    lava_python,
    load_run,
    run_in_lava_env,
    save_run,
    write_netx,
)
from export.loihi import simulate_dense_lif

T = 61  # one sub-block of the built-in clips


@pytest.fixture(scope="module")
def lava():
    """Skips (with the reason printed by -ra) when the Lava environment is absent."""
    if lava_python() is None:
        pytest.skip("no Lava environment (.venv-lava with Python 3.10): run `make lava-env`")

    def run(graph: LavaGraph, inputs: dict[str, np.ndarray], **kw) -> dict:
        t0 = time.perf_counter()
        out = run_in_lava_env(graph, inputs, **kw)
        print(f"lava run: {time.perf_counter() - t0:.2f} s")
        return out

    return run


@pytest.fixture(scope="module")
def real_image(clips) -> np.ndarray:
    """Real spikes ``[T, 1, 12, 12]``: a 12x12 crop of the first sub-block of a test clip."""
    x = clips[0, 0, :T, 10:22, 10:22].numpy().astype(np.int64)  # [T, 12, 12]
    return x[:, None]


def _conv_as_dense(w: np.ndarray, in_shape: tuple, stride: int, padding: int) -> np.ndarray:
    """The dense matrix [C_out*Ho*Wo, C_in*H*W] of a cross-correlation (groups = 1)."""
    c_in, h, wd = in_shape
    c_out, _, kh, kw = w.shape
    ho, wo = (h + 2 * padding - kh) // stride + 1, (wd + 2 * padding - kw) // stride + 1
    m = np.zeros((c_out, ho, wo, c_in, h, wd), np.int64)
    for i in range(ho):
        for j in range(wo):
            for a in range(kh):
                for b in range(kw):
                    y, x = i * stride - padding + a, j * stride - padding + b
                    if 0 <= y < h and 0 <= x < wd:
                        m[:, i, j, :, y, x] = w[:, :, a, b]
    return m.reshape(c_out * ho * wo, c_in * h * wd)


def _even_weights(rng, shape, lo=-64, hi=64) -> np.ndarray:
    """Mixed-sign even weights: Dense truncation (lowest bit of mixed 8-bit) leaves them as
    they are, so a Conv (which Lava never truncates) and its unrolled Dense agree."""
    return 2 * rng.integers(lo // 2, hi // 2, shape)


def _sim(w, s_in, neuron: LIFQ, shape, weight_exp=0, num_weight_bits=8) -> dict:
    """simulate_dense_lif on flattened spikes, results reshaped to ``[T, *shape]``."""
    out = simulate_dense_lif(
        w,
        s_in.reshape(len(s_in), -1),
        du=neuron.du,
        dv=neuron.dv,
        vth=neuron.vth,
        bias_mant=np.broadcast_to(neuron.bias_mant, shape).reshape(-1),
        bias_exp=np.broadcast_to(neuron.bias_exp, shape).reshape(-1),
        weight_exp=weight_exp,
        num_weight_bits=num_weight_bits,
    )
    return {k: v.reshape(len(s_in), *shape) for k, v in out.items()}


def _assert_equal(lava_out: dict, ours: dict, name: str) -> None:
    for var in ("s", "v", "u"):
        np.testing.assert_array_equal(lava_out[var], ours[var], err_msg=f"{name}.{var}")
    spikes = int(ours["s"].sum())
    assert 0 < spikes < ours["s"].size, f"{name}: {spikes} spikes, a trivial comparison"


def test_dense_layer_random(lava):
    rng = np.random.default_rng(0)
    x = (rng.random((T, 40)) < 0.2).astype(np.int64)
    w = rng.integers(-256, 256, (16, 40))  # full 9-bit mixed range: 255 -> 254 etc.
    neuron = LIFQ(du=410, dv=205, vth=300, bias_mant=rng.integers(-40, 40, 16), bias_exp=3)
    syn = Synapse("in", w, weight_exp=-1, num_weight_bits=6)
    graph = LavaGraph({"in": (40,)}, (LavaLayer("fc", (16,), neuron, (syn,)),))
    out = lava(graph, {"in": x})
    _assert_equal(out["fc"], _sim(w, x, neuron, (16,), -1, 6), "fc")


def test_dense_layer_real(lava, real_image):
    rng = np.random.default_rng(1)
    x = real_image.reshape(T, -1)  # [T, 144]
    w = rng.integers(-80, 120, (24, 144))
    neuron = LIFQ(du=1024, dv=128, vth=40)
    graph = LavaGraph(
        {"in": (144,)}, (LavaLayer("fc", (24,), neuron, (Synapse("in", w, weight_exp=1),)),)
    )
    out = lava(graph, {"in": x})
    _assert_equal(out["fc"], _sim(w, x, neuron, (24,), weight_exp=1), "fc")


def test_conv_layer_real(lava, real_image):
    rng = np.random.default_rng(2)
    w = _even_weights(rng, (4, 1, 3, 3), -60, 100)
    syn = Synapse("img", w, weight_exp=2, stride=2, padding=1)
    neuron = LIFQ(du=600, dv=300, vth=60, bias_mant=rng.integers(-8, 8, (4, 1, 1)), bias_exp=2)
    graph = LavaGraph({"img": (1, 12, 12)}, (LavaLayer("conv", (4, 6, 6), neuron, (syn,)),))
    out = lava(graph, {"img": real_image})
    m = _conv_as_dense(w, (1, 12, 12), stride=2, padding=1)
    _assert_equal(out["conv"], _sim(m, real_image, neuron, (4, 6, 6), weight_exp=2), "conv")


def _chain(rng) -> LavaGraph:
    """img (1,12,12) -conv s2-> c1 (4,6,6) -dense-> d2 (2,3,4) -conv p1-> c3 (3,3,4) -dense-> out
    (10): conv and dense on images and vectors, both ways."""
    n = [
        LIFQ(du=500, dv=250, vth=50),
        LIFQ(du=800, dv=100, vth=30, bias_mant=8, bias_exp=3),
        LIFQ(du=300, dv=300, vth=25),
        LIFQ(du=200, dv=400, vth=20),
    ]
    syns = [
        Synapse("img", _even_weights(rng, (4, 1, 3, 3), -40, 120), stride=2, padding=1),
        Synapse("c1", rng.integers(-100, 160, (24, 144))),
        Synapse("d2", _even_weights(rng, (3, 2, 3, 3), -60, 120), padding=1),
        Synapse("c3", rng.integers(-120, 200, (10, 36)), weight_exp=1),
    ]
    names, shapes = ["c1", "d2", "c3", "out"], [(4, 6, 6), (2, 3, 4), (3, 3, 4), (10,)]
    layers = tuple(LavaLayer(*a, (s,)) for *a, s in zip(names, shapes, n, syns, strict=True))
    return LavaGraph({"img": (1, 12, 12)}, layers)


@pytest.mark.parametrize("source", ["random", "real"])
def test_chain(lava, real_image, source):
    rng = np.random.default_rng(3)
    graph = _chain(rng)
    x = real_image if source == "real" else (rng.random(real_image.shape) < 0.08).astype(np.int64)
    out = lava(graph, {"img": x})
    s, prev_shape = x, (1, 12, 12)
    for layer in graph.layers:
        syn = layer.synapses[0]
        w = syn.weight
        if syn.kind == "conv":
            w = _conv_as_dense(w, prev_shape, syn.stride[0], syn.padding[0])
        ours = _sim(w, s, layer.neuron, layer.shape, syn.weight_exp)
        _assert_equal(out[layer.name], ours, layer.name)
        s, prev_shape = ours["s"], layer.shape


@pytest.mark.parametrize("source", ["random", "real"])
def test_residual_join(lava, real_image, source):
    """in -> a -> b; join = LIF(W_join s_b + W_skip s_a): the skip is one Dense delay shorter."""
    rng = np.random.default_rng(4)
    x = real_image.reshape(T, -1) if source == "real" else (rng.random((T, 144)) < 0.1)
    x = x.astype(np.int64)
    w_a = rng.integers(-90, 160, (32, 144))
    w_b, w_skip = rng.integers(-150, 160, (2, 20, 32))
    w_join = rng.integers(-150, 160, (20, 20))
    na = LIFQ(du=700, dv=200, vth=30)
    nb = LIFQ(du=400, dv=500, vth=20)
    nj = LIFQ(du=900, dv=100, vth=40, bias_mant=-3, bias_exp=2)
    graph = LavaGraph(
        {"in": (144,)},
        (
            LavaLayer("a", (32,), na, (Synapse("in", w_a),)),
            LavaLayer("b", (20,), nb, (Synapse("a", w_b),)),
            LavaLayer("join", (20,), nj, (Synapse("b", w_join), Synapse("a", w_skip))),
        ),
    )
    out = lava(graph, {"in": x})
    a = _sim(w_a, x, na, (32,))
    b = _sim(w_b, a["s"], nb, (20,))
    join = _sim(np.hstack([w_join, w_skip]), np.concatenate([b["s"], a["s"]], axis=1), nj, (20,))
    for name, ours in (("a", a), ("b", b), ("join", join)):
        _assert_equal(out[name], ours, name)
    # the skip matters: without it the join's voltage differs
    no_skip = _sim(w_join, b["s"], nj, (20,))
    assert not np.array_equal(no_skip["v"], out["join"]["v"])


def test_residual_join_image(lava, real_image):
    """Conv fan-in on images: join = LIF(conv3x3(s_b) + conv1x1(s_a)), as a spiking residual
    block with a weighted shortcut; real spikes."""
    rng = np.random.default_rng(10)
    w_a = _even_weights(rng, (4, 1, 3, 3), -40, 120)
    w_b = _even_weights(rng, (4, 4, 3, 3), -60, 100)
    w_join = _even_weights(rng, (4, 4, 3, 3), -60, 100)
    w_skip = 2 * rng.integers(0, 40, (4, 4, 1, 1))  # even, so the joint truncation keeps it
    na, nb = LIFQ(du=500, dv=250, vth=40), LIFQ(du=300, dv=300, vth=30)
    nj = LIFQ(du=700, dv=200, vth=50, bias_mant=np.array([-4, 0, 4, 8]).reshape(4, 1, 1))
    img = (4, 6, 6)
    graph = LavaGraph(
        {"img": (1, 12, 12)},
        (
            LavaLayer("a", img, na, (Synapse("img", w_a, stride=2, padding=1),)),
            LavaLayer("b", img, nb, (Synapse("a", w_b, padding=1),)),
            LavaLayer("join", img, nj, (Synapse("b", w_join, padding=1), Synapse("a", w_skip))),
        ),
    )
    out = lava(graph, {"img": real_image})
    a = _sim(_conv_as_dense(w_a, (1, 12, 12), 2, 1), real_image, na, img)
    b = _sim(_conv_as_dense(w_b, img, 1, 1), a["s"], nb, img)
    m = np.hstack([_conv_as_dense(w_join, img, 1, 1), _conv_as_dense(w_skip, img, 1, 0)])
    s_in = np.concatenate([b["s"].reshape(T, -1), a["s"].reshape(T, -1)], axis=1)
    join = _sim(m, s_in, nj, img)
    for name, ours in (("a", a), ("b", b), ("join", join)):
        _assert_equal(out[name], ours, name)


# ----------------------------------------------------------------------------- quantised NIR graphs


@pytest.fixture(scope="module")
def loihi_graphs():
    """export.loihi's quantise + graph simulator (skips while export.loihi lacks them)."""
    import export.loihi as loihi

    if not all(hasattr(loihi, f) for f in ("quantize", "simulate_quantized", "layer_ranges")):
        pytest.skip("export.loihi has no quantize/simulate_quantized yet")
    return loihi


def _nir_lif(shape, tau_steps: float, thr: float = 1.0):
    import nir

    return nir.LIF(
        tau=np.full(shape, tau_steps * 1e-4),
        r=np.full(shape, tau_steps),  # gain r / tau = 1: a weight w adds w to v
        v_leak=np.zeros(shape),
        v_threshold=np.full(shape, thr),
        v_reset=np.zeros(shape),
    )


def _nir_graphs(rng) -> dict:
    """Float NIR graphs: a dense chain with a residual join, and a conv -> pool -> dense chain."""
    import nir

    residual = nir.NIRGraph(
        nodes={
            "input": nir.Input(np.array([144])),
            "fc1": nir.Affine(rng.normal(0.03, 0.4, (32, 144)), rng.normal(0, 0.02, 32)),
            "l1": _nir_lif(32, 4.0),
            "fc2": nir.Affine(rng.normal(0.0, 0.6, (16, 32)), np.zeros(16)),
            "l2": _nir_lif(16, 6.0),
            "fc3": nir.Affine(rng.normal(0.0, 0.6, (16, 16)), np.zeros(16)),
            "skip": nir.Affine(rng.normal(0.0, 0.5, (16, 32)), np.zeros(16)),
            "l3": _nir_lif(16, 8.0),
            "output": nir.Output(np.array([16])),
        },
        edges=[("input", "fc1"), ("fc1", "l1"), ("l1", "fc2"), ("fc2", "l2"), ("l2", "fc3"),
               ("fc3", "l3"), ("l1", "skip"), ("skip", "l3"), ("l3", "output")],
    )  # fmt: skip
    conv = nir.Conv2d(
        input_shape=(12, 12), weight=rng.normal(0.2, 0.6, (4, 1, 3, 3)), stride=1, padding=1,
        dilation=1, groups=1, bias=np.zeros(4),
    )  # fmt: skip
    conv_chain = nir.NIRGraph(
        nodes={
            "input": nir.Input(np.array([1, 12, 12])),
            "conv": conv,
            "l1": _nir_lif((4, 12, 12), 4.0),
            "pool": nir.SumPool2d(np.array([2, 2]), np.array([2, 2]), np.array([0, 0])),
            "flat": nir.Flatten({"input": np.array([4, 6, 6])}, start_dim=0),
            "fc": nir.Affine(rng.normal(0.0, 0.4, (10, 144)), np.zeros(10)),
            "l2": _nir_lif(10, 5.0),
            "output": nir.Output(np.array([10])),
        },
        edges=[("input", "conv"), ("conv", "l1"), ("l1", "pool"), ("pool", "flat"),
               ("flat", "fc"), ("fc", "l2"), ("l2", "output")],
    )  # fmt: skip
    return {"residual": residual, "conv_chain": conv_chain}


@pytest.mark.parametrize("name", ["residual", "conv_chain"])
def test_quantized_nir_graph(lava, loihi_graphs, real_image, name):
    """A float NIR graph quantised by export.loihi (ranges from real spikes), run by
    simulate_quantized with Lava's timing and by Lava: every layer's s, u, v agree."""
    rng = np.random.default_rng(11)
    g = _nir_graphs(rng)[name]
    x = real_image if name == "conv_chain" else real_image.reshape(T, -1)  # [T, *in]
    xb = x[:, None].astype(np.float32)  # [T, 1, *in]
    rec = loihi_graphs.float_records(g, xb)
    q = loihi_graphs.quantize(g, loihi_graphs.layer_ranges(g, rec))
    run = loihi_graphs.simulate_quantized(q, xb.astype(np.int64), align=False, states=q.layers)
    graph = from_quantized(q)
    padded = np.zeros((run.steps, *x.shape[1:]), np.int64)  # Lava runs the zero-padded tail
    padded[:T] = x
    out = lava(graph, {"input": padded})
    for layer in q.layers:
        ours = {
            "s": run.values[layer][:, 0],
            "u": run.states[f"{layer}.u"][:, 0],
            "v": run.states[f"{layer}.v"][:, 0],
        }
        _assert_equal(out[layer], ours, layer)
    # conv_chain: the conv is a Lava Conv, pool -> flatten -> fc a composed Dense
    kinds = {(layer.name, s.kind) for layer in graph.layers for s in layer.synapses}
    want = {"residual": {("l1", "dense"), ("l2", "dense"), ("l3", "dense")},
            "conv_chain": {("l1", "conv"), ("l2", "dense")}}  # fmt: skip
    assert kinds == want[name]


@pytest.mark.slow
def test_micro_fsve_partition(lava, loihi_graphs, micro_fsve, clips):
    """The whole neuromorphic partition of the micro FSVE (23 LIF/SN layers, 14,848 neurons,
    up to 6 synapses into a layer, E-SDSA host inputs), quantised by export.loihi, in Lava: every
    layer's spikes and voltages equal simulate_quantized's at every step. The host inputs (the
    attention outputs the host computes each step) are fed from our run; since every layer they
    are computed from agrees, they are what Lava's own outputs would give."""
    import torch

    from export.loihi import host_calls
    from export.nir import SplitModel, to_nir

    export = to_nir(micro_fsve, clips[:2])
    split = SplitModel(export.graph, export.host, accumulate=torch.float64)
    stateful = [n for n in split.sim.neuron_nodes() if "sn" not in n.split(".")[-1]]
    rec = split.run(clips[:6], record="all", states=stateful)
    ranges = loihi_graphs.layer_ranges(export.graph, {k: v.numpy() for k, v in rec.items()})
    q = loihi_graphs.quantize(export.graph, ranges)
    calls = host_calls(export.host)
    x = clips[6:7].transpose(0, 1).numpy().astype(np.int64)  # [T, 1, 61, 32, 32]
    run = loihi_graphs.simulate_quantized(q, x, align=False, host=calls, states=q.layers)
    graph = from_quantized(q)
    inputs = {name: run.values[name][:, 0] for name in graph.inputs if name in run.values}
    inputs["input"] = np.zeros((run.steps, *x.shape[2:]), np.int64)  # zero-padded tail
    inputs["input"][: len(x)] = x[:, 0]
    out = lava(graph, inputs, record=("s", "v"))
    assert len(graph.layers) == 23 and len(graph.inputs) == 3
    for layer in q.layers:
        np.testing.assert_array_equal(out[layer]["s"], run.values[layer][:, 0], err_msg=layer)
        np.testing.assert_array_equal(out[layer]["v"], run.states[f"{layer}.v"][:, 0])
    assert sum(int(out[n]["s"].sum()) for n in q.layers) > 1000


def test_record_subset(lava):
    """Only the layers and variables asked for come back (monitors are read sparingly)."""
    rng = np.random.default_rng(5)
    graph = _chain(rng)
    x = (rng.random((10, 1, 12, 12)) < 0.1).astype(np.int64)
    out = lava(graph, {"img": x}, record=("s",), layers=["out"])
    assert set(out) == {"out"} and set(out["out"]) == {"s"}
    assert out["out"]["s"].shape == (10, 10)


# ----------------------------------------------------------------------------- no Lava needed


def test_run_file_round_trip(tmp_path):
    rng = np.random.default_rng(6)
    graph = _chain(rng)
    x = (rng.random((5, 1, 12, 12)) < 0.1).astype(np.int64)
    path = save_run(tmp_path / "run.npz", graph, {"img": x}, record=("s", "v"), layers=["c1"])
    graph2, inputs, opts = load_run(path)
    assert opts == {"record": ("s", "v"), "layers": ["c1"]}
    np.testing.assert_array_equal(inputs["img"], x)
    assert graph2.inputs == graph.inputs
    for l1, l2 in zip(graph.layers, graph2.layers, strict=True):
        assert (l1.name, l1.shape, l1.neuron.du, l1.neuron.vth) == (
            l2.name,
            l2.shape,
            l2.neuron.du,
            l2.neuron.vth,
        )
        s1, s2 = l1.synapses[0], l2.synapses[0]
        np.testing.assert_array_equal(s1.weight, s2.weight)
        assert (s1.stride, s1.padding, s1.weight_exp) == (s2.stride, s2.padding, s2.weight_exp)


def _netx_chain(rng) -> LavaGraph:
    """img (1,12,12) -conv s2-> c1 (4,6,6) -conv p1-> c2 (3,6,6) -dense-> out (10)."""
    layers = (
        LavaLayer(
            "c1",
            (4, 6, 6),
            LIFQ(du=500, dv=250, vth=50, bias_mant=np.arange(4).reshape(4, 1, 1), bias_exp=6),
            (Synapse("img", rng.integers(-40, 120, (4, 1, 3, 3)), stride=2, padding=1),),
        ),
        LavaLayer(
            "c2",
            (3, 6, 6),
            LIFQ(du=300, dv=300, vth=25),
            (Synapse("c1", _even_weights(rng, (3, 4, 3, 3)), padding=1),),
        ),
        LavaLayer(
            "out",
            (10,),
            LIFQ(du=200, dv=400, vth=20, bias_mant=-8, bias_exp=3),
            (Synapse("c2", rng.integers(-256, 256, (10, 108)), weight_exp=0),),
        ),
    )
    return LavaGraph({"img": (1, 12, 12)}, layers)


def test_netx_chain(tmp_path):
    rng = np.random.default_rng(7)
    graph = _netx_chain(rng)
    path = write_netx(graph, tmp_path / "chain.net")
    with h5py.File(path, "r") as f:
        layers = f["layer"]
        types = [layers[str(i)]["type"][0] for i in range(len(layers))]
        assert types == [b"input", b"conv", b"conv", b"flatten", b"dense"]
        assert list(layers["0/shape"][()]) == [1, 12, 12]
        c1 = layers["1"]
        np.testing.assert_array_equal(c1["weight"][()], graph.layers[0].synapses[0].weight)
        assert list(c1["stride"][()]) == [2, 2] and list(c1["padding"][()]) == [1, 1]
        assert list(c1["shape"][()]) == [4, 6, 6]
        # bias_mant << 6, stored as netx's mantissa (netx applies << 6), one per channel
        assert list(c1["bias"][()]) == [0, 1, 2, 3]
        neuron = c1["neuron"]
        assert neuron["type"][0] == b"CUBA"
        assert int(neuron["iDecay"][0]) == 500 + 1  # netx sets du = iDecay - 1
        assert int(neuron["vDecay"][0]) == 250 and int(neuron["vThMant"][0]) == 50
        assert "bias" not in layers["2"]
        assert list(layers["3/shape"][()]) == [3 * 6 * 6]
        out = layers["4"]
        assert out["weight"].shape == (10, 108) and out["weight"].dtype.kind == "i"
        # mixed-sign 8-bit weights lose their lowest bit, as Lava's Dense drops it
        w = graph.layers[2].synapses[0].weight
        np.testing.assert_array_equal(out["weight"][()], (w >> 1) << 1)
        assert np.all(out["bias"][()] == -1)  # -8 << 3 = -64 = -1 << 6


def test_netx_cli_in_lava_env(lava, tmp_path):
    """``python -m export.lava netx`` under the Lava interpreter (its own h5py) writes the same
    groups as write_netx here."""
    import os
    import subprocess

    from export.lava import REPO_ROOT

    graph = _netx_chain(np.random.default_rng(7))
    src = save_run(tmp_path / "net.npz", graph)
    cmd = [str(lava_python()), "-m", "export.lava", "netx", str(src), str(tmp_path / "a.net")]
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    subprocess.run(cmd, env=env, check=True, cwd=tmp_path, timeout=120)
    write_netx(graph, tmp_path / "b.net")
    with h5py.File(tmp_path / "a.net") as a, h5py.File(tmp_path / "b.net") as b:
        names_a, names_b = [], []
        a.visit(names_a.append)
        b.visit(names_b.append)
        assert names_a == names_b and "layer/4/neuron/vThMant" in names_a
        for name in names_a:
            if isinstance(a[name], h5py.Dataset):
                np.testing.assert_array_equal(a[name][()], b[name][()], err_msg=name)


def test_netx_refuses_what_it_cannot_hold(tmp_path):
    rng = np.random.default_rng(9)
    graph = _chain(rng)  # c1 -> dense d2 (2,3,4) -> conv c3: netx cannot reshape a vector
    with pytest.raises(NetxError, match="'c3'"):
        write_netx(graph, tmp_path / "x.net")
    n = LIFQ(du=1, dv=1, vth=1, bias_mant=3)  # 3 is not a multiple of 1 << 6
    g = LavaGraph({"in": (4,)}, (LavaLayer("a", (4,), n, (Synapse("in", np.eye(4)),)),))
    with pytest.raises(NetxError, match="'a'.*multiple of 64"):
        write_netx(g, tmp_path / "y.net")
    g = LavaGraph(
        {"in": (4,)}, (LavaLayer("a", (4,), LIFQ(1, 1, 1), (Synapse("in", np.eye(4), -1),)),)
    )
    with pytest.raises(NetxError, match="'a'.*weight_exp=-1"):
        write_netx(g, tmp_path / "z.net")


def test_netx_refuses_join():
    rng = np.random.default_rng(8)
    w = rng.integers(-10, 10, (4, 4))
    n = LIFQ(du=1, dv=1, vth=1)
    graph = LavaGraph(
        {"in": (4,)},
        (
            LavaLayer("a", (4,), n, (Synapse("in", w),)),
            LavaLayer("b", (4,), n, (Synapse("a", w),)),
            LavaLayer("join", (4,), n, (Synapse("b", w), Synapse("a", w))),
        ),
    )
    with pytest.raises(NetxError, match="'join' breaks the chain"):
        write_netx(graph, "unused.net")  # refused before any file is written


def test_imports_without_torch_or_nir():
    """export.lava and the bit widths it shares with export.loihi (export.fixed_point) import
    where neither torch nor nir is installed, as under the Lava interpreter (no Lava needed)."""
    from export.lava import REPO_ROOT

    code = (
        "import sys; sys.modules['torch'] = sys.modules['nir'] = None\n"
        "import export.fixed_point, export.lava, export.lava.cli\n"
        "assert export.lava.LIFQ(du=4095, dv=0, vth=1).vth == 1"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, check=True)
