"""``python -m apps.reports`` end to end on micro models: every table and figure, then a rerun."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from apps.reports.__main__ import main as reports_main
from apps.reports.runs import ABLATIONS
from fsve.data.synth import SynthConfig, generate_dataset
from fsve.fewshot import DEFAULT_METHOD


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_reports_end_to_end_on_micro_models(tmp_path: Path, micro_teacher, micro_fsve) -> None:
    size = {"height": 32, "width": 32, "frames": 250}
    data = generate_dataset(
        tmp_path / "data",
        SynthConfig(**size, train_per_class=2, val_per_class=1, test_per_class=1),
        progress=False,
    )
    real = generate_dataset(
        tmp_path / "real",
        SynthConfig(**size, train_per_class=2, val_per_class=1, test_per_class=1, domain="real"),
        progress=False,
    )
    (tmp_path / "t.json").write_text(json.dumps(micro_teacher))
    (tmp_path / "f.json").write_text(json.dumps(micro_fsve))
    out, runs = tmp_path / "reports", tmp_path / "runs"
    argv = [
        "--data", str(data), "--real-data", str(real), "--runs", str(runs), "--out", str(out),
        "--seeds", "0", "1", "--teacher-epochs", "1", "--fsve-epochs", "1",
        "--ablation-epochs", "1", "--shots", "1", "2",
        "--teacher-config", str(tmp_path / "t.json"), "--fsve-config", str(tmp_path / "f.json"),
        "--no-paper-scale", "--no-progress",
    ]  # fmt: skip
    assert reports_main(argv) == 0
    summary = (out / "summary.md").read_text()
    for heading in ("Table 1", "Table 5", "Table 4", "Table 2", "Table 3", "Fig. 4", "Table 6",
                    "trade-off", "Fig. 5"):  # fmt: skip
        assert heading in summary, heading
    assert "1.375 J" in summary  # the paper's Table 6 total printed next to ours

    table1 = _rows(out / "table1" / "table1.csv")
    assert [r["run"] for r in table1] == [
        "teacher", "fsve", "fsve_alone", "fsve_half", "frame_cnn", "vit"
    ]  # fmt: skip
    for r in table1:
        assert 0.0 <= float(r["top1_pct"]) <= float(r["top5_pct"]) <= 100.0
        assert r["epochs"] == "1"
    ablation = _rows(out / "ablation" / "runs.csv")
    assert len(ablation) == 2 * len(ABLATIONS)
    for name in ("table2", "table3", "table4"):
        for row in _rows(out / "ablation" / f"{name}.csv"):
            assert row["seeds"] == "2" and float(row["top1_std_pct"]) >= 0.0
    fewshot = _rows(out / "fig4" / "fewshot.csv")
    assert [int(r["shots"]) for r in fewshot] == [0, 1, 2]
    assert [int(r["train_clips"]) for r in fewshot] == [0, 12, 24]  # k clips of each class
    assert {r["seeds"] for r in fewshot} == {"3"} and fewshot[1]["method"] == DEFAULT_METHOD
    runs_fs = _rows(out / "fig4" / "fewshot_runs.csv")
    assert len(runs_fs) == 9 and "seconds" not in runs_fs[0]  # 3 draws x (0, 1, 2 shots)
    assert "Target (Top-1 rises with shots): 2-shot" in summary and "AdaBN" in summary
    tradeoff = _rows(out / "tradeoff" / "tradeoff.csv")
    distilled = [r for r in tradeoff if r["model"] == "FSVE distilled"]
    assert [int(r["time_steps"]) for r in distilled] == [1, 2, 3, 4, 5]
    energies = [float(r["energy_uj"]) for r in distilled]
    assert energies == sorted(energies) and energies[0] < energies[-1]  # more steps cost more
    for png in ("fig4/fewshot.png", "tradeoff/tradeoff.png", "fig5/fig5_correlation.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png

    # a second call trains nothing and writes the same tables
    before = {p: p.read_bytes() for p in out.rglob("*.csv")}
    mtimes = {p: p.stat().st_mtime_ns for p in runs.rglob("best.pt")}
    assert reports_main([*argv, "--no-train"]) == 0
    assert {p: p.stat().st_mtime_ns for p in runs.rglob("best.pt")} == mtimes
    assert (out / "summary.md").read_text() == summary
    assert {p: p.read_bytes() for p in out.rglob("*.csv")} == before
