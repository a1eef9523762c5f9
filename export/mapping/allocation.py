"""Core allocation: each layer's tile (neurons per core along each axis) and what it costs.

Every layer gets its own cores (no core holds two layers). A layer of shape ``(C, H, W)`` is cut
into equal tiles ``tc x th x tw`` (one tile per core); the tile is the one needing the fewest
cores that fits all per-core limits (ties: the least halo, i.e. fewest input axons summed over
cores). Tiling channels and space, not flat index ranges, keeps the receptive field of a conv
tile small. Per core: neurons <= ``neurons_per_core``; *input axons* (distinct source neurons
whose spikes reach the core) <= ``max_input_axons_per_core``; *output axons* (one per neuron and
destination core it sends to, +1 for a neuron read by the host) <= ``max_output_axons_per_core``;
synapse memory <= ``synapse_memory_bytes_per_core``, with ``weight_bits`` per stored weight: a
single conv or pool stored as its kernel once per core (``shared_conv_weights``: the output
channels of the tile x ``Cin/groups x kh x kw``), every other path one weight per connection.

The layers are tiled in reverse graph order, so a layer's consumers are placed before its
output axons are checked; each tile is chosen greedily for its own layer (fewest cores), not for
the whole graph.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from export.mapping.geometry import BlockSums, Geometry, outer
from export.mapping.layers import LayerGraph
from export.mapping.result import LayerMapping
from export.mapping.targets import MappingError, Target, core_limits

__all__ = ["allocate"]


def allocate(lg: LayerGraph, target: Target) -> dict[str, np.ndarray]:
    """Tile every layer of ``lg`` onto ``target``'s cores, filling in its :class:`LayerMapping`.

    Returns per layer its fan-out: per neuron, the destination cores its spikes go to (+1 for
    the host), NIR shape of the layer.
    """
    fan_out: dict[str, np.ndarray] = {}
    host_read = lg.host_read
    # reverse topological order: a layer's consumers are tiled before it (feed-forward graph)
    for n in reversed(lg.names):
        m = lg.layers[n]
        out = np.zeros(m.shape)
        for layer, idx in lg.consumers.get(n, []):
            out = out + lg.geometry[layer].dest_counts(idx, lg.layers[layer].tile)
        if n in host_read:
            out = out + 1.0
        tile, usage = _choose(lg.geometry[n], n, target, BlockSums(out))
        _place(m, lg.geometry[n], tile, usage, target)
        m.weights += _stored_weights(m, lg.nodes)
        m.to_host = n in host_read
        m.messages_out_bound = round(float(np.sum(out)))
        fan_out[n] = out
    return fan_out


def _place(
    m: LayerMapping,
    geo: Geometry,
    tile: tuple[int, ...],
    usage: Mapping[str, float],
    target: Target,
) -> None:
    """Record in ``m`` the cores, synapses and per-core peaks of ``tile``."""
    limits = core_limits(target)
    m.tile, m.cores = tile, _cores(m.shape, tile)
    m.binding = max(limits, key=lambda k: usage[k] / limits[k])
    paths_i = range(len(m.paths))
    m.synapses = round(sum(float(np.sum(geo.synapses(p, tile))) for p in paths_i))
    bits = sum(geo.memory_bits(p, tile, target) for p in range(len(m.paths)))
    m.memory_bytes = math.ceil(float(np.sum(bits)) / 8)
    m.max_core_memory_bytes = math.ceil(usage["synapse memory"])
    m.max_core_neurons = int(np.max(outer(geo.tiles(tile))))
    m.max_input_axons = round(usage["input axons"])
    m.max_output_axons = round(usage["output axons"])
    single = tuple(1 for _ in m.shape)
    fan_in = sum(geo.synapses(p, single) for p in range(len(m.paths)))
    m.max_fan_in = round(float(np.max(fan_in)))


def _stored_weights(m: LayerMapping, nodes: Mapping[str, Any]) -> int:
    """Distinct weights of the weight nodes on ``m``'s paths (a node on two paths once)."""
    total = 0
    seen: set[str] = set()
    for p in m.paths:
        for w in p.rel.weighted:
            if w not in seen:
                seen.add(w)
                weight = getattr(nodes[w], "weight", None)
                total += int(np.asarray(weight).size) if weight is not None else 0
    return total


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
    geo: Geometry,
    tile: tuple[int, ...],
    target: Target,
    out_axons: BlockSums | None,
    stop: bool = False,
) -> dict[str, float]:
    """The worst core's usage of each per-core resource at ``tile``.

    With ``stop``, returns as soon as one resource is over its limit (the rest left out).
    """
    limits = core_limits(target)
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


def _choose(
    geo: Geometry, name: str, target: Target, out_axons: BlockSums | None
) -> tuple[tuple[int, ...], dict[str, float]]:
    """The tile of layer ``name`` needing the fewest cores within every per-core limit (ties:
    the least halo), and the worst core's usage at it; :class:`MappingError` if none fits."""
    limits = core_limits(target)
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
