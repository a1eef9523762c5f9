"""Example 4: NIR export of an FSVE, simulation, Loihi fixed point and the Loihi 2 mapping.

Teaches the neuromorphic path of an FSVE checkpoint (``--checkpoint``; without one, an
untrained FSVE ``tiny`` calibrated on a few train clips, as in example 3):

1. export (:func:`export.nir.to_nir`): the part neuromorphic cores can run becomes a NIR graph;
   E-SDSA's products of two spike trains and the readout stay on the host (the partition).
   ``NIRExport.save`` writes ``fsve.nir`` and the host program ``fsve.host.pt``;
2. simulation: the saved graph in the float NIR simulator :mod:`export.sim` plus the host
   program (:class:`export.nir.SplitModel`), spike for spike against the PyTorch model
   (:func:`export.nir.compare_split`);
3. Loihi fixed point (:func:`export.loihi.compare_fixed_point`, the pipeline of
   ``python -m export.loihi``): ranges from a float run on train clips, quantisation to Loihi
   registers (8-bit weights + exponent, 12-bit decays, 24-bit states), the bit-exact
   fixed-point run and its agreement with float;
4. mapping (:mod:`export.mapping`): cores, synapses, memory and spike messages per step on
   Loihi 2 (and Loihi 1 for comparison), written as ``mapping/mapping.csv`` + ``mapping.txt``.

Run: ``.venv/bin/python examples/04_nir_loihi_mapping.py [--checkpoint CKPT]`` (24 test
clips of ``data/synth``, 16 train clips for the ranges: about 17 s on one core) or
``--quick`` (a 1-clip-per-class dataset in ``--out/data``, 4 clips: about 6 s).
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import nir
import torch
import torch.nn.functional as F

from export.loihi import compare_fixed_point
from export.mapping import layer_rows, map_graph, report_text, spike_rates, write_report
from export.nir import SplitModel, compare_split, graph_summary, to_nir
from export.sim import NEURON_TYPES
from fsve.checkpoint import load_model, save_checkpoint
from fsve.data.dataset import SpikeDataset, WindowSpec, collate
from fsve.data.synth import SynthConfig, generate_dataset
from fsve.models.student import FSVE, calibrate_statistics, fsve_config


def clips(data: Path, split: str, n: int, window: WindowSpec) -> torch.Tensor:
    """The first ``n`` clips of a split as one bool batch ``[B, K, F, H, W]``."""
    ds = SpikeDataset(data, split, window=window)
    return collate([ds[i] for i in range(min(n, len(ds)))])["spikes"]


def calibrated_checkpoint(path: Path, data: Path, n: int = 8, seed: int = 0) -> Path:
    """A fresh FSVE ``tiny`` with statistics from ``n`` train clips, saved to ``path``."""
    torch.manual_seed(seed)
    model = FSVE(fsve_config("tiny"))
    window = WindowSpec(model.cfg.num_blocks, model.cfg.block_frames // 2)
    calibrate_statistics(model, clips(data, "train", n, window))
    return save_checkpoint(path, "fsve", model.cfg, model.state_dict())


def prepare(args: argparse.Namespace) -> tuple[Path, Path, int, int]:
    """The dataset (made if missing), the checkpoint, test and calibration clip counts."""
    if args.quick:
        data = args.out / "data"
        config = SynthConfig(train_per_class=1, val_per_class=1, test_per_class=1)
        generate_dataset(data, config, progress=False)
    else:
        data = args.data or Path("data/synth")
        if not (data / "manifest.csv").is_file():
            generate_dataset(data, SynthConfig())
    samples = args.samples or (4 if args.quick else 24)
    calib_n = 4 if args.quick else 16
    ckpt = args.checkpoint or calibrated_checkpoint(args.out / "calibrated_fsve.pt", data)
    return data, ckpt, samples, calib_n


def export_step(
    model: FSVE, calib: torch.Tensor, out: Path
) -> tuple[Path, nir.NIRGraph, list[str]]:
    """1. Export. The example input fixes the shapes; verify=True (default) checks that every
    exported block reproduces the model's forward bit for bit."""
    t0 = time.perf_counter()
    export = to_nir(model, calib)
    nir_path, host_path = export.save(out / "fsve.nir")  # read back and type-checked
    graph = nir.read(nir_path)
    summary = graph_summary(graph)
    print(
        f"\n1. exported {nir_path} ({summary['nodes']} nodes, {summary['edges']} edges,"
        f" {sum(summary['neurons'].values())} neurons, {summary['weights']} weights) and"
        f" {host_path.name} in {time.perf_counter() - t0:.1f} s"
    )
    print(f"   node types: {summary['types']}")
    print(f"   host ops: {export.partition.host_ops}; dt = {export.dt_s:g} s per step")
    boundary = [b.name for b in export.partition.boundary]  # ports between cores and host
    print(f"   boundary tensors: {boundary}")
    return nir_path, graph, boundary


def simulate_step(
    model: FSVE, nir_path: Path, test: torch.Tensor, boundary: list[str]
) -> tuple[SplitModel, dict]:
    """2. Simulation of the saved files: export.sim runs the graph (float32 neurons, float64
    synaptic sums), the host program does its part within each step."""
    t0 = time.perf_counter()
    split = SplitModel.load(nir_path, accumulate=torch.float64)
    cmp = compare_split(model, split, test, boundary)
    spikes = sum(r.model_spikes for r in cmp.layers)
    mismatches = sum(r.mismatches for r in cmp.layers)
    emb_model, emb_split = cmp.model_outputs["embedding"], cmp.split_outputs["embedding"]
    emb_diff = float((emb_model - emb_split).abs().max())
    print(
        f"\n2. NIR simulation vs PyTorch on {len(test)} clips: {spikes} spikes,"
        f" {mismatches} mismatches; embedding max |diff| {emb_diff:.3g}"
        f" ({time.perf_counter() - t0:.1f} s)"
    )
    for name, (n_spikes, steps, peak) in cmp.traffic.items():
        print(f"   {name}: {n_spikes / steps:.1f} spikes per sample and step (max {peak})")
    return split, {"spikes": spikes, "mismatches": mismatches, "embedding_max_diff": emb_diff}


def fixed_point_step(
    nir_path: Path, data: Path, ckpt: Path, samples: int, calib_n: int, out: Path
) -> dict:
    """3. Loihi fixed point, the pipeline of `python -m export.loihi`: ranges of every layer's
    |u| and v from a float run on the train clips pick its threshold mantissa (headroom 2
    below the 24-bit limit); the quantised graph then runs bit-exactly beside the float
    model, host ops (E-SDSA, readout) in float within each fixed-point step."""
    t0 = time.perf_counter()
    fixed = compare_fixed_point(
        nir_path,
        data=data,
        checkpoint=ckpt,
        samples=samples,
        batch_size=samples,
        calibration=calib_n,
        local=False,
    )
    worst = max(fixed.quantized.rows(), key=lambda r: r["weight_rel_err_max"])
    print(
        f"\n3. quantised {len(fixed.quantized.layers)} layers; largest weight error"
        f" {100 * worst['weight_rel_err_max']:.2f}% ({worst['layer']})"
    )
    rows = fixed.agreement["aligned"]  # per layer: spikes, agreement, saturations
    total = fixed.summary[1]  # fixed (aligned): agreement over every neuron-step
    spikes_float, spikes_fixed = fixed.spikes
    cosine = F.cosine_similarity(fixed.embeddings["float"], fixed.embeddings["aligned"], dim=-1)
    print(
        f"   float vs fixed point: {total['agreement_pct']:.3f}% of neuron-steps agree; spikes"
        f" float {spikes_float}, fixed {spikes_fixed}; u wrapped {total['u_wrapped']},"
        f" v saturated {total['v_saturated']}"
    )
    print(
        f"   embedding cosine(float, fixed): mean {float(cosine.mean()):.4f}, min"
        f" {float(cosine.min()):.4f} ({time.perf_counter() - t0:.1f} s)"
    )
    with open(out / "loihi_layers.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return {
        "fixed_agreement_pct": total["agreement_pct"],
        "fixed_cosine_mean": float(cosine.mean()),
    }


def mapping_step(
    graph: nir.NIRGraph,
    nir_path: Path,
    split: SplitModel,
    test: torch.Tensor,
    data: Path,
    out: Path,
) -> tuple[dict, dict[str, Path]]:
    """4. Mapping. Spike rates of every neuron node and input, measured in the float
    simulator, give the messages per step; the target's per-core limits give the tiling."""
    t0 = time.perf_counter()
    spiking = (*NEURON_TYPES, nir.Input)
    sources = [n for n, node in graph.nodes.items() if isinstance(node, spiking)]
    rates = spike_rates([split.run(test, record=sources)])
    result = map_graph(graph, "loihi2", rates)
    header = [f"Mapping of {nir_path} (example 4, {len(test)} clips of {data} test)"]
    paths = write_report(result, out / "mapping", header)
    print(f"\n4. {report_text(result, header)}", end="")
    loihi1 = map_graph(graph, "loihi1", rates)
    total = layer_rows(result)[-1]
    print(
        f"   Loihi 2: {result.cores} cores on {result.chips} chip(s),"
        f" {total['messages_out_per_step']} messages per step; Loihi 1: {loihi1.cores} cores"
        f" on {loihi1.chips} chip(s) ({time.perf_counter() - t0:.1f} s)"
    )
    return {"loihi2_cores": result.cores, "loihi1_cores": loihi1.cores}, paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/examples/04_nir_loihi_mapping"))
    parser.add_argument("--quick", action="store_true", help="tiny dataset, 4 clips")
    parser.add_argument("--checkpoint", type=Path, default=None, help="FSVE checkpoint (.pt)")
    parser.add_argument("--data", type=Path, default=None, help="full mode (data/synth)")
    parser.add_argument("--samples", type=int, default=None, help="test clips (24; quick 4)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    args.out.mkdir(parents=True, exist_ok=True)

    # 0. Data and model.
    data, ckpt, samples, calib_n = prepare(args)
    model, _ = load_model(ckpt, kind="fsve")
    cfg = model.cfg
    window = WindowSpec(cfg.num_blocks, cfg.block_frames // 2)
    test = clips(data, "test", samples, window)  # [B, K, F, H, W]
    calib = clips(data, "train", calib_n, window)
    print(
        f"FSVE {ckpt}: {cfg.height}x{cfg.width}, T = {cfg.num_blocks} steps of"
        f" {cfg.block_frames} frames; {len(test)} test and {len(calib)} train clips"
    )
    nir_path, graph, boundary = export_step(model, calib, args.out)
    split, simulated = simulate_step(model, nir_path, test, boundary)
    fixed = fixed_point_step(nir_path, data, ckpt, samples, calib_n, args.out)
    mapped, paths = mapping_step(graph, nir_path, split, test, data, args.out)

    seconds = time.perf_counter() - started
    info = {"checkpoint": str(ckpt), "samples": len(test), **simulated, **fixed, **mapped}
    info["seconds"] = seconds
    (args.out / "summary.json").write_text(json.dumps(info, indent=2) + "\n")
    print(f"done in {seconds:.1f} s; wrote {paths['csv']}, {paths['text']}, loihi_layers.csv")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
