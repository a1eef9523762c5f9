"""The energy report: per-layer and per-model energy tables, the printed table, CSV files, a plot.

:func:`build_report` turns the records a profiling run gathered (:func:`energy.profile.
profile_model`) into count columns (:mod:`energy.conventions`) and prices them with a
:class:`~energy.costs.CostModel`. Every energy is in joules per inference (per sample); spreads
are standard deviations over batches of the per-sample value (per sample with batch size 1).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from energy.breakeven import (
    BreakEven,
    break_even_line,
    break_even_of,
    format_rate,
    plot_energy_vs_rate,
    side_by_side,
)
from energy.conventions import COUNT_COLUMNS, derive, prices_memory, prices_neurons
from energy.costs import PJ, CostModel
from energy.counting import LayerRecord
from energy.pricing import layer_energy_pj
from energy.provenance import footer_lines, provenance
from fsve.io import atomic_path, replace_output_set

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

OPTIONAL_FILES = ("energy_vs_rate.png", "conventions.csv")  # written by some runs only

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
    "break_even_rate",
    "samples",
    "costs",
    "convention",
    "norm",
    "baseline",
    "unknown_modules",
    "unknown_spiking",
)


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
    unknown_spiking: list[str] = field(default_factory=list)  # spiking modules not counted
    checkpoint_kind: str = ""  # "fsve" or "teacher" when profiled from a checkpoint
    time_steps: int | None = None  # T per sample if known (sizes memories); counts cover all
    side_by_side: pd.DataFrame | None = None  # every convention's totals (with ``sdt``)
    _break_even: BreakEven | None = field(default=None, repr=False, compare=False)
    _tables: Callable[[], tuple[pd.DataFrame, pd.DataFrame, BreakEven | None]] | None = field(
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

    @property
    def break_even(self) -> BreakEven | None:
        """The SNN row's break-even firing rate against the ANN row (None for an ANN)."""
        if self._tables is not None:
            self._build()
        return self._break_even

    @break_even.setter
    def break_even(self, value: BreakEven | None) -> None:
        self._break_even = value

    def _build(self) -> None:
        if self._tables is None:
            raise ValueError("this report has no tables")
        summary, layers, break_even = self._tables()
        self._tables = None
        if self._summary is None:
            self._summary = summary
        if self._layers is None:
            self._layers = layers
        if self._break_even is None:
            self._break_even = break_even

    def row(self, model: str) -> pd.Series | None:
        rows = self.summary[self.summary["model"] == model]
        return None if rows.empty else rows.iloc[0]

    def table(self) -> str:
        """The Table-6-style text: compute, neuron, memory, total, memory share, analysis."""
        return format_table(self)

    def provenance(self) -> dict[str, Any]:
        """How the numbers were made (``provenance.json``; see :mod:`energy.provenance`)."""
        return provenance(self)

    def save(self, out_dir: str | os.PathLike) -> dict[str, Path]:
        """Write ``summary.csv``, ``layers.csv``, ``energy.png``, the printed ``table.txt`` and
        ``provenance.json`` into ``out_dir``, with an SNN ``energy_vs_rate.png`` (break-even) and
        with ``sdt`` ``conventions.csv`` (side by side), each atomically; an earlier save's
        optional file that this one does not write is removed (issue 16, case 7)."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {
            "summary": out / "summary.csv",
            "layers": out / "layers.csv",
            "plot": out / "energy.png",
            "table": out / "table.txt",
            "provenance": out / "provenance.json",
        }
        _atomic(paths["summary"], lambda f: self.summary.to_csv(f, index=False))
        _atomic(paths["layers"], lambda f: self.layers.to_csv(f, index=False))
        _atomic(paths["plot"], lambda f: plot_report(self, f))
        _atomic(paths["table"], lambda f: Path(f).write_text(self.table() + "\n"))
        text = json.dumps(self.provenance(), indent=2) + "\n"
        _atomic(paths["provenance"], lambda f: Path(f).write_text(text))
        if self.break_even is not None:
            paths["rate_plot"] = out / "energy_vs_rate.png"
            _atomic(paths["rate_plot"], lambda f: plot_energy_vs_rate(self, f))
        if self.side_by_side is not None:
            paths["conventions"] = out / "conventions.csv"
            _atomic(paths["conventions"], lambda f: self.side_by_side.to_csv(f, index=False))
        replace_output_set(
            [out / name for name in OPTIONAL_FILES], paths.values()
        )  # an earlier run's optional files go
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
    priced = prices_neurons(convention)
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
            per_batch[b, j] = np.array(layer_energy_pj(counts, rec.static, cost, priced)) / size
    rows = []
    for j, name in enumerate(names):
        rec = order[name]
        mean = {col: v / samples for col, v in totals[name].items()}
        mean["calls"] = totals[name]["calls"] / n_batches
        compute, neuron, memory = layer_energy_pj(mean, rec.static, cost, priced)
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
    *,
    time_steps: int | None = None,
) -> EnergyReport:
    """The report of a finished profiling run (see :func:`~energy.profile.profile_model`); its
    tables are built on first use.

    An SNN report carries its break-even rate (``break_even``, column ``break_even_rate``); an
    ``sdt`` report also the totals under every convention (``side_by_side``)."""
    unknown = _unknown_lines(main) + (_unknown_lines(base_run) if base_run else [])
    spiking = [u for u in unknown if _SPIKING_MARK in u]
    tables = partial(
        _tables, main, base_run, is_snn, cost, convention, norm, baseline, samples, unknown, spiking
    )
    report = EnergyReport(
        None, None, cost, convention, norm, baseline, samples, unknown, spiking, _tables=tables
    )
    report.time_steps = None if time_steps is None else int(time_steps)
    if convention == "sdt":
        report.side_by_side = side_by_side(main, base_run, is_snn, cost, norm)
    return report


_SPIKING_MARK = "SPIKING, its neurons and spikes NOT counted: no counting rule"


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
    spiking: list[str],
) -> tuple[pd.DataFrame, pd.DataFrame, BreakEven | None]:
    """``(summary, layers, break_even)`` of :func:`build_report`."""
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
    break_even = None
    if is_snn:
        break_even = break_even_of(main, cost, convention, norm, rows[1], rows[0]["total_j"])
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
            unknown_spiking=len(spiking),
        )
        is_main = row["model"] == "snn" and break_even is not None
        row["break_even_rate"] = break_even.rate if is_main else float("nan")
    summary = pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))
    layers = pd.concat(frames, ignore_index=True)
    return summary, layers, break_even


def _unknown_lines(run: ModelCounts) -> list[str]:
    lines = []
    called = {}
    for _, recs in run.batches:
        for name, rec in recs.items():
            if rec.kind in ("unknown", "unknown_spiking"):
                called[name] = (rec.type, rec.kind)
    for name, (type_name, kind) in called.items():
        why = _SPIKING_MARK if kind == "unknown_spiking" else "no counting rule"
        lines.append(f"{name or '<model>'} ({type_name}): {why} for this module type")
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
    if report.unknown_spiking:
        lines.append(
            f"WARNING: {len(report.unknown_spiking)} spiking module(s) without a counting rule "
            "ran; their neuron updates and spikes are missing below (see NOT COUNTED)."
        )
    head = f"{'Key metric':<24}" + "".join(f"{name:>16}" for name, _ in cols) + "  Analysis"
    lines.append(head)
    lines.append("-" * len(head))
    for metric, col, analysis in _table_rows(report, ann, snn):
        if not col:  # the break-even row: (value, analysis) of the SNN
            values, analysis = ["", analysis[0]], analysis[1]
        elif col == "memory_share":
            values = [_pct(r[col]) for _, r in cols]
        else:
            values = [format_energy(r[col]) for _, r in cols]
        lines.append(f"{metric:<24}" + "".join(f"{v:>16}" for v in values) + f"  {analysis}")
    if snn is not None:
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
    lines.extend(footer_lines(report))
    lines.extend(_side_by_side_lines(report))
    if c.note:
        lines.append(f"Note: {c.note}.")
    if report.unknown:
        lines.append(f"NOT COUNTED ({len(report.unknown)}):")
        lines.extend(f"  - {u}" for u in report.unknown)
    else:
        lines.append("Not counted: nothing (every executed module has a counting rule).")
    return "\n".join(lines)


def _table_rows(report: EnergyReport, ann: pd.Series, snn: pd.Series | None) -> list[tuple]:
    """``(metric, summary column, analysis)`` per table row; column "" = break-even row."""
    if snn is None:
        return [
            ("Computational energy", "compute_j", ""),
            ("Neuron-update energy", "neuron_j", ""),
            ("Memory access energy", "memory_j", ""),
            ("Total estimated energy", "total_j", f"± {format_energy(ann['total_j_std'])}"),
            ("Memory energy ratio", "memory_share", ""),
        ]
    cs, sv = snn["compute_saving_vs_ann"], snn["saving_vs_ann"]
    share = snn["neuron_j"] / snn["total_j"] if snn["total_j"] else float("nan")
    ratio = snn["memory_j"] / ann["memory_j"] if ann["memory_j"] else float("inf")
    neuron = f"{_pct(share)} of the SNN total"
    memory = (
        f"{ratio:.2f}x the ANN's; membrane potentials are "
        f"{_pct(snn['potential_share'])} of SNN accesses"
    )
    bound = "the SNN is " + ("memory-bound" if snn["memory_share"] > 0.5 else "compute-bound")
    if not prices_neurons(report.convention):
        neuron = f"not counted under {report.convention}"
    if not prices_memory(report.convention):
        memory = bound = f"not counted under {report.convention}"
    rows = [
        (
            "Computational energy",
            "compute_j",
            f"{_pct(cs)} reduction due to sparsity"
            if cs >= 0
            else f"{_pct(-cs)} more compute than the ANN",
        ),
        ("Neuron-update energy", "neuron_j", neuron),
        ("Memory access energy", "memory_j", memory),
        (
            "Total estimated energy",
            "total_j",
            f"{_pct(sv)} overall energy saving" if sv >= 0 else f"{_pct(-sv)} more than the ANN",
        ),
        ("Memory energy ratio", "memory_share", bound),
    ]
    if report.break_even is not None:
        rows.append(("Break-even firing rate", "", break_even_line(report.break_even)))
    return rows


def _side_by_side_lines(report: EnergyReport) -> list[str]:
    """The same run under every convention (``sdt`` reports), to set beside a published one."""
    if report.side_by_side is None:
        return []
    lines = ["Side by side (same counts; sdt = published SDT accounting, the others add memory):"]
    for r in report.side_by_side.itertuples():
        be = format_rate(r.break_even_rate)
        ann, snn = format_energy(r.ann_j), format_energy(r.snn_j)
        if math.isnan(r.snn_j):  # an ANN alone
            lines.append(f"  {r.convention:<8} ANN {ann:>10}")
            continue
        lines.append(
            f"  {r.convention:<8} ANN {ann:>10}  SNN {snn:>10}  saving "
            f"{_pct(r.saving_vs_ann):>8}  break-even rate {be}"
        )
    return lines


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
