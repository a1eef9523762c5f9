"""Reference checkpoints under ``checkpoints/``: copy trained runs in, write a card beside each.

Usage::

    python benchmarks/ship_checkpoints.py ship NAME=RUN_DIR [NAME=RUN_DIR ...] [--data data/synth]
    python benchmarks/ship_checkpoints.py check [--data DIR]   # re-measure every card

``ship`` copies ``RUN_DIR/best.pt`` to ``checkpoints/NAME.pt`` and writes ``NAME.card.json``: the
command that trained it (``RUN_DIR/command.txt``, written by ``benchmarks/accuracy.py``), the
code commit, the data generator version and a hash of the test split's spikes and captions, the
test Top-1/Top-5/R@k, the firing rate (FSVE: spikes per neuron update over the test split, as
in Table 6) and the file's SHA-256; ``checkpoints/README.md`` lists them. ``check`` re-measures
every card on the built-in test split (generated into a temporary folder when ``--data`` is not
given) and exits 1 naming each figure that drifted: the test suite runs it, so a change to the
code or the data generator that moves a shipped model's numbers fails loudly.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CHECKPOINTS = ROOT / "checkpoints"
METRICS = ("top1_pct", "top5_pct", "r1_pct", "r5_pct", "r10_pct")
# tolerances of `check`: one test clip in 120 for the metrics (float rounding on another CPU may
# flip a near tie), and a firing rate equal to 4 decimals of a percent
METRIC_TOLERANCE = 100.0 / 120
FIRING_TOLERANCE = 1e-4


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def test_split_hash(data: Path) -> str:
    """SHA-256 over the test split's captions, labels and ``.dat`` bytes, in manifest order."""
    from fsve.data.manifest import read_manifest

    table = read_manifest(data)
    digest = hashlib.sha256()
    for row in table[table["split"] == "test"].itertuples():
        digest.update(f"{row.path}\t{row.label}\t{row.caption}\n".encode())
        digest.update(Path(row.file).read_bytes())
    return digest.hexdigest()


def firing_rate_pct(ckpt: Path, data: Path) -> float:
    """Spikes per neuron update (%) of an FSVE over the test split, as Table 6 counts them."""
    from torch.utils.data import DataLoader

    from energy import profile_model
    from fsve.checkpoint import load_model
    from fsve.data.dataset import SpikeDataset, collate
    from fsve.eval import window_for_model

    model, _ = load_model(ckpt)
    model.eval()
    dataset = SpikeDataset(data, "test", window=window_for_model(model))
    loader = DataLoader(dataset, batch_size=30, collate_fn=collate)
    report = profile_model(model, loader, audit=False)
    return 100.0 * float(report.row("snn")["firing_rate"])


def measure(ckpt: Path, data: Path) -> dict[str, Any]:
    """The figures a card holds that depend on code and data: metrics, firing rate, data."""
    from fsve.data.synth import CONFIG_NAME
    from fsve.eval import evaluate_checkpoint

    row = evaluate_checkpoint(ckpt, data, split="test")
    record = json.loads((data / CONFIG_NAME).read_text())  # any version: a drift is reported
    out: dict[str, Any] = {
        "data": {
            "generator": record["generator"],
            "version": record["version"],
            "seed": record["seed"],
            "size": f"{record['height']}x{record['width']}",
            "frames": record["frames"],
            "test_clips": row["samples"],
            "test_split_sha256": test_split_hash(data),
        },
        "test": {k: round(float(row[k]), 2) for k in METRICS},
        "best_epoch": row["epoch"],
    }
    if row["kind"] == "fsve":
        out["firing_rate_pct"] = round(firing_rate_pct(ckpt, data), 4)
    return out


def ship(pairs: list[str], data: Path, code: str | None = None) -> int:
    from apps.reports import commit
    from fsve.checkpoint import load_checkpoint
    from fsve.io import atomic_write_text

    CHECKPOINTS.mkdir(exist_ok=True)
    for pair in pairs:
        name, sep, run = pair.partition("=")
        if not sep or not name or "/" in name:
            raise SystemExit(f"ship: expected NAME=RUN_DIR, got {pair!r}")
        run_dir = Path(run)
        command_file = run_dir / "command.txt"
        if not command_file.is_file():
            raise SystemExit(f"ship: {command_file} is missing (benchmarks/accuracy.py writes it)")
        target = CHECKPOINTS / f"{name}.pt"
        shutil.copyfile(run_dir / "best.pt", target)
        ckpt = load_checkpoint(target)
        params = sum(v.numel() for v in ckpt["state_dict"].values() if v.is_floating_point())
        card = {
            "name": name,
            "file": target.name,
            "sha256": sha256(target),
            "kind": ckpt["kind"],
            "parameters": params,
            "command": command_file.read_text().strip(),
            "commit": code or commit(outputs=CHECKPOINTS),
            **measure(target, data),
        }
        atomic_write_text(CHECKPOINTS / f"{name}.card.json", json.dumps(card, indent=2) + "\n")
        print(json.dumps(card), flush=True)
    write_index()
    return 0


def cards() -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(CHECKPOINTS.glob("*.card.json"))]


def write_index() -> None:
    """``checkpoints/README.md``: one line per card."""
    from fsve.io import atomic_write_text

    lines = [
        "# Reference checkpoints",
        "",
        "Trained on the built-in dataset (`make demo` / `python -m fsve.data synth` makes it);",
        "each `NAME.card.json` holds the command, commit, data version and hash, test figures",
        "and the file's SHA-256. `python benchmarks/ship_checkpoints.py check` (run by the test",
        "suite) re-measures them and fails when the code or the data drifts from a card.",
        "",
        "| file | kind | Top-1 % | Top-5 % | R@1 / 5 / 10 % | firing rate % | MB |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in cards():
        t = c["test"]
        rate = f"{c['firing_rate_pct']:.2f}" if "firing_rate_pct" in c else "ANN"
        size = (CHECKPOINTS / c["file"]).stat().st_size / 1e6
        lines.append(
            f"| `{c['file']}` | {c['kind']} | {t['top1_pct']:.1f} | {t['top5_pct']:.1f}"
            f" | {t['r1_pct']:.1f} / {t['r5_pct']:.1f} / {t['r10_pct']:.1f} | {rate}"
            f" | {size:.1f} |"
        )
    lines += ["", "Commands (from each card):", ""]
    lines += [f"- `{c['file']}`: `{c['command']}` (commit {c['commit']})" for c in cards()]
    atomic_write_text(CHECKPOINTS / "README.md", "\n".join(lines) + "\n")


def builtin_test_split(folder: Path, card: dict[str, Any]) -> Path:
    """Generate only the test split of the built-in dataset a card was measured on."""
    from fsve.data.synth import SynthConfig, generate_dataset

    d = card["data"]
    height, width = (int(x) for x in d["size"].split("x"))
    per_class = d["test_clips"] // 12
    config = SynthConfig(
        height=height,
        width=width,
        frames=d["frames"],
        seed=d["seed"],
        train_per_class=0,
        val_per_class=0,
        test_per_class=per_class,
    )
    return generate_dataset(folder, config, progress=False)


def drift(card: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """Lines naming every figure of ``now`` that differs from the card beyond tolerance."""
    out = []
    for key in ("generator", "version", "test_clips", "test_split_sha256"):
        if card["data"][key] != now["data"][key]:
            out.append(f"data {key}: card {card['data'][key]}, now {now['data'][key]}")
    for key in METRICS:
        if abs(card["test"][key] - now["test"][key]) > METRIC_TOLERANCE + 1e-9:
            out.append(f"test {key}: card {card['test'][key]}, now {now['test'][key]}")
    if "firing_rate_pct" in card:
        if abs(card["firing_rate_pct"] - now["firing_rate_pct"]) > FIRING_TOLERANCE:
            out.append(
                f"firing rate: card {card['firing_rate_pct']}%, now {now['firing_rate_pct']}%"
            )
    return out


def check(data: Path | None) -> int:
    found = cards()
    if not found:
        print("check: no cards in checkpoints/", file=sys.stderr)
        return 1
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        for card in found:
            path = CHECKPOINTS / card["file"]
            if sha256(path) != card["sha256"]:
                failures.append(f"{card['file']}: SHA-256 differs from its card")
                continue
            folder = data if data is not None else builtin_test_split(Path(tmp) / "d", card)
            lines = drift(card, measure(path, folder))
            failures += [f"{card['file']}: {line}" for line in lines]
            print(f"{card['file']}: {'drifted' if lines else 'matches its card'}", flush=True)
    for line in failures:
        print(line, file=sys.stderr)
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("ship", help="copy runs' best.pt into checkpoints/ with cards")
    s.add_argument("pairs", nargs="+", metavar="NAME=RUN_DIR")
    s.add_argument("--data", type=Path, default=Path("data/synth"))
    s.add_argument(
        "--commit", default=None, help="the commit that trained the runs (default: the checkout's)"
    )
    c = sub.add_parser("check", help="re-measure every card; exit 1 on drift")
    c.add_argument("--data", type=Path, default=None, help="default: a fresh built-in test split")
    args = p.parse_args(argv)
    if args.command == "ship":
        return ship(args.pairs, args.data, args.commit)
    return check(args.data)


if __name__ == "__main__":
    sys.exit(main())
