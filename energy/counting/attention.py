"""Counting rules of attention on real tokens: ``nn.MultiheadAttention`` and
``nn.TransformerEncoderLayer`` (counted from shapes; their fast paths bypass submodule hooks)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from torch import nn

from energy.counting.elementwise import layer_norm_counts
from energy.counting.synapses import dense_product

if TYPE_CHECKING:
    from energy.counting.collector import Collector

__all__ = ["attention_counts", "mha", "transformer_layer"]


def attention_counts(
    c: Collector,
    name: str,
    batch: int,
    lq: int,
    lk: int,
    e: int,
    heads: int,
    *,
    proj: bool,
    bias: bool = True,
) -> None:
    """Multi-head attention on real tokens: projections, Q K^T, softmax, A V, output projection."""
    if proj:
        dense_product(c, f"{name}:q_proj", "Linear", batch * lq, e, e, bias)
        dense_product(c, f"{name}:kv_proj", "Linear", batch * lk, e, 2 * e, bias)
    dense_product(c, f"{name}:qk", "matmul", lq, e // heads, lk, weights=False, count=batch * heads)
    n_scores = batch * heads * lq * lk
    c.elementwise(
        f"{name}:softmax",
        "softmax",
        ann_other_ops=n_scores,  # exp
        ann_adds=n_scores,  # row sums
        ann_macs=n_scores,  # normalisation
        ann_input_reads=n_scores,
        ann_output_writes=n_scores,
        ann_inputs=n_scores,
        ann_outputs=n_scores,
    )
    dense_product(c, f"{name}:av", "matmul", lq, lk, e // heads, weights=False, count=batch * heads)
    if proj:
        dense_product(c, f"{name}:out_proj", "Linear", batch * lq, e, e, bias)


def mha(c: Collector, name: str, m: nn.MultiheadAttention, args: tuple, out: Any) -> None:
    q, k = args[0], args[1] if len(args) > 1 else args[0]
    if q.ndim == 2:  # unbatched [L, E]
        batch, lq, lk = 1, q.shape[0], k.shape[0]
    elif m.batch_first:
        batch, lq, lk = q.shape[0], q.shape[1], k.shape[1]
    else:
        batch, lq, lk = q.shape[1], q.shape[0], k.shape[0]
    attention_counts(
        c, name, batch, lq, lk, m.embed_dim, m.num_heads, proj=True, bias=m.in_proj_bias is not None
    )


def transformer_layer(
    c: Collector, name: str, m: nn.TransformerEncoderLayer, args: tuple, out: Any
) -> None:
    """``nn.TransformerEncoderLayer`` from shapes (its fast path bypasses submodule hooks)."""
    x = args[0]
    d = x.shape[-1]
    tokens = x.numel() // d
    if x.ndim == 2:
        batch, length = 1, x.shape[0]
    elif m.self_attn.batch_first:
        batch, length = x.shape[0], x.shape[1]
    else:
        batch, length = x.shape[1], x.shape[0]
    ff = m.linear1.out_features
    n = tokens * d
    c.elementwise(f"{name}:norm1", "LayerNorm", **layer_norm_counts(n, tokens))
    attention_counts(
        c,
        f"{name}:self_attn",
        batch,
        length,
        length,
        d,
        m.self_attn.num_heads,
        proj=True,
        bias=m.self_attn.in_proj_bias is not None,
    )
    c.elementwise(f"{name}:add1", "add", ann_adds=n, ann_input_reads=n, ann_outputs=n)
    c.elementwise(f"{name}:norm2", "LayerNorm", **layer_norm_counts(n, tokens))
    dense_product(c, f"{name}:linear1", "Linear", tokens, d, ff, m.linear1.bias is not None)
    c.elementwise(
        f"{name}:activation", "activation", ann_other_ops=tokens * ff, ann_outputs=tokens * ff
    )
    dense_product(c, f"{name}:linear2", "Linear", tokens, ff, d, m.linear2.bias is not None)
    c.elementwise(f"{name}:add2", "add", ann_adds=n, ann_input_reads=n, ann_outputs=n)
