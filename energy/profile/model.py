"""``profile_model``: count and price a model's forward passes over batches (per inference).

The model runs with a :class:`~energy.counting.Collector` (and its baseline, an ANN, with one
of its own); :func:`~energy.report.build_report` prices what they counted.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterable, Mapping
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from energy.conventions import CONVENTIONS, NORM_MODES, default_costs
from energy.costs import CostModel, load_costs
from energy.counting import Audit, Collector, LayerRecord
from energy.counting.frameworks import Layout, declared_layouts, reset_states, spiking_types
from energy.report import EnergyReport, ModelCounts, build_report

__all__ = ["profile_model"]


def profile_model(
    model: nn.Module,
    inputs: torch.Tensor | Iterable[Any],
    costs: str | os.PathLike | CostModel | None = None,
    convention: str = "simple",
    baseline: str | nn.Module = "twin",
    *,
    norm: str = "fold",
    forward: Callable[[torch.Tensor], Any] | None = None,
    kind: str = "auto",
    batch_dim: int | None = None,
    time_steps: int | None = None,
    audit: bool | str = "first",
    progress: Callable[[Iterable[Any]], Iterable[Any]] | None = None,
) -> EnergyReport:
    """Count and price ``model`` on ``inputs`` (a batch, or an iterable of batches).

    ``costs``: a preset, a JSON/TOML file or a :class:`~energy.costs.CostModel`; None is
    ``paper``, or ``horowitz45`` under ``convention="sdt"`` (the SDT papers' E_MAC and E_AC).

    Batches are tensors, dicts with ``"spikes"`` (dataset batches) or tuples (first item); they
    are moved to the model's device. ``forward`` defaults to ``model.encode_video`` when the
    model has one (FSVE, SPKLIP), else ``model``. ``kind="auto"`` treats a model with spiking
    neurons as an SNN (rows ``snn`` and its ANN twin ``ann``) and any other as an ANN (one row
    ``ann``). ``baseline``: ``"twin"``, ``"teacher:PATH"`` (a teacher checkpoint) or an ANN
    module run on the same batches. ``batch_dim``: the samples axis of a batch; by default it
    comes from the model (``encode_video``: batch-first; SpikingJelly ``step_mode="m"``, Norse
    sequence modules, our LIF: time-first, axis 1; Sinabs: batch-first, squeezed layers fold T
    into axis 0) and must be given for an SNN whose neurons run one step per call (snnTorch,
    Norse cells, SpikingJelly ``"s"``): never guessed. A ``batch_dim`` contradicting the model
    is refused (unless ``forward`` is given, which may reorder axes), and each batch checks that
    the framework neurons saw that many samples. ``audit``: also report torch functions computing
    inside modules that no rule covers (``"first"``: on the first batch only). ``progress`` wraps
    the batch iterable (e.g. ``tqdm``). Runs under ``torch.no_grad()`` in the model's current
    train/eval mode.
    """
    if convention not in CONVENTIONS:
        raise ValueError(f"unknown convention {convention!r}; expected one of {CONVENTIONS}")
    cost = load_costs(default_costs(convention) if costs is None else costs)
    if norm not in NORM_MODES:
        raise ValueError(f"unknown norm mode {norm!r}; expected one of {NORM_MODES}")
    if kind not in ("auto", "snn", "ann"):
        raise ValueError(f"kind must be 'auto', 'snn' or 'ann', got {kind!r}")
    if audit not in (True, False, "first"):
        raise ValueError(f"audit must be True, False or 'first', got {audit!r}")
    t = time_steps if time_steps is not None else _time_steps(model)
    main = _Run(model, forward or _forward_of(model), Collector(model, True, t))
    is_snn = kind == "snn" or (kind == "auto" and _is_snn(model))
    main.collector.event_driven = is_snn
    base_run, baseline_name = _baseline_run(baseline, model, t)
    if base_run is not None and not is_snn:
        raise ValueError("a baseline other than 'twin' needs an SNN model to compare")

    layout = _layout(model, forward is not None, batch_dim, is_snn)
    device = _device_of(model)
    runs = [main] if base_run is None else [main, base_run]
    samples = 0
    items = _batches(inputs)
    if progress is not None:
        items = progress(items)
    try:
        for r in runs:
            r.collector.attach()
        with torch.no_grad():
            for i, item in enumerate(items):
                x = _tensor_of(item).to(device)
                batch = layout.samples(x)
                for r in runs:
                    r.step(x, batch, audit is True or (audit == "first" and i == 0))
                _check_batches(main.collector, batch, layout)
                samples += batch
    finally:
        for r in runs:
            r.collector.detach()
    if samples == 0:
        raise ValueError("no samples to profile: inputs were empty")
    base_counts = None if base_run is None else base_run.counts()
    counts = (main.counts(), base_counts, is_snn, cost, convention, norm, baseline_name, samples)
    known = time_steps is not None or hasattr(getattr(model, "cfg", None), "num_blocks")
    report = build_report(*counts, time_steps=t if known else None)
    if report.unknown_spiking:
        warnings.warn(
            f"{len(report.unknown_spiking)} spiking module(s) without a counting rule, NOT "
            "counted (neuron updates, spikes, their synapses' events): "
            + "; ".join(report.unknown_spiking),
            UncountedSpikingWarning,
            stacklevel=2,
        )
    return report


class UncountedSpikingWarning(UserWarning):
    """A spiking-looking module ran without a counting rule: the report misses its work."""


def _layout(model: nn.Module, custom_forward: bool, batch_dim: int | None, snn: bool) -> Layout:
    """Where each batch holds its samples: from the model, else ``batch_dim`` (issue 15)."""
    if not custom_forward and hasattr(model, "encode_video"):
        src = f"{type(model).__name__}.encode_video takes batch-first [B, K, ...] clips"
        declared = [Layout(0, src)]
    else:
        declared = declared_layouts(model)
    if batch_dim is not None:
        if isinstance(batch_dim, bool) or not isinstance(batch_dim, int):
            raise ValueError(f"batch_dim must be an int, got {batch_dim!r}")
        if len(declared) == 1 and not custom_forward:
            if declared[0].axis != batch_dim:
                d = declared[0]
                raise ValueError(
                    f"batch_dim={batch_dim} contradicts the model: {d.source}, samples on axis "
                    f"{d.axis}; drop batch_dim (or pass forward= if you reorder the axes)"
                )
            return declared[0]
        return Layout(batch_dim, f"batch_dim={batch_dim}")
    if len(declared) > 1:
        sources = "; ".join(d.source for d in declared)
        raise ValueError(
            f"the model's neurons disagree on the input layout ({sources}): pass batch_dim="
        )
    if declared:
        return declared[0]
    if not snn:
        return Layout(0, "an ANN batch, batch-first")
    raise ValueError(
        f"cannot tell which input axis of {type(model).__name__} holds the samples (its neurons "
        "run one time step per call): pass batch_dim= (0 for [B, T, ...], 1 for [T, B, ...])"
    )


def _check_batches(c: Collector, batch: int, layout: Layout) -> None:
    """Refuse a samples axis that disagrees with what the framework neurons processed."""
    for name, (seen, shape, framework) in c.neuron_batches.items():
        if seen != batch:
            raise ValueError(
                f"{layout.source} gives {batch} samples per batch, but {framework} neuron "
                f"{name!r} processed {seen} (input {list(shape)}): pass batch_dim= of the "
                "samples axis"
            )


def _baseline_run(baseline: str | nn.Module, model: nn.Module, t: int) -> tuple[_Run | None, str]:
    """The ANN run ``baseline`` names (None for the twin: the model itself, counted densely)."""
    if isinstance(baseline, nn.Module):
        run = _Run(baseline, _forward_of(baseline), Collector(baseline, False, t))
        return run, type(baseline).__name__
    if isinstance(baseline, str) and baseline.startswith("teacher:"):
        from fsve.checkpoint import load_model

        teacher, _ = load_model(baseline.split(":", 1)[1], kind="teacher")
        teacher.to(_device_of(model))
        return _Run(teacher, _forward_of(teacher), Collector(teacher, False, t)), baseline
    if baseline != "twin":
        raise ValueError(f"baseline must be 'twin', 'teacher:CKPT' or a module, got {baseline!r}")
    return None, "twin"


@dataclass
class _Run:
    """One model being profiled: its collector and per-batch records."""

    model: nn.Module
    forward: Callable[[torch.Tensor], Any]
    collector: Collector
    batches: list[tuple[int, dict[str, LayerRecord]]] = field(default_factory=list)

    def step(self, x: torch.Tensor, batch: int, audit: bool) -> None:
        reset_states(self.collector.modules)  # the frameworks' neuron state, per batch
        self.collector.begin_batch(batch)
        with Audit(self.collector) if audit else nullcontext():
            out = self.forward(x)
            if self.forward is not self.model:  # e.g. encode_video: the root is not __call__ed
                spec = self.collector.find_rule(self.model)
                if spec is not None:  # its own functional ops (SPKLIP's mean over blocks)
                    spec.fn(self.collector, "model", self.model, (x,), out)
        self.batches.append((batch, self.collector.end_batch()))

    def counts(self) -> ModelCounts:
        return ModelCounts(
            type(self.model).__name__, self.batches, self.collector.unknown_functional
        )


def _is_snn(model: nn.Module) -> bool:
    """Whether ``model`` holds spiking neurons (our LIF/SN, or a framework's, issue 15)."""
    from fsve.nn.attention import SN
    from fsve.nn.neurons import LIF

    neuron_types: tuple[type, ...] = (LIF, SN, *spiking_types())
    return any(isinstance(m, neuron_types) for m in model.modules())


def _batches(inputs: Any) -> Iterable[Any]:
    if isinstance(inputs, torch.Tensor | Mapping):
        return [inputs]
    return inputs


def _tensor_of(item: Any) -> torch.Tensor:
    if isinstance(item, Mapping):
        item = item["spikes"]
    elif isinstance(item, tuple | list):
        item = item[0]
    if not isinstance(item, torch.Tensor):
        raise ValueError(
            f"inputs must be tensors or dicts with 'spikes', got {type(item).__name__}"
        )
    if item.is_complex():
        raise ValueError(f"inputs must be real numbers, got dtype {item.dtype}")
    if item.is_floating_point() and not bool(torch.isfinite(item).all()):
        bad = int(item.numel() - int(torch.isfinite(item).sum()))
        raise ValueError(f"inputs hold {bad} NaN or infinite values: counts would be meaningless")
    return item


def _forward_of(model: nn.Module) -> Callable[[torch.Tensor], Any]:
    return getattr(model, "encode_video", None) or model


def _time_steps(model: nn.Module) -> int:
    cfg = getattr(model, "cfg", None)
    return int(getattr(cfg, "num_blocks", 1) or 1)


def _device_of(model: nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    return torch.device("cpu")
