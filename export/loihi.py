"""Loihi-style fixed point: quantisation of NIR graphs and a bit-exact, batched simulator.

The arithmetic is Lava's bit-accurate CPU models (lava-nc 0.10.0, ``PyLifModelBitAcc`` and
``PyDenseModelBitAcc``; ``../shared/REFERENCE.md`` section 3), per time step::

    Dense   a_out[t] = acc[t-1] (acc[-1] = 0): one step of synaptic delay per Dense/Conv
            acc[t]   = (W_eff @ s_in[t]) << weight_exp   (>> -weight_exp, arithmetic, if < 0)
            W_eff    = clip to [-256, 255] (mixed sign), [0, 255] or [-255, 0], then the lowest
                       k = 8 - num_weight_bits (+1 if mixed) bits dropped (of |w| if inhibitory)
    LIF     u = sign(u (4096 - (du + 1))) (|u (4096 - (du + 1))| >> 12)   (toward zero)
            u = u + (a_in << 6), wrapped: u > 2^23 -> u - 2^24, u <= -2^23 -> u + 2^24
            v = sign(v (4096 - dv)) (|v (4096 - dv)| >> 12) + u + (bias_mant << bias_exp),
                clipped to [-(2^23 - 1), 2^23 - 1]                (saturates, no wrap)
            s = v > vth << 6 (strict);  v = 0 where s;  u is not reset

Messages between processes are int32 as in Lava's ports (a sum or shift beyond int32 wraps as
numpy's int32 does); every other step is computed in int64, exactly. Tensors are time-first
``[T, B, ...]``; the single-layer primitive :func:`simulate_dense_lif` also takes ``[T, n]``.

Graphs: :func:`quantize` turns a NIR graph (LIF, CubaLIF, IF, Threshold neurons fed through
Conv/Affine/Linear, Scale, Flatten, Sum/AvgPool2d) into :class:`QuantizedGraph` layers, each a
Lava LIF with its Dense/Conv projections; :func:`simulate_quantized` runs it bit-exactly with
Lava's timing or aligned with the float model. ``python -m export.loihi GRAPH.nir|CKPT``
compares float and fixed point on real clips (accuracy, per-layer agreement, saturations).
Float-to-integer mapping (``dt`` the graph's step, ``tau`` in steps ``tau/dt``):

    LIF      du = 4095 (u is the step's input), dv = 4096/tau, input gain r/tau
    CubaLIF  du = 4096/tau_syn - 1, dv = 4096/tau_mem, gain r w_in/(tau_mem tau_syn)
    IF       du = 4095, dv = 0, gain r dt;    Threshold  du = dv = 4095, gain 1 (v keeps
             trunc(v/4096) of the last step: Lava's LIF cannot forget v entirely)
    scale    s_n = vth / v_threshold_n a_in units per float unit; vth (17 bits, one per layer)
             is the largest that keeps calibrated |u| and v below 2^23/headroom and the bias
             within 13+3 bits; weights W gain s_n as 8-bit mantissas << exponent per Dense
             (exponent and clipping chosen for the least squared error); bias b gain s_n 64
             (CubaLIF: x tau_syn, the current's steady state: Lava adds biases to v)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from export.graph import int_tuple, padding_arg, port_shape

__all__ = [
    "ACT_SHIFT",
    "DECAY_SHIFT",
    "DECAY_UNITY",
    "STATE_BITS",
    "U_WRAP",
    "VTH_SHIFT",
    "V_LIMIT",
    "WEIGHT_BITS",
    "FixedPointRun",
    "Op",
    "Projection",
    "QuantConfig",
    "QuantLayer",
    "QuantizedGraph",
    "agreement_rows",
    "decay",
    "delay_one",
    "dense_accumulate",
    "effective_bias",
    "effective_weights",
    "float_records",
    "layer_ranges",
    "lif_fixed",
    "main",
    "path_errors",
    "quantize",
    "sign_mode",
    "simulate_dense_lif",
    "simulate_quantized",
    "wrap_u",
]

# ----------------------------------------------------------------------------- constants
# Loihi 2 register widths as Lava's bit-accurate models use them (REFERENCE.md section 3).
WEIGHT_BITS = 8  # weight mantissa bits (mixed sign: 9-bit range [-256, 255], lowest bit dropped)
DECAY_BITS = 12  # du, dv are unsigned 12-bit
DECAY_SHIFT = 12
DECAY_UNITY = 1 << DECAY_SHIFT  # 4096: a decay of du/4096 per step
STATE_BITS = 24  # u and v are 24-bit signed
U_WRAP = 1 << (STATE_BITS - 1)  # 2^23: u wraps beyond it
V_LIMIT = (1 << (STATE_BITS - 1)) - 1  # v saturates at +-(2^23 - 1)
ACT_SHIFT = 6  # synaptic input is MSB-aligned: u += a_in << 6
VTH_SHIFT = 6  # threshold likewise: spike where v > vth << 6
VTH_BITS = 17  # vth mantissa, unsigned 0..131071
BIAS_MANT_BITS = 13  # signed -4096..4095
BIAS_EXP_MAX = 7  # unsigned 3-bit exponent
_I32 = 1 << 32


def _wrap32(x: np.ndarray) -> np.ndarray:
    """int64 -> the value numpy's int32 arithmetic would hold (two's complement wrap)."""
    return ((x + (1 << 31)) & (_I32 - 1)) - (1 << 31)


def _int_array(x: Any, name: str) -> np.ndarray:
    """An int64 copy of ``x``; integer-valued floats are accepted, anything else is an error."""
    arr = np.asarray(x)
    if arr.dtype == np.bool_:
        return arr.astype(np.int64)
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64)
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
            raise ValueError(f"{name} must hold integers, got non-integer floats")
        return arr.astype(np.int64)
    raise ValueError(f"{name} must be an integer array, got dtype {arr.dtype}")


def _shift(x: np.ndarray, exp: Any) -> np.ndarray:
    """``x << exp`` for ``exp >= 0``, arithmetic ``x >> -exp`` (floor) for ``exp < 0``."""
    e = np.asarray(exp, dtype=np.int64)
    return np.where(e >= 0, x << np.maximum(e, 0), x >> np.maximum(-e, 0))


# ----------------------------------------------------------------------------- arithmetic


def sign_mode(weights: np.ndarray) -> str:
    """``"excitatory"`` (all >= 0, all zero too), ``"inhibitory"`` (all <= 0) or ``"mixed"``."""
    w = np.asarray(weights)
    if w.size == 0 or w.min() >= 0:
        return "excitatory"
    if w.max() <= 0:
        return "inhibitory"
    return "mixed"


def effective_weights(
    weights: Any, num_weight_bits: int = WEIGHT_BITS, mode: str | None = None
) -> np.ndarray:
    """The weights a bit-accurate Dense uses: clipped to the sign mode's range, then truncated.

    Mixed sign: ``[-256, 255]``, ``k = 9 - num_weight_bits`` low bits dropped (arithmetic shift,
    so negative weights round down); excitatory ``[0, 255]`` and inhibitory ``[-255, 0]``:
    ``k = 8 - num_weight_bits`` bits of the magnitude dropped. Returns an int64 copy.
    """
    w = _int_array(weights, "weights")
    if not 1 <= int(num_weight_bits) <= WEIGHT_BITS:
        raise ValueError(f"num_weight_bits must be in 1..{WEIGHT_BITS}, got {num_weight_bits}")
    mode = sign_mode(w) if mode is None else mode
    if mode not in ("excitatory", "inhibitory", "mixed"):
        raise ValueError(f"sign mode must be excitatory, inhibitory or mixed, got {mode!r}")
    mixed = mode == "mixed"
    k = WEIGHT_BITS - int(num_weight_bits) + int(mixed)
    mag = -w if mode == "inhibitory" else w
    lo = -(1 << WEIGHT_BITS) if mixed else 0
    mag = np.clip(mag, lo, (1 << WEIGHT_BITS) - 1)
    mag = (mag >> k) << k
    return -mag if mode == "inhibitory" else mag


def decay(x: np.ndarray, d: Any) -> np.ndarray:
    """``sign(x (4096 - d)) (|x (4096 - d)| >> 12)``: a 12-bit decay truncated toward zero."""
    p = np.asarray(x, dtype=np.int64) * (DECAY_UNITY - np.asarray(d, dtype=np.int64))
    return np.sign(p) * (np.abs(p) >> DECAY_SHIFT)


def wrap_u(u: np.ndarray) -> np.ndarray:
    """Lava's 24-bit wrap of the current: ``u > 2^23 -> u - 2^24``, ``u <= -2^23 -> u + 2^24``."""
    u = np.where(u > U_WRAP, u - 2 * U_WRAP, u)
    return np.where(u <= -U_WRAP, u + 2 * U_WRAP, u)


def _int_sum(w: np.ndarray, s: np.ndarray) -> np.ndarray:
    """``s @ w.T`` exactly: float32/float64 BLAS while every sum stays exact, else int64."""
    if w.size == 0 or s.size == 0:
        return np.zeros((*s.shape[:-1], w.shape[0]), np.int64)
    bound = float(np.abs(s).max()) * float(np.abs(w).sum(1).max())  # largest |sum| possible
    for dtype, limit in ((np.float32, 2.0**24), (np.float64, 2.0**53)):
        if bound < limit:
            return np.rint(s.astype(dtype) @ w.T.astype(dtype)).astype(np.int64)
    return s.astype(np.int64) @ w.T


def dense_accumulate(
    weights_eff: np.ndarray, spikes: np.ndarray, weight_exp: int = 0
) -> np.ndarray:
    """Per-step accumulation of a Dense, ``[T, ..., n_in] -> [T, ..., n_out]``, int64.

    ``(W_eff @ s[t]) << weight_exp`` (arithmetic right shift for a negative exponent), wrapped
    to int32 as Lava's ``a_out`` port carries it. No delay: :func:`delay_one` adds it.
    """
    acc = _int_sum(weights_eff, spikes)
    return _wrap32(_shift(acc, weight_exp))


def delay_one(a: np.ndarray) -> np.ndarray:
    """``y[t] = a[t-1]``, ``y[0] = 0``: the buffered send of a Dense/Conv process."""
    out = np.zeros_like(a)
    out[1:] = a[:-1]
    return out


def effective_bias(bias_mant: Any, bias_exp: Any) -> np.ndarray:
    """``bias_mant << bias_exp`` (arithmetic right shift for a negative exponent), int64."""
    return _shift(_int_array(bias_mant, "bias_mant"), _int_array(bias_exp, "bias_exp"))


def _check_decay(d: Any, name: str) -> np.ndarray:
    arr = _int_array(d, name)
    if np.any(arr < 0) or np.any(arr >= DECAY_UNITY):
        raise ValueError(f"{name} must be in 0..{DECAY_UNITY - 1} (12-bit), got {d}")
    return arr


def lif_fixed(
    a_in: Any,
    *,
    du: Any,
    dv: Any,
    vth: Any,
    bias_mant: Any = 0,
    bias_exp: Any = 0,
    u0: Any = 0,
    v0: Any = 0,
    counts: dict[str, int] | None = None,
    keep_state: bool = True,
) -> dict[str, np.ndarray]:
    """Bit-accurate LIF over a synaptic input sequence ``a_in [T, ..., n]`` (the received
    ``a_in`` of each step, already delayed); returns int64 ``s``, ``u``, ``v`` ``[T, ..., n]``,
    the state after each step (``s`` only without ``keep_state``). Parameters are scalars or
    broadcast against ``[..., n]``. ``counts`` (if given) gets ``u_wrapped`` and
    ``v_saturated`` added: how many neuron-steps wrapped u or clipped v.
    """
    a = _int_array(a_in, "a_in")
    if a.ndim < 1:
        raise ValueError(f"a_in must be [T, ..., n], got shape {a.shape}")
    du_, dv_ = _check_decay(du, "du"), _check_decay(dv, "dv")
    vth_eff = _int_array(vth, "vth") << VTH_SHIFT
    bias = effective_bias(bias_mant, bias_exp)
    act = _wrap32(_wrap32(a) << ACT_SHIFT)  # [T, ..., n]: int32 left shift of the message
    per = np.broadcast_shapes(a.shape[1:], np.shape(u0), np.shape(v0))
    u = np.broadcast_to(_int_array(u0, "u0"), per).copy()
    v = np.broadcast_to(_int_array(v0, "v0"), per).copy()
    steps = a.shape[0]
    s_seq = np.empty((steps, *per), np.bool_)
    u_seq = np.empty((steps, *per), np.int64) if keep_state else None
    v_seq = np.empty((steps, *per), np.int64) if keep_state else None
    f_u = DECAY_UNITY - (du_ + 1)  # 0 for du = 4095: u forgets everything
    f_v = DECAY_UNITY - dv_
    u_memory = bool(np.any(f_u != 0)) or bool(np.any(u))
    # int32 wrap of decayed u + input: only reachable when the input is near 2^31
    wrap32 = act.size > 0 and int(np.abs(act).max()) >= (1 << 31) - 2 * U_WRAP
    wrapped = saturated = 0
    for t in range(steps):
        if u_memory:
            u *= f_u
            u += (u >> 63) & (DECAY_UNITY - 1)  # then >> 12: truncation toward zero
            u >>= DECAY_SHIFT
            u += act[t]
        else:
            u = act[t].copy()
        if wrap32:
            u = _wrap32(u)
        if int(u.max(initial=0)) > U_WRAP or int(u.min(initial=0)) <= -U_WRAP:
            w_ = wrap_u(u)
            wrapped += int(np.count_nonzero(w_ != u))
            u = w_
        v *= f_v
        v += (v >> 63) & (DECAY_UNITY - 1)
        v >>= DECAY_SHIFT
        v += u
        v += bias
        if counts is not None:
            saturated += int(np.count_nonzero((v > V_LIMIT) | (v < -V_LIMIT)))
        np.clip(v, -V_LIMIT, V_LIMIT, out=v)
        spk = np.greater(v, vth_eff, out=s_seq[t])
        np.copyto(v, 0, where=spk)
        if keep_state:
            u_seq[t], v_seq[t] = u, v
    if counts is not None:
        counts["u_wrapped"] = counts.get("u_wrapped", 0) + wrapped
        counts["v_saturated"] = counts.get("v_saturated", 0) + saturated
    out = {"s": s_seq.astype(np.int64)}
    if keep_state:
        out["u"], out["v"] = u_seq, v_seq
    return out


def simulate_dense_lif(
    weights: Any,
    spikes: Any,
    *,
    du: int,
    dv: int,
    vth: int,
    bias_mant: Any = 0,
    bias_exp: Any = 0,
    weight_exp: int = 0,
    num_weight_bits: int = WEIGHT_BITS,
) -> dict[str, np.ndarray]:
    """A Lava ``RingBuffer -> Dense -> LIF`` network (fixed point) run for T steps.

    ``weights [n_out, n_in]`` integers, ``spikes [T, n_in]`` or batched ``[T, B, n_in]``
    binary. Returns int64 ``s``, ``u``, ``v``, each ``[T, n_out]`` (``[T, B, n_out]``): the
    LIF state after each step. The Dense adds one step of delay (``s[0]`` sees no input);
    weights are clipped and truncated as :func:`effective_weights` says.
    """
    w = _int_array(weights, "weights")
    if w.ndim != 2:
        raise ValueError(f"weights must be [n_out, n_in], got shape {w.shape}")
    x = _int_array(spikes, "spikes")
    if x.ndim not in (2, 3) or x.shape[-1] != w.shape[1]:
        raise ValueError(
            f"spikes must be [T, {w.shape[1]}] or [T, B, {w.shape[1]}], got shape {x.shape}"
        )
    if np.any((x != 0) & (x != 1)):
        raise ValueError("spikes must be binary (0/1)")
    w_eff = effective_weights(w, num_weight_bits)
    a = delay_one(dense_accumulate(w_eff, x, int(weight_exp)))
    return lif_fixed(a, du=du, dv=dv, vth=vth, bias_mant=bias_mant, bias_exp=bias_exp)


# ----------------------------------------------------------------------------- quantisation
# A NIR graph becomes neuron layers (LIF, CubaLIF, IF, Threshold nodes), each fed by
# projections: every path of linear nodes (one Conv/Affine/Linear at most, plus Scale,
# Flatten, pooling) from a spike source (a neuron layer, a graph Input or a host Input) to it.
# A projection is one Lava Dense/Conv process with its own 8-bit mantissas and exponent; a
# layer's input is the sum of its projections (Lava sums the messages of every connection).
#
# Units: a layer has a scale s_n per neuron (a_in units per float unit of the per-step drive
# of v). The threshold mantissa vth is shared by the layer (Lava's vth is a scalar), so
# s_n = vth / v_threshold_n; a per-channel threshold becomes per-channel weight scaling.

WEIGHTED = ("Conv1d", "Conv2d", "Affine", "Linear")
LINEAR = (*WEIGHTED, "Scale", "Flatten", "SumPool2d", "AvgPool2d")
NEURONS = ("LIF", "CubaLIF", "IF", "Threshold")
VTH_MAX = (1 << VTH_BITS) - 1  # 131071
BIAS_MANT_MAX = (1 << (BIAS_MANT_BITS - 1)) - 1  # 4095
BIAS_MAX = BIAS_MANT_MAX << BIAS_EXP_MAX  # 524160, v units
ROUNDINGS = ("nearest", "floor")


@dataclass(frozen=True)
class QuantConfig:
    """How a float graph becomes Loihi integers (defaults: the least error without overflow)."""

    scale: float | None = None  # a_in units per float unit for every layer; None: per layer
    rounding: str = "nearest"  # of weights, thresholds, decays, biases: "nearest" | "floor"
    decay_unity: int = DECAY_UNITY  # dv = decay_unity * dt/tau (the NIR-to-Lava script: 4095)
    headroom: float = 2.0  # u, v stay below 2^23 / headroom on the calibration data
    num_weight_bits: int = WEIGHT_BITS
    exp_search: int = 2  # also try this many smaller weight exponents (clip outliers)
    min_weight_exp: int = 0  # < 0 allows finer weights, but Lava floors those sums (bias)
    split_sign: bool = True  # mixed-sign weights as two Dense processes (+, -): 8 bits each
    weight_terms: int = 1  # Dense processes per weight set: 2 adds one for the rounding residue

    def __post_init__(self) -> None:
        if self.rounding not in ROUNDINGS:
            raise ValueError(f"rounding must be one of {ROUNDINGS}, got {self.rounding!r}")
        if self.scale is not None and not (np.isfinite(self.scale) and self.scale > 0):
            raise ValueError(f"scale must be a finite number > 0, got {self.scale!r}")
        if not 1 <= self.decay_unity <= DECAY_UNITY:
            raise ValueError(f"decay_unity must be in 1..{DECAY_UNITY}, got {self.decay_unity}")
        if not self.headroom >= 1:
            raise ValueError(f"headroom must be >= 1, got {self.headroom}")
        if not 1 <= self.num_weight_bits <= WEIGHT_BITS:
            raise ValueError(f"num_weight_bits must be in 1..8, got {self.num_weight_bits}")
        if self.exp_search < 0:
            raise ValueError(f"exp_search must be >= 0, got {self.exp_search}")
        if self.weight_terms not in (1, 2):
            raise ValueError(f"weight_terms must be 1 or 2, got {self.weight_terms}")

    def round(self, x: Any) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        return np.floor(x) if self.rounding == "floor" else np.rint(x)


@dataclass(frozen=True)
class Op:
    """One integer-linear step of a projection, applied per time step."""

    kind: str  # "weighted" | "identity" | "sumpool" | "flatten"
    node: str = ""  # NIR node name ("" for identity)
    node_type: str = ""  # Conv2d, Conv1d, Affine, Linear
    params: tuple = ()  # conv: (stride, padding, dilation, groups); pool: (k, s, p); flatten


@dataclass(frozen=True)
class Projection:
    """A path from a spike source into a layer: one Lava Dense/Conv process.

    ``weight`` holds the effective integer weights (mantissas as a bit-accurate Dense uses
    them: ``effective_weights(weight) == weight``); the message is ``(ops(x)) << exp``.
    """

    source: str  # spike source: neuron layer, graph Input or host Input
    path: tuple[str, ...]  # linear NIR nodes from the source to the layer
    ops: tuple[Op, ...]
    weight: np.ndarray  # int64, weighted node's shape ([out, in, k...] / [out, in]) or neurons
    exp: int  # weight exponent
    weight_float: np.ndarray  # the float weights in a_in units (what weight << exp stands for)
    clipped: int  # weights clipped to the mantissa range
    in_shape: tuple[int, ...]
    residue: bool = False  # carries the rounding residue of the projection before it

    @property
    def weight_error(self) -> float:
        """RMS of (quantised - float) weights over RMS of the float weights."""
        q = self.weight.astype(np.float64) * 2.0**self.exp
        ref = float(np.sqrt(np.mean(self.weight_float**2)))
        if ref == 0:
            return 0.0
        return float(np.sqrt(np.mean((q - self.weight_float) ** 2)) / ref)


@dataclass(frozen=True)
class QuantLayer:
    """A neuron node as a Lava LIF process: integer parameters, its projections, its errors."""

    name: str
    kind: str  # LIF | CubaLIF | IF | Threshold
    shape: tuple[int, ...]  # neurons per sample
    du: int  # 12-bit current decay (Lava adds 1)
    dv: int  # 12-bit voltage decay
    vth: int  # threshold mantissa (spike where v > vth << 6)
    bias_mant: np.ndarray  # int64 [*shape] (or scalar)
    bias_exp: np.ndarray  # int64 [*shape] (or scalar)
    scale: np.ndarray  # float64 per neuron: a_in units per float unit of drive
    projections: tuple[Projection, ...]
    threshold_error: float  # max |vth/s - v_th| / v_th
    decay_error: float  # max |dv/4096 - dt/tau| / (dt/tau) (0 for Threshold: see notes)
    bias_error: float  # max |bias_q - bias| / (v_th s 64), relative to the threshold
    bias_clipped: int  # neurons whose bias exceeds 13+3 bits
    notes: str = ""


def path_errors(layer: QuantLayer) -> dict[tuple[str, tuple[str, ...]], float]:
    """Per (source, path): RMS of the quantised minus the float weights over the float RMS,
    summing the Dense processes of one path (sign split, residue terms)."""
    groups: dict[tuple[str, tuple[str, ...]], list[Projection]] = {}
    for p in layer.projections:
        groups.setdefault((p.source, p.path), []).append(p)
    out = {}
    for key, ps in groups.items():
        ref = sum(p.weight_float for p in ps if not p.residue)
        q = sum(p.weight.astype(np.float64) * 2.0**p.exp for p in ps)
        rms = float(np.sqrt(np.mean(ref**2)))
        out[key] = float(np.sqrt(np.mean((q - ref) ** 2)) / rms) if rms else 0.0
    return out


@dataclass(frozen=True)
class QuantizedGraph:
    """A NIR graph as Loihi integers: layers in topological order and its ports."""

    layers: dict[str, QuantLayer]
    inputs: dict[str, tuple[int, ...]]  # Input node -> shape (graph inputs and host inputs)
    outputs: dict[str, str]  # Output node -> the layer whose spikes it carries
    order: tuple[str, ...]  # layers and Input nodes, dependencies first
    config: QuantConfig
    dt: float

    def depth(self, host: Mapping[str, Any] | None = None) -> dict[str, int]:
        """Dense/Conv processes on the longest path from a graph Input to each layer (and
        Input); a host Input (``host``: name -> HostCall) is as deep as what it reads."""
        d: dict[str, int] = {}
        host = host or {}
        for name in _run_order(self, host):
            if name in self.layers:
                d[name] = 1 + max(d[p.source] for p in self.layers[name].projections)
            elif name in host:
                d[name] = max((d[self.outputs.get(n, n)] for n in host[name].needs), default=0)
            else:
                d[name] = 0
        return d

    def rows(self) -> list[dict[str, Any]]:
        """Per-layer quantisation report (one dict per layer)."""
        out = []
        for layer in self.layers.values():
            werr = list(path_errors(layer).values())
            out.append(
                {
                    "layer": layer.name,
                    "type": layer.kind,
                    "neurons": int(np.prod(layer.shape)),
                    "projections": len(layer.projections),
                    "weight_exp": ",".join(str(p.exp) for p in layer.projections),
                    "weight_rel_err_max": round(max(werr, default=0.0), 6),
                    "weights_clipped": sum(p.clipped for p in layer.projections),
                    "vth_mant": layer.vth,
                    "scale_min": float(f"{np.min(layer.scale):.6g}"),
                    "scale_max": float(f"{np.max(layer.scale):.6g}"),
                    "threshold_rel_err": round(layer.threshold_error, 6),
                    "du": layer.du,
                    "dv": layer.dv,
                    "decay_rel_err": round(layer.decay_error, 6),
                    "bias_rel_err": round(layer.bias_error, 6),
                    "bias_clipped": layer.bias_clipped,
                }
            )
        return out


def _f64(x: Any) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def _uniform(value: Any, name: str, what: str) -> float:
    arr = _f64(value).reshape(-1)
    if arr.size == 0 or np.any(arr != arr[0]):
        raise ValueError(f"node {name!r}: {what} must be the same for every neuron on Lava")
    return float(arr[0])


class _Graph:
    """The flattened NIR graph (nodes, predecessors, topological order) of export.sim."""

    def __init__(self, graph: Any) -> None:
        from export.sim import Simulator  # flattening and checks shared with the float model

        sim = Simulator(graph)
        self.sim = sim
        self.nodes, self.preds, self.order = sim.nodes, sim.preds, sim.order
        self.type = {n: type(node).__name__ for n, node in self.nodes.items()}

    def is_source(self, name: str) -> bool:
        t = self.type[name]
        return t in NEURONS or (t == "Input" and not self.preds[name])

    def paths(self, layer: str) -> list[tuple[str, tuple[str, ...]]]:
        """Every (source, linear nodes in order) path into ``layer``."""
        out: list[tuple[str, tuple[str, ...]]] = []

        def walk(node: str, suffix: tuple[str, ...]) -> None:
            if self.is_source(node):
                out.append((node, suffix))
                return
            t = self.type[node]
            if t not in (*LINEAR, "Input", "Output"):
                raise ValueError(
                    f"node {node!r} ({t}) between spike sources and {layer!r} has no Loihi"
                    f" form here (supported: {', '.join(LINEAR)}; neurons {', '.join(NEURONS)})"
                )
            if not self.preds[node]:
                raise ValueError(f"node {node!r} has no incoming edge")
            for p in self.preds[node]:
                walk(p, (node, *suffix))

        for p in self.preds[layer]:
            walk(p, ())
        if not out:
            raise ValueError(f"neuron node {layer!r} has no input")
        return out


def _node_shape(g: _Graph, name: str) -> tuple[int, ...]:
    node = g.nodes[name]
    shape = port_shape(node, "output") or port_shape(node, "input")
    if shape is None:
        raise ValueError(f"node {name!r} has no shape (input_type/output_type) in the graph")
    return shape


def _float_ops(g: _Graph, path: tuple[str, ...]) -> tuple[list[Op], float, float, int]:
    """The path as integer-linear ops, its folded scalar multiplier (all of it, and the part
    after the weighted node, which scales its bias too) and the weighted op's index."""
    ops: list[Op] = []
    mult, post, weighted = 1.0, 1.0, -1
    for name in path:
        node, t = g.nodes[name], g.type[name]
        if t in WEIGHTED:
            if weighted >= 0:
                raise ValueError(
                    f"path {' -> '.join(path)} has two weighted nodes without a neuron between"
                    " them; fold them into one first"
                )
            weighted = len(ops)
            if t in ("Conv1d", "Conv2d"):
                n = 1 if t == "Conv1d" else 2
                params = (
                    int_tuple(node.stride, n),
                    padding_arg(node.padding, n),
                    int_tuple(node.dilation, n),
                    int(np.asarray(node.groups)),
                )
            else:
                if np.asarray(node.weight).ndim != 2:
                    raise ValueError(
                        f"node {name!r} ({t}): weight must be [out, in] for a Lava Dense, got"
                        f" shape {np.shape(node.weight)}"
                    )
                params = ()
            ops.append(Op("weighted", name, t, params))
        elif t == "Scale":
            f = _uniform(node.scale, name, "Scale")
            mult, post = mult * f, post * f if weighted >= 0 else post
        elif t in ("SumPool2d", "AvgPool2d"):
            k = int_tuple(node.kernel_size, 2)
            if t == "AvgPool2d":  # = SumPool2d / area (padding counted)
                mult /= k[0] * k[1]
                post = post / (k[0] * k[1]) if weighted >= 0 else post
            ops.append(
                Op("sumpool", name, t, (k, int_tuple(node.stride, 2), int_tuple(node.padding, 2)))
            )
        elif t == "Flatten":
            ops.append(
                Op(
                    "flatten",
                    name,
                    t,
                    (int(np.asarray(node.start_dim)), int(np.asarray(node.end_dim))),
                )
            )
        # Input/Output nodes inside the path (nested graph ports) are identities
    return ops, mult, post, weighted


def _apply_ops(ops: tuple[Op, ...] | list[Op], x: Any, weights: Mapping[str, Any], bias=None):
    """Apply ops to ``x [N, *in_shape]`` (torch, float) with ``weights[node]`` (torch)."""
    import torch.nn.functional as F

    for op in ops:
        if op.kind == "sumpool":
            k, s, p = op.params
            x = F.avg_pool2d(x, k, s, p, count_include_pad=True, divisor_override=1)
        elif op.kind == "flatten":
            start, end = op.params
            n = x.ndim - 1
            s_ = start + n if start < 0 else start
            e_ = end + n if end < 0 else end
            x = x.flatten(s_ + 1, e_ + 1)
        elif op.kind == "identity":
            x = x * weights[""]
        elif op.kind == "weighted":
            w = weights[op.node]
            b = None if bias is None else bias.get(op.node)
            if op.node_type == "Conv2d":
                stride, padding, dilation, groups = op.params
                x = F.conv2d(x, w, b, stride, padding, dilation, groups)
            elif op.node_type == "Conv1d":
                stride, padding, dilation, groups = op.params
                x = F.conv1d(x, w, b, stride, padding, dilation, groups)
            else:
                x = F.linear(x, w, b)
        else:
            raise ValueError(f"unknown op {op.kind!r}")
    return x


# ----------------------------------------------------------------------------- neurons


@dataclass(frozen=True)
class _NeuronFloat:
    kind: str
    shape: tuple[int, ...]
    threshold: np.ndarray  # [*shape], float units of v
    gain: np.ndarray  # [*shape]: per-step drive of u (v units) per unit of node input
    dv_frac: float  # voltage decay per step (dt/tau_mem), 1 for Threshold, 0 for IF
    du_frac: float  # current decay per step (dt/tau_syn); 1: no current memory


def _neuron_float(g: _Graph, name: str, dt: float) -> _NeuronFloat:
    node, t = g.nodes[name], g.type[name]
    shape = _node_shape(g, name)

    def arr(value: Any) -> np.ndarray:
        return np.broadcast_to(_f64(value), shape).astype(np.float64)

    def zero(field_: str) -> None:
        if np.any(_f64(getattr(node, field_)) != 0):
            raise ValueError(
                f"node {name!r} ({t}): {field_} must be 0 on Lava (its LIF starts at 0, has no"
                " leak potential and resets v to 0)"
            )

    if t == "Threshold":
        return _NeuronFloat(t, shape, arr(node.threshold), arr(1.0), 1.0, 1.0)
    zero("v_reset")
    if t == "IF":
        return _NeuronFloat(t, shape, arr(node.v_threshold), arr(_f64(node.r) * dt), 0.0, 1.0)
    zero("v_leak")
    if t == "LIF":
        tau = _uniform(node.tau, name, "tau") / dt
        return _NeuronFloat(t, shape, arr(node.v_threshold), arr(_f64(node.r) / tau), 1 / tau, 1.0)
    if t == "CubaLIF":
        tau_m = _uniform(node.tau_mem, name, "tau_mem") / dt
        tau_s = _uniform(node.tau_syn, name, "tau_syn") / dt
        gain = arr(_f64(node.r) * _f64(node.w_in) / (tau_m * tau_s))
        return _NeuronFloat(t, shape, arr(node.v_threshold), gain, 1 / tau_m, 1 / tau_s)
    raise ValueError(f"node {name!r}: {t} is not a spiking neuron Lava's LIF can run")


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


def _quantize_weights(w_a: np.ndarray, cfg: QuantConfig) -> tuple[np.ndarray, int, int]:
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


def _quantize_bias(b_int: np.ndarray, cfg: QuantConfig) -> tuple[np.ndarray, np.ndarray, int]:
    """Bias in v units -> per-neuron (mantissa 13-bit signed, exponent 0..7, clipped count)."""
    mag = np.abs(b_int)
    with np.errstate(divide="ignore"):
        e = np.ceil(np.log2(np.maximum(mag, 1e-300) / BIAS_MANT_MAX))
    e = np.clip(np.nan_to_num(e, neginf=0), 0, BIAS_EXP_MAX).astype(np.int64)
    m = cfg.round(b_int / 2.0**e)
    clipped = int(np.count_nonzero(np.abs(m) > BIAS_MANT_MAX))
    return np.clip(m, -BIAS_MANT_MAX, BIAS_MANT_MAX).astype(np.int64), e, clipped


def quantize(
    graph: Any,
    ranges: Mapping[str, np.ndarray] | None = None,
    config: QuantConfig | None = None,
    dt: float | None = None,
) -> QuantizedGraph:
    """Quantise a NIR graph (``nir.NIRGraph`` or file) for Loihi: one :class:`QuantLayer` per
    neuron node.

    ``ranges``: layer -> largest ``|u|``, ``|v|`` per neuron (float units, from
    :func:`layer_ranges` on calibration data); with them the threshold mantissa is the largest
    that keeps u and v below ``2^23 / headroom``. Without them only the 17-bit threshold and
    the bias range limit it. ``dt`` (s) defaults to the graph's ``metadata["dt_s"]`` or 1e-4.
    """
    from export.sim import DT_S

    cfg = config or QuantConfig()
    g = _Graph(graph)
    meta = getattr(graph, "metadata", None) or {}
    dt = float(dt if dt is not None else np.asarray(meta.get("dt_s", DT_S)))
    ranges = dict(ranges or {})
    layers: dict[str, QuantLayer] = {}
    for name in g.order:
        if g.type[name] in NEURONS:
            layers[name] = _quantize_layer(g, name, ranges.get(name), cfg, dt)
    inputs = {n: _node_shape(g, n) for n in g.order if g.type[n] == "Input" and not g.preds[n]}
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


def _quantize_layer(
    g: _Graph, name: str, rng: np.ndarray | None, cfg: QuantConfig, dt: float
) -> QuantLayer:
    import torch

    nf = _neuron_float(g, name, dt)
    if np.any(nf.threshold <= 0):
        raise ValueError(f"layer {name!r}: thresholds must be > 0 (Lava's vth is unsigned)")
    # the float projections: ops, folded multiplier, float weights and the bias they carry
    raw = []
    bias_v = np.zeros(nf.shape)
    for src, path in g.paths(name):
        ops, mult, post, wi = _float_ops(g, path)
        in_shape = _node_shape(g, src)
        weights, biases = {}, {}
        if wi >= 0:
            node = g.nodes[ops[wi].node]
            weights[ops[wi].node] = torch.as_tensor(_f64(node.weight))
            b = getattr(node, "bias", None)
            if b is not None:
                biases[ops[wi].node] = torch.as_tensor(_f64(b))
        else:
            ops = [*ops, Op("identity")]
            weights[""] = torch.ones((), dtype=torch.float64)
        with torch.no_grad():
            y = _apply_ops(ops, torch.zeros((1, *in_shape), dtype=torch.float64), weights,
                           biases)  # fmt: skip
        if tuple(y.shape[1:]) != nf.shape:
            raise ValueError(
                f"path {src} -> {' -> '.join(path) or '(direct)'} -> {name} gives shape"
                f" {tuple(y.shape[1:])}, the layer has {nf.shape}"
            )
        # a constant input b drives v by b gain per step; for CubaLIF Lava's bias enters v
        # directly, so it gets the synaptic current's steady state (x tau_syn, no ramp-up)
        bias_v += y[0].numpy() * post * nf.gain / nf.du_frac
        raw.append((src, path, ops, mult, wi, weights, in_shape))
    # threshold mantissa and scales
    thr = nf.threshold
    if cfg.scale is not None:
        vth_n = cfg.round(thr * cfg.scale)
        if np.any(vth_n != vth_n.reshape(-1)[0]):
            raise ValueError(f"layer {name!r}: thresholds differ, a fixed scale needs one vth")
        vth = int(vth_n.reshape(-1)[0])
        scale = np.full(nf.shape, float(cfg.scale))
    else:
        bound = float(VTH_MAX)
        if rng is not None:
            m = np.broadcast_to(_f64(rng), nf.shape)
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
        scale = vth / thr
    threshold_error = float(np.max(np.abs(vth / scale - thr) / thr))
    # projections
    projections = []
    for src, path, ops, mult, wi, weights, in_shape in raw:
        factor = nf.gain * scale * mult  # [*shape]: a_in units per unit of weighted output
        if wi >= 0:
            node_name = ops[wi].node
            w = weights[node_name].numpy()
            f = _per_row(factor, nf.shape, w.shape[0], wi < len(ops) - 1, name)
            w_a = w * (f if np.isscalar(f) else np.reshape(f, (-1,) + (1,) * (w.ndim - 1)))
        else:
            w_a = np.broadcast_to(factor, nf.shape).copy()
        w_a = np.asarray(w_a, np.float64)
        parts = [w_a]
        if cfg.split_sign and np.any(w_a < 0) and np.any(w_a > 0):
            # a mixed-sign Dense keeps 7 magnitude bits (its lowest bit is dropped); an
            # excitatory and an inhibitory one keep 8 each, with their own exponents
            parts = [np.maximum(w_a, 0.0), np.minimum(w_a, 0.0)]
        for part in parts:
            w_q, e, clipped = _quantize_weights(part, cfg)
            projections.append(Projection(src, path, tuple(ops), w_q, e, part, clipped, in_shape))
            if cfg.weight_terms == 2:  # a second Dense of the same path carries the residue
                rest = part - w_q * 2.0**e
                w_r, e_r, clipped_r = _quantize_weights(rest, cfg)
                if np.any(w_r):
                    projections.append(
                        Projection(src, path, tuple(ops), w_r, e_r, rest, clipped_r, in_shape, True)
                    )
    # bias, decays
    b_int = bias_v * scale * (1 << ACT_SHIFT)
    bias_mant, bias_exp, bias_clipped = _quantize_bias(b_int, cfg)
    bias_error = float(
        np.max(np.abs((bias_mant << bias_exp) - b_int), initial=0.0) / (vth << VTH_SHIFT)
    )
    unity = cfg.decay_unity
    notes = ""
    if nf.kind == "Threshold":
        du, dv, decay_error = DECAY_UNITY - 1, DECAY_UNITY - 1, 0.0
        notes = "stateless Threshold as LIF du = dv = 4095: v keeps trunc(v / 4096) per step"
    else:
        dv = int(np.clip(cfg.round(unity * nf.dv_frac), 0, DECAY_UNITY - 1))
        du = DECAY_UNITY - 1  # no current memory: u is the step's input alone
        if nf.du_frac < 1:
            du = int(np.clip(cfg.round(unity * nf.du_frac) - 1, 0, DECAY_UNITY - 1))
        errs = [abs(dv / DECAY_UNITY - nf.dv_frac) / nf.dv_frac] if nf.dv_frac else [dv / 4096]
        if nf.kind == "CubaLIF":
            errs.append(abs((du + 1) / DECAY_UNITY - nf.du_frac) / nf.du_frac)
        decay_error = float(max(errs))
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


# ----------------------------------------------------------------------------- simulation


@dataclass
class FixedPointRun:
    """What :func:`simulate_quantized` returns; every array is time-first ``[T', B, ...]``."""

    values: dict[str, np.ndarray]  # layer / Output / Input -> spikes (int8)
    states: dict[str, np.ndarray]  # "<layer>.u", "<layer>.v" (int64) for the layers asked
    counts: dict[str, dict[str, int]]  # layer -> {"u_wrapped", "v_saturated"}
    delay: dict[str, int]  # layer -> steps its spikes lag the input (0 when aligned)
    steps: int  # T' simulated


def _project(p: Projection, x: np.ndarray) -> np.ndarray:
    """``x [T, B, *in]`` integers -> the projection's per-step message ``[T, B, *out]``."""
    import torch

    lead = x.shape[:2]
    w = np.abs(p.weight)
    weighted = any(op.kind == "weighted" for op in p.ops)
    row = float(w.reshape(w.shape[0], -1).sum(1).max(initial=0)) if weighted and w.size else 0.0
    row = row if weighted else float(w.max(initial=0))  # identity: one weight per neuron
    area = 1
    for op in p.ops:
        if op.kind == "sumpool":
            area *= int(np.prod(op.params[0]))
    bound = float(np.abs(x).max(initial=0)) * row * area  # largest |sum| of one output
    dtype = torch.float32 if bound < 2.0**24 else torch.float64  # every sum exact
    if bound >= 2.0**53:
        raise ValueError(f"projection {p.source} -> {p.path}: sums beyond 2^53 are not exact")
    xt = torch.as_tensor(x).reshape(-1, *x.shape[2:]).to(dtype)
    key = next((op.node for op in p.ops if op.kind in ("weighted", "identity")), "")
    weights = {key: torch.as_tensor(p.weight).to(dtype)}
    with torch.no_grad():
        y = _apply_ops(p.ops, xt, weights)
    acc = np.rint(y.numpy()).astype(np.int64).reshape(*lead, *y.shape[1:])
    return _wrap32(_shift(acc, p.exp))


def simulate_quantized(
    q: QuantizedGraph,
    inputs: Any,
    *,
    align: bool = True,
    host: Mapping[str, Any] | None = None,
    states: Iterable[str] = (),
    clamp: Mapping[str, Any] | None = None,
) -> FixedPointRun:
    """Run a quantised graph bit-exactly, batched, on integer inputs ``[T, B, *shape]``.

    ``align=False``: Lava's timing, one step of delay per Dense/Conv; the run is padded with
    zero input to ``T + depth`` steps so the deepest layer sees every input step.
    ``align=True``: no synaptic delay, so every layer's step ``t`` lines up with step ``t`` of
    the float model. It equals the Lava-timed run of the same network with synaptic delays
    that equalise every path (Loihi 2 has them), read ``depth`` steps later, for bias-free
    layers; residual joins of paths of different depth need those delays to mean the same.
    ``host``: Input node -> :class:`export.sim.HostCall` (host work, run in float in the same
    step). ``inputs``: one array for a graph with one Input, else a dict name -> array.
    ``clamp``: layer -> spikes ``[T', B, ...]`` its successors read instead of its own (teacher
    forcing: each layer fed the float model's upstream spikes isolates its own arithmetic);
    the layer's record keeps its computed spikes.
    """
    host = dict(host or {})
    wanted = [n for n in q.inputs if n not in host]
    if not isinstance(inputs, Mapping):
        if len(wanted) != 1:
            raise ValueError(f"the graph has Input nodes {wanted}; pass a dict name -> array")
        inputs = {wanted[0]: inputs}
    missing = sorted(set(wanted) - set(inputs))
    unknown = sorted(set(inputs) - set(wanted))
    if missing or unknown:
        raise ValueError(f"inputs: missing {missing}, unknown {unknown} (expected {wanted})")
    depth = q.depth(host)
    pad = 0 if align else max((depth[n] for n in q.layers), default=0)
    values: dict[str, np.ndarray] = {}
    lead = None
    for n in wanted:
        x = _int_array(inputs[n], f"input {n!r}")
        if x.ndim < 2 or tuple(x.shape[2:]) != q.inputs[n]:
            raise ValueError(f"input {n!r} must be [T, B, {q.inputs[n]}], got {x.shape}")
        if lead is not None and x.shape[:2] != lead:
            raise ValueError(f"inputs disagree on [T, B]: {x.shape[:2]} vs {lead}")
        lead = x.shape[:2]
        values[n] = np.concatenate([x, np.zeros((pad, *x.shape[1:]), x.dtype)]) if pad else x
    if lead is None:
        raise ValueError("no graph input given")
    want_states = set(states)
    unknown = sorted(want_states - set(q.layers))
    if unknown:
        raise ValueError(f"states: unknown layers {unknown}")
    outputs_of: dict[str, list[str]] = {}
    for o, layer in q.outputs.items():
        outputs_of.setdefault(layer, []).append(o)
    clamp = dict(clamp or {})
    unknown = sorted(set(clamp) - set(q.layers))
    if unknown:
        raise ValueError(f"clamp: unknown layers {unknown}")
    feed: dict[str, np.ndarray] = {}  # what successors read, where it differs from values
    run = FixedPointRun({}, {}, {}, {}, lead[0] + pad)
    for name in _run_order(q, host):
        if name in host:
            _host_input(name, host[name], {**values, **feed}, values, q)
            continue
        if name not in q.layers:
            continue
        layer = q.layers[name]
        a = None
        for p in layer.projections:
            m = _project(p, feed.get(p.source, values[p.source]))
            if not align:
                m = delay_one(m)
            a = m if a is None else a + m
        counts: dict[str, int] = {}
        out = lif_fixed(
            a,
            du=layer.du,
            dv=layer.dv,
            vth=layer.vth,
            bias_mant=layer.bias_mant,
            bias_exp=layer.bias_exp,
            counts=counts,
            keep_state=name in want_states,
        )
        values[name] = out["s"].astype(np.int8)
        if name in clamp:
            forced = _int_array(clamp[name], f"clamp {name!r}").astype(np.int8)
            if forced.shape != values[name].shape:
                raise ValueError(f"clamp {name!r}: shape {forced.shape}, want {values[name].shape}")
            feed[name] = forced
        run.counts[name] = counts
        run.delay[name] = 0 if align else depth[name]
        if name in want_states:
            run.states[f"{name}.u"], run.states[f"{name}.v"] = out["u"], out["v"]
        for o in outputs_of.get(name, []):
            values[o] = values[name]
            if name in feed:
                feed[o] = feed[name]
    run.values = values
    return run


def _run_order(q: QuantizedGraph, host: Mapping[str, Any]) -> list[str]:
    """Layers and Inputs, each after what it reads (host Inputs after the layers they need)."""
    preds: dict[str, list[str]] = {n: [] for n in q.inputs}
    for name, layer in q.layers.items():
        preds[name] = [p.source for p in layer.projections]
    for name, call in host.items():
        if name not in q.inputs:
            raise ValueError(f"host values can feed graph Input nodes only, not {name!r}")
        needs = []
        for n in call.needs:
            if n not in q.outputs and n not in q.layers:
                raise ValueError(f"host call for {name!r} needs unknown node {n!r}")
            needs.append(q.outputs.get(n, n))
        preds[name] = needs
    indeg = {n: len(ps) for n, ps in preds.items()}
    succs: dict[str, list[str]] = {n: [] for n in preds}
    for n, ps in preds.items():
        for p in ps:
            succs[p].append(n)
    ready = [n for n in q.order if indeg[n] == 0]
    order = []
    while ready:
        n = ready.pop(0)
        order.append(n)
        for s_ in succs[n]:
            indeg[s_] -= 1
            if indeg[s_] == 0:
                ready.append(s_)
    if len(order) != len(preds):
        raise ValueError("the graph with its host calls is recurrent; this simulator runs DAGs")
    return order


def _host_input(
    name: str, call: Any, read: Mapping[str, np.ndarray], values: dict, q: QuantizedGraph
) -> None:
    """Compute a host-fed Input from the Output values it needs (host work, in float)."""
    import torch

    need = {n: torch.as_tensor(read[n].astype(np.float32)) for n in call.needs}
    with torch.no_grad():
        y = torch.as_tensor(call.fn(need)).cpu().numpy()
    if tuple(y.shape[2:]) != q.inputs[name]:
        raise ValueError(
            f"host call for {name!r} returned {y.shape}, want [T, B, *{q.inputs[name]}]"
        )
    values[name] = _int_array(y, f"host input {name!r}")


# ----------------------------------------------------------------------------- calibration


def layer_ranges(
    graph: Any, records: Mapping[str, Any], dt: float | None = None
) -> dict[str, np.ndarray]:
    """Per-neuron range (float units of v) of each neuron node from a float run: the largest
    ``|u|`` and the largest ``v`` before the threshold test (bounded by ``v+ + u+``). Negative
    ``v`` is not bounded: it saturates harmlessly far below threshold (and is counted).

    ``records``: outputs of :class:`export.sim.Simulator` run with ``record="all"`` and the
    neuron states (``"<node>.v"``, ``"<node>.i"``), ``[T, B, ...]``.
    """
    from export.sim import DT_S

    g = _Graph(graph)
    meta = getattr(graph, "metadata", None) or {}
    dt = float(dt if dt is not None else np.asarray(meta.get("dt_s", DT_S)))
    out = {}
    for name in g.order:
        if g.type[name] not in NEURONS:
            continue
        nf = _neuron_float(g, name, dt)
        x = sum(np.asarray(records[p], np.float64) for p in g.preds[name])
        if nf.kind == "CubaLIF":
            node = g.nodes[name]
            u = np.asarray(records[f"{name}.i"], np.float64) * _f64(node.r) * nf.dv_frac
        else:
            u = x * nf.gain
        m = np.abs(u).max(axis=(0, 1))
        if f"{name}.v" in records:  # v before the threshold test: at most v+ (after) + u+
            v_pos = np.maximum(np.asarray(records[f"{name}.v"], np.float64), 0).max(axis=(0, 1))
            m = np.maximum(m, v_pos + np.maximum(u, 0).max(axis=(0, 1)))
        out[name] = m
    return out


def float_records(graph: Any, inputs: Any, host: Mapping[str, Any] | None = None, dt=None):
    """Run the float reference (:mod:`export.sim`, float64) recording what calibration needs."""
    import torch

    from export.sim import DT_S, Simulator

    meta = getattr(graph, "metadata", None) or {}
    dt = float(dt if dt is not None else np.asarray(meta.get("dt_s", DT_S)))
    sim = Simulator(graph, dt, torch.float64)
    stateful = [n for n in sim.neuron_nodes() if type(sim.nodes[n]).__name__ != "Threshold"]
    res = sim.run(inputs, record="all", states=stateful, host=host)
    return {k: v.numpy() for k, v in res.items()}


# ----------------------------------------------------------------------------- comparison


def agreement_rows(
    q: QuantizedGraph,
    float_spikes: Mapping[str, np.ndarray],
    fixed: Mapping[str, np.ndarray],
    counts: Mapping[str, Mapping[str, int]],
    delay: Mapping[str, int] | None = None,
) -> list[dict[str, Any]]:
    """Per layer: float vs fixed spike counts, agreement of every neuron-step, saturations.

    ``delay``: layer -> steps its fixed-point spikes lag (Lava timing); step ``t + delay`` is
    compared with float step ``t``.
    """
    rows = []
    for name in q.layers:
        f = np.asarray(float_spikes[name]) != 0
        d = int((delay or {}).get(name, 0))
        x = np.asarray(fixed[name])[d : d + f.shape[0]] != 0
        rows.append(
            {
                "layer": name,
                "float_spikes": int(f.sum()),
                "fixed_spikes": int(x.sum()),
                "agreement_pct": round(100.0 * float((f == x).mean()), 4),
                "u_wrapped": int(counts.get(name, {}).get("u_wrapped", 0)),
                "v_saturated": int(counts.get(name, {}).get("v_saturated", 0)),
            }
        )
    return rows


def _table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "(none)\n"
    cols = list(rows[0])
    cells = [[str(r[c]) for c in cols] for r in rows]
    width = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(cols)]
    line = lambda vals: "  ".join(v.rjust(w) for v, w in zip(vals, width, strict=True))  # noqa: E731
    return "\n".join([line(cols), line(["-" * w for w in width]), *map(line, cells)]) + "\n"


# ----------------------------------------------------------------------------- CLI

EXIT_USAGE = 2


def main(argv: list[str] | None = None) -> int:
    import argparse
    import sys
    from pathlib import Path

    p = argparse.ArgumentParser(
        prog="python -m export.loihi",
        description="Quantise a NIR graph (or an FSVE checkpoint) to Loihi fixed point and run"
        " float and fixed point side by side on real clips.",
    )
    p.add_argument(
        "model", type=Path, help="GRAPH.nir (host program OUT.host.pt beside it) or CKPT"
    )
    p.add_argument("--data", type=Path, default=Path("data/synth"), help="dataset folder")
    p.add_argument("--out", type=Path, default=None, help="report folder (reports/loihi/<stem>)")
    p.add_argument("--split", default="test", help="split measured (default test)")
    p.add_argument("--samples", type=int, default=None, help="clips measured (default all)")
    p.add_argument("--batch-size", type=int, default=8, help="clips per batch")
    p.add_argument("--calibration", type=int, default=16, help="train clips for the ranges")
    p.add_argument("--checkpoint", type=Path, default=None, help="FSVE checkpoint for the"
                   " class prompts when MODEL is a .nir (Top-1 needs them)")  # fmt: skip
    p.add_argument("--headroom", type=float, default=2.0, help="u, v below 2^23/headroom")
    p.add_argument(
        "--weight-terms",
        type=int,
        choices=(1, 2),
        default=1,
        help="Dense/Conv processes per weight set: 2 adds one for the rounding residue"
        " (about 15-bit weights at twice the synapses)",
    )
    p.add_argument(
        "--lava-timing",
        action="store_true",
        help="also run with Lava's one-step delay per Dense/Conv (not aligned)",
    )
    args = p.parse_args(argv)
    try:
        return _run(args)
    except (ValueError, FileNotFoundError, OSError, KeyError) as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE


def _run(args: Any) -> int:
    import time
    from pathlib import Path

    import nir
    import torch
    import torch.nn.functional as F

    from export.nir import (
        DEFAULT_TEMPLATE,
        HostProgram,
        SplitModel,
        class_prompt_embeddings,
        clip_batches,
        host_path_for,
        to_nir,
    )
    from export.sim import HostCall
    from fsve.checkpoint import load_model
    from fsve.data.dataset import SpikeDataset, WindowSpec
    from fsve.io import atomic_write_bytes, csv_text

    if args.batch_size < 1 or args.calibration < 1 or (args.samples or 1) < 1:
        raise ValueError("--batch-size, --calibration and --samples must be >= 1")
    if not (args.data / "manifest.csv").is_file():
        raise FileNotFoundError(
            f"{args.data}: no dataset (make one with `python -m fsve.data synth --out data/synth`)"
        )
    model = ckpt = None
    if args.model.suffix == ".nir":
        if not args.model.is_file():
            raise FileNotFoundError(f"{args.model}: no such NIR file")
        graph = nir.read(args.model)
        hp = host_path_for(args.model)
        host = HostProgram.load(hp) if hp.is_file() else HostProgram()
        if args.checkpoint is not None:
            model, ckpt = load_model(args.checkpoint, kind="fsve")
    else:
        model, ckpt = load_model(args.model, kind="fsve")
        graph = host = None
    window = None
    if model is not None:
        window = WindowSpec(num_blocks=model.cfg.num_blocks, radius=model.cfg.block_frames // 2)
    dataset = SpikeDataset(args.data, args.split, window=window or WindowSpec())
    calib_set = SpikeDataset(args.data, "train", window=window or WindowSpec())
    samples = len(dataset) if args.samples is None else min(args.samples, len(dataset))
    calib = next(
        iter(clip_batches(calib_set, min(args.calibration, len(calib_set)), args.calibration))
    )
    if graph is None:
        export = to_nir(model, calib["spikes"][: args.batch_size])
        graph, host = export.graph, export.host
    dt = float(np.asarray((graph.metadata or {}).get("dt_s", 1e-4)))
    split = SplitModel(graph, host, dt, accumulate=torch.float64)
    calls = {
        op.output: HostCall(tuple(op.inputs), lambda d, op=op: op(*(d[n] for n in op.inputs)))
        for op in host.ops
        if op.feeds_graph
    }
    finals = [op for op in host.ops if not op.feeds_graph]
    t0 = time.perf_counter()
    stateful = [
        n for n in split.sim.neuron_nodes() if type(split.sim.nodes[n]).__name__ != "Threshold"
    ]
    rec = split.run(calib["spikes"], record="all", states=stateful)
    ranges = layer_ranges(graph, {k: v.numpy() for k, v in rec.items()}, dt)
    del rec
    cfg = QuantConfig(headroom=args.headroom, weight_terms=args.weight_terms)
    q = quantize(graph, ranges, cfg, dt)
    t_quant = time.perf_counter() - t0
    classes = (
        class_prompt_embeddings(model, ckpt, dataset.class_names) if model is not None else None
    )
    modes = {"aligned": True, **({"lava": False} if args.lava_timing else {})}
    float_spk: dict[str, list[np.ndarray]] = {n: [] for n in q.layers}
    fixed_spk: dict[str, dict[str, list[np.ndarray]]] = {
        m: {n: [] for n in q.layers} for m in modes
    }
    counts: dict[str, dict[str, dict[str, int]]] = {m: {} for m in modes}
    local_spk: dict[str, list[np.ndarray]] = {n: [] for n in q.layers}
    emb: dict[str, list[torch.Tensor]] = {"float": [], **{m: [] for m in modes}}
    labels = []
    t1 = time.perf_counter()
    for batch in clip_batches(dataset, samples, args.batch_size):
        x = batch["spikes"]
        fl = split.run(x, record=list(q.layers))
        for n in q.layers:
            float_spk[n].append(fl[n].numpy().astype(np.int8))
        if finals:
            emb["float"].append(fl[finals[0].output])
        xin = host.graph_input(x, torch.float32).numpy().astype(np.int64)
        for mode, align in modes.items():
            run = simulate_quantized(q, {host.input_name: xin}, align=align, host=calls)
            for n in q.layers:
                fixed_spk[mode][n].append(run.values[n])
                for k, v in run.counts[n].items():
                    counts[mode].setdefault(n, {}).setdefault(k, 0)
                    counts[mode][n][k] += v
            if finals:
                op = finals[0]
                with torch.no_grad():
                    need = [torch.as_tensor(run.values[i].astype(np.float32)) for i in op.inputs]
                    emb[mode].append(op(*need))
        forced = {n: float_spk[n][-1] for n in q.layers}
        local = simulate_quantized(q, {host.input_name: xin}, host=calls, clamp=forced)
        for n in q.layers:
            local_spk[n].append(local.values[n])
        labels.append(batch["label"])
    t_sim = time.perf_counter() - t1
    cat = lambda xs: np.concatenate(xs, axis=1)  # noqa: E731  [T, B, ...] batches
    fl_all = {n: cat(v) for n, v in float_spk.items()}
    depth = q.depth(calls)
    rows = {
        m: agreement_rows(
            q,
            fl_all,
            {n: cat(v) for n, v in fixed_spk[m].items()},
            counts[m],
            None if modes[m] else depth,
        )
        for m in modes
    }
    y = torch.cat(labels)
    top1: dict[str, str] = {}
    same: dict[str, str] = {}
    if classes is not None and finals:
        preds = {}
        for k, e in emb.items():
            preds[k] = (F.normalize(torch.cat(e), dim=-1) @ classes.T).argmax(-1)
            top1[k] = f"{100 * float((preds[k] == y).float().mean()):.2f}"
            same[k] = f"{int((preds[k] == preds['float']).sum())}/{len(y)}"
    local_rows = agreement_rows(q, fl_all, {n: cat(v) for n, v in local_spk.items()}, {})
    quant_rows = q.rows()
    layer_rows = [
        {**qr, **ar, "agreement_local_pct": lr["agreement_pct"]}
        for qr, ar, lr in zip(quant_rows, rows["aligned"], local_rows, strict=True)
    ]
    out_dir = args.out or Path("reports/loihi") / args.model.stem
    summary = [
        {"model": "float", "top1_pct": top1.get("float", "n/a"),
         "same_class_as_float": same.get("float", "n/a"), "agreement_pct": 100.0,
         "u_wrapped": 0, "v_saturated": 0},
    ]  # fmt: skip
    for m in modes:
        total = sum(int(np.prod(fl_all[n].shape)) for n in q.layers)
        agree = sum(r["agreement_pct"] * np.prod(fl_all[r["layer"]].shape) for r in rows[m])
        summary.append(
            {
                "model": f"fixed ({m})",
                "top1_pct": top1.get(m, "n/a"),
                "same_class_as_float": same.get(m, "n/a"),
                "agreement_pct": round(float(agree / max(total, 1)), 4),
                "u_wrapped": sum(r["u_wrapped"] for r in rows[m]),
                "v_saturated": sum(r["v_saturated"] for r in rows[m]),
            }
        )
    spikes_f = sum(r["float_spikes"] for r in rows["aligned"])
    spikes_x = sum(r["fixed_spikes"] for r in rows["aligned"])
    lines = [
        f"Loihi fixed point of {args.model}",
        f"measured on {samples} clips of {args.data} {args.split}; ranges from"
        f" {calib['spikes'].shape[0]} train clips (quantise {t_quant:.1f} s, run {t_sim:.1f} s)",
        "float: export.sim (float32 neurons, float64 sums) + host program; fixed: bit-exact"
        " Lava arithmetic (8-bit weights + exponent, 12-bit decays, 24-bit u/v), host in float",
        "aligned: no synaptic delay, steps line up with the float model (a Loihi run with"
        " path-equalising delays); lava: one step per Dense/Conv, run T + depth steps",
        f"zero-shot prompts '{DEFAULT_TEMPLATE}'" if top1 else "Top-1: n/a (no class prompts)",
        "",
        _table(summary),
        f"spikes float {spikes_f}, fixed {spikes_x}",
        "",
        "Per layer (aligned): quantisation and agreement with the float model (agreement:"
        " free-running, errors inherited from upstream included; local: each layer fed the"
        " float model's upstream spikes)",
        _table(layer_rows),
    ]
    if "lava" in modes:
        lines += ["Per layer (lava timing: step t + depth against float step t)",
                  _table(rows["lava"])]  # fmt: skip
    text = "\n".join(lines)
    atomic_write_bytes(out_dir / "loihi.txt", text.encode())
    atomic_write_bytes(out_dir / "loihi_summary.csv", csv_text(summary).encode())
    atomic_write_bytes(out_dir / "loihi_layers.csv", csv_text(layer_rows).encode())
    print(text, end="")
    print(f"wrote {out_dir}/loihi.txt, loihi_summary.csv, loihi_layers.csv")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
