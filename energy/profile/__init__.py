"""Energy profiling: count a model's forward passes and price them per inference.

:func:`profile_model` profiles a model on batches in memory; :func:`profile_checkpoint` a
checkpoint on a dataset split, the pipeline of the command ``python -m energy.profile CKPT``
(:mod:`.cli`). Both return an :class:`~energy.report.EnergyReport`.
"""

from energy.profile.checkpoint import profile_checkpoint
from energy.profile.cli import main
from energy.profile.model import profile_model

__all__ = ["main", "profile_checkpoint", "profile_model"]
