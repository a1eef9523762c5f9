"""The layers of a NIR graph: its neuron nodes, the synaptic paths into each, the host ports.

A *layer* is one neuron node of the graph (LIF, CubaLIF, IF, LI, CubaLI, I, Threshold) with the
synapses that feed it. A synaptic *path* runs from a spike source (a neuron node or a graph
Input: the sensor, or a host port) through weight/reindexing nodes (Conv1d/2d, Affine, Linear,
SumPool2d, AvgPool2d, Scale, Delay, Flatten) to the layer; several paths into a layer are
summed, as NIR sums fan-in edges. Recurrent graphs are refused.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import nir
import numpy as np

from export.graph import NEURON_TYPES, flatten_graph, port_shape, topological_order
from export.mapping.geometry import Geometry, by_source
from export.mapping.relations import compose, identity
from export.mapping.result import LayerMapping, SynapsePath
from export.mapping.targets import MappingError

__all__ = ["LayerGraph", "extract_layers", "source_shape"]


@dataclass
class LayerGraph:
    """The neuron layers of a flattened graph and where their spikes go."""

    nodes: dict[str, Any]  # the flattened graph's nodes
    names: list[str]  # neuron layers, in topological order
    layers: dict[str, LayerMapping]  # name -> its mapping (filled in by the allocation)
    geometry: dict[str, Geometry]  # name -> per-axis counts of its incoming paths
    outputs: dict[str, list[str]]  # Output port -> the layers (or Inputs) it reads
    consumers: dict[str, list[tuple[str, list[int]]]]  # source -> (layer, its path indices)

    @property
    def host_read(self) -> set[str]:
        """Spike sources an Output port reads (one more message per spike, to the host)."""
        return {s for srcs in self.outputs.values() for s in srcs}


def extract_layers(graph: nir.NIRGraph) -> LayerGraph:
    """The layers of ``graph`` (subgraphs inlined) with their synaptic paths and host ports.

    Raises :class:`MappingError` for a recurrent graph, one without neurons, a layer without
    input, or an Output port fed through synapses without a neuron layer.
    """
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
    geometry: dict[str, Geometry] = {}
    for n in names:
        shape = source_shape(nodes, n)
        paths = _paths(nodes, preds, n, shape)
        if not paths:
            raise MappingError(f"layer {n!r}: no incoming edge")
        layers[n] = LayerMapping(n, type(nodes[n]).__name__, shape, paths)
        geometry[n] = Geometry(shape, paths)
    consumers: dict[str, list[tuple[str, list[int]]]] = {}
    for n, m in layers.items():
        for source, idx in by_source(m.paths).items():
            consumers.setdefault(source, []).append((n, idx))
    outputs = _output_ports(nodes, preds)
    return LayerGraph(nodes, names, layers, geometry, outputs, consumers)


def _output_ports(nodes: Mapping[str, Any], preds: Mapping[str, list[str]]) -> dict[str, list[str]]:
    """Output port -> the spike sources it reads; synapses into a port have no neurons."""
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
    return outputs


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


def source_shape(nodes: Mapping[str, Any], name: str) -> tuple[int, ...]:
    """The NIR shape of node ``name`` (its output, else its input, port)."""
    node = nodes[name]
    shape = port_shape(node, "output") or port_shape(node, "input")
    if not shape:
        raise MappingError(f"node {name!r}: no shape in the graph (output_type is empty)")
    return shape


def _paths(nodes, preds, layer: str, shape: tuple[int, ...]) -> list[SynapsePath]:
    paths = []
    for source, chain in _trace(nodes, preds, layer):
        rel = identity(source_shape(nodes, source))
        for n in chain:
            rel = compose(rel, n, nodes[n])
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
