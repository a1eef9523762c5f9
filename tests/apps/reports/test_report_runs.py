"""``apps.reports``: the run plan, the job scheduler and the table helpers."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest

from apps.reports import tables
from apps.reports.__main__ import main as reports_main
from apps.reports.runs import ABLATIONS, Job, Plan, run_jobs
from fsve.data.dataset import window_of
from fsve.fewshot import DEFAULT_METHOD
from fsve.models.config import fsve_config, teacher_config


def _config_of(job: Job) -> str | None:
    argv = list(job.argv)
    return argv[argv.index("--config") + 1] if "--config" in argv else None


def test_plan_writes_valid_configs_for_every_variant(tmp_path: Path) -> None:
    plan = Plan(data=tmp_path / "data", runs=tmp_path / "runs", seeds=(0, 1))
    jobs = {job.name: job for job in plan.jobs()}
    assert len(jobs) == len(plan.jobs())  # unique names
    # the full model at the default seed and the teacher's epochs is the Table 1 teacher
    assert len([n for n in jobs if n.startswith("ablation/")]) == 2 * len(ABLATIONS) - 1
    assert "ablation/full/seed0" not in jobs and "ablation/full/seed1" in jobs
    assert plan.ablation_run("full", 0) == plan.teacher_run
    short = Plan(data=tmp_path / "data", runs=tmp_path / "runs", ablation_epochs=8)
    assert short.ablation_run("full", 0) == tmp_path / "runs" / "ablation" / "full" / "seed0"
    assert jobs["fsve"].after == ("teacher",) and jobs["fewshot"].after == ("teacher",)
    assert jobs["teacher"].after == () and _config_of(jobs["teacher"]) is None  # CLI default
    for name, job in jobs.items():
        path = _config_of(job)
        if path is None:
            continue
        data = json.loads(Path(path).read_text())
        cfg = fsve_config(data) if job.argv[0] == "distill" else teacher_config(data)
        if name.startswith("ablation/"):
            # every sub-block layout fits the built-in dataset's 250-frame clips
            assert window_of(cfg).span <= 250, name
    blocks7 = teacher_config(
        json.loads(Path(_config_of(jobs["ablation/blocks7/seed1"])).read_text())
    )
    assert (blocks7.num_blocks, blocks7.block_step) == (7, 31)
    half = fsve_config(json.loads(Path(_config_of(jobs["fsve_half"])).read_text()))
    assert half.widths == (16, 32, 64, 128) and half.stem_width == 16
    # seed and one thread reach every training run (the environment pins threads too)
    train = [j for j in jobs.values() if j.module == "fsve.train"]
    assert len(train) == len(jobs) - 1 and jobs["fewshot"].module == "fsve.fewshot"
    assert all("--threads" in j.argv and "--seed" in j.argv for j in train)
    # Fig. 4: three shot draws with the default method, the method's own lr and epochs
    argv = " ".join(jobs["fewshot"].argv)
    assert f"--seeds 0 1 2 --shots 2 4 6 8 --method {DEFAULT_METHOD}" in argv
    assert "--lr" not in argv and jobs["fewshot"].done_file == "fewshot_runs.csv"
    tuned = Plan(data=tmp_path, runs=tmp_path, fewshot_seeds=(4,), fewshot_lr=1e-4)
    assert tuned.fewshot_argv()[-4:] == ("--device", "cpu", "--lr", "0.0001")
    assert "--seeds 4 --shots" in " ".join(tuned.fewshot_argv())


def test_resumed_job_drops_config(tmp_path: Path) -> None:
    job = Job("a", tmp_path / "a", ("teacher", "--config", "x.json", "--epochs", "2"))
    assert "--config" in job.command() and "--resume" not in job.command()
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "last.pt").write_bytes(b"")
    cmd = job.command()
    assert "--resume" in cmd and "--config" not in cmd and "x.json" not in cmd
    assert cmd[cmd.index("--epochs") + 1] == "2"


FAKE_JOB = """
import argparse, json, pathlib, sys, time
p = argparse.ArgumentParser()
p.add_argument("name"); p.add_argument("--fail", action="store_true")
p.add_argument("--out", type=pathlib.Path); p.add_argument("--resume", action="store_true")
a = p.parse_args()
log = a.out.parent / "order.txt"
with open(log, "a") as f:
    f.write(f"start {a.name}\\n")
time.sleep(0.2)
if a.fail:
    sys.exit(3)
a.out.mkdir(parents=True, exist_ok=True)
(a.out / "test_metrics.json").write_text("{}")
with open(log, "a") as f:
    f.write(f"end {a.name}\\n")
"""


@pytest.fixture
def fake_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    pkg = tmp_path / "mods"
    pkg.mkdir()
    (pkg / "fakejob.py").write_text(textwrap.dedent(FAKE_JOB))
    monkeypatch.setenv("PYTHONPATH", str(pkg))
    return "fakejob"


def test_run_jobs_respects_order_and_skips_finished(tmp_path: Path, fake_module: str) -> None:
    runs = tmp_path / "runs"
    jobs = [
        Job("b", runs / "b", ("b",), ("a",), module=fake_module),
        Job("a", runs / "a", ("a",), module=fake_module),
        Job("c", runs / "c", ("c",), module=fake_module),
    ]
    run_jobs(jobs, workers=2, progress=False)
    order = (runs / "order.txt").read_text().split("\n")
    assert order.index("start b") > order.index("end a")  # b waited for a
    assert all(job.done for job in jobs)
    (runs / "order.txt").unlink()
    run_jobs(jobs, workers=2, progress=False)  # all done: nothing runs
    assert not (runs / "order.txt").exists()


def test_failed_job_names_its_log_and_blocks_dependents(tmp_path: Path, fake_module: str) -> None:
    runs = tmp_path / "runs"
    jobs = [
        Job("bad", runs / "bad", ("bad", "--fail"), module=fake_module),
        Job("after", runs / "after", ("after",), ("bad",), module=fake_module),
    ]
    with pytest.raises(RuntimeError, match=r"'bad' failed \(exit 3\).*bad\.log"):
        run_jobs(jobs, workers=2, progress=False)
    assert not jobs[1].done and "start after" not in (runs / "order.txt").read_text()
    with pytest.raises(ValueError, match="unknown job 'nope'"):
        run_jobs([Job("x", runs / "x", ("x",), ("nope",), module=fake_module)], progress=False)


def test_mean_std_and_ablation_table() -> None:
    assert tables.mean_std([1.0, 2.0, 3.0]) == (2.0, 1.0)  # sample std
    assert tables.mean_std([5.0]) == (5.0, 0.0)
    rows = [
        {"variant": "mtf", "top1_pct": 50.0, "top5_pct": 90.0},
        {"variant": "mtf", "top1_pct": 60.0, "top5_pct": 92.0},
        {"variant": "full", "top1_pct": 80.0, "top5_pct": 99.0},
        {"variant": "full", "top1_pct": 84.0, "top5_pct": 100.0},
    ]
    table = [("MTF", "mtf"), ("full", "full")]
    md = tables.ablation_markdown(rows, "T", table)
    assert "| MTF | 55.0 ± 7.1 | 50.0, 60.0 |" in md
    assert "| full | 82.0 ± 2.8 | 80.0, 84.0 |" in md
    csv_rows = tables.ablation_csv(rows, table).splitlines()
    assert csv_rows[0].startswith("variant,label,seeds,top1_mean_pct,top1_std_pct")
    assert csv_rows[1].startswith("mtf,MTF,2,55.0,7.07")


def test_read_metrics_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="test_metrics.json: missing"):
        tables.read_metrics(tmp_path)
    (tmp_path / "test_metrics.json").write_text('{"top1_pct": 1}')
    with pytest.raises(ValueError, match="test_metrics.json: lacks"):
        tables.read_metrics(tmp_path)


def test_cli_without_runs_is_a_one_line_error(tmp_path: Path, capsys) -> None:
    from fsve.data.synth import SynthConfig, generate_dataset

    size = {"height": 32, "width": 32, "train_per_class": 1, "val_per_class": 1}
    data = generate_dataset(tmp_path / "data", SynthConfig(**size, test_per_class=1), False)
    argv = ["--no-train", "--data", str(data), "--runs", str(tmp_path / "runs")]
    code = reports_main([*argv, "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "test_metrics.json: missing" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "summary.md").exists()
    assert reports_main(["--workers", "0", "--no-train"]) == 2


def test_python_is_this_interpreter() -> None:
    # jobs run with sys.executable, so the venv's fsve is the one that trains
    job = Job("a", Path("r"), ("teacher",))
    assert job.command()[:3] == [sys.executable, "-m", "fsve.train"]


def test_commit_ignores_the_regenerated_outputs(tmp_path: Path, monkeypatch) -> None:
    import subprocess

    from apps.reports import commit

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "t.csv").write_text("a\n")
    (tmp_path / "code.py").write_text("x = 1\n")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "init")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "reports" / "t.csv").write_text("b\n")
    clean = commit(Path("reports"))
    assert not clean.endswith("-dirty") and len(clean) >= 7
    assert commit().endswith("-dirty")  # without the exclusion the outputs count
    (tmp_path / "code.py").write_text("x = 2\n")
    assert commit(Path("reports")).endswith("-dirty")


def test_fewshot_section_reports_mean_std_and_the_target(tmp_path: Path) -> None:
    from fsve.data.synth import SynthConfig, generate_dataset
    from fsve.fewshot import summarize
    from fsve.io import csv_text

    size = {"height": 32, "width": 32, "train_per_class": 1, "val_per_class": 1}
    real = generate_dataset(
        tmp_path / "real", SynthConfig(**size, test_per_class=1, domain="real"), False
    )
    plan = Plan(data=tmp_path / "data", runs=tmp_path / "runs", real_data=real)
    src = plan.runs / "seed0" / "fewshot"
    src.mkdir(parents=True)
    out = tmp_path / "reports" / "fig4"
    with pytest.raises(FileNotFoundError, match="fewshot.csv: missing"):
        tables.fewshot_section(plan, out)
    top1 = {0: [30.0] * 3, 2: [40.0, 50.0, 60.0], 8: [70.0, 72.0, 74.0]}
    rows = [
        {"seed": s, "shots": k, "train_clips": 12 * k, "method": "adabn" if k else "zero-shot",
         "top1_pct": v[s], "top5_pct": 90.0, "val_top1_pct": 50.0, "seconds": 1.5 + s}
        for k, v in top1.items() for s in range(3)
    ]  # fmt: skip
    (src / "fewshot_runs.csv").write_text(csv_text(rows))
    (src / "fewshot.csv").write_text(csv_text(summarize(rows)))
    md = tables.fewshot_section(plan, out)
    assert "| 2 | 50.0 ± 10.0 | 40.0, 50.0, 60.0 | 50.0 |" in md
    assert "| 8 | 72.0 ± 2.0 | 70.0, 72.0, 74.0 | 50.0 |" in md
    assert "8-shot 72.0% vs 0-shot 30.0% (+42.0 points" in md and "target met" in md
    assert "`adabn`: BatchNorm statistics" in md and "seeds 0, 1, 2" in md
    copied = (out / "fewshot_runs.csv").read_text()
    assert "seconds" not in copied and len(copied.splitlines()) == 10
    assert (out / "fewshot.png").read_bytes()[:4] == b"\x89PNG"
    # 8 shots below 2 shots by more than the 2-shot spread: the summary says so
    rows = [r | {"top1_pct": 35.0} if r["shots"] == 8 else r for r in rows]
    (src / "fewshot.csv").write_text(csv_text(summarize(rows)))
    assert "target NOT met" in tables.fewshot_section(plan, out)
