"""Spike traffic: messages per step between cores, from and to the host, and between chips.

A spike of a neuron is one message to each destination core holding one of its targets (all
are other cores, as layers never share cores) and one to the host if an Output port reads it.
Measured rates (mean spikes per neuron and step over real inputs, :func:`spike_rates`) give
``messages_per_step``; without them every neuron spiking every step is the bound. Cores are
numbered layer by layer in graph order and filled onto chips of ``cores_per_chip``; the
messages whose destination core is on another chip are counted apart.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from export.mapping.geometry import outer
from export.mapping.layers import LayerGraph, source_shape
from export.mapping.result import Boundary, MappingResult

__all__ = [
    "CHIP_TRAFFIC_BUDGET",
    "Rates",
    "boundary_traffic",
    "chip_traffic",
    "layer_traffic",
    "spike_rates",
]


class Rates:
    """Measured spike rates by node, checked against the node's shape; None where not measured."""

    def __init__(self, rates: Mapping[str, np.ndarray] | None, nodes: Mapping[str, Any]) -> None:
        self.rates, self.nodes = rates, nodes

    def __call__(self, node: str) -> np.ndarray | None:
        if self.rates is None or node not in self.rates:
            return None
        r = np.asarray(self.rates[node], dtype=np.float64)
        shape = source_shape(self.nodes, node)
        if r.shape != shape:
            raise ValueError(f"rates[{node!r}] has shape {r.shape}, the node {shape}")
        return r


def layer_traffic(lg: LayerGraph, fan_out: Mapping[str, np.ndarray], rate: Rates) -> None:
    """Spikes and messages sent per step by each layer (``fan_out`` from the allocation)."""
    for n in reversed(lg.names):
        r = rate(n)
        if r is not None:
            m = lg.layers[n]
            m.spikes_per_step = float(np.sum(r))
            m.messages_out_per_step = float(np.sum(r * fan_out[n]))


def boundary_traffic(lg: LayerGraph, rate: Rates) -> list[Boundary]:
    """Messages into each layer (needs the source's rate and this layer's tiling), and the
    traffic of the graph Inputs (into cores) and Output ports (to the host)."""
    layers = lg.layers
    boundary: list[Boundary] = []
    unknown_in: dict[str, bool] = {}
    for source, cons in lg.consumers.items():
        r = rate(source)
        for layer, idx in cons:
            d = lg.geometry[layer].dest_counts(idx, layers[layer].tile)
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
            d = sum(lg.geometry[layer].dest_counts(idx, layers[layer].tile) for layer, idx in cons)
            boundary.append(
                Boundary(
                    source, "in", int(np.prod(source_shape(lg.nodes, source))),
                    tuple(layer for layer, _ in cons),
                    float(np.sum(r * d)) if r is not None else math.nan,
                    round(float(np.sum(d))),
                )
            )  # fmt: skip
    for port, srcs in lg.outputs.items():
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
    return boundary


CHIP_TRAFFIC_BUDGET = 50_000_000  # source-neuron x destination-core pairs evaluated at most


def _tile_index(shape: Sequence[int], tile: Sequence[int]) -> np.ndarray:
    """Row-major index of the tile (core) holding each neuron: int array [*shape]."""
    grid = [np.arange(n) // t for n, t in zip(shape, tile, strict=True)]
    counts = [-(-n // t) for n, t in zip(shape, tile, strict=True)]
    return np.ravel_multi_index(np.meshgrid(*grid, indexing="ij"), counts)


def chip_traffic(result: MappingResult, lg: LayerGraph, rate: Rates) -> None:
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
        for src, cons in lg.consumers.items()
        if src in layers
        for dst, _ in cons
    )
    if work > CHIP_TRAFFIC_BUDGET:
        result.notes.append(
            f"inter-chip messages not computed ({work} neuron x core pairs > {CHIP_TRAFFIC_BUDGET})"
        )
        return
    for m in result.layers:
        src_chip = (m.first_core + _tile_index(m.shape, m.tile)) // per_chip
        cross = np.zeros(m.shape)
        for dst, idx in lg.consumers.get(m.name, []):
            d, geo = layers[dst], lg.geometry[dst]
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
                        reach |= outer(masks).astype(bool)
                cross -= reach & same
        m.chip_messages_out_bound = round(float(cross.sum()))
        r = rate(m.name)
        m.chip_messages_out_per_step = float(np.sum(r * cross)) if r is not None else math.nan


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
