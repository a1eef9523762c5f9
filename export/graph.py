"""NIR graph helpers every backend shares (simulator, fixed point, mapping, export checks).

The NIR conventions of this project in one place: the time step of the field's exporters
(:data:`DT_S`), which node types are neurons, how nested graphs are flattened, the
topological order of a flattened graph, and how the int/array/string parameters of conv and
pool nodes (``stride``, ``padding``, ...) and the ``input_type``/``output_type`` shapes read.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import h5py
import nir
import numpy as np

__all__ = [
    "DT_S",
    "NEURON_TYPES",
    "SPIKING_TYPES",
    "conv_out_size",
    "flatten_graph",
    "int_tuple",
    "padding_arg",
    "port_shape",
    "read_nir",
    "topological_order",
]

DT_S = 1e-4  # the field's NIR time step, seconds (snnTorch, SpikingJelly, the NIR paper)

NEURON_TYPES = (nir.I, nir.IF, nir.LI, nir.LIF, nir.CubaLI, nir.CubaLIF, nir.Threshold)
SPIKING_TYPES = (nir.IF, nir.LIF, nir.CubaLIF, nir.Threshold)


def read_nir(path: str | os.PathLike) -> nir.NIRGraph:
    """``nir.read(path)`` with every failure one ``ValueError`` naming the file (issue 16).

    A missing file is a ``FileNotFoundError``; a file that is not HDF5, a node of a type this
    ``nir`` does not know (named with its node), non-UTF-8 names and any other parse failure
    are ``ValueError`` (``nir`` itself raises a bare ``AssertionError`` for unknown types).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such NIR file")
    if not h5py.is_hdf5(path):
        raise ValueError(f"{path}: not a readable NIR graph (not an HDF5 file)")
    try:
        with h5py.File(path, "r") as f:
            unknown = [(name, kind) for name, kind in _node_types(f) if kind not in _NIR_TYPES]
    except (OSError, KeyError, TypeError, ValueError, UnicodeDecodeError) as err:
        raise ValueError(
            f"{path}: not a readable NIR graph ({type(err).__name__}: {err})"
        ) from None
    if unknown:
        name, kind = unknown[0]
        raise ValueError(
            f"{path}: node {name!r} has type {kind!r}, which nir {nir.__version__} does not know"
            f" ({len(unknown)} such node{'s' * (len(unknown) > 1)})"
        )
    try:
        return nir.read(path)
    except Exception as err:  # nir/h5py raise assertion, key, type, unicode... errors
        reason = f"{type(err).__name__}: {err}".rstrip(": ")
        raise ValueError(f"{path}: not a readable NIR graph ({reason})") from None


_NIR_TYPES = {
    name
    for name in dir(nir)
    if isinstance(getattr(nir, name), type) and issubclass(getattr(nir, name), nir.NIRNode)
}


def _node_types(group: Any, prefix: str = "") -> Iterator[tuple[str, str]]:
    """``(node name, type)`` of every node of a NIR HDF5 group, nested graphs included."""
    if "node" in group and prefix == "":
        group = group["node"]
    kind = group["type"][()] if "type" in group else b"NIRGraph"
    kind = kind.decode("utf-8") if isinstance(kind, bytes) else str(kind)
    yield (prefix or "<graph>", kind)
    if kind == "NIRGraph" and "nodes" in group:
        for name, child in group["nodes"].items():
            yield from _node_types(child, f"{prefix}.{name}" if prefix else name)


def int_tuple(value: Any, n: int = 2) -> tuple[int, ...]:
    """A NIR int parameter (scalar or per-axis array) as ``n`` ints (a scalar is repeated)."""
    arr = np.asarray(value).reshape(-1)
    if arr.size == 1:
        return (int(arr[0]),) * n
    return tuple(int(a) for a in arr)


def padding_arg(value: Any, n: int = 2) -> tuple[int, ...] | str:
    """A NIR ``padding``: ``"same"``/``"valid"`` (str, bytes or 0-d array) or ``n`` ints."""
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, np.ndarray) and value.dtype.kind in "SUO" and value.ndim == 0:
        value = value.item()
        value = value.decode() if isinstance(value, bytes) else value
    if isinstance(value, str):
        if value not in ("same", "valid"):
            raise ValueError(f"padding must be 'same', 'valid' or ints, got {value!r}")
        return value
    return int_tuple(value, n)


def port_shape(node: nir.NIRNode, key: str) -> tuple[int, ...] | None:
    """The shape of ``node``'s ``input`` or ``output`` port (``key``), ``None`` if untyped."""
    types = node.input_type if key == "input" else node.output_type
    if not types or types.get(key) is None:
        return None
    return tuple(int(s) for s in np.asarray(types[key]).reshape(-1))


def flatten_graph(
    graph: nir.NIRGraph, prefix: str = ""
) -> tuple[dict[str, nir.NIRNode], list[tuple[str, str]]]:
    """Inline nested ``NIRGraph`` nodes: inner nodes become ``outer.inner``.

    An edge into a subgraph ``g`` goes to its only Input node (or to ``g.<input>``); an edge out
    of ``g`` leaves its only Output node (or ``g.<output>``). Inner Input/Output nodes then act
    as identities (sums of their incoming edges).
    """
    nodes: dict[str, nir.NIRNode] = {}
    edges: list[tuple[str, str]] = []
    ports: dict[str, tuple[list[str], list[str]]] = {}  # subgraph -> (inputs, outputs)
    for name, node in graph.nodes.items():
        full = prefix + name
        if isinstance(node, nir.NIRGraph):
            inner_nodes, inner_edges = flatten_graph(node, full + ".")
            nodes.update(inner_nodes)
            edges.extend(inner_edges)
            ins = [full + "." + k for k, n in node.nodes.items() if isinstance(n, nir.Input)]
            outs = [full + "." + k for k, n in node.nodes.items() if isinstance(n, nir.Output)]
            ports[full] = (ins, outs)
        else:
            nodes[full] = node

    def endpoint(name: str, side: int) -> str:
        full = prefix + name
        if full in nodes:
            return full
        if full in ports:
            candidates = ports[full][side]
            if len(candidates) != 1:
                kind = "Input" if side == 0 else "Output"
                raise ValueError(
                    f"edge names subgraph {full!r}, which has {len(candidates)} {kind} nodes;"
                    f" name one of {candidates}"
                )
            return candidates[0]
        raise ValueError(f"edge names unknown node {full!r}")

    for src, dst in graph.edges:
        edges.append((endpoint(src, 1), endpoint(dst, 0)))
    return nodes, edges


def topological_order(names: Iterable[str], preds: Mapping[str, list[str]]) -> list[str]:
    """Kahn's order (stable in node order); raises ``ValueError`` on a cycle."""
    names = list(names)
    indeg = {n: len(preds[n]) for n in names}
    succs: dict[str, list[str]] = {n: [] for n in names}
    for n in names:
        for p in preds[n]:
            succs[p].append(n)
    ready = [n for n in names if indeg[n] == 0]
    order: list[str] = []
    while ready:
        n = ready.pop(0)
        order.append(n)
        for s in succs[n]:
            indeg[s] -= 1
            if indeg[s] == 0:
                ready.append(s)
    if len(order) != len(names):
        left = sorted(n for n in names if indeg[n] > 0)
        raise ValueError(
            f"the graph is recurrent (a cycle runs through {left[:6]}); this whole-sequence"
            " simulator runs directed acyclic graphs only"
        )
    return order


def conv_out_size(n: int, k: int, s: int, p: int, d: int) -> int:
    """Output length of a conv or pool axis: length n, kernel k, stride s, padding p, dilation d."""
    return (n + 2 * p - d * (k - 1) - 1) // s + 1
