"""Example 3: the ANN-vs-SNN energy report (paper Table 6 form) of an FSVE checkpoint.

Teaches:

1. where a checkpoint comes from: ``--checkpoint`` (e.g. ``fsve/best.pt`` of example 2), or,
   without one, a fresh FSVE ``tiny`` whose BN/TDBN/SN statistics are calibrated on a few train
   clips (:func:`fsve.models.student.calibrate_statistics`: an untrained FSVE in eval mode is
   silent otherwise), saved with :func:`fsve.checkpoint.save_checkpoint`. Its energy is that
   of an untrained network: right to learn the tool with, not a result;
2. ``python -m energy.profile CKPT`` called as a function (:func:`energy.profile.main`): one
   counted pass over the test clips, the table printed, ``summary.csv``, ``layers.csv``,
   ``energy.png`` and ``table.txt`` written;
3. the library behind it (:func:`energy.profile_model`): the same model priced under every
   cost preset (:data:`energy.PRESETS`), and where the SNN's energy goes, layer by layer.

Run: ``.venv/bin/python examples/03_energy_report.py [--checkpoint CKPT] [--teacher T.pt]``
(all 120 test clips of ``data/synth``: about 20 s on one core) or ``--quick`` (a 1-clip-per-class
dataset in ``--out/data``, 4 clips profiled: about 4 s). Outputs go to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch.utils.data import DataLoader, Subset

from energy import PRESETS, profile_model
from energy.profile import main as profile_main
from fsve.checkpoint import load_model, save_checkpoint
from fsve.data.dataset import SpikeDataset, WindowSpec, collate
from fsve.data.synth import SynthConfig, generate_dataset
from fsve.models.student import FSVE, calibrate_statistics, fsve_config


def calibrated_checkpoint(path: Path, data: Path, clips: int = 8, seed: int = 0) -> Path:
    """A fresh FSVE ``tiny`` with statistics from ``clips`` train clips, saved to ``path``."""
    torch.manual_seed(seed)
    model = FSVE(fsve_config("tiny"))
    cfg = model.cfg
    train = SpikeDataset(data, "train", window=WindowSpec(cfg.num_blocks, cfg.block_frames // 2))
    batch = collate([train[i] for i in range(min(clips, len(train)))])["spikes"]  # [B,K,F,H,W]
    calibrate_statistics(model, batch)  # one train-mode pass, momentum 1, then eval()
    return save_checkpoint(path, "fsve", cfg, model.state_dict(), classes=train.class_names)


def prepare_data(out: Path, data: Path | None, quick: bool) -> Path:
    """Step 1a. Energy depends on activity, so it is counted on real clips: their folder."""
    if quick:
        data = out / "data"
        config = SynthConfig(train_per_class=1, val_per_class=1, test_per_class=1)
        generate_dataset(data, config, progress=False)  # 12 classes x 3 clips, 64x64
    else:
        data = data or Path("data/synth")
        if not (data / "manifest.csv").is_file():
            generate_dataset(data, SynthConfig())
    return data


def profile_cli(
    ckpt: Path, data: Path, report_dir: Path, samples: int | None, teacher: Path | None
) -> None:
    """Step 2. ``python -m energy.profile CKPT --data D --out DIR``, and its headline."""
    # The ANN baseline is the FSVE's own twin: the same layers run densely (MACs instead of
    # spike-driven accumulates, no neuron updates), unless --teacher names SPKLIP.
    cli = [str(ckpt), "--data", str(data), "--out", str(report_dir), "--no-progress"]
    if samples is not None:
        cli += ["--samples", str(samples)]
    if teacher is not None:
        cli += ["--baseline", f"teacher:{teacher}"]
    code = profile_main(cli)
    if code:
        raise SystemExit(f"energy.profile exited with code {code}")
    summary = pd.read_csv(report_dir / "summary.csv")  # one row per model: ann, snn
    ann, snn = (summary[summary["model"] == m].iloc[0] for m in ("ann", "snn"))
    print(
        f"\nper inference: ANN {ann['total_j'] * 1e3:.3f} mJ, SNN {snn['total_j'] * 1e3:.3f} mJ"
        f" ({100 * snn['saving_vs_ann']:.1f}% saving); SNN firing rate"
        f" {100 * snn['firing_rate']:.2f}%, memory share {100 * snn['memory_share']:.1f}%"
    )


def every_preset(ckpt: Path, data: Path, samples: int | None, out: Path) -> tuple[int, Any]:
    """Step 3. The library: the counted pass priced under every preset; (clips, paper report)."""
    # Load the model once, build the same loader as the CLI, and price the counted pass under
    # every cost preset (45 nm CMOS, int8, Loihi 1, TrueNorth).
    model, _ = load_model(ckpt, kind="fsve")
    cfg = model.cfg
    test = SpikeDataset(data, "test", window=WindowSpec(cfg.num_blocks, cfg.block_frames // 2))
    n = len(test) if samples is None else min(samples, len(test))
    loader = DataLoader(Subset(test, range(n)), batch_size=1, collate_fn=collate)
    rows, reports = [], {}
    for preset in PRESETS:
        report = reports[preset] = profile_model(model, loader, costs=preset)
        a, s = report.row("ann"), report.row("snn")
        rows.append(
            {
                "costs": preset,
                "ann_total_j": float(a["total_j"]),
                "snn_total_j": float(s["total_j"]),
                "snn_memory_share": float(s["memory_share"]),
                "saving_vs_ann": float(s["saving_vs_ann"]),
            }
        )
    presets = pd.DataFrame(rows)
    presets.to_csv(out / "presets.csv", index=False)
    print(f"\nthe same {n} clips under every cost preset (J per inference):")
    print(presets.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    return n, reports["paper"]


def largest_layers(report: Any) -> None:
    """Where the SNN's energy goes: the per-layer table (paper costs), largest first."""
    layers = report.layers
    top = layers[layers["model"] == "snn"].sort_values("energy_j", ascending=False).head(5)
    print("\nlargest SNN layers (paper costs, J per inference; rate_in: input spike rate):")
    print(top[["layer", "type", "rate_in", "energy_j"]].to_string(index=False))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/examples/03_energy_report"))
    parser.add_argument("--quick", action="store_true", help="tiny dataset, 4 clips")
    parser.add_argument("--checkpoint", type=Path, default=None, help="FSVE checkpoint (.pt)")
    parser.add_argument("--teacher", type=Path, default=None, help="also compare to a teacher")
    parser.add_argument("--data", type=Path, default=None, help="full mode (data/synth)")
    parser.add_argument("--samples", type=int, default=None, help="clips (all; quick 4)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    args.out.mkdir(parents=True, exist_ok=True)

    # 1. Data and checkpoint.
    data = prepare_data(args.out, args.data, args.quick)
    samples = args.samples or (4 if args.quick else None)
    ckpt = args.checkpoint
    if ckpt is None:
        ckpt = calibrated_checkpoint(args.out / "calibrated_fsve.pt", data)
        print(f"no --checkpoint: calibrated an untrained FSVE tiny -> {ckpt}")
    report_dir = args.out / "report"
    profile_cli(ckpt, data, report_dir, samples, args.teacher)
    n, paper = every_preset(ckpt, data, samples, args.out)
    largest_layers(paper)

    seconds = time.perf_counter() - started
    info = {"checkpoint": str(ckpt), "data": str(data), "samples": n, "seconds": seconds}
    (args.out / "run.json").write_text(json.dumps(info, indent=2) + "\n")
    print(f"\ndone in {seconds:.1f} s; files in {report_dir} and {args.out / 'presets.csv'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
