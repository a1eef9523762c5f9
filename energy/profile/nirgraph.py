"""``profile_nir``: count and price any NIR graph on the user's input (issue 15, item 3).

The graph runs once in the reference simulator (:mod:`export.sim`, forward Euler at ``dt``);
then each node's input (the sum of its incoming edges) and output are handed, one sample at a
time, to the counting rules the torch path uses (:mod:`energy.counting`), so the records, the
conventions, the ANN twin and :func:`~energy.report.build_report` are the torch path's:

- Affine / Linear / Conv1d / Conv2d: the ``linear`` / ``conv`` rules (exact, border-aware SOPs
  on integer-valued input, dense MACs on real input); an all-zero bias counts as no bias;
- IF / LIF / CubaLIF: neuron updates (neurons x steps) and spikes, with a membrane; Threshold:
  the same without a membrane; I / LI / CubaLI: neuron updates only (their output is ``v``);
- AvgPool2d: the torch ``avg_pool`` rule; SumPool2d: the same adds without the division;
  Scale: one multiply per element; a node with k incoming edges: ``(k - 1)`` adds per element;
- Input, Output, Flatten: free. Any other node type is refused, naming the node.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from energy.conventions import CONVENTIONS, default_costs
from energy.costs import CostModel, load_costs
from energy.counting import Collector, LayerRecord, synapses
from energy.counting import elementwise as ew
from energy.report import EnergyReport, ModelCounts, build_report

if TYPE_CHECKING:
    import nir

__all__ = ["profile_nir"]

# (c, node name, node, summed input [T, 1, ...], output [T, 1, ...]) -> records in c
NodeRule = Callable[[Collector, str, Any, torch.Tensor, torch.Tensor], None]


def profile_nir(
    graph: nir.NIRGraph | str | os.PathLike,
    inputs: Any,
    costs: str | os.PathLike | CostModel | None = None,
    convention: str = "simple",
    *,
    dt: float | None = None,
    layout: str = "auto",
) -> EnergyReport:
    """Count and price ``graph`` (a ``nir.NIRGraph`` or a NIR file) on ``inputs``, per sample.

    ``inputs``: one array (a graph with one Input node) or a dict Input name -> array,
    time-first ``[T, B, *shape]`` or ``[T, *shape]`` (one sample). ``layout``: ``"TB"``,
    ``"T"`` or ``"auto"`` (from the shape the Input node declares; refused when it declares
    none). ``costs``: as :func:`~energy.profile.profile_model` (``None``: the convention's
    default preset). ``dt``: the simulator's step in seconds (default 1e-4, the field's NIR
    convention). The report's rows are ``snn`` and ``ann`` (its dense twin, every synaptic op
    a MAC). Raises ``ValueError`` (one line) for a node type without a counting rule, or inputs
    of the wrong shape, non-numeric or not finite.
    """
    from export.graph import DT_S, NEURON_TYPES
    from export.inputs import LAYOUTS
    from export.sim import Simulator

    if convention not in CONVENTIONS:
        raise ValueError(f"unknown convention {convention!r}; expected one of {CONVENTIONS}")
    cost = load_costs(default_costs(convention) if costs is None else costs)
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    network = "NIR graph"
    source = Path(graph) if isinstance(graph, str | os.PathLike) else None
    if source is not None:
        network = f"NIR graph {source.name}"
        graph = _read_graph(source)
    try:
        sim = Simulator(graph, DT_S if dt is None else dt)
        rules = {name: _rule_of(name, node) for name, node in sim.nodes.items()}
        given = _time_batch(sim, inputs, layout)
    except ValueError as err:  # the graph's nodes or Inputs: name the file it came from
        if source is None:
            raise
        raise ValueError(f"{source}: {err}") from None
    steps, batch = next(iter(given.values())).shape[:2]
    if steps == 0 or batch == 0:
        raise ValueError(f"no samples to profile: inputs have shape [T, B] = [{steps}, {batch}]")
    try:
        out = sim.run(given, record="all")
    except RuntimeError as err:  # torch refusing a shape inside a node, e.g. a conv's input
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        where = f"{source}: " if source is not None else ""
        raise ValueError(f"{where}the simulator failed on this input: {first}") from None
    collector = Collector(nn.Module(), event_driven=True, time_steps=steps)
    batches = [(1, _count_sample(sim, rules, out, b, collector)) for b in range(batch)]
    is_snn = any(isinstance(node, NEURON_TYPES) for node in sim.nodes.values())
    counts = ModelCounts(network, batches, {})
    report = build_report(
        counts, None, is_snn, cost, convention, "fold", "twin", batch, time_steps=steps
    )
    report.checkpoint_kind = "nir"
    return report


def _read_graph(path: Path) -> nir.NIRGraph:
    if not path.is_file():
        raise ValueError(f"{path}: no such NIR file")
    from export.graph import read_nir

    return read_nir(path)


def _time_batch(sim: Any, inputs: Any, layout: str) -> dict[str, torch.Tensor]:
    """``{Input node: tensor [T, B, *shape]}`` from the user's arrays and ``layout``: checked by
    :mod:`export.inputs` (the export commands' rules), except that an Input node without a
    shape needs ``layout`` (per-sample figures depend on B)."""
    from export.inputs import input_shape, time_first

    if isinstance(inputs, Mapping):
        unknown = sorted(set(inputs) - set(sim.inputs))
        if unknown:
            raise ValueError(f"inputs {unknown} are not graph Input nodes of {sim.inputs}")
        given = dict(inputs)
    elif len(sim.inputs) != 1:
        raise ValueError(f"the graph has Input nodes {sim.inputs}; pass a dict name -> array")
    else:
        given = {sim.inputs[0]: inputs}
    missing = [n for n in sim.inputs if n not in given]
    if missing:
        raise ValueError(f"no value for the graph Input nodes {missing}")
    for name in given:
        if layout == "auto" and input_shape(sim.nodes, name) is None:
            raise ValueError(
                f"input {name!r}: the Input node declares no shape, so [T, ...] and"
                " [T, B, ...] cannot be told apart; say which (layout 'T' or 'TB', --layout)"
            )
    arrays, _ = time_first(given, sim.nodes, layout=layout)
    return {name: torch.as_tensor(arr) for name, arr in arrays.items()}


def _count_sample(
    sim: Any,
    rules: Mapping[str, NodeRule | None],
    out: Mapping[str, torch.Tensor],
    b: int,
    c: Collector,
) -> dict[str, LayerRecord]:
    """Records of sample ``b``: each node's rule on its summed input and its output."""
    c.begin_batch(1)
    own: dict[str, torch.Tensor] = {}  # [T, 1, ...] copies, so spikes marked here are known

    def value(name: str) -> torch.Tensor:
        if name not in own:
            own[name] = out[name][:, b : b + 1].clone()
        return own[name]

    for name in sim.order:
        preds = sim.preds[name]
        rule = rules[name]
        if len(preds) > 1:  # the sum of the edges costs adds, whatever the node does
            x = sum((value(p) for p in preds[1:]), start=value(preds[0]))
            _fan_in(c, name, len(preds), x.numel())
        elif rule is None or not preds:  # free nodes; graph Inputs
            continue
        else:
            x = value(preds[0])
        if rule is not None:
            rule(c, name, sim.nodes[name], x, value(name))
    return c.end_batch()


def _fan_in(c: Collector, name: str, edges: int, n: int) -> None:
    """The sum of ``edges`` incoming values of ``n`` elements: ``(edges - 1)·n`` adds."""
    adds = (edges - 1) * n
    rec = c.elementwise(name + ":add", "add", ann_adds=adds, ann_input_reads=adds, ann_outputs=n)
    rec.static["in_words"] = c.words(n)


# -- rules per NIR node type ------------------------------------------------------------------


def _rule_of(name: str, node: Any) -> NodeRule | None:
    """The counting rule of ``node`` (None: free); a type without a rule is refused."""
    table = _rule_table()
    for cls in type(node).__mro__:
        if cls in table:
            make = table[cls]
            return None if make is None else make(name, node)
    known = ", ".join(sorted(t.__name__ for t in table))
    raise ValueError(
        f"node {name!r}: NIR type {type(node).__name__} has no energy counting rule"
        f" (counted: {known})"
    )


def _rule_table() -> dict[type, Callable[[str, Any], NodeRule] | None]:
    import nir

    return {
        nir.Input: None,
        nir.Output: None,
        nir.Flatten: None,
        nir.Affine: _affine,
        nir.Linear: _affine,
        nir.Conv1d: _conv,
        nir.Conv2d: _conv,
        nir.IF: _spiking(stateful=True),
        nir.LIF: _spiking(stateful=True),
        nir.CubaLIF: _spiking(stateful=True),
        nir.Threshold: _spiking(stateful=False),
        nir.I: _integrator,
        nir.LI: _integrator,
        nir.CubaLI: _integrator,
        nir.AvgPool2d: _avg_pool,
        nir.SumPool2d: _sum_pool,
        nir.Scale: _scale,
    }


def _typed(rule: Callable[..., None], module: nn.Module | None = None) -> NodeRule:
    """A torch counting rule applied to a node (through ``module``), its row typed by the node."""

    def apply(c: Collector, name: str, node: Any, x: torch.Tensor, y: torch.Tensor) -> None:
        rule(c, name, node if module is None else module, (x,), y)
        c.records[name].type = type(node).__name__

    return apply


def _bias(node: Any) -> np.ndarray | None:
    """The node's bias, or None when it has none or it is all zeros (snnTorch and Norse write
    zeros for bias-free layers; no hardware adds them)."""
    bias = getattr(node, "bias", None)
    if bias is None:
        return None
    bias = np.asarray(bias)
    return bias if np.any(bias != 0) else None


def _affine(name: str, node: Any) -> NodeRule:
    weight = np.asarray(node.weight)
    if weight.ndim != 2:
        raise ValueError(
            f"node {name!r}: {type(node).__name__} weight of shape {weight.shape} is not"
            " [out, in]; only 2-D weights are counted"
        )
    layer = nn.Linear(weight.shape[1], weight.shape[0], _bias(node) is not None, device="meta")
    return _typed(synapses.linear, layer)


def _conv(name: str, node: Any) -> NodeRule:
    from export.graph import int_tuple, padding_arg

    weight = np.asarray(node.weight)
    nsp = weight.ndim - 2
    if nsp not in (1, 2):
        raise ValueError(f"node {name!r}: conv weight of shape {weight.shape} is not 3-D or 4-D")
    groups = int(np.asarray(node.groups))
    layer = (nn.Conv1d if nsp == 1 else nn.Conv2d)(
        weight.shape[1] * groups,
        weight.shape[0],
        tuple(weight.shape[2:]),
        stride=int_tuple(node.stride, nsp),
        padding=padding_arg(node.padding, nsp),
        dilation=int_tuple(node.dilation, nsp),
        groups=groups,
        bias=_bias(node) is not None,
        device="meta",
    )
    return _typed(synapses.conv, layer)


def _spiking(stateful: bool) -> Callable[[str, Any], NodeRule]:
    return lambda name, node: _typed(ew.neuron(stateful))


def _integrator(name: str, node: Any) -> NodeRule:
    """I, LI, CubaLI: a membrane updated every step, no spikes (their output is ``v``)."""

    def rule(c: Collector, name: str, node: Any, x: torch.Tensor, y: torch.Tensor) -> None:
        rec = c.record(
            name, type(node).__name__, "neuron", stateful=True, state_words=c.words(y.numel())
        )
        c.add(rec, calls=1, updates=y.numel())

    return rule


def _avg_pool(name: str, node: Any) -> NodeRule:
    return _typed(ew.avg_pool)


def _sum_pool(name: str, node: Any) -> NodeRule:
    """Sums over windows: the adds of ``avg_pool`` without its division."""

    def rule(c: Collector, name: str, node: Any, x: torch.Tensor, y: torch.Tensor) -> None:
        ew._pool(c, name, node, x.numel(), y.numel(), ann_adds=max(x.numel() - y.numel(), 0))

    return rule


def _scale(name: str, node: Any) -> NodeRule:
    words = float(math.prod(np.shape(node.scale)) or 1)

    def rule(c: Collector, name: str, node: Any, x: torch.Tensor, y: torch.Tensor) -> None:
        n = y.numel()
        rec = c.elementwise(
            name,
            type(node).__name__,
            ann_macs=n,
            ann_weight_reads=n,
            ann_input_reads=n,
            ann_output_writes=n,
            ann_inputs=n,
            ann_outputs=n,
        )
        rec.static.update(weight_words=words, in_words=c.words(n))

    return rule
