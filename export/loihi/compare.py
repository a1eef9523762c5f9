"""Float against Loihi fixed point on real clips: the pipeline behind ``python -m export.loihi``.

:func:`compare_fixed_point` takes an FSVE checkpoint (exported to NIR on the calibration
clips) or a written NIR graph with its host program, calibrates and quantises it, and runs
float (:mod:`export.sim` + host program) and fixed point (:func:`simulate_quantized`) side by
side: accuracy, per-layer spike agreement, saturations. :mod:`export.loihi.report` prints
and writes what it returns.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from export.loihi.layers import QuantConfig, QuantizedGraph
from export.loihi.simulate import simulate_quantized

__all__ = [
    "FixedPointComparison",
    "agreement_rows",
    "compare_fixed_point",
    "host_calls",
    "quantize_on_input",
]


def agreement_rows(
    q: QuantizedGraph,
    float_spikes: Mapping[str, np.ndarray],
    fixed: Mapping[str, np.ndarray],
    counts: Mapping[str, Mapping[str, int]],
    delay: Mapping[str, int] | None = None,
) -> list[dict[str, Any]]:
    """Per layer: float vs fixed spike counts, agreement of every neuron-step, the first step
    at which any neuron of any sample differs (``""``: none), saturations.

    ``delay``: layer -> steps its fixed-point spikes lag (Lava timing); step ``t + delay`` is
    compared with float step ``t``.
    """
    rows = []
    for name in q.layers:
        f = np.asarray(float_spikes[name]) != 0
        d = int((delay or {}).get(name, 0))
        x = np.asarray(fixed[name])[d : d + f.shape[0]] != 0
        differ = np.flatnonzero((f != x).reshape(f.shape[0], -1).any(axis=1))
        rows.append(
            {
                "layer": name,
                "float_spikes": int(f.sum()),
                "fixed_spikes": int(x.sum()),
                "agreement_pct": round(100.0 * float((f == x).mean()), 4),
                "first_divergence_step": int(differ[0]) if differ.size else "",
                "u_wrapped": int(counts.get(name, {}).get("u_wrapped", 0)),
                "v_saturated": int(counts.get(name, {}).get("v_saturated", 0)),
            }
        )
    return rows


def host_calls(host: Any) -> dict[str, Any]:
    """The ops of an :class:`export.nir.HostProgram` that feed graph Inputs (E-SDSA), as the
    :class:`export.sim.HostCall` s :func:`simulate_quantized` runs in float."""
    from export.sim import HostCall

    return {
        op.output: HostCall(tuple(op.inputs), lambda d, op=op: op(*(d[n] for n in op.inputs)))
        for op in host.ops
        if op.feeds_graph
    }


@dataclass
class FixedPointComparison:
    """What :func:`compare_fixed_point` measured; the rows are those of the report's CSVs."""

    model: str  # the GRAPH.nir or checkpoint compared
    data: str  # dataset folder, or the input file of a graph measured on the user's input
    split: str  # split measured ("" for an input file)
    samples: int  # clips (samples) measured
    calibration: int  # clips (samples) behind the ranges
    quantized: QuantizedGraph
    agreement: dict[str, list[dict[str, Any]]]  # timing mode -> agreement_rows per layer
    summary: list[dict[str, Any]]  # float, then "fixed (<mode>)": Top-1, agreement (summary CSV)
    layers: list[dict[str, Any]]  # per layer: quantisation + aligned agreement (layers CSV)
    prompt_template: str | None  # the zero-shot prompts of Top-1; None: no class prompts
    seconds_quantize: float  # calibration run + quantisation
    seconds_run: float  # float and fixed-point runs
    embeddings: dict[str, Any] = field(default_factory=dict)  # "float"/mode -> [N, D] (torch)
    labels: Any = None  # [N] class indices (torch); None without a dataset
    measured_on: str = ""  # report line: what was measured
    calibrated_on: str = ""  # report line: where the ranges come from

    @property
    def spikes(self) -> tuple[int, int]:
        """Spikes of every layer, float and fixed point (aligned)."""
        rows = self.agreement["aligned"]
        return sum(r["float_spikes"] for r in rows), sum(r["fixed_spikes"] for r in rows)


def compare_fixed_point(
    model_or_graph: str | os.PathLike,
    *,
    data: str | os.PathLike | None = None,
    inputs: str | os.PathLike | np.ndarray | None = None,
    split: str = "test",
    samples: int | None = None,
    batch_size: int = 8,
    calibration: int = 16,
    checkpoint: str | os.PathLike | None = None,
    config: QuantConfig | None = None,
    lava_timing: bool = False,
    local: bool = True,
    dt: float | None = None,
) -> FixedPointComparison:
    """Quantise a model to Loihi fixed point and run float and fixed point side by side.

    ``model_or_graph``: an FSVE checkpoint (exported to NIR on the first ``batch_size``
    calibration clips) or ``GRAPH.nir`` (with its host program ``GRAPH.host.pt`` if one lies
    beside it). Measured on either
    ``data``, a dataset folder: the first ``samples`` clips of ``split`` (all by default),
    ranges from its first ``calibration`` train clips, Top-1 when ``checkpoint`` (or the
    checkpoint compared) gives class prompts; or
    ``inputs`` (any NIR graph, no dataset): a time-first spike array ``[T, B, *shape]`` or
    ``[T, *shape]`` (or its ``.npy``/``.npz`` file) for the graph's Input; its first
    ``samples`` samples are measured and the ranges come from its first ``calibration``
    samples; the report then gives spike agreement per layer, no Top-1.
    ``config`` (default :class:`QuantConfig`) says how to quantise; ``dt`` (s) overrides the
    graph's ``metadata["dt_s"]`` (default 1e-4). Runs in batches of ``batch_size``: float
    (export.sim, float64 sums, + host program), fixed point aligned with the float steps
    and, with ``lava_timing``, with Lava's one-step delay per Dense/Conv. ``local``: also each
    layer fed the float model's upstream spikes (``agreement_local_pct``).
    """
    import torch

    from export.loihi.sources import dataset_measurement, input_measurement
    from export.nir import DEFAULT_TEMPLATE

    if batch_size < 1 or calibration < 1 or (samples or 1) < 1:
        raise ValueError("batch_size, calibration and samples must be >= 1")
    if (data is None) == (inputs is None):
        raise ValueError("give either data (a dataset folder) or inputs (a time-first array)")
    path = Path(model_or_graph)
    if inputs is not None:
        m = input_measurement(path, inputs, samples, batch_size, calibration, dt)
    else:
        m = dataset_measurement(
            path, Path(data), split, samples, batch_size, calibration, checkpoint, dt
        )
    t0 = time.perf_counter()
    q = _quantize(m.split, m.graph, m.calib, config or QuantConfig(), m.dt)
    t_quant = time.perf_counter() - t0
    modes = {"aligned": True, **({"lava": False} if lava_timing else {})}
    t1 = time.perf_counter()
    runs = _run_clips(q, m.split, m.batches, modes, local)
    t_sim = time.perf_counter() - t1
    agreement, layers = _layer_rows(q, runs, modes)
    top1, same = _top1(runs, m.classes)
    prompts = inputs is None
    return FixedPointComparison(
        model=str(path),
        data=m.data,
        split=m.split_name,
        samples=m.samples,
        calibration=m.calibration,
        quantized=q,
        agreement=agreement,
        summary=_summary(q, runs.float_spikes, agreement, top1, same, prompts),
        layers=layers,
        prompt_template=DEFAULT_TEMPLATE if top1 else None,
        seconds_quantize=t_quant,
        seconds_run=t_sim,
        embeddings={k: torch.cat(e) for k, e in runs.embeddings.items() if e},
        labels=runs.labels,
        measured_on=m.measured_on,
        calibrated_on=m.calibrated_on,
    )


def quantize_on_input(
    graph: str | os.PathLike,
    inputs: str | os.PathLike | np.ndarray,
    *,
    calibration: int = 16,
    config: QuantConfig | None = None,
    dt: float | None = None,
) -> tuple[QuantizedGraph, dict[str, np.ndarray]]:
    """Quantise ``GRAPH.nir`` with ranges from the first ``calibration`` samples of the user's
    time-first ``inputs`` (file or array, as :func:`compare_fixed_point`); returns the
    quantised graph and ``{Input: [T, B, *shape]}`` (what ``export.lava compile`` hands on)."""
    from export.loihi.sources import input_measurement

    if calibration < 1:
        raise ValueError("calibration must be >= 1")
    m = input_measurement(Path(graph), inputs, None, 1, calibration, dt)
    if m.split.host.ops:
        raise ValueError(f"{graph}: a graph with a host program does not run on Lava alone")
    q = _quantize(m.split, m.graph, m.calib, config or QuantConfig(), m.dt)
    return q, m.user_input or {}


def _quantize(split: Any, graph: Any, calib: Any, cfg: QuantConfig, dt: float) -> QuantizedGraph:
    """Ranges from the float run (with the host program) on ``calib``, then the quantisation."""
    from export.loihi.calibrate import layer_ranges
    from export.loihi.quantize import quantize

    sim = split.sim
    stateful = [n for n in sim.neuron_nodes() if type(sim.nodes[n]).__name__ != "Threshold"]
    rec = split.run(calib, record="all", states=stateful)
    ranges = layer_ranges(graph, {k: v.numpy() for k, v in rec.items()}, dt)
    del rec
    return quantize(graph, ranges, cfg, dt)


@dataclass
class _Runs:
    """Spikes ``[T, N, ...]`` per layer of every run, concatenated over the batches."""

    float_spikes: dict[str, np.ndarray]
    fixed: dict[str, dict[str, np.ndarray]]  # mode -> layer -> spikes
    counts: dict[str, dict[str, dict[str, int]]]  # mode -> layer -> saturation counts
    local: dict[str, np.ndarray] | None  # each layer fed the float upstream spikes
    embeddings: dict[str, list[Any]]  # "float"/mode -> host readout per batch
    labels: Any  # [N], or None without labels
    depth: dict[str, int]  # Lava timing: steps each layer lags


def _run_clips(
    q: QuantizedGraph, split: Any, batches: Iterable[dict], modes: dict[str, bool], local: bool
) -> _Runs:
    import torch

    host = split.host
    calls = host_calls(host)
    finals = [op for op in host.ops if not op.feeds_graph]
    float_spk: dict[str, list[np.ndarray]] = {n: [] for n in q.layers}
    fixed_spk = {m: {n: [] for n in q.layers} for m in modes}
    counts: dict[str, dict[str, dict[str, int]]] = {m: {} for m in modes}
    local_spk: dict[str, list[np.ndarray]] = {n: [] for n in q.layers}
    emb: dict[str, list[Any]] = {"float": [], **{m: [] for m in modes}}
    labels = []
    for batch in batches:
        x = batch["spikes"]
        fl = split.run(x, record=list(q.layers))
        for n in q.layers:
            float_spk[n].append(fl[n].numpy().astype(np.int8))
        if finals:
            emb["float"].append(fl[finals[0].output])
        xin = {host.input_name: host.graph_input(x, torch.float32).numpy().astype(np.int64)}
        for mode, align in modes.items():
            run = simulate_quantized(q, xin, align=align, host=calls)
            for n in q.layers:
                fixed_spk[mode][n].append(run.values[n])
                for k, v in run.counts[n].items():
                    counts[mode].setdefault(n, {}).setdefault(k, 0)
                    counts[mode][n][k] += v
            if finals:
                op = finals[0]
                with torch.no_grad():
                    need = [torch.as_tensor(run.values[i].astype(np.float32)) for i in op.inputs]
                    emb[mode].append(op(*need))
        if local:
            forced = {n: float_spk[n][-1] for n in q.layers}
            clamped = simulate_quantized(q, xin, host=calls, clamp=forced)
            for n in q.layers:
                local_spk[n].append(clamped.values[n])
        if "label" in batch:
            labels.append(batch["label"])
    cat = lambda xs: np.concatenate(xs, axis=1)  # noqa: E731  [T, B, ...] batches
    return _Runs(
        {n: cat(v) for n, v in float_spk.items()},
        {m: {n: cat(v) for n, v in fixed_spk[m].items()} for m in modes},
        counts,
        {n: cat(v) for n, v in local_spk.items()} if local else None,
        emb,
        torch.cat(labels) if labels else None,
        q.depth(calls),
    )


def _layer_rows(
    q: QuantizedGraph, runs: _Runs, modes: dict[str, bool]
) -> tuple[dict[str, list[dict[str, Any]]], list[dict[str, Any]]]:
    """Agreement rows per mode, and the per-layer rows: quantisation + aligned agreement."""
    fl = runs.float_spikes
    rows = {
        m: agreement_rows(q, fl, runs.fixed[m], runs.counts[m], None if modes[m] else runs.depth)
        for m in modes
    }
    layers = [{**qr, **ar} for qr, ar in zip(q.rows(), rows["aligned"], strict=True)]
    if runs.local is not None:
        local_rows = agreement_rows(q, fl, runs.local, {})
        for row, lr in zip(layers, local_rows, strict=True):
            row["agreement_local_pct"] = lr["agreement_pct"]
    return rows, layers


def _top1(runs: _Runs, classes: Any) -> tuple[dict[str, str], dict[str, str]]:
    """Top-1 (%) per run and how many clips get the float model's class; empty without class
    prompts or a host readout."""
    import torch
    import torch.nn.functional as F

    top1: dict[str, str] = {}
    same: dict[str, str] = {}
    if classes is None or not runs.embeddings["float"]:
        return top1, same
    y = runs.labels
    preds = {}
    for k, e in runs.embeddings.items():
        preds[k] = (F.normalize(torch.cat(e), dim=-1) @ classes.T).argmax(-1)
        top1[k] = f"{100 * float((preds[k] == y).float().mean()):.2f}"
        same[k] = f"{int((preds[k] == preds['float']).sum())}/{len(y)}"
    return top1, same


def _summary(
    q: QuantizedGraph,
    float_spikes: Mapping[str, np.ndarray],
    agreement: Mapping[str, list[dict[str, Any]]],
    top1: Mapping[str, str],
    same: Mapping[str, str],
    prompts: bool = True,
) -> list[dict[str, Any]]:
    """One row for float, one per fixed-point timing mode (neuron-step weighted agreement).

    ``prompts``: Top-1 columns (``"n/a"`` without class prompts); ``False`` (the user's own
    input, no classes): total spikes and the first step of divergence of any layer instead.
    """

    def row(model: str, key: str, rows: list[dict[str, Any]] | None) -> dict[str, Any]:
        out: dict[str, Any] = {"model": model}
        if prompts:
            out["top1_pct"] = top1.get(key, "n/a")
            out["same_class_as_float"] = same.get(key, "n/a")
        else:
            col = "float_spikes" if rows is None else "fixed_spikes"
            out["spikes"] = sum(r[col] for r in agreement["aligned" if rows is None else key])
        rows = rows or []  # the float row: agrees with itself
        agree = sum(r["agreement_pct"] * np.prod(float_spikes[r["layer"]].shape) for r in rows)
        out["agreement_pct"] = round(float(agree / max(total, 1)), 4) if rows else 100.0
        if not prompts:
            steps = [r["first_divergence_step"] for r in rows if r["first_divergence_step"] != ""]
            out["first_divergence_step"] = min(steps) if steps else ""
        out["u_wrapped"] = sum(r["u_wrapped"] for r in rows)
        out["v_saturated"] = sum(r["v_saturated"] for r in rows)
        return out

    total = sum(int(np.prod(float_spikes[n].shape)) for n in q.layers)
    return [row("float", "float", None)] + [row(f"fixed ({m})", m, r) for m, r in agreement.items()]
