"""Energy estimation of SNNs against their ANN counterparts (issue 5).

``profile_model(model, inputs, costs="paper", convention="simple", baseline="twin")`` returns an
:class:`EnergyReport` with ``.summary`` and ``.layers`` DataFrames; ``python -m energy.profile
CKPT`` does the same for a checkpoint and writes summary.csv, layers.csv and energy.png.
"""

from energy.costs import PRESETS, CostModel, ann_energy_j, load_costs, snn_energy_j
from energy.report import EnergyReport, profile_model

__all__ = [
    "PRESETS",
    "CostModel",
    "EnergyReport",
    "ann_energy_j",
    "load_costs",
    "profile_model",
    "snn_energy_j",
]
