"""Per-layer counts from forward passes, through forward hooks chosen by module type.

A :class:`Collector` walks a model once and attaches, to every module whose type (or nearest
base class) is in the rule table (:func:`rule_table`), a forward hook that records *primitives*
for that layer: dense MACs, exact synaptic operations (SOPs), input events, neuron updates,
spikes, tensor sizes. Conventions turn primitives into the CSV columns
(:mod:`energy.conventions`); nothing here depends on a convention or a cost model.

Counting rules (shapes time-first as elsewhere; a conv sees ``[T*B, C, H, W]``):

- conv on integer-valued input ``x`` (binary spikes or multi-level counts):
  ``SOPs = Σ_positions |x| · fanout`` with ``fanout[i, j]`` the number of output positions the
  input position reaches (exact at padding borders and for strides), times ``C_out / groups``.
  ``fanout`` is the transposed convolution of ones, built once per shape from its separable
  1-D factors; the hook itself costs one reduction over the input and one small dot product.
- linear on integer input: ``SOPs = Σ|x| · out_features``.
- :class:`~fsve.nn.attention.SpikeMatmul` ``A @ B`` with both operands integer:
  ``SOPs = Σ_{i,j,l} |A_il|·|B_lj| = Σ_l (Σ_i |A_il|)(Σ_j |B_lj|)`` (an accumulate happens only
  where both operands are non-zero); ``sops_nominal = Σ|A| · m`` is the count if only A were
  event-driven. One integer operand: event-driven on that one. Real operands: dense MACs.
- any synaptic layer on real input: dense MACs (``macs``).
- LIF / SN: neuron updates = input elements (neurons x steps), spikes = sum of the output.

Functional operations inside our own container modules (residual adds, the rate mean of the
FSVE head, the teacher's ReLUs, products and attention) are counted by explicit rules for those
container types. Leaf modules without a rule are reported as unknown; with ``audit=True`` a
torch function mode also reports torch functions that run directly inside a module without a
rule (e.g. an ``F.relu`` in a container nobody taught us), so nothing is skipped silently.
"""

from __future__ import annotations

import math
import sys
import weakref
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode, resolve_name

__all__ = [
    "Collector",
    "LayerRecord",
    "RuleSpec",
    "conv_fanout",
    "rule_table",
]

Rule = Callable[["Collector", str, nn.Module, tuple, Any], None]


@dataclass(frozen=True)
class RuleSpec:
    """A counting rule; ``opaque`` rules count their whole subtree (children are not hooked)."""

    fn: Rule
    opaque: bool = False


@dataclass
class LayerRecord:
    """Primitives of one layer, summed over its calls in one batch (see ``docs/energy.md``)."""

    name: str  # qualified module name (sub-products of opaque rules add a ":part" suffix)
    type: str  # module class name
    kind: str  # synapse | neuron | norm | elementwise | unknown
    static: dict[str, Any] = field(default_factory=dict)  # bias, stateful, capacities (words)
    prims: dict[str, float] = field(default_factory=lambda: defaultdict(float))


# ----------------------------------------------------------------------------------------------
# Fan-out of a convolution


def _fanout_1d(n_in: int, n_out: int, k: int, stride: int, pad_left: int, dilation: int) -> list:
    """Per input index: how many (output index, kernel tap) pairs read it."""
    f = [0] * n_in
    for o in range(n_out):
        for j in range(k):
            i = o * stride - pad_left + j * dilation
            if 0 <= i < n_in:
                f[i] += 1
    return f


def conv_fanout(
    in_size: tuple[int, ...],
    out_size: tuple[int, ...],
    kernel: tuple[int, ...],
    stride: tuple[int, ...],
    pad_left: tuple[int, ...],
    dilation: tuple[int, ...],
) -> torch.Tensor:
    """``fanout[*S]`` (float64): output positions x taps reached by each input position.

    Equals ``conv_transpose(ones(out_size), ones(kernel))`` cropped to ``in_size``; zero padding
    on the left by ``pad_left`` (right padding only shows in ``out_size``).
    """
    maps = [
        torch.tensor(_fanout_1d(n, o, k, s, p, d), dtype=torch.float64)
        for n, o, k, s, p, d in zip(
            in_size, out_size, kernel, stride, pad_left, dilation, strict=True
        )
    ]
    fan = maps[0]
    for m in maps[1:]:
        fan = fan.unsqueeze(-1) * m  # outer product, [*S]
    return fan


def _pads(m: nn.modules.conv._ConvNd, nsp: int) -> tuple[int, ...]:
    """Left zero padding per spatial dim (``padding='same'`` puts the extra one on the right)."""
    if isinstance(m.padding, str):
        if m.padding == "valid":
            return (0,) * nsp
        return tuple(d * (k - 1) // 2 for d, k in zip(m.dilation, m.kernel_size, strict=True))
    return tuple(m.padding)


# ----------------------------------------------------------------------------------------------
# The collector


class Collector:
    """Attaches counting hooks to ``model`` and gathers one :class:`LayerRecord` per layer.

    ``event_driven=False`` counts an ANN (every synaptic op a MAC, no activity reductions).
    ``time_steps`` only sizes memories for size-dependent cost models (per sample and step).
    Use as a context manager around forward passes framed by :meth:`begin_batch` /
    :meth:`end_batch`; no ``.item()`` sync happens inside hooks, one per batch at the end.
    """

    def __init__(
        self,
        model: nn.Module,
        event_driven: bool = True,
        time_steps: int = 1,
        rules: dict[type, RuleSpec] | None = None,
    ) -> None:
        self.model = model
        self.event_driven = event_driven
        self.time_steps = max(int(time_steps), 1)
        self.rules = rule_table() if rules is None else rules
        self.batch = 1
        self.records: dict[str, LayerRecord] = {}
        # id(neuron module) -> (Σ spikes as a 0-d tensor, output shape) of its last call
        self.spike_totals: dict[int, tuple[torch.Tensor, tuple[int, ...]]] = {}
        self.unknown_functional: dict[tuple[str, str], int] = defaultdict(int)
        self._deferred: list[tuple[LayerRecord, int, int, Callable]] = []
        self._tensors: list[torch.Tensor] = []
        self._spikes: dict[int, weakref.ref] = {}
        self._fanouts: dict[tuple, torch.Tensor] = {}
        self._handles: list[Any] = []
        self._covered: set[int] = set()  # ids of modules whose own functional ops are counted
        self.names: dict[int, str] = {}
        self.unknown_modules: dict[str, str] = {}  # name -> type of hooked unknown leaves

    # -- setup ---------------------------------------------------------------------------------
    def find_rule(self, module: nn.Module) -> RuleSpec | None:
        for cls in type(module).__mro__:
            spec = self.rules.get(cls)
            if spec is not None:
                return spec
        return None

    def covers(self, module: nn.Module) -> bool:
        """Whether ``module``'s own functional ops are accounted for (rule, opaque parent, free)."""
        return id(module) in self._covered

    def attach(self) -> Collector:
        """Register the hooks (idempotent); :meth:`detach` removes them."""
        if self._handles:
            return self
        opaque_roots: list[str] = []
        for name, module in self.model.named_modules():
            self.names[id(module)] = name
            if any(root == "" or name.startswith(root + ".") for root in opaque_roots):
                self._covered.add(id(module))
                continue
            spec = self.find_rule(module)
            if spec is not None:
                self._covered.add(id(module))
                if spec.opaque:
                    opaque_roots.append(name)
                self._handles.append(module.register_forward_hook(self._hook(name, spec.fn)))
            elif isinstance(module, FREE_TYPES):
                self._covered.add(id(module))
            elif not any(True for _ in module.children()):
                self.unknown_modules[name] = type(module).__name__
                self._handles.append(module.register_forward_hook(self._hook(name, _unknown)))
        return self

    def detach(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def __enter__(self) -> Collector:
        return self.attach()

    def __exit__(self, *exc: object) -> None:
        self.detach()

    def _hook(self, name: str, fn: Rule) -> Callable:
        def hook(module: nn.Module, args: tuple, out: Any) -> None:
            fn(self, name, module, args, out)

        return hook

    # -- per batch -----------------------------------------------------------------------------
    def begin_batch(self, batch_size: int) -> None:
        self.batch = max(int(batch_size), 1)
        self.records = {}

    def end_batch(self) -> dict[str, LayerRecord]:
        """Resolve deferred tensor counts (one device sync) and return this batch's records."""
        if self._tensors:
            values = torch.stack([t.detach().to(torch.float64) for t in self._tensors]).tolist()
            for rec, start, stop, fn in self._deferred:
                for key, v in fn(values[start:stop]).items():
                    rec.prims[key] += v
        self._tensors.clear()
        self._deferred.clear()
        self._spikes.clear()
        self.spike_totals.clear()
        records, self.records = self.records, {}
        return records

    # -- API for rules -------------------------------------------------------------------------
    def record(self, name: str, type_name: str, kind: str, **static: Any) -> LayerRecord:
        """The record of ``name`` in this batch, created (in call order) on first use."""
        rec = self.records.get(name)
        if rec is None:
            rec = self.records[name] = LayerRecord(name, type_name, kind, dict(static))
        return rec

    def add(self, rec: LayerRecord, **prims: float) -> None:
        for key, v in prims.items():
            rec.prims[key] += v

    def defer(
        self, rec: LayerRecord, tensors: tuple[torch.Tensor, ...], fn: Callable[[list], dict]
    ) -> None:
        """Add ``fn(values of tensors)`` to ``rec`` at the end of the batch (no sync now)."""
        start = len(self._tensors)
        self._tensors.extend(tensors)
        self._deferred.append((rec, start, len(self._tensors), fn))

    def mark_spikes(self, t: torch.Tensor) -> None:
        """Remember ``t`` (a neuron output) as binary, so consumers skip the integer check."""
        self._spikes[id(t)] = weakref.ref(t)

    def known_spikes(self, x: torch.Tensor) -> bool:
        base = x if x._base is None else x._base
        ref = self._spikes.get(id(base))
        return ref is not None and ref() is base

    def words(self, numel: int) -> float:
        """Elements per sample and time step (memory capacity for size-dependent costs)."""
        return max(numel / (self.batch * self.time_steps), 1.0)

    def fanout(self, key: tuple, device: torch.device) -> torch.Tensor:
        fan = self._fanouts.get((key, device))
        if fan is None:
            fan = self._fanouts[(key, device)] = conv_fanout(*key).to(device)
        return fan

    # -- shared counting helpers ---------------------------------------------------------------
    def synapse(
        self,
        name: str,
        type_name: str,
        x: torch.Tensor | None,
        *,
        dense_macs: int,
        in_numel: int,
        out_numel: int,
        lemaire_in: int,
        fan_full: int,
        bias: bool,
        weight_words: float,
        sops: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]] | None = None,
        sops_scale: float = 1.0,
    ) -> None:
        """Record one call of a synaptic layer reading ``x``.

        ``sops(|x|)`` returns ``(events, weighted)``: ``Σ|x|`` and the exact SOPs divided by
        ``sops_scale``, used when ``x`` is integer-valued. ``fan_full`` is the fan-out per input
        event without border correction (``sops_nominal``); ``lemaire_in`` the input reads of
        the formal (dense) layer under Lemaire's convention. ``x=None`` or an ANN collector
        records a dense call.
        """
        rec = self.record(
            name,
            type_name,
            "synapse",
            bias=bias,
            weight_words=weight_words,
            in_words=self.words(in_numel),
            out_words=self.words(out_numel),
            state_words=self.words(out_numel),
        )
        self.add(
            rec,
            calls=1,
            dense_macs=dense_macs,
            in_numel=in_numel,
            out_numel=out_numel,
            lemaire_in_dense=lemaire_in,
        )
        dense = {
            "macs": dense_macs,
            "in_numel_real": in_numel,
            "out_numel_real": out_numel,
            "lemaire_in_real": lemaire_in,
        }
        if x is None or not self.event_driven or sops is None:
            self.add(rec, **dense)
            return
        if x.dtype == torch.bool:
            x = x.to(torch.float32)
        if self.known_spikes(x):
            events, weighted = sops(x)
            self.defer(
                rec, (events, weighted), lambda v: _event_prims(v[0], v[1] * sops_scale, fan_full)
            )
            return
        ax, is_int = _magnitude(x)
        events, weighted = sops(ax)

        def resolve(v: list) -> dict:
            return _event_prims(v[0], v[1] * sops_scale, fan_full) if v[2] else dense

        self.defer(rec, (events, weighted, is_int), resolve)

    def elementwise(self, name: str, type_name: str, **prims: float) -> LayerRecord:
        """Record elementwise work given as ``ann_<column>`` / ``snn_<column>`` (default: ANN)."""
        rec = self.record(name, type_name, "elementwise")
        self.add(rec, calls=1, **prims)
        return rec


def _event_prims(events: float, sops: float, fan_full: int) -> dict:
    return {"sops": sops, "sops_nominal": events * fan_full, "spikes_in": events}


_CHUNK = 1 << 16


def exact_sum(t: torch.Tensor) -> torch.Tensor:
    """``Σ t`` as a float64 0-d tensor, exact for integer values up to 256 in magnitude.

    Float32 partial sums over chunks of 2^16 elements stay below 2^24 (exact), and only the
    partials are summed in float64: a float64 reduction of the whole tensor is ~60x slower.
    """
    flat = t.reshape(-1)
    n = flat.numel()
    k = n // _CHUNK
    if k == 0:
        return flat.sum().to(torch.float64)
    total = flat[: k * _CHUNK].view(k, _CHUNK).sum(1).to(torch.float64).sum()
    if n > k * _CHUNK:
        total = total + flat[k * _CHUNK :].sum().to(torch.float64)
    return total


def _magnitude(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(|x|, x is integer-valued)`` for an input of unknown kind (one host sync for the sign)."""
    lo = torch.aminmax(x).min
    ax = x if bool(lo >= 0) else x.abs()
    is_int = torch.count_nonzero(torch.frac(x)) == 0
    return ax, is_int


# ----------------------------------------------------------------------------------------------
# Rules: our layers and torch layers


def _conv(c: Collector, name: str, m: nn.modules.conv._ConvNd, args: tuple, out: Any) -> None:
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
        pads = _pads(m, nsp)
    out_sp = tuple(out.shape[-nsp:])
    taps = math.prod(kernel)
    dense = out.numel() * cin_g * taps
    per_event = (cout // groups) * taps
    key = (tuple(x.shape[2:]), out_sp, kernel, tuple(m.stride), pads, tuple(m.dilation))

    def sops(ax: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        fan = c.fanout(key, ax.device)
        occupancy = ax.sum(dim=(0, 1)).to(torch.float64)  # [*S]: input events per position
        return occupancy.sum(), (occupancy * fan).sum()

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


def _linear(c: Collector, name: str, m: nn.Linear, args: tuple, out: Any) -> None:
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


def _spike_matmul(c: Collector, name: str, m: nn.Module, args: tuple, out: Any) -> None:
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
    aa, int_a = (a, one) if c.known_spikes(a) else _magnitude(a)
    ab, int_b = (b, one) if c.known_spikes(b) else _magnitude(b)
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


def _neuron(stateful: bool) -> Rule:
    def rule(c: Collector, name: str, m: nn.Module, args: tuple, out: Any) -> None:
        s = out[0] if isinstance(out, tuple | list) else out
        rec = c.record(
            name, type(m).__name__, "neuron", stateful=stateful, state_words=c.words(s.numel())
        )
        c.add(rec, calls=1, updates=s.numel())
        c.mark_spikes(s)
        if c.event_driven:
            total = exact_sum(s)
            c.spike_totals[id(m)] = (total, tuple(s.shape))
            c.defer(rec, (total,), lambda v: {"spikes_out": v[0]})

    return rule


def _norm(c: Collector, name: str, m: nn.Module, args: tuple, out: Any) -> None:
    rec = c.record(name, type(m).__name__, "norm", weight_words=2 * m.num_features)
    rec.static["in_words"] = rec.static["out_words"] = c.words(out.numel())
    c.add(rec, calls=1, numel=out.numel())


def _residual(c: Collector, name: str, m: nn.Module, args: tuple, out: Any) -> None:
    """A membrane (or activation) shortcut ``out = f(x) + shortcut``: one add per element."""
    n = out.numel()
    rec = c.elementwise(name + ":add", "add", ann_adds=n, ann_input_reads=n, ann_outputs=n)
    rec.static["in_words"] = c.words(n)


def _visual_encoder(c: Collector, name: str, m: nn.Module, args: tuple, out: Any) -> None:
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


def _avg_pool(c: Collector, name: str, m: nn.Module, args: tuple, out: Any) -> None:
    x = args[0]
    n_in, n_out = x.numel(), out.numel()
    rec = c.elementwise(
        name,
        type(m).__name__,
        ann_adds=max(n_in - n_out, 0),
        ann_macs=n_out,
        ann_input_reads=n_in,
        ann_output_writes=n_out,
        ann_inputs=n_in,
        ann_outputs=n_out,
    )
    rec.static["in_words"] = c.words(n_in)


def _max_pool(c: Collector, name: str, m: nn.Module, args: tuple, out: Any) -> None:
    x = args[0]
    o = out[0] if isinstance(out, tuple) else out
    n_in, n_out = x.numel(), o.numel()
    rec = c.elementwise(
        name,
        type(m).__name__,
        ann_other_ops=max(n_in - n_out, 0),
        ann_input_reads=n_in,
        ann_output_writes=n_out,
        ann_inputs=n_in,
        ann_outputs=n_out,
    )
    rec.static["in_words"] = c.words(n_in)


def _activation(c: Collector, name: str, m: nn.Module, args: tuple, out: Any) -> None:
    """An ANN activation, one op per element, fused into the producing layer's write."""
    n = out.numel()
    c.elementwise(name, type(m).__name__, ann_other_ops=n, ann_inputs=n, ann_outputs=n)


def _layer_norm_counts(n: int, rows: int) -> dict[str, float]:
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


def _layer_norm(c: Collector, name: str, m: nn.LayerNorm, args: tuple, out: Any) -> None:
    n = out.numel()
    width = math.prod(m.normalized_shape)
    rec = c.elementwise(name, type(m).__name__, **_layer_norm_counts(n, n // width))
    rec.static["weight_words"] = 2 * width
    rec.static["in_words"] = c.words(n)


def _embedding(c: Collector, name: str, m: nn.Embedding, args: tuple, out: Any) -> None:
    n = out.numel()
    rec = c.elementwise(name, type(m).__name__, ann_weight_reads=n, ann_output_writes=n)
    rec.static["weight_words"] = m.weight.numel()


def _unknown(c: Collector, name: str, m: nn.Module, args: tuple, out: Any) -> None:
    rec = c.record(name, type(m).__name__, "unknown")
    c.add(rec, calls=1)


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


def _attention_counts(
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


def _mha(c: Collector, name: str, m: nn.MultiheadAttention, args: tuple, out: Any) -> None:
    q, k = args[0], args[1] if len(args) > 1 else args[0]
    if q.ndim == 2:  # unbatched [L, E]
        batch, lq, lk = 1, q.shape[0], k.shape[0]
    elif m.batch_first:
        batch, lq, lk = q.shape[0], q.shape[1], k.shape[1]
    else:
        batch, lq, lk = q.shape[1], q.shape[0], k.shape[0]
    _attention_counts(
        c, name, batch, lq, lk, m.embed_dim, m.num_heads, proj=True, bias=m.in_proj_bias is not None
    )


def _transformer_layer(
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
    c.elementwise(f"{name}:norm1", "LayerNorm", **_layer_norm_counts(n, tokens))
    _attention_counts(
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
    c.elementwise(f"{name}:norm2", "LayerNorm", **_layer_norm_counts(n, tokens))
    dense_product(c, f"{name}:linear1", "Linear", tokens, d, ff, m.linear1.bias is not None)
    c.elementwise(
        f"{name}:activation", "activation", ann_other_ops=tokens * ff, ann_outputs=tokens * ff
    )
    dense_product(c, f"{name}:linear2", "Linear", tokens, ff, d, m.linear2.bias is not None)
    c.elementwise(f"{name}:add2", "add", ann_adds=n, ann_input_reads=n, ann_outputs=n)


# ----------------------------------------------------------------------------------------------
# Rules: the SPKLIP teacher's containers (their functional ops)


def _hsfe(c: Collector, name: str, m: nn.Module, args: tuple, out: Any) -> None:
    """HSFE: temporal masks ``M_i ∘ X`` and SA weights ``W_i ∘ H_i`` (elementwise products)."""
    x = args[0]
    n, _, h, w = x.shape
    # HSFE runs its branch convs functionally (one conv with the masks folded into the
    # weights), so no module hook sees them: count each as the T_i -> k_i conv it is.
    for i, ((start, stop), branch) in enumerate(zip(m.windows, m.branches, strict=True)):
        conv = branch.conv
        y = torch.empty((n, conv.out_channels, h, w), device="meta")
        _conv(c, f"{name}.branches.{i}.conv", conv, (x[:, start:stop],), y)
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


def _spatial_attention(c: Collector, name: str, m: nn.Module, args: tuple, out: Any) -> None:
    x = args[0]
    hidden = x.shape[0] * m.conv1.out_channels * x.shape[2] * x.shape[3]
    c.elementwise(f"{name}:relu", "relu", ann_other_ops=hidden, ann_outputs=hidden)
    c.elementwise(f"{name}:sigmoid", "sigmoid", ann_other_ops=out.numel(), ann_outputs=out.numel())


def _bottleneck(c: Collector, name: str, m: nn.Module, args: tuple, out: Any) -> None:
    x = args[0]
    inner = x.shape[0] * m.conv1.out_channels * x.shape[2] * x.shape[3]  # after conv1, conv2
    n = out.numel()
    c.elementwise(f"{name}:relu", "relu", ann_other_ops=2 * inner + n, ann_outputs=2 * inner + n)
    c.elementwise(f"{name}:add", "add", ann_adds=n, ann_input_reads=n, ann_outputs=n)


def _attention_pool(c: Collector, name: str, m: nn.Module, args: tuple, out: Any) -> None:
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
    _attention_counts(c, f"{name}:sdpa", n, 1, length, ch, m.heads, proj=False)


def _avgpool_head(c: Collector, name: str, m: nn.Module, args: tuple, out: Any) -> None:
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


def _add_input(c: Collector, name: str, m: nn.Module, args: tuple, out: Any) -> None:
    """A learnable positional embedding added to the input (``x + pos``)."""
    n = args[0].numel()
    c.elementwise(
        f"{name}:pos_add", "add", ann_adds=n, ann_input_reads=n, ann_bias_reads=n, ann_outputs=n
    )


def _spklip(c: Collector, name: str, m: nn.Module, args: tuple, out: Any) -> None:
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


# ----------------------------------------------------------------------------------------------
# The table

FREE_TYPES: tuple[type, ...] = (
    nn.Identity,
    nn.Dropout,
    nn.Dropout1d,
    nn.Dropout2d,
    nn.Dropout3d,
    nn.AlphaDropout,
    nn.Flatten,
    nn.Unflatten,
)


def rule_table() -> dict[type, RuleSpec]:
    """Module type -> counting rule. Subclasses use the rule of their nearest listed base.

    SpikingJelly types are added when SpikingJelly is already imported (a model using it must
    have imported it), so ``import energy`` stays light.
    """
    from fsve.models import student, teacher
    from fsve.nn import attention, blocks, neurons, norm

    table: dict[type, RuleSpec] = {
        nn.Conv1d: RuleSpec(_conv),
        nn.Conv2d: RuleSpec(_conv),
        nn.Conv3d: RuleSpec(_conv),
        nn.Linear: RuleSpec(_linear),
        attention.SpikeMatmul: RuleSpec(_spike_matmul),
        neurons.LIF: RuleSpec(_neuron(stateful=True)),
        attention.SN: RuleSpec(_neuron(stateful=False)),
        attention.AttentionSN: RuleSpec(_neuron(stateful=False)),
        norm.TDBN1d: RuleSpec(_norm),
        norm.TDBN2d: RuleSpec(_norm),
        nn.modules.batchnorm._BatchNorm: RuleSpec(_norm),
        blocks.MSBlock: RuleSpec(_residual),
        attention.ESDSA: RuleSpec(_residual),
        attention.SpikingMLP: RuleSpec(_residual),
        student.SpikingVisualEncoder: RuleSpec(_visual_encoder),
        nn.AvgPool1d: RuleSpec(_avg_pool),
        nn.AvgPool2d: RuleSpec(_avg_pool),
        nn.AvgPool3d: RuleSpec(_avg_pool),
        nn.AdaptiveAvgPool1d: RuleSpec(_avg_pool),
        nn.AdaptiveAvgPool2d: RuleSpec(_avg_pool),
        nn.AdaptiveAvgPool3d: RuleSpec(_avg_pool),
        nn.MaxPool1d: RuleSpec(_max_pool),
        nn.MaxPool2d: RuleSpec(_max_pool),
        nn.MaxPool3d: RuleSpec(_max_pool),
        nn.AdaptiveMaxPool2d: RuleSpec(_max_pool),
        nn.ReLU: RuleSpec(_activation),
        nn.ReLU6: RuleSpec(_activation),
        nn.LeakyReLU: RuleSpec(_activation),
        nn.GELU: RuleSpec(_activation),
        nn.SiLU: RuleSpec(_activation),
        nn.Sigmoid: RuleSpec(_activation),
        nn.Tanh: RuleSpec(_activation),
        nn.Softmax: RuleSpec(_activation),
        nn.LayerNorm: RuleSpec(_layer_norm),
        nn.Embedding: RuleSpec(_embedding),
        nn.MultiheadAttention: RuleSpec(_mha, opaque=True),
        nn.TransformerEncoderLayer: RuleSpec(_transformer_layer, opaque=True),
        teacher.HSFE: RuleSpec(_hsfe),
        teacher.SpatialAttention: RuleSpec(_spatial_attention),
        teacher.Bottleneck: RuleSpec(_bottleneck),
        teacher.AttentionPool2d: RuleSpec(_attention_pool),
        teacher.AvgPoolHead: RuleSpec(_avgpool_head),
        teacher.TemporalTransformer: RuleSpec(_add_input),
        teacher.SPKLIP: RuleSpec(_spklip),
    }
    if "spikingjelly.activation_based.neuron" in sys.modules:
        from spikingjelly.activation_based import neuron as sj_neuron

        table[sj_neuron.BaseNode] = RuleSpec(_neuron(stateful=True), opaque=True)
    return table


# ----------------------------------------------------------------------------------------------
# Audit: torch functions that run directly inside modules without a rule

# torch functions that compute nothing (views, metadata, copies, creation)
_FREE_FUNCTIONS = frozenset(
    """
    view reshape flatten unflatten transpose permute contiguous squeeze unsqueeze expand
    expand_as t chunk split unbind narrow select __getitem__ size dim numel to float double
    half bfloat16 type cat concat stack clone detach is_floating_point is_complex empty_like
    zeros_like ones_like new_zeros new_ones new_empty __len__ __iter__ __format__ __repr__
    __bool__ __index__ __hash__ __eq__ __ne__ is_contiguous element_size data_ptr
    untyped_storage requires_grad_ __setstate__ __reduce_ex__ as_strided movedim swapaxes
    tolist item all any equal isfinite cpu cuda stride storage_offset __get__
    """.split()
)


def _function_name(func: Callable) -> str:
    try:
        return resolve_name(func) or getattr(func, "__name__", repr(func))
    except Exception:  # resolve_name can fail on exotic callables
        return getattr(func, "__name__", repr(func))


class Audit(TorchFunctionMode):
    """Reports torch functions that compute inside modules the collector does not cover."""

    def __init__(self, collector: Collector) -> None:
        super().__init__()
        self.c = collector
        self.stack: list[nn.Module] = []
        self._handles: list[Any] = []

    def __enter__(self) -> Audit:
        for module in self.c.model.modules():
            self._handles.append(module.register_forward_pre_hook(self._push))
            self._handles.append(module.register_forward_hook(self._pop))
        return super().__enter__()

    def __exit__(self, *exc: object) -> None:
        super().__exit__(*exc)
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def _push(self, module: nn.Module, args: tuple) -> None:
        self.stack.append(module)

    def _pop(self, module: nn.Module, args: tuple, out: Any) -> None:
        if self.stack and self.stack[-1] is module:
            self.stack.pop()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        top = self.stack[-1] if self.stack else self.c.model
        if not self.c.covers(top):
            full = _function_name(func)
            if full.rsplit(".", 1)[-1] not in _FREE_FUNCTIONS:
                self.c.unknown_functional[(self.c.names.get(id(top), "?"), full)] += 1
        return func(*args, **kwargs)
