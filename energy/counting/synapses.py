"""Counting rules of synaptic layers: conv, linear, spike matmul, dense products.

On integer-valued input (binary spikes or counts) a synaptic layer is event-driven: SOPs are
exact (conv: ``Σ_positions |x| · fanout``; linear: ``Σ|x| · out_features``; ``A @ B`` with
both operands integer: ``Σ_l (Σ_i |A_il|)(Σ_j |B_lj|)``); on real input it costs dense MACs.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from energy.counting.fanout import conv_pads
from energy.counting.tensors import exact_sum, magnitude

if TYPE_CHECKING:
    from energy.counting.collector import Collector

__all__ = ["conv", "dense_product", "linear", "spike_matmul"]


def conv(c: Collector, name: str, m: nn.modules.conv._ConvNd, args: tuple, out: Any) -> None:
    x = args[0]
    w = m.weight
    nsp = w.ndim - 2
    kernel = tuple(w.shape[2:])
    cout, cin_g, groups = w.shape[0], w.shape[1], m.groups
    x = x.reshape(-1, *x.shape[-(nsp + 1) :])  # [N, C_in, *S] (time folded into N)
    if m.padding_mode != "zeros":  # padded values are copies of inputs: pad explicitly
        x = F.pad(x, m._reversed_padding_repeated_twice, mode=m.padding_mode)
        pads = (0,) * nsp
    else:
        pads = conv_pads(m, nsp)
    out_sp = tuple(out.shape[-nsp:])
    taps = math.prod(kernel)
    dense = out.numel() * cin_g * taps
    per_event = (cout // groups) * taps
    key = (tuple(x.shape[2:]), out_sp, kernel, tuple(m.stride), pads, tuple(m.dilation))

    def sops(ax: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        ones_fan = c.ones_fanout(key, ax.device)  # [2, prod(S)]
        occupancy = ax.sum(dim=(0, 1)).to(torch.float64).reshape(-1)  # input events per position
        events, weighted = (ones_fan @ occupancy).unbind()  # exact: integers in float64
        return events, weighted

    c.synapse(
        name,
        type(m).__name__,
        x,
        dense_macs=dense,
        in_numel=x.numel(),
        out_numel=out.numel(),
        lemaire_in=dense,  # Lemaire FNN conv: one input read per MAC
        fan_full=per_event,
        bias=m.bias is not None,
        weight_words=w.numel() + (0 if m.bias is None else m.bias.numel()),
        sops=sops,
        sops_scale=cout // groups,
    )


def linear(c: Collector, name: str, m: nn.Linear, args: tuple, out: Any) -> None:
    x = args[0]
    n_out = m.out_features
    c.synapse(
        name,
        type(m).__name__,
        x,
        dense_macs=x.numel() * n_out,
        in_numel=x.numel(),
        out_numel=out.numel(),
        lemaire_in=x.numel(),  # Lemaire FNN linear: each input read once
        fan_full=n_out,
        bias=m.bias is not None,
        weight_words=m.weight.numel() + (0 if m.bias is None else m.bias.numel()),
        sops=lambda ax: (exact_sum(ax),) * 2,
        sops_scale=n_out,
    )


def spike_matmul(c: Collector, name: str, m: nn.Module, args: tuple, out: Any) -> None:
    a, b = args[0], args[1]
    if a.ndim < 2 or b.ndim < 2:  # vector products: count densely
        c.synapse(
            name,
            type(m).__name__,
            None,
            dense_macs=out.numel() * a.shape[-1],
            in_numel=a.numel(),
            out_numel=out.numel(),
            lemaire_in=a.numel(),
            fan_full=0,
            bias=False,
            weight_words=b.numel(),
        )
        return
    n, k = a.shape[-2:]
    mm = b.shape[-1]
    products = out.numel() // max(n * mm, 1)  # matrix products after broadcasting
    rep_a = products // max(a.numel() // (n * k), 1)  # broadcast multiplicity of A
    rep_b = products // max(b.numel() // (k * mm), 1)
    rec = c.record(
        name,
        type(m).__name__,
        "synapse",
        bias=False,
        weight_words=k * mm,
        in_words=c.words(a.numel() * rep_a),
        out_words=c.words(out.numel()),
        state_words=c.words(out.numel()),
    )
    dense = products * n * k * mm
    in_numel = a.numel() * rep_a
    c.add(rec, calls=1, dense_macs=dense, in_numel=in_numel, out_numel=out.numel())
    c.add(rec, lemaire_in_dense=in_numel)
    dense_prims = {
        "macs": dense,
        "in_numel_real": in_numel,
        "out_numel_real": out.numel(),
        "lemaire_in_real": in_numel,
    }
    if not c.event_driven:
        c.add(rec, **dense_prims)
        return
    a = a.to(torch.float32) if a.dtype == torch.bool else a
    b = b.to(torch.float32) if b.dtype == torch.bool else b
    one = torch.ones((), dtype=torch.bool, device=a.device)
    aa, int_a = (a, one) if c.known_spikes(a) else magnitude(a)
    ab, int_b = (b, one) if c.known_spikes(b) else magnitude(b)
    col_a = aa.sum(-2).to(torch.float64)  # [..., k]: Σ_i |A_il|
    row_b = ab.sum(-1).to(torch.float64)  # [..., k]: Σ_j |B_lj|
    both = (col_a * row_b).sum()  # Σ_l colsum|A|_l rowsum|B|_l, broadcast over batch dims
    ev_a = col_a.sum() * rep_a
    ev_b = row_b.sum() * rep_b

    def resolve(v: list) -> dict:
        both_v, ea, eb, ia, ib = v
        if ia and ib:
            return {"sops": both_v, "sops_nominal": ea * mm, "spikes_in": ea}
        if ia:
            return {"sops": ea * mm, "sops_nominal": ea * mm, "spikes_in": ea}
        if ib:
            return {"sops": eb * n, "sops_nominal": eb * n, "spikes_in": eb}
        return dense_prims

    c.defer(rec, (both, ev_a, ev_b, int_a, int_b), resolve)


def dense_product(
    c: Collector,
    name: str,
    type_name: str,
    rows: int,
    k: int,
    cols: int,
    bias: bool = False,
    weights: bool = True,
    count: int = 1,
) -> None:
    """``count`` dense products ``[rows, k] @ [k, cols]`` (real operands) as one synaptic row."""
    c.synapse(
        name,
        type_name,
        None,
        dense_macs=count * rows * k * cols,
        in_numel=count * rows * k,
        out_numel=count * rows * cols,
        lemaire_in=count * rows * k,
        fan_full=cols,
        bias=bias,
        weight_words=(k * cols + (cols if bias else 0)) if weights else k * cols,
    )
