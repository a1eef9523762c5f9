"""``map_graph``: the mapping of a whole NIR graph, from its layers to the traffic between chips."""

from __future__ import annotations

from collections.abc import Mapping

import nir
import numpy as np

from export.mapping.allocation import allocate
from export.mapping.layers import extract_layers
from export.mapping.result import MappingResult
from export.mapping.targets import Target, load_target
from export.mapping.traffic import Rates, boundary_traffic, chip_traffic, layer_traffic

__all__ = ["map_graph"]


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
    lg = extract_layers(graph)
    fan_out = allocate(lg, target)
    rate = Rates(rates, lg.nodes)
    layer_traffic(lg, fan_out, rate)
    boundary = boundary_traffic(lg, rate)
    names = lg.names
    measured = rates is not None and all(rate(n) is not None for n in names)
    result = MappingResult(target, [lg.layers[n] for n in names], boundary, measured)
    chip_traffic(result, lg, rate)
    if rates is not None and not measured:
        missing = [n for n in names if rate(n) is None]
        result.notes.append(f"no measured rates for {missing}: their traffic is the bound only")
    return result
