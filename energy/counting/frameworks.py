"""Neurons of other PyTorch SNN frameworks: SpikingJelly, snnTorch, Norse, Sinabs (issue 15).

A framework is looked at only when it is already imported (a model built with it imported
it), so a framework that is not installed costs nothing. Per neuron module and call:
neuron updates = neurons x steps simulated, spikes = Σ output (Sinabs multi-spikes count their
value; snnTorch graded spikes count once each). Supported, exactly:

- SpikingJelly ``BaseNode`` subclasses: ``step_mode="s"`` one step per call on ``[B, ...]``,
  ``"m"`` ``[T, B, ...]`` per call (time-first);
- snnTorch ``Leaky``, ``Synaptic``, ``RLeaky`` (one step per call on ``[B, ...]``; output
  ``spk`` or a tuple starting with it); RLeaky's recurrent ``Linear``/``Conv2d`` is an ordinary
  child layer counted on the previous step's spikes, its one-to-one ``V`` counts one
  accumulate per spike;
- Norse ``LIFCell``, ``LIFBoxCell`` (one step per call, ``(z, state)``) and the sequence
  module ``LIF`` (``[T, B, ...]``);
- Sinabs ``IAF``, ``LIF`` (``[B, T, ...]``), ``IAFSqueeze``, ``LIFSqueeze`` (``[B*T, ...]``).

Any other module of these frameworks' neuron bases, and any rule-less module that looks spiking
(class from a SNN framework's namespace, a name like LIF/IAF/Leaky/Spik/Neuron, or a membrane
attribute), is recorded as ``unknown_spiking``: the report says loudly that it is not counted.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from energy.counting.elementwise import count_neuron
from energy.counting.records import RuleSpec
from energy.counting.tensors import exact_sum

if TYPE_CHECKING:
    from energy.counting.collector import Collector

__all__ = [
    "Layout",
    "declared_layouts",
    "framework_free_types",
    "framework_rules",
    "looks_spiking",
    "reset_states",
    "spiking_types",
    "unknown_spiking",
]

NAMESPACES = ("spikingjelly", "snntorch", "norse", "sinabs", "lava", "rockpool")
_SPIKING_NAME = re.compile(r"LIF|IAF|Leaky|Spik|Neuron|Izhikevich|AdEx")
_STATE_ATTRS = ("mem", "v_mem", "membrane", "v")
_SJ = "spikingjelly.activation_based.neuron"
_SNNTORCH = "snntorch"
_NORSE = "norse.torch.module.snn"
_SINABS = "sinabs.layers"


# -- what a call of a supported neuron simulated --------------------------------------------


@dataclass(frozen=True)
class _Kind:
    """A supported neuron class: where its input holds the samples, how spikes count."""

    framework: str
    batch: Callable[[nn.Module, torch.Tensor], int]  # samples in one call's input
    count_nonzero: bool = False  # graded spikes (snnTorch): count events, not values


def _first(t: torch.Tensor) -> int:
    return int(t.shape[0])


def _second(t: torch.Tensor) -> int:
    return int(t.shape[1])


def _sj_batch(m: nn.Module, x: torch.Tensor) -> int:
    return _second(x) if m.step_mode == "m" else _first(x)


def _squeezed_batch(m: nn.Module, x: torch.Tensor) -> int:
    return m.batch_size if m.batch_size > 0 else int(x.shape[0]) // m.num_timesteps


def _kinds() -> dict[type, _Kind]:
    """Exactly supported classes (a subclass is not assumed to behave like its base)."""
    kinds: dict[type, _Kind] = {}
    if _SNNTORCH in sys.modules:
        import snntorch

        for cls in (snntorch.Leaky, snntorch.Synaptic, snntorch.RLeaky):
            kinds[cls] = _Kind("snnTorch", lambda m, x: _first(x), count_nonzero=True)
    if _NORSE in sys.modules:
        from norse.torch.module import lif, lif_box

        kinds[lif.LIFCell] = kinds[lif_box.LIFBoxCell] = _Kind("Norse", lambda m, x: _first(x))
        kinds[lif.LIF] = _Kind("Norse", lambda m, x: _second(x))
        box = getattr(lif_box, "LIFBox", None)  # not in Norse 1.1
        if box is not None:
            kinds[box] = kinds[lif.LIF]
    if _SINABS in sys.modules:
        import sinabs.layers as sl

        kinds[sl.IAF] = kinds[sl.LIF] = _Kind("Sinabs", lambda m, x: _first(x))
        kinds[sl.IAFSqueeze] = kinds[sl.LIFSqueeze] = _Kind("Sinabs", _squeezed_batch)
    return kinds


def _sj_kind() -> _Kind:
    return _Kind("SpikingJelly", _sj_batch)


# -- rules ------------------------------------------------------------------------------------


def _framework_neuron(kinds: dict[type, _Kind], default: _Kind | None = None) -> Callable:
    """The rule of supported neuron classes ``kinds`` (exact types; ``default`` for all)."""

    def rule(c: Collector, name: str, m: nn.Module, args: tuple, out: Any) -> None:
        k = default or kinds.get(type(m))
        if k is None or not args or not isinstance(args[0], torch.Tensor):
            unknown_spiking(c, name, m, args, out)
            return
        s = out[0] if isinstance(out, tuple | list) else out
        graded = k.count_nonzero and not bool((m.graded_spikes_factor == 1).all())
        count_neuron(c, name, m, s, events=graded)
        c.neuron_batches[name] = (k.batch(m, args[0]), tuple(args[0].shape), k.framework)

    return rule


def _one_to_one(c: Collector, name: str, m: nn.Module, args: tuple, out: Any) -> None:
    """snnTorch RLeaky's one-to-one recurrence ``V * spk``: one accumulate per spike."""
    x = args[0]
    c.synapse(
        name,
        type(m).__name__,
        x,
        dense_macs=x.numel(),
        in_numel=x.numel(),
        out_numel=out.numel(),
        lemaire_in=x.numel(),
        fan_full=1,
        bias=False,
        weight_words=float(torch.as_tensor(m.V).numel()),
        sops=lambda ax: (exact_sum(ax),) * 2,
    )


def unknown_spiking(c: Collector, name: str, m: nn.Module, args: tuple, out: Any) -> None:
    """A spiking module without a rule: recorded (and reported loudly), nothing counted."""
    rec = c.record(name, type(m).__name__, "unknown_spiking")
    c.add(rec, calls=1)


def framework_rules() -> dict[type, RuleSpec]:
    """Module type -> rule for the frameworks already imported (empty when none is)."""
    table: dict[type, RuleSpec] = {}
    unknown = RuleSpec(unknown_spiking, opaque=True)
    kinds = _kinds()
    known = RuleSpec(_framework_neuron(kinds), opaque=True)
    if _SJ in sys.modules:
        from spikingjelly.activation_based import base
        from spikingjelly.activation_based import neuron as sj

        table[base.MemoryModule] = unknown
        table[sj.BaseNode] = RuleSpec(_framework_neuron(kinds, _sj_kind()), opaque=True)
    if _SNNTORCH in sys.modules:
        import snntorch
        from snntorch._neurons.rleaky import RecurrentOneToOne

        table[snntorch.SpikingNeuron] = unknown
        table[snntorch.Leaky] = table[snntorch.Synaptic] = known
        table[snntorch.RLeaky] = RuleSpec(known.fn)  # not opaque: its recurrence is a child
        table[RecurrentOneToOne] = RuleSpec(_one_to_one)
    if _NORSE in sys.modules:
        from norse.torch.module import snn

        for base_cls in (snn.SNNCell, snn.SNNRecurrentCell, snn.SNN, snn.SNNRecurrent):
            table[base_cls] = unknown
        for cls in kinds:
            if cls.__module__.startswith("norse."):
                table[cls] = known
    if _SINABS in sys.modules:
        import sinabs.layers as sl

        table[sl.StatefulLayer] = unknown
        for cls in (sl.IAF, sl.LIF, sl.IAFSqueeze, sl.LIFSqueeze):
            table[cls] = known
    return table


def framework_free_types() -> tuple[type, ...]:
    """Framework modules that only reshape (no counting needed, not spiking)."""
    if _SINABS in sys.modules:
        import sinabs.layers as sl

        return (sl.UnflattenTime,)
    return ()


def spiking_types() -> tuple[type, ...]:
    """Neuron base classes of the imported frameworks (a model holding one is an SNN)."""
    types: list[type] = []
    if _SJ in sys.modules:
        from spikingjelly.activation_based import neuron as sj

        types.append(sj.BaseNode)
    if _SNNTORCH in sys.modules:
        import snntorch

        types.append(snntorch.SpikingNeuron)
    if _NORSE in sys.modules:
        from norse.torch.module import snn

        types += [snn.SNNCell, snn.SNNRecurrentCell, snn.SNN, snn.SNNRecurrent]
    if _SINABS in sys.modules:
        import sinabs.layers as sl

        types.append(sl.StatefulLayer)
    return tuple(types)


def looks_spiking(module: nn.Module) -> bool:
    """Whether a module without a rule looks like a spiking neuron (issue 15, item 3)."""
    cls = type(module)
    if cls.__module__.split(".")[0] in NAMESPACES:
        return True
    if _SPIKING_NAME.search(cls.__name__):
        return True
    return any(hasattr(module, a) for a in _STATE_ATTRS)


# -- time axis and state ----------------------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    """Where a model's input holds the samples: ``x.shape[axis]``, divided by ``fold`` when
    time steps are folded into that axis (Sinabs squeezed ``[B*T, ...]``), or ``fixed``."""

    axis: int
    source: str  # who says so, for messages
    fold: int = 1
    fixed: int = 0

    def samples(self, x: torch.Tensor) -> int:
        n = int(x.shape[self.axis])
        if self.fixed:
            return self.fixed
        if n % self.fold:
            raise ValueError(
                f"input axis {self.axis} has {n} entries, not a multiple of the {self.fold} "
                f"time steps folded into it ({self.source})"
            )
        return n // self.fold


def _declaration(m: nn.Module) -> Layout | None:
    """The samples axis one neuron module declares for the model input (None: per step)."""
    name = type(m).__name__
    if _SJ in sys.modules:
        from spikingjelly.activation_based import neuron as sj

        if isinstance(m, sj.BaseNode) and m.step_mode == "m":
            return Layout(1, f"SpikingJelly {name} step_mode='m' is time-first [T, B, ...]")
    if _NORSE in sys.modules:
        from norse.torch.module import snn

        if isinstance(m, snn.SNN | snn.SNNRecurrent):
            return Layout(1, f"Norse sequence module {name} is time-first [T, B, ...]")
    if _SINABS in sys.modules:
        import sinabs.layers as sl
        from sinabs.layers.reshape import SqueezeMixin

        if isinstance(m, SqueezeMixin):
            src = f"Sinabs {name} takes squeezed [B*T, ...]"
            return Layout(0, src, fold=max(m.num_timesteps, 1), fixed=max(m.batch_size, 0))
        if isinstance(m, sl.StatefulLayer):
            return Layout(0, f"Sinabs {name} is batch-first [B, T, ...]")
    return None


def declared_layouts(model: nn.Module) -> list[Layout]:
    """The distinct input layouts the model's neurons declare (empty: per-step neurons only)."""
    from fsve.nn.attention import SN
    from fsve.nn.neurons import LIF

    found: dict[tuple[int, int, int], Layout] = {}
    for m in model.modules():
        if isinstance(m, LIF | SN):
            lay = Layout(1, f"fsve {type(m).__name__} is time-first [T, B, ...]")
        else:
            lay = _declaration(m)
        if lay is not None:
            found.setdefault((lay.axis, lay.fold, lay.fixed), lay)
    return list(found.values())


def reset_states(modules: Iterable[nn.Module]) -> None:
    """Reset the state the frameworks keep in ``modules`` (a model's ``modules()``; before each
    batch).

    SpikingJelly memory modules ``reset()``, snnTorch neurons ``reset_mem()`` (kept even with
    ``init_hidden=False``), Sinabs ``reset_states()``; Norse modules keep no state.
    """
    types: list[tuple[type, str]] = []
    if "spikingjelly.activation_based.base" in sys.modules:
        from spikingjelly.activation_based.base import MemoryModule

        types.append((MemoryModule, "reset"))
    if _SNNTORCH in sys.modules:
        import snntorch

        types.append((snntorch.SpikingNeuron, "reset_mem"))
    if _SINABS in sys.modules:
        import sinabs.layers as sl

        types.append((sl.StatefulLayer, "reset_states"))
    if not types:
        return
    for m in modules:
        for cls, method in types:
            if isinstance(m, cls) and hasattr(m, method) and _has_state(m):
                getattr(m, method)()


def _has_state(m: nn.Module) -> bool:
    """snnTorch variants start from ``mem = None`` (nothing to reset, ``reset_mem`` fails)."""
    return not hasattr(m, "mem") or isinstance(m.mem, torch.Tensor)
