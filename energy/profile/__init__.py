"""Energy profiling: count a model's forward passes and price them per inference.

:func:`profile_model` profiles a model on batches in memory; :func:`profile_checkpoint` a
checkpoint on a dataset split, the pipeline of the command ``python -m energy.profile CKPT``
(:mod:`.cli`); :func:`profile_nir` any NIR graph on the user's input (issue 15). All return an
:class:`~energy.report.EnergyReport`.
"""

from energy.profile.checkpoint import profile_checkpoint
from energy.profile.cli import main
from energy.profile.model import profile_model
from energy.profile.nirgraph import profile_nir

__all__ = ["main", "profile_checkpoint", "profile_model", "profile_nir"]
