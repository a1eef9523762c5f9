"""Pricing of counted runs: one layer's energy, and a whole model side's total per sample.

:func:`layer_energy_pj` prices one layer's count columns (:mod:`energy.conventions`) with a
:class:`~energy.costs.CostModel`; :func:`total_energy_j` prices a whole profiled run,
optionally with every spike count scaled (the break-even rate, :mod:`energy.breakeven`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from energy.conventions import derive, prices_neurons, scale_events
from energy.costs import PJ, CostModel

if TYPE_CHECKING:
    from energy.report import ModelCounts

__all__ = ["firing_rate_of", "layer_energy_pj", "total_energy_j"]


def layer_energy_pj(
    counts: Mapping[str, float],
    static: Mapping[str, Any],
    cost: CostModel,
    neurons: bool = True,
) -> tuple[float, float, float]:
    """``(compute, neuron, memory)`` pJ of one layer's counts.

    compute = (sops + adds)·E_AC + macs·E_MAC + other_ops·E_OP; neuron = updates·E_U +
    spikes·E_spike (0 with ``neurons=False``, the ``sdt`` convention); memory = (weight + bias
    reads)·E_weight + potential reads/writes·E_state + input reads·E_act(in) + output
    writes·E_act(out), each access priced by the capacity of its memory for size-dependent cost
    models.
    """
    compute = (
        (counts["sops"] + counts["adds"]) * cost.e_ac_pj
        + counts["macs"] * cost.e_mac_pj
        + counts["other_ops"] * cost.e_op_pj
    )
    neuron = counts["neuron_updates"] * cost.e_neuron_pj + counts["spikes_out"] * cost.e_spike_pj
    neuron = neuron if neurons else 0.0
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


def total_energy_j(
    run: ModelCounts, side: str, cost: CostModel, convention: str, norm: str, scale: float = 1.0
) -> float:
    """Energy per sample (J) of one side of ``run`` with every spike count x ``scale``."""
    priced = prices_neurons(convention)
    total_pj, samples = 0.0, 0
    for size, recs in run.batches:
        samples += size
        for rec in recs.values():
            prims = rec.prims if scale == 1.0 else scale_events(rec.kind, rec.prims, scale)
            snn, ann = derive(rec.kind, prims, rec.static, convention, norm)
            total_pj += sum(
                layer_energy_pj(snn if side == "snn" else ann, rec.static, cost, priced)
            )
    return total_pj * PJ / max(samples, 1)


def firing_rate_of(run: ModelCounts) -> float:
    """``spikes_out / neuron_updates`` over every neuron layer of ``run``."""
    spikes = updates = 0.0
    for _, recs in run.batches:
        for rec in recs.values():
            if rec.kind == "neuron":
                spikes += rec.prims.get("spikes_out", 0.0)
                updates += rec.prims.get("updates", 0.0)
    return spikes / updates if updates else float("nan")
