"""``python -m export.sim GRAPH.nir --input spikes.npy``: simulate, print a summary, save."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from export.graph import DT_S, SPIKING_TYPES
from export.inputs import load_inputs
from export.sim.simulator import Simulator
from fsve.cli import Parser, check_output, run_command
from fsve.io import atomic_path


def main(argv: list[str] | None = None) -> int:
    p = Parser(
        prog="python -m export.sim",
        description="Simulate a NIR graph (forward Euler at dt) on time-first spike inputs.",
    )
    p.add_argument("graph", type=Path, help="NIR file (.nir, HDF5)")
    p.add_argument(
        "--input",
        action="append",
        required=True,
        metavar="[NAME=]FILE",
        help="input array .npy/.npz, time-first [T, B, *shape] (or [T, *shape] for one"
        " sample); NAME= selects the Input node when the graph has several",
    )
    p.add_argument("--dt", type=float, default=DT_S, help="time step in seconds (1e-4)")
    p.add_argument("--out", type=Path, default=None, help="write the records to this .npz")
    p.add_argument("--record", default=None, help="'all' or comma-separated node names")
    p.add_argument("--states", default="", help="comma-separated neuron nodes to record v of")
    p.add_argument("--float64", action="store_true", help="simulate in float64")
    p.add_argument("--exact-sums", action="store_true", help="accumulate synaptic sums in float64")
    args = p.parse_args(argv)
    errors = (ValueError, FileNotFoundError, OSError, KeyError)
    return run_command(lambda: _run(args), "error", errors)


def _run(args: argparse.Namespace) -> int:
    if args.out is not None:
        inputs = [args.graph, *(i.partition("=")[2] or i for i in args.input)]
        check_output(args.out, inputs)
    dtype = torch.float64 if args.float64 else torch.float32
    acc = torch.float64 if args.exact_sums else None
    sim = Simulator(args.graph, args.dt, dtype, accumulate=acc)
    given, single, _ = load_inputs(args.input, sim.nodes, sim.inputs)
    record = None
    if args.record:
        record = "all" if args.record == "all" else args.record.split(",")
    states = [s for s in args.states.split(",") if s]
    result = sim.run(given, record=record, states=states)
    arrays = {k: v.cpu().numpy() for k, v in result.items()}
    if single:
        arrays = {k: v[:, 0] for k, v in arrays.items()}
    print(f"{args.graph}: {len(sim.nodes)} nodes, dt = {args.dt:g} s")
    for name, arr in arrays.items():
        spiking = name in sim.nodes and isinstance(sim.nodes[name], SPIKING_TYPES)
        what = f"{int(arr.sum())} spikes" if spiking else f"mean {arr.mean():.6g}"
        print(f"  {name:40s} {arr.shape!s:24s} {what}")
    if args.out is not None:
        with atomic_path(args.out) as tmp:
            with open(tmp, "wb") as f:  # a file object: savez adds no second ".npz"
                np.savez_compressed(f, **arrays)
        print(f"wrote {args.out}")
    return 0
