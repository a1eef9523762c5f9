"""The simulator: a NIR graph compiled into kernels once, run over whole sequences."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nir
import numpy as np
import torch

from export.graph import (
    DT_S,
    NEURON_TYPES,
    flatten_graph,
    port_shape,
    read_nir,
    topological_order,
)
from export.sim.kernels import KERNELS, Kernel, KernelContext


@dataclass(frozen=True)
class HostCall:
    """A graph Input computed during the run from other nodes' outputs (host work of a split).

    ``fn`` receives ``{name: output [T, B, ...]}`` for the node names in ``needs`` and returns
    the Input's value ``[T, B, *shape]``. The simulator runs every node ``needs`` depends on
    first, so ``needs`` acts as extra edges into the Input.
    """

    needs: tuple[str, ...]  # node names whose outputs fn reads
    fn: Callable[[Mapping[str, torch.Tensor]], torch.Tensor]


class Simulator:
    """A NIR graph compiled once into kernels; :meth:`run` simulates batches of inputs.

    ``graph`` is a ``nir.NIRGraph`` or a path to a NIR file; ``dt`` in seconds. ``dtype``
    (float32 or float64) holds neuron states and the values on edges. ``accumulate`` (default:
    ``dtype``) is the dtype of synaptic sums (Affine, Linear, Conv, pooling), each rounded to
    ``dtype`` afterwards: float64 makes every synaptic current the correctly rounded value of
    its exact sum, as integer accumulators of hardware would, at about 3x the cost.
    """

    def __init__(
        self,
        graph: nir.NIRGraph | str | Path,
        dt: float = DT_S,
        dtype: torch.dtype = torch.float32,
        device: str | torch.device = "cpu",
        accumulate: torch.dtype | None = None,
    ) -> None:
        source = graph if isinstance(graph, str | Path) else None
        if source is not None:
            graph = read_nir(source)
        if not isinstance(graph, nir.NIRGraph):
            raise ValueError(f"expected a nir.NIRGraph or a file, got {type(graph).__name__}")
        if not (isinstance(dt, int | float) and np.isfinite(dt) and dt > 0):
            raise ValueError(f"dt must be a finite number of seconds > 0, got {dt!r}")
        accumulate = dtype if accumulate is None else accumulate
        for what, value in (("dtype", dtype), ("accumulate", accumulate)):
            if value not in (torch.float32, torch.float64):
                raise ValueError(f"{what} must be torch.float32 or torch.float64, got {value}")
        self.dt, self.dtype, self.device = float(dt), dtype, torch.device(device)
        self.accumulate = accumulate
        try:
            self._compile(graph)
        except ValueError as err:  # a graph read from a file: the message names it
            if source is None:
                raise
            raise ValueError(f"{source}: {err}") from None

    def _compile(self, graph: nir.NIRGraph) -> None:
        """Flatten ``graph`` and build one kernel per node, in topological order."""
        self.nodes, edges = flatten_graph(graph)
        self.preds: dict[str, list[str]] = {n: [] for n in self.nodes}
        for src, dst in edges:
            self.preds[dst].append(src)
        self.kernels: dict[str, Kernel] = {}
        for name, node in self.nodes.items():
            factory = next((KERNELS[t] for t in type(node).__mro__ if t in KERNELS), None)
            if factory is None:
                raise ValueError(
                    f"node {name!r}: NIR type {type(node).__name__} is not supported by the"
                    f" simulator (supported: {', '.join(t.__name__ for t in KERNELS)})"
                )
            ctx = KernelContext(name, self.dt, self.dtype, self.device, self.accumulate)
            self.kernels[name] = factory(node, ctx)
        self.inputs = [
            n for n, node in self.nodes.items() if isinstance(node, nir.Input) and not self.preds[n]
        ]
        self.outputs = [
            n
            for n, node in self.nodes.items()
            if isinstance(node, nir.Output) and not any(n in p for p in self.preds.values())
        ]
        self.order = topological_order(self.nodes, self.preds)

    def neuron_nodes(self) -> list[str]:
        """Names of the neuron nodes (I, IF, LI, LIF, CubaLI, CubaLIF, Threshold), in order."""
        return [n for n in self.order if isinstance(self.nodes[n], NEURON_TYPES)]

    def _inputs(self, inputs: Any, host: Mapping[str, HostCall]) -> dict[str, torch.Tensor]:
        wanted = [n for n in self.inputs if n not in host]
        if isinstance(inputs, Mapping):
            unknown = sorted(set(inputs) - set(wanted))
            if unknown:
                raise ValueError(f"inputs {unknown} are not graph Input nodes of {wanted}")
            given = dict(inputs)
        else:
            if len(wanted) != 1:
                raise ValueError(
                    f"the graph has Input nodes {wanted}; pass a dict name -> [T, B, ...]"
                )
            given = {wanted[0]: inputs}
        missing = [n for n in wanted if n not in given]
        if missing:
            raise ValueError(f"no value for the graph Input nodes {missing}")
        out = {}
        for name, value in given.items():
            x = torch.as_tensor(np.asarray(value) if not torch.is_tensor(value) else value)
            out[name] = self._check_input(name, x.to(self.device, self.dtype))
        lead = {tuple(x.shape[:2]) for x in out.values()}
        if len(lead) > 1:
            raise ValueError(f"inputs disagree on [T, B]: {sorted(lead)}")
        return out

    def _check_input(self, name: str, x: torch.Tensor) -> torch.Tensor:
        shape = port_shape(self.nodes[name], "input") or port_shape(self.nodes[name], "output")
        if x.ndim < 2 or (shape is not None and tuple(x.shape[2:]) != shape):
            want = "[T, B, " + ", ".join(map(str, shape or ("...",))) + "]"
            raise ValueError(f"input {name!r} must be time-first {want}, got {tuple(x.shape)}")
        return x

    def run(
        self,
        inputs: Any,
        record: str | Iterable[str] | None = None,
        states: Iterable[str] = (),
        host: Mapping[str, HostCall] | None = None,
        clamp: Mapping[str, torch.Tensor] | None = None,
    ) -> dict[str, torch.Tensor]:
        """Simulate time-first ``inputs`` and return ``{node: output [T, B, ...]}``.

        ``inputs``: one array/tensor ``[T, B, *shape]`` for a graph with one Input node, or a
        dict Input name -> array. ``record``: ``None`` (neuron nodes and Output nodes),
        ``"all"`` or node names. ``states``: neuron nodes whose state sequences to add as
        ``"<node>.v"`` (and ``"<node>.i"`` for CubaLI/CubaLIF). ``host``: Input nodes computed
        from other outputs during the run (:class:`HostCall`). ``clamp``: node -> value
        ``[T, B, ...]`` that replaces the node's output for its successors (teacher forcing;
        the node's own record keeps the computed value), to test one layer at a time.
        """
        host = dict(host or {})
        clamp = dict(clamp or {})
        self._check_host(host, clamp)
        values = self._inputs(inputs, host)
        keep = self._recorded(record)
        state_nodes = set(states)
        for name in state_nodes:
            if name not in self.nodes or not isinstance(self.nodes[name], NEURON_TYPES[:-1]):
                raise ValueError(f"{name!r} is not a neuron node with a state")
        preds = {n: list(p) for n, p in self.preds.items()}
        for name, call in host.items():
            preds[name] = list(call.needs)
        order = topological_order(self.nodes, preds) if host else self.order
        uses = {n: 0 for n in self.nodes}
        for ps in preds.values():
            for p in ps:
                uses[p] += 1
        out: dict[str, torch.Tensor] = {}
        live: dict[str, torch.Tensor] = {}

        def release(name: str) -> None:
            uses[name] -= 1
            if uses[name] == 0 and name in live:
                del live[name]

        with torch.no_grad():
            for name in order:
                x = self._node_input(name, values, host, live, release)
                y, st = self.kernels[name](x, name in state_nodes)
                if name in keep:
                    out[name] = y
                for key, seq in st.items():
                    out[f"{name}.{key}"] = seq
                if name in clamp:
                    y = torch.as_tensor(clamp[name]).to(self.device, self.dtype)
                if uses[name]:
                    live[name] = y
        return out

    def _check_host(self, host: Mapping[str, HostCall], clamp: Mapping[str, Any]) -> None:
        for name in list(host) + list(clamp):
            if name not in self.nodes:
                raise ValueError(f"unknown node {name!r}")
        for name, call in host.items():
            if not isinstance(self.nodes[name], nir.Input) or self.preds[name]:
                raise ValueError(f"host values can feed graph Input nodes only, not {name!r}")
            for need in call.needs:
                if need not in self.nodes:
                    raise ValueError(f"host call for {name!r} needs unknown node {need!r}")

    def _recorded(self, record: str | Iterable[str] | None) -> set[str]:
        """The node names :meth:`run` returns for its ``record`` argument."""
        if record is None:
            return set(self.neuron_nodes()) | set(self.outputs)
        if isinstance(record, str):
            if record != "all":
                raise ValueError(f"record must be None, 'all' or node names, got {record!r}")
            return set(self.nodes)
        keep = set(record)
        unknown = sorted(keep - set(self.nodes))
        if unknown:
            raise ValueError(f"cannot record unknown nodes {unknown}")
        return keep

    def _node_input(
        self,
        name: str,
        values: Mapping[str, torch.Tensor],
        host: Mapping[str, HostCall],
        live: Mapping[str, torch.Tensor],
        release: Callable[[str], None],
    ) -> torch.Tensor:
        """The input of node ``name`` this run: a given or host-computed Input, or the sum of
        its predecessors' live outputs (each released once read).
        """
        if name in host:
            call = host[name]
            x = call.fn({n: live[n] for n in call.needs})
            x = self._check_input(name, torch.as_tensor(x).to(self.device, self.dtype))
            for n in call.needs:
                release(n)
            return x
        if isinstance(self.nodes[name], nir.Input) and not self.preds[name]:
            return values[name]
        if not self.preds[name]:
            raise ValueError(f"node {name!r} has no incoming edge")
        x = live[self.preds[name][0]]
        for p in self.preds[name][1:]:
            x = x + live[p]
        for p in self.preds[name]:
            release(p)
        return x


def simulate(
    graph: nir.NIRGraph | str | Path,
    inputs: Any,
    dt: float = DT_S,
    record: str | Iterable[str] | None = None,
    states: Iterable[str] = (),
    host: Mapping[str, HostCall] | None = None,
    clamp: Mapping[str, torch.Tensor] | None = None,
    dtype: torch.dtype = torch.float32,
    accumulate: torch.dtype | None = None,
) -> dict[str, torch.Tensor]:
    """Simulate a NIR graph on time-first inputs ``[T, B, ...]``; see :meth:`Simulator.run`.

    Returns ``{node name: output [T, B, ...]}`` for every neuron node and Output node (or the
    nodes in ``record``), plus ``"<node>.v"`` state sequences for the nodes in ``states``.
    """
    sim = Simulator(graph, dt, dtype, accumulate=accumulate)
    return sim.run(inputs, record, states, host, clamp)
