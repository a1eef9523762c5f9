"""The energy report: per-layer and per-model energy tables, the printed table, CSV files, a plot.

:func:`build_report` turns the records a profiling run gathered (:func:`energy.profile.
profile_model`) into count columns (:mod:`energy.conventions`) and prices them with a
:class:`~energy.costs.CostModel`. Every energy is in joules per inference (per sample); spreads
are standard deviations over batches of the per-sample value (per sample with batch size 1).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from energy.conventions import COUNT_COLUMNS, derive
from energy.costs import PJ, CostModel
from energy.counting import LayerRecord
from fsve.io import atomic_path

__all__ = [
    "LAYER_COLUMNS",
    "SUMMARY_COLUMNS",
    "EnergyReport",
    "ModelCounts",
    "build_report",
    "format_energy",
    "format_table",
    "layer_energy_pj",
    "plot_report",
]

LAYER_COLUMNS = (
    "model",
    "layer",
    "type",
    "kind",
    "calls",
    *COUNT_COLUMNS,
    "mem_reads",
    "mem_writes",
    "rate_in",
    "rate_out",
    "compute_j",
    "neuron_j",
    "memory_j",
    "energy_j",
    "energy_j_std",
)

SUMMARY_COLUMNS = (
    "model",
    "network",
    "compute_j",
    "neuron_j",
    "memory_j",
    "total_j",
    "memory_share",
    "saving_vs_ann",
    "compute_saving_vs_ann",
    "compute_j_std",
    "neuron_j_std",
    "memory_j_std",
    "total_j_std",
    "ops",
    *COUNT_COLUMNS,
    "mem_reads",
    "mem_writes",
    "potential_share",
    "firing_rate",
    "samples",
    "costs",
    "convention",
    "norm",
    "baseline",
    "unknown_modules",
)


def layer_energy_pj(
    counts: Mapping[str, float], static: Mapping[str, Any], cost: CostModel
) -> tuple[float, float, float]:
    """``(compute, neuron, memory)`` pJ of one layer's counts.

    compute = (sops + adds)·E_AC + macs·E_MAC + other_ops·E_OP; neuron = updates·E_U +
    spikes·E_spike; memory = (weight + bias reads)·E_weight + potential reads/writes·E_state +
    input reads·E_act(in) + output writes·E_act(out), each access priced by the capacity of its
    memory for size-dependent cost models.
    """
    compute = (
        (counts["sops"] + counts["adds"]) * cost.e_ac_pj
        + counts["macs"] * cost.e_mac_pj
        + counts["other_ops"] * cost.e_op_pj
    )
    neuron = counts["neuron_updates"] * cost.e_neuron_pj + counts["spikes_out"] * cost.e_spike_pj
    w = static.get("weight_words", 1.0)
    s = static.get("state_words", static.get("out_words", 1.0))
    i = static.get("in_words", 1.0)
    o = static.get("out_words", i)
    memory = (
        (counts["weight_reads"] + counts["bias_reads"]) * cost.access_pj("weight", w)
        + (counts["potential_reads"] + counts["potential_writes"]) * cost.access_pj("state", s)
        + counts["input_reads"] * cost.access_pj("act", i)
        + counts["output_writes"] * cost.access_pj("act", o)
    )
    return compute, neuron, memory


@dataclass
class EnergyReport:
    """Result of :func:`~energy.profile.profile_model`: ``summary`` (one row per model: ann,
    snn) and ``layers`` (one row per layer and model), both per inference, plus what was not
    counted. The two tables are built on first use (issue 15: at batch 1 building them costs
    about a third of a forward, more than the counting hooks)."""

    _summary: pd.DataFrame | None
    _layers: pd.DataFrame | None
    costs: CostModel
    convention: str
    norm: str
    baseline: str
    samples: int
    unknown: list[str] = field(default_factory=list)  # "name (Type): why" lines
    checkpoint_kind: str = ""  # "fsve" or "teacher" when profiled from a checkpoint
    _tables: Callable[[], tuple[pd.DataFrame, pd.DataFrame]] | None = field(
        default=None, repr=False, compare=False
    )

    @property
    def summary(self) -> pd.DataFrame:
        if self._summary is None:
            self._build()
        return self._summary

    @summary.setter
    def summary(self, frame: pd.DataFrame) -> None:
        self._summary = frame

    @property
    def layers(self) -> pd.DataFrame:
        if self._layers is None:
            self._build()
        return self._layers

    @layers.setter
    def layers(self, frame: pd.DataFrame) -> None:
        self._layers = frame

    def _build(self) -> None:
        if self._tables is None:
            raise ValueError("this report has no tables")
        summary, layers = self._tables()
        self._tables = None
        if self._summary is None:
            self._summary = summary
        if self._layers is None:
            self._layers = layers

    def row(self, model: str) -> pd.Series | None:
        rows = self.summary[self.summary["model"] == model]
        return None if rows.empty else rows.iloc[0]

    def table(self) -> str:
        """The Table-6-style text: compute, neuron, memory, total, memory share, analysis."""
        return format_table(self)

    def save(self, out_dir: str | os.PathLike) -> dict[str, Path]:
        """Write ``summary.csv``, ``layers.csv``, ``energy.png`` and the printed ``table.txt``
        into ``out_dir``, each atomically (temporary file, then rename)."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {
            "summary": out / "summary.csv",
            "layers": out / "layers.csv",
            "plot": out / "energy.png",
            "table": out / "table.txt",
        }
        _atomic(paths["summary"], lambda f: self.summary.to_csv(f, index=False))
        _atomic(paths["layers"], lambda f: self.layers.to_csv(f, index=False))
        _atomic(paths["plot"], lambda f: plot_report(self, f))
        _atomic(paths["table"], lambda f: Path(f).write_text(self.table() + "\n"))
        return paths


def _atomic(path: Path, write: Callable[[str], None]) -> None:
    """``write(tmp)`` into a temporary file next to ``path``, then rename it over ``path``."""
    with atomic_path(path) as tmp:
        write(str(tmp))


@dataclass
class ModelCounts:
    """What profiling one model gathered: its per-batch layer records."""

    network: str  # the model's class name
    batches: list[tuple[int, dict[str, LayerRecord]]]  # (batch size, records by layer)
    unknown_functional: Mapping[tuple[str, str], int]  # (module, torch function) -> calls


def _layer_rows(
    run: ModelCounts, side: str, label: str, cost: CostModel, convention: str, norm: str
) -> tuple[pd.DataFrame, np.ndarray]:
    """Per-layer mean rows of one model side, and per-batch (compute, neuron, memory) pJ/sample."""
    order: dict[str, LayerRecord] = {}
    for _, recs in run.batches:
        for name, rec in recs.items():
            order.setdefault(name, rec)
    names = list(order)
    n_batches = len(run.batches)
    totals = {name: dict.fromkeys((*COUNT_COLUMNS, "calls"), 0.0) for name in names}
    per_batch = np.zeros((n_batches, len(names), 3))  # pJ per sample
    samples = 0
    for b, (size, recs) in enumerate(run.batches):
        samples += size
        for j, name in enumerate(names):
            rec = recs.get(name)
            if rec is None:
                continue
            snn, ann = derive(rec.kind, rec.prims, rec.static, convention, norm)
            counts = snn if side == "snn" else ann
            for col in COUNT_COLUMNS:
                totals[name][col] += counts[col]
            totals[name]["calls"] += rec.prims.get("calls", 0.0)
            per_batch[b, j] = np.array(layer_energy_pj(counts, rec.static, cost)) / size
    rows = []
    for j, name in enumerate(names):
        rec = order[name]
        mean = {col: v / samples for col, v in totals[name].items()}
        mean["calls"] = totals[name]["calls"] / n_batches
        compute, neuron, memory = layer_energy_pj(mean, rec.static, cost)
        energy_per_batch = per_batch[:, j].sum(axis=1)
        rows.append(
            {
                "model": label,
                "layer": name,
                "type": rec.type,
                "kind": rec.kind,
                **mean,
                "mem_reads": mean["weight_reads"]
                + mean["bias_reads"]
                + mean["potential_reads"]
                + mean["input_reads"],
                "mem_writes": mean["potential_writes"] + mean["output_writes"],
                "rate_in": mean["spikes_in"] / mean["inputs"]
                if rec.kind == "synapse" and mean["inputs"] and mean["macs"] < mean["dense_macs"]
                else float("nan"),  # not defined for real-valued inputs or the ANN
                "rate_out": mean["spikes_out"] / mean["outputs"]
                if rec.kind == "neuron" and mean["outputs"]
                else float("nan"),
                "compute_j": compute * PJ,
                "neuron_j": neuron * PJ,
                "memory_j": memory * PJ,
                "energy_j": (compute + neuron + memory) * PJ,
                "energy_j_std": _std(energy_per_batch) * PJ,
            }
        )
    frame = pd.DataFrame(rows, columns=list(LAYER_COLUMNS))
    return frame, per_batch.sum(axis=1)  # [batches, 3]


def _std(values: np.ndarray) -> float:
    """Sample standard deviation; float noise on identical values (the ANN's) is 0."""
    if len(values) < 2:
        return 0.0
    std = float(np.std(values, ddof=1))
    return 0.0 if std <= 1e-9 * float(np.abs(values).mean()) else std


def _summary_row(
    label: str, network: str, layers: pd.DataFrame, per_batch: np.ndarray
) -> dict[str, Any]:
    row: dict[str, Any] = {"model": label, "network": network}
    cols = [*COUNT_COLUMNS, "mem_reads", "mem_writes", "compute_j", "neuron_j", "memory_j"]
    row.update((col, float(v)) for col, v in layers[cols].sum().items())  # one pass, not 24
    row["total_j"] = row["compute_j"] + row["neuron_j"] + row["memory_j"]
    row["memory_share"] = row["memory_j"] / row["total_j"] if row["total_j"] else float("nan")
    row["ops"] = row["sops"] + row["macs"] + row["adds"] + row["other_ops"]
    for k, col in enumerate(("compute_j_std", "neuron_j_std", "memory_j_std")):
        row[col] = _std(per_batch[:, k]) * PJ
    row["total_j_std"] = _std(per_batch.sum(axis=1)) * PJ
    pot = row["potential_reads"] + row["potential_writes"]
    accesses = row["mem_reads"] + row["mem_writes"]
    row["potential_share"] = pot / accesses if accesses else 0.0
    updates = row["neuron_updates"]
    row["firing_rate"] = row["spikes_out"] / updates if updates else float("nan")
    return row


def build_report(
    main: ModelCounts,
    base_run: ModelCounts | None,
    is_snn: bool,
    cost: CostModel,
    convention: str,
    norm: str,
    baseline: str,
    samples: int,
) -> EnergyReport:
    """The report of a finished profiling run (see :func:`~energy.profile.profile_model`); its
    tables are built on first use."""
    unknown = _unknown_lines(main) + (_unknown_lines(base_run) if base_run else [])
    tables = partial(
        _tables, main, base_run, is_snn, cost, convention, norm, baseline, samples, unknown
    )
    return EnergyReport(
        None, None, cost, convention, norm, baseline, samples, unknown, _tables=tables
    )


def _tables(
    main: ModelCounts,
    base_run: ModelCounts | None,
    is_snn: bool,
    cost: CostModel,
    convention: str,
    norm: str,
    baseline: str,
    samples: int,
    unknown: list[str],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(summary, layers)`` of :func:`build_report`."""
    frames, rows = [], []
    network = main.network
    if is_snn:
        snn_layers, snn_pb = _layer_rows(main, "snn", "snn", cost, convention, norm)
        if base_run is None:
            ann_layers, ann_pb = _layer_rows(main, "ann", "ann", cost, convention, norm)
            ann_network = f"{network} (ANN twin)"
        else:
            ann_layers, ann_pb = _layer_rows(base_run, "ann", "ann", cost, convention, norm)
            ann_network = base_run.network
        frames = [ann_layers, snn_layers]
        rows = [_summary_row("ann", ann_network, ann_layers, ann_pb)]
        rows.append(_summary_row("snn", network, snn_layers, snn_pb))
    else:
        ann_layers, ann_pb = _layer_rows(main, "ann", "ann", cost, convention, norm)
        frames = [ann_layers]
        rows = [_summary_row("ann", network, ann_layers, ann_pb)]
    ann_total = rows[0]["total_j"]
    ann_compute = rows[0]["compute_j"]
    for row in rows:
        row["saving_vs_ann"] = 1.0 - row["total_j"] / ann_total if ann_total else float("nan")
        row["compute_saving_vs_ann"] = (
            1.0 - row["compute_j"] / ann_compute if ann_compute else float("nan")
        )
        row.update(
            samples=samples,
            costs=cost.name,
            convention=convention,
            norm=norm,
            baseline=baseline,
            unknown_modules=len(unknown),
        )
    summary = pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))
    layers = pd.concat(frames, ignore_index=True)
    return summary, layers


def _unknown_lines(run: ModelCounts) -> list[str]:
    lines = []
    called = {}
    for _, recs in run.batches:
        for name, rec in recs.items():
            if rec.kind == "unknown":
                called[name] = rec.type
    for name, type_name in called.items():
        lines.append(f"{name or '<model>'} ({type_name}): no counting rule for this module type")
    for (name, func), n in run.unknown_functional.items():
        lines.append(f"{name or '<model>'}: {func} x{n} runs in a module without a rule")
    return lines


def format_energy(joules: float) -> str:
    """``1.23e-4`` -> ``"123.0 µJ"`` (three significant figures)."""
    if joules == 0 or not math.isfinite(joules):
        return f"{joules:g} J"
    for unit, scale in (("J", 1.0), ("mJ", 1e-3), ("µJ", 1e-6), ("nJ", 1e-9), ("pJ", 1e-12)):
        if abs(joules) >= scale:
            return f"{joules / scale:.4g} {unit}"
    return f"{joules / 1e-15:.4g} fJ"


def _pct(x: float) -> str:
    return "n/a" if not math.isfinite(x) else f"{100 * x:.2f}%"


def format_table(report: EnergyReport) -> str:
    """Paper Table 6 layout, per inference, with a one-line analysis per row."""
    ann, snn = report.row("ann"), report.row("snn")
    cols = [("ANN", ann)] if snn is None else [("ANN", ann), ("SNN", snn)]
    if snn is not None:
        cols[0] = ("ANN (twin)" if report.baseline == "twin" else "ANN (baseline)", ann)
    lines = []
    head = f"{'Key metric':<24}" + "".join(f"{name:>16}" for name, _ in cols) + "  Analysis"
    lines.append(head)
    lines.append("-" * len(head))

    def line(metric: str, values: list[str], analysis: str = "") -> None:
        lines.append(f"{metric:<24}" + "".join(f"{v:>16}" for v in values) + f"  {analysis}")

    def e(col: str) -> list[str]:
        return [format_energy(r[col]) for _, r in cols]

    if snn is None:
        line("Computational energy", e("compute_j"))
        line("Neuron-update energy", e("neuron_j"))
        line("Memory access energy", e("memory_j"))
        line("Total estimated energy", e("total_j"), f"± {format_energy(ann['total_j_std'])}")
        line("Memory energy ratio", [_pct(ann["memory_share"])])
    else:
        cs = snn["compute_saving_vs_ann"]
        line(
            "Computational energy",
            e("compute_j"),
            f"{_pct(cs)} reduction due to sparsity"
            if cs >= 0
            else f"{_pct(-cs)} more compute than the ANN",
        )
        share = snn["neuron_j"] / snn["total_j"] if snn["total_j"] else float("nan")
        line("Neuron-update energy", e("neuron_j"), f"{_pct(share)} of the SNN total")
        ratio = snn["memory_j"] / ann["memory_j"] if ann["memory_j"] else float("inf")
        line(
            "Memory access energy",
            e("memory_j"),
            f"{ratio:.2f}x the ANN's; membrane potentials are "
            f"{_pct(snn['potential_share'])} of SNN accesses",
        )
        sv = snn["saving_vs_ann"]
        line(
            "Total estimated energy",
            e("total_j"),
            f"{_pct(sv)} overall energy saving" if sv >= 0 else f"{_pct(-sv)} more than the ANN",
        )
        bound = "memory-bound" if snn["memory_share"] > 0.5 else "compute-bound"
        line(
            "Memory energy ratio",
            [_pct(r["memory_share"]) for _, r in cols],
            f"the SNN is {bound}",
        )
        lines.append("")
        lines.append(
            f"SNN: {snn['sops']:.4g} SOPs + {snn['macs']:.4g} MACs + {snn['adds']:.4g} adds, "
            f"{snn['neuron_updates']:.4g} neuron updates, firing rate {_pct(snn['firing_rate'])}; "
            f"ANN: {ann['macs']:.4g} MACs. Total ± std: "
            f"SNN {format_energy(snn['total_j_std'])}, ANN {format_energy(ann['total_j_std'])}."
        )
    c = report.costs
    lines.append(
        f"Per inference over {report.samples} samples; costs {c.name} ({c.source}); "
        f"convention {report.convention}; norm {report.norm}; baseline {report.baseline}."
    )
    if c.note:
        lines.append(f"Note: {c.note}.")
    if report.unknown:
        lines.append(f"NOT COUNTED ({len(report.unknown)}):")
        lines.extend(f"  - {u}" for u in report.unknown)
    else:
        lines.append("Not counted: nothing (every executed module has a counting rule).")
    return "\n".join(lines)


def plot_report(report: EnergyReport, path: str) -> None:
    """Stacked compute/neuron/memory per model, and per-layer energy of the main model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    parts = (("compute_j", "compute"), ("neuron_j", "neuron update"), ("memory_j", "memory"))
    colors = ("tab:blue", "tab:orange", "tab:green")
    s = report.summary
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 5.5), gridspec_kw={"width_ratios": [1, 2.4]})
    bottom = np.zeros(len(s))
    for (col, label), color in zip(parts, colors, strict=True):
        vals = s[col].to_numpy() * 1e6
        ax1.bar(s["model"], vals, bottom=bottom, label=label, color=color)
        bottom += vals
    ax1.set_ylabel("energy per inference (µJ)")
    ax1.set_title(f"{report.costs.name}, {report.convention}")
    ax1.legend()
    main = "snn" if (s["model"] == "snn").any() else "ann"
    layers = report.layers[report.layers["model"] == main]
    top = layers.nlargest(min(24, len(layers)), "energy_j").sort_index()
    y = np.arange(len(top))
    left = np.zeros(len(top))
    for (col, label), color in zip(parts, colors, strict=True):
        vals = top[col].to_numpy() * 1e6
        ax2.barh(y, vals, left=left, color=color, label=label)
        left += vals
    ax2.set_yticks(y, [str(n)[-40:] for n in top["layer"]], fontsize=7)
    ax2.invert_yaxis()
    ax2.set_xlabel("energy per inference (µJ)")
    ax2.set_title(f"largest layers ({main})")
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=110)
    plt.close(fig)
