"""``python -m energy.profile CKPT``: the ANN-vs-SNN energy table of a checkpoint (Table 6 form).

``python -m energy.profile GRAPH.nir --input spikes.npy``: the same table for any NIR graph on
the user's time-first input (:func:`energy.profile.profile_nir`; issue 15).

Counts one evaluation pass over N samples of a dataset split (default: all of the built-in test
split), prints the table and writes ``summary.csv``, ``layers.csv``, ``energy.png``, the
table as ``table.txt``, ``provenance.json``, ``energy_vs_rate.png`` (break-even) and with
``--convention sdt`` ``conventions.csv`` into ``--out`` (default
``reports/energy/<checkpoint stem>/``). Bad input (missing or corrupt checkpoint, unknown cost
preset, malformed cost file, ``--samples 0``, data of another size than the checkpoint) is
reported on one line of stderr with exit code 2. The pipeline is
:func:`energy.profile.profile_checkpoint`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from fsve.cli import Parser, UsageError, check_output, positive_int, run_command

__all__ = ["build_parser", "main"]

PROG = "python -m energy.profile"


def build_parser() -> argparse.ArgumentParser:
    from energy.conventions import CONVENTIONS, NORM_MODES
    from energy.costs import PRESETS

    p = Parser(
        prog=PROG,
        description="ANN-vs-SNN energy per inference of an FSVE or SPKLIP checkpoint, or of"
        " a NIR graph (.nir) on --input spikes.",
    )
    p.add_argument(
        "checkpoint", type=Path, help="checkpoint .pt (fsve or teacher) or NIR graph .nir"
    )
    p.add_argument("--data", type=Path, default=Path("data/synth"), help="dataset folder")
    p.add_argument("--split", default="test", help="dataset split (default: test)")
    p.add_argument(
        "--samples", type=positive_int, default=None, help="samples to profile (default: all)"
    )
    p.add_argument(
        "--costs",
        default=None,
        help=f"cost preset ({', '.join(PRESETS)}) or a JSON/TOML file of overrides "
        "(default: paper; horowitz45 with --convention sdt)",
    )
    p.add_argument(
        "--convention",
        choices=CONVENTIONS,
        default="simple",
        help="memory model (simple, lemaire) or sdt (the spike-driven transformer papers' "
        "accounting, shown beside the others)",
    )
    p.add_argument(
        "--norm", choices=NORM_MODES, default="fold", help="how BN/TDBN is counted (fold)"
    )
    p.add_argument(
        "--baseline",
        default="twin",
        help="'twin' (same network run densely) or 'teacher:CKPT' (the SPKLIP teacher)",
    )
    p.add_argument("--out", type=Path, default=None, help="output folder")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--batch-size", type=positive_int, default=1, help="samples per forward (1)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--input",
        action="append",
        default=None,
        metavar="[NAME=]FILE",
        help="NIR graphs only: input .npy/.npz, time-first [T, B, ...] or [T, ...]; NAME="
        " selects the Input node when the graph has several",
    )
    p.add_argument("--dt", type=float, default=None, help="NIR graphs: time step, s (1e-4)")
    p.add_argument(
        "--layout",
        choices=("auto", "T", "TB"),
        default="auto",
        help="NIR graphs: input axes [T, ...] or [T, B, ...] (auto: from the Input node)",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command(lambda: _run(args), f"{PROG}: error", (UsageError, OSError))


def _run(args: argparse.Namespace) -> int:
    from energy.profile.checkpoint import profile_checkpoint

    if args.checkpoint.suffix == ".nir":
        return _run_graph(args)
    if args.input:
        raise UsageError("--input is for NIR graphs (GRAPH.nir); a checkpoint reads --data")
    out = _out_dir(args)

    report = profile_checkpoint(
        args.checkpoint,
        data=args.data,
        split=args.split,
        samples=args.samples,
        costs=args.costs,
        convention=args.convention,
        norm=args.norm,
        baseline=args.baseline,
        batch_size=args.batch_size,
        device=args.device,
        progress=not args.no_progress,
    )
    print(f"{args.checkpoint} ({report.checkpoint_kind}), {args.data} split {args.split}:")
    print(report.table())
    paths = report.save(out)
    print(f"wrote {', '.join(str(p) for p in paths.values())}")
    return 0


def _out_dir(args: argparse.Namespace) -> Path:
    """The report folder, refused before any work when it cannot hold the report."""
    out = args.out or Path("reports/energy") / args.checkpoint.stem
    inputs = [args.checkpoint, *(i.partition("=")[2] or i for i in args.input or ())]
    return check_output(out, inputs, folder=True)


def _run_graph(args: argparse.Namespace) -> int:
    from energy.profile.nirgraph import profile_nir
    from export.inputs import load_array

    if not args.input:
        raise UsageError(f"{args.checkpoint}: a NIR graph needs --input spikes.npy (time-first)")
    if args.baseline != "twin":
        raise UsageError("--baseline: a NIR graph is compared with its dense twin only")
    out = _out_dir(args)
    inputs: dict[str, object] = {}
    try:
        for item in args.input:
            name, sep, file = item.partition("=")
            if (name if sep else "") in inputs:
                raise UsageError(f"--input {item}: a second value for the same Input node")
            inputs[name if sep else ""] = load_array(file if sep else item)
        report = profile_nir(
            args.checkpoint,
            inputs.pop("") if list(inputs) == [""] else inputs,
            costs=args.costs,
            convention=args.convention,
            dt=args.dt,
            layout=args.layout,
        )
    except (ValueError, OSError) as err:
        raise UsageError(str(err)) from None
    print(f"{args.checkpoint} (NIR graph), {report.samples} samples:")
    print(report.table())
    paths = report.save(out)
    print(f"wrote {', '.join(str(p) for p in paths.values())}")
    return 0
