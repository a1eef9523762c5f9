"""Quantisation of a float NIR graph to Loihi integers: one Lava LIF + Dense/Conv per layer.

Float-to-integer mapping (``dt`` the graph's step, ``tau`` in steps ``tau/dt``)::

    LIF      du = 4095 (u is the step's input), dv = 4096/tau, input gain r/tau
    CubaLIF  du = 4096/tau_syn - 1, dv = 4096/tau_mem, gain r w_in/(tau_mem tau_syn)
    IF       du = 4095, dv = 0, gain r dt;    Threshold  du = dv = 4095, gain 1 (v keeps
             trunc(v/4096) of the last step: Lava's LIF cannot forget v entirely)
    scale    s_n = vth / v_threshold_n a_in units per float unit; vth (17 bits, one per layer)
             is the largest that keeps calibrated |u| and v below 2^23/headroom and the bias
             within 13+3 bits; weights W gain s_n as 8-bit mantissas << exponent per Dense
             (exponent and clipping chosen for the least squared error); bias b gain s_n 64
             (CubaLIF: x tau_syn, the current's steady state: Lava adds biases to v)

Units: a layer has a scale s_n per neuron (a_in units per float unit of the per-step drive
of v). The threshold mantissa vth is shared by the layer (Lava's vth is a scalar), so
s_n = vth / v_threshold_n; a per-channel threshold becomes per-channel weight scaling.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from export.fixed_point import (
    ACT_SHIFT,
    BIAS_EXP_MAX,
    BIAS_MANT_MAX,
    BIAS_MAX,
    DECAY_UNITY,
    V_LIMIT,
    VTH_MAX,
    VTH_SHIFT,
    WEIGHT_BITS,
    effective_weights,
)
from export.loihi.layers import Op, Projection, QuantConfig, QuantizedGraph, QuantLayer
from export.loihi.neurons import NeuronFloat, neuron_float
from export.loihi.paths import (
    LINEAR,
    NEURONS,
    FlatGraph,
    apply_ops,
    f64,
    graph_dt,
    node_shape,
    path_ops,
)

__all__ = ["quantize", "quantize_bias", "quantize_weights"]


def quantize(
    graph: Any,
    ranges: Mapping[str, np.ndarray] | None = None,
    config: QuantConfig | None = None,
    dt: float | None = None,
) -> QuantizedGraph:
    """Quantise a NIR graph (``nir.NIRGraph`` or file) for Loihi: one :class:`QuantLayer` per
    neuron node.

    ``ranges``: layer -> largest ``|u|``, ``|v|`` per neuron (float units, from
    :func:`~export.loihi.calibrate.layer_ranges` on calibration data); with them the
    threshold mantissa is the largest that keeps u and v below ``2^23 / headroom``. Without
    them only the 17-bit threshold and the bias range limit it. ``dt`` (s) defaults to the
    graph's ``metadata["dt_s"]`` or 1e-4.
    """
    cfg = config or QuantConfig()
    g = FlatGraph(graph)
    dt = graph_dt(graph, dt)
    ranges = dict(ranges or {})
    for name in g.order:  # every node must have a Loihi form, wherever it sits
        if g.type[name] not in (*NEURONS, *LINEAR, "Input", "Output"):
            raise ValueError(
                f"node {name!r}: NIR type {g.type[name]} has no Loihi form here (neurons:"
                f" {', '.join(NEURONS)}; between them: {', '.join(LINEAR)})"
            )
    layers: dict[str, QuantLayer] = {}
    for name in g.order:
        if g.type[name] in NEURONS:
            layers[name] = _quantize_layer(g, name, ranges.get(name), cfg, dt)
    inputs = {n: node_shape(g, n) for n in g.order if g.type[n] == "Input" and not g.preds[n]}
    outputs = {}
    for n in g.sim.outputs:
        preds = g.preds[n]
        if len(preds) != 1 or preds[0] not in layers:
            raise ValueError(
                f"Output {n!r} must read one neuron node's spikes (Loihi outputs spikes), reads"
                f" {preds}"
            )
        outputs[n] = preds[0]
    order = tuple(n for n in g.order if n in layers or n in inputs)
    return QuantizedGraph(layers, inputs, outputs, order, cfg, dt)


def _per_row(factor: np.ndarray, shape: tuple[int, ...], rows: int, post: bool, name: str):
    """A per-neuron factor as a per-output-row factor of the weighted op (scalar if uniform)."""
    flat = factor.reshape(-1)
    if np.all(flat == flat[0]):
        return float(flat[0])
    if post or shape[0] != rows:
        raise ValueError(
            f"layer {name!r}: per-neuron scaling (thresholds or gains that differ between"
            " neurons) needs the weighted node to feed the neurons directly"
        )
    per = factor.reshape(rows, -1)
    if np.any(per != per[:, :1]):
        raise ValueError(f"layer {name!r}: thresholds/gains may differ between channels only")
    return per[:, 0]


def quantize_weights(w_a: np.ndarray, cfg: QuantConfig) -> tuple[np.ndarray, int, int]:
    """Float weights in a_in units -> (effective integer weights, exponent, clipped count)."""
    neg, pos = bool(np.any(w_a < 0)), bool(np.any(w_a > 0))
    mixed = neg and pos
    k = WEIGHT_BITS - cfg.num_weight_bits + int(mixed)
    hi = ((1 << WEIGHT_BITS) - 1) >> k  # mantissa steps of 2^k
    lo = -(1 << WEIGHT_BITS) >> k if mixed else 0
    mag = -w_a if (neg and not pos) else w_a
    top = float(np.max(np.abs(mag), initial=0.0))
    if top == 0:
        return np.zeros(w_a.shape, np.int64), 0, 0
    e0 = max(int(np.ceil(np.log2(top / (hi << k)))), cfg.min_weight_exp)
    e_lo = max(e0 - (cfg.exp_search if cfg.rounding == "nearest" else 0), cfg.min_weight_exp)
    best = None
    for e in range(e_lo, e0 + 1):
        x = mag / 2.0**e / (1 << k)
        q = np.clip(cfg.round(x), lo, hi)
        err = float(np.sum((q * (1 << k) * 2.0**e - mag) ** 2))
        if best is None or err < best[0]:
            best = (err, e, q, int(np.count_nonzero((x > hi) | (x < lo))))
    _, e, q, clipped = best
    w = q.astype(np.int64) << k
    w = -w if (neg and not pos) else w
    if not np.array_equal(effective_weights(w, cfg.num_weight_bits), w):
        raise RuntimeError("internal error: quantised weights are not a Lava Dense's weights")
    return w, e, clipped


def quantize_bias(b_int: np.ndarray, cfg: QuantConfig) -> tuple[np.ndarray, np.ndarray, int]:
    """Bias in v units -> per-neuron (mantissa 13-bit signed, exponent 0..7, clipped count)."""
    mag = np.abs(b_int)
    with np.errstate(divide="ignore"):
        e = np.ceil(np.log2(np.maximum(mag, 1e-300) / BIAS_MANT_MAX))
    e = np.clip(np.nan_to_num(e, neginf=0), 0, BIAS_EXP_MAX).astype(np.int64)
    m = cfg.round(b_int / 2.0**e)
    clipped = int(np.count_nonzero(np.abs(m) > BIAS_MANT_MAX))
    return np.clip(m, -BIAS_MANT_MAX, BIAS_MANT_MAX).astype(np.int64), e, clipped


@dataclass(frozen=True)
class _FloatPath:
    """One path into a layer in float: its ops, folded multiplier and weights (torch)."""

    source: str
    path: tuple[str, ...]
    ops: list[Op]
    mult: float  # folded scalar multiplier of the path (Scale, AvgPool2d)
    weighted: int  # index of the weighted op in ops, -1 for none (an identity was appended)
    weights: dict[str, Any]  # node (or "" for the identity) -> float64 torch weights
    in_shape: tuple[int, ...]


def _quantize_layer(
    g: FlatGraph, name: str, rng: np.ndarray | None, cfg: QuantConfig, dt: float
) -> QuantLayer:
    nf = neuron_float(g, name, dt)
    if np.any(nf.threshold <= 0):
        raise ValueError(f"layer {name!r}: thresholds must be > 0 (Lava's vth is unsigned)")
    paths, bias_v = _float_paths(g, name, nf)
    vth, scale = _threshold(name, nf, rng, bias_v, cfg)
    threshold_error = float(np.max(np.abs(vth / scale - nf.threshold) / nf.threshold))
    projections = []
    for fp in paths:
        projections += _projections(fp, nf, scale, cfg, name)
    b_int = bias_v * scale * (1 << ACT_SHIFT)
    bias_mant, bias_exp, bias_clipped = quantize_bias(b_int, cfg)
    bias_error = float(
        np.max(np.abs((bias_mant << bias_exp) - b_int), initial=0.0) / (vth << VTH_SHIFT)
    )
    du, dv, decay_error, notes = _decays(nf, cfg)
    return QuantLayer(
        name,
        nf.kind,
        nf.shape,
        du,
        dv,
        vth,
        bias_mant,
        bias_exp,
        scale,
        tuple(projections),
        threshold_error,
        decay_error,
        bias_error,
        bias_clipped,
        notes,
    )


def _float_paths(g: FlatGraph, name: str, nf: NeuronFloat) -> tuple[list[_FloatPath], np.ndarray]:
    """The float projections into layer ``name`` and the constant drive of v (v units per
    step) their biases add."""
    import torch

    out = []
    bias_v = np.zeros(nf.shape)
    for src, path in g.paths(name):
        ops, mult, post, wi = path_ops(g, path)
        in_shape = node_shape(g, src)
        weights, biases = {}, {}
        if wi >= 0:
            node = g.nodes[ops[wi].node]
            weights[ops[wi].node] = torch.as_tensor(f64(node.weight))
            b = getattr(node, "bias", None)
            if b is not None:
                biases[ops[wi].node] = torch.as_tensor(f64(b))
        else:
            ops = [*ops, Op("identity")]
            weights[""] = torch.ones((), dtype=torch.float64)
        with torch.no_grad():
            y = apply_ops(ops, torch.zeros((1, *in_shape), dtype=torch.float64), weights, biases)
        if tuple(y.shape[1:]) != nf.shape:
            raise ValueError(
                f"path {src} -> {' -> '.join(path) or '(direct)'} -> {name} gives shape"
                f" {tuple(y.shape[1:])}, the layer has {nf.shape}"
            )
        # a constant input b drives v by b gain per step; for CubaLIF Lava's bias enters v
        # directly, so it gets the synaptic current's steady state (x tau_syn, no ramp-up)
        bias_v += y[0].numpy() * post * nf.gain / nf.du_frac
        out.append(_FloatPath(src, path, ops, mult, wi, weights, in_shape))
    return out, bias_v


def _threshold(
    name: str, nf: NeuronFloat, rng: np.ndarray | None, bias_v: np.ndarray, cfg: QuantConfig
) -> tuple[int, np.ndarray]:
    """The layer's threshold mantissa and the scale per neuron it gives (``vth / v_th``)."""
    thr = nf.threshold
    if cfg.scale is not None:
        vth_n = cfg.round(thr * cfg.scale)
        if np.any(vth_n != vth_n.reshape(-1)[0]):
            raise ValueError(f"layer {name!r}: thresholds differ, a fixed scale needs one vth")
        return int(vth_n.reshape(-1)[0]), np.full(nf.shape, float(cfg.scale))
    bound = float(VTH_MAX)
    if rng is not None:
        m = np.broadcast_to(f64(rng), nf.shape)
        if nf.shape and m.ndim > 1:  # one range per channel: spatial extremes generalise
            m = np.broadcast_to(m.reshape(nf.shape[0], -1).max(1).reshape(
                (nf.shape[0],) + (1,) * (len(nf.shape) - 1)), nf.shape)  # fmt: skip
        ok = m > 0
        if np.any(ok):
            lim = thr[ok] * V_LIMIT / ((1 << ACT_SHIFT) * cfg.headroom * m[ok])
            bound = min(bound, float(lim.min()))
    nz = bias_v != 0
    if np.any(nz):
        lim = BIAS_MAX * thr[nz] / ((1 << ACT_SHIFT) * np.abs(bias_v[nz]))
        bound = min(bound, float(lim.min()))
    vth = int(np.floor(bound))
    if vth < 1:
        raise ValueError(f"layer {name!r}: no threshold mantissa >= 1 fits its range")
    return vth, vth / thr


def _projections(
    fp: _FloatPath, nf: NeuronFloat, scale: np.ndarray, cfg: QuantConfig, name: str
) -> list[Projection]:
    """The Dense/Conv processes of one path: its weights in a_in units, split by sign and
    with a residue term as ``cfg`` asks, each quantised to mantissas << exponent."""
    factor = nf.gain * scale * fp.mult  # [*shape]: a_in units per unit of weighted output
    if fp.weighted >= 0:
        w = fp.weights[fp.ops[fp.weighted].node].numpy()
        f = _per_row(factor, nf.shape, w.shape[0], fp.weighted < len(fp.ops) - 1, name)
        w_a = w * (f if np.isscalar(f) else np.reshape(f, (-1,) + (1,) * (w.ndim - 1)))
    else:
        w_a = np.broadcast_to(factor, nf.shape).copy()
    w_a = np.asarray(w_a, np.float64)
    parts = [w_a]
    if cfg.split_sign and np.any(w_a < 0) and np.any(w_a > 0):
        # a mixed-sign Dense keeps 7 magnitude bits (its lowest bit is dropped); an
        # excitatory and an inhibitory one keep 8 each, with their own exponents
        parts = [np.maximum(w_a, 0.0), np.minimum(w_a, 0.0)]
    out = []
    src, path, ops, in_shape = fp.source, fp.path, tuple(fp.ops), fp.in_shape
    for part in parts:
        w_q, e, clipped = quantize_weights(part, cfg)
        out.append(Projection(src, path, ops, w_q, e, part, clipped, in_shape))
        if cfg.weight_terms == 2:  # a second Dense of the same path carries the residue
            rest = part - w_q * 2.0**e
            w_r, e_r, clipped_r = quantize_weights(rest, cfg)
            if np.any(w_r):
                out.append(Projection(src, path, ops, w_r, e_r, rest, clipped_r, in_shape, True))
    return out


def _decays(nf: NeuronFloat, cfg: QuantConfig) -> tuple[int, int, float, str]:
    """``(du, dv, decay_error, notes)`` of a layer."""
    if nf.kind == "Threshold":
        notes = "stateless Threshold as LIF du = dv = 4095: v keeps trunc(v / 4096) per step"
        return DECAY_UNITY - 1, DECAY_UNITY - 1, 0.0, notes
    unity = cfg.decay_unity
    dv = int(np.clip(cfg.round(unity * nf.dv_frac), 0, DECAY_UNITY - 1))
    du = DECAY_UNITY - 1  # no current memory: u is the step's input alone
    if nf.du_frac < 1:
        du = int(np.clip(cfg.round(unity * nf.du_frac) - 1, 0, DECAY_UNITY - 1))
    errs = [abs(dv / DECAY_UNITY - nf.dv_frac) / nf.dv_frac] if nf.dv_frac else [dv / 4096]
    if nf.kind == "CubaLIF":
        errs.append(abs((du + 1) / DECAY_UNITY - nf.du_frac) / nf.du_frac)
    return du, dv, float(max(errs)), ""
