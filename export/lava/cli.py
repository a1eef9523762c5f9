"""``python -m export.lava compile|run|netx``: a NIR graph to Lava and Lava's runs.

``compile GRAPH.nir --input spikes.npy OUT.npz`` (main venv: needs torch and nir) quantises any
NIR graph on the user's time-first spikes and writes the run file of one sample and what
export.loihi expects of it (:mod:`export.lava.compile`); ``--run`` also runs it in
``.venv-lava`` and compares. ``run IN.npz OUT.npz`` (Lava interpreter) runs a
:func:`~export.lava.exchange.save_run` file in Lava fixed point and writes the results
(``s/<layer>``, ``v/<layer>``...); ``netx`` writes its graph as netx HDF5.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path
from typing import Any

from export.lava.exchange import load_run, save_results
from export.lava.network import run_lava
from export.lava.netx import write_netx
from fsve.cli import Parser, UsageError, check_output, positive_int, run_command, text_table
from fsve.io import atomic_path

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
    _compile_parser(sub)
    args = parser.parse_args(argv)
    errors = (ValueError, OSError, KeyError, ImportError)
    return run_command(lambda: _run(args), f"{PROG}: error", errors)


def _compile_parser(sub: Any) -> None:
    p = sub.add_parser(
        "compile", help="NIR graph + your spikes -> a run file (main venv, torch and nir)"
    )
    p.add_argument("graph", type=Path, help="GRAPH.nir (any framework's)")
    p.add_argument("output", type=Path, help="run file OUT.npz (+ OUT.expected.npz)")
    p.add_argument("--input", type=Path, required=True, metavar="FILE",
                   help="spikes .npy/.npz, time-first [T, B, *shape] or [T, *shape]")  # fmt: skip
    p.add_argument("--sample", type=int, default=0, help="which sample of the batch runs (0)")
    p.add_argument("--calibration", type=positive_int, default=16,
                   help="first samples of --input behind the fixed-point ranges")  # fmt: skip
    p.add_argument("--headroom", type=float, default=2.0, help="u, v below 2^23/headroom")
    p.add_argument("--dt", type=float, default=None, help="time step, s (graph's dt_s or 1e-4)")
    p.add_argument("--run", action="store_true", help="run it in .venv-lava and compare")


def _compile(args: argparse.Namespace) -> int:
    from export.lava.bridge import run_in_lava_env
    from export.lava.compile import compare_with_lava, compile_graph, write_compiled

    run = compile_graph(
        args.graph,
        args.input,
        sample=args.sample,
        calibration=args.calibration,
        headroom=args.headroom,
        dt=args.dt,
    )
    paths = list(write_compiled(run, args.output))
    layers = ", ".join(f"{la.name} {la.shape}" for la in run.graph.layers)
    print(f"{args.graph}: {len(run.graph.layers)} Lava LIF layers ({layers}); sample"
          f" {args.sample}, T = {run.steps} + {len(next(iter(run.inputs.values()))) - run.steps}"
          " padding steps; ranges from --input")  # fmt: skip
    if args.run:
        lava = run_in_lava_env(run.graph, run.inputs)
        rows = compare_with_lava(run.expected, lava)
        print(text_table(rows, align="auto"))
        if any(r["s_u_v_equal"] != "yes" for r in rows):
            print(f"{PROG}: Lava and export.loihi differ (table above)", file=sys.stderr)
            return 1
    else:
        print(f"run it in Lava: .venv-lava/bin/python -m export.lava run {args.output} RES.npz")
    print("wrote " + ", ".join(map(str, paths)))
    return 0


def _run(args: argparse.Namespace) -> int:
    inputs = [args.graph, args.input] if args.cmd == "compile" else [args.input]
    check_output(args.output, inputs)
    if args.cmd != "netx" and args.output.suffix != ".npz":
        raise UsageError(f"{args.output}: the output must end in .npz")
    if args.cmd == "compile":
        return _compile(args)
    graph, inputs, opts = load_run(args.input)
    if args.cmd == "run":
        _require_lava()
        results = run_lava(graph, inputs, record=opts["record"], layers=opts["layers"])
        with atomic_path(args.output) as tmp:
            save_results(tmp, results)
    else:
        with atomic_path(args.output) as tmp:
            write_netx(graph, tmp)
    return 0


def _require_lava() -> None:
    """One line, not a traceback, when this Python has no Lava (the main venv, issue 16)."""
    try:
        found = importlib.util.find_spec("lava.magma") is not None
    except ImportError:  # no top-level lava package
        found = False
    if not found:
        raise UsageError(
            f"`export.lava run` needs Lava (lava-nc, Python 3.10), which {sys.executable} does"
            " not have: run `make lava-env` once, then .venv-lava/bin/python -m export.lava run"
        )
