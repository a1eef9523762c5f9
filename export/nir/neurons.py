"""Neuron mapping: our LIF <-> ``nir.LIF`` and the strict-threshold convention of NIR."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import nir
import numpy as np

from export.graph import DT_S
from export.nir.errors import ExportError
from fsve.nn.neurons import LIFParams

THRESHOLD_CONVENTION = "nir_v_threshold = nextafter(model_v_threshold, -inf) in the model dtype"


def nir_threshold(v_threshold: float | np.ndarray, dtype: Any = np.float32) -> np.ndarray:
    """The NIR threshold for a model threshold: the largest ``dtype`` value below it.

    NIR fires on ``v > thr``, our neurons on ``v >= V_th``. For every ``v`` of that float type,
    ``v > nextafter(V_th, -inf)`` holds exactly when ``v >= V_th``, so a simulator computing in
    the model's float type reproduces the spikes with no tie to break.
    """
    t = np.asarray(v_threshold, dtype=dtype)
    return np.nextafter(t, np.array(-np.inf, dtype=t.dtype))


def lif_to_nir(
    params: LIFParams, shape: Sequence[int], dt: float = DT_S, dtype: Any = np.float32
) -> nir.LIF:
    """``nir.LIF`` whose forward Euler at ``dt`` is the discrete LIF of ``params``.

    ``tau = tau_steps·dt`` (float64), ``r = 1`` with ``decay_input`` (the input is divided by
    tau) else ``r = tau_steps``, ``v_leak = v_reset = V_r``, threshold :func:`nir_threshold`.
    Every parameter is broadcast to ``shape`` (per-sample neuron shape, e.g. ``[C, H, W]``).
    """
    if params.v_reset is None:
        raise ExportError(
            "soft reset (v_reset=None, subtract V_th) has no NIR form: NIR neurons reset to"
            " v_reset; use a hard reset"
        )
    shape = tuple(int(s) for s in shape)
    full = lambda v, dt_=np.float64: np.full(shape, v, dtype=dt_)  # noqa: E731
    return nir.LIF(
        tau=full(params.tau * dt),
        r=full(1.0 if params.decay_input else params.tau),
        v_leak=full(params.v_reset),
        v_threshold=np.broadcast_to(nir_threshold(params.v_threshold, dtype), shape).copy(),
        v_reset=full(params.v_reset),
    )


def lif_from_nir(node: nir.LIF, dt: float = DT_S) -> LIFParams:
    """The inverse of :func:`lif_to_nir` for uniform parameters (raises if non-uniform).

    ``V_th = nextafter(thr, +inf)`` in the threshold's float type: under NIR's strict
    comparison this is the exact inclusive threshold of our neurons.
    """

    def uniform(name: str) -> np.ndarray:
        arr = np.asarray(getattr(node, name)).reshape(-1)
        if arr.size == 0 or not np.all(arr == arr[0]):
            raise ValueError(f"nir.LIF.{name} is not uniform; LIFParams hold one value")
        return arr[0]

    tau_steps = float(uniform("tau")) / dt
    r = float(uniform("r"))
    if math.isclose(r, 1.0, rel_tol=1e-9):
        decay_input = True
    elif math.isclose(r, tau_steps, rel_tol=1e-9):
        decay_input = False
    else:
        raise ValueError(f"nir.LIF.r = {r} is neither 1 nor tau/dt = {tau_steps}")
    v_leak, v_reset = float(uniform("v_leak")), float(uniform("v_reset"))
    if v_leak != v_reset:
        raise ValueError(f"nir.LIF.v_leak {v_leak} != v_reset {v_reset}: no LIFParams form")
    thr = uniform("v_threshold")
    return LIFParams(
        tau=tau_steps,
        v_threshold=float(np.nextafter(thr, np.array(np.inf, dtype=thr.dtype))),
        v_reset=v_reset,
        decay_input=decay_input,
    )
