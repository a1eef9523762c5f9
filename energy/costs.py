"""Energy cost models: per-operation and per-access constants, presets, and the paper's Eq. 12-13.

A :class:`CostModel` is plain data (no torch). Presets, each with its source:

- ``paper``: SPKLIP Appendix A.6. E_C = 4.6 pJ for every operation (MAC and AC alike),
  E_U = 0.9 pJ per neuron update, E_M = 5.0 pJ per 32-bit SRAM access.
- ``horowitz45``: Horowitz, "Computing's energy problem", ISSCC 2014, 45 nm, 0.9 V, fp32:
  MAC = fp32 mult 3.7 + fp32 add 0.9 = 4.6 pJ, AC = fp32 add 0.9 pJ; SRAM cost by memory size
  (10 / 20 / 100 pJ per 64-bit read for 8 KB / 32 KB / 1 MB).
- ``int8-45nm``: the same table for 8-bit integer arithmetic (add 0.03, mult 0.2 pJ) with 8-bit
  weights and activations and 32-bit membrane potentials.
- ``loihi1``: Davies et al., IEEE Micro 2018, Loihi *pre-silicon* per-operation figures.
- ``truenorth``: Merolla et al., Science 2014: 26 pJ per synaptic event, all-in.

A user file (JSON or TOML) overrides any field of a preset: ``{"base": "paper", "e_mem_pj": 10}``;
keys that are not fields raise ``ValueError``, and so do costs that are not finite or exceed
:data:`MAX_PJ` (issue 16: ``1e308`` pJ would print "inf J").
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "PRESETS",
    "CostModel",
    "ann_energy_j",
    "load_costs",
    "snn_energy_j",
]

PJ = 1e-12  # joules per picojoule
MAX_PJ = 1e6  # 1 uJ per operation or access: ~400x a DRAM access (Horowitz 2014), an absurd cost
MAX_BITS = 64  # widest word or membrane potential
MEMORY_KINDS = ("weight", "state", "act")  # parameters, membrane potentials, activations/spikes


@dataclass(frozen=True)
class CostModel:
    """Energy per operation and per memory access, in picojoules.

    Memory: one access moves one word of ``word_bits`` (weights, biases, activations) or
    ``state_bits`` (membrane potentials). With an empty ``sram`` table every access costs
    ``e_mem_pj`` (``e_state_pj`` for potentials); otherwise the cost of one 32-bit access is read
    from ``sram`` by the capacity of the memory holding the data (piecewise linear in bytes
    between the points, constant outside them) and scaled by ``bits / 32``.
    """

    name: str  # preset name, or "<base>+<file stem>" for a user file
    source: str  # where the numbers come from (one line)
    e_mac_pj: float  # one multiply-accumulate on real values (dense MAC)
    e_ac_pj: float  # one accumulate: a synaptic operation on a spike, a bias or residual add
    e_op_pj: float  # one other elementwise op (compare, exp, ...) of the ANN side
    e_neuron_pj: float  # E_U: one neuron update (integrate, leak, threshold) per neuron and step
    e_spike_pj: float = 0.0  # per emitted spike (routing), on top of the update
    e_mem_pj: float = 0.0  # one access of a weight/activation word (flat model)
    e_state_pj: float = 0.0  # one access of a membrane-potential word (flat model)
    sram: tuple[tuple[float, float], ...] = ()  # (capacity bytes, pJ per 32-bit access)
    word_bits: int = 32  # width of weights, biases and activations
    state_bits: int = 32  # width of membrane potentials
    note: str = ""  # caveat printed with the table (e.g. "pre-silicon figures")

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name.endswith("_pj"):
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise ValueError(f"cost {f.name} must be a number, got {value!r}")
                if not math.isfinite(value) or not 0 <= value <= MAX_PJ:
                    raise ValueError(
                        f"cost {f.name} must be finite, >= 0 and <= {MAX_PJ:g} pJ, got {value!r}"
                    )
                object.__setattr__(self, f.name, float(value))
        for name in ("name", "source", "note"):  # printed in every report
            if not isinstance(getattr(self, name), str):
                raise ValueError(f"cost {name} must be text, got {getattr(self, name)!r}")
        for name in ("word_bits", "state_bits"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_BITS:
                raise ValueError(
                    f"cost {name} must be an int >= 1 and <= {MAX_BITS}, got {value!r}"
                )
        points = []
        for point in self.sram:
            if not isinstance(point, list | tuple) or len(point) != 2:
                raise ValueError(f"sram entries must be [capacity_bytes, pj] pairs, got {point!r}")
            cap, pj = (float(v) for v in point)
            if not (math.isfinite(cap) and math.isfinite(pj)) or cap <= 0 or not 0 <= pj <= MAX_PJ:
                raise ValueError(
                    f"sram entry {point!r} needs a finite capacity > 0 and 0 <= pJ <= {MAX_PJ:g}"
                )
            points.append((cap, pj))
        if any(b[0] <= a[0] for a, b in itertools.pairwise(points)):
            raise ValueError(f"sram capacities must increase strictly, got {self.sram!r}")
        object.__setattr__(self, "sram", tuple(points))

    def access_pj(self, kind: str, capacity_words: float) -> float:
        """Energy of one access of memory ``kind`` ("weight", "state", "act").

        ``capacity_words`` is the number of words that memory holds (the layer's parameters, its
        neurons per sample and step, its activations per sample and step); only an ``sram``
        table uses it.
        """
        if kind not in MEMORY_KINDS:
            raise ValueError(f"unknown memory kind {kind!r}; expected one of {MEMORY_KINDS}")
        bits = self.state_bits if kind == "state" else self.word_bits
        if not self.sram:
            return self.e_state_pj if kind == "state" else self.e_mem_pj
        return sram_pj(self.sram, capacity_words * bits / 8.0) * bits / 32.0


def sram_pj(table: tuple[tuple[float, float], ...], capacity_bytes: float) -> float:
    """pJ of one 32-bit access of an SRAM of ``capacity_bytes``: piecewise linear in ``table``."""
    if capacity_bytes <= table[0][0]:
        return table[0][1]
    for (c0, e0), (c1, e1) in itertools.pairwise(table):
        if capacity_bytes <= c1:
            return e0 + (e1 - e0) * (capacity_bytes - c0) / (c1 - c0)
    return table[-1][1]


# Horowitz ISSCC 2014 (45 nm): SRAM read of 64 bits costs 10 pJ (8 KB), 20 pJ (32 KB), 100 pJ
# (1 MB); per 32-bit word half of that. Beyond 1 MB (DRAM, 1.3-2.6 nJ) is not modelled.
HOROWITZ_SRAM = ((8 * 1024.0, 5.0), (32 * 1024.0, 10.0), (1024 * 1024.0, 50.0))

PRESETS: dict[str, CostModel] = {
    "paper": CostModel(
        name="paper",
        source="SPKLIP Appendix A.6 (Horowitz 2014, 45 nm): E_C 4.6, E_U 0.9, E_M 5.0 pJ",
        e_mac_pj=4.6,  # E_C, for MAC and AC alike
        e_ac_pj=4.6,  # E_C
        e_op_pj=4.6,  # E_C: Eq. 12 charges every operation the same
        e_neuron_pj=0.9,  # E_U
        e_mem_pj=5.0,  # E_M per 32-bit SRAM access
        e_state_pj=5.0,  # E_M
    ),
    "horowitz45": CostModel(
        name="horowitz45",
        source="Horowitz ISSCC 2014, 45 nm fp32: MAC 3.7+0.9, AC 0.9 pJ; SRAM 8KB/32KB/1MB",
        e_mac_pj=4.6,  # fp32 mult 3.7 + fp32 add 0.9
        e_ac_pj=0.9,  # fp32 add
        e_op_pj=0.9,  # one fp32 add-class op (compare, max)
        e_neuron_pj=4.6,  # leak-and-integrate V(1-1/tau) + X/tau as one fp32 MAC
        sram=HOROWITZ_SRAM,
    ),
    "int8-45nm": CostModel(
        name="int8-45nm",
        source="Horowitz ISSCC 2014, 45 nm int8: add 0.03, mult 0.2 pJ; 8-bit SRAM words",
        e_mac_pj=0.23,  # int8 mult 0.2 + int8 add 0.03
        e_ac_pj=0.03,  # int8 add
        e_op_pj=0.03,  # int8 compare
        e_neuron_pj=0.2,  # int32 add (integrate) + int32 compare; leak by shift for tau = 2^k
        sram=HOROWITZ_SRAM,
        word_bits=8,  # weights and activations
        state_bits=32,  # membrane potentials stay 32-bit
    ),
    "loihi1": CostModel(
        name="loihi1",
        source="Davies et al. IEEE Micro 2018 (Loihi, pre-silicon): 23.6 pJ/synop, 52/81 pJ update",
        e_mac_pj=23.6,  # Loihi has no MAC unit: a dense MAC is charged as one synaptic op
        e_ac_pj=23.6,  # per synaptic op (includes the synapse memory read)
        e_op_pj=23.6,  # as a synaptic op
        e_neuron_pj=52.0,  # inactive neuron update (includes state access)
        e_spike_pj=30.7,  # active update 81 - 52 = 29 pJ, + 1.7 pJ spike within a tile
        note="pre-silicon per-op figures; memory is inside the per-op energies; the ANN "
        "column is only a per-op comparison",
    ),
    "truenorth": CostModel(
        name="truenorth",
        source="Merolla et al. Science 2014 (TrueNorth): 26 pJ per synaptic event, all-in",
        e_mac_pj=26.0,  # no MAC unit: charged as one synaptic event
        e_ac_pj=26.0,  # all-in per synaptic event
        e_op_pj=26.0,
        e_neuron_pj=0.0,  # included in the 26 pJ; do not add neuron energy on top
        note="all-in per synaptic event: neuron, routing and memory are included; the ANN "
        "column is only a per-event comparison",
    ),
}

_FIELDS = {f.name for f in dataclasses.fields(CostModel)}


def _read_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ValueError(f"{path}: cannot read cost file ({err.strerror or err})") from None
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: cost file is not UTF-8 text ({err.reason})") from None
    try:
        data = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as err:
        raise ValueError(f"{path}: malformed cost file ({err})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a cost file must hold a table/object of constants")
    return data


def load_costs(spec: str | os.PathLike | CostModel) -> CostModel:
    """A cost model from a preset name, a JSON/TOML file of overrides, or a model (returned).

    A file holds any :class:`CostModel` fields plus an optional ``base`` preset (default
    ``paper``); everything it does not set comes from the base.
    """
    if isinstance(spec, CostModel):
        return spec
    if isinstance(spec, str) and spec in PRESETS:
        return PRESETS[spec]
    path = Path(spec)
    if path.suffix.lower() not in (".json", ".toml"):
        raise ValueError(
            f"unknown cost preset {str(spec)!r}; expected one of {sorted(PRESETS)}"
            " or a .json/.toml file"
        )
    if not path.is_file():
        raise ValueError(f"{path}: no such cost file")
    data = _read_file(path)
    base_name = data.pop("base", "paper")
    if not isinstance(base_name, str) or base_name not in PRESETS:  # ["paper"]: unhashable
        raise ValueError(f"{path}: unknown base preset {base_name!r}; expected {sorted(PRESETS)}")
    unknown = sorted(set(data) - _FIELDS)
    if unknown:
        raise ValueError(f"{path}: unknown cost keys {unknown}; known: {sorted(_FIELDS)}")
    data.setdefault("name", f"{base_name}+{path.stem}")
    if "sram" in data:
        if not isinstance(data["sram"], list):
            raise ValueError(f"{path}: sram must be a list of [capacity_bytes, pj] pairs")
        data["sram"] = tuple(tuple(p) if isinstance(p, list) else p for p in data["sram"])
    try:
        return dataclasses.replace(PRESETS[base_name], **data)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{path}: {err}") from None


def ann_energy_j(
    total_ops: float, memory_accesses: float, e_c_pj: float = 4.6, e_m_pj: float = 5.0
) -> float:
    """Eq. 12: ``E_ANN = Total_Ops · E_C + Memory · E_M``, in joules.

    The paper names the memory term "Memory_Reads"; the profiler passes reads and writes, as it
    does for the SNN, so that both sides count the same kinds of access.
    """
    return (total_ops * e_c_pj + memory_accesses * e_m_pj) * PJ


def snn_energy_j(
    actual_sops: float,
    neuron_updates: float,
    memory_accesses: float,
    e_c_pj: float = 4.6,
    e_u_pj: float = 0.9,
    e_m_pj: float = 5.0,
) -> float:
    """Eq. 13: ``E_SNN = Actual_SOPs · E_C + Neuron_Updates · E_U + Memory_Accesses · E_M`` (J)."""
    return (actual_sops * e_c_pj + neuron_updates * e_u_pj + memory_accesses * e_m_pj) * PJ
