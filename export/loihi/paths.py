"""The float NIR graph as Loihi sees it: spike sources, neuron layers, linear paths between.

:class:`FlatGraph` is the flattened graph of :mod:`export.sim` with the paths of linear nodes
(Conv/Affine/Linear, Scale, Flatten, pooling) from each spike source into a neuron layer;
:func:`path_ops` turns a path into integer-linear :class:`~export.loihi.layers.Op` steps and
:func:`apply_ops` runs them (torch, float or exact integer sums in float).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from export.graph import DT_S, int_tuple, padding_arg, port_shape
from export.loihi.layers import Op

__all__ = [
    "LINEAR",
    "NEURONS",
    "WEIGHTED",
    "FlatGraph",
    "apply_ops",
    "f64",
    "graph_dt",
    "node_shape",
    "path_ops",
    "uniform",
]

WEIGHTED = ("Conv1d", "Conv2d", "Affine", "Linear")
LINEAR = (*WEIGHTED, "Scale", "Flatten", "SumPool2d", "AvgPool2d")
NEURONS = ("LIF", "CubaLIF", "IF", "Threshold")


def graph_dt(graph: Any, dt: float | None = None) -> float:
    """``dt`` (s) if given, else the graph's ``metadata["dt_s"]``, else :data:`DT_S`."""
    meta = getattr(graph, "metadata", None) or {}
    return float(dt if dt is not None else np.asarray(meta.get("dt_s", DT_S)))


def f64(x: Any) -> np.ndarray:
    """``x`` as a float64 array (NIR parameters come in any dtype)."""
    return np.asarray(x, dtype=np.float64)


def uniform(value: Any, name: str, what: str) -> float:
    """The one value of a parameter Lava holds per layer; an error if neurons differ."""
    arr = f64(value).reshape(-1)
    if arr.size == 0 or np.any(arr != arr[0]):
        raise ValueError(f"node {name!r}: {what} must be the same for every neuron on Lava")
    return float(arr[0])


class FlatGraph:
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


def node_shape(g: FlatGraph, name: str) -> tuple[int, ...]:
    """Neurons per sample of a node (its output port, else its input port)."""
    node = g.nodes[name]
    shape = port_shape(node, "output") or port_shape(node, "input")
    if shape is None:
        raise ValueError(f"node {name!r} has no shape (input_type/output_type) in the graph")
    return shape


def path_ops(g: FlatGraph, path: tuple[str, ...]) -> tuple[list[Op], float, float, int]:
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
            f = uniform(node.scale, name, "Scale")
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


def apply_ops(ops: tuple[Op, ...] | list[Op], x: Any, weights: Mapping[str, Any], bias=None):
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
