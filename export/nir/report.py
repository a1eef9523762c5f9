"""The partition report: graph summary, module / boundary / layer tables, their CSV files."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import nir
import numpy as np

from export.graph import NEURON_TYPES
from export.nir.builder import WEIGHTED_TYPES
from export.nir.exporter import NIRExport
from export.nir.neurons import THRESHOLD_CONVENTION
from export.nir.partition import Partition
from export.nir.verify import DEFAULT_TEMPLATE, LayerComparison, SplitComparison, ZeroShot
from fsve.cli import text_table
from fsve.io import atomic_write_bytes, csv_text

TABLE_INDENT = "  "  # tables of the report are indented under their titles


def graph_summary(graph: nir.NIRGraph) -> dict[str, Any]:
    """Node counts per type, neurons per neuron type, stored weights."""
    types: dict[str, int] = {}
    neurons: dict[str, int] = {}
    weights = 0
    for node in graph.nodes.values():
        kind = type(node).__name__
        types[kind] = types.get(kind, 0) + 1
        if isinstance(node, NEURON_TYPES):
            size = int(np.prod(np.asarray(node.output_type["output"])))
            neurons[kind] = neurons.get(kind, 0) + size
        if isinstance(node, WEIGHTED_TYPES):
            weights += int(np.asarray(node.weight).size)
    return {
        "nodes": len(graph.nodes),
        "edges": len(graph.edges),
        "types": types,
        "neurons": neurons,
        "weights": weights,
    }


def module_rows(partition: Partition) -> list[dict[str, Any]]:
    """One row per module: where it runs and the NIR nodes it became."""
    return [
        {
            "module": m.module,
            "type": m.type,
            "placement": m.placement,
            "nir_nodes": " ".join(m.nodes),
            "note": m.note,
        }
        for m in partition.modules
    ]


def boundary_rows(
    partition: Partition, traffic: Mapping[str, tuple[int, int, int]] | None = None
) -> list[dict[str, Any]]:
    """One row per boundary tensor, with its measured spike traffic where ``traffic`` has it."""
    rows = []
    for t in partition.boundary:
        row = {
            "tensor": t.name,
            "direction": t.direction,
            "shape": "x".join(map(str, t.shape)),
            "neurons": t.neurons,
            "source": t.source,
            "consumer": t.consumer,
        }
        if traffic and t.name in traffic:
            spikes, steps, peak = traffic[t.name]
            mean = spikes / max(steps, 1)
            row.update(
                {
                    "spikes_per_step": round(mean, 2),
                    "max_spikes_per_step": peak,
                    "rate": round(mean / t.neurons, 5),
                }
            )
        rows.append(row)
    return rows


def layer_rows(layers: Sequence[LayerComparison]) -> list[dict[str, Any]]:
    """One row per neuron node: spikes of the model and the split model, mismatches."""
    return [
        {
            "node": r.node,
            "neurons": r.neurons,
            "model_spikes": r.model_spikes,
            "sim_spikes": r.sim_spikes,
            "mismatches": r.mismatches,
            "local_mismatches": r.local_mismatches,
            "max_margin": "" if math.isnan(r.max_margin) else f"{r.max_margin:.1e}",
        }
        for r in layers
    ]


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    """``rows`` as a CSV file, written atomically."""
    atomic_write_bytes(path, csv_text(rows).encode())


def report_paths(report: str | os.PathLike) -> dict[str, Path]:
    """The files of a report: the text and its CSV tables beside it."""
    p = Path(report)
    stem = p.with_suffix("") if p.suffix else p
    return {
        "text": p,
        "modules": stem.with_name(stem.name + "_modules.csv"),
        "boundary": stem.with_name(stem.name + "_boundary.csv"),
        "layers": stem.with_name(stem.name + "_layers.csv"),
    }


def partition_report(
    checkpoint: Path,
    nir_path: Path,
    host_path: Path,
    export: NIRExport,
    comparison: SplitComparison,
    measured_on: str,
    accumulate: str | None = None,
    zero_shot: ZeroShot | None = None,
) -> str:
    """The text of the partition report (the ``measured on`` line given; no equivalence
    section when ``accumulate``, the dtype of the synaptic sums compared, is ``None``).
    """
    summary = graph_summary(export.graph)
    mods = module_rows(export.partition)
    bnd = boundary_rows(export.partition, comparison.traffic)
    lines = [
        f"NIR export of {checkpoint}",
        f"graph        {nir_path}  ({summary['nodes']} nodes, {summary['edges']} edges:"
        f" {', '.join(f'{k} {v}' for k, v in sorted(summary['types'].items()))})",
        f"host program {host_path}  (ops: {', '.join(export.partition.host_ops)})",
        "NIR subgraphs 1: one graph; the host reads its Output ports and feeds its Input ports"
        " within each step",
        f"dt           {export.dt_s:g} s; LIF: tau = tau_steps*dt, r = 1 (decay_input) or"
        " tau_steps, v_leak = v_reset = V_r",
        f"thresholds   {THRESHOLD_CONVENTION}",
        f"neurons      {sum(summary['neurons'].values())} on cores ("
        + ", ".join(f"{k} {v}" for k, v in summary["neurons"].items())
        + f"); weights stored {summary['weights']}",
        measured_on,
        "",
        "Modules",
        text_table(mods, indent=TABLE_INDENT),
        "Boundary tensors (spikes per sample and step)",
        text_table(bnd, indent=TABLE_INDENT),
    ]
    if accumulate is not None:
        lines += _equivalence_lines(comparison, accumulate, zero_shot)
    return "\n".join(lines) + "\n"


def _equivalence_lines(
    comparison: SplitComparison, accumulate: str, zero_shot: ZeroShot | None
) -> list[str]:
    layers = comparison.layers
    mism = sum(r.mismatches for r in layers)
    spikes = sum(r.model_spikes for r in layers)
    emb_m, emb_s = comparison.model_outputs["embedding"], comparison.split_outputs["embedding"]
    lines = [
        "Equivalence: model vs split model (NIR graph in export.sim with float32 neurons and"
        f" {accumulate} synaptic sums, + host program). mismatches: free-running;"
        " local: each layer fed the model's own upstream spikes; max_margin: largest"
        " |H - V_th|/|V_th| at a local mismatch",
        text_table(layer_rows(layers), indent=TABLE_INDENT),
        f"spikes {spikes}, mismatches {mism} ({mism / max(spikes, 1):.2e} of all spikes),"
        f" local mismatches {sum(r.local_mismatches for r in layers)}",
        f"embedding max |model - split| = {float((emb_m - emb_s).abs().max()):.3g}",
    ]
    if zero_shot is not None:
        lines.append(
            f"zero-shot classes ('{DEFAULT_TEMPLATE}'): identical for"
            f" {zero_shot.identical}/{zero_shot.clips} clips; top-1 model"
            f" {100 * zero_shot.top1_model:.1f}%, split {100 * zero_shot.top1_split:.1f}%"
        )
    return lines


def write_report(
    report: Mapping[str, Path],
    text: str,
    export: NIRExport,
    comparison: SplitComparison,
    layers: bool = True,
) -> None:
    """Write the report ``text`` and its CSV tables (paths: :func:`report_paths`)."""
    atomic_write_bytes(report["text"], text.encode())
    write_csv(report["modules"], module_rows(export.partition))
    write_csv(report["boundary"], boundary_rows(export.partition, comparison.traffic))
    if layers:
        write_csv(report["layers"], layer_rows(comparison.layers))
