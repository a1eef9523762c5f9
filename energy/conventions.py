"""Accounting conventions: per-layer primitives -> the count columns of ``layers.csv``.

The counting pass (:mod:`energy.counting`) records, per layer, primitives that do not depend on
any convention (MACs, exact SOPs, spike counts, tensor sizes). The functions here turn them into
the columns for the SNN and for its ANN twin; every formula is written out in
``docs/energy.md`` under the column it fills.

Conventions (memory model):

- ``simple``: a synaptic layer reads its input events (spikes; every element for real input),
  one weight per accumulate, a bias per output element and writes each output element once;
  a neuron reads its input current, reads and writes its membrane once per step (LIF; the
  stateless SN has no membrane) and writes one word per spike.
- ``lemaire``: Lemaire et al. 2022 (arXiv 2210.13107): each input spike reads
  ``fan-out`` weights and reads-modifies-writes ``fan-out`` membrane potentials; each neuron
  reads and writes its potential once per step (leak and fire); bias read per neuron per step;
  input spikes read, output spikes written. Real-valued (formal) layers use their FNN formulas:
  a convolution reads one input per MAC, a linear layer each input once.
- ``sdt``: the accounting of the spike-driven transformer papers (Yao et al., NeurIPS 2023;
  V2/V3): a synaptic layer fed real values (the first, encoding layer) costs its MACs; every
  other synaptic layer ``firing rate x FLOPs x T`` accumulates, the rate being that layer's own
  input rate; BN folded; neuron updates, bias adds, elementwise work and memory not counted.
  The ANN twin costs its dense MACs only. No memory model: ``norm`` is ignored.

Normalisation (``norm``): ``fold`` (default) folds BN/TDBN into the preceding layer; what remains
is one bias add and one bias read per output element and step. ``free`` counts nothing (the
paper's convention); ``explicit`` counts a per-element MAC, a scale and a bias read, an input
read and an output write.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

__all__ = [
    "CONVENTIONS",
    "COUNT_COLUMNS",
    "EVENT_PRIMS",
    "NORM_MODES",
    "SDT_CONSTANTS_PJ",
    "default_costs",
    "derive",
    "prices_memory",
    "prices_neurons",
    "scale_events",
]

CONVENTIONS = ("simple", "lemaire", "sdt")
NORM_MODES = ("fold", "free", "explicit")

# per-layer count columns of layers.csv (and totals in summary.csv), per inference
COUNT_COLUMNS = (
    "dense_macs",  # MACs of the ANN twin for this layer
    "sops",  # accumulates triggered by spikes (exact, borders included)
    "sops_nominal",  # input events x full fan-out (no border correction; Lemaire's count)
    "macs",  # multiply-accumulates actually performed
    "adds",  # bias, residual and pooling additions
    "other_ops",  # other elementwise ops (activations, compares, exp) of the ANN side
    "neuron_updates",  # neurons x time steps
    "spikes_in",  # input events of synaptic layers (value-weighted for multi-level spikes)
    "spikes_out",  # spikes emitted by neuron layers
    "inputs",  # input elements seen (for rates)
    "outputs",  # output elements produced (for rates)
    "weight_reads",
    "bias_reads",
    "potential_reads",
    "potential_writes",
    "input_reads",
    "output_writes",
)


def _zero() -> dict[str, float]:
    return dict.fromkeys(COUNT_COLUMNS, 0.0)


def _synapse(p: Mapping[str, float], bias: bool, convention: str) -> tuple[dict, dict]:
    snn, ann = _zero(), _zero()
    b = 1.0 if bias else 0.0
    # compute (convention-independent)
    for d in (snn, ann):
        d["dense_macs"] = p["dense_macs"]
        d["inputs"] = p["in_numel"]
        d["outputs"] = p["out_numel"]
        d["adds"] = b * p["out_numel"]  # bias add per output element
        d["bias_reads"] = b * p["out_numel"]
    snn["sops"] = p["sops"]
    snn["sops_nominal"] = p["sops_nominal"]
    snn["macs"] = p["macs"]
    snn["spikes_in"] = p["spikes_in"]
    ann["macs"] = p["dense_macs"]
    # ANN twin memory
    ann["weight_reads"] = p["dense_macs"]
    ann["output_writes"] = p["out_numel"]
    if convention == "simple":
        ann["input_reads"] = p["in_numel"]
        snn["input_reads"] = p["spikes_in"] + p["in_numel_real"]
        snn["weight_reads"] = p["sops"] + p["macs"]
        snn["output_writes"] = p["out_numel"]
    else:  # lemaire
        ann["input_reads"] = p["lemaire_in_dense"]
        snn["input_reads"] = p["spikes_in"] + p["lemaire_in_real"]
        snn["weight_reads"] = p["sops_nominal"] + p["macs"]
        snn["potential_reads"] = p["sops_nominal"]
        snn["potential_writes"] = p["sops_nominal"]
        snn["output_writes"] = p["out_numel_real"]  # spike-driven calls write into membranes
    return snn, ann


def _synapse_sdt(p: Mapping[str, float]) -> tuple[dict, dict]:
    """SDT papers: real input -> MACs; spike input -> ``rate_in x dense MACs`` accumulates."""
    snn, ann = _zero(), _zero()
    for d in (snn, ann):
        d["dense_macs"] = p["dense_macs"]
        d["inputs"] = p["in_numel"]
        d["outputs"] = p["out_numel"]
    ann["macs"] = p["dense_macs"]
    snn["macs"] = p["macs"]  # calls on real input (the encoding layer): E_MAC
    spike_inputs = p["in_numel"] - p["in_numel_real"]
    if spike_inputs > 0:  # fr x FLOPs x T, fr = this layer's input rate over its spike calls
        snn["sops"] = p["spikes_in"] / spike_inputs * (p["dense_macs"] - p["macs"])
    snn["sops_nominal"] = p["sops_nominal"]
    snn["spikes_in"] = p["spikes_in"]
    return snn, ann


def _neuron(p: Mapping[str, float], stateful: bool, convention: str) -> tuple[dict, dict]:
    snn, ann = _zero(), _zero()
    n = p["updates"]
    snn["neuron_updates"] = n
    snn["spikes_out"] = p["spikes_out"]
    snn["inputs"] = snn["outputs"] = n
    ann["inputs"] = ann["outputs"] = n
    if convention == "sdt":  # counted for the firing rate only; not priced (prices_neurons)
        return snn, ann
    snn["output_writes"] = p["spikes_out"]  # one address event per spike
    if convention == "simple":
        snn["input_reads"] = n  # the input current
        if stateful:
            snn["potential_reads"] = snn["potential_writes"] = n
    else:  # lemaire: leak/fire pass over every potential each step
        snn["potential_reads"] = snn["potential_writes"] = n
    return snn, ann  # the ANN twin's activation is fused into the producing layer: free


def _norm(p: Mapping[str, float], norm: str) -> tuple[dict, dict]:
    snn, ann = _zero(), _zero()
    n = p["numel"]
    for d in (snn, ann):
        d["inputs"] = d["outputs"] = n
        if norm == "fold":
            d["adds"] = n
            d["bias_reads"] = n
        elif norm == "explicit":
            d["macs"] = n
            d["weight_reads"] = n
            d["bias_reads"] = n
            d["input_reads"] = n
            d["output_writes"] = n
    return snn, ann


_ELEMENTWISE = (
    "macs",
    "adds",
    "other_ops",
    "weight_reads",
    "bias_reads",
    "input_reads",
    "output_writes",
    "inputs",
    "outputs",
)


def _elementwise(p: Mapping[str, float]) -> tuple[dict, dict]:
    snn, ann = _zero(), _zero()
    for col in _ELEMENTWISE:
        ann[col] = p.get(f"ann_{col}", 0.0)
        snn[col] = p.get(f"snn_{col}", ann[col])
    return snn, ann


def derive(
    kind: str,
    prims: Mapping[str, float],
    static: Mapping[str, object],
    convention: str = "simple",
    norm: str = "fold",
) -> tuple[dict[str, float], dict[str, float]]:
    """Count columns ``(snn, ann)`` of one layer from its primitives (see ``docs/energy.md``).

    ``kind`` is ``synapse``, ``neuron``, ``norm``, ``elementwise``, ``unknown`` or
    ``unknown_spiking`` (a spiking module without a rule: nothing counted); ``static``
    holds ``bias`` (synapse) and ``stateful`` (neuron).
    """
    if convention not in CONVENTIONS:
        raise ValueError(f"unknown convention {convention!r}; expected one of {CONVENTIONS}")
    if norm not in NORM_MODES:
        raise ValueError(f"unknown norm mode {norm!r}; expected one of {NORM_MODES}")
    if convention == "sdt" and kind in ("norm", "elementwise", "unknown"):
        snn, ann = _zero(), _zero()  # BN folded into the weights, the rest not counted
    elif kind == "synapse" and convention == "sdt":
        snn, ann = _synapse_sdt(prims)
    elif kind == "synapse":
        snn, ann = _synapse(prims, bool(static.get("bias", False)), convention)
    elif kind == "neuron":
        snn, ann = _neuron(prims, bool(static.get("stateful", True)), convention)
    elif kind == "norm":
        snn, ann = _norm(prims, norm)
    elif kind == "elementwise":
        snn, ann = _elementwise(prims)
    elif kind in ("unknown", "unknown_spiking"):
        snn, ann = _zero(), _zero()
    else:
        raise ValueError(f"unknown layer kind {kind!r}")
    return snn, ann


# what the SDT papers price (Horowitz 2014, 45 nm fp32: MAC 3.7 + 0.9, AC 0.9 pJ)
SDT_CONSTANTS_PJ = {"e_mac_pj": 4.6, "e_ac_pj": 0.9}


def default_costs(convention: str) -> str:
    """The cost preset used when none is given: ``paper``, or ``horowitz45`` (E_MAC 4.6, E_AC
    0.9 pJ, the SDT papers' constants) under ``sdt``."""
    return "horowitz45" if convention == "sdt" else "paper"


def prices_neurons(convention: str) -> bool:
    """Whether neuron updates and spikes are priced (not under ``sdt``)."""
    return convention != "sdt"


def prices_memory(convention: str) -> bool:
    """Whether memory accesses are counted (not under ``sdt``)."""
    return convention != "sdt"


# primitives proportional to spike activity, per layer kind (the break-even rate scales them);
# for ``elementwise`` every ``snn_*`` primitive is (the SNN side differs only by counting spikes)
EVENT_PRIMS = {
    "synapse": ("sops", "sops_nominal", "spikes_in"),
    "neuron": ("spikes_out",),
}


def scale_events(kind: str, prims: Mapping[str, float], scale: float) -> dict[str, float]:
    """A copy of ``prims`` with its event-driven primitives multiplied by ``scale``."""
    out = defaultdict(float, prims)
    keys = EVENT_PRIMS.get(kind, ())
    if kind == "elementwise":
        keys = tuple(k for k in prims if k.startswith("snn_"))
    for key in keys:
        if key in out:
            out[key] *= scale
    return out
