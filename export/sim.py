"""Reference float simulator for NIR graphs: forward Euler at a fixed ``dt``, batched, time-first.

``simulate(graph, inputs, dt=1e-4)`` runs any directed acyclic NIR graph (fan-in allowed, nested
``NIRGraph`` nodes flattened) on time-first inputs ``[T, B, *shape]`` and returns a dict from
node name to its recorded output ``[T, B, *shape]``: by default every neuron node (I, IF, LI,
LIF, CubaLI, CubaLIF, Threshold) and every Output node. CLI: ``python -m export.sim GRAPH.nir
--input spikes.npy``.

Semantics (one step of length ``dt`` per input row; every node of a step sees the values of the
same step, as in the NIR paper's reference simulators)::

    input of a node      x[t] = sum of the outputs of its incoming edges (edge order)
    Affine / Linear      W x[t] + b;  Scale: s * x[t];  Conv/pool/Flatten: per step
    Threshold            z[t] = 1(x[t] > threshold)                   (strict, as NIR)
    I                    v[t] = v[t-1] + dt r x[t]                     (output v)
    IF                   v = v[t-1] + dt r x[t];  z = 1(v > v_th);  v[t] = v_reset where z
    LI                   v[t] = v[t-1] + ((v_leak - v[t-1]) + r x[t]) / (tau/dt)   (output v)
    LIF                  the LI update, then z and reset as IF                    (output z)
    CubaLI(F)            i[t] = i[t-1] + (-i[t-1] + w_in x[t]) / (tau_syn/dt), then the
                         LI(F) update of v driven by i[t] (the current of the same step)
    Delay                y[t] = x[t - round(delay/dt)], 0 before the first input

The input ``x[t]`` of a neuron is the per-step value (a spike of weight ``w`` adds
``w r / (tau/dt)`` to a LIF), the convention of the field's exporters (snnTorch, Norse,
SpikingJelly) at dt = 1e-4 s. ``dt·(...)/tau`` is evaluated as ``(...)/(tau/dt)`` with ``tau/dt``
formed in float64: for the LIF layers exported by :mod:`export.nir` this repeats the arithmetic
of :func:`fsve.nn.neurons.lif_multistep` operation by operation, so spikes are bit-identical.
Initial state: ``v = v_leak`` (LI, LIF, CubaLI, CubaLIF), ``v = v_reset`` (IF), ``v = 0`` (I),
synaptic current 0. AvgPool2d divides by the full kernel area (padding counted).

Execution is whole-sequence: nodes run in topological order, each over all T steps at once
(stateless nodes fold T into the batch, neurons loop over T with vectorised updates), so a run
costs one pass over the graph. Recurrent graphs (cycles) are refused.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nir
import numpy as np
import torch
import torch.nn.functional as F

from export.graph import (
    DT_S,
    NEURON_TYPES,
    SPIKING_TYPES,
    flatten_graph,
    int_tuple,
    padding_arg,
    port_shape,
    topological_order,
)

__all__ = [
    "DT_S",
    "NEURON_TYPES",
    "HostCall",
    "Simulator",
    "main",
    "simulate",
]


@dataclass(frozen=True)
class HostCall:
    """A graph Input computed during the run from other nodes' outputs (host work of a split).

    ``fn`` receives ``{name: output [T, B, ...]}`` for the node names in ``needs`` and returns
    the Input's value ``[T, B, *shape]``. The simulator runs every node ``needs`` depends on
    first, so ``needs`` acts as extra edges into the Input.
    """

    needs: tuple[str, ...]  # node names whose outputs fn reads
    fn: Callable[[Mapping[str, torch.Tensor]], torch.Tensor]


# ----------------------------------------------------------------------------- parameters


def _f64(value: Any) -> np.ndarray:
    return np.asarray(value, dtype=np.float64)


def _param(value: Any, dtype: torch.dtype, device: torch.device) -> float | torch.Tensor:
    """A per-neuron parameter: a Python float when uniform (cheaper broadcasting), else a tensor.

    A Python float is cast to ``dtype`` by torch exactly as the tensor would be.
    """
    arr = _f64(value)
    if arr.size == 0:
        raise ValueError("empty parameter array")
    flat = arr.reshape(-1)
    if np.all(flat == flat[0]):
        return float(torch.tensor(flat[0], dtype=dtype))  # rounded to the compute dtype
    return torch.as_tensor(arr, dtype=dtype, device=device)


def _steps(tau_s: Any, dt: float, dtype: torch.dtype, device: torch.device, name: str):
    """``tau / dt`` (time constant in steps) formed in float64, then cast."""
    ratio = _f64(tau_s) / dt
    if not np.all(np.isfinite(ratio)) or np.any(ratio <= 0):
        raise ValueError(f"node {name!r}: time constants must be finite and > 0")
    return _param(ratio, dtype, device)


# ----------------------------------------------------------------------------- kernels
# A kernel maps the summed input of a node, [T, B, *shape], to its output [T, B, *shape'];
# neuron kernels also return their state sequences when asked (keep_state=True).

Kernel = Callable[[torch.Tensor, bool], tuple[torch.Tensor, dict[str, torch.Tensor]]]


def _fold(fn: Callable[[torch.Tensor], torch.Tensor], acc: torch.dtype) -> Kernel:
    """A per-step map over all steps at once (time folded into the batch), computed in ``acc``.

    The result is rounded back to the input's dtype, so each synaptic sum reaches the neurons
    in the simulation dtype.
    """

    def kernel(x: torch.Tensor, keep_state: bool) -> tuple[torch.Tensor, dict]:
        y = fn(x.flatten(0, 1).to(acc).contiguous())  # [T*B, ...], one memory layout
        return y.to(x.dtype).unflatten(0, x.shape[:2]), {}

    return kernel


def _weights(node: nir.NIRNode, ctx: _Ctx, name: str = "weight") -> torch.Tensor | None:
    value = getattr(node, name, None)
    if value is None:
        return None
    return torch.as_tensor(np.asarray(value), dtype=ctx.acc, device=ctx.device)


def _k_affine(node: nir.Affine | nir.Linear, ctx: _Ctx) -> Kernel:
    w, b = _weights(node, ctx), _weights(node, ctx, "bias")
    if w.ndim == 2:
        return lambda x, keep: (F.linear(x.to(ctx.acc), w, b).to(x.dtype), {})

    def batched(x: torch.Tensor, keep: bool) -> tuple[torch.Tensor, dict]:
        y = torch.matmul(w, x.to(ctx.acc).unsqueeze(-1)).squeeze(-1)  # W [..., out, in]
        return (y if b is None else y + b).to(x.dtype), {}

    return batched


def _k_scale(node: nir.Scale, ctx: _Ctx) -> Kernel:
    s = _param(node.scale, ctx.dtype, ctx.device)
    return lambda x, keep: (x * s, {})


def _k_conv2d(node: nir.Conv2d, ctx: _Ctx) -> Kernel:
    w, b = _weights(node, ctx), _weights(node, ctx, "bias")
    stride, dilation = int_tuple(node.stride), int_tuple(node.dilation)
    padding, groups = padding_arg(node.padding), int(np.asarray(node.groups))
    return _fold(lambda x: F.conv2d(x, w, b, stride, padding, dilation, groups), ctx.acc)


def _k_conv1d(node: nir.Conv1d, ctx: _Ctx) -> Kernel:
    w, b = _weights(node, ctx), _weights(node, ctx, "bias")
    stride, dilation = int_tuple(node.stride, 1), int_tuple(node.dilation, 1)
    padding, groups = padding_arg(node.padding, 1), int(np.asarray(node.groups))
    return _fold(lambda x: F.conv1d(x, w, b, stride, padding, dilation, groups), ctx.acc)


def _k_sumpool(node: nir.SumPool2d, ctx: _Ctx) -> Kernel:
    k, s, p = int_tuple(node.kernel_size), int_tuple(node.stride), int_tuple(node.padding)
    return _fold(
        lambda x: F.avg_pool2d(x, k, s, p, count_include_pad=True, divisor_override=1), ctx.acc
    )


def _k_avgpool(node: nir.AvgPool2d, ctx: _Ctx) -> Kernel:
    k, s, p = int_tuple(node.kernel_size), int_tuple(node.stride), int_tuple(node.padding)
    return _fold(lambda x: F.avg_pool2d(x, k, s, p, count_include_pad=True), ctx.acc)


def _k_flatten(node: nir.Flatten, ctx: _Ctx) -> Kernel:
    start, end = int(np.asarray(node.start_dim)), int(np.asarray(node.end_dim))

    def kernel(x: torch.Tensor, keep: bool) -> tuple[torch.Tensor, dict]:
        n = x.ndim - 2  # per-sample dims; NIR dims exclude the batch (and here time)
        s = start + n if start < 0 else start
        e = end + n if end < 0 else end
        return x.flatten(s + 2, e + 2), {}

    return kernel


def _k_threshold(node: nir.Threshold, ctx: _Ctx) -> Kernel:
    thr = _param(node.threshold, ctx.dtype, ctx.device)
    return lambda x, keep: ((x > thr).to(x.dtype), {})


def _k_delay(node: nir.Delay, ctx: _Ctx) -> Kernel:
    steps = np.rint(_f64(node.delay) / ctx.dt).astype(np.int64)
    if np.any(steps < 0):
        raise ValueError(f"node {ctx.name!r}: delays must be >= 0")
    d = torch.as_tensor(steps, device=ctx.device)

    def kernel(x: torch.Tensor, keep: bool) -> tuple[torch.Tensor, dict]:
        t = torch.arange(x.shape[0], device=x.device).view(-1, *([1] * d.ndim))
        src = t - d  # [T, *shape]: the step each output reads
        idx = src.clamp_min(0).unsqueeze(1).expand(x.shape[0], *x.shape[1:])
        y = torch.gather(x, 0, idx)
        return y * (src >= 0).unsqueeze(1).to(x.dtype), {}

    return kernel


def _neuron(
    ctx: _Ctx,
    update: Callable[[torch.Tensor, list[torch.Tensor]], torch.Tensor],
    init: list[float | torch.Tensor],
    names: tuple[str, ...],
) -> Kernel:
    """Loop a one-step ``update(x_t, state) -> output`` (state updated in place) over T."""

    def kernel(x: torch.Tensor, keep: bool) -> tuple[torch.Tensor, dict]:
        per = x.shape[1:]  # [B, *shape]
        state = [torch.zeros(per, dtype=x.dtype, device=x.device).add_(v) for v in init]
        out = torch.empty_like(x)
        seqs = [torch.empty_like(x) for _ in names] if keep else []
        for t in range(x.shape[0]):
            out[t] = update(x[t], state)
            for seq, s in zip(seqs, state, strict=False):
                seq[t] = s
        return out, dict(zip(names, seqs, strict=True)) if keep else {}

    return kernel


def _k_i(node: nir.I, ctx: _Ctx) -> Kernel:
    gain = _param(_f64(node.r) * ctx.dt, ctx.dtype, ctx.device)

    def update(x: torch.Tensor, s: list[torch.Tensor]) -> torch.Tensor:
        s[0] = s[0] + gain * x
        return s[0]

    return _neuron(ctx, update, [0.0], ("v",))


def _k_if(node: nir.IF, ctx: _Ctx) -> Kernel:
    gain = _param(_f64(node.r) * ctx.dt, ctx.dtype, ctx.device)
    thr = _param(node.v_threshold, ctx.dtype, ctx.device)
    v_reset = _param(node.v_reset, ctx.dtype, ctx.device)

    def update(x: torch.Tensor, s: list[torch.Tensor]) -> torch.Tensor:
        h = s[0] + gain * x
        z = h > thr
        s[0] = torch.where(z, v_reset, h)
        return z.to(x.dtype)

    return _neuron(ctx, update, [v_reset], ("v",))


def _leaky(v, x, v_leak, r, tau):
    """One Euler step ``v + ((v_leak - v) + r x) / (tau/dt)`` (``tau`` already in steps)."""
    drive = x if isinstance(r, float) and r == 1.0 else r * x
    return v + ((v_leak - v) + drive) / tau


def _k_li(node: nir.LI, ctx: _Ctx) -> Kernel:
    tau = _steps(node.tau, ctx.dt, ctx.dtype, ctx.device, ctx.name)
    r = _param(node.r, ctx.dtype, ctx.device)
    v_leak = _param(node.v_leak, ctx.dtype, ctx.device)

    def update(x: torch.Tensor, s: list[torch.Tensor]) -> torch.Tensor:
        s[0] = _leaky(s[0], x, v_leak, r, tau)
        return s[0]

    return _neuron(ctx, update, [v_leak], ("v",))


def _k_lif(node: nir.LIF, ctx: _Ctx) -> Kernel:
    tau = _steps(node.tau, ctx.dt, ctx.dtype, ctx.device, ctx.name)
    r = _param(node.r, ctx.dtype, ctx.device)
    v_leak = _param(node.v_leak, ctx.dtype, ctx.device)
    thr = _param(node.v_threshold, ctx.dtype, ctx.device)
    v_reset = _param(node.v_reset, ctx.dtype, ctx.device)

    def update(x: torch.Tensor, s: list[torch.Tensor]) -> torch.Tensor:
        h = _leaky(s[0], x, v_leak, r, tau)
        z = h > thr
        s[0] = torch.where(z, v_reset, h)
        return z.to(x.dtype)

    return _neuron(ctx, update, [v_leak], ("v",))


def _cuba(node: nir.CubaLI | nir.CubaLIF, ctx: _Ctx):
    p = ctx.dtype, ctx.device
    return (
        _steps(node.tau_syn, ctx.dt, *p, ctx.name),
        _steps(node.tau_mem, ctx.dt, *p, ctx.name),
        _param(node.r, *p),
        _param(node.v_leak, *p),
        _param(node.w_in, *p),
    )


def _k_cubali(node: nir.CubaLI, ctx: _Ctx) -> Kernel:
    tau_syn, tau_mem, r, v_leak, w_in = _cuba(node, ctx)

    def update(x: torch.Tensor, s: list[torch.Tensor]) -> torch.Tensor:
        s[1] = _leaky(s[1], x, 0.0, w_in, tau_syn)
        s[0] = _leaky(s[0], s[1], v_leak, r, tau_mem)
        return s[0]

    return _neuron(ctx, update, [v_leak, 0.0], ("v", "i"))


def _k_cubalif(node: nir.CubaLIF, ctx: _Ctx) -> Kernel:
    tau_syn, tau_mem, r, v_leak, w_in = _cuba(node, ctx)
    thr = _param(node.v_threshold, ctx.dtype, ctx.device)
    v_reset = _param(node.v_reset, ctx.dtype, ctx.device)

    def update(x: torch.Tensor, s: list[torch.Tensor]) -> torch.Tensor:
        s[1] = _leaky(s[1], x, 0.0, w_in, tau_syn)
        h = _leaky(s[0], s[1], v_leak, r, tau_mem)
        z = h > thr
        s[0] = torch.where(z, v_reset, h)
        return z.to(x.dtype)

    return _neuron(ctx, update, [v_leak, 0.0], ("v", "i"))


def _k_identity(node: nir.NIRNode, ctx: _Ctx) -> Kernel:
    return lambda x, keep: (x, {})


@dataclass(frozen=True)
class _Ctx:
    name: str
    dt: float
    dtype: torch.dtype  # neuron states and values passed along edges
    device: torch.device
    acc: torch.dtype  # synaptic sums (Affine, Linear, Conv, pooling)


# NIR node type -> kernel factory (Input/Output and inner graph ports are sums of their edges)
KERNELS: dict[type, Callable[[Any, _Ctx], Kernel]] = {
    nir.Input: _k_identity,
    nir.Output: _k_identity,
    nir.Affine: _k_affine,
    nir.Linear: _k_affine,
    nir.Scale: _k_scale,
    nir.Conv1d: _k_conv1d,
    nir.Conv2d: _k_conv2d,
    nir.SumPool2d: _k_sumpool,
    nir.AvgPool2d: _k_avgpool,
    nir.Flatten: _k_flatten,
    nir.Threshold: _k_threshold,
    nir.Delay: _k_delay,
    nir.I: _k_i,
    nir.IF: _k_if,
    nir.LI: _k_li,
    nir.LIF: _k_lif,
    nir.CubaLI: _k_cubali,
    nir.CubaLIF: _k_cubalif,
}


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
        if isinstance(graph, str | Path):
            graph = nir.read(graph)
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
            ctx = _Ctx(name, self.dt, dtype, self.device, accumulate)
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
        for name in list(host) + list(clamp):
            if name not in self.nodes:
                raise ValueError(f"unknown node {name!r}")
        for name, call in host.items():
            if not isinstance(self.nodes[name], nir.Input) or self.preds[name]:
                raise ValueError(f"host values can feed graph Input nodes only, not {name!r}")
            for need in call.needs:
                if need not in self.nodes:
                    raise ValueError(f"host call for {name!r} needs unknown node {need!r}")
        values = self._inputs(inputs, host)
        if record is None:
            keep = set(self.neuron_nodes()) | set(self.outputs)
        elif isinstance(record, str):
            if record != "all":
                raise ValueError(f"record must be None, 'all' or node names, got {record!r}")
            keep = set(self.nodes)
        else:
            keep = set(record)
            unknown = sorted(keep - set(self.nodes))
            if unknown:
                raise ValueError(f"cannot record unknown nodes {unknown}")
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
                node = self.nodes[name]
                if name in host:
                    call = host[name]
                    x = call.fn({n: live[n] for n in call.needs})
                    x = self._check_input(name, torch.as_tensor(x).to(self.device, self.dtype))
                    for n in call.needs:
                        release(n)
                elif isinstance(node, nir.Input) and not self.preds[name]:
                    x = values[name]
                else:
                    if not self.preds[name]:
                        raise ValueError(f"node {name!r} has no incoming edge")
                    x = live[self.preds[name][0]]
                    for p in self.preds[name][1:]:
                        x = x + live[p]
                    for p in self.preds[name]:
                        release(p)
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


# ----------------------------------------------------------------------------- CLI


def _load_array(path: Path) -> np.ndarray:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such input file")
    if path.suffix == ".npz":
        with np.load(path) as z:
            if len(z.files) != 1:
                raise ValueError(f"{path}: an .npz input must hold one array, has {z.files}")
            return z[z.files[0]]
    return np.load(path, allow_pickle=False)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m export.sim",
        description="Simulate a NIR graph (forward Euler at dt) on time-first spike inputs.",
    )
    p.add_argument("graph", type=Path, help="NIR file (.nir, HDF5)")
    p.add_argument(
        "--input",
        action="append",
        required=True,
        metavar="[NAME=]FILE",
        help="input array .npy/.npz, time-first [T, B, *shape] (or [T, *shape] for one"
        " sample); NAME= selects the Input node when the graph has several",
    )
    p.add_argument("--dt", type=float, default=DT_S, help="time step in seconds (1e-4)")
    p.add_argument("--out", type=Path, default=None, help="write the records to this .npz")
    p.add_argument("--record", default=None, help="'all' or comma-separated node names")
    p.add_argument("--states", default="", help="comma-separated neuron nodes to record v of")
    p.add_argument("--float64", action="store_true", help="simulate in float64")
    p.add_argument("--exact-sums", action="store_true", help="accumulate synaptic sums in float64")
    args = p.parse_args(argv)
    try:
        dtype = torch.float64 if args.float64 else torch.float32
        acc = torch.float64 if args.exact_sums else None
        sim = Simulator(args.graph, args.dt, dtype, accumulate=acc)
        given: dict[str, np.ndarray] = {}
        for item in args.input:
            name, sep, file = item.partition("=")
            if not sep:
                if len(sim.inputs) != 1:
                    raise ValueError(f"the graph has Input nodes {sim.inputs}; use NAME=FILE")
                name, file = sim.inputs[0], item
            given[name] = _load_array(Path(file))
        single = False
        for name, arr in given.items():
            shape = port_shape(sim.nodes[name], "input") if name in sim.nodes else None
            if shape is not None and arr.ndim == len(shape) + 1:
                given[name], single = arr[:, None], True  # [T, *shape] -> [T, 1, *shape]
        record = None
        if args.record:
            record = "all" if args.record == "all" else args.record.split(",")
        states = [s for s in args.states.split(",") if s]
        result = sim.run(given, record=record, states=states)
    except (ValueError, FileNotFoundError, OSError, KeyError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    arrays = {k: v.cpu().numpy() for k, v in result.items()}
    if single:
        arrays = {k: v[:, 0] for k, v in arrays.items()}
    print(f"{args.graph}: {len(sim.nodes)} nodes, dt = {args.dt:g} s")
    for name, arr in arrays.items():
        spiking = name in sim.nodes and isinstance(sim.nodes[name], SPIKING_TYPES)
        what = f"{int(arr.sum())} spikes" if spiking else f"mean {arr.mean():.6g}"
        print(f"  {name:40s} {arr.shape!s:24s} {what}")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(args.out, **arrays)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
