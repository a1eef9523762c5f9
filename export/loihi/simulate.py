"""The bit-exact, batched run of a quantised graph (Lava's arithmetic, layer by layer).

Each layer runs over the whole sequence at once: its projections' messages (exact integer
sums, int32 as Lava's ports carry them) summed, then :func:`export.fixed_point.lif_fixed`.
Host work that feeds graph Inputs (E-SDSA) runs in float within the same steps.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from export.fixed_point import delay_one, int_array, lif_fixed, shift, wrap32
from export.loihi.layers import Projection, QuantizedGraph, QuantLayer, run_order
from export.loihi.paths import apply_ops

__all__ = ["FixedPointRun", "project", "simulate_quantized"]


@dataclass
@dataclass
class FixedPointRun:
    """What :func:`simulate_quantized` returns; every array is time-first ``[T', B, ...]``."""

    values: dict[str, np.ndarray]  # layer / Output / Input -> spikes (int8)
    states: dict[str, np.ndarray]  # "<layer>.u", "<layer>.v" (int64) for the layers asked
    counts: dict[str, dict[str, int]]  # layer -> {"u_wrapped", "v_saturated"}
    delay: dict[str, int]  # layer -> steps its spikes lag the input (0 when aligned)
    steps: int  # T' simulated


def project(p: Projection, x: np.ndarray) -> np.ndarray:
    """``x [T, B, *in]`` integers -> the projection's per-step message ``[T, B, *out]``."""
    import torch

    lead = x.shape[:2]
    w = np.abs(p.weight)
    weighted = any(op.kind == "weighted" for op in p.ops)
    row = float(w.reshape(w.shape[0], -1).sum(1).max(initial=0)) if weighted and w.size else 0.0
    row = row if weighted else float(w.max(initial=0))  # identity: one weight per neuron
    area = 1
    for op in p.ops:
        if op.kind == "sumpool":
            area *= int(np.prod(op.params[0]))
    bound = float(np.abs(x).max(initial=0)) * row * area  # largest |sum| of one output
    dtype = torch.float32 if bound < 2.0**24 else torch.float64  # every sum exact
    if bound >= 2.0**53:
        raise ValueError(f"projection {p.source} -> {p.path}: sums beyond 2^53 are not exact")
    xt = torch.as_tensor(x).reshape(-1, *x.shape[2:]).to(dtype)
    key = next((op.node for op in p.ops if op.kind in ("weighted", "identity")), "")
    weights = {key: torch.as_tensor(p.weight).to(dtype)}
    with torch.no_grad():
        y = apply_ops(p.ops, xt, weights)
    acc = np.rint(y.numpy()).astype(np.int64).reshape(*lead, *y.shape[1:])
    return wrap32(shift(acc, p.exp))


def simulate_quantized(
    q: QuantizedGraph,
    inputs: Any,
    *,
    align: bool = True,
    host: Mapping[str, Any] | None = None,
    states: Iterable[str] = (),
    clamp: Mapping[str, Any] | None = None,
) -> FixedPointRun:
    """Run a quantised graph bit-exactly, batched, on integer inputs ``[T, B, *shape]``.

    ``align=False``: Lava's timing, one step of delay per Dense/Conv; the run is padded with
    zero input to ``T + depth`` steps so the deepest layer sees every input step.
    ``align=True``: no synaptic delay, so every layer's step ``t`` lines up with step ``t`` of
    the float model. It equals the Lava-timed run of the same network with synaptic delays
    that equalise every path (Loihi 2 has them), read ``depth`` steps later, for bias-free
    layers; residual joins of paths of different depth need those delays to mean the same.
    ``host``: Input node -> :class:`export.sim.HostCall` (host work, run in float in the same
    step). ``inputs``: one array for a graph with one Input, else a dict name -> array.
    ``clamp``: layer -> spikes ``[T', B, ...]`` its successors read instead of its own (teacher
    forcing: each layer fed the float model's upstream spikes isolates its own arithmetic);
    the layer's record keeps its computed spikes.
    """
    host = dict(host or {})
    depth = q.depth(host)
    pad = 0 if align else max((depth[n] for n in q.layers), default=0)
    values, steps = _graph_inputs(q, inputs, host, pad)
    want_states = set(states)
    clamp = dict(clamp or {})
    for what, names in (("states", want_states), ("clamp", clamp)):
        unknown = sorted(set(names) - set(q.layers))
        if unknown:
            raise ValueError(f"{what}: unknown layers {unknown}")
    outputs_of: dict[str, list[str]] = {}
    for o, layer in q.outputs.items():
        outputs_of.setdefault(layer, []).append(o)
    feed: dict[str, np.ndarray] = {}  # what successors read, where it differs from values
    run = FixedPointRun({}, {}, {}, {}, steps)
    for name in run_order(q, host):
        if name in host:
            _host_input(name, host[name], {**values, **feed}, values, q)
            continue
        if name not in q.layers:
            continue
        counts: dict[str, int] = {}
        out = _run_layer(q.layers[name], {**values, **feed}, align, counts, name in want_states)
        values[name] = out["s"].astype(np.int8)
        if name in clamp:
            forced = int_array(clamp[name], f"clamp {name!r}").astype(np.int8)
            if forced.shape != values[name].shape:
                raise ValueError(f"clamp {name!r}: shape {forced.shape}, want {values[name].shape}")
            feed[name] = forced
        run.counts[name] = counts
        run.delay[name] = 0 if align else depth[name]
        if name in want_states:
            run.states[f"{name}.u"], run.states[f"{name}.v"] = out["u"], out["v"]
        for o in outputs_of.get(name, []):
            values[o] = values[name]
            if name in feed:
                feed[o] = feed[name]
    run.values = values
    return run


def _graph_inputs(
    q: QuantizedGraph, inputs: Any, host: Mapping[str, Any], pad: int
) -> tuple[dict[str, np.ndarray], int]:
    """The graph Inputs not fed by the host, checked and padded with ``pad`` zero steps, and
    the number of steps ``T + pad`` the run takes."""
    wanted = [n for n in q.inputs if n not in host]
    if not isinstance(inputs, Mapping):
        if len(wanted) != 1:
            raise ValueError(f"the graph has Input nodes {wanted}; pass a dict name -> array")
        inputs = {wanted[0]: inputs}
    missing = sorted(set(wanted) - set(inputs))
    unknown = sorted(set(inputs) - set(wanted))
    if missing or unknown:
        raise ValueError(f"inputs: missing {missing}, unknown {unknown} (expected {wanted})")
    values: dict[str, np.ndarray] = {}
    lead = None
    for n in wanted:
        x = int_array(inputs[n], f"input {n!r}")
        if x.ndim < 2 or tuple(x.shape[2:]) != q.inputs[n]:
            raise ValueError(f"input {n!r} must be [T, B, {q.inputs[n]}], got {x.shape}")
        if lead is not None and x.shape[:2] != lead:
            raise ValueError(f"inputs disagree on [T, B]: {x.shape[:2]} vs {lead}")
        lead = x.shape[:2]
        values[n] = np.concatenate([x, np.zeros((pad, *x.shape[1:]), x.dtype)]) if pad else x
    if lead is None:
        raise ValueError("no graph input given")
    return values, lead[0] + pad


def _run_layer(
    layer: QuantLayer,
    read: Mapping[str, np.ndarray],
    align: bool,
    counts: dict[str, int],
    keep_state: bool,
) -> dict[str, np.ndarray]:
    """One layer over the whole run: the sum of its projections' messages into its LIF."""
    a = None
    for p in layer.projections:
        m = project(p, read[p.source])
        if not align:
            m = delay_one(m)
        a = m if a is None else a + m
    return lif_fixed(
        a,
        du=layer.du,
        dv=layer.dv,
        vth=layer.vth,
        bias_mant=layer.bias_mant,
        bias_exp=layer.bias_exp,
        counts=counts,
        keep_state=keep_state,
    )


def _host_input(
    name: str, call: Any, read: Mapping[str, np.ndarray], values: dict, q: QuantizedGraph
) -> None:
    """Compute a host-fed Input from the Output values it needs (host work, in float)."""
    import torch

    need = {n: torch.as_tensor(read[n].astype(np.float32)) for n in call.needs}
    with torch.no_grad():
        y = torch.as_tensor(call.fn(need)).cpu().numpy()
    if tuple(y.shape[2:]) != q.inputs[name]:
        raise ValueError(
            f"host call for {name!r} returned {y.shape}, want [T, B, *{q.inputs[name]}]"
        )
    values[name] = int_array(y, f"host input {name!r}")
