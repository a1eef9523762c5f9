"""NIR export of FSVEs and spiking chains, with the host partition (``python -m export.nir``).

``to_nir(model, example_input)`` turns a model built from our blocks (:mod:`fsve.nn`), or a
plain SpikingJelly/PyTorch chain (Conv2d, Linear, pooling, Flatten, LIF/IF, BatchNorm, residual
adds), into a :class:`NIRExport`: the NIR graph of the part neuromorphic cores can run, the
partition (which module runs where, which tensors cross), and the runnable host program for the
rest. ``python -m export.nir CKPT OUT.nir`` (:func:`export_checkpoint`) writes ``OUT.nir``, the
host program ``OUT.host.pt`` and a partition report with spike traffic measured on real clips.

Mapping (details and proofs: ``docs/export.md``):

- LIF (``H = V + (X - (V - V_r))/tau``, or ``V - (V - V_r)/tau + X`` without decay_input;
  spike ``H >= V_th``; hard reset) -> ``nir.LIF(tau = tau_steps·dt, r = 1 | tau_steps,
  v_leak = V_r, v_threshold = nextafter(V_th, -inf), v_reset = V_r)``: forward Euler at ``dt``
  reproduces the discrete LIF; NIR's strict ``v > thr`` on the largest float below ``V_th``
  equals our ``>=`` for every value of the model's float type. Soft reset has no NIR form.
- SN (Eq. 9, eval) -> ``nir.Threshold(nextafter(α·running E|x|, -inf))`` per channel.
- TDBN/BN (eval statistics) folded into the preceding conv/linear: ``W' = W·g``,
  ``b' = (b - mean)·g + beta``, ``g = gamma/sqrt(var + eps)``, computed in float64.
- Token-wise ``nn.Linear`` of the transformer -> 1x1 ``nir.Conv2d`` on the token grid: tokens
  ``[T, B, N, C]`` are ``[C, h, w]`` inside the graph.
- Residual adds -> fan-in edges. Every node gets at most two incoming edges: a sum that is
  added to again, or consumed after a layout change, becomes an identity node
  (``nir.Scale(1)``, name ``<block>.add``), so any NIR simulator forms each sum exactly as the
  model does (a two-term float sum does not depend on order).
- Host work: E-SDSA's products of two moving signals (``Q_S K_S^T``, ``A V_S``) with their SN
  thresholds, and the FSVE readout (mean over time and tokens, projection ``proj``). The graph
  exposes them as ports: Output ``<attn>.host.q/k/v`` (spikes to the host) and Input
  ``<attn>.host.out`` (spikes back), Output ``features`` (final spikes to the readout).

Modules: :mod:`~export.nir.neurons` (neuron mapping), :mod:`~export.nir.partition`,
:mod:`~export.nir.host` (host program and files), :mod:`~export.nir.split` (split model),
:mod:`~export.nir.builder`, :mod:`~export.nir.leaves` and :mod:`~export.nir.composites`
(converters), :mod:`~export.nir.converters` (which converter), :mod:`~export.nir.exporter`
(:func:`to_nir`), :mod:`~export.nir.verify` (float comparison), :mod:`~export.nir.report`,
:mod:`~export.nir.pipeline` (:func:`export_checkpoint`), :mod:`~export.nir.cli`.
"""

from export.graph import DT_S
from export.nir.cli import main
from export.nir.converters import CONVERTERS
from export.nir.errors import ExportError
from export.nir.exporter import NIRExport, to_nir
from export.nir.host import (
    HOST_FORMAT,
    HostESDSA,
    HostOp,
    HostProgram,
    HostReadout,
    host_path_for,
    write_nir,
)
from export.nir.neurons import THRESHOLD_CONVENTION, lif_from_nir, lif_to_nir, nir_threshold
from export.nir.partition import BoundaryTensor, ModulePlacement, Partition
from export.nir.pipeline import CheckpointExport, export_checkpoint
from export.nir.report import (
    boundary_rows,
    graph_summary,
    layer_rows,
    module_rows,
    partition_report,
    report_paths,
)
from export.nir.split import SplitModel
from export.nir.verify import (
    DEFAULT_TEMPLATE,
    LayerComparison,
    SplitComparison,
    ZeroShot,
    class_prompt_embeddings,
    clip_batches,
    compare_split,
    zero_shot,
)

__all__ = [
    "CONVERTERS",
    "DEFAULT_TEMPLATE",
    "DT_S",
    "HOST_FORMAT",
    "THRESHOLD_CONVENTION",
    "BoundaryTensor",
    "CheckpointExport",
    "ExportError",
    "HostESDSA",
    "HostOp",
    "HostProgram",
    "HostReadout",
    "LayerComparison",
    "ModulePlacement",
    "NIRExport",
    "Partition",
    "SplitComparison",
    "SplitModel",
    "ZeroShot",
    "boundary_rows",
    "class_prompt_embeddings",
    "clip_batches",
    "compare_split",
    "export_checkpoint",
    "graph_summary",
    "host_path_for",
    "layer_rows",
    "lif_from_nir",
    "lif_to_nir",
    "main",
    "module_rows",
    "nir_threshold",
    "partition_report",
    "report_paths",
    "to_nir",
    "write_nir",
    "zero_shot",
]
