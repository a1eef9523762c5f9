"""The collector: attaches one counting hook per module with a rule and gathers the records.

Hooks only record activity into the collector, which owns the results; counts that need a
tensor value are deferred and resolved with one device sync per batch (:meth:`end_batch`).
"""

from __future__ import annotations

import weakref
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.nn.modules.module import register_module_forward_hook

from energy.counting.fanout import shared_fanout
from energy.counting.frameworks import framework_free_types, looks_spiking, unknown_spiking
from energy.counting.records import LayerRecord, Rule, RuleSpec
from energy.counting.table import FREE_TYPES, rule_table
from energy.counting.tensors import integral_

__all__ = ["Collector"]


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
        self._rules_of: dict[int, tuple[nn.Module, str, Rule]] = {}  # id -> (module, name, rule)
        self._covered: set[int] = set()  # ids of modules whose own functional ops are counted
        self.names: dict[int, str] = {}
        self.modules: list[nn.Module] = []  # the model's modules at the last attach
        self.unknown_modules: dict[str, str] = {}  # name -> type of hooked unknown leaves
        # name -> (samples, input shape, framework) a framework neuron saw in its last call
        self.neuron_batches: dict[str, tuple[int, tuple[int, ...], str]] = {}
        self._free = FREE_TYPES + framework_free_types()

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
        """Register the hooks (idempotent); :meth:`detach` removes them.

        One global module forward hook dispatches to the rules of this model's modules (one
        registration instead of one per module; issue 15). It runs before per-module hooks, so
        an :class:`~energy.counting.Audit` entered after attaching sees the rules run inside
        their module.
        """
        if self._handles:
            return self
        opaque_roots: list[str] = []
        self.modules.clear()
        for name, module in self.model.named_modules():
            self.names[id(module)] = name
            self.modules.append(module)
            if any(root == "" or name.startswith(root + ".") for root in opaque_roots):
                self._covered.add(id(module))
                continue
            spec = self.find_rule(module)
            if spec is not None:
                self._covered.add(id(module))
                if spec.opaque:
                    opaque_roots.append(name)
                self._rules_of[id(module)] = (module, name, spec.fn)
            elif isinstance(module, self._free):
                self._covered.add(id(module))
            elif not any(True for _ in module.children()):
                self.unknown_modules[name] = type(module).__name__
                rule = unknown_spiking if looks_spiking(module) else _unknown
                self._rules_of[id(module)] = (module, name, rule)
        self._handles.append(register_module_forward_hook(self._hook))
        return self

    def detach(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()
        self._rules_of.clear()

    def __enter__(self) -> Collector:
        return self.attach()

    def __exit__(self, *exc: object) -> None:
        self.detach()

    def _hook(self, module: nn.Module, args: tuple, out: Any) -> None:
        entry = self._rules_of.get(id(module))
        if entry is not None and entry[0] is module:
            entry[2](self, entry[1], module, args, out)

    # -- per batch -----------------------------------------------------------------------------
    def begin_batch(self, batch_size: int) -> None:
        self.batch = max(int(batch_size), 1)
        self.records = {}
        self.neuron_batches = {}

    def end_batch(self) -> dict[str, LayerRecord]:
        """Resolve deferred tensor counts (one device sync) and return this batch's records."""
        if self._tensors:
            f64 = torch.float64
            values = torch.stack([t if t.dtype == f64 else t.to(f64) for t in self._tensors])
            values = values.tolist()
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
        """:func:`~energy.counting.conv_fanout` of the geometry ``key`` on ``device`` (cached)."""
        fan = self._fanouts.get((key, device))
        if fan is None:
            fan = self._fanouts[(key, device)] = shared_fanout(*key).to(device)
        return fan

    def ones_fanout(self, key: tuple, device: torch.device) -> torch.Tensor:
        """``[2, prod(S)]`` float64: ones, then the flattened fan-out (one product gives the
        events and the SOPs of an occupancy map)."""
        pair = self._fanouts.get((key, device, 2))
        if pair is None:
            fan = self.fanout(key, device).reshape(-1)
            pair = self._fanouts[(key, device, 2)] = torch.stack((torch.ones_like(fan), fan))
        return pair

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
        ax = x.abs()  # a fresh tensor: checked for integers in place once summed
        events, weighted = sops(ax)
        is_int = integral_(ax)

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


def _unknown(c: Collector, name: str, m: nn.Module, args: tuple, out: Any) -> None:
    rec = c.record(name, type(m).__name__, "unknown")
    c.add(rec, calls=1)
