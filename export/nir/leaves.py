"""Converters of leaf modules: conv, linear, BatchNorm folding, pooling, flatten, neurons."""

from __future__ import annotations

from collections.abc import Callable

import nir
import numpy as np
import torch
from torch import nn

from export.nir.builder import WEIGHTED_TYPES, Builder, Converter, Value, per_step, to_numpy
from export.nir.errors import ExportError, fail
from export.nir.neurons import THRESHOLD_CONVENTION, lif_to_nir, nir_threshold
from fsve.nn.attention import SN, AttentionSN, SpikeMatmul
from fsve.nn.neurons import LIF, LIFParams
from fsve.nn.norm import TDBN1d


def _conv2d(b: Builder, m: nn.Conv2d, name: str, x: Value) -> Value:
    if x.grid is not None or x.tensor.ndim != 5:
        fail(name, m, f"expects time-first maps [T, B, C, H, W], got {tuple(x.tensor.shape)}")
    if m.padding_mode != "zeros":
        fail(name, m, f"padding_mode {m.padding_mode!r}: NIR convolutions pad with zeros")
    y = per_step(m, x.tensor)
    w = to_numpy(m.weight)
    bias = to_numpy(m.bias) if m.bias is not None else np.zeros(w.shape[0], w.dtype)
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


def _linear(b: Builder, m: nn.Linear, name: str, x: Value) -> Value:
    y = m(x.tensor)  # any leading dims; SpikingJelly's multi-step Linear gives the same
    w = to_numpy(m.weight)  # [out, in]
    bias = None if m.bias is None else to_numpy(m.bias)
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


def _batchnorm(b: Builder, m: nn.modules.batchnorm._BatchNorm, name: str, x: Value) -> Value:
    y = per_step(m, x.tensor)
    if m.running_mean is None or m.running_var is None:
        fail(name, m, "no running statistics (track_running_stats=False): nothing fixed to fold")
    src = x.terms[0] if len(x.terms) == 1 else None
    if src is None or not isinstance(b.nodes[src], WEIGHTED_TYPES) or b.consumers[src] != 0:
        what = "a sum" if src is None else f"{type(b.nodes[src]).__name__} node {src!r}"
        fail(
            name,
            m,
            f"BatchNorm is folded into the conv/linear layer before it, whose"
            f" output feeds nothing else; here it follows {what}",
        )
    b.check_fresh(x, name)
    # channel axis of the BN in the NIR layout of its input
    shape = x.nir_shape()
    if isinstance(m, TDBN1d):
        axis = 0 if x.grid is not None else len(shape) - 1
    else:
        axis = 0
    if shape[axis] != m.num_features:
        fail(name, m, f"{m.num_features} channels, but axis {axis} of {shape} does not match")
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
            fail(name, m, "a convolution can only be normalised per output channel")
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


def _pool(b: Builder, m: nn.AvgPool2d, name: str, x: Value) -> Value:
    if x.grid is not None or x.tensor.ndim != 5:
        fail(name, m, f"expects time-first maps [T, B, C, H, W], got {tuple(x.tensor.shape)}")
    k = np.array(nn.modules.utils._pair(m.kernel_size))
    s = np.array(nn.modules.utils._pair(m.stride if m.stride is not None else m.kernel_size))
    p = np.array(nn.modules.utils._pair(m.padding))
    if m.ceil_mode:
        fail(name, m, "ceil_mode=True: NIR pooling windows are floor-sized")
    y = per_step(m, x.tensor)
    if m.divisor_override == 1:
        node, note = nir.SumPool2d(kernel_size=k, stride=s, padding=p), "sum pooling"
    elif m.divisor_override is not None:
        fail(name, m, f"divisor_override={m.divisor_override}: NIR has sum and mean pooling")
    elif p.any() and not m.count_include_pad:
        fail(
            name,
            m,
            "count_include_pad=False with padding: NIR's AvgPool2d divides by the full kernel area",
        )
    else:
        node, note = nir.AvgPool2d(kernel_size=k, stride=s, padding=p), ""
    n = b.node(name, node, x, name)
    b.place(name, type(m).__name__, "core", (n,), note)
    return b.value(y, (n,))


def _maxpool(b: Builder, m: nn.Module, name: str, x: Value) -> Value:
    fail(name, m, "max pooling has no NIR node (use AvgPool2d or a strided conv)")


def _flatten(b: Builder, m: nn.Flatten, name: str, x: Value) -> Value:
    return flatten_dims(b, m, name, x, m.start_dim, m.end_dim, 1, lambda: per_step(m, x.tensor))


def flatten_dims(
    b: Builder,
    m: nn.Module,
    name: str,
    x: Value,
    start: int,
    end: int,
    lead: int,
    value: Callable[[], torch.Tensor] | None = None,
) -> Value:
    """``nir.Flatten`` for torch dims counted after ``lead`` leading dims (1: ``[T*B, ...]``
    inside a per-step layer, 2: ``[T, B, ...]`` in a traced forward); ``value()`` computes the
    model's output (default: ``flatten`` of the input).
    """
    if x.grid is not None:
        fail(name, m, "flattening transformer tokens: their NIR layout [C, h, w] differs from"
              " the model's [N, C]")  # fmt: skip
    ndim = x.tensor.ndim - 2 + lead
    s = start + ndim if start < 0 else start
    e = end + ndim if end < 0 else end
    if s < lead:
        fail(name, m, "flattens the batch or time dimension")
    y = value() if value is not None else x.tensor.flatten(s - lead + 2, e - lead + 2)
    node = nir.Flatten(
        input_type={"input": np.array(x.nir_shape())}, start_dim=s - lead, end_dim=e - lead
    )
    n = b.node(name, node, x, name)
    b.place(name, "Flatten" if lead == 1 else "flatten", "core", (n,))
    return b.value(y, (n,))


def _identity(b: Builder, m: nn.Module, name: str, x: Value) -> Value:
    b.place(name, type(m).__name__, "none", (), "identity in eval mode")
    return x


def _lif(b: Builder, m: LIF, name: str, x: Value) -> Value:
    try:
        node = lif_to_nir(m.params, x.nir_shape(), b.dt, b.dtype)
    except ExportError as err:
        fail(name, m, str(err))
    node.metadata = {
        "tau_steps": m.params.tau,
        "model_v_threshold": m.params.v_threshold,
        "threshold": THRESHOLD_CONVENTION,
    }
    out = b.value(m(x.tensor), (b.node(name, node, x, name),), x.grid)
    b.place(name, type(m).__name__, "core", out.terms)
    b.record(out.terms[0], out)
    return out


def _sj_neuron(b: Builder, m: nn.Module, name: str, x: Value) -> Value:
    from spikingjelly.activation_based import neuron

    if getattr(m, "step_mode", "s") != "m":
        fail(
            name,
            m,
            "single-step SpikingJelly neuron: export runs time-first [T, B, ...]"
            " sequences; set step_mode='m' (functional.set_step_mode(net, 'm'))",
        )
    if m.v_reset is None:
        fail(name, m, "soft reset (v_reset=None) has no NIR form; use a hard reset")
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
        fail(
            name, m, "no NIR mapping for this SpikingJelly neuron (LIFNode and IFNode are exported)"
        )
    node.metadata = {"threshold": THRESHOLD_CONVENTION}
    m.reset()
    y = m(x.tensor)
    m.reset()
    out = b.value(y, (b.node(name, node, x, name),), x.grid)
    b.place(name, type(m).__name__, "core", out.terms)
    b.record(out.terms[0], out)
    return out


def _sn(b: Builder, m: SN, name: str, x: Value) -> Value:
    if isinstance(m, AttentionSN):
        fail(
            name,
            m,
            "thresholds a product of two moving signals; only an ESDSA's host part computes it",
        )
    d = m._channel_dim(x.tensor)
    thr = nir_threshold(to_numpy(m.inference_threshold()), b.dtype)  # [C]
    shape = x.nir_shape()
    if x.grid is not None:
        if d != x.tensor.ndim - 1:
            fail(name, m, "SN on tokens must normalise the channel dimension")
        full = np.broadcast_to(thr.reshape(-1, 1, 1), shape)
    else:
        if d < 2:
            fail(name, m, "its threshold varies along time or batch; NIR parameters are per neuron")
        view = [1] * len(shape)
        view[d - 2] = -1
        full = np.broadcast_to(thr.reshape(view), shape)
    node = nir.Threshold(threshold=full.copy())
    node.metadata = {"threshold": THRESHOLD_CONVENTION}
    out = b.value(m(x.tensor), (b.node(name, node, x, name),), x.grid)
    b.place(name, type(m).__name__, "core", out.terms, "memoryless threshold, eval V_th")
    b.record(out.terms[0], out)
    return out


def _host_only(b: Builder, m: nn.Module, name: str, x: Value) -> Value:
    fail(
        name,
        m,
        "a product of two moving signals has no NIR node; it is exported as host"
        " work only inside an ESDSA",
    )


# module type -> converter (looked up along the MRO by :func:`export.nir.converters.lookup`)
LEAF_CONVERTERS: dict[type, Converter] = {
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
}
# SpikingJelly class name -> converter (SpikingJelly is optional: matched by name, not type)
SPIKINGJELLY_CONVERTERS: dict[str, Converter] = {
    "LIFNode": _sj_neuron,
    "IFNode": _sj_neuron,
    "Dropout": _identity,
}
