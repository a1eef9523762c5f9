"""``python -m export.map GRAPH.nir|CKPT --target loihi2 [--data DIR] [--out DIR]``.

Maps the neuromorphic part of a NIR graph (a ``.nir`` file, or an FSVE checkpoint exported
with :func:`export.nir.to_nir`) onto a target's cores (:mod:`export.mapping`) and writes
``mapping.csv`` and ``mapping.txt`` into ``--out`` (default ``reports/export/<stem>-<target>``).
With ``--data`` (a dataset folder, e.g. ``data/synth`` from ``python -m fsve.data synth --out
data/synth``, or a ``.npy`` array ``[T, B, ...]`` for a graph with one Input) the spikes per
step are measured with the float simulator :mod:`export.sim` (the host program runs the host
ops of FSVE graphs); without it the report gives the upper bound only.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import nir
import numpy as np
import torch

from export.mapping import MappingError, load_target, map_graph, spike_rates, write_report
from export.nir import HostProgram, SplitModel, host_path_for, to_nir
from export.sim import DT_S, NEURON_TYPES, Simulator

EXIT_USAGE = 2

Runner = Callable[[Any], dict[str, Any]]


def _graph_dt(graph: nir.NIRGraph) -> float:
    meta = graph.metadata or {}
    return float(np.asarray(meta["dt_s"])) if "dt_s" in meta else DT_S


def _record(graph: nir.NIRGraph) -> list[str]:
    """Neuron nodes and Input nodes: every spike source of the mapping."""
    return [n for n, node in graph.nodes.items() if isinstance(node, (*NEURON_TYPES, nir.Input))]


def _load_source(source: Path, example: torch.Tensor | None):
    """``(graph, runner or None, layout, what)`` for a ``.nir`` file or an FSVE checkpoint."""
    if not source.is_file():
        raise FileNotFoundError(f"{source}: no such file")
    if source.suffix == ".nir":
        graph = nir.read(source)
        host_file = host_path_for(source)
        names = _record(graph)
        if host_file.is_file():
            split = SplitModel(graph, HostProgram.load(host_file), _graph_dt(graph))
            return (
                graph,
                lambda x: split.run(x, record=names),
                split.host.input_layout,
                (f"NIR graph {source} with its host program {host_file}"),
            )
        sim = Simulator(graph, _graph_dt(graph))
        layout = str((graph.metadata or {}).get("input_layout", "time_first"))
        if len(sim.inputs) > 1:
            ports = [n for n in sim.inputs if n != "input"]

            def refuse(x: Any) -> dict[str, Any]:
                raise ValueError(
                    f"{source} has Input ports {ports} fed by a host program; measuring spikes"
                    f" needs {host_file} beside it (written by python -m export.nir)"
                )

            return graph, refuse, layout, f"NIR graph {source}"

        def run(x: Any) -> dict[str, Any]:
            if layout == "clip":
                x = torch.as_tensor(x).transpose(0, 1)  # [B, K, F, H, W] -> [T = K, B, ...]
            return sim.run(x, record=names)

        return graph, run, layout, f"NIR graph {source}"
    if source.suffix == ".pt":
        from fsve.checkpoint import load_model

        model, _ = load_model(source, kind="fsve")
        cfg = model.cfg
        if example is None:
            example = torch.zeros(1, cfg.num_blocks, cfg.block_frames, cfg.height, cfg.width)
            example = example.bool()
        export = to_nir(model, example)
        split = export.split_model()
        names = _record(export.graph)
        return (
            export.graph,
            lambda x: split.run(x, record=names),
            "clip",
            (f"FSVE checkpoint {source} (exported with export.nir.to_nir)"),
        )
    raise ValueError(f"{source}: expected a .nir graph or a .pt FSVE checkpoint")


def _clip_shape(source: Path) -> tuple[int, int, int, int] | None:
    """``(K, F, H, W)`` of an FSVE checkpoint's clips, None for a .nir file."""
    if source.suffix != ".pt":
        return None
    from fsve.checkpoint import load_checkpoint
    from fsve.models.config import fsve_config

    cfg = fsve_config(load_checkpoint(source, kind="fsve")["config"])
    return cfg.num_blocks, cfg.block_frames, cfg.height, cfg.width


def _dataset_batches(
    data: Path, split: str, frames: int, hw: tuple[int, int], blocks: int, samples, batch_size
) -> tuple[Iterator[torch.Tensor], int]:
    from fsve.data.dataset import SpikeDataset, WindowSpec, collate

    if frames % 2 == 0:
        raise ValueError(f"the graph input has {frames} frames per step; sub-blocks are odd")
    dataset = SpikeDataset(data, split, window=WindowSpec(num_blocks=blocks, radius=frames // 2))
    sizes = set(zip(dataset.table["height"], dataset.table["width"], strict=True))
    if sizes != {hw}:
        raise ValueError(f"{data}: frames {sorted(sizes)} but the graph expects {hw[0]}x{hw[1]}")
    n = len(dataset) if samples is None else min(samples, len(dataset))

    def batches() -> Iterator[torch.Tensor]:
        for start in range(0, n, batch_size):
            items = [dataset[i] for i in range(start, min(start + batch_size, n))]
            yield collate(items)["spikes"]  # [B, K, F, H, W] bool

    return batches(), n


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m export.map",
        description="Map a NIR graph's neuromorphic part onto neuro cores: cores, synapses,"
        " memory, chips, spikes per step between cores (CSV + text table).",
    )
    p.add_argument("source", type=Path, help="NIR graph (.nir) or FSVE checkpoint (.pt)")
    p.add_argument(
        "--target", default="loihi2", help="loihi2 (default), loihi1, or a .json/.toml file"
    )
    p.add_argument("--out", type=Path, default=None, help="report folder")
    p.add_argument(
        "--data",
        type=Path,
        default=None,
        help="dataset folder (clips) or .npy [T, B, ...] to measure spike rates",
    )
    p.add_argument("--split", default="test", help="dataset split measured (default: test)")
    p.add_argument("--samples", type=int, default=None, help="clips measured (default: all)")
    p.add_argument("--blocks", type=int, default=5, help="sub-blocks per clip for .nir graphs")
    p.add_argument("--batch-size", type=int, default=8, help="clips per simulated batch")
    p.add_argument("--note", default=None, help="a line for the report header (provenance)")
    args = p.parse_args(argv)
    try:
        return _run(args)
    except (ValueError, FileNotFoundError, OSError) as err:  # MappingError is a ValueError
        kind = "cannot map" if isinstance(err, MappingError) else "error"
        print(f"{kind}: {err}", file=sys.stderr)
        return EXIT_USAGE


def _run(args: argparse.Namespace) -> int:
    if args.batch_size < 1 or (args.samples is not None and args.samples < 1):
        raise ValueError("--batch-size and --samples must be >= 1")
    target = load_target(args.target)
    t0 = time.perf_counter()
    clip = _clip_shape(args.source)
    batches: Iterator[Any] | None = None
    first: Any = None
    basis = "no --data: upper bounds only"
    is_dataset = args.data is not None and args.data.is_dir()
    if args.data is not None and not args.data.exists():
        raise FileNotFoundError(
            f"{args.data}: no such dataset (make one with `python -m fsve.data synth --out"
            " data/synth`)"
        )
    if is_dataset and not (args.data / "manifest.csv").is_file():
        raise FileNotFoundError(f"{args.data}: no manifest.csv, not a dataset folder")
    if is_dataset and clip is not None:
        k, f, h, w = clip
        batches, n = _dataset_batches(
            args.data, args.split, f, (h, w), k, args.samples, args.batch_size
        )
        first = next(batches)
        basis = f"{n} clips of {args.data} {args.split}, T = {k} steps"
    graph, run, layout, what = _load_source(args.source, first)
    if args.data is not None and batches is None:
        if is_dataset:
            if layout != "clip":
                raise ValueError(
                    f"{args.data}: a dataset folder feeds FSVE graphs (clip layout); give a"
                    " .npy [T, B, ...] for this graph"
                )
            shape = tuple(int(s) for s in np.asarray(graph.nodes["input"].output_type["output"]))
            if len(shape) != 3:
                raise ValueError(f"the graph input has shape {shape}, not (frames, H, W)")
            batches, n = _dataset_batches(
                args.data, args.split, shape[0], shape[1:], args.blocks, args.samples,
                args.batch_size,
            )  # fmt: skip
            basis = f"{n} clips of {args.data} {args.split}, T = {args.blocks} steps"
        elif args.data.suffix == ".npy":
            if layout == "clip":
                raise ValueError(f"{args.source} takes clips; give --data a dataset folder")
            x = np.load(args.data)
            if x.ndim < 3:
                raise ValueError(f"{args.data}: expected [T, B, ...], got shape {x.shape}")
            batches = iter([torch.as_tensor(x)])
            basis = f"{args.data}: T = {x.shape[0]} steps, B = {x.shape[1]}"
        else:
            raise ValueError(f"{args.data}: --data takes a dataset folder or a .npy file")
    rates = None
    if batches is not None:
        stream = batches if first is None else _chain(first, batches)
        rates = spike_rates(run(x) for x in stream)
        basis = f"measured on {basis} with the float simulator export.sim"
    result = map_graph(graph, target, rates)
    meta = graph.metadata or {}
    header = [
        f"Mapping of {what}",
        f"onto {target.name}; host ops (not on cores): {meta.get('host_ops', 'none')}",
        f"spike rates  {basis}",
    ]
    if args.note:
        header.insert(1, f"note         {args.note}")
    out = args.out or Path("reports/export") / f"{args.source.stem}-{target.name}"
    paths = write_report(result, out, header)
    print(paths["text"].read_text(), end="")
    print(f"wrote {paths['csv']} and {paths['text']} ({time.perf_counter() - t0:.1f} s)")
    return 0


def _chain(first: Any, rest: Iterator[Any]) -> Iterator[Any]:
    yield first
    yield from rest


if __name__ == "__main__":
    raise SystemExit(main())
