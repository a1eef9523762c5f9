"""The float-vs-fixed-point report: ``loihi.txt`` and the CSVs behind its two tables."""

from __future__ import annotations

from pathlib import Path

from export.loihi.compare import FixedPointComparison
from fsve.cli import text_table
from fsve.io import atomic_write_bytes, csv_text

__all__ = ["REPORT_FILES", "report_text", "write_report"]

REPORT_FILES = ("loihi.txt", "loihi_summary.csv", "loihi_layers.csv")


def report_text(result: FixedPointComparison) -> str:
    """The report as ``python -m export.loihi`` prints it (and writes it to ``loihi.txt``)."""
    spikes_f, spikes_x = result.spikes
    template = result.prompt_template
    measured = result.measured_on or f"{result.samples} clips of {result.data} {result.split}"
    calibrated = result.calibrated_on or f"{result.calibration} train clips"
    no_top1 = "Top-1: n/a (no class prompts)"
    if result.labels is None:
        no_top1 = "no classes (the user's input): float and fixed point compared spike by spike"
    lines = [
        f"Loihi fixed point of {result.model}",
        f"measured on {measured}; ranges from {calibrated} (quantise"
        f" {result.seconds_quantize:.1f} s, run {result.seconds_run:.1f} s)",
        "float: export.sim (float32 neurons, float64 sums) + host program; fixed: bit-exact"
        " Lava arithmetic (8-bit weights + exponent, 12-bit decays, 24-bit u/v), host in float",
        "aligned: no synaptic delay, steps line up with the float model (a Loihi run with"
        " path-equalising delays); lava: one step per Dense/Conv, run T + depth steps",
        f"zero-shot prompts '{template}'" if template else no_top1,
        "",
        text_table(result.summary, align="right"),
        f"spikes float {spikes_f}, fixed {spikes_x}",
        "",
        "Per layer (aligned): quantisation and agreement with the float model (agreement:"
        " free-running, errors inherited from upstream included; first_divergence_step: the"
        " first step any neuron differs; local: each layer fed the float model's upstream"
        " spikes)",
        text_table(result.layers, align="right"),
    ]
    if "lava" in result.agreement:
        lines += ["Per layer (lava timing: step t + depth against float step t)",
                  text_table(result.agreement["lava"], align="right")]  # fmt: skip
    return "\n".join(lines)


def write_report(result: FixedPointComparison, out_dir: str | Path) -> list[Path]:
    """Write :data:`REPORT_FILES` to ``out_dir``: the text, the summary and per-layer CSVs."""
    out_dir = Path(out_dir)
    texts = (report_text(result), csv_text(result.summary), csv_text(result.layers))
    paths = [out_dir / name for name in REPORT_FILES]
    for path, text in zip(paths, texts, strict=True):
        atomic_write_bytes(path, text.encode())
    return paths
