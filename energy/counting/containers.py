"""Counting rules of our container modules: the functional ops inside them (residual adds,
the FSVE head's rate mean, the SPKLIP teacher's masks, ReLUs, products and attention)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from energy.counting.attention import attention_counts
from energy.counting.synapses import conv

if TYPE_CHECKING:
    from energy.counting.collector import Collector

__all__ = [
    "add_input",
    "attention_pool",
    "avgpool_head",
    "bottleneck",
    "hsfe",
    "reshape_only",
    "residual",
    "spatial_attention",
    "spklip",
    "visual_encoder",
]


# FSVE's containers


def reshape_only(c: Collector, name: str, m: nn.Module, args: tuple, out: Any) -> None:
    """A container whose own code only folds and unfolds time (``seq_forward``): its children
    are counted by their rules, itself computes nothing (covered, so the audit skips it)."""


def residual(c: Collector, name: str, m: nn.Module, args: tuple, out: Any) -> None:
    """A membrane (or activation) shortcut ``out = f(x) + shortcut``: one add per element."""
    n = out.numel()
    rec = c.elementwise(name + ":add", "add", ann_adds=n, ann_input_reads=n, ann_outputs=n)
    rec.static["in_words"] = c.words(n)


def visual_encoder(c: Collector, name: str, m: nn.Module, args: tuple, out: Any) -> None:
    """FSVE head: rates = mean over T and N of the final spikes (event-driven sum), then scale."""
    last = c.spike_totals.get(id(m.final_lif))
    if last is None:
        return
    total, shape = last  # final spikes [T, B, N, C]
    n = math.prod(shape)
    scale = shape[1] * shape[3]  # B x C divisions by T*N
    rec = c.elementwise(
        name + ":rate_mean",
        "mean",
        ann_adds=n,
        ann_macs=scale,
        ann_input_reads=n,
        ann_output_writes=scale,
        ann_inputs=n,
        ann_outputs=scale,
        snn_input_reads=0.0,
        snn_adds=0.0,
    )
    rec.static["in_words"] = c.words(n)
    # per-channel counters: one add and one read per spike
    c.defer(rec, (total,), lambda v: {"snn_adds": v[0], "snn_input_reads": v[0]})


# The SPKLIP teacher's containers


def hsfe(c: Collector, name: str, m: nn.Module, args: tuple, out: Any) -> None:
    """HSFE: temporal masks ``M_i ∘ X`` and SA weights ``W_i ∘ H_i`` (elementwise products)."""
    x = args[0]
    n, _, h, w = x.shape
    # HSFE runs its branch convs functionally (one conv with the masks folded into the
    # weights), so no module hook sees them: count each as the T_i -> k_i conv it is.
    for i, ((start, stop), branch) in enumerate(zip(m.windows, m.branches, strict=True)):
        layer = branch.conv
        y = torch.empty((n, layer.out_channels, h, w), device="meta")
        conv(c, f"{name}.branches.{i}.conv", layer, (x[:, start:stop],), y)
    masked = sum(n * (stop - start) * h * w for start, stop in m.windows)
    c.elementwise(
        f"{name}:mask", "mul", ann_macs=masked, ann_input_reads=masked, ann_outputs=masked
    )
    if m.sa is not None:
        weighted = out.numel()
        c.elementwise(
            f"{name}:sa_weight",
            "mul",
            ann_macs=weighted,
            ann_input_reads=weighted,
            ann_outputs=weighted,
        )


def spatial_attention(c: Collector, name: str, m: nn.Module, args: tuple, out: Any) -> None:
    x = args[0]
    hidden = x.shape[0] * m.conv1.out_channels * x.shape[2] * x.shape[3]
    c.elementwise(f"{name}:relu", "relu", ann_other_ops=hidden, ann_outputs=hidden)
    c.elementwise(f"{name}:sigmoid", "sigmoid", ann_other_ops=out.numel(), ann_outputs=out.numel())


def bottleneck(c: Collector, name: str, m: nn.Module, args: tuple, out: Any) -> None:
    x = args[0]
    inner = x.shape[0] * m.conv1.out_channels * x.shape[2] * x.shape[3]  # after conv1, conv2
    n = out.numel()
    c.elementwise(f"{name}:relu", "relu", ann_other_ops=2 * inner + n, ann_outputs=2 * inner + n)
    c.elementwise(f"{name}:add", "add", ann_adds=n, ann_input_reads=n, ann_outputs=n)


def attention_pool(c: Collector, name: str, m: nn.Module, args: tuple, out: Any) -> None:
    x = args[0]
    n, ch, h, w = x.shape
    length = h * w + 1
    c.elementwise(
        f"{name}:mean_pos",
        "mean+add",
        ann_adds=n * ch * (h * w - 1) + n * length * ch,  # token mean, positional embedding
        ann_macs=n * ch,
        ann_input_reads=n * ch * h * w + length * ch,
        ann_output_writes=n * length * ch,
        ann_outputs=n * length * ch,
    )
    attention_counts(c, f"{name}:sdpa", n, 1, length, ch, m.heads, proj=False)


def avgpool_head(c: Collector, name: str, m: nn.Module, args: tuple, out: Any) -> None:
    x = args[0]
    n, ch = x.shape[0], x.shape[1]
    c.elementwise(
        f"{name}:mean",
        "mean",
        ann_adds=x.numel() - n * ch,
        ann_macs=n * ch,
        ann_input_reads=x.numel(),
        ann_outputs=n * ch,
    )


def add_input(c: Collector, name: str, m: nn.Module, args: tuple, out: Any) -> None:
    """A learnable positional embedding added to the input (``x + pos``)."""
    n = args[0].numel()
    c.elementwise(
        f"{name}:pos_add", "add", ann_adds=n, ann_input_reads=n, ann_bias_reads=n, ann_outputs=n
    )


def spklip(c: Collector, name: str, m: nn.Module, args: tuple, out: Any) -> None:
    """SPKLIP head: mean of the K block embeddings (Eq. 5)."""
    if out.ndim != 2:
        return
    b, d = out.shape
    k = m.cfg.num_blocks
    c.elementwise(
        f"{name}:block_mean",
        "mean",
        ann_adds=b * (k - 1) * d,
        ann_macs=b * d,
        ann_input_reads=b * k * d,
        ann_outputs=b * d,
    )
