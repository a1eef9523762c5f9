"""Loihi fixed point: hand-computed arithmetic of the Dense -> LIF primitive, the NIR paper's
Lava fixed-point trace, graph quantisation and the fixed-point graph simulator."""

from __future__ import annotations

import csv
from pathlib import Path

import nir
import numpy as np
import pytest
import torch

from export.loihi import (
    QuantConfig,
    decay,
    delay_one,
    dense_accumulate,
    effective_weights,
    host_calls,
    layer_ranges,
    lif_fixed,
    main,
    path_errors,
    quantize,
    simulate_dense_lif,
    simulate_quantized,
    wrap_u,
)

CONFORMANCE = Path(__file__).resolve().parents[3] / "shared" / "conformance" / "nir-lif"
ISIS = [6, 15, 4, 3, 0, 2, 1, 2, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 13, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 5, 0, 14]  # fmt: skip


def paper_input() -> np.ndarray:
    """The NIR paper's 1000-step LIF input (README of the conformance folder)."""
    d1 = list(np.concatenate([isi * [0] + [1] for isi in ISIS]))[:100]
    return np.array([[e] + 9 * [0] for e in d1], dtype=np.int64).reshape(-1)


def reference_dense_lif(w, spikes, du, dv, vth, bias=0, weight_exp=0):
    """Plain-Python scalar loop of REFERENCE.md section 3 (weights already effective)."""
    n_out = len(w)
    u, v, acc = [0] * n_out, [0] * n_out, [0] * n_out
    rows = []
    for s_t in spikes:
        a_in = acc  # the Dense sends last step's accumulation first
        acc = []
        for row in w:
            total = sum(int(wi) for wi, si in zip(row, s_t, strict=True) if si)
            acc.append(total << weight_exp if weight_exp >= 0 else total >> -weight_exp)
        s_row, u_row, v_row = [], [], []
        for j in range(n_out):
            p = u[j] * (4096 - (du + 1))
            u[j] = (abs(p) >> 12) * (1 if p > 0 else -1 if p < 0 else 0) + (a_in[j] << 6)
            if u[j] > 2**23:
                u[j] -= 2**24
            elif u[j] <= -(2**23):
                u[j] += 2**24
            q = v[j] * (4096 - dv)
            v[j] = (abs(q) >> 12) * (1 if q > 0 else -1 if q < 0 else 0) + u[j] + bias
            v[j] = max(-(2**23 - 1), min(2**23 - 1, v[j]))
            spk = v[j] > vth << 6
            if spk:
                v[j] = 0
            s_row.append(int(spk))
            u_row.append(u[j])
            v_row.append(v[j])
        rows.append((s_row, u_row, v_row))
    return {k: np.array([r[i] for r in rows]) for i, k in enumerate("suv")}


# ----------------------------------------------------------------------------- arithmetic


def test_weight_clipping_and_truncation():
    # mixed sign: clip to [-256, 255], then drop the lowest bit (arithmetic shift: -3 -> -4)
    w = effective_weights([[-3, 3, 255, -256, 300, -300]])
    np.testing.assert_array_equal(w, [[-4, 2, 254, -256, 254, -256]])
    # excitatory: [0, 255], 8 bits kept; 6 bits drop the lowest 2 bits (255 -> 252)
    np.testing.assert_array_equal(effective_weights([[3, 300]]), [[3, 255]])
    np.testing.assert_array_equal(effective_weights([[3, 300]], 6), [[0, 252]])
    # inhibitory: [-255, 0], bits dropped from the magnitude (-3 -> 0, not -4)
    np.testing.assert_array_equal(effective_weights([[-3, -300]], 6), [[0, -252]])
    np.testing.assert_array_equal(effective_weights([[0, 0]]), [[0, 0]])


def test_decay_truncates_toward_zero():
    # 101 * (4096 - 2048) / 4096 = 50.5: toward zero gives 50 and -50 (floor would give -51)
    np.testing.assert_array_equal(decay(np.array([101, -101, 0]), 2048), [50, -50, 0])
    out = lif_fixed(np.zeros((1, 2), np.int64), du=2047, dv=0, vth=1000, u0=[101, -101])
    np.testing.assert_array_equal(out["u"][0], [50, -50])  # du + 1 = 2048
    np.testing.assert_array_equal(out["v"][0], [50, -50])  # v = 0 + u


def test_u_wraps_at_2_pow_23():
    np.testing.assert_array_equal(
        wrap_u(np.array([2**23, 2**23 + 1, -(2**23), -(2**23) + 1])),
        [2**23, -(2**23) + 1, 2**23, -(2**23) + 1],
    )
    # 600 inputs x weight 255 = 153000; << 6 = 9792000 > 2^23 -> 9792000 - 2^24 = -6985216
    # (du = 4095: the current decays fully, so u is this step's input alone)
    out = simulate_dense_lif(np.full((1, 600), 255), np.ones((2, 600)), du=4095, dv=0, vth=131071)
    np.testing.assert_array_equal(out["u"][:, 0], [0, -6985216])
    # exactly 2^23 stays (strict >); -2^23 becomes +2^23: weight 128 << weight_exp 10 = 2^17
    for w, expect in ((128, 2**23), (-128, 2**23)):
        out = simulate_dense_lif([[w]], [[1], [0]], du=4095, dv=0, vth=131071, weight_exp=10)
        assert out["u"][1, 0] == expect


def test_v_saturates_not_wraps():
    # 500 inputs x -255 = -127500; << 6 = -8160000 per step; dv = 0 keeps v (4096/4096):
    # step 1: -8160000, step 2: -16320000 -> clipped to -(2^23 - 1) = -8388607
    out = simulate_dense_lif(np.full((1, 500), -255), np.ones((3, 500)), du=4095, dv=0, vth=10)
    np.testing.assert_array_equal(out["v"][:, 0], [0, -8160000, -8388607])
    # positive side: 2^23 per step (128 << 10 = 2^17, << 6) saturates at 2^23 - 1; a threshold
    # of 2^17 << 6 = 2^23 is out of reach, so it never spikes
    out = simulate_dense_lif([[128]], np.ones((3, 1)), du=4095, dv=0, vth=2**17, weight_exp=10)
    np.testing.assert_array_equal(out["v"][:, 0], [0, 2**23 - 1, 2**23 - 1])
    assert out["s"].sum() == 0


def test_strict_threshold_reset_and_bias():
    # dv = 4095: v decays to v * 1 >> 12 = 0 each step; v = bias = 64 is not > 1 << 6 = 64
    quiet = simulate_dense_lif([[0]], np.zeros((3, 1)), du=0, dv=4095, vth=1, bias_mant=64)
    np.testing.assert_array_equal(quiet["v"][:, 0], [64, 64, 64])
    assert quiet["s"].sum() == 0
    # 65 > 64 spikes every step and resets v to 0; bias 65 = mantissa 65 << exponent 0
    loud = simulate_dense_lif([[0]], np.zeros((3, 1)), du=0, dv=4095, vth=1, bias_mant=65)
    np.testing.assert_array_equal(loud["s"][:, 0], [1, 1, 1])
    np.testing.assert_array_equal(loud["v"][:, 0], [0, 0, 0])
    # exponent: 3 << 2 = 12 per step (v stays 12: it decays to 0 first)
    out = simulate_dense_lif([[0]], np.zeros((2, 1)), du=0, dv=4095, vth=1, bias_mant=3,
                             bias_exp=2)  # fmt: skip
    np.testing.assert_array_equal(out["v"][:, 0], [12, 12])


def test_one_step_dense_delay_and_u_not_reset():
    # a spike at step 0 reaches the LIF at step 1: u = 10 << 6 = 640; du = 2047 halves u
    out = simulate_dense_lif([[10]], [[1], [0], [0], [0]], du=2047, dv=4095, vth=5)
    np.testing.assert_array_equal(out["u"][:, 0], [0, 640, 320, 160])
    # v = u each step (dv = 4095 wipes v); 640 > 5 << 6 = 320 spikes, 320 does not
    np.testing.assert_array_equal(out["s"][:, 0], [0, 1, 0, 0])
    np.testing.assert_array_equal(out["v"][:, 0], [0, 0, 320, 160])


def test_negative_weight_exp_is_an_arithmetic_shift():
    # inhibitory -3 >> 1 = -2 (floor, not -1); -2 << 6 = -128 (du = 4095: u is that input)
    out = simulate_dense_lif([[-3]], [[1], [0]], du=4095, dv=4095, vth=100, weight_exp=-1)
    assert out["u"][1, 0] == -128
    # excitatory 3 >> 1 = 1 -> 64
    out = simulate_dense_lif([[3]], [[1], [0]], du=4095, dv=4095, vth=100, weight_exp=-1)
    assert out["u"][1, 0] == 64


def test_random_matches_scalar_reference_and_batches():
    rng = np.random.default_rng(0)
    w = rng.integers(-256, 256, size=(7, 11))
    spikes = (rng.random((40, 3, 11)) < 0.3).astype(np.int64)
    kw = dict(du=300, dv=200, vth=40, bias_mant=-5, bias_exp=3, weight_exp=2)
    batched = simulate_dense_lif(w, spikes, **kw)
    assert batched["s"].shape == (40, 3, 7)
    w_eff = effective_weights(w)
    for b in range(3):
        ref = reference_dense_lif(w_eff, spikes[:, b], 300, 200, 40, -5 << 3, 2)
        single = simulate_dense_lif(w, spikes[:, b], **kw)
        for k in "suv":
            np.testing.assert_array_equal(batched[k][:, b], ref[k])
            np.testing.assert_array_equal(single[k], ref[k])
    assert 0 < batched["s"].sum() < batched["s"].size  # the case exercises both branches


def test_primitive_rejects_bad_input():
    with pytest.raises(ValueError, match="binary"):
        simulate_dense_lif([[1]], [[2]], du=0, dv=0, vth=1)
    with pytest.raises(ValueError, match="spikes must be"):
        simulate_dense_lif([[1, 2]], [[1]], du=0, dv=0, vth=1)
    with pytest.raises(ValueError, match="du must be in 0..4095"):
        simulate_dense_lif([[1]], [[1]], du=4096, dv=0, vth=1)
    with pytest.raises(ValueError, match="integers"):
        simulate_dense_lif([[1.5]], [[1]], du=0, dv=0, vth=1)


# ----------------------------------------------------------------------------- conformance


@pytest.mark.skipif(not CONFORMANCE.is_dir(), reason="NIR conformance data not available")
def test_nir_paper_lava_fixed_trace_with_the_primitive():
    """``lif_lava_cpu_fixed.csv``: dv = dt/tau * 4095, vth = (0.1 * 131071) >> 9, weight =
    w r dt/tau * 256 (the per-step Euler input of a spike, x 256), du = 4095 (NIR LIF: no
    synaptic current, u is the step's input)."""
    ref = np.loadtxt(CONFORMANCE / "lif_lava_cpu_fixed.csv", delimiter=",")
    spikes = paper_input()
    np.testing.assert_array_equal(spikes, ref[:, 0])
    h = 1e-4 / 2.5e-3  # dt / tau = 0.04
    dv, vth, w = int(h * 4095), int(0.1 * 131071) >> 9, int(1.0 * h * 256)
    assert (dv, vth, w) == (163, 25, 10)
    out = simulate_dense_lif([[w]], spikes[:, None], du=4095, dv=dv, vth=vth)
    np.testing.assert_array_equal(out["v"][:, 0], ref[:, 1])  # bit-exact, every step
    np.testing.assert_array_equal(out["s"][:, 0], ref[:, 2])
    np.testing.assert_array_equal(np.nonzero(out["s"][:, 0])[0], [461, 511, 711, 761])


@pytest.mark.skipif(not CONFORMANCE.is_dir(), reason="NIR conformance data not available")
def test_nir_paper_lava_fixed_trace_from_the_nir_graph():
    """The same trace from ``lif_norse.nir`` through :func:`quantize` with the NIR-to-Lava
    script's scaling (weights and thresholds x 256 truncated, dv = dt/tau x 4095 truncated)."""
    ref = np.loadtxt(CONFORMANCE / "lif_lava_cpu_fixed.csv", delimiter=",")
    graph = nir.read(CONFORMANCE / "lif_norse.nir")
    q = quantize(graph, config=QuantConfig(scale=256, rounding="floor", decay_unity=4095))
    (layer,) = q.layers.values()
    assert (layer.du, layer.dv, layer.vth) == (4095, 163, 25)
    (p,) = layer.projections
    assert int(p.weight[0, 0]) * 2.0**p.exp == pytest.approx(10.24, abs=2**p.exp)  # 0.04 x 256
    run = simulate_quantized(q, paper_input().reshape(-1, 1, 1), align=False, states=[layer.name])
    assert run.steps == 1001  # T + depth 1
    v, s = run.states[f"{layer.name}.v"][:1000, 0, 0], run.values[layer.name][:1000, 0, 0]
    assert np.abs(v - ref[:, 1]).max() == 0  # max error 0: bit-exact
    np.testing.assert_array_equal(s, ref[:, 2])


# ----------------------------------------------------------------------------- graphs


def lif(n: int, tau_steps: float = 2.0, r: float = 2.0, thr=1.0) -> nir.LIF:
    return nir.LIF(
        tau=np.full(n, tau_steps * 1e-4), r=np.full(n, r), v_leak=np.zeros(n),
        v_threshold=np.broadcast_to(np.asarray(thr, float), (n,)).copy(), v_reset=np.zeros(n),
    )  # fmt: skip


def graph(nodes: dict, edges: list) -> nir.NIRGraph:
    return nir.NIRGraph(nodes=nodes, edges=edges)


def test_graph_layer_is_the_primitive():
    # tau = 2 steps, r = 2: gain r/tau = 1; scale 100 -> weight w/100 becomes w exactly
    rng = np.random.default_rng(1)
    w_int = rng.integers(-60, 61, size=(5, 8)) * 2  # even: exact on the mixed 8-bit lattice
    g = graph(
        {"input": nir.Input(np.array([8])), "fc": nir.Affine(w_int / 100.0, np.zeros(5)),
         "lif": lif(5), "output": nir.Output(np.array([5]))},
        [("input", "fc"), ("fc", "lif"), ("lif", "output")],
    )  # fmt: skip
    q = quantize(g, config=QuantConfig(scale=100, split_sign=False))  # one mixed-sign Dense
    layer = q.layers["lif"]
    assert (layer.du, layer.dv, layer.vth) == (4095, 2048, 100)  # dv = 4096 / tau
    (p,) = layer.projections
    np.testing.assert_array_equal(p.weight.astype(np.int64) * 2**p.exp, w_int)
    assert p.weight_error < 1e-12  # w/100 x 100 rounds back to w
    spikes = (rng.random((30, 4, 8)) < 0.4).astype(np.int64)
    run = simulate_quantized(q, spikes, align=False, states=["lif"])
    want = simulate_dense_lif(p.weight, spikes, du=4095, dv=2048, vth=100, weight_exp=p.exp)
    np.testing.assert_array_equal(run.values["lif"][:30], want["s"])
    np.testing.assert_array_equal(run.states["lif.v"][:30], want["v"])
    np.testing.assert_array_equal(run.values["output"], run.values["lif"])
    assert 0 < want["s"].sum()


def chain_graph(rng, bias: bool = False) -> nir.NIRGraph:
    w1, w2 = rng.normal(0, 0.8, (6, 5)), rng.normal(0, 0.8, (4, 6))
    b1 = rng.normal(0, 0.1, 6) if bias else np.zeros(6)
    return graph(
        {"input": nir.Input(np.array([5])), "fc1": nir.Affine(w1, b1), "l1": lif(6),
         "fc2": nir.Affine(w2, np.zeros(4)), "l2": lif(4), "output": nir.Output(np.array([4]))},
        [("input", "fc1"), ("fc1", "l1"), ("l1", "fc2"), ("fc2", "l2"), ("l2", "output")],
    )  # fmt: skip


def test_aligned_mode_is_lava_timing_shifted_by_depth():
    rng = np.random.default_rng(2)
    q = quantize(chain_graph(rng))
    assert q.depth() == {"input": 0, "l1": 1, "l2": 2}
    x = (rng.random((25, 3, 5)) < 0.5).astype(np.int64)
    lava = simulate_quantized(q, x, align=False)
    aligned = simulate_quantized(q, x, align=True)
    assert lava.steps == 27 and aligned.steps == 25
    assert lava.delay == {"l1": 1, "l2": 2} and aligned.delay == {"l1": 0, "l2": 0}
    np.testing.assert_array_equal(lava.values["l1"][1:26], aligned.values["l1"])
    np.testing.assert_array_equal(lava.values["l2"][2:27], aligned.values["l2"])
    np.testing.assert_array_equal(lava.values["l2"][:2], 0)  # nothing arrived yet
    assert aligned.values["l2"].sum() > 0


def test_residual_join_sums_delayed_projections_and_folds_scale():
    # l2 = LIF(fc2(l1 spikes) + 2 * fc3(input)): two Dense processes into one LIF
    rng = np.random.default_rng(3)
    g = chain_graph(rng)
    g.nodes["fc3"] = nir.Affine(rng.normal(0, 0.5, (4, 5)), np.zeros(4))
    g.nodes["x2"] = nir.Scale(np.full(4, 2.0))
    g.edges += [("input", "fc3"), ("fc3", "x2"), ("x2", "l2")]
    q = quantize(g, config=QuantConfig(split_sign=False))
    layer = q.layers["l2"]
    by_src = {p.source: p for p in layer.projections}
    assert set(by_src) == {"l1", "input"} and by_src["input"].path == ("fc3", "x2")
    # the Scale is folded: a_in units = weight x 2 x gain (1) x scale
    np.testing.assert_allclose(
        by_src["input"].weight_float, 2 * g.nodes["fc3"].weight * layer.scale[:, None]
    )
    x = (rng.random((20, 2, 5)) < 0.5).astype(np.int64)
    run = simulate_quantized(q, x, align=False, states=["l2"])
    s1 = run.values["l1"].astype(np.int64)
    a = sum(
        delay_one(dense_accumulate(p.weight, s1 if p.source == "l1" else run_input(x), p.exp))
        for p in (by_src["l1"], by_src["input"])
    )
    want = lif_fixed(a, du=layer.du, dv=layer.dv, vth=layer.vth)
    np.testing.assert_array_equal(run.values["l2"], want["s"])
    np.testing.assert_array_equal(run.states["l2.v"], want["v"])


def run_input(x: np.ndarray) -> np.ndarray:
    return np.concatenate([x, np.zeros((2, *x.shape[1:]), x.dtype)])  # padded to T + depth 2


def test_threshold_cuba_and_per_channel_thresholds():
    rng = np.random.default_rng(4)
    w = rng.normal(0, 1, (2, 3))
    g = graph(
        {"input": nir.Input(np.array([3])), "fc": nir.Linear(w),
         "sn": nir.Threshold(np.array([0.5, 2.0])), "fc2": nir.Linear(np.ones((2, 2))),
         "cuba": nir.CubaLIF(tau_syn=np.full(2, 2e-4), tau_mem=np.full(2, 4e-4), r=np.ones(2),
                             v_leak=np.zeros(2), v_threshold=np.ones(2), v_reset=np.zeros(2),
                             w_in=np.ones(2)),
         "output": nir.Output(np.array([2]))},
        [("input", "fc"), ("fc", "sn"), ("sn", "fc2"), ("fc2", "cuba"), ("cuba", "output")],
    )  # fmt: skip
    q = quantize(g)
    sn, cuba = q.layers["sn"], q.layers["cuba"]
    assert (sn.du, sn.dv) == (4095, 4095)  # stateless: no current, v keeps only v/4096
    assert (cuba.du, cuba.dv) == (2047, 1024)  # du + 1 = 4096/2, dv = 4096/4
    # one vth for the layer; a per-channel threshold scales its weight row instead
    np.testing.assert_allclose(sn.scale, [sn.vth / 0.5, sn.vth / 2.0])
    parts = [p.weight_float for p in sn.projections]  # split sign: excitatory + inhibitory
    assert len(parts) == 2 and np.all(parts[0] >= 0) and np.all(parts[1] <= 0)
    np.testing.assert_allclose(parts[0] + parts[1], w * sn.scale[:, None])
    assert sn.vth == 131071  # no ranges given: the 17-bit limit
    run = simulate_quantized(q, (rng.random((10, 2, 3)) < 0.5).astype(np.int64))
    assert set(run.values) >= {"sn", "cuba", "output", "input"}
    # a bias b into the CubaLIF: the current settles at w_in b = b, driving v by r i / tau_mem
    # = b / 4 per step; Lava's bias adds to v directly: b / 4 x scale x 64 in v units
    g.nodes["fc2"] = nir.Affine(np.ones((2, 2)), np.array([0.5, -0.25]))
    cuba = quantize(g).layers["cuba"]
    want = np.array([0.5, -0.25]) / 4 * cuba.scale * 64
    np.testing.assert_allclose(cuba.bias_mant << cuba.bias_exp, want, atol=2.0**7)


def test_split_sign_keeps_8_bits_per_sign():
    # 1.0 and -0.03 at scale 100: 100 and -3 in a_in units. One mixed-sign Dense shares the
    # exponent that 100 needs, so -3 is the mantissa -6 (2 bits); split into an excitatory and
    # an inhibitory Dense, -3 gets its own exponent and the mantissa -192 (8 bits)
    g = graph(
        {"input": nir.Input(np.array([2])), "fc": nir.Linear(np.array([[1.0, -0.03]])),
         "l": lif(1), "output": nir.Output(np.array([1]))},
        [("input", "fc"), ("fc", "l"), ("l", "output")],
    )  # fmt: skip
    fine = dict(scale=100, min_weight_exp=-8)  # allow exponents below 0 (floored sums)
    one = quantize(g, config=QuantConfig(split_sign=False, **fine)).layers["l"]
    two = quantize(g, config=QuantConfig(**fine)).layers["l"]
    (p,) = one.projections
    assert [int(x) * 2.0**p.exp for x in p.weight[0]] == [100.0, -3.0]  # 200, -6 at 2^-1
    pos, neg = two.projections
    assert pos.weight.tolist() == [[200, 0]] and pos.exp == -1  # 100 = 200 >> 1
    assert neg.weight.tolist() == [[0, -192]] and neg.exp == -6  # -3 = -192 >> 6
    np.testing.assert_array_equal(effective_weights(neg.weight), neg.weight)  # inhibitory
    assert pos.weight_error == 0 and neg.weight_error < 1e-12
    # by default exponents stay >= 0, so every sum is exact (no floor): -3 is -3 << 0
    pos, neg = quantize(g, config=QuantConfig(scale=100)).layers["l"].projections
    assert (pos.weight.tolist(), pos.exp, neg.weight.tolist(), neg.exp) == (
        [[100, 0]], 0, [[0, -3]], 0)  # fmt: skip


def test_weight_error_per_path_and_residue_terms():
    g = chain_graph(np.random.default_rng(8))
    errs = {}
    for cfg in (QuantConfig(split_sign=False), QuantConfig(), QuantConfig(weight_terms=2)):
        layer = quantize(g, config=cfg).layers["l1"]
        (err,) = path_errors(layer).values()  # one path input -> fc1 -> l1
        errs[(cfg.split_sign, cfg.weight_terms)] = (err, len(layer.projections))
    # a mixed 8-bit Dense keeps 7 magnitude bits: RMS error ~ step/sqrt(12) ~ 1% of N(0, 1)
    # weights; the sign split halves the step; a residue term takes about 7 bits more
    (e_mixed, n_mixed), (e_split, n_split), (e_two, n_two) = errs.values()
    assert (n_mixed, n_split, n_two) == (1, 2, 4)
    assert 0.003 < e_mixed < 0.03 and e_split < 0.7 * e_mixed and e_two < e_split / 50


def test_threshold_mantissa_from_calibrated_ranges_and_bias():
    g = chain_graph(np.random.default_rng(5), bias=True)
    ranges = {"l1": np.full(6, 10.0), "l2": np.full(4, 0.5)}
    q = quantize(g, ranges, QuantConfig(headroom=2.0))
    # l1: (2^23 - 1) / (64 x 2 x 10) = 6553.6 -> 6553; l2: / 0.5 -> 131071.98, capped 131071
    assert q.layers["l1"].vth == 6553 and q.layers["l2"].vth == 131071
    l1 = q.layers["l1"]
    # bias per step in v units: b x gain (1) x scale x 64, as mantissa << exponent
    b_int = g.nodes["fc1"].bias * l1.scale * 64
    np.testing.assert_allclose(l1.bias_mant << l1.bias_exp, b_int, atol=2.0 ** l1.bias_exp.max())
    assert l1.bias_clipped == 0 and np.all(np.abs(l1.bias_mant) <= 4095)
    row = q.rows()[0]
    assert row["layer"] == "l1" and row["vth_mant"] == 6553 and row["weights_clipped"] >= 0


def test_float_and_fixed_agree_on_a_conv_pool_graph():
    rng = np.random.default_rng(6)
    conv = nir.Conv2d(input_shape=(8, 8), weight=rng.normal(0, 0.6, (4, 2, 3, 3)), stride=1,
                      padding=1, dilation=1, groups=1, bias=rng.normal(0, 0.05, 4))  # fmt: skip
    pool = nir.SumPool2d(np.array([2, 2]), np.array([2, 2]), np.array([0, 0]))
    g = graph(
        {"input": nir.Input(np.array([2, 8, 8])), "conv": conv,
         "l1": nir.LIF(tau=np.full((4, 8, 8), 2e-4), r=np.full((4, 8, 8), 2.0),
                       v_leak=np.zeros((4, 8, 8)), v_threshold=np.ones((4, 8, 8)),
                       v_reset=np.zeros((4, 8, 8))),
         "pool": pool, "flat": nir.Flatten({"input": np.array([4, 4, 4])}, start_dim=0),
         "fc": nir.Affine(rng.normal(0, 0.3, (3, 64)), np.zeros(3)), "l2": lif(3),
         "output": nir.Output(np.array([3]))},
        [("input", "conv"), ("conv", "l1"), ("l1", "pool"), ("pool", "flat"), ("flat", "fc"),
         ("fc", "l2"), ("l2", "output")],
    )  # fmt: skip
    from export.loihi import float_records

    x = (rng.random((12, 4, 2, 8, 8)) < 0.3).astype(np.float32)
    rec = float_records(g, x)
    q = quantize(g, layer_ranges(g, rec))
    run = simulate_quantized(q, x.astype(np.int64))
    for name in ("l1", "l2"):
        agree = float((run.values[name] == rec[name]).mean())
        assert agree > 0.97, (name, agree)
        assert run.counts[name] == {"u_wrapped": 0, "v_saturated": 0}
    assert q.layers["l2"].projections[0].path == ("pool", "flat", "fc")


def test_unsupported_graphs_fail_with_one_line_errors():
    rng = np.random.default_rng(7)
    g = chain_graph(rng)
    g.nodes["l1"] = nir.LIF(tau=np.full(6, 2e-4), r=np.ones(6), v_leak=np.zeros(6),
                            v_threshold=np.ones(6), v_reset=np.full(6, 0.5))  # fmt: skip
    with pytest.raises(ValueError, match="v_reset must be 0"):
        quantize(g)
    g = chain_graph(rng)
    g.nodes["l1"] = nir.LI(tau=np.full(6, 2e-4), r=np.ones(6), v_leak=np.zeros(6))
    with pytest.raises(ValueError, match="LI"):
        quantize(g)
    g = chain_graph(rng)
    g.nodes["l1"] = nir.LIF(tau=np.linspace(2e-4, 3e-4, 6), r=np.ones(6), v_leak=np.zeros(6),
                            v_threshold=np.ones(6), v_reset=np.zeros(6))  # fmt: skip
    with pytest.raises(ValueError, match="tau must be the same"):
        quantize(g)
    g = chain_graph(rng)
    g.nodes["fc1"] = nir.Affine(rng.normal(size=(2, 3, 5)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"weight must be \[out, in\]"):
        quantize(g)
    q = quantize(chain_graph(rng))
    with pytest.raises(ValueError, match="must be"):
        simulate_quantized(q, np.zeros((3, 1, 4), np.int64))


# ----------------------------------------------------------------------------- FSVE, CLI


def test_micro_fsve_fixed_point_agrees_with_float(micro_fsve, clips):
    from export.nir import SplitModel, to_nir

    export = to_nir(micro_fsve, clips[:2])
    split = SplitModel(export.graph, export.host, accumulate=torch.float64)
    stateful = [n for n in split.sim.neuron_nodes() if "sn" not in n.split(".")[-1]]
    rec = split.run(clips[:6], record="all", states=stateful)
    q = quantize(export.graph, layer_ranges(export.graph, {k: v.numpy() for k, v in rec.items()}))
    calls = host_calls(export.host)
    # Lava timing: the host's E-SDSA output is as deep as the spikes it reads, and the
    # projection it feeds adds one more Dense
    depth = q.depth(calls)
    assert depth["blocks.0.attn.host.out"] == depth["blocks.0.attn.q.sn"] == depth[
        "blocks.0.attn.lif"] + 1  # fmt: skip
    assert depth["blocks.0.mlp.lif1"] == depth["blocks.0.attn.host.out"] + 1
    x = clips[6:12]
    fl = split.run(x, record=list(q.layers))
    run = simulate_quantized(q, x.transpose(0, 1).numpy().astype(np.int64), host=calls)
    forced = {n: fl[n].numpy() for n in q.layers}
    local = simulate_quantized(q, x.transpose(0, 1).numpy().astype(np.int64), host=calls,
                               clamp=forced)  # fmt: skip
    for name in q.layers:
        # free-running: mismatches grow with depth (inherited); local: one layer's own
        agree = float((run.values[name] == fl[name].numpy()).mean())
        agree_local = float((local.values[name] == fl[name].numpy()).mean())
        assert agree > 0.8 and agree_local > 0.98, (name, agree, agree_local)
        assert run.counts[name]["u_wrapped"] == 0
    assert sum(int(fl[n].sum()) for n in q.layers) > 1000


def test_cli_reports_float_and_fixed(micro_fsve, micro_checkpoint, tiny_data, tmp_path, capsys):
    from fsve.data.dataset import SpikeDataset

    ckpt = micro_checkpoint
    out = tmp_path / "rep"
    rc = main([str(ckpt), "--data", str(tiny_data), "--samples", "4", "--batch-size", "4",
               "--calibration", "4", "--out", str(out)])  # fmt: skip
    assert rc == 0
    text = capsys.readouterr().out
    assert "fixed (aligned)" in text and "final_lif" in text
    with open(out / "loihi_summary.csv") as f:
        summary = list(csv.DictReader(f))
    assert [r["model"] for r in summary] == ["float", "fixed (aligned)"]
    assert float(summary[1]["agreement_pct"]) > 95
    with open(out / "loihi_layers.csv") as f:
        layers = list(csv.DictReader(f))
    assert {"weight_rel_err_max", "agreement_pct", "u_wrapped", "v_saturated"} <= set(layers[0])
    # a written NIR graph (+ its host program beside it), class prompts from the checkpoint
    from export.nir import to_nir

    nir_path, _ = to_nir(micro_fsve, SpikeDataset(tiny_data, "test")[0]["spikes"][None]).save(
        tmp_path / "g" / "fsve.nir"
    )
    rc = main([str(nir_path), "--checkpoint", str(ckpt), "--data", str(tiny_data), "--samples",
               "4", "--calibration", "4", "--out", str(tmp_path / "rep2")])  # fmt: skip
    assert rc == 0 and "same_class_as_float" in capsys.readouterr().out
    assert main([str(tmp_path / "none.pt"), "--data", str(tiny_data)]) == 2
    assert main([str(ckpt), "--data", str(tmp_path / "nodata")]) == 2
    assert "no dataset" in capsys.readouterr().err


def test_an_unrelated_checkpoint_for_a_graph_is_refused(
    micro_fsve, micro_checkpoint, tiny_data, tmp_path, capsys
):
    """Issue 16, item 11: class prompts from a checkpoint the graph was not exported from would
    give a meaningless Top-1; the command says so in one line (exit 2), naming both files."""
    import torch

    from export.nir import to_nir
    from fsve.checkpoint import load_checkpoint, save_checkpoint
    from fsve.data.dataset import SpikeDataset

    x = SpikeDataset(tiny_data, "test")[0]["spikes"][None]
    nir_path, _ = to_nir(micro_fsve, x).save(tmp_path / "g" / "fsve.nir")
    stored = load_checkpoint(micro_checkpoint)
    state = {k: v.clone() for k, v in stored["state_dict"].items()}
    conv = next(k for k, v in state.items() if k.endswith("weight") and v.ndim == 4)
    state[conv] += 0.5 * torch.randn(state[conv].shape, generator=torch.Generator().manual_seed(0))
    other = save_checkpoint(
        tmp_path / "other.pt", "fsve", micro_fsve.cfg, state,
        tokenizer=stored["tokenizer"], classes=stored["classes"],
    )  # fmt: skip
    argv = [str(nir_path), "--data", str(tiny_data), "--samples", "2", "--calibration", "2"]
    assert main([*argv, "--checkpoint", str(other), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"--checkpoint {other} is not the model {nir_path}" in err
    assert "differ" in err and not (tmp_path / "r").exists()


def test_cli_bad_counts_are_one_line_usage_errors(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["fsve.pt", "--samples", "0"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--samples" in err and "must be >= 1" in err


def test_compare_fixed_point_from_python(micro_fsve, tiny_data, tmp_path):
    """The pipeline behind the CLI, called directly: the report is made from what it returns;
    Lava timing adds a summary row and a table, ``local=False`` leaves out the local
    agreement, a checkpoint without a tokenizer has no Top-1."""
    from export.loihi import compare_fixed_point, report_text, write_report
    from fsve.checkpoint import save_checkpoint

    ckpt = save_checkpoint(tmp_path / "fsve.pt", "fsve", micro_fsve.cfg, micro_fsve.state_dict())
    res = compare_fixed_point(ckpt, data=tiny_data, samples=2, batch_size=2, calibration=2,
                              lava_timing=True, local=False)  # fmt: skip
    assert [r["model"] for r in res.summary] == ["float", "fixed (aligned)", "fixed (lava)"]
    assert res.samples == 2 and res.calibration == 2
    assert res.prompt_template is None and res.summary[1]["top1_pct"] == "n/a"
    assert set(res.agreement) == {"aligned", "lava"}
    assert [r["layer"] for r in res.layers] == list(res.quantized.layers)
    assert "agreement_local_pct" not in res.layers[0]
    assert res.spikes[0] == sum(r["float_spikes"] for r in res.layers) > 0
    shapes = {k: tuple(e.shape) for k, e in res.embeddings.items()}
    assert set(shapes) == {"float", "aligned", "lava"} and len(set(shapes.values())) == 1
    assert len(res.labels) == 2
    text = report_text(res)
    assert "Top-1: n/a (no class prompts)" in text and "Per layer (lava timing" in text
    paths = write_report(res, tmp_path / "rep")
    assert [p.name for p in paths] == ["loihi.txt", "loihi_summary.csv", "loihi_layers.csv"]
    assert paths[0].read_text() == text
    with pytest.raises(ValueError, match="batch_size"):
        compare_fixed_point(ckpt, data=tiny_data, batch_size=0)
