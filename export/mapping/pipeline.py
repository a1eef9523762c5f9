"""``map_source``: the mapping pipeline of ``python -m export.map``, callable from Python.

Load a ``.nir`` graph or an FSVE checkpoint, measure the spikes of every spike source on a
dataset split or a ``.npy`` array with the float simulator, and map the graph onto a target.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import nir
import numpy as np
import torch

from export.mapping.mapper import map_graph
from export.mapping.result import MappingResult
from export.mapping.sources import GraphSource, clip_shape, dataset_batches, load_source
from export.mapping.targets import Target, load_target
from export.mapping.traffic import spike_rates
from fsve.cli import require_dataset

__all__ = ["MappedSource", "map_source"]


class MappedSource(NamedTuple):
    """A mapping and the header lines its report starts with (what, target, rate basis)."""

    result: MappingResult
    header: list[str]


def map_source(
    source: str | os.PathLike,
    target: str | os.PathLike | Target = "loihi2",
    *,
    data: str | os.PathLike | None = None,
    split: str = "test",
    samples: int | None = None,
    blocks: int = 5,
    batch_size: int = 8,
    note: str | None = None,
    inputs: Sequence[str] | None = None,
    dt: float | None = None,
) -> MappedSource:
    """Map ``source`` (a ``.nir`` graph or an FSVE checkpoint ``.pt``) onto ``target``.

    ``data``: a dataset folder (clips; the first ``samples`` of ``split``, all by default) or
    a ``.npy`` array ``[T, B, ...]`` for a graph with one Input; ``inputs``: instead, the
    user's ``[NAME=]FILE`` arrays for a ``.nir`` graph's Inputs, time-first ``[T, B, *shape]``
    or ``[T, *shape]`` (:mod:`export.inputs`; no dataset needed). The spikes per step measured
    on them give the traffic, without them the report gives the upper bound only. ``dt`` (s):
    the simulator's step (default: the graph's ``metadata["dt_s"]`` or 1e-4). ``blocks``:
    sub-blocks per clip for ``.nir`` graphs (a checkpoint knows its own). ``note``: a
    provenance line for the header. Write the report with
    :func:`~export.mapping.report.write_report` (``result``, ``out_dir``, ``header``).
    Raises :class:`~export.mapping.targets.MappingError` for a layer no tiling can place and
    ``ValueError``/``OSError`` for bad input.
    """
    source, data = Path(source), None if data is None else Path(data)
    if batch_size < 1 or (samples is not None and samples < 1):
        raise ValueError("batch_size and samples must be >= 1")
    if inputs and data is not None:
        raise ValueError("give --input (your spikes) or --data, not both")
    target = load_target(target)
    clip = clip_shape(source)
    batches: Iterator[Any] | None = None
    first: Any = None
    basis = "no --data: upper bounds only"
    is_dataset = data is not None and data.is_dir()
    if data is not None and (is_dataset or not data.exists()):
        require_dataset(data)
    if data is not None and is_dataset and clip is not None:
        k, f, h, w = clip
        batches, n = dataset_batches(data, split, f, (h, w), k, samples, batch_size)
        first = next(batches)
        basis = f"{n} clips of {data} {split}, T = {k} steps"
    src = load_source(source, first, dt)
    if inputs:
        batches, basis = _user_inputs(src, list(inputs), samples, source)
    elif data is not None and batches is None:
        batches, basis = _graph_inputs(src, data, split, samples, blocks, batch_size, source)
    rates = None
    if batches is not None:
        stream = batches if first is None else itertools.chain([first], batches)
        rates = spike_rates(src.run(x) for x in stream)
        basis = f"measured on {basis} with the float simulator export.sim"
    result = map_graph(src.graph, target, rates)
    meta = src.graph.metadata or {}
    header = [
        f"Mapping of {src.what}",
        f"onto {target.name}; host ops (not on cores): {meta.get('host_ops', 'none')}",
        f"spike rates  {basis}",
    ]
    if note:
        header.insert(1, f"note         {note}")
    return MappedSource(result, header)


def _graph_inputs(
    src: GraphSource,
    data: Path,
    split: str,
    samples: int | None,
    blocks: int,
    batch_size: int,
    source: Path,
) -> tuple[Iterator[Any], str]:
    """Input batches of a ``.nir`` graph from a dataset folder or a ``.npy`` file, and where
    they come from (for the header)."""
    if data.is_dir():
        if src.layout != "clip":
            raise ValueError(
                f"{data}: a dataset folder feeds FSVE graphs (clip layout); give a"
                " .npy [T, B, ...] for this graph"
            )
        shape = tuple(int(s) for s in np.asarray(src.graph.nodes["input"].output_type["output"]))
        if len(shape) != 3:
            raise ValueError(f"the graph input has shape {shape}, not (frames, H, W)")
        batches, n = dataset_batches(
            data, split, shape[0], (shape[1], shape[2]), blocks, samples, batch_size
        )
        return batches, f"{n} clips of {data} {split}, T = {blocks} steps"
    if data.suffix == ".npy":
        return _user_inputs(src, [str(data)], samples, source)
    raise ValueError(f"{data}: --data takes a dataset folder or a .npy file")


def _user_inputs(
    src: GraphSource, items: list[str], samples: int | None, source: Path
) -> tuple[Iterator[Any], str]:
    """The user's time-first ``[NAME=]FILE`` inputs of a ``.nir`` graph (first ``samples``
    samples) as one batch, and where they come from (for the header)."""
    from export.graph import flatten_graph
    from export.inputs import load_inputs

    if src.layout == "clip":
        raise ValueError(f"{source} takes clips; give --data a dataset folder")
    nodes, edges = flatten_graph(src.graph)
    fed = {dst for _, dst in edges}
    names = [n for n, node in nodes.items() if isinstance(node, nir.Input) and n not in fed]
    given = load_inputs(items, nodes, names)
    arrays = {k: torch.as_tensor(v[:, :samples]) for k, v in given.arrays.items()}
    t, b = next(iter(arrays.values())).shape[:2]
    files = ", ".join(given.files.values())
    x = arrays if len(arrays) > 1 else next(iter(arrays.values()))
    return iter([x]), f"{files}: T = {t} steps, B = {b} samples"
