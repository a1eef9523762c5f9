"""The training runs behind ``make reports``: a plan of jobs and a small parallel scheduler.

Each :class:`Job` is one ``python -m fsve.train`` invocation with its own run folder. A job is
done when its folder holds ``test_metrics.json`` (written at the end of training); an
interrupted job resumes from its ``last.pt``. Every job runs in a subprocess pinned to one CPU
thread, so a run's numbers do not depend on how many jobs share the machine (training with a
fixed seed and one thread is deterministic on a given CPU).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fsve.fewshot import DEFAULT_METHOD
from fsve.io import atomic_write_text
from fsve.train.runfolder import earlier_run_files

# Table 2/3/4 variants of the teacher (overrides of the ``tiny`` config). Our clips have 250
# frames: 7 blocks 45 frames apart would need 331, so the 7-block row spaces them 31 apart.
ABLATIONS: dict[str, dict[str, Any]] = {
    "full": {},
    "mtf_sa": {"components": "mtf_sa"},
    "mtf": {"components": "mtf"},
    "no_slicing": {"channel_slicing": False},
    "blocks3": {"num_blocks": 3},
    "blocks7": {"num_blocks": 7, "block_step": 31},
}
# Table 1 baselines: SPKLIP with its video encoder replaced, same text tower and loss.
BASELINES: dict[str, dict[str, Any]] = {
    "frame_cnn": {"video_encoder": "frame_cnn"},
    "vit": {"video_encoder": "vit"},
}


def half_width(fsve: Mapping[str, Any]) -> dict[str, Any]:
    """Overrides that halve an FSVE config's stem and stage widths (tiny: 32..256 -> 16..128)."""
    return {"stem_width": fsve["stem_width"] // 2, "widths": [w // 2 for w in fsve["widths"]]}


# Accuracy-energy trade-off: a narrower FSVE, distilled like the default one.
FSVE_VARIANTS: dict[str, Callable[[Mapping[str, Any]], dict[str, Any]]] = {
    "fsve_half": half_width,
}


@dataclass(frozen=True)
class Job:
    """One run: ``python -m <module> <argv> --out <run>``, started after the jobs ``after``.

    It is done when ``run / done_file`` exists (``fsve.train`` writes ``test_metrics.json`` last).
    """

    name: str
    run: Path
    argv: tuple[str, ...]
    after: tuple[str, ...] = ()
    module: str = "fsve.train"
    done_file: str = "test_metrics.json"

    @property
    def done(self) -> bool:
        return (self.run / self.done_file).is_file()

    @property
    def log(self) -> Path:
        return self.run.parent / f"{self.run.name}.log"

    def command(self) -> list[str]:
        """The command line; a run with a ``last.pt`` resumes, its config taken from there."""
        argv = list(self.argv)
        resume = []
        if (self.run / "last.pt").is_file():
            resume = ["--resume"]
            if "--config" in argv:  # fsve.train refuses --config with --resume
                i = argv.index("--config")
                del argv[i : i + 2]
        elif earlier_run_files(self.run):  # killed before its first last.pt: start over
            resume = ["--overwrite"]
        return [sys.executable, "-m", self.module, *argv, "--out", str(self.run), *resume]


def write_config(path: Path, base: Mapping[str, Any], overrides: Mapping[str, Any]) -> Path:
    """Write a full config (``base``, a config dict, with ``overrides``) as JSON for ``--config``.

    The file is rewritten only when its content changes, so finished runs keep their inputs.
    """
    cfg = dict(base)
    unknown = set(overrides) - set(cfg)
    if unknown:
        raise ValueError(f"unknown config keys {sorted(unknown)} in a report variant")
    cfg.update(overrides)
    text = json.dumps(cfg, indent=2, sort_keys=True) + "\n"
    if not path.is_file() or path.read_text() != text:
        atomic_write_text(path, text)
    return path


@dataclass(frozen=True)
class Plan:
    """What ``make reports`` trains: Table 1 models, baselines, ablations over seeds, a variant."""

    data: Path
    runs: Path
    seeds: tuple[int, ...] = (0, 1, 2)
    seed: int = 0  # the default seed of the single-seed tables
    teacher_epochs: int = 12
    fsve_epochs: int = 36
    ablation_epochs: int = 12
    shots: tuple[int, ...] = (2, 4, 6, 8)
    # Fig. 4: seeds of the shot draw (mean ± std) and the fsve.fewshot method, chosen on the
    # shifted domain's val split (README, "Few-shot"); lr/epochs None: the method's defaults
    fewshot_seeds: tuple[int, ...] = (0, 1, 2)
    fewshot_method: str = DEFAULT_METHOD
    fewshot_lr: float | None = None
    fewshot_epochs: int | None = None
    real_data: Path = Path("data/synth-real")
    threads: int = 1
    device: str = "cpu"  # "cuda": faster, but GPU kernels are not bit-reproducible
    teacher_config: str | None = None  # preset or JSON file; None: the CLI default (tiny)
    fsve_config: str | None = None

    def common(self, seed: int) -> list[str]:
        return [
            "--data", str(self.data), "--seed", str(seed), "--threads", str(self.threads),
            "--device", self.device, "--quiet",
        ]  # fmt: skip

    @property
    def teacher_run(self) -> Path:
        return self.runs / f"seed{self.seed}" / "teacher"

    def config_file(self, name: str) -> Path:
        return self.runs / "configs" / f"{name}.json"

    def jobs(self) -> list[Job]:
        """All jobs, longest chains first so that two workers stay busy."""
        from fsve.models.config import FSVE_PRESETS, fsve_config
        from fsve.train.__main__ import read_config_arg

        teacher_base = read_config_arg(self.teacher_config or "tiny")
        fsve_base = read_config_arg(self.fsve_config or "tiny", fsve_config, FSVE_PRESETS)
        teacher_cfg: tuple[str, ...] = ()
        fsve_cfg: tuple[str, ...] = ()
        if self.teacher_config is not None:
            teacher_cfg = (
                "--config",
                str(write_config(self.config_file("teacher"), teacher_base, {})),
            )
        if self.fsve_config is not None:
            fsve_cfg = ("--config", str(write_config(self.config_file("fsve"), fsve_base, {})))
        base = self.runs / f"seed{self.seed}"
        common = self.common(self.seed)
        teacher_argv = ("teacher", *teacher_cfg, "--epochs", str(self.teacher_epochs), *common)
        fsve_epochs = ("--epochs", str(self.fsve_epochs), *common)
        distill = ("distill", "--teacher", str(self.teacher_run / "best.pt"))
        alone = ("distill", "--no-teacher", *fsve_cfg, *fsve_epochs)
        jobs = [
            Job("teacher", self.teacher_run, teacher_argv),
            Job("fsve", base / "fsve", (*distill, *fsve_cfg, *fsve_epochs), ("teacher",)),
            Job("fsve_alone", base / "fsve_alone", alone),
        ]
        jobs.append(
            Job("fewshot", base / "fewshot", self.fewshot_argv(), ("teacher",), "fsve.fewshot",
                "fewshot_runs.csv")  # an older single-seed fewshot.csv does not count as done
        )  # fmt: skip
        for name, variant in FSVE_VARIANTS.items():
            cfg = write_config(self.config_file(name), fsve_base, variant(fsve_base))
            argv = (*distill, "--config", str(cfg), *fsve_epochs)
            jobs.append(Job(name, base / name, argv, ("teacher",)))
        for name, overrides in BASELINES.items():
            cfg = write_config(self.config_file(name), teacher_base, overrides)
            argv = ("teacher", "--config", str(cfg), "--epochs", str(self.teacher_epochs), *common)
            jobs.append(Job(name, base / name, argv))
        for seed in self.seeds:
            for name, overrides in ABLATIONS.items():
                if self.ablation_run(name, seed) == self.teacher_run:
                    continue  # the Table 1 teacher is this run
                cfg = write_config(self.config_file(f"ablation_{name}"), teacher_base, overrides)
                argv = ("teacher", "--config", str(cfg), "--epochs", str(self.ablation_epochs))
                run = self.ablation_run(name, seed)
                jobs.append(Job(f"ablation/{name}/seed{seed}", run, (*argv, *self.common(seed))))
        return jobs

    def fewshot_argv(self) -> tuple[str, ...]:
        """The Fig. 4 ``python -m fsve.fewshot`` arguments (the job adds ``--out``)."""
        argv = (str(self.teacher_run / "best.pt"), "--data", str(self.real_data))
        argv += ("--seeds", *map(str, self.fewshot_seeds), "--shots", *map(str, self.shots))
        argv += ("--method", self.fewshot_method, "--device", self.device)
        if self.fewshot_lr is not None:
            argv += ("--lr", str(self.fewshot_lr))
        if self.fewshot_epochs is not None:
            argv += ("--epochs", str(self.fewshot_epochs))
        return argv

    def ablation_run(self, name: str, seed: int) -> Path:
        """Run folder of one ablation variant and seed; the full model at the default seed and
        the teacher's epochs is the Table 1 teacher itself (same command, same weights)."""
        if name == "full" and seed == self.seed and self.ablation_epochs == self.teacher_epochs:
            return self.teacher_run
        return self.runs / "ablation" / name / f"seed{seed}"


def run_jobs(jobs: Sequence[Job], workers: int = 2, progress: bool = True) -> None:
    """Run the jobs that are not done, ``workers`` at a time, each after its ``after`` jobs.

    A job's output goes to its ``.log`` file next to its run folder; a failed job stops the
    scheduler (after the running ones finish) with an error naming the job and its log.
    """
    from tqdm import tqdm

    by_name = {job.name: job for job in jobs}
    for job in jobs:
        for dep in job.after:
            if dep not in by_name:
                raise ValueError(f"job {job.name!r} waits for unknown job {dep!r}")
    pending = [job for job in jobs if not job.done]
    finished = {job.name for job in jobs if job.done}
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    bar = tqdm(total=len(jobs), initial=len(finished), desc="reports: training", unit="run",
               disable=not progress)  # fmt: skip
    failed: list[str] = []

    def run_one(job: Job) -> None:
        job.run.parent.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        with open(job.log, "a") as log:
            log.write(f"$ {' '.join(job.command())}\n")
            log.flush()
            proc = subprocess.run(job.command(), stdout=log, stderr=subprocess.STDOUT, env=env)
        code = proc.returncode
        if code or not job.done:
            raise RuntimeError(f"training run {job.name!r} failed (exit {code}); see {job.log}")
        bar.write(f"reports: {job.name} done in {time.perf_counter() - started:.0f} s")

    running: dict[Future, Job] = {}
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        while pending or running:
            ready = [j for j in pending if all(d in finished for d in j.after)]
            while ready and len(running) < workers and not failed:
                job = ready.pop(0)
                pending.remove(job)
                bar.set_postfix_str(job.name)
                running[pool.submit(run_one, job)] = job
            if not running:
                break
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                job = running.pop(future)
                try:
                    future.result()
                    finished.add(job.name)
                    bar.update(1)
                except RuntimeError as err:
                    failed.append(str(err))
    bar.close()
    if failed:
        raise RuntimeError("; ".join(failed))
    if pending:
        raise RuntimeError(f"jobs never became ready: {[j.name for j in pending]}")
