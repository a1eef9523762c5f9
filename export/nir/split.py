"""The split model: the NIR graph in :mod:`export.sim` plus the host program, run together."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import nir
import numpy as np
import torch
from torch import nn

from export.graph import read_nir
from export.nir.host import HostProgram, host_path_for
from export.sim import DT_S, HostCall, Simulator


class SplitModel(nn.Module):
    """The exported model run split: the NIR graph in :mod:`export.sim` plus the host program.

    ``run(x)`` returns every recorded graph value and every host output; per step, host ops
    read the spikes of the graph's Output ports and feed its Input ports (same step).
    """

    def __init__(
        self,
        graph: nir.NIRGraph | str | Path,
        host: HostProgram,
        dt: float = DT_S,
        dtype: torch.dtype = torch.float32,
        accumulate: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.sim = Simulator(graph, dt, dtype, accumulate=accumulate)
        self.host = host
        self.dtype = dtype
        for op in host.ops:
            for n in op.inputs:
                if n not in self.sim.nodes:
                    raise ValueError(f"host op {op.name!r} reads unknown node {n!r}")
            if op.feeds_graph and op.output not in self.sim.nodes:
                raise ValueError(f"host op {op.name!r} feeds unknown node {op.output!r}")

    @classmethod
    def load(
        cls,
        nir_path: str | os.PathLike,
        host_path: str | os.PathLike | None = None,
        dtype: torch.dtype = torch.float32,
        accumulate: torch.dtype | None = None,
    ) -> SplitModel:
        """From ``OUT.nir`` and its host program (default ``OUT.host.pt``)."""
        graph = read_nir(nir_path)
        host = HostProgram.load(host_path or host_path_for(nir_path))
        dt = float(np.asarray(graph.metadata.get("dt_s", DT_S))) if graph.metadata else DT_S
        return cls(graph, host, dt, dtype, accumulate)

    def run(
        self,
        x: torch.Tensor,
        record: str | Iterable[str] | None = None,
        clamp: Mapping[str, torch.Tensor] | None = None,
        states: Iterable[str] = (),
    ) -> dict[str, torch.Tensor]:
        """Model input -> ``{node or host output: value}`` (graph values ``[T, B, ...]``).

        ``record``, ``clamp`` and ``states`` as in :meth:`export.sim.Simulator.run`.
        """
        calls = {}
        for op in self.host.ops:
            if op.feeds_graph:
                calls[op.output] = HostCall(
                    tuple(op.inputs), lambda d, op=op: op(*(d[n] for n in op.inputs))
                )
        finals = [op for op in self.host.ops if not op.feeds_graph]
        if record is None:
            keep = set(self.sim.neuron_nodes()) | set(self.sim.outputs) | set(calls)
        elif isinstance(record, str):
            keep = record
        else:
            keep = set(record)
        if not isinstance(keep, str):
            keep |= {n for op in finals for n in op.inputs}
        out = self.sim.run(
            {self.host.input_name: self.host.graph_input(x, self.dtype)},
            record=keep,
            states=states,
            host=calls,
            clamp=clamp,
        )
        with torch.no_grad():
            for op in finals:
                out[op.output] = op(*(out[n] for n in op.inputs))
        return out

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.run(x)

    def encode_video(self, spikes: torch.Tensor) -> torch.Tensor:
        """FSVE splits: clip ``[B, K, F, H, W]`` -> embedding ``[B, D]`` (host readout)."""
        return self.run(spikes, record=())["embedding"]
