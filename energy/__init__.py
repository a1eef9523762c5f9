"""Energy estimation of SNNs against their ANN counterparts (issue 5).

``profile_model(model, inputs, costs="paper", convention="simple", baseline="twin")`` returns an
:class:`EnergyReport` with ``.summary`` and ``.layers`` DataFrames; ``profile_checkpoint(CKPT)``
and ``python -m energy.profile CKPT`` do the same for a checkpoint (the command also writes
summary.csv, layers.csv, energy.png, provenance.json and energy_vs_rate.png).
"""

from energy.costs import PRESETS, CostModel, ann_energy_j, load_costs, snn_energy_j
from energy.profile import profile_checkpoint, profile_model
from energy.report import EnergyReport

__all__ = [
    "PRESETS",
    "CostModel",
    "EnergyReport",
    "ann_energy_j",
    "load_costs",
    "profile_checkpoint",
    "profile_model",
    "snn_energy_j",
]
