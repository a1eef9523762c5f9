"""NIR graph helpers every backend shares (simulator, fixed point, mapping, export checks).

The NIR conventions of this project in one place: the time step of the field's exporters
(:data:`DT_S`), which node types are neurons, how nested graphs are flattened, the
topological order of a flattened graph, and how the int/array/string parameters of conv and
pool nodes (``stride``, ``padding``, ...) and the ``input_type``/``output_type`` shapes read.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Mapping
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
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


def read_nir(path: str | os.PathLike) -> nir.NIRGraph:
    """``nir.read(path)`` with every failure one ``ValueError`` naming the file (issue 16).

    ``FileNotFoundError`` for a missing file. Refused: a file that is not HDF5, anything
    ``nir.read`` or h5py cannot make a graph of (a missing or mistyped field, an unknown node
    type, an edge to no node), and node parameters that are not numbers or hold NaN.
    """
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path}: is a directory, not a NIR file")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such NIR file")
    try:
        with open(path, "rb") as f:
            head = f.read(len(HDF5_MAGIC))
    except OSError as err:
        raise ValueError(f"{path}: cannot read the NIR file ({err.strerror or err})") from None
    if head != HDF5_MAGIC:
        raise ValueError(f"{path}: not a readable NIR graph (not an HDF5 file)")
    try:
        graph = nir.read(path)
    except Exception as err:  # h5py, numpy and nir's own checks on a foreign file
        unknown = _unknown_type(path) if isinstance(err, AssertionError) else None
        if unknown:  # nir says only "AssertionError"
            raise ValueError(
                f"{path}: node {unknown[0]!r} has type {unknown[1]!r}, which nir {nir.__version__}"
                " does not know"
            ) from None
        raise ValueError(f"{path}: not a readable NIR graph ({_reason(err)})") from None
    if not isinstance(graph, nir.NIRGraph):
        raise ValueError(f"{path}: holds a {type(graph).__name__}, not a NIR graph")
    try:
        _check_params(graph)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None
    return graph


def _reason(err: BaseException) -> str:
    text = " ".join(str(err).split())[:200]
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def _unknown_type(path: Path) -> tuple[str, str] | None:
    """The first node (its name, its type) whose type nir has no class for, if any."""

    found: list[tuple[str, str]] = []

    def visit(name: str, obj: Any) -> None:
        if found or not name.endswith("/type") or not isinstance(obj, h5py.Dataset):
            return
        kind = obj[()]
        kind = kind.decode("utf-8", "replace") if isinstance(kind, bytes) else str(kind)
        if not isinstance(getattr(nir, kind, None), type):
            found.append((name.removeprefix("node/").replace("nodes/", "")[: -len("/type")], kind))

    try:
        with h5py.File(path, "r") as f:
            f.visititems(visit)
    except Exception:  # the file is damaged beyond naming a node
        return None
    return found[0] if found else None


def _check_params(graph: nir.NIRGraph, prefix: str = "") -> None:
    """Every array parameter of every node is numeric and free of NaN."""
    for name, node in graph.nodes.items():
        if isinstance(node, nir.NIRGraph):
            _check_params(node, f"{prefix}{name}.")
            continue
        for key in ("input", "output"):
            types = node.input_type if key == "input" else node.output_type
            value = (types or {}).get(key)
            arr = np.asarray(value) if value is not None else None
            if arr is not None and (
                arr.dtype.kind not in "biuf"
                or arr.ndim > 1
                or not np.all(np.isfinite(arr))
                or np.any(arr < 0)
                or np.any(arr != np.round(arr))
            ):
                shown = " ".join(repr(value).split())[:60]
                raise ValueError(f"node {prefix}{name!r}: {key} shape {shown} is not sizes >= 0")
        for field in dataclasses.fields(node) if dataclasses.is_dataclass(node) else ():
            value = getattr(node, field.name)
            if field.name in ("input_type", "output_type", "metadata") or value is None:
                continue
            if field.name == "padding" and isinstance(value, str | bytes | np.ndarray):
                if np.asarray(value).dtype.kind in "SUO":  # "same" or "valid"
                    continue
            try:
                arr = np.asarray(value)
            except ValueError:  # a ragged sequence
                arr = np.asarray(None)
            if arr.dtype.kind not in "biuf":
                shown = " ".join(repr(value).split())[:60]
                raise ValueError(f"node {prefix}{name!r}: {field.name} {shown} is not numbers")
            if arr.dtype.kind == "f" and np.isnan(arr).any():
                raise ValueError(f"node {prefix}{name!r}: {field.name} holds NaN")


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
