"""Loihi 2 fixed point: the register widths and Lava's bit-accurate integer arithmetic.

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

numpy only (no torch, no nir): :mod:`export.loihi` builds its quantiser and graph simulator on
it, and :mod:`export.lava` imports it under the Lava interpreter (``.venv-lava``) too.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "ACT_SHIFT",
    "BIAS_EXP_MAX",
    "BIAS_MANT_BITS",
    "BIAS_MANT_MAX",
    "BIAS_MAX",
    "DECAY_BITS",
    "DECAY_SHIFT",
    "DECAY_UNITY",
    "STATE_BITS",
    "U_WRAP",
    "VTH_BITS",
    "VTH_MAX",
    "VTH_SHIFT",
    "V_LIMIT",
    "WEIGHT_BITS",
    "decay",
    "delay_one",
    "dense_accumulate",
    "effective_bias",
    "effective_weights",
    "int_array",
    "lif_fixed",
    "shift",
    "sign_mode",
    "simulate_dense_lif",
    "wrap32",
    "wrap_u",
]

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
VTH_MAX = (1 << VTH_BITS) - 1  # 131071
BIAS_MANT_MAX = (1 << (BIAS_MANT_BITS - 1)) - 1  # 4095
BIAS_MAX = BIAS_MANT_MAX << BIAS_EXP_MAX  # 524160, v units
_I32 = 1 << 32


def wrap32(x: np.ndarray) -> np.ndarray:
    """int64 -> the value numpy's int32 arithmetic would hold (two's complement wrap)."""
    return ((x + (1 << 31)) & (_I32 - 1)) - (1 << 31)


def int_array(x: Any, name: str) -> np.ndarray:
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


def shift(x: np.ndarray, exp: Any) -> np.ndarray:
    """``x << exp`` for ``exp >= 0``, arithmetic ``x >> -exp`` (floor) for ``exp < 0``."""
    e = np.asarray(exp, dtype=np.int64)
    return np.where(e >= 0, x << np.maximum(e, 0), x >> np.maximum(-e, 0))


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
    w = int_array(weights, "weights")
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
    return wrap32(shift(acc, weight_exp))


def delay_one(a: np.ndarray) -> np.ndarray:
    """``y[t] = a[t-1]``, ``y[0] = 0``: the buffered send of a Dense/Conv process."""
    out = np.zeros_like(a)
    out[1:] = a[:-1]
    return out


def effective_bias(bias_mant: Any, bias_exp: Any) -> np.ndarray:
    """``bias_mant << bias_exp`` (arithmetic right shift for a negative exponent), int64."""
    return shift(int_array(bias_mant, "bias_mant"), int_array(bias_exp, "bias_exp"))


def _check_decay(d: Any, name: str) -> np.ndarray:
    arr = int_array(d, name)
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
    a = int_array(a_in, "a_in")
    if a.ndim < 1:
        raise ValueError(f"a_in must be [T, ..., n], got shape {a.shape}")
    du_, dv_ = _check_decay(du, "du"), _check_decay(dv, "dv")
    vth_eff = int_array(vth, "vth") << VTH_SHIFT
    bias = effective_bias(bias_mant, bias_exp)
    act = wrap32(wrap32(a) << ACT_SHIFT)  # [T, ..., n]: int32 left shift of the message
    per = np.broadcast_shapes(a.shape[1:], np.shape(u0), np.shape(v0))
    u = np.broadcast_to(int_array(u0, "u0"), per).copy()
    v = np.broadcast_to(int_array(v0, "v0"), per).copy()
    steps = a.shape[0]
    s_seq = np.empty((steps, *per), np.bool_)
    u_seq = np.empty((steps, *per), np.int64) if keep_state else None
    v_seq = np.empty((steps, *per), np.int64) if keep_state else None
    f_u = DECAY_UNITY - (du_ + 1)  # 0 for du = 4095: u forgets everything
    f_v = DECAY_UNITY - dv_
    u_memory = bool(np.any(f_u != 0)) or bool(np.any(u))
    # int32 wrap of decayed u + input: only reachable when the input is near 2^31
    int32_wraps = act.size > 0 and int(np.abs(act).max()) >= (1 << 31) - 2 * U_WRAP
    wrapped = saturated = 0
    for t in range(steps):
        if u_memory:
            u *= f_u
            u += (u >> 63) & (DECAY_UNITY - 1)  # then >> 12: truncation toward zero
            u >>= DECAY_SHIFT
            u += act[t]
        else:
            u = act[t].copy()
        if int32_wraps:
            u = wrap32(u)
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
    w = int_array(weights, "weights")
    if w.ndim != 2:
        raise ValueError(f"weights must be [n_out, n_in], got shape {w.shape}")
    x = int_array(spikes, "spikes")
    if x.ndim not in (2, 3) or x.shape[-1] != w.shape[1]:
        raise ValueError(
            f"spikes must be [T, {w.shape[1]}] or [T, B, {w.shape[1]}], got shape {x.shape}"
        )
    if np.any((x != 0) & (x != 1)):
        raise ValueError("spikes must be binary (0/1)")
    w_eff = effective_weights(w, num_weight_bits)
    a = delay_one(dense_accumulate(w_eff, x, int(weight_exp)))
    return lif_fixed(a, du=du, dv=dv, vth=vth, bias_mant=bias_mant, bias_exp=bias_exp)
