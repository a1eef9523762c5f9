"""Calibration: the float ranges of every neuron layer that pick its threshold mantissa."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from export.loihi.neurons import neuron_float
from export.loihi.paths import NEURONS, FlatGraph, f64, graph_dt

__all__ = ["float_records", "layer_ranges"]


def layer_ranges(
    graph: Any, records: Mapping[str, Any], dt: float | None = None
) -> dict[str, np.ndarray]:
    """Per-neuron range (float units of v) of each neuron node from a float run: the largest
    ``|u|`` and the largest ``v`` before the threshold test (bounded by ``v+ + u+``). Negative
    ``v`` is not bounded: it saturates harmlessly far below threshold (and is counted).

    ``records``: outputs of :class:`export.sim.Simulator` run with ``record="all"`` and the
    neuron states (``"<node>.v"``, ``"<node>.i"``), ``[T, B, ...]``.
    """
    g = FlatGraph(graph)
    dt = graph_dt(graph, dt)
    out = {}
    for name in g.order:
        if g.type[name] not in NEURONS:
            continue
        nf = neuron_float(g, name, dt)
        x = sum(np.asarray(records[p], np.float64) for p in g.preds[name])
        if nf.kind == "CubaLIF":
            node = g.nodes[name]
            u = np.asarray(records[f"{name}.i"], np.float64) * f64(node.r) * nf.dv_frac
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

    from export.sim import Simulator

    sim = Simulator(graph, graph_dt(graph, dt), torch.float64)
    stateful = [n for n in sim.neuron_nodes() if type(sim.nodes[n]).__name__ != "Threshold"]
    res = sim.run(inputs, record="all", states=stateful, host=host)
    return {k: v.numpy() for k, v in res.items()}
