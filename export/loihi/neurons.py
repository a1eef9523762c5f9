"""A float NIR neuron as the drive of a Lava LIF: threshold, input gain, decays per step.

LIF, CubaLIF, IF and Threshold nodes all become Lava's LIF (no leak potential, reset to 0,
start at 0); :func:`neuron_float` reads what the quantiser and the calibration need in float
units of ``v``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from export.loihi.paths import FlatGraph, f64, node_shape, uniform

__all__ = ["NeuronFloat", "neuron_float"]


@dataclass(frozen=True)
class NeuronFloat:
    """A neuron node's float parameters per neuron, in units of its ``v``."""

    kind: str
    shape: tuple[int, ...]
    threshold: np.ndarray  # [*shape], float units of v
    gain: np.ndarray  # [*shape]: per-step drive of u (v units) per unit of node input
    dv_frac: float  # voltage decay per step (dt/tau_mem), 1 for Threshold, 0 for IF
    du_frac: float  # current decay per step (dt/tau_syn); 1: no current memory


def neuron_float(g: FlatGraph, name: str, dt: float) -> NeuronFloat:
    """The float parameters of neuron node ``name`` at step ``dt`` (s); an error for
    what Lava's LIF cannot run (a reset or leak potential, per-neuron time constants)."""
    node, t = g.nodes[name], g.type[name]
    shape = node_shape(g, name)

    def arr(value: Any) -> np.ndarray:
        return np.broadcast_to(f64(value), shape).astype(np.float64)

    def zero(field_: str) -> None:
        if np.any(f64(getattr(node, field_)) != 0):
            raise ValueError(
                f"node {name!r} ({t}): {field_} must be 0 on Lava (its LIF starts at 0, has no"
                " leak potential and resets v to 0)"
            )

    if t == "Threshold":
        return NeuronFloat(t, shape, arr(node.threshold), arr(1.0), 1.0, 1.0)
    zero("v_reset")
    if t == "IF":
        return NeuronFloat(t, shape, arr(node.v_threshold), arr(f64(node.r) * dt), 0.0, 1.0)
    zero("v_leak")
    if t == "LIF":
        tau = uniform(node.tau, name, "tau") / dt
        return NeuronFloat(t, shape, arr(node.v_threshold), arr(f64(node.r) / tau), 1 / tau, 1.0)
    if t == "CubaLIF":
        tau_m = uniform(node.tau_mem, name, "tau_mem") / dt
        tau_s = uniform(node.tau_syn, name, "tau_syn") / dt
        gain = arr(f64(node.r) * f64(node.w_in) / (tau_m * tau_s))
        return NeuronFloat(t, shape, arr(node.v_threshold), gain, 1 / tau_m, 1 / tau_s)
    raise ValueError(f"node {name!r}: {t} is not a spiking neuron Lava's LIF can run")
