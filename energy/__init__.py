"""Energy estimation of SNNs against their ANN counterparts (issue 5).

``profile_model(model, inputs, costs=None, convention="simple", baseline="twin")`` returns an
:class:`EnergyReport` with ``.summary`` and ``.layers`` DataFrames for any torch SNN (ours,
SpikingJelly, snnTorch, Norse, Sinabs; issue 15); ``profile_checkpoint(CKPT)`` and
``python -m energy.profile CKPT`` do the same for a checkpoint, ``profile_nir(GRAPH, inputs)``
and ``python -m energy.profile GRAPH.nir --input X.npy`` for a NIR graph (the command also
writes summary.csv, layers.csv, energy.png, provenance.json and energy_vs_rate.png).
"""

from energy.costs import PRESETS, CostModel, ann_energy_j, load_costs, snn_energy_j
from energy.profile import profile_checkpoint, profile_model, profile_nir
from energy.report import EnergyReport

__all__ = [
    "PRESETS",
    "CostModel",
    "EnergyReport",
    "ann_energy_j",
    "load_costs",
    "profile_checkpoint",
    "profile_model",
    "profile_nir",
    "snn_energy_j",
]
