"""Kernels of the NIR simulator: per node type, its semantics over ``[T, B, ...]`` sequences.

A kernel maps the summed input of a node, ``[T, B, *shape]``, to its output ``[T, B, *shape']``;
neuron kernels also return their state sequences when asked (``keep_state=True``). The
equations are in :mod:`export.sim`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import nir
import numpy as np
import torch
import torch.nn.functional as F

from export.graph import int_tuple, padding_arg

Kernel = Callable[[torch.Tensor, bool], tuple[torch.Tensor, dict[str, torch.Tensor]]]


@dataclass(frozen=True)
class KernelContext:
    """What a kernel factory needs besides its node."""

    name: str  # the node's name (for error messages)
    dt: float  # time step, seconds
    dtype: torch.dtype  # neuron states and values passed along edges
    device: torch.device
    acc: torch.dtype  # synaptic sums (Affine, Linear, Conv, pooling)


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


def _fold(fn: Callable[[torch.Tensor], torch.Tensor], acc: torch.dtype) -> Kernel:
    """A per-step map over all steps at once (time folded into the batch), computed in ``acc``.

    The result is rounded back to the input's dtype, so each synaptic sum reaches the neurons
    in the simulation dtype.
    """

    def kernel(x: torch.Tensor, keep_state: bool) -> tuple[torch.Tensor, dict]:
        y = fn(x.flatten(0, 1).to(acc).contiguous())  # [T*B, ...], one memory layout
        return y.to(x.dtype).unflatten(0, x.shape[:2]), {}

    return kernel


def _weights(node: nir.NIRNode, ctx: KernelContext, name: str = "weight") -> torch.Tensor | None:
    value = getattr(node, name, None)
    if value is None:
        return None
    return torch.as_tensor(np.asarray(value), dtype=ctx.acc, device=ctx.device)


def _k_affine(node: nir.Affine | nir.Linear, ctx: KernelContext) -> Kernel:
    w, b = _weights(node, ctx), _weights(node, ctx, "bias")
    if w.ndim == 2:
        return lambda x, keep: (F.linear(x.to(ctx.acc), w, b).to(x.dtype), {})

    def batched(x: torch.Tensor, keep: bool) -> tuple[torch.Tensor, dict]:
        y = torch.matmul(w, x.to(ctx.acc).unsqueeze(-1)).squeeze(-1)  # W [..., out, in]
        return (y if b is None else y + b).to(x.dtype), {}

    return batched


def _k_scale(node: nir.Scale, ctx: KernelContext) -> Kernel:
    s = _param(node.scale, ctx.dtype, ctx.device)
    return lambda x, keep: (x * s, {})


def _k_conv2d(node: nir.Conv2d, ctx: KernelContext) -> Kernel:
    w, b = _weights(node, ctx), _weights(node, ctx, "bias")
    stride, dilation = int_tuple(node.stride), int_tuple(node.dilation)
    padding, groups = padding_arg(node.padding), int(np.asarray(node.groups))
    return _fold(lambda x: F.conv2d(x, w, b, stride, padding, dilation, groups), ctx.acc)


def _k_conv1d(node: nir.Conv1d, ctx: KernelContext) -> Kernel:
    w, b = _weights(node, ctx), _weights(node, ctx, "bias")
    stride, dilation = int_tuple(node.stride, 1), int_tuple(node.dilation, 1)
    padding, groups = padding_arg(node.padding, 1), int(np.asarray(node.groups))
    return _fold(lambda x: F.conv1d(x, w, b, stride, padding, dilation, groups), ctx.acc)


def _k_sumpool(node: nir.SumPool2d, ctx: KernelContext) -> Kernel:
    k, s, p = int_tuple(node.kernel_size), int_tuple(node.stride), int_tuple(node.padding)
    return _fold(
        lambda x: F.avg_pool2d(x, k, s, p, count_include_pad=True, divisor_override=1), ctx.acc
    )


def _k_avgpool(node: nir.AvgPool2d, ctx: KernelContext) -> Kernel:
    k, s, p = int_tuple(node.kernel_size), int_tuple(node.stride), int_tuple(node.padding)
    return _fold(lambda x: F.avg_pool2d(x, k, s, p, count_include_pad=True), ctx.acc)


def _k_flatten(node: nir.Flatten, ctx: KernelContext) -> Kernel:
    start, end = int(np.asarray(node.start_dim)), int(np.asarray(node.end_dim))

    def kernel(x: torch.Tensor, keep: bool) -> tuple[torch.Tensor, dict]:
        n = x.ndim - 2  # per-sample dims; NIR dims exclude the batch (and here time)
        s = start + n if start < 0 else start
        e = end + n if end < 0 else end
        return x.flatten(s + 2, e + 2), {}

    return kernel


def _k_threshold(node: nir.Threshold, ctx: KernelContext) -> Kernel:
    thr = _param(node.threshold, ctx.dtype, ctx.device)
    return lambda x, keep: ((x > thr).to(x.dtype), {})


def _k_delay(node: nir.Delay, ctx: KernelContext) -> Kernel:
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
    ctx: KernelContext,
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


def _k_i(node: nir.I, ctx: KernelContext) -> Kernel:
    gain = _param(_f64(node.r) * ctx.dt, ctx.dtype, ctx.device)

    def update(x: torch.Tensor, s: list[torch.Tensor]) -> torch.Tensor:
        s[0] = s[0] + gain * x
        return s[0]

    return _neuron(ctx, update, [0.0], ("v",))


def _k_if(node: nir.IF, ctx: KernelContext) -> Kernel:
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


def _k_li(node: nir.LI, ctx: KernelContext) -> Kernel:
    tau = _steps(node.tau, ctx.dt, ctx.dtype, ctx.device, ctx.name)
    r = _param(node.r, ctx.dtype, ctx.device)
    v_leak = _param(node.v_leak, ctx.dtype, ctx.device)

    def update(x: torch.Tensor, s: list[torch.Tensor]) -> torch.Tensor:
        s[0] = _leaky(s[0], x, v_leak, r, tau)
        return s[0]

    return _neuron(ctx, update, [v_leak], ("v",))


def _k_lif(node: nir.LIF, ctx: KernelContext) -> Kernel:
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


def _cuba(node: nir.CubaLI | nir.CubaLIF, ctx: KernelContext):
    p = ctx.dtype, ctx.device
    return (
        _steps(node.tau_syn, ctx.dt, *p, ctx.name),
        _steps(node.tau_mem, ctx.dt, *p, ctx.name),
        _param(node.r, *p),
        _param(node.v_leak, *p),
        _param(node.w_in, *p),
    )


def _k_cubali(node: nir.CubaLI, ctx: KernelContext) -> Kernel:
    tau_syn, tau_mem, r, v_leak, w_in = _cuba(node, ctx)

    def update(x: torch.Tensor, s: list[torch.Tensor]) -> torch.Tensor:
        s[1] = _leaky(s[1], x, 0.0, w_in, tau_syn)
        s[0] = _leaky(s[0], s[1], v_leak, r, tau_mem)
        return s[0]

    return _neuron(ctx, update, [v_leak, 0.0], ("v", "i"))


def _k_cubalif(node: nir.CubaLIF, ctx: KernelContext) -> Kernel:
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


def _k_identity(node: nir.NIRNode, ctx: KernelContext) -> Kernel:
    return lambda x, keep: (x, {})


# NIR node type -> kernel factory (Input/Output and inner graph ports are sums of their edges)
KERNELS: dict[type, Callable[[Any, KernelContext], Kernel]] = {
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
