"""NIR export of FSVEs and spiking chains, with the host partition (``python -m export.nir``).

``to_nir(model, example_input)`` turns a model built from our blocks (:mod:`fsve.nn`), or a
plain SpikingJelly/PyTorch chain (Conv2d, Linear, pooling, Flatten, LIF/IF, BatchNorm, residual
adds), into a :class:`NIRExport`: the NIR graph of the part neuromorphic cores can run, the
partition (which module runs where, which tensors cross), and the runnable host program for the
rest. ``python -m export.nir CKPT OUT.nir`` writes ``OUT.nir``, the host program
``OUT.host.pt`` and a partition report with spike traffic measured on real clips.

Mapping (details and proofs: ``docs/export.md``):

- LIF (``H = V + (X - (V - V_r))/tau``, or ``V - (V - V_r)/tau + X`` without decay_input;
  spike ``H >= V_th``; hard reset) -> ``nir.LIF(tau = tau_steps·dt, r = 1 | tau_steps,
  v_leak = V_r, v_threshold = nextafter(V_th, -inf), v_reset = V_r)``: forward Euler at ``dt``
  reproduces the discrete LIF; NIR's strict ``v > thr`` on the largest float below ``V_th``
  equals our ``>=`` for every value of the model's float type. Soft reset has no NIR form.
- SN (Eq. 9, eval) -> ``nir.Threshold(nextafter(α·running E|x|, -inf))`` per channel.
- TDBN/BN (eval statistics) folded into the preceding conv/linear: ``W' = W·g``,
  ``b' = (b - mean)·g + beta``, ``g = gamma/sqrt(var + eps)``, computed in float64.
- Token-wise ``nn.Linear`` of the transformer -> 1x1 ``nir.Conv2d`` on the token grid: tokens
  ``[T, B, N, C]`` are ``[C, h, w]`` inside the graph.
- Residual adds -> fan-in edges. Every node gets at most two incoming edges: a sum that is
  added to again, or consumed after a layout change, becomes an identity node
  (``nir.Scale(1)``, name ``<block>.add``), so any NIR simulator forms each sum exactly as the
  model does (a two-term float sum does not depend on order).
- Host work: E-SDSA's products of two moving signals (``Q_S K_S^T``, ``A V_S``) with their SN
  thresholds, and the FSVE readout (mean over time and tokens, projection ``proj``). The graph
  exposes them as ports: Output ``<attn>.host.q/k/v`` (spikes to the host) and Input
  ``<attn>.host.out`` (spikes back), Output ``features`` (final spikes to the readout).
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import math
import operator
import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import nir
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from export.sim import DT_S, NEURON_TYPES, HostCall, Simulator
from fsve.io import atomic_write_bytes, csv_text
from fsve.models.student import FSVE, SpikingVisualEncoder
from fsve.nn.attention import (
    ESDSA,
    SN,
    AttentionSN,
    SpikeMatmul,
    SpikeProjection,
    SpikingMLP,
    SpikingTransformerBlock,
)
from fsve.nn.blocks import ConvTDBN, MSBlock, seq_forward
from fsve.nn.neurons import LIF, LIFParams
from fsve.nn.norm import TDBN1d, TDBN2d

__all__ = [
    "DT_S",
    "HOST_FORMAT",
    "BoundaryTensor",
    "ExportError",
    "HostESDSA",
    "HostProgram",
    "HostReadout",
    "LayerComparison",
    "ModulePlacement",
    "NIRExport",
    "Partition",
    "SplitModel",
    "compare_split",
    "lif_from_nir",
    "lif_to_nir",
    "main",
    "nir_threshold",
    "to_nir",
]

HOST_FORMAT = "fsve-nir-host"  # format tag of the host program file OUT.host.pt
HOST_VERSION = 1
PRODUCER = "fsve export.nir"
THRESHOLD_CONVENTION = "nir_v_threshold = nextafter(model_v_threshold, -inf) in the model dtype"


class ExportError(ValueError):
    """A module NIR cannot express; the message names the module, its type and the reason."""


def _fail(name: str, module: nn.Module | None, reason: str) -> NoReturn:
    what = type(module).__name__ if module is not None else "?"
    raise ExportError(f"{name or '<root>'} ({what}): {reason}")


# ----------------------------------------------------------------------------- neuron mapping


def nir_threshold(v_threshold: float | np.ndarray, dtype: Any = np.float32) -> np.ndarray:
    """The NIR threshold for a model threshold: the largest ``dtype`` value below it.

    NIR fires on ``v > thr``, our neurons on ``v >= V_th``. For every ``v`` of that float type,
    ``v > nextafter(V_th, -inf)`` holds exactly when ``v >= V_th``, so a simulator computing in
    the model's float type reproduces the spikes with no tie to break.
    """
    t = np.asarray(v_threshold, dtype=dtype)
    return np.nextafter(t, np.array(-np.inf, dtype=t.dtype))


def lif_to_nir(
    params: LIFParams, shape: Sequence[int], dt: float = DT_S, dtype: Any = np.float32
) -> nir.LIF:
    """``nir.LIF`` whose forward Euler at ``dt`` is the discrete LIF of ``params``.

    ``tau = tau_steps·dt`` (float64), ``r = 1`` with ``decay_input`` (the input is divided by
    tau) else ``r = tau_steps``, ``v_leak = v_reset = V_r``, threshold :func:`nir_threshold`.
    Every parameter is broadcast to ``shape`` (per-sample neuron shape, e.g. ``[C, H, W]``).
    """
    if params.v_reset is None:
        raise ExportError(
            "soft reset (v_reset=None, subtract V_th) has no NIR form: NIR neurons reset to"
            " v_reset; use a hard reset"
        )
    shape = tuple(int(s) for s in shape)
    full = lambda v, dt_=np.float64: np.full(shape, v, dtype=dt_)  # noqa: E731
    return nir.LIF(
        tau=full(params.tau * dt),
        r=full(1.0 if params.decay_input else params.tau),
        v_leak=full(params.v_reset),
        v_threshold=np.broadcast_to(nir_threshold(params.v_threshold, dtype), shape).copy(),
        v_reset=full(params.v_reset),
    )


def lif_from_nir(node: nir.LIF, dt: float = DT_S) -> LIFParams:
    """The inverse of :func:`lif_to_nir` for uniform parameters (raises if non-uniform).

    ``V_th = nextafter(thr, +inf)`` in the threshold's float type: under NIR's strict
    comparison this is the exact inclusive threshold of our neurons.
    """

    def uniform(name: str) -> np.ndarray:
        arr = np.asarray(getattr(node, name)).reshape(-1)
        if arr.size == 0 or not np.all(arr == arr[0]):
            raise ValueError(f"nir.LIF.{name} is not uniform; LIFParams hold one value")
        return arr[0]

    tau_steps = float(uniform("tau")) / dt
    r = float(uniform("r"))
    if math.isclose(r, 1.0, rel_tol=1e-9):
        decay_input = True
    elif math.isclose(r, tau_steps, rel_tol=1e-9):
        decay_input = False
    else:
        raise ValueError(f"nir.LIF.r = {r} is neither 1 nor tau/dt = {tau_steps}")
    v_leak, v_reset = float(uniform("v_leak")), float(uniform("v_reset"))
    if v_leak != v_reset:
        raise ValueError(f"nir.LIF.v_leak {v_leak} != v_reset {v_reset}: no LIFParams form")
    thr = uniform("v_threshold")
    return LIFParams(
        tau=tau_steps,
        v_threshold=float(np.nextafter(thr, np.array(np.inf, dtype=thr.dtype))),
        v_reset=v_reset,
        decay_input=decay_input,
    )


# ----------------------------------------------------------------------------- partition


@dataclass(frozen=True)
class ModulePlacement:
    """Where one module of the model runs."""

    module: str  # qualified module name in the model
    type: str  # class name
    placement: str  # "core", "folded" (into a core node), "host", "none" (identity/no-op)
    nodes: tuple[str, ...] = ()  # NIR nodes it became (or the node it was folded into)
    note: str = ""


@dataclass(frozen=True)
class BoundaryTensor:
    """A tensor crossing between the neuromorphic graph and the host."""

    name: str  # NIR port node (Output for core->host, Input for host->core)
    direction: str  # "core->host" or "host->core"
    shape: tuple[int, ...]  # per sample and step, NIR layout
    source: str  # NIR node (core->host) or host op (host->core) producing it
    consumer: str  # host op (core->host) or NIR nodes (host->core) reading it

    @property
    def neurons(self) -> int:
        return int(np.prod(self.shape))


@dataclass
class Partition:
    """Which modules run on cores and which on the host, and what crosses between them."""

    modules: list[ModulePlacement] = field(default_factory=list)
    boundary: list[BoundaryTensor] = field(default_factory=list)
    host_ops: list[str] = field(default_factory=list)

    def on(self, placement: str) -> list[ModulePlacement]:
        return [m for m in self.modules if m.placement == placement]


# ----------------------------------------------------------------------------- host program


def _tokens(x: torch.Tensor) -> torch.Tensor:
    return x.flatten(3).transpose(2, 3)  # [T, B, C, h, w] -> [T, B, N = h*w, C]


def _grid(x: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    return x.transpose(2, 3).unflatten(3, grid)  # [T, B, N, C] -> [T, B, C, h, w]


class HostESDSA(nn.Module):
    """Host part of one E-SDSA (Eq. 10-11): spikes Q, K, V -> SN(A V_S) spikes, NIR layout.

    Repeats :class:`~fsve.nn.attention.ESDSA` from its SN/SN' outputs on: counts ``Q K^T`` per
    head, ``A = 1(counts - V_th/scale >= 0)`` (Eq. 11), ``A V``, ``1(A V - V_th' >= 0)`` with
    the fixed eval thresholds. Products of spikes are integer counts, exact in float.
    Inputs and output ``[T, B, C, h, w]``.
    """

    kind = "esdsa"

    def __init__(
        self,
        name: str,
        inputs: tuple[str, str, str],
        output: str,
        heads: int,
        grid: tuple[int, int],
        count_threshold: torch.Tensor,
        out_threshold: torch.Tensor,
    ) -> None:
        super().__init__()
        self.name, self.inputs, self.output = name, tuple(inputs), output
        self.heads, self.grid = int(heads), (int(grid[0]), int(grid[1]))
        self.register_buffer("count_threshold", count_threshold.detach().clone())  # [heads]
        self.register_buffer("out_threshold", out_threshold.detach().clone())  # [C]

    feeds_graph = True

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        d = x.shape[-1] // self.heads
        return x.unflatten(-1, (self.heads, d)).transpose(2, 3)  # [T, B, h, N, d]

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        q, k, v = (self._heads(_tokens(t)) for t in (q, k, v))
        counts = torch.matmul(q, k.transpose(-2, -1))  # [T, B, h, N, N] integer counts
        thr = self.count_threshold.to(counts.dtype).view(1, 1, -1, 1, 1)
        a = (counts - thr >= 0).to(counts.dtype)  # SN' (Eq. 10-11)
        y = torch.matmul(a, v).transpose(2, 3).flatten(-2)  # [T, B, N, C] counts
        o = (y - self.out_threshold.to(y.dtype) >= 0).to(y.dtype)  # out SN
        return _grid(o, self.grid).contiguous()

    def spec(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "inputs": list(self.inputs),
            "output": self.output,
            "heads": self.heads,
            "grid": list(self.grid),
            "count_threshold": self.count_threshold.cpu(),
            "out_threshold": self.out_threshold.cpu(),
        }

    @classmethod
    def from_spec(cls, s: Mapping[str, Any]) -> HostESDSA:
        return cls(
            s["name"],
            tuple(s["inputs"]),
            s["output"],
            s["heads"],
            tuple(s["grid"]),
            s["count_threshold"],
            s["out_threshold"],
        )


class HostReadout(nn.Module):
    """FSVE head on the host: final spikes ``[T, B, C, h, w]`` -> embedding ``[B, D]``.

    Firing rate per channel over time and tokens, then ``proj`` (the one rate-coded layer,
    :data:`~fsve.models.student.SPIKE_DRIVEN_EXCEPTIONS`).
    """

    kind = "readout"
    feeds_graph = False

    def __init__(
        self,
        name: str,
        inputs: tuple[str],
        output: str,
        grid: tuple[int, int],
        weight: torch.Tensor,
        bias: torch.Tensor | None,
    ) -> None:
        super().__init__()
        self.name, self.inputs, self.output = name, tuple(inputs), output
        self.grid = (int(grid[0]), int(grid[1]))
        self.register_buffer("weight", weight.detach().clone())  # [D, C]
        self.register_buffer("bias", None if bias is None else bias.detach().clone())  # [D]

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        rates = _tokens(features).mean(dim=(0, 2))  # [B, C]
        w = self.weight.to(rates.dtype)
        return F.linear(rates, w, None if self.bias is None else self.bias.to(rates.dtype))

    def spec(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "inputs": list(self.inputs),
            "output": self.output,
            "grid": list(self.grid),
            "weight": self.weight.cpu(),
            "bias": None if self.bias is None else self.bias.cpu(),
        }

    @classmethod
    def from_spec(cls, s: Mapping[str, Any]) -> HostReadout:
        return cls(
            s["name"], tuple(s["inputs"]), s["output"], tuple(s["grid"]), s["weight"], s["bias"]
        )


HOST_OPS: dict[str, type[nn.Module]] = {"esdsa": HostESDSA, "readout": HostReadout}


class HostProgram(nn.Module):
    """The host side of a split model: ordered host ops and the graph input convention.

    ``input_layout`` is ``"clip"`` (FSVE: ``[B, K, F, H, W]`` clips, time = sub-blocks) or
    ``"time_first"`` (``[T, B, ...]``). Ops with ``feeds_graph`` produce a graph Input node from
    graph Output nodes; the others produce final outputs from graph outputs.
    """

    def __init__(
        self,
        ops: Iterable[nn.Module] = (),
        input_name: str = "input",
        input_layout: str = "time_first",
    ) -> None:
        super().__init__()
        if input_layout not in ("clip", "time_first"):
            raise ValueError(f"input_layout must be 'clip' or 'time_first', got {input_layout!r}")
        self.ops = nn.ModuleList(ops)
        self.input_name, self.input_layout = input_name, input_layout

    def graph_input(self, x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """The model input as the graph's time-first input ``[T, B, ...]``."""
        x = torch.as_tensor(x)
        if self.input_layout == "clip":
            if x.ndim != 5:
                raise ValueError(f"expected clips [B, K, F, H, W], got {tuple(x.shape)}")
            x = x.transpose(0, 1)  # [T = K, B, F, H, W]
        return x.to(dtype)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": HOST_FORMAT,
            "version": HOST_VERSION,
            "input_name": self.input_name,
            "input_layout": self.input_layout,
            "ops": [op.spec() for op in self.ops],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> HostProgram:
        if d.get("format") != HOST_FORMAT or d.get("version") != HOST_VERSION:
            raise ValueError(
                f"not a host program (format {d.get('format')!r} version {d.get('version')!r};"
                f" expected {HOST_FORMAT!r} {HOST_VERSION})"
            )
        ops = []
        for s in d["ops"]:
            if s.get("kind") not in HOST_OPS:
                raise ValueError(f"unknown host op kind {s.get('kind')!r}")
            ops.append(HOST_OPS[s["kind"]].from_spec(s))
        return cls(ops, d["input_name"], d["input_layout"])

    def save(self, path: str | os.PathLike) -> Path:
        """Write atomically with ``torch.save`` (tensors and plain values only)."""
        path = Path(path)
        buf = io.BytesIO()
        torch.save(self.to_dict(), buf)
        _atomic_write(path, buf.getvalue())
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> HostProgram:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such host program")
        return cls.from_dict(torch.load(path, map_location="cpu", weights_only=True))


def _atomic_write(path: Path, data: bytes) -> None:
    atomic_write_bytes(path, data)


def write_nir(path: str | os.PathLike, graph: nir.NIRGraph) -> Path:
    """``nir.write`` atomically, then ``nir.read`` it back with its type check."""
    path = Path(path)
    buf = io.BytesIO()
    nir.write(buf, graph)
    _atomic_write(path, buf.getvalue())
    nir.read(path)  # loads and type-checks, or raises
    return path


def host_path_for(nir_path: str | os.PathLike) -> Path:
    """Where the host program of ``OUT.nir`` lives: ``OUT.host.pt``."""
    p = Path(nir_path)
    return p.with_name(p.stem + ".host.pt")


# ----------------------------------------------------------------------------- split model


class SplitModel(nn.Module):
    """The exported model run split: the NIR graph in :mod:`export.sim` plus the host program.

    ``run(x)`` returns every recorded graph value and every host output; per step, host ops
    read the spikes of the graph's Output ports and feed its Input ports (same step).
    """

    def __init__(
        self,
        graph: nir.NIRGraph | str | Path,
        host: HostProgram,
        dt: float = DT_S,
        dtype: torch.dtype = torch.float32,
        accumulate: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.sim = Simulator(graph, dt, dtype, accumulate=accumulate)
        self.host = host
        self.dtype = dtype
        for op in host.ops:
            for n in op.inputs:
                if n not in self.sim.nodes:
                    raise ValueError(f"host op {op.name!r} reads unknown node {n!r}")
            if op.feeds_graph and op.output not in self.sim.nodes:
                raise ValueError(f"host op {op.name!r} feeds unknown node {op.output!r}")

    @classmethod
    def load(
        cls,
        nir_path: str | os.PathLike,
        host_path: str | os.PathLike | None = None,
        dtype: torch.dtype = torch.float32,
        accumulate: torch.dtype | None = None,
    ) -> SplitModel:
        """From ``OUT.nir`` and its host program (default ``OUT.host.pt``)."""
        graph = nir.read(nir_path)
        host = HostProgram.load(host_path or host_path_for(nir_path))
        dt = float(np.asarray(graph.metadata.get("dt_s", DT_S))) if graph.metadata else DT_S
        return cls(graph, host, dt, dtype, accumulate)

    def run(
        self,
        x: torch.Tensor,
        record: str | Iterable[str] | None = None,
        clamp: Mapping[str, torch.Tensor] | None = None,
        states: Iterable[str] = (),
    ) -> dict[str, torch.Tensor]:
        """Model input -> ``{node or host output: value}`` (graph values ``[T, B, ...]``).

        ``record``, ``clamp`` and ``states`` as in :meth:`export.sim.Simulator.run`.
        """
        calls = {}
        for op in self.host.ops:
            if op.feeds_graph:
                calls[op.output] = HostCall(
                    tuple(op.inputs), lambda d, op=op: op(*(d[n] for n in op.inputs))
                )
        finals = [op for op in self.host.ops if not op.feeds_graph]
        if record is None:
            keep = set(self.sim.neuron_nodes()) | set(self.sim.outputs) | set(calls)
        elif isinstance(record, str):
            keep = record
        else:
            keep = set(record)
        if not isinstance(keep, str):
            keep |= {n for op in finals for n in op.inputs}
        out = self.sim.run(
            {self.host.input_name: self.host.graph_input(x, self.dtype)},
            record=keep,
            states=states,
            host=calls,
            clamp=clamp,
        )
        with torch.no_grad():
            for op in finals:
                out[op.output] = op(*(out[n] for n in op.inputs))
        return out

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.run(x)

    def encode_video(self, spikes: torch.Tensor) -> torch.Tensor:
        """FSVE splits: clip ``[B, K, F, H, W]`` -> embedding ``[B, D]`` (host readout)."""
        return self.run(spikes, record=())["embedding"]


# ----------------------------------------------------------------------------- builder


@dataclass(frozen=True)
class _Value:
    """A tensor of the model during export: its value and the NIR nodes whose sum it is."""

    tensor: torch.Tensor  # the model's value, model layout [T, B, ...]
    terms: tuple[str, ...]  # NIR nodes whose outputs sum to it (1 or 2)
    versions: tuple[int, ...]  # node versions at creation (a BN fold bumps the version)
    grid: tuple[int, int] | None = None  # tokens [T, B, N, C] seen by NIR as [C, h, w]
    label: str = ""  # name for an identity node if this sum must become one

    def nir_shape(self) -> tuple[int, ...]:
        if self.grid is not None:
            return (int(self.tensor.shape[-1]), *self.grid)
        return tuple(int(s) for s in self.tensor.shape[2:])

    def nir_tensor(self) -> torch.Tensor:
        """The value in NIR layout ``[T, B, *nir_shape]``."""
        return _grid(self.tensor, self.grid) if self.grid is not None else self.tensor


_WEIGHTED = (nir.Conv1d, nir.Conv2d, nir.Affine, nir.Linear)


class _Builder:
    def __init__(self, dt: float, keep: bool, verify: bool, prefix: str) -> None:
        self.dt, self.keep, self.verify, self.prefix = dt, keep, verify, prefix
        self.nodes: dict[str, nir.NIRNode] = {}
        self.edges: list[tuple[str, str]] = []
        self.version: dict[str, int] = {}
        self.consumers: dict[str, int] = {}
        self.partition = Partition()
        self.host_ops: list[nn.Module] = []
        self.activations: dict[str, torch.Tensor] = {}
        self.dtype = np.float32

    # nodes and values
    def _unique(self, name: str) -> str:
        base, i = name or "node", 1
        while name in self.nodes or not name:
            name, i = f"{base}.{i}", i + 1
        return name

    def value(self, tensor: torch.Tensor, terms: Sequence[str], grid=None, label="") -> _Value:
        terms = tuple(terms)
        return _Value(tensor, terms, tuple(self.version[t] for t in terms), grid, label)

    def _check_fresh(self, v: _Value, name: str) -> None:
        for t, ver in zip(v.terms, v.versions, strict=True):
            if self.version[t] != ver:
                raise ExportError(
                    f"{name}: reads the output of {t!r} as it was before a BatchNorm was folded"
                    " into it; a conv/linear output used both before and after its BatchNorm"
                    " cannot be exported"
                )

    def node(self, name: str, node: nir.NIRNode, x: _Value | None, module: str = "") -> str:
        """Add ``node`` fed by the terms of ``x``; returns its (unique) name."""
        name = self._unique(name)
        if module:
            node.metadata = {**(node.metadata or {}), "module": module}
        self.nodes[name] = node
        self.version[name] = 0
        self.consumers[name] = 0
        if x is not None:
            self._check_fresh(x, name)
            for t in x.terms:
                self.edges.append((t, name))
                self.consumers[t] += 1
        return name

    def materialize(self, v: _Value) -> _Value:
        """A single-node value: a sum of two terms becomes an identity node ``nir.Scale(1)``."""
        if len(v.terms) == 1:
            return v
        shape = v.nir_shape()
        name = self.node(v.label or "sum", nir.Scale(scale=np.ones(shape, self.dtype)), v)
        self.place(name, "Add", "core", (name,), "identity node: a sum consumed as one value")
        return self.value(v.tensor, (name,), v.grid, v.label)

    def add(self, a: _Value, b: _Value, label: str) -> _Value:
        """``a + b`` as fan-in: the terms of both (each side materialised if it is a sum)."""
        if a.grid != b.grid or a.nir_shape() != b.nir_shape():
            raise ExportError(f"{label}: adds values of different shapes or layouts")
        a, b = self.materialize(a), self.materialize(b)
        return self.value(a.tensor + b.tensor, a.terms + b.terms, a.grid, label)

    def place(self, module: str, type_: str, placement: str, nodes=(), note: str = "") -> None:
        full = module if not self.prefix else f"{self.prefix}.{module}" if module else self.prefix
        self.partition.modules.append(ModulePlacement(full, type_, placement, tuple(nodes), note))

    def _record(self, node_name: str, v: _Value, spikes_only: bool = False) -> None:
        """Keep the model's spikes at a neuron node or port (bool, NIR layout)."""
        if self.keep:
            t = v.nir_tensor()
            if not bool(((t == 0) | (t == 1)).all()):
                if spikes_only:
                    return
                raise ExportError(f"{node_name}: expected spikes, found non-binary values")
            self.activations[node_name] = t.to(torch.bool)

    # conversion
    def convert(self, m: nn.Module, name: str, x: _Value) -> _Value:
        fn = _lookup(type(m))
        if fn is None:
            fn = _convert_traced
        out = fn(self, m, name, x)
        if self.verify and fn in _COMPOSITES:
            self._verify(m, name, x, out)
        return out

    def _verify(self, m: nn.Module, name: str, x: _Value, out: _Value) -> None:
        _reset_spikingjelly(m)
        want = m(x.tensor)
        _reset_spikingjelly(m)
        if want.shape != out.tensor.shape or not torch.equal(want, out.tensor):
            _fail(
                name,
                m,
                "the exported structure does not reproduce the module's forward"
                " (a subclass with another forward?)",
            )


def _join(name: str, child: str) -> str:
    return f"{name}.{child}" if name else child


def _per_step(m: nn.Module, t: torch.Tensor) -> torch.Tensor:
    """A stateless layer on ``[T, B, ...]``: multi-step modules as they are, others per step."""
    if isinstance(m, TDBN1d | TDBN2d) or getattr(m, "step_mode", None) == "m":
        return m(t)
    return seq_forward(m, t)


def _reset_spikingjelly(m: nn.Module) -> None:
    for sub in m.modules():
        reset = getattr(sub, "reset", None)
        if callable(reset) and type(sub).__module__.startswith("spikingjelly"):
            reset()


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy().copy()


# ----------------------------------------------------------------------------- leaf converters


def _conv2d(b: _Builder, m: nn.Conv2d, name: str, x: _Value) -> _Value:
    if x.grid is not None or x.tensor.ndim != 5:
        _fail(name, m, f"expects time-first maps [T, B, C, H, W], got {tuple(x.tensor.shape)}")
    if m.padding_mode != "zeros":
        _fail(name, m, f"padding_mode {m.padding_mode!r}: NIR convolutions pad with zeros")
    y = _per_step(m, x.tensor)
    w = _np(m.weight)
    bias = _np(m.bias) if m.bias is not None else np.zeros(w.shape[0], w.dtype)
    padding = m.padding if isinstance(m.padding, str) else tuple(m.padding)
    node = nir.Conv2d(
        input_shape=tuple(x.tensor.shape[-2:]),
        weight=w,
        stride=tuple(m.stride),
        padding=padding,
        dilation=tuple(m.dilation),
        groups=m.groups,
        bias=bias,
    )
    n = b.node(name, node, x, name)
    b.place(name, type(m).__name__, "core", (n,))
    return b.value(y, (n,))


def _linear(b: _Builder, m: nn.Linear, name: str, x: _Value) -> _Value:
    y = m(x.tensor)  # any leading dims; SpikingJelly's multi-step Linear gives the same
    w = _np(m.weight)  # [out, in]
    bias = None if m.bias is None else _np(m.bias)
    if x.grid is not None:  # tokens: a 1x1 convolution over the [C, h, w] grid
        node = nir.Conv2d(
            input_shape=x.grid,
            weight=w[:, :, None, None],
            stride=(1, 1),
            padding=(0, 0),
            dilation=(1, 1),
            groups=1,
            bias=bias if bias is not None else np.zeros(w.shape[0], w.dtype),
        )
        note = "token-wise Linear as a 1x1 Conv2d on the token grid"
    else:
        lead = x.nir_shape()[:-1]
        if lead:  # the same weights at every leading index (batched NIR weight)
            w = np.broadcast_to(w, (*lead, *w.shape)).copy()
            bias = None if bias is None else np.broadcast_to(bias, (*lead, w.shape[-2])).copy()
        node = nir.Linear(weight=w) if bias is None else nir.Affine(weight=w, bias=bias)
        note = f"weights repeated over leading dims {lead}" if lead else ""
    n = b.node(name, node, x, name)
    b.place(name, type(m).__name__, "core", (n,), note)
    return b.value(y, (n,), x.grid)


def _batchnorm(b: _Builder, m: nn.modules.batchnorm._BatchNorm, name: str, x: _Value) -> _Value:
    y = _per_step(m, x.tensor)
    if m.running_mean is None or m.running_var is None:
        _fail(name, m, "no running statistics (track_running_stats=False): nothing fixed to fold")
    src = x.terms[0] if len(x.terms) == 1 else None
    if src is None or not isinstance(b.nodes[src], _WEIGHTED) or b.consumers[src] != 0:
        what = "a sum" if src is None else f"{type(b.nodes[src]).__name__} node {src!r}"
        _fail(
            name,
            m,
            f"BatchNorm is folded into the conv/linear layer before it, whose"
            f" output feeds nothing else; here it follows {what}",
        )
    b._check_fresh(x, name)
    # channel axis of the BN in the NIR layout of its input
    shape = x.nir_shape()
    if isinstance(m, TDBN1d):
        axis = 0 if x.grid is not None else len(shape) - 1
    else:
        axis = 0
    if shape[axis] != m.num_features:
        _fail(name, m, f"{m.num_features} channels, but axis {axis} of {shape} does not match")
    mean, var = m.running_mean.double(), m.running_var.double()
    gamma = m.weight.double() if m.weight is not None else torch.ones_like(mean)
    beta = m.bias.double() if m.bias is not None else torch.zeros_like(mean)
    g = (gamma / torch.sqrt(var + m.eps)).numpy()  # per channel
    shift = beta.numpy() - mean.numpy() * g
    view = [1] * len(shape)
    view[axis] = -1
    g_full = np.broadcast_to(g.reshape(view), shape)
    shift_full = np.broadcast_to(shift.reshape(view), shape)
    old = b.nodes[src]
    dtype = np.asarray(old.weight).dtype
    if isinstance(old, nir.Conv1d | nir.Conv2d):
        if axis != 0:
            _fail(name, m, "a convolution can only be normalised per output channel")
        w = np.asarray(old.weight, np.float64) * g.reshape(-1, *[1] * (old.weight.ndim - 1))
        bias = np.asarray(old.bias, np.float64) * g + shift
        kwargs = {k: getattr(old, k) for k in ("stride", "padding", "dilation", "groups")}
        new = type(old)(
            input_shape=old.input_shape, weight=w.astype(dtype), bias=bias.astype(dtype), **kwargs
        )
    else:
        w = np.asarray(old.weight, np.float64)
        if w.ndim == 2 and len(shape) == 1:
            w_new = w * g[:, None]
        else:
            w_new = w * g_full[..., None]
        b_old = np.asarray(getattr(old, "bias", 0.0), np.float64)
        bias = np.broadcast_to(b_old, shape) * g_full + shift_full
        new = nir.Affine(weight=w_new.astype(dtype), bias=bias.astype(dtype))
    new.metadata = {**(old.metadata or {}), "folded": name}
    b.nodes[src] = new
    b.version[src] += 1
    b.place(name, type(m).__name__, "folded", (src,), "eval statistics folded into weights/bias")
    return b.value(y, (src,), x.grid)


def _pool(b: _Builder, m: nn.AvgPool2d, name: str, x: _Value) -> _Value:
    if x.grid is not None or x.tensor.ndim != 5:
        _fail(name, m, f"expects time-first maps [T, B, C, H, W], got {tuple(x.tensor.shape)}")
    k = np.array(nn.modules.utils._pair(m.kernel_size))
    s = np.array(nn.modules.utils._pair(m.stride if m.stride is not None else m.kernel_size))
    p = np.array(nn.modules.utils._pair(m.padding))
    if m.ceil_mode:
        _fail(name, m, "ceil_mode=True: NIR pooling windows are floor-sized")
    y = _per_step(m, x.tensor)
    if m.divisor_override == 1:
        node, note = nir.SumPool2d(kernel_size=k, stride=s, padding=p), "sum pooling"
    elif m.divisor_override is not None:
        _fail(name, m, f"divisor_override={m.divisor_override}: NIR has sum and mean pooling")
    elif p.any() and not m.count_include_pad:
        _fail(
            name,
            m,
            "count_include_pad=False with padding: NIR's AvgPool2d divides by the full kernel area",
        )
    else:
        node, note = nir.AvgPool2d(kernel_size=k, stride=s, padding=p), ""
    n = b.node(name, node, x, name)
    b.place(name, type(m).__name__, "core", (n,), note)
    return b.value(y, (n,))


def _maxpool(b: _Builder, m: nn.Module, name: str, x: _Value) -> _Value:
    _fail(name, m, "max pooling has no NIR node (use AvgPool2d or a strided conv)")


def _flatten(b: _Builder, m: nn.Flatten, name: str, x: _Value) -> _Value:
    return _flatten_dims(b, m, name, x, m.start_dim, m.end_dim, 1, lambda: _per_step(m, x.tensor))


def _flatten_dims(
    b: _Builder,
    m: nn.Module,
    name: str,
    x: _Value,
    start: int,
    end: int,
    lead: int,
    value: Callable[[], torch.Tensor] | None = None,
) -> _Value:
    """``nir.Flatten`` for torch dims counted after ``lead`` leading dims (1: ``[T*B, ...]``
    inside a per-step layer, 2: ``[T, B, ...]`` in a traced forward); ``value()`` computes the
    model's output (default: ``flatten`` of the input).
    """
    if x.grid is not None:
        _fail(name, m, "flattening transformer tokens: their NIR layout [C, h, w] differs from"
              " the model's [N, C]")  # fmt: skip
    ndim = x.tensor.ndim - 2 + lead
    s = start + ndim if start < 0 else start
    e = end + ndim if end < 0 else end
    if s < lead:
        _fail(name, m, "flattens the batch or time dimension")
    y = value() if value is not None else x.tensor.flatten(s - lead + 2, e - lead + 2)
    node = nir.Flatten(
        input_type={"input": np.array(x.nir_shape())}, start_dim=s - lead, end_dim=e - lead
    )
    n = b.node(name, node, x, name)
    b.place(name, "Flatten" if lead == 1 else "flatten", "core", (n,))
    return b.value(y, (n,))


def _identity(b: _Builder, m: nn.Module, name: str, x: _Value) -> _Value:
    b.place(name, type(m).__name__, "none", (), "identity in eval mode")
    return x


def _lif(b: _Builder, m: LIF, name: str, x: _Value) -> _Value:
    try:
        node = lif_to_nir(m.params, x.nir_shape(), b.dt, b.dtype)
    except ExportError as err:
        _fail(name, m, str(err))
    node.metadata = {
        "tau_steps": m.params.tau,
        "model_v_threshold": m.params.v_threshold,
        "threshold": THRESHOLD_CONVENTION,
    }
    out = b.value(m(x.tensor), (b.node(name, node, x, name),), x.grid)
    b.place(name, type(m).__name__, "core", out.terms)
    b._record(out.terms[0], out)
    return out


def _sj_neuron(b: _Builder, m: nn.Module, name: str, x: _Value) -> _Value:
    from spikingjelly.activation_based import neuron

    if getattr(m, "step_mode", "s") != "m":
        _fail(
            name,
            m,
            "single-step SpikingJelly neuron: export runs time-first [T, B, ...]"
            " sequences; set step_mode='m' (functional.set_step_mode(net, 'm'))",
        )
    if m.v_reset is None:
        _fail(name, m, "soft reset (v_reset=None) has no NIR form; use a hard reset")
    shape = x.nir_shape()
    if type(m) is neuron.LIFNode:
        p = LIFParams(
            tau=float(m.tau),
            v_threshold=float(m.v_threshold),
            v_reset=float(m.v_reset),
            decay_input=bool(m.decay_input),
        )
        node = lif_to_nir(p, shape, b.dt, b.dtype)
    elif type(m) is neuron.IFNode:
        node = nir.IF(
            r=np.full(shape, 1.0 / b.dt),
            v_threshold=np.broadcast_to(nir_threshold(float(m.v_threshold), b.dtype), shape).copy(),
            v_reset=np.full(shape, float(m.v_reset)),
        )
    else:
        _fail(
            name, m, "no NIR mapping for this SpikingJelly neuron (LIFNode and IFNode are exported)"
        )
    node.metadata = {"threshold": THRESHOLD_CONVENTION}
    m.reset()
    y = m(x.tensor)
    m.reset()
    out = b.value(y, (b.node(name, node, x, name),), x.grid)
    b.place(name, type(m).__name__, "core", out.terms)
    b._record(out.terms[0], out)
    return out


def _sn(b: _Builder, m: SN, name: str, x: _Value) -> _Value:
    if isinstance(m, AttentionSN):
        _fail(
            name,
            m,
            "thresholds a product of two moving signals; only an ESDSA's host part computes it",
        )
    d = m._channel_dim(x.tensor)
    thr = nir_threshold(_np(m.inference_threshold()), b.dtype)  # [C]
    shape = x.nir_shape()
    if x.grid is not None:
        if d != x.tensor.ndim - 1:
            _fail(name, m, "SN on tokens must normalise the channel dimension")
        full = np.broadcast_to(thr.reshape(-1, 1, 1), shape)
    else:
        if d < 2:
            _fail(
                name, m, "its threshold varies along time or batch; NIR parameters are per neuron"
            )
        view = [1] * len(shape)
        view[d - 2] = -1
        full = np.broadcast_to(thr.reshape(view), shape)
    node = nir.Threshold(threshold=full.copy())
    node.metadata = {"threshold": THRESHOLD_CONVENTION}
    out = b.value(m(x.tensor), (b.node(name, node, x, name),), x.grid)
    b.place(name, type(m).__name__, "core", out.terms, "memoryless threshold, eval V_th")
    b._record(out.terms[0], out)
    return out


def _host_only(b: _Builder, m: nn.Module, name: str, x: _Value) -> _Value:
    _fail(
        name,
        m,
        "a product of two moving signals has no NIR node; it is exported as host"
        " work only inside an ESDSA",
    )


# ----------------------------------------------------------------------------- composites


def _sequential(b: _Builder, m: nn.Sequential, name: str, x: _Value) -> _Value:
    for child_name, child in m.named_children():
        x = b.convert(child, _join(name, child_name), x)
    return x


def _conv_tdbn(b: _Builder, m: ConvTDBN, name: str, x: _Value) -> _Value:
    return b.convert(m.bn, _join(name, "bn"), b.convert(m.conv, _join(name, "conv"), x))


def _ms_block(b: _Builder, m: MSBlock, name: str, x: _Value) -> _Value:
    j = lambda s: _join(name, s)  # noqa: E731
    b.place(name, type(m).__name__, "core", (), "membrane shortcut: fan-in edges")
    s = b.convert(m.lif1, j("lif1"), x)
    y = b.convert(m.bn1, j("bn1"), b.convert(m.conv1, j("conv1"), s))
    y = b.convert(m.bn2, j("bn2"), b.convert(m.conv2, j("conv2"), b.convert(m.lif2, j("lif2"), y)))
    short = x if m.shortcut is None else b.convert(m.shortcut, j("shortcut"), s)
    return b.add(y, short, j("add"))


def _spike_projection(b: _Builder, m: SpikeProjection, name: str, x: _Value) -> _Value:
    y = b.convert(m.bn, _join(name, "bn"), b.convert(m.fc, _join(name, "fc"), x))
    return b.convert(m.sn, _join(name, "sn"), y)


def _port_out(b: _Builder, v: _Value, name: str, consumer: str) -> str:
    v = b.materialize(v)
    n = b.node(name, nir.Output(output_type={"output": np.array(v.nir_shape())}), v)
    b.partition.boundary.append(
        BoundaryTensor(n, "core->host", v.nir_shape(), v.terms[0], consumer)
    )
    return n


def _esdsa(b: _Builder, m: ESDSA, name: str, u: _Value) -> _Value:
    j = lambda s: _join(name, s)  # noqa: E731
    if u.grid is None:
        _fail(name, m, "ESDSA export needs the token grid (build tokens from a conv map)")
    b.place(name, type(m).__name__, "split", (), "projections on cores, products on the host")
    s = b.convert(m.lif, j("lif"), u)
    q, k, v = (b.convert(getattr(m, p), j(p), s) for p in ("q", "k", "v"))
    ports = tuple(
        _port_out(b, t, j(f"host.{p}"), name) for t, p in zip((q, k, v), "qkv", strict=True)
    )
    op = HostESDSA(
        name,
        ports,
        b._unique(j("host.out")),
        m.heads,
        u.grid,
        m.attn_sn.inference_threshold() / m.attn_sn.scale,
        m.out_sn.inference_threshold(),
    )
    o_nir = op(q.nir_tensor(), k.nir_tensor(), v.nir_tensor())
    shape = (int(o_nir.shape[2]), *u.grid)
    n_in = b.node(op.output, nir.Input(input_type={"input": np.array(shape)}), None)
    o = b.value(_tokens(o_nir), (n_in,), u.grid)
    b._record(n_in, o)
    b.host_ops.append(op)
    b.partition.host_ops.append(name)
    for sub in ("qk", "attn_sn", "av", "out_sn"):
        b.place(j(sub), type(getattr(m, sub)).__name__, "host", (), "E-SDSA product/threshold")
    y = b.convert(m.proj_bn, j("proj_bn"), b.convert(m.proj, j("proj"), o))
    b.partition.boundary.append(BoundaryTensor(n_in, "host->core", shape, name, ",".join(y.terms)))
    return b.add(u, y, j("add"))


def _mlp(b: _Builder, m: SpikingMLP, name: str, u: _Value) -> _Value:
    j = lambda s: _join(name, s)  # noqa: E731
    y = b.convert(m.bn1, j("bn1"), b.convert(m.fc1, j("fc1"), b.convert(m.lif1, j("lif1"), u)))
    y = b.convert(m.bn2, j("bn2"), b.convert(m.fc2, j("fc2"), b.convert(m.lif2, j("lif2"), y)))
    return b.add(u, y, j("add"))


def _transformer_block(b: _Builder, m: SpikingTransformerBlock, name: str, u: _Value) -> _Value:
    return b.convert(m.mlp, _join(name, "mlp"), b.convert(m.attn, _join(name, "attn"), u))


def _visual(b: _Builder, m: SpikingVisualEncoder, name: str, x: _Value) -> _Value:
    """Time-first clip value -> final LIF spikes (tokens); the head stays on the host."""
    j = lambda s: _join(name, s)  # noqa: E731
    x = b.convert(m.stem, j("stem"), x)
    for i, stage in enumerate(m.stages):
        x = b.convert(stage, j(f"stages.{i}"), x)
    h, w = x.tensor.shape[-2:]
    u = _Value(_tokens(x.tensor), x.terms, x.versions, (int(h), int(w)), x.label)
    u = b.convert(m.blocks, j("blocks"), u)
    return b.convert(m.final_lif, j("final_lif"), u)


def _convert_traced(b: _Builder, m: nn.Module, name: str, x: _Value) -> _Value:
    """Modules without a converter: trace ``forward`` with torch.fx.

    Exported operations: calls of submodules (directly or through ``seq_forward``), additions
    of two tensors (fan-in edges) and flatten; anything else raises, naming the operation.
    """

    class Tracer(torch.fx.Tracer):
        def is_leaf_module(self, mod: nn.Module, qualname: str) -> bool:
            if _lookup(type(mod)) is not None:
                return True
            origin = type(mod).__module__
            return origin.startswith(("torch.nn", "spikingjelly"))

    if type(m).__module__.startswith(("torch.nn", "spikingjelly")):
        _fail(name, m, "no NIR mapping for this module type")
    try:
        graph = Tracer(autowrap_functions=(seq_forward,)).trace(m)
    except Exception as err:  # any tracing failure is reported the same way
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        _fail(
            name, m, f"no converter for this type and torch.fx cannot trace its forward ({first})"
        )
    env: dict[Any, _Value] = {}
    result = None
    qualname = {id(sub): q for q, sub in m.named_modules()}
    for node in graph.nodes:
        args = [env[a] if isinstance(a, torch.fx.Node) else a for a in node.args]
        if node.op == "placeholder":
            if env:
                _fail(name, m, "forward takes more than one input")
            env[node] = x
        elif node.op == "call_module":
            sub = m.get_submodule(node.target)
            if len(args) != 1 or not isinstance(args[0], _Value) or node.kwargs:
                _fail(name, m, f"call of {node.target!r} with other than one tensor argument")
            env[node] = b.convert(sub, _join(name, str(node.target)), args[0])
        elif node.op == "get_attr" and isinstance(_attr(m, node.target), nn.Module):
            env[node] = _attr(m, node.target)  # a submodule passed to seq_forward
        elif node.op == "call_function" and node.target is seq_forward:
            sub, val = [*args, None, None][:2]
            if id(sub) not in qualname or not isinstance(val, _Value) or node.kwargs:
                _fail(name, m, "seq_forward of other than a submodule and one tensor")
            env[node] = b.convert(sub, _join(name, qualname[id(sub)]), val)
        elif node.op == "call_function" and node.target in (operator.add, torch.add):
            if len(args) != 2 or not all(isinstance(a, _Value) for a in args) or node.kwargs:
                _fail(name, m, "only additions of two tensors become fan-in edges")
            env[node] = b.add(args[0], args[1], _join(name, node.name))
        elif (node.op == "call_function" and node.target is torch.flatten) or (
            node.op == "call_method" and node.target == "flatten"
        ):
            start = args[1] if len(args) > 1 else node.kwargs.get("start_dim", 0)
            end = args[2] if len(args) > 2 else node.kwargs.get("end_dim", -1)
            env[node] = _flatten_dims(b, m, _join(name, node.name), args[0], start, end, 2)
        elif node.op == "output":
            result = args[0]
        else:
            target = getattr(node.target, "__name__", node.target)
            _fail(
                name,
                m,
                f"operation {node.op} {target!r} has no NIR equivalent (exported:"
                " module calls, additions of two tensors, flatten)",
            )
    if not isinstance(result, _Value):
        _fail(name, m, "forward must return one tensor")
    return result


def _attr(m: nn.Module, target: str) -> Any:
    for part in target.split("."):
        m = getattr(m, part, None)
    return m


# module type -> converter; looked up along the MRO, so subclasses (SpikingJelly's layer.*)
# use the entry of their torch base class
CONVERTERS: dict[type, Callable[[_Builder, Any, str, _Value], _Value]] = {
    nn.Conv2d: _conv2d,
    nn.Linear: _linear,
    nn.modules.batchnorm._BatchNorm: _batchnorm,
    nn.AvgPool2d: _pool,
    nn.MaxPool2d: _maxpool,
    nn.Flatten: _flatten,
    nn.Identity: _identity,
    nn.Dropout: _identity,
    LIF: _lif,
    SN: _sn,
    SpikeMatmul: _host_only,
    nn.Sequential: _sequential,
    ConvTDBN: _conv_tdbn,
    MSBlock: _ms_block,
    SpikeProjection: _spike_projection,
    ESDSA: _esdsa,
    SpikingMLP: _mlp,
    SpikingTransformerBlock: _transformer_block,
}
_COMPOSITES = {  # checked against their forward (nn.Sequential is children in order)
    _conv_tdbn,
    _ms_block,
    _spike_projection,
    _esdsa,
    _mlp,
    _transformer_block,
    _convert_traced,
}


def _lookup(cls: type) -> Callable | None:
    for base in cls.__mro__:
        if base in CONVERTERS:
            return CONVERTERS[base]
        if base.__module__.startswith("spikingjelly") and base.__name__ in ("LIFNode", "IFNode"):
            return _sj_neuron
        if base.__module__.startswith("spikingjelly") and base.__name__ == "Dropout":
            return _identity
    return None


# ----------------------------------------------------------------------------- to_nir


@dataclass
class NIRExport:
    """The result of :func:`to_nir`."""

    graph: nir.NIRGraph  # the neuromorphic part (type-checked)
    partition: Partition  # modules on cores/host, boundary tensors
    host: HostProgram  # runnable host part
    dt_s: float  # time step the graph's time constants assume, seconds
    outputs: dict[str, torch.Tensor] = field(default_factory=dict)  # model outputs, example
    activations: dict[str, torch.Tensor] = field(default_factory=dict)  # node -> [T, B, ...]

    def save(self, path: str | os.PathLike) -> tuple[Path, Path]:
        """Write ``path`` (NIR, read back and type-checked) and its host program beside it."""
        nir_path = write_nir(path, self.graph)
        return nir_path, self.host.save(host_path_for(nir_path))

    def split_model(
        self, dtype: torch.dtype = torch.float32, accumulate: torch.dtype | None = None
    ) -> SplitModel:
        """The graph in :class:`~export.sim.Simulator` plus the host program (not copied)."""
        return SplitModel(self.graph, self.host, self.dt_s, dtype, accumulate)


def to_nir(
    model: nn.Module,
    example_input: torch.Tensor,
    dt: float = DT_S,
    keep_activations: bool = False,
    verify: bool = True,
) -> NIRExport:
    """Export the neuromorphic part of ``model`` as a NIR graph, with its partition and host.

    ``example_input``: for an :class:`FSVE` or :class:`SpikingVisualEncoder` a clip batch
    ``[B, K, F, H, W]``; otherwise a time-first ``[T, B, ...]`` tensor. It fixes the shapes and
    gives the reference values (``outputs``, and with ``keep_activations`` the model's value of
    every neuron node and host input in NIR layout, bool where binary). Runs in eval mode
    (BN/SN fixed statistics) and restores the modules' modes afterwards. ``verify`` checks that
    every composite block's exported structure reproduces its forward bit for bit.
    Unsupported modules raise :class:`ExportError` naming the module and the reason.
    """
    if not (isinstance(dt, int | float) and math.isfinite(dt) and dt > 0):
        raise ValueError(f"dt must be a finite number of seconds > 0, got {dt!r}")
    modes = {mod: mod.training for mod in model.modules()}
    model.eval()
    try:
        with torch.no_grad():
            return _to_nir(model, example_input, float(dt), keep_activations, verify)
    finally:
        for mod, training in modes.items():
            mod.training = training


def _to_nir(model, x0, dt, keep, verify) -> NIRExport:
    visual = model.visual if isinstance(model, FSVE) else model
    prefix = "visual" if isinstance(model, FSVE) else ""
    b = _Builder(dt, keep, verify, prefix)
    weight = next((p for p in model.parameters()), None)
    if weight is not None and weight.dtype == torch.float64:
        b.dtype = np.float64
    if isinstance(visual, SpikingVisualEncoder):
        x = visual.check_spikes(torch.as_tensor(x0))  # [T, B, F, H, W]
        layout = "clip"
    else:
        x = torch.as_tensor(x0)
        if x.ndim < 3:
            raise ValueError(f"example_input must be time-first [T, B, ...], got {tuple(x.shape)}")
        if not x.dtype.is_floating_point:
            x = x.to(weight.dtype if weight is not None else torch.float32)
        layout = "time_first"
    n_in = b.node("input", nir.Input(input_type={"input": np.array(x.shape[2:])}), None)
    v = b.value(x, (n_in,))
    b._record(n_in, v, spikes_only=True)
    outputs: dict[str, torch.Tensor] = {}
    if isinstance(visual, SpikingVisualEncoder):
        feats = _visual(b, visual, "", v)
        port = _port_out(b, feats, "features", "readout")
        readout = HostReadout(
            "readout", (port,), "embedding", feats.grid, visual.proj.weight, visual.proj.bias
        )
        emb = readout(feats.nir_tensor())
        want = visual.forward_head(feats.tensor)
        if verify and not torch.equal(emb, want):
            _fail("proj", visual.proj, "the host readout does not reproduce forward_head")
        if verify:
            full = visual(torch.as_tensor(x0))
            if not torch.equal(full, emb):
                _fail(prefix, visual, "the exported structure does not reproduce encode_video")
        b.host_ops.append(readout)
        b.partition.host_ops.append("readout")
        b.place(
            "proj",
            type(visual.proj).__name__,
            "host",
            (),
            "readout: rate = mean over time and tokens, then Linear",
        )
        outputs["embedding"] = emb
        if isinstance(model, FSVE):
            for sub in ("text", "logit_scale"):
                b.partition.modules.append(
                    ModulePlacement(
                        sub,
                        type(getattr(model, sub)).__name__,
                        "host",
                        (),
                        "text side: not part of the video path",
                    )
                )
    else:
        out = b.convert(model, "", v)  # composite blocks verify themselves in convert()
        out = b.materialize(out) if len(out.terms) > 1 else out
        b.node("output", nir.Output(output_type={"output": np.array(out.nir_shape())}), out)
        outputs["output"] = out.nir_tensor()
    # dedupe placements of the same module (a block listed by its converter and children)
    metadata = {
        "producer": PRODUCER,
        "dt_s": dt,
        "threshold_convention": THRESHOLD_CONVENTION,
        "input_layout": layout,
        "host_ops": ",".join(b.partition.host_ops) or "none",
    }
    try:
        graph = nir.NIRGraph(nodes=b.nodes, edges=b.edges, metadata=metadata, type_check=True)
    except (ValueError, AssertionError, NotImplementedError) as err:
        raise ExportError(f"the exported graph fails NIR's type check: {err}") from None
    host = HostProgram(b.host_ops, n_in, layout)
    return NIRExport(graph, b.partition, host, dt, outputs, b.activations)


# ----------------------------------------------------------------------------- comparison


@dataclass(frozen=True)
class LayerComparison:
    """Spikes of one neuron node: the model's vs the split model's, over a set of inputs."""

    node: str
    module: str
    neurons: int  # per sample and step
    model_spikes: int
    sim_spikes: int
    mismatches: int  # free-running: differences including those inherited from upstream
    local_mismatches: int  # teacher-forced: the node fed with the model's upstream spikes
    max_margin: float = float("nan")  # largest |H - V_th| / |V_th| at a local mismatch


@dataclass
class SplitComparison:
    """:func:`compare_split` on one batch (``+`` adds two of them)."""

    layers: list[LayerComparison]
    model_outputs: dict[str, torch.Tensor]  # "embedding" (FSVE) or "output"
    split_outputs: dict[str, torch.Tensor]
    traffic: dict[str, tuple[int, int, int]]  # boundary node -> (spikes, sample-steps, max)

    def __add__(self, other: SplitComparison) -> SplitComparison:
        layers = []
        for a, b in zip(self.layers, other.layers, strict=True):
            layers.append(
                LayerComparison(
                    a.node,
                    a.module,
                    a.neurons,
                    a.model_spikes + b.model_spikes,
                    a.sim_spikes + b.sim_spikes,
                    a.mismatches + b.mismatches,
                    a.local_mismatches + b.local_mismatches,
                    float(np.fmax(a.max_margin, b.max_margin)),
                )
            )
        cat = lambda x, y: {k: torch.cat([x[k], y[k]]) for k in x}  # noqa: E731
        traffic = {
            k: (
                a[0] + other.traffic[k][0],
                a[1] + other.traffic[k][1],
                max(a[2], other.traffic[k][2]),
            )
            for k, a in self.traffic.items()
        }
        return SplitComparison(
            layers,
            cat(self.model_outputs, other.model_outputs),
            cat(self.split_outputs, other.split_outputs),
            traffic,
        )


def compare_split(
    model: nn.Module,
    split: SplitModel,
    x: torch.Tensor,
    boundary: Iterable[str] = (),
    local: bool = True,
) -> SplitComparison:
    """Run ``model`` and ``split`` on ``x``; count spike mismatches per neuron node.

    Free-running counts include mismatches inherited from upstream layers; local counts feed
    every node the model's own upstream spikes (``clamp``), so they isolate each node's
    arithmetic. ``boundary`` names port nodes whose spike traffic to total.
    """
    ref = to_nir(model, x, split.sim.dt, keep_activations=True, verify=False)
    free = split.run(x)
    forced = split.run(x, clamp=ref.activations) if local else free
    rows = []
    for name in ref.activations:  # forward order
        if name not in split.sim.nodes or not isinstance(split.sim.nodes[name], NEURON_TYPES):
            continue
        want = ref.activations[name].to(free[name].dtype)
        node = split.sim.nodes[name]
        mod = (node.metadata or {}).get("module", name)
        mod = mod.decode() if isinstance(mod, bytes) else str(mod)
        rows.append(
            LayerComparison(
                name,
                mod,
                int(np.prod(want.shape[2:])),
                int(want.sum()),
                int(free[name].sum()),
                int((free[name] != want).sum()),
                int((forced[name] != want).sum()),
            )
        )
    if local and any(r.local_mismatches for r in rows):
        margins = _margins(split, x, ref.activations, [r.node for r in rows if r.local_mismatches])
        rows = [dataclasses.replace(r, max_margin=margins.get(r.node, r.max_margin)) for r in rows]
    traffic = {}
    for name in boundary:
        t = free[name]
        per = t.flatten(2).sum(-1)  # [T, B] spikes per sample and step
        traffic[name] = (int(per.sum()), int(per.numel()), int(per.max()))
    sim_out = {k: free[k] for k in ref.outputs}
    return SplitComparison(rows, ref.outputs, sim_out, traffic)


def _margins(
    split: SplitModel, x: torch.Tensor, ref: Mapping[str, torch.Tensor], names: list[str]
) -> dict[str, float]:
    """Largest ``|H - V_th| / |V_th|`` where a teacher-forced node disagrees with the model.

    ``H`` is the value the simulator compared with the threshold (LIF/IF: the membrane before
    reset; Threshold: its input), rebuilt from the node's recorded inputs and state.
    """
    sim = split.sim
    preds = {p for n in names for p in sim.preds[n]}
    stateful = [n for n in names if isinstance(sim.nodes[n], nir.LIF | nir.IF)]
    rec = split.run(x, record=set(names) | preds, clamp=ref, states=stateful)
    out = {}
    dtype = sim.dtype
    param = lambda a: torch.as_tensor(np.asarray(a, np.float64), dtype=dtype)  # noqa: E731
    for n in names:
        node = sim.nodes[n]
        xin = sum(ref[p].to(dtype) if p in ref else rec[p] for p in sim.preds[n])
        if isinstance(node, nir.Threshold):
            h, thr = xin, param(node.threshold)
        elif isinstance(node, nir.LIF | nir.IF):
            v = rec[f"{n}.v"]
            rest = node.v_leak if isinstance(node, nir.LIF) else node.v_reset
            v_prev = torch.cat([param(rest).expand_as(v[:1]), v[:-1]])
            if isinstance(node, nir.LIF):
                tau = param(np.asarray(node.tau, np.float64) / sim.dt)
                h = v_prev + ((param(node.v_leak) - v_prev) + param(node.r) * xin) / tau
            else:
                h = v_prev + param(np.asarray(node.r, np.float64) * sim.dt) * xin
            thr = param(node.v_threshold)
        else:
            continue
        wrong = rec[n] != ref[n].to(dtype)
        rel = ((h - thr).abs() / thr.abs().clamp_min(1e-30)).expand_as(wrong)[wrong]
        out[n] = float(rel.max()) if rel.numel() else float("nan")
    return out


# ----------------------------------------------------------------------------- report


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
        if isinstance(node, _WEIGHTED):
            weights += int(np.asarray(node.weight).size)
    return {
        "nodes": len(graph.nodes),
        "edges": len(graph.edges),
        "types": types,
        "neurons": neurons,
        "weights": weights,
    }


def _table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "  (none)\n"
    cols = list(rows[0])
    text = [[str(r[c]) for c in cols] for r in rows]
    width = [max(len(c), *(len(t[i]) for t in text)) for i, c in enumerate(cols)]

    def line(vals: list[str]) -> str:
        return ("  " + "  ".join(v.ljust(w) for v, w in zip(vals, width, strict=True))).rstrip()

    return "\n".join([line(cols), line(["-" * w for w in width]), *map(line, text)]) + "\n"


def module_rows(partition: Partition) -> list[dict[str, Any]]:
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


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    _atomic_write(path, csv_text(rows).encode())


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


# ----------------------------------------------------------------------------- CLI

EXIT_USAGE = 2
DEFAULT_TEMPLATE = "a video of an object {}"  # zero-shot prompt of fsve.eval


def clip_batches(dataset: Any, samples: int, batch_size: int) -> Iterable[dict[str, Any]]:
    from fsve.data.dataset import collate

    for start in range(0, samples, batch_size):
        yield collate([dataset[i] for i in range(start, min(start + batch_size, samples))])


def class_prompt_embeddings(model: FSVE, ckpt: Mapping[str, Any], classes: Sequence[str]):
    from fsve.models.text import WordTokenizer

    if not ckpt.get("tokenizer") or not classes:
        return None
    tok = WordTokenizer.from_dict(ckpt["tokenizer"])
    tokens = tok.encode(
        [DEFAULT_TEMPLATE.format(c) for c in classes], model.text.cfg.context_length
    )
    with torch.no_grad():
        return F.normalize(model.encode_text(tokens), dim=-1)  # [classes, D]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m export.nir",
        description="Export an FSVE checkpoint to NIR (+ host program and partition report).",
    )
    p.add_argument("checkpoint", type=Path, help="FSVE checkpoint (.pt)")
    p.add_argument("out", type=Path, help="NIR file to write (the host program goes beside it)")
    p.add_argument(
        "--report",
        type=Path,
        default=None,
        help="partition report (text; CSV tables beside it). Default OUT_partition.txt",
    )
    p.add_argument("--data", type=Path, default=Path("data/synth"), help="dataset folder")
    p.add_argument("--split", default="test", help="split measured (default: test)")
    p.add_argument("--samples", type=int, default=None, help="clips measured (default: all)")
    p.add_argument("--batch-size", type=int, default=8, help="clips per simulated batch")
    p.add_argument(
        "--accumulate",
        choices=("float32", "float64"),
        default="float64",
        help="dtype of the simulator's synaptic sums (neurons stay float32); float64 (default)"
        " rounds every synaptic current from its exact sum",
    )
    p.add_argument(
        "--no-verify",
        action="store_true",
        help="measure traffic only; skip the spike-by-spike comparison",
    )
    args = p.parse_args(argv)
    try:
        return _run(args)
    except (ValueError, FileNotFoundError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE


def _run(args: argparse.Namespace) -> int:
    from fsve.checkpoint import load_model
    from fsve.data.dataset import SpikeDataset, WindowSpec

    if args.batch_size < 1 or (args.samples is not None and args.samples < 1):
        raise ValueError("--batch-size and --samples must be >= 1")
    if args.out.suffix != ".nir":
        raise ValueError(f"OUT must end in .nir, got {args.out}")
    model, ckpt = load_model(args.checkpoint, kind="fsve")
    cfg = model.cfg
    if not (args.data / "manifest.csv").is_file():
        raise FileNotFoundError(
            f"{args.data}: no dataset (the traffic is measured on real clips; make one with"
            " `python -m fsve.data synth --out data/synth`)"
        )
    window = WindowSpec(num_blocks=cfg.num_blocks, radius=cfg.block_frames // 2)
    dataset = SpikeDataset(args.data, args.split, window=window)
    sizes = set(zip(dataset.table["height"], dataset.table["width"], strict=True))
    if sizes != {(cfg.height, cfg.width)}:
        raise ValueError(
            f"{args.data}: frames {sorted(sizes)} but the model expects {cfg.height}x{cfg.width}"
        )
    samples = len(dataset) if args.samples is None else min(args.samples, len(dataset))
    t0 = time.perf_counter()
    first = next(iter(clip_batches(dataset, min(samples, args.batch_size), args.batch_size)))
    export = to_nir(model, first["spikes"])
    nir_path, host_file = export.save(args.out)
    t_export = time.perf_counter() - t0
    acc = torch.float64 if args.accumulate == "float64" else torch.float32
    split = SplitModel.load(nir_path, accumulate=acc)
    boundary = [t.name for t in export.partition.boundary]
    classes = class_prompt_embeddings(model, ckpt, dataset.class_names)
    total: SplitComparison | None = None
    labels = []
    t1 = time.perf_counter()
    for batch in clip_batches(dataset, samples, args.batch_size):
        res = compare_split(model, split, batch["spikes"], boundary, local=not args.no_verify)
        total = res if total is None else total + res
        labels.append(batch["label"])
    t_sim = time.perf_counter() - t1
    labels_t = torch.cat(labels)
    summary = graph_summary(export.graph)
    report = report_paths(args.report or args.out.with_name(args.out.stem + "_partition.txt"))
    mods, bnd = module_rows(export.partition), boundary_rows(export.partition, total.traffic)
    layers = layer_rows(total.layers)
    emb_m, emb_s = total.model_outputs["embedding"], total.split_outputs["embedding"]
    lines = [
        f"NIR export of {args.checkpoint}",
        f"graph        {nir_path}  ({summary['nodes']} nodes, {summary['edges']} edges:"
        f" {', '.join(f'{k} {v}' for k, v in sorted(summary['types'].items()))})",
        f"host program {host_file}  (ops: {', '.join(export.partition.host_ops)})",
        "NIR subgraphs 1: one graph; the host reads its Output ports and feeds its Input ports"
        " within each step",
        f"dt           {export.dt_s:g} s; LIF: tau = tau_steps*dt, r = 1 (decay_input) or"
        " tau_steps, v_leak = v_reset = V_r",
        f"thresholds   {THRESHOLD_CONVENTION}",
        f"neurons      {sum(summary['neurons'].values())} on cores ("
        + ", ".join(f"{k} {v}" for k, v in summary["neurons"].items())
        + f"); weights stored {summary['weights']}",
        f"measured on  {samples} clips of {args.data} {args.split}, T = {cfg.num_blocks} steps"
        f" (export {t_export:.1f} s, split simulation + comparison {t_sim:.1f} s)",
        "",
        "Modules",
        _table(mods),
        "Boundary tensors (spikes per sample and step)",
        _table(bnd),
    ]
    if not args.no_verify:
        mism = sum(r.mismatches for r in total.layers)
        spikes = sum(r.model_spikes for r in total.layers)
        lines += [
            "Equivalence: model vs split model (NIR graph in export.sim with float32 neurons and"
            f" {args.accumulate} synaptic sums, + host program). mismatches: free-running;"
            " local: each layer fed the model's own upstream spikes; max_margin: largest"
            " |H - V_th|/|V_th| at a local mismatch",
            _table(layers),
            f"spikes {spikes}, mismatches {mism} ({mism / max(spikes, 1):.2e} of all spikes),"
            f" local mismatches {sum(r.local_mismatches for r in total.layers)}",
            f"embedding max |model - split| = {float((emb_m - emb_s).abs().max()):.3g}",
        ]
        if classes is not None:
            pm = (F.normalize(emb_m, dim=-1) @ classes.T).argmax(-1)
            ps = (F.normalize(emb_s, dim=-1) @ classes.T).argmax(-1)
            lines.append(
                f"zero-shot classes ('{DEFAULT_TEMPLATE}'): identical for"
                f" {int((pm == ps).sum())}/{len(pm)} clips; top-1 model"
                f" {100 * float((pm == labels_t).float().mean()):.1f}%, split"
                f" {100 * float((ps == labels_t).float().mean()):.1f}%"
            )
    text = "\n".join(lines) + "\n"
    _atomic_write(report["text"], text.encode())
    _write_csv(report["modules"], mods)
    _write_csv(report["boundary"], bnd)
    if not args.no_verify:
        _write_csv(report["layers"], layers)
    print(text, end="")
    print(f"wrote {nir_path}, {host_file}, {report['text']} (+ CSV tables)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
