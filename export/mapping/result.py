"""What the mapper returns: per layer where it landed and what it costs, the boundary traffic,
and the totals (:class:`MappingResult`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from export.mapping.relations import Relation
from export.mapping.targets import Target

__all__ = ["Boundary", "LayerMapping", "MappingResult", "SynapsePath"]


@dataclass(frozen=True)
class SynapsePath:
    """One synaptic path into a layer."""

    source: str  # neuron node or graph Input node the spikes come from
    nodes: tuple[str, ...]  # nodes between source and layer, in order
    rel: Relation = field(repr=False)

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
    """A graph mapped onto a target: its layers in graph order, the boundary ports, notes."""

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
