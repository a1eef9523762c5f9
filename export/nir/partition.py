"""The partition of an exported model: which module runs where, which tensors cross."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class ModulePlacement:
    """Where one module of the model runs."""

    module: str  # qualified module name in the model
    type: str  # class name
    placement: str  # "core", "folded" (into a core node), "host", "none" (identity/no-op)
    nodes: tuple[str, ...] = ()  # NIR nodes it became (or the node it was folded into)
    note: str = ""


@dataclass(frozen=True)
class BoundaryTensor:
    """A tensor crossing between the neuromorphic graph and the host."""

    name: str  # NIR port node (Output for core->host, Input for host->core)
    direction: str  # "core->host" or "host->core"
    shape: tuple[int, ...]  # per sample and step, NIR layout
    source: str  # NIR node (core->host) or host op (host->core) producing it
    consumer: str  # host op (core->host) or NIR nodes (host->core) reading it

    @property
    def neurons(self) -> int:
        return int(np.prod(self.shape))


@dataclass
class Partition:
    """Which modules run on cores and which on the host, and what crosses between them."""

    modules: list[ModulePlacement] = field(default_factory=list)
    boundary: list[BoundaryTensor] = field(default_factory=list)
    host_ops: list[str] = field(default_factory=list)

    def on(self, placement: str) -> list[ModulePlacement]:
        return [m for m in self.modules if m.placement == placement]
