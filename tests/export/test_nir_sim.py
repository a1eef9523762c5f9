"""The reference NIR simulator: the NIR paper's LIF task, node semantics, graphs, CLI."""

from __future__ import annotations

from pathlib import Path

import nir
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from export.nir import lif_to_nir
from export.sim import HostCall, Simulator, main, simulate
from fsve.nn.neurons import LIFParams, lif_multistep

CONFORMANCE = Path(__file__).resolve().parents[3] / "shared" / "conformance" / "nir-lif"
ISIS = [6, 15, 4, 3, 0, 2, 1, 2, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 13, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 5, 0, 14]  # fmt: skip


def f32(*shape: int) -> np.ndarray:
    return np.ones(shape, np.float32)


def chain(*nodes: nir.NIRNode) -> nir.NIRGraph:
    return nir.NIRGraph.from_list(*nodes)


# ----------------------------------------------------------------------------- NIR paper task


def paper_input() -> np.ndarray:
    """The task's 1000-step input (README of the conformance folder)."""
    d1 = list(np.concatenate([isi * [0] + [1] for isi in ISIS]))[:100]
    return np.array([[e] + 9 * [0] for e in d1], dtype=np.float32).reshape(-1)


@pytest.mark.skipif(not CONFORMANCE.is_dir(), reason="NIR conformance data not available")
def test_nir_paper_lif_task_matches_norse_and_exact_solution():
    spikes = paper_input()
    norse = np.loadtxt(CONFORMANCE / "lif_norse.csv", delimiter=",")
    exact = np.loadtxt(CONFORMANCE / "lif_exact.csv", delimiter=",")
    np.testing.assert_array_equal(spikes, norse[:, 0])
    out = simulate(CONFORMANCE / "lif_norse.nir", spikes.reshape(-1, 1, 1), states=["1"])
    v, z = out["1.v"][:, 0, 0].numpy(), out["1"][:, 0, 0].numpy()
    # Norse runs the same forward Euler in float32: equal to float rounding (measured 1.9e-8)
    assert np.abs(v - norse[:, 1]).max() < 1e-6
    np.testing.assert_array_equal(z, norse[:, 2])
    np.testing.assert_array_equal(np.nonzero(z)[0], [460, 510, 710, 760])
    # exact ODE solution: the same spike steps; voltages within Euler's discretisation error.
    # h = dt/tau = 0.04; an input spike adds h (exact: 1 - e^-h, 7.9e-4 less), so before the
    # first output spike the error stays below 1e-3 (measured 9.4e-4); after a spike the exact
    # solution keeps the input of the rest of its step, at most h·r·1 = 0.04 (measured 6.2e-3).
    np.testing.assert_array_equal(z, exact[:, 2])
    err = np.abs(v - exact[:, 1])
    assert err[:460].max() < 1e-3
    assert err.max() < 0.04


# ----------------------------------------------------------------------------- neurons


@pytest.mark.parametrize(
    "params",
    [
        LIFParams(),  # FSVE: tau 2, V_th 1, V_r 0, decay_input
        LIFParams(tau=3.7, v_threshold=0.37, v_reset=-0.25),
        LIFParams(tau=1.5, v_threshold=2.0, v_reset=0.5),
    ],
)
def test_lif_mapping_is_bit_exact_with_decay_input(params):
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.normal(0.8, 1.5, size=(40, 6, 3, 5)).astype(np.float32))
    want_s, _ = lif_multistep(x, None, params)
    node = lif_to_nir(params, (3, 5))
    out = simulate(chain(node), x, states=["lif"])
    assert torch.equal(out["lif"], want_s)
    assert want_s.sum() > 100
    # the recorded voltage is V after reset; the last one equals lif_multistep's final V
    assert torch.equal(out["lif.v"][-1], lif_multistep(x, None, params)[1])


def test_lif_mapping_without_decay_input_agrees_to_rounding():
    params = LIFParams(tau=2.5, v_threshold=1.0, v_reset=0.0, decay_input=False)
    x = torch.from_numpy(np.random.default_rng(1).normal(0.3, 0.6, (50, 8, 20)).astype("f4"))
    want_s, want_v = lif_multistep(x, None, params)
    out = simulate(chain(lif_to_nir(params, (20,))), x, states=["lif"])
    # r = tau: (V_r - V + tau X)/tau instead of V - (V - V_r)/tau + X, equal up to rounding
    assert torch.equal(out["lif"], want_s)
    torch.testing.assert_close(out["lif.v"][-1], want_v, atol=1e-6, rtol=0)


def test_threshold_is_strict():
    node = nir.Threshold(threshold=np.array([1.0, 1.0], np.float32))
    x = torch.tensor([[[1.0, np.nextafter(np.float32(1), np.float32(2))]]])
    assert simulate(chain(node), x)["threshold"].tolist() == [[[0.0, 1.0]]]


def test_if_trajectory():
    # r = 1/dt: each step adds its input; 0.4 per step reaches 1.2 > 1 at the third step
    node = nir.IF(r=np.full(1, 1e4), v_threshold=np.ones(1), v_reset=np.zeros(1))
    out = simulate(chain(node), torch.full((6, 1, 1), 0.4), states=["if"])
    assert out["if"][:, 0, 0].tolist() == [0, 0, 1, 0, 0, 1]
    torch.testing.assert_close(
        out["if.v"][:, 0, 0], torch.tensor([0.4, 0.8, 0.0, 0.4, 0.8, 0.0]), atol=1e-6, rtol=0
    )


def test_li_i_and_cuba_trajectories():
    x = torch.tensor([1.0, 0.0, 0.0, 2.0]).view(4, 1, 1)
    li = nir.LI(tau=np.full(1, 2e-4), r=np.ones(1), v_leak=np.zeros(1))
    # v += (0 - v + x)/2: 0.5, 0.25, 0.125, 1.0625
    v = simulate(chain(li), x)["li"][:, 0, 0]
    torch.testing.assert_close(v, torch.tensor([0.5, 0.25, 0.125, 1.0625]))
    integ = nir.I(r=np.full(1, 5e3))  # dt r = 0.5
    torch.testing.assert_close(
        simulate(chain(integ), x)["i"][:, 0, 0], torch.tensor([0.5, 0.5, 0.5, 1.5])
    )
    # CubaLI, tau_syn = 2 dt, w_in = 2: i += (-i + 2x)/2 -> 1, 0.5, 0.25, 2.125;
    # tau_mem = 4 dt, r = 4: v += (-v + 4 i)/4 -> 1, 1.25, 1.1875, 3.015625
    cuba = nir.CubaLI(
        tau_syn=np.full(1, 2e-4), tau_mem=np.full(1, 4e-4), r=np.full(1, 4.0),
        v_leak=np.zeros(1), w_in=np.full(1, 2.0),
    )  # fmt: skip
    out = simulate(chain(cuba), x, states=["cubali"])
    torch.testing.assert_close(out["cubali.i"][:, 0, 0], torch.tensor([1.0, 0.5, 0.25, 2.125]))
    torch.testing.assert_close(out["cubali"][:, 0, 0], torch.tensor([1.0, 1.25, 1.1875, 3.015625]))


def test_delay_shifts_per_neuron():
    node = nir.Delay(delay=np.array([0.0, 1e-4, 3e-4]))
    x = torch.arange(1, 6, dtype=torch.float32).view(5, 1, 1).repeat(1, 2, 3)
    y = simulate(chain(node), x, record="all")["delay"][:, 0]
    assert y.tolist() == [[1, 0, 0], [2, 1, 0], [3, 2, 0], [4, 3, 1], [5, 4, 2]]


# ----------------------------------------------------------------------------- stateless nodes


def test_stateless_nodes_match_torch():
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.normal(size=(3, 2, 4, 6, 6)).astype(np.float32))
    w = rng.normal(size=(5, 4, 3, 3)).astype(np.float32)
    b = rng.normal(size=5).astype(np.float32)
    conv = nir.Conv2d(input_shape=(6, 6), weight=w, stride=2, padding=1, dilation=1, groups=1,
                      bias=b)  # fmt: skip
    y = simulate(chain(conv), x, record=["conv2d"])["conv2d"]
    want = F.conv2d(x.flatten(0, 1), torch.from_numpy(w), torch.from_numpy(b), 2, 1)
    torch.testing.assert_close(y, want.unflatten(0, (3, 2)))
    pool = nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                         padding=np.array([0, 0]))  # fmt: skip
    avg = nir.AvgPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                        padding=np.array([0, 0]))  # fmt: skip
    g = nir.NIRGraph(
        nodes={"input": nir.Input(np.array([4, 6, 6])), "sum": pool, "avg": avg,
               "flat": nir.Flatten(input_type={"input": np.array([4, 3, 3])}, start_dim=0),
               "output": nir.Output(np.array([36]))},
        edges=[("input", "sum"), ("input", "avg"), ("avg", "flat"), ("flat", "output")],
        type_check=False,
    )  # fmt: skip
    out = simulate(g, x, record="all")
    xs = x.flatten(0, 1)
    torch.testing.assert_close(out["sum"], (4 * F.avg_pool2d(xs, 2)).unflatten(0, (3, 2)))
    torch.testing.assert_close(out["output"], F.avg_pool2d(xs, 2).flatten(1).unflatten(0, (3, 2)))
    lin = rng.normal(size=(7, 36)).astype(np.float32)
    g2 = chain(nir.Linear(weight=lin), nir.Scale(scale=np.full(7, 2.0, np.float32)))
    v = torch.from_numpy(rng.normal(size=(4, 3, 36)).astype(np.float32))
    torch.testing.assert_close(simulate(g2, v)["output"], 2 * (v @ torch.from_numpy(lin).T))


def test_affine_with_batched_weight_applies_per_leading_index():
    rng = np.random.default_rng(2)
    w = rng.normal(size=(4, 3, 5)).astype(np.float32)  # 4 tokens, 5 -> 3
    b = rng.normal(size=(4, 3)).astype(np.float32)
    x = torch.from_numpy(rng.normal(size=(2, 6, 4, 5)).astype(np.float32))
    y = simulate(chain(nir.Affine(weight=w, bias=b)), x)["output"]
    want = torch.einsum("noi,tbni->tbno", torch.from_numpy(w), x) + torch.from_numpy(b)
    torch.testing.assert_close(y, want)


# ----------------------------------------------------------------------------- graphs


def fan_in_graph() -> nir.NIRGraph:
    """input -> (a: x2, b: x3) -> LIF summing both edges -> output."""
    return nir.NIRGraph(
        nodes={
            "input": nir.Input(np.array([2])),
            "a": nir.Scale(scale=np.full(2, 2.0, np.float32)),
            "b": nir.Scale(scale=np.full(2, 3.0, np.float32)),
            "lif": lif_to_nir(LIFParams(), (2,)),
            "output": nir.Output(np.array([2])),
        },
        edges=[("input", "a"), ("input", "b"), ("a", "lif"), ("b", "lif"), ("lif", "output")],
    )


def test_fan_in_edges_are_summed():
    x = torch.tensor([0.1, 0.3]).view(1, 1, 2).repeat(3, 1, 1)
    out = simulate(fan_in_graph(), x, states=["lif"])
    # 2x + 3x = 0.5, 1.5 per step; H = V + (X - V)/2: 0.25, 0.75; then 0.375, 1.125 (spike,
    # reset to 0); then 0.4375, 0.75
    assert out["lif"][:, 0].tolist() == [[0, 0], [0, 1], [0, 0]]
    torch.testing.assert_close(out["lif.v"][:, 0, 0], torch.tensor([0.25, 0.375, 0.4375]))
    torch.testing.assert_close(out["lif.v"][:, 0, 1], torch.tensor([0.75, 0.0, 0.75]))


def test_nested_graph_is_flattened():
    inner = fan_in_graph()
    outer = nir.NIRGraph(
        nodes={
            "input": nir.Input(np.array([2])),
            "sub": inner,
            "output": nir.Output(np.array([2])),
        },
        edges=[("input", "sub"), ("sub", "output")],
        type_check=False,
    )
    x = torch.rand(5, 2, 2)
    flat = simulate(fan_in_graph(), x)["lif"]
    assert torch.equal(simulate(outer, x)["sub.lif"], flat)


def test_recurrent_graph_is_refused():
    g = nir.NIRGraph(
        nodes={"input": nir.Input(np.array([1])), "a": nir.Scale(scale=f32(1)),
               "b": nir.Scale(scale=f32(1)), "output": nir.Output(np.array([1]))},
        edges=[("input", "a"), ("a", "b"), ("b", "a"), ("b", "output")],
        type_check=False,
    )  # fmt: skip
    with pytest.raises(ValueError, match="recurrent"):
        Simulator(g)


def test_host_call_and_clamp():
    g = nir.NIRGraph(
        nodes={
            "input": nir.Input(np.array([2])),
            "to_host": nir.Output(np.array([2])),
            "from_host": nir.Input(np.array([2])),
            "s": nir.Scale(scale=np.full(2, 2.0, np.float32)),
            "output": nir.Output(np.array([2])),
        },
        edges=[("input", "to_host"), ("from_host", "s"), ("s", "output")],
    )
    x = torch.rand(4, 3, 2)
    host = {"from_host": HostCall(("to_host",), lambda d: d["to_host"] + 1)}
    out = simulate(g, x, record="all", host=host)
    torch.testing.assert_close(out["output"], 2 * (x + 1))
    clamped = simulate(g, x, record="all", host=host, clamp={"s": torch.zeros(4, 3, 2)})
    assert torch.equal(clamped["s"], out["s"]) and not clamped["output"].any()


def test_bad_inputs_name_the_problem():
    g = fan_in_graph()
    with pytest.raises(ValueError, match=r"input 'input' must be time-first \[T, B, 2\]"):
        simulate(g, torch.zeros(3, 1, 5))
    with pytest.raises(ValueError, match="not graph Input nodes"):
        simulate(g, {"nope": torch.zeros(3, 1, 2)})
    with pytest.raises(ValueError, match="cannot record unknown nodes"):
        simulate(g, torch.zeros(3, 1, 2), record=["missing"])


def test_write_read_round_trip_simulates_the_same(tmp_path):
    g = fan_in_graph()
    nir.write(tmp_path / "g.nir", g)
    x = torch.rand(6, 4, 2) * 3
    assert torch.equal(simulate(tmp_path / "g.nir", x)["lif"], simulate(g, x)["lif"])


def test_cli_writes_records(tmp_path, capsys):
    nir.write(tmp_path / "g.nir", fan_in_graph())
    x = (np.random.default_rng(0).random((8, 2)) * 3).astype(np.float32)  # [T, *shape]
    np.save(tmp_path / "spikes.npy", x)
    rc = main([str(tmp_path / "g.nir"), "--input", str(tmp_path / "spikes.npy"),
               "--out", str(tmp_path / "out.npz"), "--states", "lif"])  # fmt: skip
    assert rc == 0
    printed = capsys.readouterr().out
    assert "lif" in printed and "spikes" in printed
    with np.load(tmp_path / "out.npz") as z:
        assert z["lif"].shape == (8, 2) and z["lif.v"].shape == (8, 2)
        want = simulate(fan_in_graph(), x[:, None])["lif"][:, 0].numpy()
        np.testing.assert_array_equal(z["lif"], want)
    assert main([str(tmp_path / "g.nir"), "--input", str(tmp_path / "missing.npy")]) == 2
