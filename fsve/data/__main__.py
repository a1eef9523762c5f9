"""``python -m fsve.data synth|convert|show|info``: the data layer from the command line.

No command writes over one of its inputs, and outputs are checked before any work is done
(:func:`fsve.cli.check_output`; issue 16).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from fsve.cli import Parser, check_output, require_dataset, run_command


def parse_size(text: str) -> tuple[int, int]:
    """argparse type for ``"240x320"`` -> ``(240, 320)`` (height x width)."""
    from fsve.data.synth import parse_size as parse

    try:
        h, w = parse(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    if h <= 0 or w <= 0:
        raise argparse.ArgumentTypeError(f"size must be positive, got {text!r}")
    return h, w


def count(text: str) -> int:
    """argparse type for counts >= 0; integral float notation (``1e6``) is accepted."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not value.is_integer() or value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return int(value)


def save_png(path: Path, image: np.ndarray) -> None:
    """Write a uint8 ``[H, W]`` image as PNG, atomically."""
    from PIL import Image

    from fsve.io import atomic_open

    with atomic_open(path, "wb") as f:
        Image.fromarray(image).save(f, format="PNG")


def cmd_synth(args: argparse.Namespace) -> int:
    from concurrent.futures.process import BrokenProcessPool

    from fsve.data.synth import MAX_DATASET_GB, SynthConfig, generate_dataset
    from fsve.data.synth.generate import render_bytes

    check_output(args.out, folder=True)
    h, w = args.size
    config = SynthConfig(
        height=h,
        width=w,
        frames=args.frames,
        seed=args.seed,
        threshold=args.threshold,
        domain=args.domain,
        train_per_class=args.train,
        val_per_class=args.val,
        test_per_class=args.test,
    )
    try:
        generate_dataset(
            args.out,
            config,
            progress=not args.quiet,
            overwrite=args.overwrite,
            workers=args.workers,
            max_gb=MAX_DATASET_GB if args.max_gb is None else args.max_gb,
        )
    except (MemoryError, BrokenProcessPool):  # a worker killed for memory breaks the pool
        need = render_bytes(config) / 1e9
        raise ValueError(
            f"{args.out}: out of memory rendering clips of {args.frames} frames at {h}x{w}"
            f" (~{need:.3g} GB per worker); use a smaller --size, fewer --frames or fewer --workers"
        ) from None
    print(f"dataset in {args.out}")
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    from fsve.data.video import convert_video

    check_output(args.out, [args.video])
    info = convert_video(
        args.video,
        args.out,
        upsample=args.upsample,
        size=args.size,
        crop=args.crop,
        interpolation=args.interpolation,
        threshold=args.threshold,
        seed=args.seed,
        max_frames=args.max_frames,
        progress=not args.quiet,
    )
    print(
        f"{info['path']}: {info['spike_frames']} spike frames of {info['height']}x"
        f"{info['width']} from {info['source_frames']} video frames, mean firing rate"
        f" {info['mean_firing_rate']:.4f}"
    )
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from fsve.data.dat import count_frames, read_dat
    from fsve.data.recon import check_threshold, tfi, tfp

    h, w = args.size
    half = args.half_window
    check_threshold(args.method, args.threshold, half)
    out = Path(args.out or Path(args.dat).with_suffix(f".{args.method}{args.t}.png"))
    check_output(out, [args.dat])
    total = count_frames(args.dat, h, w)
    if not 0 <= args.t < total:
        raise ValueError(f"{args.dat}: frame {args.t} is outside its {total} frames")
    start, stop = max(0, args.t - half), min(total, args.t + half + 1)
    spikes = read_dat(args.dat, h, w, start, stop)
    if args.method == "tfi":
        image = tfi(spikes, args.t - start, half_window=half, threshold=args.threshold)
    else:
        image = tfp(spikes, args.t - start, half_window=half, threshold=args.threshold)
    save_png(out, image)
    print(f"{out}: {args.method.upper()} of frame {args.t}, mean {image.mean():.1f}/255")
    if not spikes.any():
        print(f"  note: no spike within {half} frames of frame {args.t}; the image is uniform")
    elif image.min() == image.max():
        print(
            f"  note: every pixel is {image.flat[0]}/255 at threshold {args.threshold:g};"
            " the camera's threshold is 5"
        )
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from fsve.data.dat import count_frames
    from fsve.data.manifest import read_manifest

    target = Path(args.path)
    if target.is_dir():
        require_dataset(target)
        table = read_manifest(target)
        print(f"{target}: {len(table)} samples, {table['label'].nunique()} classes")
        counts = table.groupby(["split", "class_name"]).size().unstack(fill_value=0)
        print(counts.to_string())
        sizes = table.groupby(["height", "width", "frames"]).size()
        for (h, w, n), k in sizes.items():
            print(f"  {k} samples of {n} frames at {h}x{w}")
        from fsve.data.synth import CONFIG_NAME

        if (target / CONFIG_NAME).is_file():  # the built-in dataset: what its captions pin down
            from fsve.data.captions import retrieval_ceiling
            from fsve.data.manifest import SPLITS

            print("retrieval ceiling (clips fitting each caption, ties ranked at random):")
            for split in SPLITS:
                if (table["split"] == split).any():
                    print(f"  {retrieval_ceiling(target, split).summary()}")
        return 0
    if args.size is None:
        raise ValueError(
            f"{target}: a .dat file has no header; give its frame size with --size HxW"
        )
    h, w = args.size
    n = count_frames(target, h, w)
    print(f"{target}: {n} frames of {h}x{w} ({target.stat().st_size} bytes)")
    if args.rate:
        from fsve.data.dat import read_dat

        rates = [read_dat(target, h, w, s, min(n, s + 1000)).mean() for s in range(0, n, 1000)]
        print(f"  mean firing rate {np.mean(rates):.4f} spikes/pixel/frame")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="python -m fsve.data", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("synth", help="generate the built-in synthetic action dataset")
    p.add_argument("--out", type=Path, default=Path("data/synth"), help="dataset folder")
    p.add_argument("--size", type=parse_size, default=(64, 64), help="HxW (default 64x64)")
    p.add_argument("--frames", type=count, default=250, help="spike frames per sample")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--domain",
        choices=["sim", "real"],
        default="sim",
        help="'real': sparser, local motion, sensor line noise (few-shot domain)",
    )
    p.add_argument("--train", type=count, default=40, help="train samples per class")
    p.add_argument("--val", type=count, default=10, help="validation samples per class")
    p.add_argument("--test", type=count, default=10, help="test samples per class")
    p.add_argument("--threshold", type=float, default=5.0, help="camera threshold theta")
    p.add_argument("--workers", type=int, default=1, help="processes (output is identical)")
    p.add_argument("--overwrite", action="store_true", help="regenerate even if present")
    p.add_argument(
        "--max-gb",
        type=float,
        default=None,
        help="refuse to write more GB than this (default 20, MAX_DATASET_GB)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("convert", help="convert a video file (mp4/avi) to a .dat spike stream")
    p.add_argument("video", type=Path)
    p.add_argument("out", type=Path, help="output .dat file")
    p.add_argument("--upsample", type=int, default=10, help="frame-rate expansion (x10, x50)")
    p.add_argument("--size", type=parse_size, default=None, help="HxW after centre-crop+resize")
    p.add_argument(
        "--crop",
        choices=["resize", "center"],
        default="resize",
        help="resize: centre-crop to the target aspect, then rescale; center: crop only",
    )
    p.add_argument("--interpolation", choices=["flow", "linear"], default="flow")
    p.add_argument("--threshold", type=float, default=5.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-frames", type=int, default=None, help="source frames to read")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_convert)

    p = sub.add_parser("show", help="write a PNG reconstruction of frame t of a .dat file")
    p.add_argument("dat", type=Path)
    p.add_argument("--size", type=parse_size, required=True, help="frame size HxW")
    p.add_argument("-t", type=int, default=0, help="frame index")
    p.add_argument("--method", choices=["tfi", "tfp"], default="tfi")
    p.add_argument("--half-window", type=int, default=20, help="frames searched each side")
    p.add_argument("--threshold", type=float, default=5.0, help="camera threshold (1: SpikeCV raw)")
    p.add_argument("--out", type=Path, default=None, help="PNG path")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("info", help="describe a .dat file or a dataset folder")
    p.add_argument("path", type=Path)
    p.add_argument("--size", type=parse_size, default=None, help="frame size HxW for a .dat")
    p.add_argument("--rate", action="store_true", help="also compute the mean firing rate")
    p.set_defaults(func=cmd_info)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    errors = (ValueError, FileNotFoundError, FileExistsError, ImportError)
    return run_command(lambda: args.func(args), "error", errors)


if __name__ == "__main__":
    raise SystemExit(main())
