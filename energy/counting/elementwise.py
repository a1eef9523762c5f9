"""Counting rules of per-element layers: neurons, norms, pooling, activations, embeddings.

LIF / SN: neuron updates = input elements (neurons x steps), spikes = sum of the output.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from energy.counting.records import Rule
from energy.counting.tensors import exact_sum

if TYPE_CHECKING:
    from energy.counting.collector import Collector

__all__ = [
    "activation",
    "avg_pool",
    "batch_norm",
    "count_neuron",
    "embedding",
    "layer_norm",
    "layer_norm_counts",
    "max_pool",
    "neuron",
]


def neuron(stateful: bool) -> Rule:
    def rule(c: Collector, name: str, m: nn.Module, args: tuple, out: Any) -> None:
        s = out[0] if isinstance(out, tuple | list) else out
        count_neuron(c, name, m, s, stateful=stateful)

    return rule


def count_neuron(
    c: Collector,
    name: str,
    m: nn.Module,
    spikes: torch.Tensor,
    *,
    stateful: bool = True,
    events: bool = False,
) -> None:
    """One call of a neuron layer emitting ``spikes``: updates = its elements (neurons x steps).

    Spikes are the sum of the output (multi-level spikes count their value), or with
    ``events=True`` (graded spikes scaled by a real factor) the number of non-zero outputs.
    """
    rec = c.record(
        name, type(m).__name__, "neuron", stateful=stateful, state_words=c.words(spikes.numel())
    )
    c.add(rec, calls=1, updates=spikes.numel())
    if not events:
        c.mark_spikes(spikes)  # integer-valued: consumers skip the integer check
    if c.event_driven:
        total = exact_sum((spikes != 0).to(torch.float32) if events else spikes)
        c.spike_totals[id(m)] = (total, tuple(spikes.shape))
        c.defer(rec, (total,), lambda v: {"spikes_out": v[0]})


def batch_norm(c: Collector, name: str, m: nn.Module, args: tuple, out: Any) -> None:
    rec = c.record(name, type(m).__name__, "norm", weight_words=2 * m.num_features)
    rec.static["in_words"] = rec.static["out_words"] = c.words(out.numel())
    c.add(rec, calls=1, numel=out.numel())


def avg_pool(c: Collector, name: str, m: nn.Module, args: tuple, out: Any) -> None:
    n_in, n_out = args[0].numel(), out.numel()
    _pool(c, name, m, n_in, n_out, ann_adds=max(n_in - n_out, 0), ann_macs=n_out)


def max_pool(c: Collector, name: str, m: nn.Module, args: tuple, out: Any) -> None:
    o = out[0] if isinstance(out, tuple) else out
    n_in, n_out = args[0].numel(), o.numel()
    _pool(c, name, m, n_in, n_out, ann_other_ops=max(n_in - n_out, 0))


def _pool(c: Collector, name: str, m: nn.Module, n_in: int, n_out: int, **ops: float) -> None:
    """A pooling layer (ANN only): ``ops``, every input read and every output written once."""
    rec = c.elementwise(
        name,
        type(m).__name__,
        **ops,
        ann_input_reads=n_in,
        ann_output_writes=n_out,
        ann_inputs=n_in,
        ann_outputs=n_out,
    )
    rec.static["in_words"] = c.words(n_in)


def activation(c: Collector, name: str, m: nn.Module, args: tuple, out: Any) -> None:
    """An ANN activation, one op per element, fused into the producing layer's write."""
    n = out.numel()
    c.elementwise(name, type(m).__name__, ann_other_ops=n, ann_inputs=n, ann_outputs=n)


def layer_norm_counts(n: int, rows: int) -> dict[str, float]:
    # mean and variance sums (2 adds), square and scale-shift (2 MACs) per element; one
    # rsqrt per row; gain and bias read per use
    return {
        "ann_adds": 2 * n,
        "ann_macs": 2 * n,
        "ann_other_ops": rows,
        "ann_weight_reads": n,
        "ann_bias_reads": n,
        "ann_input_reads": n,
        "ann_output_writes": n,
        "ann_inputs": n,
        "ann_outputs": n,
    }


def layer_norm(c: Collector, name: str, m: nn.LayerNorm, args: tuple, out: Any) -> None:
    n = out.numel()
    width = math.prod(m.normalized_shape)
    rec = c.elementwise(name, type(m).__name__, **layer_norm_counts(n, n // width))
    rec.static["weight_words"] = 2 * width
    rec.static["in_words"] = c.words(n)


def embedding(c: Collector, name: str, m: nn.Embedding, args: tuple, out: Any) -> None:
    n = out.numel()
    rec = c.elementwise(name, type(m).__name__, ann_weight_reads=n, ann_output_writes=n)
    rec.static["weight_words"] = m.weight.numel()
