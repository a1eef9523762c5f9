"""Synaptic paths as relations: which source neurons reach which destination neurons.

Conv, pool and identity ops factorise per axis: ``axes[a]`` is a bool matrix
``[n_dst_a, n_src_a]`` (None for the identity), and (dst i, src j) are connected iff every axis
connects ``i_a`` to ``j_a``. ``full`` relations (Affine/Linear) connect every pair. Connections
are counted from geometry, as in sinabs' ``conv_connection_map``: a conv connects an output
neuron to every in-bounds input tap of its kernel (stride, padding, dilation, groups).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import nir
import numpy as np

from export.graph import conv_out_size, int_tuple, padding_arg
from export.mapping.targets import MappingError

__all__ = ["Relation", "compose", "identity"]


@dataclass(frozen=True)
class Relation:
    """Source -> destination connectivity of a synaptic path (see the module docstring)."""

    src_shape: tuple[int, ...]
    dst_shape: tuple[int, ...]
    axes: tuple[np.ndarray | None, ...] | None  # None: full
    flat: bool = False  # a Flatten is pending: only a full relation may follow
    weighted: tuple[str, ...] = ()  # conv/pool/dense nodes on the path, in order
    kernel_weights: int = 0  # Cout x Cin/g x kh x kw of a single conv/pool (0 if none/many)

    @property
    def full(self) -> bool:
        return self.axes is None


def _window(n_out: int, n_in: int, k: int, s: int, p: int, d: int) -> np.ndarray:
    """Axis matrix of a sliding window: out i reads in ``i*s - p + j*d``, j < k, in bounds."""
    m = np.zeros((n_out, n_in), dtype=bool)
    rows = np.arange(n_out)[:, None]
    taps = rows * s - p + np.arange(k)[None, :] * d  # [n_out, k]
    ok = (taps >= 0) & (taps < n_in)
    m[np.broadcast_to(rows, taps.shape)[ok], taps[ok]] = True
    return m


def _groups_matrix(c_out: int, c_in: int, groups: int) -> np.ndarray | None:
    if groups == 1:
        return np.ones((c_out, c_in), dtype=bool)
    if c_out % groups or c_in % groups:
        raise ValueError(f"groups {groups} does not divide channels {c_in} -> {c_out}")
    go, gi = np.arange(c_out) // (c_out // groups), np.arange(c_in) // (c_in // groups)
    return go[:, None] == gi[None, :]


def _conv_axes(
    name: str, node: Any, shape: tuple[int, ...], n: int
) -> tuple[tuple[int, ...], list[np.ndarray], int]:
    """Conv1d (n=1) / Conv2d (n=2) on ``shape = (Cin, *spatial)``: output shape, axes."""
    weight = np.asarray(node.weight)
    if weight.ndim != n + 2 or len(shape) != n + 1:
        raise MappingError(
            f"layer input {name!r}: {type(node).__name__} weight {weight.shape} does not fit"
            f" input shape {shape}"
        )
    c_out, c_in_g, kernel = weight.shape[0], weight.shape[1], weight.shape[2:]
    groups = int(getattr(node, "groups", 1) or 1)
    if c_in_g * groups != shape[0]:
        raise MappingError(
            f"{name!r}: weight expects {c_in_g * groups} input channels, input has {shape[0]}"
        )
    stride, dilation = int_tuple(node.stride, n), int_tuple(node.dilation, n)
    pad = padding_arg(node.padding, n)
    if pad == "valid":
        pad = (0,) * n
    elif pad == "same":
        pad = tuple(d * (k - 1) // 2 for k, d in zip(kernel, dilation, strict=True))
    axes = [_groups_matrix(c_out, shape[0], groups)]
    out = [c_out]
    for a in range(n):
        size = conv_out_size(shape[a + 1], kernel[a], stride[a], pad[a], dilation[a])
        out.append(size)
        axes.append(_window(size, shape[a + 1], kernel[a], stride[a], pad[a], dilation[a]))
    return tuple(out), axes, int(weight.size)


def _pool_axes(
    name: str, node: Any, shape: tuple[int, ...]
) -> tuple[tuple[int, ...], list[np.ndarray | None], int]:
    if len(shape) != 3:
        raise MappingError(f"{name!r}: 2-d pooling needs a (C, H, W) input, got {shape}")
    kernel, stride = int_tuple(node.kernel_size, 2), int_tuple(node.stride, 2)
    pad = int_tuple(node.padding, 2)
    out: list[int] = [shape[0]]
    axes: list[np.ndarray | None] = [None]
    for a in range(2):
        size = conv_out_size(shape[a + 1], kernel[a], stride[a], pad[a], 1)
        out.append(size)
        axes.append(_window(size, shape[a + 1], kernel[a], stride[a], pad[a], 1))
    return tuple(out), axes, shape[0] * kernel[0] * kernel[1]


def compose(rel: Relation, name: str, node: Any) -> Relation:
    """``rel`` (source -> current node's input) followed by ``node``."""
    shape = rel.dst_shape
    kind = type(node).__name__
    if isinstance(node, nir.Affine | nir.Linear):
        weight = np.asarray(node.weight)
        n_in = int(np.prod(shape))
        if weight.ndim != 2 or (weight.shape[1] != n_in):
            raise MappingError(
                f"{name!r}: {kind} weight {weight.shape} does not fit its input {shape}"
                " (flatten it first)"
            )
        if len(shape) != 1 and not rel.flat:
            raise MappingError(f"{name!r}: {kind} on a {len(shape)}-d input {shape}; add a Flatten")
        return dataclasses.replace(
            rel, dst_shape=(int(weight.shape[0]),), axes=None, flat=False,
            weighted=(*rel.weighted, name), kernel_weights=0,
        )  # fmt: skip
    if rel.flat:
        raise MappingError(
            f"{name!r}: {kind} after a Flatten; the mapper needs a Flatten to feed an"
            " Affine/Linear (remove the Flatten or add a dense layer after it)"
        )
    if isinstance(node, nir.Scale | nir.Delay):
        return rel
    if isinstance(node, nir.Flatten):
        if len(shape) <= 1:
            return rel
        # exporters disagree on whether start_dim counts the batch axis; only a dense layer
        # may follow, which reads the flat vector whatever the dims, so the dims do not matter
        return dataclasses.replace(rel, dst_shape=(int(np.prod(shape)),), flat=True)
    if isinstance(node, nir.Conv2d | nir.Conv1d):
        out, op_axes, kernel = _conv_axes(
            name, node, shape, 2 if isinstance(node, nir.Conv2d) else 1
        )
    elif isinstance(node, nir.SumPool2d | nir.AvgPool2d):
        out, op_axes, kernel = _pool_axes(name, node, shape)
    else:
        raise MappingError(
            f"{name!r}: NIR type {kind} cannot sit on a synaptic path (supported: Affine,"
            " Linear, Conv1d, Conv2d, SumPool2d, AvgPool2d, Scale, Delay, Flatten)"
        )
    weighted = (*rel.weighted, name)
    if rel.full:
        return dataclasses.replace(rel, dst_shape=out, weighted=weighted, kernel_weights=0)
    axes = []
    for m_op, m_rel in zip(op_axes, rel.axes, strict=True):
        if m_op is None:
            axes.append(m_rel)
        elif m_rel is None:
            axes.append(m_op)
        else:  # boolean matrix product: dst -> mid -> src
            axes.append((m_op.astype(np.int64) @ m_rel.astype(np.int64)) > 0)
    single = len(weighted) == 1
    return Relation(rel.src_shape, out, tuple(axes), False, weighted, kernel if single else 0)


def identity(shape: tuple[int, ...]) -> Relation:
    return Relation(shape, shape, (None,) * len(shape))
