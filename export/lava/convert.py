"""A quantised graph of :mod:`export.loihi` as a :class:`~export.lava.graph.LavaGraph`.

Read by attribute, so this module never imports export.loihi, torch or nir: each projection
becomes one Lava Conv or Dense, or the Dense of its composed integer linear map.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from export.fixed_point import effective_weights
from export.lava.graph import LIFQ, LavaGraph, LavaLayer, Synapse, conv_out_size, pair

__all__ = ["MAX_COMPOSED_WEIGHTS", "from_quantized"]

MAX_COMPOSED_WEIGHTS = 1 << 24  # entries of a dense matrix composed from a projection's ops


def from_quantized(q: Any) -> LavaGraph:
    """:class:`LavaGraph` of an ``export.loihi.QuantizedGraph`` (read by attribute, so this
    module never imports export.loihi or torch).

    A projection that is one Conv2d becomes a Lava Conv (its ``exp`` folded into the weights,
    so ``exp >= 0`` only); one Affine/Linear, with Flattens around it, a Dense. Anything else
    (sum pools, per-neuron identities, a Conv2d with a negative exponent) becomes the Dense of
    the composed integer linear map, which is exact as long as that matrix is what Lava's
    Dense uses unchanged (no truncation) and has at most ``MAX_COMPOSED_WEIGHTS`` entries; a
    projection that cannot be expressed raises ValueError naming the layer and its path.
    """
    shapes: dict[str, tuple[int, ...]] = {k: tuple(v) for k, v in q.inputs.items()}
    layers = []
    for name in q.order:
        if name not in q.layers:
            continue
        ql = q.layers[name]
        shape = tuple(int(n) for n in ql.shape)
        syns = tuple(
            _synapse_from_projection(p, shapes[p.source], shape, name) for p in ql.projections
        )
        neuron = LIFQ(du=ql.du, dv=ql.dv, vth=ql.vth, bias_mant=ql.bias_mant, bias_exp=ql.bias_exp)
        layers.append(LavaLayer(name, shape, neuron, syns))
        shapes[name] = shape
    inputs = {k: v for k, v in shapes.items() if k in q.inputs}
    return LavaGraph(inputs, tuple(layers))


def _conv_padding(
    padding: Any, kernel: tuple[int, ...], dilation: tuple[int, ...], stride
) -> tuple[int, int] | None:
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0)
        span = [d * (k - 1) for k, d in zip(kernel, dilation, strict=True)]
        if (
            padding == "same"
            and all(int(st) == 1 for st in stride)
            and all(x % 2 == 0 for x in span)
        ):
            return (span[0] // 2, span[1] // 2)
        return None
    return pair(padding, "padding")


def _synapse_from_projection(
    p: Any, src_shape: tuple[int, ...], shape: tuple[int, ...], layer: str
) -> Synapse:
    kinds = [op.kind for op in p.ops]
    weighted = [op for op in p.ops if op.kind == "weighted"]
    w = np.asarray(p.weight)
    path = " -> ".join((p.source, *p.path, layer))
    if kinds == ["weighted"] and weighted[0].node_type == "Conv2d" and int(p.exp) >= 0:
        stride, padding, dilation, groups = weighted[0].params
        pad = _conv_padding(padding, w.shape[2:], tuple(dilation), tuple(stride))
        if pad is not None:
            return Synapse(
                p.source,
                w,
                int(p.exp),
                stride=tuple(stride),
                padding=pad,
                dilation=tuple(dilation),
                groups=int(groups),
            )
    if (
        len(weighted) == 1
        and weighted[0].node_type in ("Affine", "Linear")
        and set(kinds) <= {"weighted", "flatten"}
        and w.ndim == 2
        and w.shape == (int(np.prod(shape)), int(np.prod(src_shape)))
    ):
        return Synapse(p.source, w, int(p.exp))
    n_in, n_out = int(np.prod(src_shape)), int(np.prod(shape))
    if n_in * n_out > MAX_COMPOSED_WEIGHTS:
        raise ValueError(
            f"layer {layer!r}: projection {path} ({', '.join(kinds)}) has no single Lava "
            f"process, and its composed dense matrix ({n_out}x{n_in}) is too large"
        )
    basis = np.eye(n_in, dtype=np.int64).reshape(n_in, *src_shape)
    m = _apply_int_ops(p.ops, basis, w, layer).reshape(n_in, n_out).T  # [n_out, n_in]
    syn = Synapse(p.source, m, int(p.exp))
    if not np.array_equal(effective_weights(m, syn.num_weight_bits), m):
        raise ValueError(
            f"layer {layer!r}: the composed weights of {path} ({', '.join(kinds)}) are not "
            "what Lava's Dense keeps (clipping or truncation would change them)"
        )
    return syn


def _apply_int_ops(ops: Sequence[Any], x: np.ndarray, w: np.ndarray, layer: str) -> np.ndarray:
    """The projection's integer ops on ``x [N, *shape]`` (numpy, exact), as export.loihi
    applies them: sum pool (padding counted), flatten, per-neuron identity, conv, linear."""
    for op in ops:
        if op.kind == "sumpool":
            k, st, pad = (pair(v, "pool") for v in op.params)
            x = _correlate(x, np.ones((x.shape[1], 1, *k), np.int64), st, pad, (1, 1), x.shape[1])
        elif op.kind == "flatten":
            start, end = (int(v) for v in op.params)
            n = x.ndim - 1
            start, end = (start + n if start < 0 else start) + 1, (end + n if end < 0 else end) + 1
            x = x.reshape(*x.shape[:start], -1, *x.shape[end + 1 :])
        elif op.kind == "identity":
            x = x * w
        elif op.kind == "weighted" and op.node_type == "Conv2d":
            stride, padding, dilation, groups = op.params
            pad = _conv_padding(padding, w.shape[2:], tuple(dilation), tuple(stride))
            if pad is None:
                raise ValueError(f"layer {layer!r}: conv padding {padding!r} is not symmetric")
            x = _correlate(
                x, w, pair(stride, "stride"), pad, pair(dilation, "dilation"), int(groups)
            )
        elif op.kind == "weighted" and op.node_type in ("Affine", "Linear"):
            x = x.reshape(len(x), -1) @ w.T
        else:
            raise ValueError(
                f"layer {layer!r}: op {op.kind} ({op.node_type}) has no Lava form here"
            )
    return x


def _correlate(x: np.ndarray, w: np.ndarray, stride, padding, dilation, groups: int) -> np.ndarray:
    """Exact integer cross-correlation of ``x [N, C, H, W]`` with ``w [O, C/g, kh, kw]``."""
    n, _, h, wd = x.shape
    o, cg, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding[0],) * 2, (padding[1],) * 2))
    ho = conv_out_size(h, kh, stride[0], padding[0], dilation[0])
    wo = conv_out_size(wd, kw, stride[1], padding[1], dilation[1])
    out = np.zeros((n, o, ho, wo), np.int64)
    og = o // groups
    for g in range(groups):
        xs, ws = xp[:, g * cg : (g + 1) * cg], w[g * og : (g + 1) * og]
        for a in range(kh):
            for b in range(kw):
                y0, x0 = a * dilation[0], b * dilation[1]
                patch = xs[
                    :, :, y0 : y0 + stride[0] * ho : stride[0], x0 : x0 + stride[1] * wo : stride[1]
                ]
                out[:, g * og : (g + 1) * og] += np.einsum("ncij,oc->noij", patch, ws[:, :, a, b])
    return out
