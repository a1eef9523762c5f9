"""``to_nir``: a model -> its NIR graph, partition and host program (:class:`NIRExport`)."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import nir
import numpy as np
import torch
from torch import nn

from export.graph import DT_S
from export.nir.builder import Builder, Value
from export.nir.composites import convert_visual
from export.nir.converters import COMPOSITES, converter_for
from export.nir.errors import ExportError, fail
from export.nir.host import HostProgram, HostReadout, host_path_for, write_nir
from export.nir.neurons import THRESHOLD_CONVENTION
from export.nir.partition import ModulePlacement, Partition
from export.nir.split import SplitModel
from fsve.models.student import FSVE, SpikingVisualEncoder

PRODUCER = "fsve export.nir"


@dataclass
class NIRExport:
    """The result of :func:`to_nir`."""

    graph: nir.NIRGraph  # the neuromorphic part (type-checked)
    partition: Partition  # modules on cores/host, boundary tensors
    host: HostProgram  # runnable host part
    dt_s: float  # time step the graph's time constants assume, seconds
    outputs: dict[str, torch.Tensor] = field(default_factory=dict)  # model outputs, example
    activations: dict[str, torch.Tensor] = field(default_factory=dict)  # node -> [T, B, ...]

    def save(self, path: str | os.PathLike) -> tuple[Path, Path]:
        """Write ``path`` (NIR, read back and type-checked) and its host program beside it."""
        nir_path = write_nir(path, self.graph)
        return nir_path, self.host.save(host_path_for(nir_path))

    def split_model(
        self, dtype: torch.dtype = torch.float32, accumulate: torch.dtype | None = None
    ) -> SplitModel:
        """The graph in :class:`~export.sim.Simulator` plus the host program (not copied)."""
        return SplitModel(self.graph, self.host, self.dt_s, dtype, accumulate)


def to_nir(
    model: nn.Module,
    example_input: torch.Tensor,
    dt: float = DT_S,
    keep_activations: bool = False,
    verify: bool = True,
) -> NIRExport:
    """Export the neuromorphic part of ``model`` as a NIR graph, with its partition and host.

    ``example_input``: for an :class:`FSVE` or :class:`SpikingVisualEncoder` a clip batch
    ``[B, K, F, H, W]``; otherwise a time-first ``[T, B, ...]`` tensor. It fixes the shapes and
    gives the reference values (``outputs``, and with ``keep_activations`` the model's value of
    every neuron node and host input in NIR layout, bool where binary). Runs in eval mode
    (BN/SN fixed statistics) and restores the modules' modes afterwards. ``verify`` checks that
    every composite block's exported structure reproduces its forward bit for bit.
    Unsupported modules raise :class:`ExportError` naming the module and the reason.
    """
    if not (isinstance(dt, int | float) and math.isfinite(dt) and dt > 0):
        raise ValueError(f"dt must be a finite number of seconds > 0, got {dt!r}")
    modes = {mod: mod.training for mod in model.modules()}
    model.eval()
    try:
        with torch.no_grad():
            return _to_nir(model, example_input, float(dt), keep_activations, verify)
    finally:
        for mod, training in modes.items():
            mod.training = training


def _to_nir(model, x0, dt, keep, verify) -> NIRExport:
    visual = model.visual if isinstance(model, FSVE) else model
    prefix = "visual" if isinstance(model, FSVE) else ""
    b = Builder(dt, keep, verify, prefix, converter_for, COMPOSITES)
    weight = next((p for p in model.parameters()), None)
    if weight is not None and weight.dtype == torch.float64:
        b.dtype = np.float64
    if isinstance(visual, SpikingVisualEncoder):
        x = visual.check_spikes(torch.as_tensor(x0))  # [T, B, F, H, W]
        layout = "clip"
    else:
        x = torch.as_tensor(x0)
        if x.ndim < 3:
            raise ValueError(f"example_input must be time-first [T, B, ...], got {tuple(x.shape)}")
        if not x.dtype.is_floating_point:
            x = x.to(weight.dtype if weight is not None else torch.float32)
        layout = "time_first"
    n_in = b.node("input", nir.Input(input_type={"input": np.array(x.shape[2:])}), None)
    v = b.value(x, (n_in,))
    b.record(n_in, v, spikes_only=True)
    if isinstance(visual, SpikingVisualEncoder):
        outputs = _export_visual(b, model, visual, x0, v, verify)
    else:
        out = b.convert(model, "", v)  # composite blocks verify themselves in convert()
        out = b.materialize(out) if len(out.terms) > 1 else out
        b.node("output", nir.Output(output_type={"output": np.array(out.nir_shape())}), out)
        outputs = {"output": out.nir_tensor()}
    metadata = {
        "producer": PRODUCER,
        "dt_s": dt,
        "threshold_convention": THRESHOLD_CONVENTION,
        "input_layout": layout,
        "host_ops": ",".join(b.partition.host_ops) or "none",
    }
    try:
        graph = nir.NIRGraph(nodes=b.nodes, edges=b.edges, metadata=metadata, type_check=True)
    except (ValueError, AssertionError, NotImplementedError) as err:
        raise ExportError(f"the exported graph fails NIR's type check: {err}") from None
    host = HostProgram(b.host_ops, n_in, layout)
    return NIRExport(graph, b.partition, host, dt, outputs, b.activations)


def _export_visual(
    b: Builder,
    model: nn.Module,
    visual: SpikingVisualEncoder,
    x0: torch.Tensor,
    v: Value,
    verify: bool,
) -> dict[str, torch.Tensor]:
    """The visual path on cores up to the ``features`` port, its readout on the host."""
    feats = convert_visual(b, visual, "", v)
    port = b.port_out(feats, "features", "readout")
    readout = HostReadout(
        "readout", (port,), "embedding", feats.grid, visual.proj.weight, visual.proj.bias
    )
    emb = readout(feats.nir_tensor())
    want = visual.forward_head(feats.tensor)
    if verify and not torch.equal(emb, want):
        fail("proj", visual.proj, "the host readout does not reproduce forward_head")
    if verify:
        full = visual(torch.as_tensor(x0))
        if not torch.equal(full, emb):
            fail(b.prefix, visual, "the exported structure does not reproduce encode_video")
    b.host_ops.append(readout)
    b.partition.host_ops.append("readout")
    b.place(
        "proj",
        type(visual.proj).__name__,
        "host",
        (),
        "readout: rate = mean over time and tokens, then Linear",
    )
    if isinstance(model, FSVE):
        for sub in ("text", "logit_scale"):
            b.partition.modules.append(
                ModulePlacement(
                    sub,
                    type(getattr(model, sub)).__name__,
                    "host",
                    (),
                    "text side: not part of the video path",
                )
            )
    return {"embedding": emb}
