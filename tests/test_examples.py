"""Each script of ``examples/`` run with ``--quick`` in a subprocess, checked on what it wrote.

The checks recompute what they can from the files (the ``.dat`` stream, the TFI image, layer
sums, core counts) instead of trusting the script's own summary. About 25 s in all on one core.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def run_example(name: str, out: Path, *extra: str) -> str:
    """Run ``examples/<name> --quick --out OUT`` from the repo root; return its stdout."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / name), "--quick", "--out", str(out), *extra],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, f"{name} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_01_spike_camera(tmp_path: Path) -> None:
    from PIL import Image

    from fsve.data.camera import simulate
    from fsve.data.dat import count_frames, read_dat
    from fsve.data.recon import tfi
    from fsve.data.synth import SynthConfig, render_sample

    stdout = run_example("01_spike_camera.py", tmp_path)
    s = json.loads((tmp_path / "summary.json").read_text())
    h, w, n, t = s["height"], s["width"], s["frames"], s["t"]
    assert (h, w, n) == (64, 64, 120)
    dat = tmp_path / "clip.dat"
    assert dat.stat().st_size == n * h * w // 8 == s["dat_bytes"]  # 120 frames x 512 bytes
    assert count_frames(dat, h, w) == n

    # Round trip, checked independently: the same sample through the same camera (seed 0)
    # must equal what the script's .dat holds.
    config = SynthConfig(height=h, width=w, frames=n, seed=0, threshold=s["threshold"])
    frames, caption = render_sample(s["label"], np.random.default_rng(0), config)
    spikes = simulate(frames, threshold=s["threshold"], seed=0)
    back = read_dat(dat, h, w)
    assert np.array_equal(back, spikes)
    assert caption == s["caption"]
    assert s["roundtrip_equal"] and s["window_equal"] and s["stream_equal"] and s["writer_equal"]
    assert s["firing_rate"] == pytest.approx(float(back.mean()))
    # rate = mean(I) / theta up to the random initial charge (< 1 spike per pixel in 120 frames)
    assert s["firing_rate"] == pytest.approx(s["expected_rate"], rel=0.05)
    assert 0 < s["mae_tfi"] < 0.1 and 0 < s["mae_tfp"] < 0.15

    # recon.png = truth | 2 px | TFI | 2 px | TFP; the TFI panel equals TFI of the .dat
    png = np.asarray(Image.open(tmp_path / "recon.png"))
    assert png.shape == (h, 3 * w + 4)
    expected = tfi(back, t, half_window=s["half_window"], threshold=s["threshold"])
    assert np.array_equal(png[:, w + 2 : 2 * w + 2], expected)
    assert "equal to what was written: True" in stdout


def test_02_train_and_distill(tmp_path: Path) -> None:
    import torch

    from fsve.checkpoint import load_checkpoint
    from fsve.data.manifest import read_manifest

    run_example("02_train_and_distill.py", tmp_path)
    table = read_manifest(tmp_path / "data")
    assert table.groupby("split").size().to_dict() == {"test": 12, "train": 24, "val": 12}
    res = json.loads((tmp_path / "results.json").read_text())
    assert [r["model"] for r in res["rows"]] == ["SPKLIP teacher", "FSVE distilled"]
    assert res["shared_text"] is True
    for row, run, kind in zip(res["rows"], ("teacher", "fsve"), ("teacher", "fsve"), strict=True):
        assert row["kind"] == kind and row["samples"] == 12 and row["epochs"] == 1
        assert len(read_csv(tmp_path / run / "metrics.csv")) == 1  # one epoch trained
        for key in ("top1_pct", "top5_pct", "r1_pct", "r5_pct", "r10_pct"):
            assert 0.0 <= row[key] <= 100.0
        assert row["top1_pct"] <= row["top5_pct"]
        # the training CLI's own test evaluation of best.pt agrees with fsve.eval's
        test_metrics = json.loads((tmp_path / run / "test_metrics.json").read_text())
        assert test_metrics["top1_pct"] == pytest.approx(row["top1_pct"])
    teacher = load_checkpoint(tmp_path / "teacher" / "best.pt", kind="teacher")
    student = load_checkpoint(tmp_path / "fsve" / "best.pt", kind="fsve")
    assert student["tokenizer"] == teacher["tokenizer"]
    text = [k for k in teacher["state_dict"] if k.startswith("text.")]
    assert text and all(
        torch.equal(teacher["state_dict"][k], student["state_dict"][k]) for k in text
    )
    assert (tmp_path / "teacher" / "curves.png").is_file()


def test_03_energy_report(tmp_path: Path) -> None:
    stdout = run_example("03_energy_report.py", tmp_path)
    report = tmp_path / "report"
    summary = {r["model"]: r for r in read_csv(report / "summary.csv")}
    assert set(summary) == {"ann", "snn"}
    for row in summary.values():
        assert int(row["samples"]) == 4
        assert float(row["total_j"]) > 0 and float(row["compute_j"]) > 0
        assert float(row["memory_j"]) > 0
    snn, ann = summary["snn"], summary["ann"]
    assert float(snn["neuron_j"]) > 0 and float(ann["neuron_j"]) == 0  # the twin has no neurons
    assert 0 < float(snn["firing_rate"]) < 1
    assert float(snn["saving_vs_ann"]) == pytest.approx(
        1 - float(snn["total_j"]) / float(ann["total_j"])
    )
    # the layers table adds up to the summary
    layers = read_csv(report / "layers.csv")
    for model in ("ann", "snn"):
        total = sum(float(r["energy_j"]) for r in layers if r["model"] == model)
        assert total == pytest.approx(float(summary[model]["total_j"]), rel=1e-6)
    assert (report / "energy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Total estimated energy" in (report / "table.txt").read_text()
    # the library pass under every preset: positive, and the paper row equals the CLI's
    presets = {r["costs"]: r for r in read_csv(tmp_path / "presets.csv")}
    assert set(presets) == {"paper", "horowitz45", "int8-45nm", "loihi1", "truenorth"}
    for row in presets.values():
        assert float(row["ann_total_j"]) > 0 and float(row["snn_total_j"]) > 0
    assert float(presets["paper"]["snn_total_j"]) == pytest.approx(float(snn["total_j"]))
    assert "calibrated an untrained FSVE" in stdout


def test_04_nir_loihi_mapping(tmp_path: Path) -> None:
    import nir

    run_example("04_nir_loihi_mapping.py", tmp_path)
    s = json.loads((tmp_path / "summary.json").read_text())
    assert s["samples"] == 4 and s["spikes"] > 0
    # the exported graph in export.sim reproduces the PyTorch model spike for spike
    assert s["mismatches"] == 0 and s["embedding_max_diff"] < 1e-5
    assert 95.0 < s["fixed_agreement_pct"] <= 100.0 and s["fixed_cosine_mean"] > 0.8
    graph = nir.read(tmp_path / "fsve.nir")
    assert (tmp_path / "fsve.host.pt").is_file()
    lif = [n for n, node in graph.nodes.items() if isinstance(node, nir.LIF)]
    assert len(lif) == 12  # tiny: 4 stages x 2 + attention, 2 MLP, final LIF

    loihi = read_csv(tmp_path / "loihi_layers.csv")
    assert len(loihi) == 15  # 12 LIF + 3 Threshold (Q, K, V spiking neurons)
    for row in loihi:
        assert 0.0 <= float(row["agreement_pct"]) <= 100.0
    assert sum(int(r["float_spikes"]) for r in loihi) == s["spikes"]

    rows = read_csv(tmp_path / "mapping" / "mapping.csv")
    total = rows[-1]
    assert total["layer"] == "TOTAL"
    cores = [int(r["cores"]) for r in rows[:-1]]
    assert len(cores) == 15 and min(cores) >= 1
    assert int(total["cores"]) == sum(cores) == s["loihi2_cores"] > 0
    assert int(total["neurons"]) == sum(int(r["neurons"]) for r in rows[:-1])
    assert s["loihi1_cores"] > s["loihi2_cores"]  # 1,024 neurons per core vs 8,192
    text = (tmp_path / "mapping" / "mapping.txt").read_text()
    assert f"{total['cores']} cores" in text and "loihi2" in text
