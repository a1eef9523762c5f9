"""``export_checkpoint``: FSVE checkpoint -> NIR file, host program, measured partition report."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from export.nir.exporter import NIRExport, to_nir
from export.nir.host import host_path_for
from export.nir.report import partition_report, report_paths, write_report
from export.nir.split import SplitModel
from export.nir.verify import (
    SplitComparison,
    class_prompt_embeddings,
    clip_batches,
    compare_split,
    zero_shot,
)
from fsve.cli import check_output, open_dataset, require_dataset
from fsve.io import replace_output_set

ACCUMULATE = {"float32": torch.float32, "float64": torch.float64}  # --accumulate choices


@dataclass
class CheckpointExport:
    """What :func:`export_checkpoint` wrote and measured."""

    export: NIRExport  # graph, partition, host program
    nir_path: Path
    host_path: Path
    report: dict[str, Path]  # "text", "modules", "boundary", "layers" (see report_paths)
    comparison: SplitComparison  # model vs split model, summed over the clips measured
    samples: int  # clips measured
    text: str  # the partition report as written
    export_s: float  # seconds: export and writing the files
    simulate_s: float  # seconds: split simulation and comparison


def export_checkpoint(
    checkpoint: str | os.PathLike,
    out: str | os.PathLike,
    *,
    data: str | os.PathLike,
    split: str = "test",
    samples: int | None = None,
    batch_size: int = 8,
    accumulate: str = "float64",
    verify: bool = True,
    report: str | os.PathLike | None = None,
) -> CheckpointExport:
    """Export an FSVE checkpoint to NIR and measure the split model on clips of a dataset.

    Writes ``out`` (a ``.nir`` file, read back and type-checked), its host program
    ``OUT.host.pt`` and the partition report ``report`` (default ``OUT_partition.txt``, CSV
    tables beside it); the files of an earlier export to the same names that this one does not
    write (``_layers.csv`` under ``verify=False``) are removed, so the set is never mixed. The
    split model (the graph in :mod:`export.sim` with float32 neurons and ``accumulate``
    synaptic sums, plus the host program) runs on the first ``samples`` clips
    (default: all) of ``split`` of the dataset at ``data``, ``batch_size`` clips at a time: it
    measures the spike traffic across the boundary and, with ``verify``, compares every spike
    with the model's (free-running and layer by layer) and the zero-shot classes.

    Raises ``ValueError`` (:class:`fsve.cli.UsageError` for a missing or mismatched dataset)
    or ``OSError`` for bad input.
    """
    from fsve.checkpoint import load_model
    from fsve.data.dataset import WindowSpec

    checkpoint, out, data = Path(checkpoint), Path(out), Path(data)
    if batch_size < 1 or (samples is not None and samples < 1):
        raise ValueError("--batch-size and --samples must be >= 1")
    if out.suffix != ".nir":
        raise ValueError(f"OUT must end in .nir, got {out}")
    if accumulate not in ACCUMULATE:
        raise ValueError(f"accumulate must be one of {sorted(ACCUMULATE)}, got {accumulate!r}")
    paths = report_paths(report or out.with_name(out.stem + "_partition.txt"))
    for path in (out, *paths.values()):
        check_output(path, (checkpoint,))
    model, ckpt = load_model(checkpoint, kind="fsve")
    cfg = model.cfg
    require_dataset(data, "the traffic is measured on real clips")
    window = WindowSpec(num_blocks=cfg.num_blocks, radius=cfg.block_frames // 2)
    dataset = open_dataset(data, split, window, (cfg.height, cfg.width))
    samples = len(dataset) if samples is None else min(samples, len(dataset))
    t0 = time.perf_counter()
    first = next(iter(clip_batches(dataset, min(samples, batch_size), batch_size)))
    export = to_nir(model, first["spikes"])
    nir_path, host_path = export.save(out)
    export_s = time.perf_counter() - t0
    split_model = SplitModel.load(nir_path, accumulate=ACCUMULATE[accumulate])
    t1 = time.perf_counter()
    total, labels = _measure(model, split_model, export, dataset, samples, batch_size, verify)
    simulate_s = time.perf_counter() - t1
    classes = class_prompt_embeddings(model, ckpt, dataset.class_names)
    shot = None
    if verify and classes is not None:
        emb_m, emb_s = total.model_outputs["embedding"], total.split_outputs["embedding"]
        shot = zero_shot(emb_m, emb_s, classes, labels)
    measured_on = (
        f"measured on  {samples} clips of {data} {split}, T = {cfg.num_blocks} steps"
        f" (export {export_s:.1f} s, split simulation + comparison {simulate_s:.1f} s)"
    )
    text = partition_report(
        checkpoint,
        nir_path,
        host_path,
        export,
        total,
        measured_on,
        accumulate if verify else None,
        shot,
    )
    write_report(paths, text, export, total, layers=verify)
    written = [nir_path, host_path, *(p for k, p in paths.items() if verify or k != "layers")]
    replace_output_set([host_path_for(out), *paths.values()], written)
    return CheckpointExport(
        export, nir_path, host_path, paths, total, samples, text, export_s, simulate_s
    )


def _measure(
    model: Any,
    split_model: SplitModel,
    export: NIRExport,
    dataset: Any,
    samples: int,
    batch_size: int,
    verify: bool,
) -> tuple[SplitComparison, torch.Tensor]:
    """The model and the split model on the clips: comparison summed, labels ``[samples]``."""
    boundary = [t.name for t in export.partition.boundary]
    total: SplitComparison | None = None
    labels = []
    for batch in clip_batches(dataset, samples, batch_size):
        res = compare_split(model, split_model, batch["spikes"], boundary, local=verify)
        total = res if total is None else total + res
        labels.append(batch["label"])
    return total, torch.cat(labels)
