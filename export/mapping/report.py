"""The mapping report: per-layer rows (``mapping.csv``) and the readable text (``mapping.txt``)."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from export.mapping.result import LayerMapping, MappingResult
from export.mapping.targets import Target
from fsve.cli import text_table
from fsve.io import atomic_write_text, csv_text

__all__ = ["boundary_rows", "layer_rows", "report_text", "write_report"]


def _fmt(x: float, digits: int = 1) -> str:
    return "" if isinstance(x, float) and math.isnan(x) else f"{x:.{digits}f}"


def _encoding(m: LayerMapping, target: Target) -> str:
    kinds = []
    for p in m.paths:
        kind = p.encoding
        if kind == "kernel" and not target.shared_conv_weights:
            kind = "per-synapse"
        kinds.append(kind)
    return "+".join(sorted(set(kinds)))


def layer_rows(result: MappingResult) -> list[dict[str, Any]]:
    """One row per layer (the CSV), then a ``TOTAL`` row."""
    t = result.target
    rows = []
    for m in result.layers:
        rows.append(
            {
                "layer": m.name,
                "type": m.type,
                "shape": "x".join(map(str, m.shape)),
                "neurons": m.neurons,
                "tile": "x".join(map(str, m.tile)),
                "cores": m.cores,
                "chips": m.chips(t),
                "max_core_neurons": m.max_core_neurons,
                "utilisation": round(m.utilisation(t), 4),
                "synapses": m.synapses,
                "weights": m.weights,
                "encoding": _encoding(m, t),
                "memory_bytes": m.memory_bytes,
                "max_core_memory_bytes": m.max_core_memory_bytes,
                "max_fan_in": m.max_fan_in,
                "max_input_axons": m.max_input_axons,
                "max_output_axons": m.max_output_axons,
                "binding_limit": m.binding,
                "sources": " ".join(dict.fromkeys(p.source for p in m.paths)),
                "to_host": int(m.to_host),
                "spikes_per_step": _fmt(m.spikes_per_step, 2),
                "messages_out_per_step": _fmt(m.messages_out_per_step, 2),
                "messages_out_bound": m.messages_out_bound,
                "messages_in_per_step": _fmt(m.messages_in_per_step, 2),
                "messages_in_bound": m.messages_in_bound,
                "cores_from": m.first_core,
                "chip_messages_out_per_step": _fmt(m.chip_messages_out_per_step, 2),
                "chip_messages_out_bound": m.chip_messages_out_bound,
            }
        )
    total = {k: "" for k in rows[0]}
    measured = [m for m in result.layers if not math.isnan(m.spikes_per_step)]
    all_measured = len(measured) == len(result.layers)

    def tsum(attr: str) -> str:
        return _fmt(sum(getattr(m, attr) for m in result.layers), 2) if all_measured else ""

    total.update(
        {
            "layer": "TOTAL",
            "neurons": result.neurons,
            "cores": result.cores,
            "chips": result.chips,
            "utilisation": round(result.neurons / (result.cores * t.neurons_per_core), 4),
            "synapses": sum(m.synapses for m in result.layers),
            "weights": sum(m.weights for m in result.layers),
            "memory_bytes": sum(m.memory_bytes for m in result.layers),
            "spikes_per_step": tsum("spikes_per_step"),
            "messages_out_per_step": tsum("messages_out_per_step"),
            "messages_out_bound": sum(m.messages_out_bound for m in result.layers),
            "messages_in_per_step": tsum("messages_in_per_step"),
            "messages_in_bound": sum(m.messages_in_bound for m in result.layers),
            "chip_messages_out_per_step": tsum("chip_messages_out_per_step"),
            "chip_messages_out_bound": sum(m.chip_messages_out_bound for m in result.layers),
        }
    )
    return [*rows, total]


def boundary_rows(result: MappingResult) -> list[dict[str, Any]]:
    """One row per graph Input feeding cores and per Output port the host reads."""
    return [
        {
            "port": b.name,
            "direction": "into cores" if b.direction == "in" else "to host",
            "neurons": b.neurons,
            "layers": " ".join(b.layers),
            "messages_per_step": _fmt(b.messages_per_step, 2),
            "messages_bound": b.messages_bound,
        }
        for b in result.boundary
    ]


_TEXT_COLUMNS = {  # text table column -> CSV column
    "layer": "layer",
    "type": "type",
    "shape": "shape",
    "neurons": "neurons",
    "tile": "tile",
    "cores": "cores",
    "util%": "utilisation",
    "synapses": "synapses",
    "weights": "weights",
    "encoding": "encoding",
    "mem_KiB": "memory_bytes",
    "core_KiB": "max_core_memory_bytes",
    "in_axons": "max_input_axons",
    "out_axons": "max_output_axons",
    "limit": "binding_limit",
    "spikes/step": "spikes_per_step",
    "msgs/step": "messages_out_per_step",
    "msgs_max": "messages_out_bound",
}


def report_text(result: MappingResult, header: Sequence[str] = ()) -> str:
    """The readable report: target and assumptions, totals, per-layer and boundary tables."""
    t = result.target
    conv = "shared (kernel once per core)" if t.shared_conv_weights else "per synapse"
    rows = layer_rows(result)
    text_rows = []
    for r in rows:
        row = {k: r[v] for k, v in _TEXT_COLUMNS.items()}
        if r["utilisation"] != "":
            row["util%"] = f"{100 * float(r['utilisation']):.1f}"
        for k in ("mem_KiB", "core_KiB"):
            row[k] = f"{r[_TEXT_COLUMNS[k]] / 1024:.1f}" if r[_TEXT_COLUMNS[k]] != "" else ""
        text_rows.append(row)
    total = rows[-1]
    lines = [*header]
    lines += [
        f"target       {t.name}: {t.description}",
        f"             {t.neurons_per_core} neurons/core, {t.cores_per_chip} cores/chip,"
        f" {t.synapse_memory_bytes_per_core} B synapse memory/core, {t.max_input_axons_per_core}"
        f" input / {t.max_output_axons_per_core} output axons/core, {t.weight_bits}-bit weights,"
        f" conv weights {conv}",
    ]
    lines += [f"assumption   {a}" for a in t.assumptions]
    lines += [
        f"totals       {result.cores} cores on {result.chips} chip(s); {result.neurons} neurons"
        f" ({100 * float(total['utilisation']):.1f}% of the cores' neuron slots);"
        f" {total['synapses']} synapses, {total['weights']} weights stored"
        " (kernel entries; a conv feeding two layers counts twice),"
        f" {total['memory_bytes'] / 1024:.1f} KiB synapse memory",
        "traffic      spike messages per sample and step between cores (each spike: one message"
        " per destination core, + one to the host for ports): "
        + (
            f"measured {total['messages_out_per_step']} (bound {total['messages_out_bound']});"
            f" spikes emitted {total['spikes_per_step']}/step"
            if result.measured
            else f"not measured; upper bound {total['messages_out_bound']} (every neuron spikes"
            " every step)"
        ),
        "between chips "
        + (
            "none (one chip)"
            if result.chips == 1
            else f"{total['chip_messages_out_per_step'] or 'not measured'} messages per step"
            f" (bound {total['chip_messages_out_bound']}); cores filled onto chips layer by"
            " layer in graph order"
        ),
        "placement    one layer per core set (no core shared by two layers); tile = neurons per"
        " core along (channels, rows, cols), the fewest cores that meet every per-core limit;"
        " limit = the per-core resource closest to full",
        "",
        "Layers (synapses: real connections from kernel, stride, padding; encoding: kernel ="
        " shared conv/pool weights, per-synapse/dense = one weight per connection)",
        text_table(text_rows, align="auto", indent="  "),
        "Boundary (spikes entering from the sensor/host, leaving to host ports)",
        text_table(boundary_rows(result), align="auto", indent="  "),
    ]
    lines += [f"note         {n}" for n in result.notes]
    return "\n".join(lines).rstrip() + "\n"


def write_report(
    result: MappingResult, out_dir: str | os.PathLike, header: Sequence[str] = ()
) -> dict[str, Path]:
    """Write ``mapping.csv`` (per layer + TOTAL) and ``mapping.txt`` atomically into ``out_dir``."""
    out = Path(out_dir)
    paths = {"csv": out / "mapping.csv", "text": out / "mapping.txt"}
    text = report_text(result, header)  # compute everything before writing anything
    table = csv_text(layer_rows(result))
    atomic_write_text(paths["csv"], table)
    atomic_write_text(paths["text"], text)
    return paths
