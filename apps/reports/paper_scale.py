"""The paper-scale energy estimate of ``make reports``: Table 6 at 240x320, untrained networks.

:func:`paper_scale_estimate` builds an FSVE ``paper`` and an SPKLIP ``paper`` with random
weights, calibrates the FSVE's statistics on synthetic clips of the paper's size, and profiles it
against its ANN twin and the teacher with the paper's constants (the counting and pricing of
:mod:`apps.reports.energy`). Every energy is in joules per inference (one clip of K sub-blocks).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from apps.reports.energy import (
    check_inputs_match,
    fmt_pct,
    md_link,
    profile_against,
    progress_bar,
    table6_markdown,
    table6_row,
)
from energy.costs import load_costs
from energy.report import EnergyReport
from fsve.data.dataset import SpikeDataset, collate, window_of
from fsve.io import atomic_write_text, csv_text
from fsve.models.config import FSVEConfig, TeacherConfig

__all__ = ["MAX_CLIP_S", "paper_scale_estimate", "stage_firing_rates"]

MAX_CLIP_S = 120.0  # profile one clip only when one takes longer than this
TEACHER_LABEL = "teacher:SPKLIP paper (untrained)"


def _stage_of(layer: str) -> str:
    """``visual.stages.2.0.lif1`` -> ``visual.stages.2``; ``visual.final_lif`` as is."""
    parts = layer.split(":")[0].split(".")
    if len(parts) > 2 and parts[1] in ("stages", "blocks"):
        return ".".join(parts[:3])
    return ".".join(parts[:2])


def stage_firing_rates(report: EnergyReport) -> list[tuple[str, float]]:
    """``(stage, spikes per neuron update)`` of the SNN's neuron layers, in network order."""
    layers = report.layers
    neurons = layers[(layers["model"] == "snn") & (layers["kind"] == "neuron")]
    rates: dict[str, list[float]] = {}
    for name, updates, spikes in zip(
        neurons["layer"], neurons["neuron_updates"], neurons["spikes_out"], strict=True
    ):
        acc = rates.setdefault(_stage_of(str(name)), [0.0, 0.0])
        acc[0] += float(spikes)
        acc[1] += float(updates)
    return [(stage, s / u if u else float("nan")) for stage, (s, u) in rates.items()]


def _budgeted(items: Iterable[Any], max_clip_s: float, seconds: list[float]) -> Iterator[Any]:
    """Yield clips; stop after the first if profiling it took over ``max_clip_s``."""
    for i, item in enumerate(items):
        start = time.perf_counter()
        yield item
        seconds.append(time.perf_counter() - start)  # the consumer profiled it meanwhile
        if i == 0 and seconds[0] > max_clip_s:
            return


def paper_scale_estimate(
    out: str | os.PathLike,
    data_root: str | os.PathLike,
    samples: int = 2,
    seed: int = 0,
    progress: bool = True,
    *,
    fsve_config: FSVEConfig | None = None,
    teacher_config: TeacherConfig | None = None,
    max_clip_s: float = MAX_CLIP_S,
    md_dir: str | os.PathLike | None = None,
) -> str:
    """Table 6 at the paper's size, 240x320, for an untrained FSVE ``paper`` and SPKLIP ``paper``.

    Generates (if ``data_root`` holds no dataset) one synthetic test clip per class at the
    configs' size, calibrates the FSVE's statistics on two of them, profiles ``samples`` clips
    (one if the first took over ``max_clip_s`` seconds) against the twin and the teacher with
    the paper's constants, and writes ``paper_scale.csv`` and the reports ``fsve-vs-twin/`` and
    ``fsve-vs-teacher/`` into ``out``. ``fsve_config``/``teacher_config`` default to the
    ``paper`` presets (smaller ones for tests). Returns the body of a markdown section (no
    heading), file links relative to ``md_dir`` (default: paths as given in ``out``).
    """
    from fsve.models.config import fsve_paper, paper

    if samples < 1:
        raise ValueError(f"samples must be >= 1, got {samples}")
    out, data_root = Path(out), Path(data_root)
    fcfg = fsve_config if fsve_config is not None else fsve_paper()
    tcfg = teacher_config if teacher_config is not None else paper()
    started = time.perf_counter()
    dataset = paper_scale_data(data_root, fcfg, seed, progress)
    gen_s = time.perf_counter() - started
    fsve, teacher, calibrated = untrained_models(fcfg, tcfg, dataset, seed)

    clips = [collate([dataset[i]]) for i in range(min(samples, len(dataset)))]
    density = float(sum(c["spikes"].float().mean() for c in clips) / len(clips))
    seconds: list[float] = []
    twin_bar = progress_bar(len(clips), "paper scale vs twin", progress)
    twin_report = profile_against(
        fsve, _budgeted(clips, max_clip_s, seconds), "paper", "twin", "twin", twin_bar
    )
    n = twin_report.samples
    clips = clips[:n]
    t0 = time.perf_counter()
    teacher_bar = progress_bar(n, "paper scale vs teacher", progress)
    teacher_report = profile_against(fsve, clips, "paper", teacher, TEACHER_LABEL, teacher_bar)
    teacher_s = (time.perf_counter() - t0) / n
    cost = load_costs("paper")
    rows = [
        table6_row(twin_report, "twin", "profiled", cost),
        table6_row(teacher_report, TEACHER_LABEL, "profiled", cost),
    ]
    clip_s = sum(seconds[:n]) / n
    for row in rows:
        row["input_density_pct"] = 100.0 * density
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "paper_scale.csv", csv_text(rows))
    twin_report.save(out / "fsve-vs-twin")
    teacher_report.save(out / "fsve-vs-teacher")
    print(
        f"reports: paper-scale profiling {clip_s:.1f} s per clip against the twin,"
        f" {teacher_s:.1f} s with the teacher, on {torch.get_num_threads()} thread(s);"
        f" data {gen_s:.0f} s"
    )
    few = (
        f" Profiling one clip took {seconds[0]:.0f} s (over {max_clip_s:.0f} s), so one clip "
        "was profiled."
        if n < min(samples, len(dataset))
        else ""
    )
    facts = {"data": data_root, "clips": n, "density": density, "calibrated": calibrated}
    reports = (twin_report, teacher_report)
    return _paper_scale_markdown(fcfg, facts, rows, reports, few, out, md_dir)


def paper_scale_data(data_root: Path, cfg: FSVEConfig, seed: int, progress: bool) -> SpikeDataset:
    """The test split of ``data_root`` at ``cfg``'s size; one clip per class generated if empty."""
    from fsve.data.synth import SynthConfig, generate_dataset

    if not (data_root / "manifest.csv").is_file():
        synth = SynthConfig(
            height=cfg.height, width=cfg.width, train_per_class=0, val_per_class=0,
            test_per_class=1, seed=seed,
        )  # fmt: skip
        generate_dataset(data_root, synth, progress=progress)
    dataset = SpikeDataset(data_root, "test", window=window_of(cfg))
    sizes = set(zip(dataset.table["height"], dataset.table["width"], strict=True))
    if sizes != {(cfg.height, cfg.width)}:
        raise ValueError(
            f"{data_root}: test clips are {sorted(sizes)}, the models expect "
            f"{cfg.height}x{cfg.width}"
        )
    return dataset


def untrained_models(
    fcfg: FSVEConfig, tcfg: TeacherConfig, dataset: SpikeDataset, seed: int
) -> tuple[nn.Module, nn.Module, int]:
    """A random FSVE calibrated on the last two clips, a random teacher; the clips calibrated."""
    from fsve.models.student import build_fsve, calibrate_statistics
    from fsve.models.teacher import SPKLIP

    torch.manual_seed(seed)
    fsve = build_fsve(fcfg)
    calib = [dataset[i] for i in range(max(0, len(dataset) - 2), len(dataset))]  # the last two
    calibrate_statistics(fsve, collate(calib)["spikes"])  # one train-mode pass, then eval
    torch.manual_seed(seed)
    teacher = SPKLIP(tcfg).eval()  # only its video path runs; the text tower stays idle
    check_inputs_match(fsve, teacher, "teacher_config")
    return fsve, teacher, len(calib)


def _paper_scale_markdown(
    fcfg: FSVEConfig,
    facts: Mapping[str, Any],
    rows: Sequence[Mapping[str, Any]],
    reports: tuple[EnergyReport, EnergyReport],
    few: str,
    out: Path,
    md_dir: str | os.PathLike | None,
) -> str:
    """The markdown body of the estimate (``facts``: data, clips, density, calibrated)."""
    twin_report, teacher_report = reports
    snn, ann = twin_report.row("snn"), twin_report.row("ann")
    teacher_ann = teacher_report.row("ann")
    stages = stage_firing_rates(twin_report)
    stage_lines = "\n".join(f"- `{stage}`: {fmt_pct(100 * rate)}" for stage, rate in stages)
    density = facts["density"]
    csv_link = md_link(out / "paper_scale.csv", md_dir)
    return "\n\n".join(
        [
            f"**These are untrained networks.** The FSVE `paper` preset ({fcfg.height}x"
            f"{fcfg.width}, MS-ResNet widths {list(fcfg.widths)}, layers {list(fcfg.layers)}, "
            f"{fcfg.attn_depth} E-SDSA blocks) has random weights whose BN/TDBN/SN statistics "
            f"were calibrated on {facts['calibrated']} synthetic clips, and the SPKLIP `paper` "
            "teacher is random too. An ANN's energy depends only on its shapes, but an SNN's "
            "depends on its firing rates, and these are the rates the random, calibrated FSVE "
            "happens to have, not those of a trained one; the SNN column and the savings are "
            "therefore an illustration of the counting at the paper's size, not a result.",
            f"Input: {facts['clips']} synthetic clip(s) of `{facts['data']}` (K = "
            f"{fcfg.num_blocks} sub-blocks of {fcfg.block_frames} frames), input spike density "
            f"{fmt_pct(100 * density, 3)} of pixels per frame. SNN firing rate overall "
            f"{fmt_pct(100 * float(snn['firing_rate']))}; per stage (spikes per neuron update):"
            "\n\n" + stage_lines,
            table6_markdown(rows[0], rows[1]),
            f"ANN twin {float(ann['macs']):.3g} MACs, SPKLIP teacher "
            f"{float(teacher_ann['macs']):.3g} MACs, FSVE {float(snn['sops']):.3g} SOPs per "
            "clip." + few,
            f"Files: [{csv_link}]({csv_link}); reports in "
            f"`{md_link(out / 'fsve-vs-twin', md_dir)}/` and "
            f"`{md_link(out / 'fsve-vs-teacher', md_dir)}/`.",
        ]
    )
