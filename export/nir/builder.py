"""The graph builder the converters share: NIR nodes, fan-in sums, BN-fold versions, placements.

A :class:`Value` is a tensor of the model during export with the NIR nodes whose outputs sum to
it; :class:`Builder` adds nodes and edges, materialises sums, records the model's spikes and
dispatches each module to its converter (the table of :mod:`export.nir.converters`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

import nir
import numpy as np
import torch
from torch import nn

from export.nir.errors import ExportError, fail
from export.nir.host import to_grid
from export.nir.partition import BoundaryTensor, ModulePlacement, Partition
from fsve.nn.blocks import seq_forward
from fsve.nn.norm import TDBN1d, TDBN2d


@dataclass(frozen=True)
class Value:
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
        return to_grid(self.tensor, self.grid) if self.grid is not None else self.tensor


WEIGHTED_TYPES = (nir.Conv1d, nir.Conv2d, nir.Affine, nir.Linear)


Converter = Callable[["Builder", Any, str, Value], Value]  # (builder, module, name, input)


class Builder:
    """The NIR graph under construction, its partition, host ops and recorded spikes.

    ``converter_for(type)`` gives the converter of a module type; the converters in
    ``verified`` are checked against the module's forward when ``verify`` is set.
    """

    def __init__(
        self,
        dt: float,
        keep: bool,
        verify: bool,
        prefix: str,
        converter_for: Callable[[type], Converter],
        verified: Collection[Converter] = (),
    ) -> None:
        self.dt, self.keep, self.verify, self.prefix = dt, keep, verify, prefix
        self.converter_for, self.verified = converter_for, verified
        self.nodes: dict[str, nir.NIRNode] = {}
        self.edges: list[tuple[str, str]] = []
        self.version: dict[str, int] = {}
        self.consumers: dict[str, int] = {}
        self.partition = Partition()
        self.host_ops: list[nn.Module] = []
        self.activations: dict[str, torch.Tensor] = {}
        self.dtype = np.float32

    # nodes and values
    def unique(self, name: str) -> str:
        """``name``, or ``name.1``, ``name.2``, ... if taken."""
        base, i = name or "node", 1
        while name in self.nodes or not name:
            name, i = f"{base}.{i}", i + 1
        return name

    def value(self, tensor: torch.Tensor, terms: Sequence[str], grid=None, label="") -> Value:
        terms = tuple(terms)
        return Value(tensor, terms, tuple(self.version[t] for t in terms), grid, label)

    def check_fresh(self, v: Value, name: str) -> None:
        """Raise if a term of ``v`` had a BatchNorm folded into it since ``v`` was made."""
        for t, ver in zip(v.terms, v.versions, strict=True):
            if self.version[t] != ver:
                raise ExportError(
                    f"{name}: reads the output of {t!r} as it was before a BatchNorm was folded"
                    " into it; a conv/linear output used both before and after its BatchNorm"
                    " cannot be exported"
                )

    def node(self, name: str, node: nir.NIRNode, x: Value | None, module: str = "") -> str:
        """Add ``node`` fed by the terms of ``x``; returns its (unique) name."""
        name = self.unique(name)
        if module:
            node.metadata = {**(node.metadata or {}), "module": module}
        self.nodes[name] = node
        self.version[name] = 0
        self.consumers[name] = 0
        if x is not None:
            self.check_fresh(x, name)
            for t in x.terms:
                self.edges.append((t, name))
                self.consumers[t] += 1
        return name

    def materialize(self, v: Value) -> Value:
        """A single-node value: a sum of two terms becomes an identity node ``nir.Scale(1)``."""
        if len(v.terms) == 1:
            return v
        shape = v.nir_shape()
        name = self.node(v.label or "sum", nir.Scale(scale=np.ones(shape, self.dtype)), v)
        self.place(name, "Add", "core", (name,), "identity node: a sum consumed as one value")
        return self.value(v.tensor, (name,), v.grid, v.label)

    def add(self, a: Value, b: Value, label: str) -> Value:
        """``a + b`` as fan-in: the terms of both (each side materialised if it is a sum)."""
        if a.grid != b.grid or a.nir_shape() != b.nir_shape():
            raise ExportError(f"{label}: adds values of different shapes or layouts")
        a, b = self.materialize(a), self.materialize(b)
        return self.value(a.tensor + b.tensor, a.terms + b.terms, a.grid, label)

    def place(self, module: str, type_: str, placement: str, nodes=(), note: str = "") -> None:
        full = module if not self.prefix else f"{self.prefix}.{module}" if module else self.prefix
        self.partition.modules.append(ModulePlacement(full, type_, placement, tuple(nodes), note))

    def record(self, node_name: str, v: Value, spikes_only: bool = False) -> None:
        """Keep the model's spikes at a neuron node or port (bool, NIR layout)."""
        if self.keep:
            t = v.nir_tensor()
            if not bool(((t == 0) | (t == 1)).all()):
                if spikes_only:
                    return
                raise ExportError(f"{node_name}: expected spikes, found non-binary values")
            self.activations[node_name] = t.to(torch.bool)

    def port_out(self, v: Value, name: str, consumer: str) -> str:
        """An Output port ``name`` carrying ``v`` to the host op ``consumer``."""
        v = self.materialize(v)
        n = self.node(name, nir.Output(output_type={"output": np.array(v.nir_shape())}), v)
        self.partition.boundary.append(
            BoundaryTensor(n, "core->host", v.nir_shape(), v.terms[0], consumer)
        )
        return n

    # conversion
    def convert(self, m: nn.Module, name: str, x: Value) -> Value:
        """Export module ``m`` (qualified ``name``) applied to ``x``; returns its output."""
        fn = self.converter_for(type(m))
        out = fn(self, m, name, x)
        if self.verify and fn in self.verified:
            self._verify(m, name, x, out)
        return out

    def _verify(self, m: nn.Module, name: str, x: Value, out: Value) -> None:
        reset_spikingjelly(m)
        want = m(x.tensor)
        reset_spikingjelly(m)
        if want.shape != out.tensor.shape or not torch.equal(want, out.tensor):
            fail(
                name,
                m,
                "the exported structure does not reproduce the module's forward"
                " (a subclass with another forward?)",
            )


def join(name: str, child: str) -> str:
    """The qualified name of ``child`` of module ``name``."""
    return f"{name}.{child}" if name else child


def per_step(m: nn.Module, t: torch.Tensor) -> torch.Tensor:
    """A stateless layer on ``[T, B, ...]``: multi-step modules as they are, others per step."""
    if isinstance(m, TDBN1d | TDBN2d) or getattr(m, "step_mode", None) == "m":
        return m(t)
    return seq_forward(m, t)


def reset_spikingjelly(m: nn.Module) -> None:
    """Reset the state of every SpikingJelly module in ``m``."""
    for sub in m.modules():
        reset = getattr(sub, "reset", None)
        if callable(reset) and type(sub).__module__.startswith("spikingjelly"):
            reset()


def to_numpy(t: torch.Tensor) -> np.ndarray:
    """A detached numpy copy."""
    return t.detach().cpu().numpy().copy()
