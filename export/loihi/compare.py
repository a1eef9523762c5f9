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
from export.loihi.paths import graph_dt
from export.loihi.simulate import simulate_quantized
from fsve.cli import require_dataset

__all__ = ["FixedPointComparison", "agreement_rows", "compare_fixed_point", "host_calls"]


def agreement_rows(
    q: QuantizedGraph,
    float_spikes: Mapping[str, np.ndarray],
    fixed: Mapping[str, np.ndarray],
    counts: Mapping[str, Mapping[str, int]],
    delay: Mapping[str, int] | None = None,
) -> list[dict[str, Any]]:
    """Per layer: float vs fixed spike counts, agreement of every neuron-step, saturations.

    ``delay``: layer -> steps its fixed-point spikes lag (Lava timing); step ``t + delay`` is
    compared with float step ``t``.
    """
    rows = []
    for name in q.layers:
        f = np.asarray(float_spikes[name]) != 0
        d = int((delay or {}).get(name, 0))
        x = np.asarray(fixed[name])[d : d + f.shape[0]] != 0
        rows.append(
            {
                "layer": name,
                "float_spikes": int(f.sum()),
                "fixed_spikes": int(x.sum()),
                "agreement_pct": round(100.0 * float((f == x).mean()), 4),
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
    data: str  # dataset folder
    split: str  # split measured
    samples: int  # clips measured
    calibration: int  # train clips behind the ranges
    quantized: QuantizedGraph
    agreement: dict[str, list[dict[str, Any]]]  # timing mode -> agreement_rows per layer
    summary: list[dict[str, Any]]  # float, then "fixed (<mode>)": Top-1, agreement (summary CSV)
    layers: list[dict[str, Any]]  # per layer: quantisation + aligned agreement (layers CSV)
    prompt_template: str | None  # the zero-shot prompts of Top-1; None: no class prompts
    seconds_quantize: float  # calibration run + quantisation
    seconds_run: float  # float and fixed-point runs
    embeddings: dict[str, Any] = field(default_factory=dict)  # "float"/mode -> [N, D] (torch)
    labels: Any = None  # [N] class indices (torch)

    @property
    def spikes(self) -> tuple[int, int]:
        """Spikes of every layer, float and fixed point (aligned)."""
        rows = self.agreement["aligned"]
        return sum(r["float_spikes"] for r in rows), sum(r["fixed_spikes"] for r in rows)


@dataclass
class _Source:
    """The model compared: a NIR graph and host program, and the FSVE behind them if known."""

    graph: Any  # nir.NIRGraph, or None until the checkpoint is exported
    host: Any  # export.nir.HostProgram
    model: Any  # FSVE (class prompts, clip window) or None
    ckpt: Any  # its checkpoint dict (tokenizer) or None

    def window(self) -> Any:
        """The clip window of the model (the dataset's default without one)."""
        from fsve.data.dataset import WindowSpec

        if self.model is None:
            return WindowSpec()
        cfg = self.model.cfg
        return WindowSpec(num_blocks=cfg.num_blocks, radius=cfg.block_frames // 2)


def _load(path: Path, checkpoint: str | os.PathLike | None) -> _Source:
    import nir

    from export.nir import HostProgram, host_path_for
    from fsve.checkpoint import load_model

    if path.suffix != ".nir":
        model, ckpt = load_model(path, kind="fsve")
        return _Source(None, None, model, ckpt)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such NIR file")
    graph = nir.read(path)
    hp = host_path_for(path)
    host = HostProgram.load(hp) if hp.is_file() else HostProgram()
    model = ckpt = None
    if checkpoint is not None:
        model, ckpt = load_model(checkpoint, kind="fsve")
    return _Source(graph, host, model, ckpt)


def compare_fixed_point(
    model_or_graph: str | os.PathLike,
    *,
    data: str | os.PathLike,
    split: str = "test",
    samples: int | None = None,
    batch_size: int = 8,
    calibration: int = 16,
    checkpoint: str | os.PathLike | None = None,
    config: QuantConfig | None = None,
    lava_timing: bool = False,
    local: bool = True,
) -> FixedPointComparison:
    """Quantise a model to Loihi fixed point and run float and fixed point on real clips.

    ``model_or_graph``: an FSVE checkpoint (exported to NIR on the first ``batch_size``
    calibration clips) or ``GRAPH.nir`` with its host program ``GRAPH.host.pt`` beside it;
    ``checkpoint`` then gives the class prompts (Top-1) and the clip window. The ranges come
    from a float run on the first ``calibration`` train clips of the dataset folder ``data``;
    ``config`` (default :class:`QuantConfig`) says how to quantise. The first ``samples``
    clips of ``split`` (all by default) run in batches of ``batch_size``: float (export.sim,
    float64 sums, + host program), fixed point aligned with the float steps and, with
    ``lava_timing``, with Lava's one-step delay per Dense/Conv. ``local``: also each layer fed
    the float model's upstream spikes (``agreement_local_pct``: its own arithmetic's errors).
    """
    if batch_size < 1 or calibration < 1 or (samples or 1) < 1:
        raise ValueError("batch_size, calibration and samples must be >= 1")
    import torch

    from export.nir import (
        DEFAULT_TEMPLATE,
        SplitModel,
        class_prompt_embeddings,
        clip_batches,
        to_nir,
    )
    from fsve.data.dataset import SpikeDataset

    data = Path(data)
    require_dataset(data)
    src = _load(Path(model_or_graph), checkpoint)
    dataset = SpikeDataset(data, split, window=src.window())
    calib_set = SpikeDataset(data, "train", window=src.window())
    samples = len(dataset) if samples is None else min(samples, len(dataset))
    calib = next(iter(clip_batches(calib_set, min(calibration, len(calib_set)), calibration)))
    if src.graph is None:
        export = to_nir(src.model, calib["spikes"][:batch_size])
        src.graph, src.host = export.graph, export.host
    dt = graph_dt(src.graph)
    split_model = SplitModel(src.graph, src.host, dt, accumulate=torch.float64)
    t0 = time.perf_counter()
    q = _quantize(split_model, src.graph, calib["spikes"], config or QuantConfig(), dt)
    t_quant = time.perf_counter() - t0
    classes = None
    if src.model is not None:
        classes = class_prompt_embeddings(src.model, src.ckpt, dataset.class_names)
    modes = {"aligned": True, **({"lava": False} if lava_timing else {})}
    t1 = time.perf_counter()
    runs = _run_clips(q, split_model, clip_batches(dataset, samples, batch_size), modes, local)
    t_sim = time.perf_counter() - t1
    agreement, layers = _layer_rows(q, runs, modes)
    top1, same = _top1(runs, classes)
    return FixedPointComparison(
        model=str(Path(model_or_graph)),
        data=str(data),
        split=split,
        samples=samples,
        calibration=int(calib["spikes"].shape[0]),
        quantized=q,
        agreement=agreement,
        summary=_summary(q, runs.float_spikes, agreement, top1, same),
        layers=layers,
        prompt_template=DEFAULT_TEMPLATE if top1 else None,
        seconds_quantize=t_quant,
        seconds_run=t_sim,
        embeddings={k: torch.cat(e) for k, e in runs.embeddings.items() if e},
        labels=runs.labels,
    )


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
    labels: Any  # [N]
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
        labels.append(batch["label"])
    cat = lambda xs: np.concatenate(xs, axis=1)  # noqa: E731  [T, B, ...] batches
    return _Runs(
        {n: cat(v) for n, v in float_spk.items()},
        {m: {n: cat(v) for n, v in fixed_spk[m].items()} for m in modes},
        counts,
        {n: cat(v) for n, v in local_spk.items()} if local else None,
        emb,
        torch.cat(labels),
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
) -> list[dict[str, Any]]:
    """One row for float, one per fixed-point timing mode (neuron-step weighted agreement)."""
    summary = [
        {"model": "float", "top1_pct": top1.get("float", "n/a"),
         "same_class_as_float": same.get("float", "n/a"), "agreement_pct": 100.0,
         "u_wrapped": 0, "v_saturated": 0},
    ]  # fmt: skip
    total = sum(int(np.prod(float_spikes[n].shape)) for n in q.layers)
    for m, rows in agreement.items():
        agree = sum(r["agreement_pct"] * np.prod(float_spikes[r["layer"]].shape) for r in rows)
        summary.append(
            {
                "model": f"fixed ({m})",
                "top1_pct": top1.get(m, "n/a"),
                "same_class_as_float": same.get(m, "n/a"),
                "agreement_pct": round(float(agree / max(total, 1)), 4),
                "u_wrapped": sum(r["u_wrapped"] for r in rows),
                "v_saturated": sum(r["v_saturated"] for r in rows),
            }
        )
    return summary
