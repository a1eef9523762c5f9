"""What :func:`~export.loihi.compare.compare_fixed_point` measures: dataset clips or the
user's own input.

:func:`dataset_measurement`: an FSVE checkpoint or GRAPH.nir (+ host program) on clips of a
dataset folder, ranges from train clips, class prompts when a checkpoint gives them.
:func:`input_measurement`: any NIR graph (SpikingJelly's, Norse's, hand-built) on a time-first
array ``[T, B, ...]`` or ``[T, ...]`` of the user's (:mod:`export.inputs`); no dataset, no class
prompts, and the ranges come from the first samples of that same input (issue 15).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from export.loihi.paths import graph_dt

__all__ = ["Measurement", "dataset_measurement", "input_measurement", "load_graph"]


@dataclass
class Measurement:
    """The split model compared and the inputs it runs on (model inputs: clips or
    ``[T, B, ...]``, whatever ``split.run`` takes)."""

    graph: Any  # nir.NIRGraph
    split: Any  # export.nir.SplitModel (graph + host program; float64 sums)
    dt: float  # time step, s
    calib: Any  # model input of the calibration run
    batches: Iterable[dict[str, Any]]  # {"spikes": model input, "label": [b] (datasets only)}
    samples: int  # samples measured
    calibration: int  # samples behind the ranges
    classes: Any  # class prompt embeddings [classes, D] or None
    data: str  # dataset folder or input file
    split_name: str  # dataset split ("" for an input file)
    measured_on: str  # report line: what was measured
    calibrated_on: str  # report line: where the ranges come from
    user_input: dict[str, np.ndarray] | None = None  # {Input: [T, B, *shape]} of input mode


def load_graph(path: Path) -> tuple[Any, Any]:
    """A ``.nir`` file and its host program (``GRAPH.host.pt`` beside it, else none)."""
    from export.graph import read_nir
    from export.nir import HostProgram, host_path_for

    if path.suffix != ".nir":
        raise ValueError(f"{path}: expected a .nir graph")
    graph = read_nir(path)
    hp = host_path_for(path)
    return graph, HostProgram.load(hp) if hp.is_file() else None


def dataset_measurement(
    path: Path,
    data: Path,
    split: str,
    samples: int | None,
    batch_size: int,
    calibration: int,
    checkpoint: str | os.PathLike | None,
    dt: float | None,
) -> Measurement:
    """Clips of ``split`` (the first ``samples``); ranges from ``calibration`` train clips."""
    import torch

    from export.nir import HostProgram, SplitModel, class_prompt_embeddings, clip_batches, to_nir
    from fsve.checkpoint import load_model
    from fsve.cli import require_dataset
    from fsve.data.dataset import SpikeDataset, WindowSpec

    require_dataset(data)
    graph = host = model = ckpt = None
    if path.suffix == ".nir":
        graph, host = load_graph(path)
        if checkpoint is not None:
            model, ckpt = load_model(checkpoint, kind="fsve")
    else:
        model, ckpt = load_model(path, kind="fsve")
    window = WindowSpec()
    if model is not None:
        window = WindowSpec(num_blocks=model.cfg.num_blocks, radius=model.cfg.block_frames // 2)
    dataset = SpikeDataset(data, split, window=window)
    calib_set = SpikeDataset(data, "train", window=window)
    samples = len(dataset) if samples is None else min(samples, len(dataset))
    calib = next(iter(clip_batches(calib_set, min(calibration, len(calib_set)), calibration)))
    if graph is None:
        export = to_nir(model, calib["spikes"][:batch_size])
        graph, host = export.graph, export.host
    elif model is not None:  # the prompts must come from the model the graph was exported from
        check_graph_matches(graph, to_nir(model, calib["spikes"][:1], verify=False).graph, path,
                            Path(checkpoint))  # fmt: skip
    dt = graph_dt(graph, dt)
    split_model = SplitModel(graph, host or HostProgram(), dt, accumulate=torch.float64)
    classes = None if model is None else class_prompt_embeddings(model, ckpt, dataset.class_names)
    n_cal = int(calib["spikes"].shape[0])
    return Measurement(
        graph, split_model, dt, calib["spikes"], clip_batches(dataset, samples, batch_size),
        samples, n_cal, classes, str(data), split, f"{samples} clips of {data} {split}",
        f"{n_cal} train clips",
    )  # fmt: skip


def check_graph_matches(graph: Any, exported: Any, path: Path, checkpoint: Path) -> None:
    """Refuse ``--checkpoint`` when the graph at ``path`` is not what it exports to: the same
    node names and types, and equal parameters (so its class prompts belong to this graph)."""

    def params(node: Any) -> dict[str, np.ndarray]:
        keys = ("weight", "bias", "tau", "r", "v_threshold", "v_leak", "v_reset", "tau_mem")
        return {k: np.asarray(getattr(node, k)) for k in keys if hasattr(node, k)}

    why = None
    if set(graph.nodes) != set(exported.nodes):
        only = sorted(set(graph.nodes) ^ set(exported.nodes))[:3]
        why = f"their nodes differ ({', '.join(only)} ...)"
    else:
        for name, node in graph.nodes.items():
            other = exported.nodes[name]
            if type(node) is not type(other):
                why = f"node {name!r} is {type(node).__name__} in the graph, "
                why += f"{type(other).__name__} in the checkpoint"
                break
            a, b = params(node), params(other)
            if set(a) != set(b) or any(
                a[k].shape != b[k].shape or not np.allclose(a[k], b[k], rtol=1e-4, atol=1e-6)
                for k in a
            ):
                why = f"the parameters of node {name!r} differ"
                break
    if why:
        raise ValueError(
            f"--checkpoint {checkpoint} is not the model {path} was exported from ({why}); its"
            " class prompts would give a meaningless Top-1"
        )


def input_measurement(
    path: Path,
    inputs: str | os.PathLike | np.ndarray,
    samples: int | None,
    batch_size: int,
    calibration: int,
    dt: float | None,
) -> Measurement:
    """The user's time-first ``inputs`` (a file or an array) to the graph's one user-fed Input:
    the first ``samples`` samples measured, ranges from its first ``calibration`` samples."""
    import torch

    from export.inputs import GraphInputs, load_inputs, time_first
    from export.nir import HostProgram, SplitModel

    graph, host = load_graph(path)
    dt = graph_dt(graph, dt)
    split_model = SplitModel(graph, host or HostProgram(), dt, accumulate=torch.float64)
    sim = split_model.sim
    fed = {op.output for op in split_model.host.ops if op.feeds_graph}
    wanted = [n for n in sim.inputs if n not in fed]
    if len(wanted) != 1:
        raise ValueError(f"{path}: export.loihi feeds one Input node, the graph has {wanted}")
    if host is None:
        split_model.host = HostProgram(input_name=wanted[0])
    elif host.input_name != wanted[0]:
        raise ValueError(f"{path}: the host program feeds {host.input_name!r}, not {wanted[0]!r}")
    if isinstance(inputs, np.ndarray):
        arrays, _ = time_first({wanted[0]: inputs}, sim.nodes)
        given = GraphInputs(arrays, False, {wanted[0]: "the input array"})
    else:
        given = load_inputs([str(inputs)], sim.nodes, wanted)
    x = given.arrays[wanted[0]]  # [T, B, *shape]
    total = x.shape[1]
    samples = total if samples is None else min(samples, total)
    n_cal = min(calibration, total)
    clip = split_model.host.input_layout == "clip"

    def model_input(a: np.ndarray) -> Any:
        t = torch.as_tensor(np.ascontiguousarray(a))
        return t.transpose(0, 1) if clip else t  # [T, B, ...] -> clips [B, T = K, ...]

    def batches() -> Iterator[dict[str, Any]]:
        for start in range(0, samples, batch_size):
            yield {"spikes": model_input(x[:, start : min(start + batch_size, samples)])}

    file = given.files[wanted[0]]
    what = f"T = {x.shape[0]} steps, input shape {tuple(x.shape[2:])}"
    return Measurement(
        graph, split_model, dt, model_input(x[:, :n_cal]), batches(), samples, n_cal, None,
        file, "",
        f"{samples} samples of {file} ({what})",
        f"the first {n_cal} samples of that input (no dataset: calibrated on the user's input)",
        dict(given.arrays),
    )  # fmt: skip
