"""The break-even firing rate: the rate at which the SNN costs as much energy as its ANN (issue 15).

The SNN's energy is split into a part that does not depend on spike activity (neuron updates,
per-step membrane traffic, bias adds, MACs on real input, output writes of synaptic layers) and
an event-driven part proportional to it (SOPs, their weight and membrane accesses, input-spike
reads, spike writes, per-spike counters). Scaling every spike count of the network, input spikes
included, by ``r / r_measured`` gives ``E_snn(r) = fixed + event · r / r_measured``; the break-even
rate solves ``E_snn(r) = E_ann``. ``0`` means never (the SNN costs at least the ANN's energy even
without spikes), ``inf`` always (nothing event-driven, and the fixed part is cheaper).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from energy.conventions import CONVENTIONS
from energy.costs import CostModel
from energy.pricing import firing_rate_of, total_energy_j

if TYPE_CHECKING:
    from energy.report import EnergyReport, ModelCounts

__all__ = [
    "BreakEven",
    "break_even_line",
    "break_even_of",
    "format_rate",
    "plot_energy_vs_rate",
    "side_by_side",
    "solve_break_even",
]


@dataclass(frozen=True)
class BreakEven:
    """Energy of the SNN against the firing rate, per inference, in joules."""

    measured_rate: float  # firing rate of the profiled run (spikes per neuron and step)
    fixed_j: float  # SNN energy that does not scale with spikes
    event_j: float  # SNN energy proportional to spikes, at the measured rate
    ann_j: float  # the ANN baseline's energy
    rate: float  # break-even firing rate; 0: never, inf: always, nan: undefined

    def snn_j(self, rate: float) -> float:
        """``E_snn(rate) = fixed + event · rate / measured_rate``."""
        return self.fixed_j + self.event_j * rate / self.measured_rate

    @property
    def verdict(self) -> str:
        """``rate``, ``never``, ``always`` or ``undefined``."""
        if math.isnan(self.rate):
            return "undefined"
        if self.rate == 0:
            return "never"
        return "always" if math.isinf(self.rate) else "rate"


def solve_break_even(
    fixed_j: float, event_j: float, ann_j: float, measured_rate: float
) -> BreakEven:
    """Solve ``fixed + event · r / measured_rate = ann`` for ``r`` (see the module docstring)."""
    for name, v in (("fixed_j", fixed_j), ("event_j", event_j), ("ann_j", ann_j)):
        if not math.isfinite(v) or v < -1e-9 * max(abs(fixed_j), abs(ann_j), 1e-30):
            raise ValueError(f"break-even: {name} must be finite and >= 0, got {v!r}")
    event_j = max(event_j, 0.0)
    if event_j <= 1e-12 * max(fixed_j, ann_j):  # nothing scales with spikes
        rate = math.inf if fixed_j < ann_j else 0.0
    elif fixed_j >= ann_j:
        rate = 0.0  # more than the ANN even at r -> 0
    elif measured_rate > 0 and math.isfinite(measured_rate):
        rate = measured_rate * (ann_j - fixed_j) / event_j
    else:
        rate = math.nan  # events (input spikes) but no neuron spikes to express a rate in
    return BreakEven(measured_rate, fixed_j, event_j, ann_j, rate)


def break_even_of(
    snn_run: ModelCounts,
    cost: CostModel,
    convention: str,
    norm: str,
    snn_row: Mapping[str, Any],
    ann_j: float,
) -> BreakEven:
    """Break-even rate of the SNN row (``total_j``, ``firing_rate``) against ``ann_j``; one more
    pricing pass, with every spike count at 0, gives the fixed part."""
    fixed = total_energy_j(snn_run, "snn", cost, convention, norm, scale=0.0)
    measured = snn_row["total_j"]
    return solve_break_even(fixed, measured - fixed, ann_j, snn_row["firing_rate"])


def side_by_side(
    main: ModelCounts, base: ModelCounts | None, is_snn: bool, cost: CostModel, norm: str
) -> pd.DataFrame:
    """ANN and SNN totals, saving and break-even rate of the same run under every convention."""
    rows = []
    for convention in CONVENTIONS:
        ann = total_energy_j(base or main, "ann", cost, convention, norm)
        row = {"convention": convention, "ann_j": ann, "snn_j": float("nan")}
        row.update(saving_vs_ann=float("nan"), break_even_rate=float("nan"))
        if is_snn:
            snn_row = {
                "total_j": total_energy_j(main, "snn", cost, convention, norm),
                "firing_rate": firing_rate_of(main),
            }
            be = break_even_of(main, cost, convention, norm, snn_row, ann)
            snn = be.fixed_j + be.event_j
            row.update(snn_j=snn, break_even_rate=be.rate)
            row["saving_vs_ann"] = 1.0 - snn / ann if ann else float("nan")
        rows.append(row)
    return pd.DataFrame(rows)


def _pct(x: float) -> str:
    return f"{100 * x:.3g}%"


def format_rate(rate: float) -> str:
    """A break-even rate as printed: ``"68.1%"``, ``"never"`` (0), ``"always"`` (inf), ``"n/a"``."""
    if math.isnan(rate):
        return "n/a"
    if rate == 0:
        return "never"
    return "always" if math.isinf(rate) else _pct(rate)


def break_even_line(be: BreakEven) -> tuple[str, str]:
    """``(value, analysis)`` of the table's "Break-even firing rate" row."""
    value = format_rate(be.rate)
    if be.verdict == "never":
        return value, "the SNN costs more than the ANN even with no spikes"
    if be.verdict == "always":
        return value, "no energy scales with spikes and the rest is below the ANN's"
    if be.verdict == "undefined":
        return value, "no neuron spikes to express a rate in"
    side = "below" if be.measured_rate < be.rate else "above"
    text = f"SNN cheaper below it; measured {_pct(be.measured_rate)} is {side}"
    if be.rate > 1:
        text += " (above 100%: cheaper at any binary firing rate)"
    return value, text


def plot_energy_vs_rate(report: EnergyReport, path: str) -> None:
    """SNN and ANN energy per inference against the firing rate, measured and break-even marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    be = report.break_even
    if be is None:
        raise ValueError("energy_vs_rate needs an SNN report (no break-even was computed)")
    r_m = be.measured_rate if be.measured_rate > 0 else 0.0
    top = max(2 * r_m, 0.05)
    if be.verdict == "rate":  # show the crossing up to 2x (200%)
        top = max(top, min(1.15 * be.rate, max(2.0, 2 * r_m)))
    r = np.linspace(0.0, top, 201)
    snn = be.fixed_j + be.event_j * r / r_m if r_m > 0 else np.full_like(r, be.fixed_j)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.plot(100 * r, snn * 1e6, color="tab:red", label="SNN")
    ax.axhline(be.ann_j * 1e6, color="tab:blue", label="ANN")
    if top > 1:
        ax.axvspan(100, 100 * top, color="0.9", label="> 100%: beyond binary spikes")
    if r_m > 0:
        ax.plot([100 * r_m], [be.snn_j(r_m) * 1e6], "ko", label=f"measured {_pct(r_m)}")
    if be.verdict == "rate" and be.rate <= top:
        ax.plot([100 * be.rate], [be.ann_j * 1e6], "D", color="tab:green", label="break-even")
        ax.axvline(100 * be.rate, color="tab:green", ls="--", lw=0.8)
    value, _ = break_even_line(be)
    ax.set_title(f"break-even {value}; {report.costs.name}, {report.convention}", fontsize=10)
    ax.set_xlabel("firing rate (%), every spike count scaled alike")
    ax.set_ylabel("energy per inference (µJ)")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=110)
    plt.close(fig)
