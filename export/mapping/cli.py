"""``python -m export.map GRAPH.nir|CKPT --target loihi2 [--data DIR|--input FILE] [--out DIR]``.

Maps the neuromorphic part of a NIR graph (a ``.nir`` file, or an FSVE checkpoint exported
with :func:`export.nir.to_nir`) onto a target's cores (:func:`export.mapping.map_source`) and
writes ``mapping.csv`` and ``mapping.txt`` into ``--out`` (default
``reports/export/<stem>-<target>``). With ``--data`` (a dataset folder, e.g. ``data/synth``
from ``python -m fsve.data synth --out data/synth``, or a ``.npy`` array ``[T, B, ...]`` for a
graph with one Input), or ``--input [NAME=]FILE`` (your time-first spikes ``[T, B, *shape]`` or
``[T, *shape]`` for a ``.nir`` graph, :mod:`export.inputs`), the spikes per step are measured
with the float simulator :mod:`export.sim` (the host program runs the host ops of FSVE graphs);
without them the report gives the upper bound only. ``export/map.py`` is the entry point that
runs :func:`main`.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from export.mapping.pipeline import map_source
from export.mapping.report import write_report
from export.mapping.targets import MappingError, load_target
from fsve.cli import EXIT_USAGE, Parser, check_output, positive_int

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    p = Parser(
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
    p.add_argument(
        "--input",
        action="append",
        default=None,
        metavar="[NAME=]FILE",
        help="your spikes .npy/.npz for a .nir graph, time-first [T, B, *shape] (or [T, *shape]"
        " for one sample): measured rates without a dataset; NAME= picks the Input node",
    )
    p.add_argument("--dt", type=float, default=None, help="time step, s (graph's dt_s or 1e-4)")
    p.add_argument("--split", default="test", help="dataset split measured (default: test)")
    p.add_argument(
        "--samples", type=positive_int, default=None, help="clips measured (default: all)"
    )
    p.add_argument("--blocks", type=int, default=5, help="sub-blocks per clip for .nir graphs")
    p.add_argument("--batch-size", type=positive_int, default=8, help="clips per simulated batch")
    p.add_argument("--note", default=None, help="a line for the report header (provenance)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _run(args)
    except (ValueError, OSError) as err:  # MappingError and UsageError are ValueErrors
        kind = "cannot map" if isinstance(err, MappingError) else "error"
        print(f"{kind}: {err}", file=sys.stderr)
        return EXIT_USAGE


def _run(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    out = args.out or Path("reports/export") / f"{args.source.stem}-{load_target(args.target).name}"
    inputs = [args.source, *(i.partition("=")[2] or i for i in args.input or ())]
    check_output(out, [*inputs, *(p for p in (args.data,) if p is not None)], folder=True)
    result, header = map_source(
        args.source, args.target, data=args.data, split=args.split, samples=args.samples,
        blocks=args.blocks, batch_size=args.batch_size, note=args.note, inputs=args.input,
        dt=args.dt,
    )  # fmt: skip
    paths = write_report(result, out, header)
    print(paths["text"].read_text(), end="")
    print(f"wrote {paths['csv']} and {paths['text']} ({time.perf_counter() - t0:.1f} s)")
    return 0
