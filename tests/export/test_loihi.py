"""Loihi fixed point: hand-computed arithmetic of the Dense -> LIF primitive, the NIR paper's
Lava fixed-point trace, graph quantisation and the fixed-point graph simulator."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from export.loihi import (
    decay,
    effective_weights,
    lif_fixed,
    simulate_dense_lif,
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
