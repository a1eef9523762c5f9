"""The data of counting: a rule (module type -> hook function) and a layer's record."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from torch import nn

if TYPE_CHECKING:
    from energy.counting.collector import Collector

__all__ = ["LayerRecord", "Rule", "RuleSpec"]

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
