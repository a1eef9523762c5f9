"""Map the neuromorphic part of a NIR graph onto neuro cores: cores, synapses, memory, traffic.

The CLI is :mod:`export.map` (``python -m export.map GRAPH.nir|CKPT --target loihi2``).

Model of the hardware (one :class:`Target`, data not code):

- A *layer* is one neuron node of the graph (LIF, CubaLIF, IF, LI, CubaLI, I, Threshold) with
  the synapses that feed it. A synaptic *path* runs from a spike source (a neuron node or a
  graph Input: the sensor, or a host port) through weight/reindexing nodes (Conv1d/2d,
  Affine, Linear, SumPool2d, AvgPool2d, Scale, Delay, Flatten) to the layer; several paths
  into a layer are summed, as NIR sums fan-in edges. Synapses are stored on the destination
  layer's cores (a conv that feeds two layers is stored twice).
- Every layer gets its own cores (no core holds two layers). A layer of shape ``(C, H, W)``
  is cut into equal tiles ``tc x th x tw`` (one tile per core); the tile is the one needing
  the fewest cores that fits all per-core limits (ties: the least halo, i.e. fewest input
  axons summed over cores). Tiling channels and space, not flat index ranges, keeps the
  receptive field of a conv tile small.
- Connections are counted from geometry, as in sinabs' ``conv_connection_map``: a conv
  connects an output neuron to every in-bounds input tap of its kernel (stride, padding,
  dilation, groups); zero weights still count (the allocation is by shape). Connectivity of
  conv/pool/identity ops factorises per axis (channels x rows x columns), so every count
  below is exact and computed from small per-axis boolean matrices; Affine/Linear connect
  all pairs.
- Per core: neurons <= ``neurons_per_core``; *input axons* (distinct source neurons whose
  spikes reach the core) <= ``max_input_axons_per_core``; *output axons* (one per neuron and
  destination core it sends to, +1 for a neuron read by the host) <=
  ``max_output_axons_per_core``; synapse memory <= ``synapse_memory_bytes_per_core``, with
  ``weight_bits`` per stored weight: a single conv or pool stored as its kernel once per core
  (``shared_conv_weights``: the output channels of the tile x ``Cin/groups x kh x kw``), every
  other path one weight per connection.
- Traffic: a spike of a neuron is one message to each destination core holding one of its
  targets (all are other cores, as layers never share cores) and one to the host if an
  Output port reads it. Measured rates (mean spikes per neuron and step over real inputs)
  give ``messages_per_step``; without them every neuron spiking every step is the bound.
  Cores are numbered layer by layer in graph order and filled onto chips of
  ``cores_per_chip``; the messages whose destination core is on another chip are counted
  apart.
- The layers are tiled in reverse graph order, so a layer's consumers are placed before its
  output axons are checked; each tile is chosen greedily for its own layer (fewest cores), not
  for the whole graph. Recurrent graphs are refused.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import os
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nir
import numpy as np

from export.graph import (
    NEURON_TYPES,
    conv_out_size,
    flatten_graph,
    int_tuple,
    padding_arg,
    topological_order,
)
from fsve.io import atomic_write_text, csv_text

__all__ = [
    "TARGETS",
    "LayerMapping",
    "MappingError",
    "MappingResult",
    "SynapsePath",
    "Target",
    "boundary_rows",
    "layer_rows",
    "load_target",
    "map_graph",
    "report_text",
    "spike_rates",
    "target_from_dict",
    "write_report",
]


class MappingError(ValueError):
    """A layer no tiling can place; the message names the layer, the limit, the value, a fix."""


# ----------------------------------------------------------------------------- targets


@dataclass(frozen=True)
class Target:
    """Per-core and per-chip resources of a neuromorphic chip family."""

    name: str  # short name, e.g. "loihi2"
    neurons_per_core: int  # neuron (compartment) slots per core
    cores_per_chip: int  # neuro cores per chip
    synapse_memory_bytes_per_core: int  # synapse memory per core, bytes
    max_input_axons_per_core: int  # distinct source neurons a core can receive spikes from
    max_output_axons_per_core: int  # (neuron, destination core) routes a core can send
    weight_bits: int  # bits per stored synaptic weight
    shared_conv_weights: bool  # a conv kernel is stored once per core, not per connection
    description: str = ""  # where the figures come from
    assumptions: tuple[str, ...] = ()  # "field: value and why" for figures nobody published

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.type == "int" and (isinstance(value, bool) or not isinstance(value, int)):
                raise ValueError(f"target {self.name!r}: {f.name} must be an int, got {value!r}")
            if f.type == "int" and value < 1:
                raise ValueError(f"target {self.name!r}: {f.name} must be >= 1, got {value}")
        if not isinstance(self.shared_conv_weights, bool):
            raise ValueError(f"target {self.name!r}: shared_conv_weights must be true or false")
        if not isinstance(self.name, str) or not self.name:
            raise ValueError("target name must be a non-empty string")
        object.__setattr__(self, "assumptions", tuple(str(a) for a in self.assumptions))


TARGETS: dict[str, Target] = {
    "loihi2": Target(
        name="loihi2",
        neurons_per_core=8192,
        cores_per_chip=128,
        synapse_memory_bytes_per_core=131072,
        max_input_axons_per_core=32768,
        max_output_axons_per_core=32768,
        weight_bits=8,
        shared_conv_weights=True,
        description="Intel Loihi 2: 128 neuro cores/chip, up to 8,192 neurons/core, 8-bit"
        " weights with a shared exponent (REFERENCE.md section 3)",
        assumptions=(
            "synapse_memory_bytes_per_core = 131072 (128 KB): Loihi 1's figure, kept for"
            " Loihi 2, whose per-core synapse memory is not in REFERENCE.md",
            "max_input_axons_per_core = max_output_axons_per_core = 32768: Loihi 1's 4"
            " axons per neuron slot (4,096 / 1,024) scaled to 8,192 neurons; not published"
            " in REFERENCE.md",
            "shared_conv_weights = true: a conv kernel stored once per core (Loihi 2's"
            " convolutional synapse compression); Loihi 1 stores every connection",
        ),
    ),
    "loihi1": Target(
        name="loihi1",
        neurons_per_core=1024,
        cores_per_chip=128,
        synapse_memory_bytes_per_core=131072,
        max_input_axons_per_core=4096,
        max_output_axons_per_core=4096,
        weight_bits=8,
        shared_conv_weights=False,
        description="Intel Loihi 1 (nengo-loihi's validation limits): 1,024 compartments,"
        " 4,096 input and 4,096 output axons, 128 KB synapse memory per core, 128 cores/chip"
        " (REFERENCE.md section 3)",
        assumptions=(
            "weight_bits = 8: one 8-bit weight per connection (dense synapse encoding, no"
            " index or delay bits)",
        ),
    ),
}

_TARGET_KEYS = {f.name for f in dataclasses.fields(Target)}


def target_from_dict(d: Mapping[str, Any], source: str = "<dict>") -> Target:
    """A :class:`Target` from a plain mapping (as read from JSON/TOML); unknown keys raise."""
    if not isinstance(d, Mapping):
        raise ValueError(f"{source}: a target must be a table/object, got {type(d).__name__}")
    unknown = sorted(set(d) - _TARGET_KEYS)
    if unknown:
        raise ValueError(f"{source}: unknown target keys {unknown}; known: {sorted(_TARGET_KEYS)}")
    required = {f.name for f in dataclasses.fields(Target) if f.default is dataclasses.MISSING}
    missing = sorted(required - set(d))
    if missing:
        raise ValueError(f"{source}: target lacks {missing}")
    values = dict(d)
    if "assumptions" in values:
        a = values["assumptions"]
        values["assumptions"] = (a,) if isinstance(a, str) else tuple(a)
    return Target(**values)


def load_target(spec: str | os.PathLike | Target) -> Target:
    """A target by name (``loihi2``, ``loihi1``) or from a ``.json``/``.toml`` file."""
    if isinstance(spec, Target):
        return spec
    if isinstance(spec, str) and spec in TARGETS:
        return TARGETS[spec]
    path = Path(spec)
    if path.suffix not in (".json", ".toml"):
        raise ValueError(
            f"unknown target {str(spec)!r}: use one of {sorted(TARGETS)} or a .json/.toml file"
        )
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such target file")
    try:
        if path.suffix == ".json":
            data = json.loads(path.read_text())
        else:
            data = tomllib.loads(path.read_text())
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as err:
        raise ValueError(f"{path}: cannot parse target: {err}") from None
    return target_from_dict(data, str(path))


# ----------------------------------------------------------------------------- relations
# A relation says which source neurons reach which destination neurons. Conv, pool and
# identity ops factorise per axis: ``axes[a]`` is a bool matrix [n_dst_a, n_src_a] (None for
# the identity), and (dst i, src j) are connected iff every axis connects i_a to j_a.
# ``full`` relations (Affine/Linear) connect every pair.


@dataclass(frozen=True)
class _Rel:
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


def _compose(rel: _Rel, name: str, node: Any) -> _Rel:
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
    return _Rel(rel.src_shape, out, tuple(axes), False, weighted, kernel if single else 0)


def _identity(shape: tuple[int, ...]) -> _Rel:
    return _Rel(shape, shape, (None,) * len(shape))


# ----------------------------------------------------------------------------- per-axis sums


def _starts(n: int, t: int) -> np.ndarray:
    return np.arange(0, n, t)


def _tile_sum(values: np.ndarray, t: int) -> np.ndarray:
    """Sums of ``values`` [n] over consecutive tiles of ``t``: [ceil(n/t)]."""
    return np.add.reduceat(values, _starts(len(values), t))


def _tile_any(m: np.ndarray | None, n: int, t: int) -> np.ndarray:
    """Per tile of ``t`` destination indices, the source indices it reaches: [tiles, n_src]."""
    if m is None:
        eye = np.zeros((len(_starts(n, t)), n), dtype=bool)
        for k, s in enumerate(_starts(n, t)):
            eye[k, s : s + t] = True
        return eye
    return np.logical_or.reduceat(m, _starts(n, t), axis=0)


def _outer(vectors: Sequence[np.ndarray]) -> np.ndarray:
    out = np.asarray(vectors[0], dtype=np.float64)
    for v in vectors[1:]:
        out = np.multiply.outer(out, np.asarray(v, dtype=np.float64))
    return out


class _BlockSums:
    """Sums of an array over the tiles of any tiling, from one summed-area table."""

    def __init__(self, arr: np.ndarray) -> None:
        self.shape = arr.shape
        table = np.asarray(arr, dtype=np.float64)
        for a in range(table.ndim):
            table = np.cumsum(table, axis=a)
        self.table = np.pad(table, [(1, 0)] * table.ndim)  # table[i, j, ..] = sum of arr[:i, :j]

    def __call__(self, tile: Sequence[int]) -> np.ndarray:
        r = len(self.shape)
        total = 0.0
        for corner in itertools.product((0, 1), repeat=r):
            index = []
            for a, (n, t, c) in enumerate(zip(self.shape, tile, corner, strict=True)):
                idx = _starts(n, t) if c == 0 else np.minimum(_starts(n, t) + t, n)
                index.append(idx.reshape([-1 if b == a else 1 for b in range(r)]))
            total = total + (-1) ** (r - sum(corner)) * self.table[tuple(index)]
        return np.asarray(total)

    def total(self) -> float:
        return float(self.table[(-1,) * len(self.shape)])


# ----------------------------------------------------------------------------- the mapping


@dataclass(frozen=True)
class SynapsePath:
    """One synaptic path into a layer."""

    source: str  # neuron node or graph Input node the spikes come from
    nodes: tuple[str, ...]  # nodes between source and layer, in order
    rel: _Rel = field(repr=False)

    @property
    def encoding(self) -> str:
        if self.rel.kernel_weights and not self.rel.full:
            return "kernel"
        return "dense" if self.rel.full else "per-synapse"


@dataclass
class LayerMapping:
    """Where one layer landed and what it costs; counts are exact, traffic per sample/step."""

    name: str
    type: str  # NIR class name
    shape: tuple[int, ...]  # NIR layout, per sample
    paths: list[SynapsePath]
    tile: tuple[int, ...] = ()  # neurons per core along each axis
    cores: int = 0
    synapses: int = 0  # connections into the layer
    weights: int = 0  # distinct weights of its incoming weight nodes (shared kernels once)
    memory_bytes: int = 0  # synapse memory summed over its cores
    max_core_memory_bytes: int = 0
    max_core_neurons: int = 0
    max_input_axons: int = 0  # per core
    max_output_axons: int = 0  # per core
    max_fan_in: int = 0  # connections into one neuron, at most
    binding: str = ""  # the per-core limit closest to full at the chosen tile
    spikes_per_step: float = math.nan  # emitted, mean per sample and step (measured)
    messages_out_per_step: float = math.nan  # spike messages sent to other cores / the host
    messages_out_bound: int = 0  # if every neuron spiked every step
    messages_in_per_step: float = math.nan  # spike messages arriving at its cores
    messages_in_bound: int = 0
    to_host: bool = False  # an Output port reads it
    first_core: int = 0  # global index of its first core (layers packed in graph order)
    chip_messages_out_per_step: float = math.nan  # of messages_out, those to another chip
    chip_messages_out_bound: int = 0

    @property
    def neurons(self) -> int:
        return int(np.prod(self.shape))

    def utilisation(self, target: Target) -> float:
        return self.neurons / (self.cores * target.neurons_per_core)

    def chips(self, target: Target) -> int:
        return -(-self.cores // target.cores_per_chip)


@dataclass(frozen=True)
class Boundary:
    """Spikes entering from a graph Input (sensor or host port) or leaving to an Output."""

    name: str
    direction: str  # "in" (Input -> cores) or "out" (cores -> Output port)
    neurons: int
    layers: tuple[str, ...]  # layers it feeds (in) or is fed by (out)
    messages_per_step: float  # measured (nan without rates)
    messages_bound: int


@dataclass
class MappingResult:
    target: Target
    layers: list[LayerMapping]
    boundary: list[Boundary]
    measured: bool  # traffic from measured rates (else only bounds)
    notes: list[str] = field(default_factory=list)

    @property
    def cores(self) -> int:
        return sum(layer.cores for layer in self.layers)

    @property
    def chips(self) -> int:
        return -(-self.cores // self.target.cores_per_chip)

    @property
    def neurons(self) -> int:
        return sum(layer.neurons for layer in self.layers)

    def layer(self, name: str) -> LayerMapping:
        for m in self.layers:
            if m.name == name:
                return m
        raise KeyError(name)


def _shape_of(node: Any, key: str = "output") -> tuple[int, ...]:
    types = node.output_type if key == "output" else node.input_type
    value = (types or {}).get(key)
    if value is None:
        return ()
    return tuple(int(s) for s in np.asarray(value).reshape(-1))


def _trace(
    nodes: Mapping[str, Any], preds: Mapping[str, list[str]], layer: str
) -> list[tuple[str, tuple[str, ...]]]:
    """Every path (source, nodes between) into ``layer``: walk predecessors to endpoints."""
    out: list[tuple[str, tuple[str, ...]]] = []

    def walk(name: str, chain: tuple[str, ...], seen: frozenset[str]) -> None:
        for p in preds[name]:
            node = nodes[p]
            if isinstance(node, NEURON_TYPES) or (isinstance(node, nir.Input) and not preds[p]):
                out.append((p, chain))
            elif p in seen:
                raise MappingError(f"layer {layer!r}: a cycle without neurons runs through {p!r}")
            elif isinstance(node, nir.Input | nir.Output):
                walk(p, chain, seen | {p})  # inner port of an inlined subgraph: identity
            else:
                walk(p, (p, *chain), seen | {p})

    walk(layer, (), frozenset({layer}))
    return out


def _source_shape(nodes: Mapping[str, Any], name: str) -> tuple[int, ...]:
    node = nodes[name]
    shape = _shape_of(node, "output") or _shape_of(node, "input")
    if not shape:
        raise MappingError(f"node {name!r}: no shape in the graph (output_type is empty)")
    return shape


def _paths(nodes, preds, layer: str, shape: tuple[int, ...]) -> list[SynapsePath]:
    paths = []
    for source, chain in _trace(nodes, preds, layer):
        rel = _identity(_source_shape(nodes, source))
        for n in chain:
            rel = _compose(rel, n, nodes[n])
        if rel.flat:
            raise MappingError(
                f"layer {layer!r}: the path from {source!r} ends in a Flatten; the mapper"
                " needs a Flatten to feed an Affine/Linear"
            )
        if int(np.prod(rel.dst_shape)) != int(np.prod(shape)):
            raise MappingError(
                f"layer {layer!r}: the path from {source!r} through {list(chain)} gives shape"
                f" {rel.dst_shape}, the layer has {shape}"
            )
        if rel.dst_shape != shape and not rel.full:
            raise MappingError(
                f"layer {layer!r}: the path from {source!r} gives shape {rel.dst_shape}, the"
                f" layer has {shape}"
            )
        paths.append(SynapsePath(source, chain, dataclasses.replace(rel, dst_shape=shape)))
    return paths


class _Geometry:
    """Per-axis, per-tile-size quantities of one layer's incoming paths (cached)."""

    def __init__(self, shape: tuple[int, ...], paths: Sequence[SynapsePath]) -> None:
        self.shape, self.paths = shape, list(paths)
        self._cache: dict[tuple[int, int, int], tuple[np.ndarray, np.ndarray]] = {}
        self._tiles: dict[tuple[int, ...], tuple[np.ndarray, ...]] = {}
        self.groups = _by_source(self.paths)  # source -> indices of its paths
        self.range = range(len(self.paths))

    def axis(self, p: int, a: int, t: int) -> tuple[np.ndarray, np.ndarray]:
        """Path p, axis a, tile size t: (fan-in sum per tile [k], source mask per tile [k, n])."""
        key = (p, a, t)
        if key not in self._cache:
            m = self.paths[p].rel.axes[a]
            n = self.shape[a]
            fan = np.ones(n, dtype=np.int64) if m is None else m.sum(1)
            self._cache[key] = (_tile_sum(fan, t), _tile_any(m, n, t))
        return self._cache[key]

    def tiles(self, tile: Sequence[int]) -> tuple[np.ndarray, ...]:
        """Neurons per tile along each axis."""
        key = tuple(tile)
        if key not in self._tiles:
            self._tiles[key] = tuple(
                _tile_sum(np.ones(n, dtype=np.int64), t)
                for n, t in zip(self.shape, tile, strict=True)
            )
        return self._tiles[key]

    def synapses(self, p: int, tile: Sequence[int]) -> np.ndarray:
        rel = self.paths[p].rel
        if rel.full:
            return _outer(self.tiles(tile)) * int(np.prod(rel.src_shape))
        return _outer([self.axis(p, a, t)[0] for a, t in enumerate(tile)])

    def axons(self, paths: Sequence[int], tile: Sequence[int]) -> np.ndarray:
        """Distinct source neurons per core, over ``paths`` from one source (union)."""
        if any(self.paths[p].rel.full for p in paths):
            n = int(np.prod(self.paths[paths[0]].rel.src_shape))
            return np.full([len(v) for v in self.tiles(tile)], float(n))
        total = 0.0
        for r in range(1, len(paths) + 1):  # inclusion-exclusion over the paths
            for subset in itertools.combinations(paths, r):
                counts = []
                for a, t in enumerate(tile):
                    mask = self.axis(subset[0], a, t)[1]
                    for p in subset[1:]:
                        mask = mask & self.axis(p, a, t)[1]
                    counts.append(mask.sum(1))
                total = total + (-1) ** (r + 1) * _outer(counts)
        return np.asarray(total)

    def dest_counts(self, paths: Sequence[int], tile: Sequence[int]) -> np.ndarray:
        """Per source neuron, how many of this layer's cores it reaches: [*src_shape]."""
        src = self.paths[paths[0]].rel.src_shape
        if any(self.paths[p].rel.full for p in paths):
            return np.full(src, float(np.prod([len(v) for v in self.tiles(tile)])))
        total = np.zeros(src)
        for r in range(1, len(paths) + 1):
            for subset in itertools.combinations(paths, r):
                counts = []
                for a, t in enumerate(tile):
                    mask = self.axis(subset[0], a, t)[1]
                    for p in subset[1:]:
                        mask = mask & self.axis(p, a, t)[1]
                    counts.append(mask.sum(0))
                total = total + (-1) ** (r + 1) * _outer(counts)
        return total

    def memory_bits(self, p: int, tile: Sequence[int], target: Target) -> np.ndarray:
        path = self.paths[p]
        if target.shared_conv_weights and path.encoding == "kernel":
            weights_per_channel = path.rel.kernel_weights // self.shape[0]
            per_tile = [self.tiles(tile)[0] * weights_per_channel] + [
                np.ones(len(v)) for v in self.tiles(tile)[1:]
            ]
            return _outer(per_tile) * target.weight_bits
        return self.synapses(p, tile) * target.weight_bits


def _by_source(paths: Sequence[SynapsePath]) -> dict[str, list[int]]:
    groups: dict[str, list[int]] = {}
    for i, p in enumerate(paths):
        groups.setdefault(p.source, []).append(i)
    return groups


def _candidates(shape: tuple[int, ...], per_core: int) -> list[tuple[int, ...]]:
    """Tiles (one size per axis, each ``ceil(n/k)``) holding at most ``per_core`` neurons."""
    sizes = [sorted({-(-n // k) for k in range(1, n + 1)}, reverse=True) for n in shape]
    out = [t for t in itertools.product(*sizes) if math.prod(t) <= per_core]
    return sorted(
        out, key=lambda t: (math.prod(-(-n // s) for n, s in zip(shape, t, strict=True)), t)
    )


def _cores(shape: Sequence[int], tile: Sequence[int]) -> int:
    return math.prod(-(-n // t) for n, t in zip(shape, tile, strict=True))


def _check(
    geo: _Geometry,
    tile: tuple[int, ...],
    target: Target,
    out_axons: _BlockSums | None,
    stop: bool = False,
) -> dict[str, float]:
    """The worst core's usage of each per-core resource at ``tile``.

    With ``stop``, returns as soon as one resource is over its limit (the rest left out).
    """
    limits = _limits(target)
    usage = {"neurons": float(math.prod(tile))}
    steps: list[tuple[str, Callable[[], float]]] = [
        ("output axons", lambda: 0.0 if out_axons is None else float(np.max(out_axons(tile)))),
        (
            "synapse memory",
            lambda: float(np.max(sum(geo.memory_bits(p, tile, target) for p in geo.range))) / 8,
        ),
        (
            "input axons",
            lambda: float(np.max(sum(geo.axons(idx, tile) for idx in geo.groups.values()))),
        ),
    ]
    for what, fn in steps:
        usage[what] = fn()
        if stop and usage[what] > limits[what]:
            break
    return usage


def _limits(target: Target) -> dict[str, int]:
    return {
        "neurons": target.neurons_per_core,
        "input axons": target.max_input_axons_per_core,
        "synapse memory": target.synapse_memory_bytes_per_core,
        "output axons": target.max_output_axons_per_core,
    }


_NEED = {
    "input axons": "{} input axons (its fan-in from distinct source neurons)",
    "synapse memory": "{} bytes of synapse memory",
    "output axons": "{} output axons (destination cores it sends to)",
    "neurons": "{} neuron slots",
}

_ADVICE = {
    "input axons": "split the layer's input (fewer channels per group, grouped/depthwise conv)"
    " or use a smaller kernel; a dense layer needs fewer inputs",
    "synapse memory": "use a smaller kernel or fewer input channels, split the layer, or a"
    " target with weight sharing / more synapse memory",
    "output axons": "reduce the fan-out: fewer consumers of this layer, or larger tiles in the"
    " layers it feeds (a target with more output axons)",
    "neurons": "",
}


def _choose(geo: _Geometry, name: str, target: Target, out_axons: _BlockSums | None):
    limits = _limits(target)
    single = tuple(1 for _ in geo.shape)
    usage = _check(geo, single, target, out_axons)
    for what, used in usage.items():
        if used > limits[what]:
            need = _NEED[what].format(math.ceil(used))
            raise MappingError(
                f"layer {name!r} cannot be mapped onto {target.name}: one neuron needs {need}"
                f" > the limit {limits[what]} per core; {_ADVICE[what]}"
            )
    best = None
    best_cores = None
    # lower bounds on the cores: every output axon and every stored weight lives on a core
    bits = 0.0
    for p in geo.range:
        whole = tuple(geo.shape)
        bits += float(np.sum(geo.memory_bits(p, whole, target)))
    low = max(
        math.ceil(out_axons.total() / target.max_output_axons_per_core) if out_axons else 1,
        math.ceil(bits / 8 / target.synapse_memory_bytes_per_core),
    )
    for tile in _candidates(geo.shape, target.neurons_per_core):
        cores = _cores(geo.shape, tile)
        if cores < low:
            continue
        if best_cores is not None and cores > best_cores:
            break
        usage = _check(geo, tile, target, out_axons, stop=True)
        if len(usage) == len(limits) and all(usage[k] <= limits[k] for k in limits):
            halo = float(sum(np.sum(geo.axons(idx, tile)) for idx in geo.groups.values()))
            key = (halo, tuple(-t for t in tile))
            if best is None or key < best[0]:
                best, best_cores = (key, tile, usage), cores
    if best is None:  # unreachable: the single-neuron tile fits
        raise MappingError(f"layer {name!r}: no tiling fits {target.name}")
    return best[1], best[2]


def map_graph(
    graph: nir.NIRGraph,
    target: Target | str = "loihi2",
    rates: Mapping[str, np.ndarray] | None = None,
) -> MappingResult:
    """Map every neuron node of ``graph`` onto ``target``'s cores.

    ``rates``: node (neuron or graph Input) -> mean spikes per neuron and step, NIR shape of
    that node (from :func:`spike_rates`); nodes left out count as spiking every step.
    Raises :class:`MappingError` for a layer no tiling can place.
    """
    target = load_target(target)
    nodes, edges = flatten_graph(graph)
    preds: dict[str, list[str]] = {n: [] for n in nodes}
    for src, dst in edges:
        preds[dst].append(src)
    try:
        order = topological_order(nodes, preds)
    except ValueError as err:
        raise MappingError(
            f"{err}".split(";")[0] + "; the mapper handles feed-forward graphs only (recurrent"
            " connections would make a layer's fan-out depend on its own tiling)"
        ) from None
    names = [n for n in order if isinstance(nodes[n], NEURON_TYPES)]
    if not names:
        raise MappingError("the graph has no neuron nodes: nothing to map onto cores")
    layers: dict[str, LayerMapping] = {}
    geos: dict[str, _Geometry] = {}
    for n in names:
        shape = _source_shape(nodes, n)
        paths = _paths(nodes, preds, n, shape)
        if not paths:
            raise MappingError(f"layer {n!r}: no incoming edge")
        layers[n] = LayerMapping(n, type(nodes[n]).__name__, shape, paths)
        geos[n] = _Geometry(shape, paths)
    # Output ports: which layers the host reads; synapses into a port have no neurons
    outputs: dict[str, list[str]] = {}
    for n, node in nodes.items():
        if isinstance(node, nir.Output) and not any(n in preds[m] for m in nodes):
            for source, chain in _trace(nodes, preds, n):
                if any(not isinstance(nodes[c], nir.Scale | nir.Delay) for c in chain):
                    raise MappingError(
                        f"Output {n!r} is fed through {list(chain)} without a neuron layer;"
                        " add a non-spiking LI/I layer before it (it sums the synapses on"
                        " cores) or compute it on the host"
                    )
                outputs.setdefault(n, []).append(source)
    host_read = {s for srcs in outputs.values() for s in srcs}
    consumers: dict[str, list[tuple[str, list[int]]]] = {}  # source -> (layer, path indices)
    for n, m in layers.items():
        for source, idx in _by_source(m.paths).items():
            consumers.setdefault(source, []).append((n, idx))

    def rate(node: str) -> np.ndarray | None:
        if rates is None or node not in rates:
            return None
        r = np.asarray(rates[node], dtype=np.float64)
        shape = _source_shape(nodes, node)
        if r.shape != shape:
            raise ValueError(f"rates[{node!r}] has shape {r.shape}, the node {shape}")
        return r

    # reverse topological order: a layer's consumers are tiled before it (feed-forward graph)
    for n in reversed(names):
        m = layers[n]
        out = np.zeros(m.shape)
        for layer, idx in consumers.get(n, []):
            out = out + geos[layer].dest_counts(idx, layers[layer].tile)
        if n in host_read:
            out = out + 1.0

        tile, usage = _choose(geos[n], n, target, _BlockSums(out))
        limits = _limits(target)
        m.tile, m.cores = tile, _cores(m.shape, tile)
        m.binding = max(limits, key=lambda k: usage[k] / limits[k])
        geo, paths_i = geos[n], range(len(m.paths))
        m.synapses = round(sum(float(np.sum(geo.synapses(p, tile))) for p in paths_i))
        bits = sum(geo.memory_bits(p, tile, target) for p in range(len(m.paths)))
        m.memory_bytes = math.ceil(float(np.sum(bits)) / 8)
        m.max_core_memory_bytes = math.ceil(usage["synapse memory"])
        m.max_core_neurons = int(np.max(_outer(geo.tiles(tile))))
        m.max_input_axons = round(usage["input axons"])
        m.max_output_axons = round(usage["output axons"])
        single = tuple(1 for _ in m.shape)
        fan_in = sum(geo.synapses(p, single) for p in range(len(m.paths)))
        m.max_fan_in = round(float(np.max(fan_in)))
        seen: set[str] = set()
        for p in m.paths:
            for w in p.rel.weighted:
                if w not in seen:
                    seen.add(w)
                    node = nodes[w]
                    weight = getattr(node, "weight", None)
                    m.weights += int(np.asarray(weight).size) if weight is not None else 0
        m.to_host = n in host_read
        m.messages_out_bound = round(float(np.sum(out)))
        r = rate(n)
        if r is not None:
            m.spikes_per_step = float(np.sum(r))
            m.messages_out_per_step = float(np.sum(r * out))
    # messages into each layer (needs the source's rate and this layer's tiling)
    boundary: list[Boundary] = []
    unknown_in: dict[str, bool] = {}
    for source, cons in consumers.items():
        r = rate(source)
        for layer, idx in cons:
            d = geos[layer].dest_counts(idx, layers[layer].tile)
            m = layers[layer]
            m.messages_in_bound += round(float(np.sum(d)))
            if r is not None and not unknown_in.get(layer, False):
                m.messages_in_per_step = np.nan_to_num(m.messages_in_per_step) + float(
                    np.sum(r * d)
                )
            elif r is None:  # a source without a measured rate: no measured total
                unknown_in[layer] = True
                m.messages_in_per_step = math.nan
        if source not in layers:
            d = sum(geos[layer].dest_counts(idx, layers[layer].tile) for layer, idx in cons)
            boundary.append(
                Boundary(
                    source, "in", int(np.prod(_source_shape(nodes, source))),
                    tuple(layer for layer, _ in cons),
                    float(np.sum(r * d)) if r is not None else math.nan,
                    round(float(np.sum(d))),
                )
            )  # fmt: skip
    for port, srcs in outputs.items():
        msgs = [rate(s) for s in srcs]
        boundary.append(
            Boundary(
                port, "out", int(sum(layers[s].neurons for s in srcs if s in layers)),
                tuple(srcs),
                float(sum(np.sum(x) for x in msgs)) if all(x is not None for x in msgs)
                else math.nan,
                int(sum(layers[s].neurons for s in srcs if s in layers)),
            )
        )  # fmt: skip
    measured = rates is not None and all(rate(n) is not None for n in names)
    result = MappingResult(target, [layers[n] for n in names], boundary, measured)
    _chip_traffic(result, geos, consumers, rate, result.notes)
    if rates is not None and not measured:
        missing = [n for n in names if rate(n) is None]
        result.notes.append(f"no measured rates for {missing}: their traffic is the bound only")
    return result


CHIP_TRAFFIC_BUDGET = 50_000_000  # source-neuron x destination-core pairs evaluated at most


def _tile_index(shape: Sequence[int], tile: Sequence[int]) -> np.ndarray:
    """Row-major index of the tile (core) holding each neuron: int array [*shape]."""
    grid = [np.arange(n) // t for n, t in zip(shape, tile, strict=True)]
    counts = [-(-n // t) for n, t in zip(shape, tile, strict=True)]
    return np.ravel_multi_index(np.meshgrid(*grid, indexing="ij"), counts)


def _chip_traffic(result, geos, consumers, rate, notes: list[str]) -> None:
    """Messages between chips: cores are numbered layer by layer (graph order, tiles
    row-major) and filled onto chips of ``cores_per_chip``; host ports are not chips."""
    per_chip = result.target.cores_per_chip
    offset = 0
    for m in result.layers:
        m.first_core, offset = offset, offset + m.cores
    layers = {m.name: m for m in result.layers}
    if result.chips == 1:
        for m in result.layers:
            m.chip_messages_out_bound = 0
            m.chip_messages_out_per_step = 0.0 if result.measured else math.nan
        return
    work = sum(
        layers[dst].cores * layers[src].neurons
        for src, cons in consumers.items()
        if src in layers
        for dst, _ in cons
    )
    if work > CHIP_TRAFFIC_BUDGET:
        notes.append(
            f"inter-chip messages not computed ({work} neuron x core pairs > {CHIP_TRAFFIC_BUDGET})"
        )
        return
    for m in result.layers:
        src_chip = (m.first_core + _tile_index(m.shape, m.tile)) // per_chip
        cross = np.zeros(m.shape)
        for dst, idx in consumers.get(m.name, []):
            d, geo = layers[dst], geos[dst]
            cross += geo.dest_counts(idx, d.tile)
            full = any(geo.paths[p].rel.full for p in idx)
            k = [-(-n // t) for n, t in zip(d.shape, d.tile, strict=True)]
            for flat in range(d.cores):  # subtract destination cores on the sender's chip
                chip = (d.first_core + flat) // per_chip
                same = src_chip == chip
                if not same.any():
                    continue
                t_idx = np.unravel_index(flat, k)
                reach = np.full(m.shape, full)
                if not full:
                    for p in idx:
                        masks = [geo.axis(p, a, t)[1][t_idx[a]] for a, t in enumerate(d.tile)]
                        reach |= _outer(masks).astype(bool)
                cross -= reach & same
        m.chip_messages_out_bound = round(float(cross.sum()))
        r = rate(m.name)
        m.chip_messages_out_per_step = float(np.sum(r * cross)) if r is not None else math.nan


# ----------------------------------------------------------------------------- rates


def spike_rates(runs: Iterable[Mapping[str, Any]]) -> dict[str, np.ndarray]:
    """Mean spikes per neuron and step over simulator outputs ``{node: [T, B, *shape]}``.

    A nonzero output counts as one spike (one message; graded outputs of I/LI nodes too).
    Returns ``{node: float64 [*shape]}`` over every batch and step seen.
    """
    sums: dict[str, np.ndarray] = {}
    steps: dict[str, int] = {}
    for out in runs:
        for name, value in out.items():
            x = np.asarray(value) != 0  # [T, B, *shape]
            if x.ndim < 2:
                raise ValueError(f"{name!r}: expected [T, B, ...] outputs, got shape {x.shape}")
            sums[name] = sums.get(name, 0) + x.sum(axis=(0, 1), dtype=np.float64)
            steps[name] = steps.get(name, 0) + x.shape[0] * x.shape[1]
    return {name: sums[name] / steps[name] for name in sums}


# ----------------------------------------------------------------------------- report


def _fmt(x: float, digits: int = 1) -> str:
    return "" if isinstance(x, float) and math.isnan(x) else f"{x:.{digits}f}"


def _encoding(m: LayerMapping, target: Target) -> str:
    kinds = []
    for p in m.paths:
        kind = p.encoding
        if kind == "kernel" and not target.shared_conv_weights:
            kind = "per-synapse"
        kinds.append(kind)
    return "+".join(sorted(set(kinds)))


def layer_rows(result: MappingResult) -> list[dict[str, Any]]:
    """One row per layer (the CSV), then a ``TOTAL`` row."""
    t = result.target
    rows = []
    for m in result.layers:
        rows.append(
            {
                "layer": m.name,
                "type": m.type,
                "shape": "x".join(map(str, m.shape)),
                "neurons": m.neurons,
                "tile": "x".join(map(str, m.tile)),
                "cores": m.cores,
                "chips": m.chips(t),
                "max_core_neurons": m.max_core_neurons,
                "utilisation": round(m.utilisation(t), 4),
                "synapses": m.synapses,
                "weights": m.weights,
                "encoding": _encoding(m, t),
                "memory_bytes": m.memory_bytes,
                "max_core_memory_bytes": m.max_core_memory_bytes,
                "max_fan_in": m.max_fan_in,
                "max_input_axons": m.max_input_axons,
                "max_output_axons": m.max_output_axons,
                "binding_limit": m.binding,
                "sources": " ".join(dict.fromkeys(p.source for p in m.paths)),
                "to_host": int(m.to_host),
                "spikes_per_step": _fmt(m.spikes_per_step, 2),
                "messages_out_per_step": _fmt(m.messages_out_per_step, 2),
                "messages_out_bound": m.messages_out_bound,
                "messages_in_per_step": _fmt(m.messages_in_per_step, 2),
                "messages_in_bound": m.messages_in_bound,
                "cores_from": m.first_core,
                "chip_messages_out_per_step": _fmt(m.chip_messages_out_per_step, 2),
                "chip_messages_out_bound": m.chip_messages_out_bound,
            }
        )
    total = {k: "" for k in rows[0]}
    measured = [m for m in result.layers if not math.isnan(m.spikes_per_step)]
    all_measured = len(measured) == len(result.layers)

    def tsum(attr: str) -> str:
        return _fmt(sum(getattr(m, attr) for m in result.layers), 2) if all_measured else ""

    total.update(
        {
            "layer": "TOTAL",
            "neurons": result.neurons,
            "cores": result.cores,
            "chips": result.chips,
            "utilisation": round(result.neurons / (result.cores * t.neurons_per_core), 4),
            "synapses": sum(m.synapses for m in result.layers),
            "weights": sum(m.weights for m in result.layers),
            "memory_bytes": sum(m.memory_bytes for m in result.layers),
            "spikes_per_step": tsum("spikes_per_step"),
            "messages_out_per_step": tsum("messages_out_per_step"),
            "messages_out_bound": sum(m.messages_out_bound for m in result.layers),
            "messages_in_per_step": tsum("messages_in_per_step"),
            "messages_in_bound": sum(m.messages_in_bound for m in result.layers),
            "chip_messages_out_per_step": tsum("chip_messages_out_per_step"),
            "chip_messages_out_bound": sum(m.chip_messages_out_bound for m in result.layers),
        }
    )
    return [*rows, total]


def boundary_rows(result: MappingResult) -> list[dict[str, Any]]:
    return [
        {
            "port": b.name,
            "direction": "into cores" if b.direction == "in" else "to host",
            "neurons": b.neurons,
            "layers": " ".join(b.layers),
            "messages_per_step": _fmt(b.messages_per_step, 2),
            "messages_bound": b.messages_bound,
        }
        for b in result.boundary
    ]


def _table(rows: Sequence[Mapping[str, Any]], cols: Sequence[str] | None = None) -> str:
    if not rows:
        return "  (none)\n"
    cols = list(cols or rows[0])
    text = [[str(r[c]) for c in cols] for r in rows]
    width = [max(len(c), *(len(t[i]) for t in text)) for i, c in enumerate(cols)]
    numeric = [all(_is_number(t[i]) for t in text) for i in range(len(cols))]

    def line(vals: Sequence[str]) -> str:
        cells = [
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(vals, width, numeric, strict=True)
        ]
        return ("  " + "  ".join(cells)).rstrip()

    return "\n".join([line(cols), line(["-" * w for w in width]), *map(line, text)]) + "\n"


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return s == ""
    return True


_TEXT_COLUMNS = {  # text table column -> CSV column
    "layer": "layer",
    "type": "type",
    "shape": "shape",
    "neurons": "neurons",
    "tile": "tile",
    "cores": "cores",
    "util%": "utilisation",
    "synapses": "synapses",
    "weights": "weights",
    "encoding": "encoding",
    "mem_KiB": "memory_bytes",
    "core_KiB": "max_core_memory_bytes",
    "in_axons": "max_input_axons",
    "out_axons": "max_output_axons",
    "limit": "binding_limit",
    "spikes/step": "spikes_per_step",
    "msgs/step": "messages_out_per_step",
    "msgs_max": "messages_out_bound",
}


def report_text(result: MappingResult, header: Sequence[str] = ()) -> str:
    """The readable report: target and assumptions, totals, per-layer and boundary tables."""
    t = result.target
    conv = "shared (kernel once per core)" if t.shared_conv_weights else "per synapse"
    rows = layer_rows(result)
    text_rows = []
    for r in rows:
        row = {k: r[v] for k, v in _TEXT_COLUMNS.items()}
        if r["utilisation"] != "":
            row["util%"] = f"{100 * float(r['utilisation']):.1f}"
        for k in ("mem_KiB", "core_KiB"):
            row[k] = f"{r[_TEXT_COLUMNS[k]] / 1024:.1f}" if r[_TEXT_COLUMNS[k]] != "" else ""
        text_rows.append(row)
    total = rows[-1]
    lines = [*header]
    lines += [
        f"target       {t.name}: {t.description}",
        f"             {t.neurons_per_core} neurons/core, {t.cores_per_chip} cores/chip,"
        f" {t.synapse_memory_bytes_per_core} B synapse memory/core, {t.max_input_axons_per_core}"
        f" input / {t.max_output_axons_per_core} output axons/core, {t.weight_bits}-bit weights,"
        f" conv weights {conv}",
    ]
    lines += [f"assumption   {a}" for a in t.assumptions]
    lines += [
        f"totals       {result.cores} cores on {result.chips} chip(s); {result.neurons} neurons"
        f" ({100 * float(total['utilisation']):.1f}% of the cores' neuron slots);"
        f" {total['synapses']} synapses, {total['weights']} weights stored"
        " (kernel entries; a conv feeding two layers counts twice),"
        f" {total['memory_bytes'] / 1024:.1f} KiB synapse memory",
        "traffic      spike messages per sample and step between cores (each spike: one message"
        " per destination core, + one to the host for ports): "
        + (
            f"measured {total['messages_out_per_step']} (bound {total['messages_out_bound']});"
            f" spikes emitted {total['spikes_per_step']}/step"
            if result.measured
            else f"not measured; upper bound {total['messages_out_bound']} (every neuron spikes"
            " every step)"
        ),
        "between chips "
        + (
            "none (one chip)"
            if result.chips == 1
            else f"{total['chip_messages_out_per_step'] or 'not measured'} messages per step"
            f" (bound {total['chip_messages_out_bound']}); cores filled onto chips layer by"
            " layer in graph order"
        ),
        "placement    one layer per core set (no core shared by two layers); tile = neurons per"
        " core along (channels, rows, cols), the fewest cores that meet every per-core limit;"
        " limit = the per-core resource closest to full",
        "",
        "Layers (synapses: real connections from kernel, stride, padding; encoding: kernel ="
        " shared conv/pool weights, per-synapse/dense = one weight per connection)",
        _table(text_rows),
        "Boundary (spikes entering from the sensor/host, leaving to host ports)",
        _table(boundary_rows(result)),
    ]
    lines += [f"note         {n}" for n in result.notes]
    return "\n".join(lines).rstrip() + "\n"


def write_report(
    result: MappingResult, out_dir: str | os.PathLike, header: Sequence[str] = ()
) -> dict[str, Path]:
    """Write ``mapping.csv`` (per layer + TOTAL) and ``mapping.txt`` atomically into ``out_dir``."""
    out = Path(out_dir)
    paths = {"csv": out / "mapping.csv", "text": out / "mapping.txt"}
    text = report_text(result, header)  # compute everything before writing anything
    table = csv_text(layer_rows(result))
    atomic_write_text(paths["csv"], table)
    atomic_write_text(paths["text"], text)
    return paths
