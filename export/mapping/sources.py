"""What the mapping command maps: a ``.nir`` graph or an FSVE checkpoint, and how to run it.

A source gives the graph to map and a runner that returns the spikes of every spike source
(neuron nodes and Inputs) for a batch, so that :func:`~export.mapping.traffic.spike_rates` can
measure them: the float simulator :mod:`export.sim`, or the split model (graph + host program)
of an FSVE export.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nir
import numpy as np
import torch

from export.graph import DT_S, NEURON_TYPES, read_nir
from export.nir import HostProgram, SplitModel, host_path_for, to_nir
from export.sim import Simulator
from fsve.cli import check_frame_size, open_dataset

__all__ = ["GraphSource", "clip_shape", "dataset_batches", "load_source"]

Runner = Callable[[Any], dict[str, Any]]


@dataclass
class GraphSource:
    """A graph to map and a way to measure its spikes."""

    graph: nir.NIRGraph
    run: Runner  # batch -> {spike source: [T, B, *shape]}
    layout: str  # "clip" ([B, K, F, H, W] FSVE clips) or "time_first" ([T, B, ...])
    what: str  # for the report header


def _graph_dt(graph: nir.NIRGraph) -> float:
    meta = graph.metadata or {}
    return float(np.asarray(meta["dt_s"])) if "dt_s" in meta else DT_S


def _record(graph: nir.NIRGraph) -> list[str]:
    """Neuron nodes and Input nodes: every spike source of the mapping."""
    return [n for n, node in graph.nodes.items() if isinstance(node, (*NEURON_TYPES, nir.Input))]


def load_source(
    source: Path, example: torch.Tensor | None = None, dt: float | None = None
) -> GraphSource:
    """A ``.nir`` file (with its host program if one lies beside it) or an FSVE checkpoint
    (exported with :func:`export.nir.to_nir` on ``example`` clips, zeros by default); ``dt``
    (s) overrides a ``.nir`` graph's ``metadata["dt_s"]`` (default 1e-4)."""
    if not source.is_file():
        raise FileNotFoundError(f"{source}: no such file")
    if source.suffix == ".nir":
        return _load_nir(source, dt)
    if source.suffix == ".pt":
        from fsve.checkpoint import load_model

        model, _ = load_model(source, kind="fsve")
        cfg = model.cfg
        if example is None:
            example = torch.zeros(1, cfg.num_blocks, cfg.block_frames, cfg.height, cfg.width)
            example = example.bool()
        export = to_nir(model, example)
        split = export.split_model()
        names = _record(export.graph)
        return GraphSource(
            export.graph,
            lambda x: split.run(x, record=names),
            "clip",
            f"FSVE checkpoint {source} (exported with export.nir.to_nir)",
        )
    raise ValueError(f"{source}: expected a .nir graph or a .pt FSVE checkpoint")


def _load_nir(source: Path, dt: float | None = None) -> GraphSource:
    graph = read_nir(source)
    dt = _graph_dt(graph) if dt is None else dt
    host_file = host_path_for(source)
    names = _record(graph)
    if host_file.is_file():
        split = SplitModel(graph, HostProgram.load(host_file), dt)
        return GraphSource(
            graph,
            lambda x: split.run(x, record=names),
            split.host.input_layout,
            f"NIR graph {source} with its host program {host_file}",
        )
    sim = Simulator(graph, dt)
    layout = str((graph.metadata or {}).get("input_layout", "time_first"))
    if len(sim.inputs) > 1:
        ports = [n for n in sim.inputs if n != "input"]

        def refuse(x: Any) -> dict[str, Any]:
            raise ValueError(
                f"{source} has Input ports {ports} fed by a host program; measuring spikes"
                f" needs {host_file} beside it (written by python -m export.nir)"
            )

        return GraphSource(graph, refuse, layout, f"NIR graph {source}")

    def run(x: Any) -> dict[str, Any]:
        if layout == "clip":
            x = torch.as_tensor(x).transpose(0, 1)  # [B, K, F, H, W] -> [T = K, B, ...]
        return sim.run(x, record=names)

    return GraphSource(graph, run, layout, f"NIR graph {source}")


def clip_shape(source: Path) -> tuple[int, int, int, int] | None:
    """``(K, F, H, W)`` of an FSVE checkpoint's clips, None for a .nir file."""
    if source.suffix != ".pt":
        return None
    from fsve.checkpoint import load_checkpoint
    from fsve.models.config import fsve_config

    cfg = fsve_config(load_checkpoint(source, kind="fsve")["config"])
    return cfg.num_blocks, cfg.block_frames, cfg.height, cfg.width


def dataset_batches(
    data: Path,
    split: str,
    frames: int,
    hw: tuple[int, int],
    blocks: int,
    samples: int | None,
    batch_size: int,
) -> tuple[Iterator[torch.Tensor], int]:
    """Batches ``[B, K, F, H, W]`` (bool) of the first ``samples`` clips (None: all) of a
    dataset split cut into ``blocks`` sub-blocks of ``frames`` frames, and the clip count."""
    from fsve.data.dataset import WindowSpec, collate

    if frames % 2 == 0:
        raise ValueError(f"the graph input has {frames} frames per step; sub-blocks are odd")
    dataset = open_dataset(data, split, WindowSpec(num_blocks=blocks, radius=frames // 2))
    check_frame_size(dataset, *hw, what="the graph")
    n = len(dataset) if samples is None else min(samples, len(dataset))

    def batches() -> Iterator[torch.Tensor]:
        for start in range(0, n, batch_size):
            items = [dataset[i] for i in range(start, min(start + batch_size, n))]
            yield collate(items)["spikes"]  # [B, K, F, H, W] bool

    return batches(), n
