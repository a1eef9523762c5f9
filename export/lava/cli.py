"""``python -m export.lava run|netx IN.npz OUT``, run with the Lava interpreter (``.venv-lava``).

``run`` runs a :func:`~export.lava.exchange.save_run` file in Lava fixed point and writes the
results (``s/<layer>``, ``v/<layer>``...); ``netx`` writes its graph as netx HDF5.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from export.lava.exchange import load_run, save_results
from export.lava.network import run_lava
from export.lava.netx import write_netx
from fsve.cli import Parser, run_command

__all__ = ["PROG", "main"]

PROG = "python -m export.lava"
DESCRIPTION = (
    "Run a quantised spiking graph in Intel Lava's fixed-point models; write lava-dl netx HDF5."
)


def main(argv: list[str] | None = None) -> int:
    parser = Parser(prog=PROG, description=DESCRIPTION)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_run = sub.add_parser("run", help="run a save_run .npz in Lava fixed point")
    p_run.add_argument("input", type=Path)
    p_run.add_argument("output", type=Path)
    p_netx = sub.add_parser("netx", help="write the graph of a save_run .npz as netx HDF5")
    p_netx.add_argument("input", type=Path)
    p_netx.add_argument("output", type=Path)
    args = parser.parse_args(argv)
    return run_command(lambda: _run(args), f"{PROG}: error", (ValueError, OSError, KeyError))


def _run(args: argparse.Namespace) -> int:
    graph, inputs, opts = load_run(args.input)
    if args.cmd == "run":
        results = run_lava(graph, inputs, record=opts["record"], layers=opts["layers"])
        save_results(args.output, results)
    else:
        write_netx(graph, args.output)
    return 0
