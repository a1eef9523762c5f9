"""``torchrun --nproc_per_node 2 -m fsve.train teacher`` on CPU (gloo), end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from fsve.checkpoint import load_checkpoint
from fsve.eval import evaluate_checkpoint


def test_two_process_run_writes_checkpoints_and_gathers_metrics(tiny_data, micro_config, tmp_path):
    out = tmp_path / "ddp"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "fsve.train",
        "teacher",
        "--data",
        str(tiny_data),
        "--config",
        str(micro_config),
        "--epochs",
        "2",
        "--batch-size",
        "8",
        "--device",
        "cpu",
        "--out",
        str(out),
        "--quiet",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("best val top1") == 1  # rank 0 prints, rank 1 does not
    for name in ("last.pt", "best.pt", "metrics.csv", "curves.png", "test_metrics.json"):
        assert (out / name).is_file(), name
    last = load_checkpoint(out / "last.pt")
    assert last["training"]["run"]["world_size"] == 2 and last["training"]["epoch"] == 2
    # 24 clips, global batch 8 = 4 per rank: 3 steps of 8 samples a epoch, all counted
    assert pd.read_csv(out / "metrics.csv")["epoch"].tolist() == [1, 2]
    # the sharded, all-gathered test evaluation equals a single-process one
    ddp = json.loads((out / "test_metrics.json").read_text())
    single = evaluate_checkpoint(out / "best.pt", tiny_data)
    for key in ("top1_pct", "top5_pct", "r1_pct", "r5_pct", "r10_pct"):
        assert ddp[key] == pytest.approx(single[key]), key
