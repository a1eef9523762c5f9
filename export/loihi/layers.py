"""What a quantised graph is: the quantisation settings, Dense/Conv projections, LIF layers.

A NIR graph becomes neuron layers (LIF, CubaLIF, IF, Threshold nodes), each fed by
projections: every path of linear nodes (one Conv/Affine/Linear at most, plus Scale,
Flatten, pooling) from a spike source (a neuron layer, a graph Input or a host Input) to it.
A projection is one Lava Dense/Conv process with its own 8-bit mantissas and exponent; a
layer's input is the sum of its projections (Lava sums the messages of every connection).
:func:`export.loihi.quantize` makes them, :func:`export.loihi.simulate_quantized` runs them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from export.fixed_point import DECAY_UNITY, WEIGHT_BITS
from export.graph import topological_order

__all__ = [
    "ROUNDINGS",
    "Op",
    "Projection",
    "QuantConfig",
    "QuantLayer",
    "QuantizedGraph",
    "path_errors",
    "run_order",
]

ROUNDINGS = ("nearest", "floor")


@dataclass(frozen=True)
class QuantConfig:
    """How a float graph becomes Loihi integers (defaults: the least error without overflow)."""

    scale: float | None = None  # a_in units per float unit for every layer; None: per layer
    rounding: str = "nearest"  # of weights, thresholds, decays, biases: "nearest" | "floor"
    decay_unity: int = DECAY_UNITY  # dv = decay_unity * dt/tau (the NIR-to-Lava script: 4095)
    headroom: float = 2.0  # u, v stay below 2^23 / headroom on the calibration data
    num_weight_bits: int = WEIGHT_BITS
    exp_search: int = 2  # also try this many smaller weight exponents (clip outliers)
    min_weight_exp: int = 0  # < 0 allows finer weights, but Lava floors those sums (bias)
    split_sign: bool = True  # mixed-sign weights as two Dense processes (+, -): 8 bits each
    weight_terms: int = 1  # Dense processes per weight set: 2 adds one for the rounding residue

    def __post_init__(self) -> None:
        if self.rounding not in ROUNDINGS:
            raise ValueError(f"rounding must be one of {ROUNDINGS}, got {self.rounding!r}")
        if self.scale is not None and not (np.isfinite(self.scale) and self.scale > 0):
            raise ValueError(f"scale must be a finite number > 0, got {self.scale!r}")
        if not 1 <= self.decay_unity <= DECAY_UNITY:
            raise ValueError(f"decay_unity must be in 1..{DECAY_UNITY}, got {self.decay_unity}")
        if not self.headroom >= 1:
            raise ValueError(f"headroom must be >= 1, got {self.headroom}")
        if not 1 <= self.num_weight_bits <= WEIGHT_BITS:
            raise ValueError(f"num_weight_bits must be in 1..8, got {self.num_weight_bits}")
        if self.exp_search < 0:
            raise ValueError(f"exp_search must be >= 0, got {self.exp_search}")
        if self.weight_terms not in (1, 2):
            raise ValueError(f"weight_terms must be 1 or 2, got {self.weight_terms}")

    def round(self, x: Any) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        return np.floor(x) if self.rounding == "floor" else np.rint(x)


@dataclass(frozen=True)
class Op:
    """One integer-linear step of a projection, applied per time step."""

    kind: str  # "weighted" | "identity" | "sumpool" | "flatten"
    node: str = ""  # NIR node name ("" for identity)
    node_type: str = ""  # Conv2d, Conv1d, Affine, Linear
    params: tuple = ()  # conv: (stride, padding, dilation, groups); pool: (k, s, p); flatten


@dataclass(frozen=True)
class Projection:
    """A path from a spike source into a layer: one Lava Dense/Conv process.

    ``weight`` holds the effective integer weights (mantissas as a bit-accurate Dense uses
    them: ``effective_weights(weight) == weight``); the message is ``(ops(x)) << exp``.
    """

    source: str  # spike source: neuron layer, graph Input or host Input
    path: tuple[str, ...]  # linear NIR nodes from the source to the layer
    ops: tuple[Op, ...]
    weight: np.ndarray  # int64, weighted node's shape ([out, in, k...] / [out, in]) or neurons
    exp: int  # weight exponent
    weight_float: np.ndarray  # the float weights in a_in units (what weight << exp stands for)
    clipped: int  # weights clipped to the mantissa range
    in_shape: tuple[int, ...]
    residue: bool = False  # carries the rounding residue of the projection before it

    @property
    def weight_error(self) -> float:
        """RMS of (quantised - float) weights over RMS of the float weights."""
        q = self.weight.astype(np.float64) * 2.0**self.exp
        ref = float(np.sqrt(np.mean(self.weight_float**2)))
        if ref == 0:
            return 0.0
        return float(np.sqrt(np.mean((q - self.weight_float) ** 2)) / ref)


@dataclass(frozen=True)
class QuantLayer:
    """A neuron node as a Lava LIF process: integer parameters, its projections, its errors."""

    name: str
    kind: str  # LIF | CubaLIF | IF | Threshold
    shape: tuple[int, ...]  # neurons per sample
    du: int  # 12-bit current decay (Lava adds 1)
    dv: int  # 12-bit voltage decay
    vth: int  # threshold mantissa (spike where v > vth << 6)
    bias_mant: np.ndarray  # int64 [*shape] (or scalar)
    bias_exp: np.ndarray  # int64 [*shape] (or scalar)
    scale: np.ndarray  # float64 per neuron: a_in units per float unit of drive
    projections: tuple[Projection, ...]
    threshold_error: float  # max |vth/s - v_th| / v_th
    decay_error: float  # max |dv/4096 - dt/tau| / (dt/tau) (0 for Threshold: see notes)
    bias_error: float  # max |bias_q - bias| / (v_th s 64), relative to the threshold
    bias_clipped: int  # neurons whose bias exceeds 13+3 bits
    notes: str = ""


def path_errors(layer: QuantLayer) -> dict[tuple[str, tuple[str, ...]], float]:
    """Per (source, path): RMS of the quantised minus the float weights over the float RMS,
    summing the Dense processes of one path (sign split, residue terms)."""
    groups: dict[tuple[str, tuple[str, ...]], list[Projection]] = {}
    for p in layer.projections:
        groups.setdefault((p.source, p.path), []).append(p)
    out = {}
    for key, ps in groups.items():
        ref = sum(p.weight_float for p in ps if not p.residue)
        q = sum(p.weight.astype(np.float64) * 2.0**p.exp for p in ps)
        rms = float(np.sqrt(np.mean(ref**2)))
        out[key] = float(np.sqrt(np.mean((q - ref) ** 2)) / rms) if rms else 0.0
    return out


@dataclass(frozen=True)
class QuantizedGraph:
    """A NIR graph as Loihi integers: layers in topological order and its ports."""

    layers: dict[str, QuantLayer]
    inputs: dict[str, tuple[int, ...]]  # Input node -> shape (graph inputs and host inputs)
    outputs: dict[str, str]  # Output node -> the layer whose spikes it carries
    order: tuple[str, ...]  # layers and Input nodes, dependencies first
    config: QuantConfig
    dt: float

    def depth(self, host: Mapping[str, Any] | None = None) -> dict[str, int]:
        """Dense/Conv processes on the longest path from a graph Input to each layer (and
        Input); a host Input (``host``: name -> HostCall) is as deep as what it reads."""
        d: dict[str, int] = {}
        host = host or {}
        for name in run_order(self, host):
            if name in self.layers:
                d[name] = 1 + max(d[p.source] for p in self.layers[name].projections)
            elif name in host:
                d[name] = max((d[self.outputs.get(n, n)] for n in host[name].needs), default=0)
            else:
                d[name] = 0
        return d

    def rows(self) -> list[dict[str, Any]]:
        """Per-layer quantisation report (one dict per layer)."""
        out = []
        for layer in self.layers.values():
            werr = list(path_errors(layer).values())
            out.append(
                {
                    "layer": layer.name,
                    "type": layer.kind,
                    "neurons": int(np.prod(layer.shape)),
                    "projections": len(layer.projections),
                    "weight_exp": ",".join(str(p.exp) for p in layer.projections),
                    "weight_rel_err_max": round(max(werr, default=0.0), 6),
                    "weights_clipped": sum(p.clipped for p in layer.projections),
                    "vth_mant": layer.vth,
                    "scale_min": float(f"{np.min(layer.scale):.6g}"),
                    "scale_max": float(f"{np.max(layer.scale):.6g}"),
                    "threshold_rel_err": round(layer.threshold_error, 6),
                    "du": layer.du,
                    "dv": layer.dv,
                    "decay_rel_err": round(layer.decay_error, 6),
                    "bias_rel_err": round(layer.bias_error, 6),
                    "bias_clipped": layer.bias_clipped,
                }
            )
        return out


def run_order(q: QuantizedGraph, host: Mapping[str, Any]) -> list[str]:
    """Layers and Inputs, each after what it reads (host Inputs after the layers they need)."""
    preds: dict[str, list[str]] = {n: [] for n in q.inputs}
    for name, layer in q.layers.items():
        preds[name] = [p.source for p in layer.projections]
    for name, call in host.items():
        if name not in q.inputs:
            raise ValueError(f"host values can feed graph Input nodes only, not {name!r}")
        needs = []
        for n in call.needs:
            if n not in q.outputs and n not in q.layers:
                raise ValueError(f"host call for {name!r} needs unknown node {n!r}")
            needs.append(q.outputs.get(n, n))
        preds[name] = needs
    return topological_order(q.order, preds)
