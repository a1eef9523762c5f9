"""Provenance of an energy report: how its numbers were made (issue 15).

Every report carries it twice: footer lines of the printed table (:func:`footer_lines`) and
``provenance.json`` beside ``summary.csv`` (:func:`provenance`): the estimator and its version
(and git commit, in the JSON only, so that tables stay reproducible across commits), the cost
model's constants, the convention, the norm mode, T, the firing-rate definition, whether memory
and neuron updates are counted, the baseline and the samples.
"""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

from energy.conventions import SDT_CONSTANTS_PJ, prices_memory, prices_neurons

if TYPE_CHECKING:
    from energy.costs import CostModel
    from energy.report import EnergyReport

__all__ = ["FIRING_RATE", "estimator", "footer_lines", "provenance"]

ESTIMATOR = "fsve energy"
FIRING_RATE = (
    "spikes_out / neuron_updates over every neuron layer (spikes per neuron and time step)"
)
BREAK_EVEN = (
    "firing rate at which E_snn = E_ann when every spike count (input spikes included) is "
    "scaled by r / measured rate and the rest is kept; 0 = never, inf = always"
)
SOPS = {
    "simple": "exact accumulates triggered by spikes (borders included)",
    "lemaire": "exact accumulates triggered by spikes (borders included)",
    "sdt": "input firing rate of the layer x its dense MACs (fr x FLOPs x T)",
}
_CONSTANTS = (
    ("E_MAC", "e_mac_pj"),
    ("E_AC", "e_ac_pj"),
    ("E_OP", "e_op_pj"),
    ("E_U", "e_neuron_pj"),
    ("E_spike", "e_spike_pj"),
    ("E_M", "e_mem_pj"),
    ("E_state", "e_state_pj"),
)


@functools.cache
def _commit() -> str | None:
    """Short git commit of the source tree (``-dirty`` with local changes), or None."""
    try:
        done = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--abbrev=7"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return (done.stdout.strip() or None) if done.returncode == 0 else None


@functools.cache
def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("fsve")
    except PackageNotFoundError:
        return "unknown"


def estimator(commit: bool = True) -> dict[str, str | None]:
    """``{"name", "version", "commit"}`` of this estimator (commit only when asked)."""
    return {"name": ESTIMATOR, "version": _version(), "commit": _commit() if commit else None}


def _constants(c: CostModel) -> dict[str, float]:
    return {name: getattr(c, attr) for name, attr in _CONSTANTS}


def _norm(report: EnergyReport) -> str:
    if report.convention == "sdt":
        return "fold (sdt: BN folded into the weights; its bias adds not counted)"
    return report.norm


def provenance(report: EnergyReport) -> dict[str, Any]:
    """The JSON-ready provenance block of ``report``."""
    c = report.costs
    return {
        "estimator": estimator(),
        "costs": {
            "name": c.name,
            "source": c.source,
            "note": c.note,
            "constants_pj": _constants(c),
            "sram_bytes_pj": [list(p) for p in c.sram],
            "word_bits": c.word_bits,
            "state_bits": c.state_bits,
        },
        "convention": report.convention,
        "norm": _norm(report),
        "memory_counted": prices_memory(report.convention),
        "neuron_updates_counted": prices_neurons(report.convention),
        "sops": SOPS.get(report.convention, ""),
        "time_steps": report.time_steps,
        "firing_rate": FIRING_RATE,
        "break_even_rate": BREAK_EVEN,
        "baseline": report.baseline,
        "samples": report.samples,
        "per": "inference (one sample)",
        "unknown_modules": len(report.unknown),
        "checkpoint_kind": report.checkpoint_kind or None,
    }


def _fmt(v: float) -> str:
    return f"{v:g}"


def _steps(t: int | None) -> str:
    if t is None:
        return "T not known (time_steps=None: memories sized per batch element)"
    return f"T = {t} steps per sample"


def _bytes(n: float) -> str:
    for unit, size in (("MB", 1024.0**2), ("KB", 1024.0)):
        if n >= size:
            return f"{n / size:g} {unit}"
    return f"{n:g} B"


def footer_lines(report: EnergyReport) -> list[str]:
    """The provenance lines printed under the table."""
    c = report.costs
    est = estimator(commit=False)
    memory = "memory counted" if prices_memory(report.convention) else "memory NOT counted"
    neurons = (
        "neuron updates counted"
        if prices_neurons(report.convention)
        else "neuron updates NOT counted"
    )
    flat = _constants(c)
    if c.sram:  # the flat E_M / E_state are not used
        flat = {k: v for k, v in flat.items() if k not in ("E_M", "E_state")}
    consts = ", ".join(f"{n} {_fmt(v)}" for n, v in flat.items())
    if c.sram:
        sizes = ", ".join(f"{_bytes(b)}: {_fmt(pj)}" for b, pj in c.sram)
        consts += f"; E_M per 32-bit access by SRAM size ({sizes})"
    lines = [
        f"Provenance: {est['name']} {est['version']}; convention {report.convention} "
        f"({memory}, {neurons}); norm {_norm(report)}; {_steps(report.time_steps)}.",
        f"Constants (pJ): {consts}; words {c.word_bits} bit, potentials {c.state_bits} bit.",
        f"Firing rate = {FIRING_RATE}; SOPs = {SOPS.get(report.convention, '')}.",
    ]
    if report.convention == "sdt" and any(getattr(c, k) != v for k, v in SDT_CONSTANTS_PJ.items()):
        lines.append(
            f"Warning: the SDT papers price E_MAC 4.6 and E_AC 0.9 pJ; costs {c.name} use "
            f"E_MAC {_fmt(c.e_mac_pj)}, E_AC {_fmt(c.e_ac_pj)}: not comparable with them."
        )
    return lines
