"""``python -m energy.profile CKPT``: the ANN-vs-SNN energy table of a checkpoint (Table 6 form).

Counts one evaluation pass over N samples of a dataset split (default: all of the built-in test
split), prints the table and writes ``summary.csv``, ``layers.csv``, ``energy.png`` and the
table as ``table.txt`` into ``--out`` (default ``reports/energy/<checkpoint stem>/``). Bad
input (missing or corrupt checkpoint, unknown cost preset, malformed cost file,
``--samples 0``, data of another size than the checkpoint) is reported on one line of stderr
with exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import NoReturn

__all__ = ["main"]

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


class UsageError(ValueError):
    """Bad input from the command line; printed as one line, exit code 2."""


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    from energy.conventions import CONVENTIONS, NORM_MODES
    from energy.costs import PRESETS

    p = _Parser(
        prog="python -m energy.profile",
        description="ANN-vs-SNN energy per inference of an FSVE or SPKLIP checkpoint.",
    )
    p.add_argument("checkpoint", type=Path, help="checkpoint .pt (fsve or teacher)")
    p.add_argument("--data", type=Path, default=Path("data/synth"), help="dataset folder")
    p.add_argument("--split", default="test", help="dataset split (default: test)")
    p.add_argument(
        "--samples", type=_positive, default=None, help="samples to profile (default: all)"
    )
    p.add_argument(
        "--costs",
        default="paper",
        help=f"cost preset ({', '.join(PRESETS)}) or a JSON/TOML file of overrides",
    )
    p.add_argument("--convention", choices=CONVENTIONS, default="simple", help="memory model")
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
    p.add_argument("--batch-size", type=_positive, default=1, help="samples per forward (1)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def _load(path: Path, kind: str | None = None):
    from fsve.checkpoint import load_model

    try:
        return load_model(path, kind=kind)
    except FileNotFoundError as err:
        raise UsageError(str(err)) from None


def _input_spec(ckpt: dict, path: Path) -> tuple[int, int, int, int, int]:
    cfg = ckpt["config"]
    try:
        return (
            int(cfg.get("num_blocks", 5)),
            int(cfg.get("block_frames", 61)),
            int(cfg["height"]),
            int(cfg["width"]),
            int(cfg.get("block_step", 45)),
        )
    except (KeyError, TypeError, ValueError):
        raise UsageError(f"{path}: config lacks the input size (height, width)") from None


def _dataset(args: argparse.Namespace, spec: tuple[int, int, int, int, int]):
    from fsve.data.dataset import SpikeDataset, WindowSpec

    blocks, frames, height, width, step = spec
    if not (args.data / "manifest.csv").is_file():
        raise UsageError(
            f"{args.data}: no dataset here (no manifest.csv); generate the built-in one with "
            "`python -m fsve.data synth --out data/synth` or pass --data"
        )
    try:
        window = WindowSpec(num_blocks=blocks, radius=frames // 2, step=step)
        ds = SpikeDataset(args.data, args.split, window=window)
    except (OSError, ValueError) as err:
        raise UsageError(f"{args.data}: {err}") from None
    sizes = set(zip(ds.table["height"].astype(int), ds.table["width"].astype(int), strict=True))
    if sizes != {(height, width)}:
        found = ", ".join(f"{h}x{w}" for h, w in sorted(sizes))
        raise UsageError(
            f"{args.data}: split {args.split!r} holds {found} clips but the checkpoint expects "
            f"{height}x{width}"
        )
    return ds


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _run(args)
    except UsageError as err:
        print(f"python -m energy.profile: error: {err}", file=sys.stderr)
        return EXIT_USAGE


def _run(args: argparse.Namespace) -> int:
    import torch
    from torch.utils.data import DataLoader, Subset
    from tqdm import tqdm

    from energy.costs import load_costs
    from energy.report import profile_model
    from fsve.checkpoint import CheckpointError
    from fsve.data.dataset import collate

    try:
        costs = load_costs(args.costs)
    except ValueError as err:
        raise UsageError(str(err)) from None
    if args.device == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA device is available")
    if args.baseline != "twin" and not args.baseline.startswith("teacher:"):
        raise UsageError(f"--baseline must be 'twin' or 'teacher:CKPT', got {args.baseline!r}")
    try:
        model, ckpt = _load(args.checkpoint)
        spec = _input_spec(ckpt, args.checkpoint)
        baseline: object = "twin"
        if args.baseline.startswith("teacher:"):
            if ckpt["kind"] != "fsve":
                raise UsageError("--baseline teacher:CKPT compares an FSVE checkpoint")
            teacher_path = Path(args.baseline.split(":", 1)[1])
            teacher, tckpt = _load(teacher_path, kind="teacher")
            if _input_spec(tckpt, teacher_path) != spec:
                raise UsageError(
                    f"{teacher_path}: teacher input {_input_spec(tckpt, teacher_path)} differs "
                    f"from the checkpoint's {spec} (blocks, frames, height, width, step)"
                )
            baseline = teacher.to(args.device)
    except CheckpointError as err:
        raise UsageError(str(err)) from None
    ds = _dataset(args, spec)
    n = len(ds) if args.samples is None else min(args.samples, len(ds))
    loader = DataLoader(Subset(ds, range(n)), batch_size=args.batch_size, collate_fn=collate)
    model.to(args.device)

    def progress(items):
        bar = tqdm(total=n, desc="energy", unit="sample", disable=args.no_progress)
        for item in items:
            yield item
            bar.update(len(item["spikes"]))  # after the batch was profiled
        bar.close()

    report = profile_model(
        model,
        loader,
        costs=costs,
        convention=args.convention,
        baseline=baseline,
        norm=args.norm,
        progress=progress,
    )
    if not isinstance(baseline, str):
        report.baseline = args.baseline
        report.summary["baseline"] = args.baseline
    out = args.out or Path("reports/energy") / args.checkpoint.stem
    print(f"{args.checkpoint} ({ckpt['kind']}), {args.data} split {args.split}:")
    print(report.table())
    paths = report.save(out)
    print(f"wrote {', '.join(str(p) for p in paths.values())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
