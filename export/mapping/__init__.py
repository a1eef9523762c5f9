"""Map the neuromorphic part of a NIR graph onto neuro cores: cores, synapses, memory, traffic.

The command is ``python -m export.map GRAPH.nir|CKPT --target loihi2`` (:mod:`.cli`); from
Python, :func:`map_source` runs the same pipeline and :func:`map_graph` maps a graph in memory.

The model of the hardware is one :class:`Target` (data, not code). The mapping, stage by stage:

- :mod:`.targets`: the presets ``loihi2`` and ``loihi1`` and target files; the per-core limits.
- :mod:`.layers`: a layer is one neuron node with the synaptic paths that feed it, from a spike
  source (neuron node or graph Input) through weight/reindexing nodes; host ports.
- :mod:`.relations`: each path as a per-axis relation (which sources reach which neurons),
  counted from geometry as sinabs' ``conv_connection_map`` does; zero weights still count.
- :mod:`.geometry`: per-axis sums over tiles, so every per-core count below is exact.
- :mod:`.allocation`: each layer on its own cores, cut into equal ``(C, H, W)`` tiles, the
  fewest cores that meet every per-core limit (neurons, input and output axons, synapse memory).
- :mod:`.traffic`: spike messages per step between cores, to the host and between chips, from
  measured rates (:func:`spike_rates`) or the bound (every neuron spiking every step).
- :mod:`.mapper`: :func:`map_graph`, the stages above in order.
- :mod:`.report`: ``mapping.csv`` and the text report; :mod:`.sources` and :mod:`.pipeline`:
  loading a ``.nir`` file or checkpoint and measuring its spikes (:func:`map_source`).
"""

from export.mapping.mapper import map_graph
from export.mapping.pipeline import MappedSource, map_source
from export.mapping.report import boundary_rows, layer_rows, report_text, write_report
from export.mapping.result import Boundary, LayerMapping, MappingResult, SynapsePath
from export.mapping.targets import TARGETS, MappingError, Target, load_target, target_from_dict
from export.mapping.traffic import CHIP_TRAFFIC_BUDGET, spike_rates

__all__ = [
    "CHIP_TRAFFIC_BUDGET",
    "TARGETS",
    "Boundary",
    "LayerMapping",
    "MappedSource",
    "MappingError",
    "MappingResult",
    "SynapsePath",
    "Target",
    "boundary_rows",
    "layer_rows",
    "load_target",
    "map_graph",
    "map_source",
    "report_text",
    "spike_rates",
    "target_from_dict",
    "write_report",
]
