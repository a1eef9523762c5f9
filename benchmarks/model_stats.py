"""Parameter counts, batch-1 CPU forward time and peak memory of the model presets.

Each (model, preset) runs in a fresh subprocess so that peak resident memory (``ru_maxrss``) is
its own; "forward peak" is the growth of the peak over the process after building the model
and one warm-up forward, i.e. what an inference of one clip adds.

    python benchmarks/model_stats.py [--presets tiny paper] [--models teacher fsve] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = r"""
import json, resource, sys, time
import torch
kind, preset, repeats = sys.argv[1], sys.argv[2], int(sys.argv[3])
torch.manual_seed(0)
if kind == "teacher":
    from fsve.models.config import teacher_config
    from fsve.models.teacher import SPKLIP
    cfg = teacher_config(preset)
    model = SPKLIP(cfg)
else:
    from fsve.models.student import FSVE, fsve_config
    cfg = fsve_config(preset)
    model = FSVE(cfg)
model.eval()
visual = sum(p.numel() for n, p in model.named_parameters() if not n.startswith("text."))
total = sum(p.numel() for p in model.parameters())
spikes = torch.rand(1, cfg.num_blocks, cfg.block_frames, cfg.height, cfg.width) < 0.06
rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
times = []
with torch.no_grad():
    for _ in range(repeats + 1):
        start = time.perf_counter()
        model.encode_video(spikes)
        times.append(time.perf_counter() - start)
rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
times = sorted(times[1:])
print(json.dumps({"model": kind, "preset": preset, "visual_params": visual, "params": total,
                  "forward_ms": 1e3 * times[len(times) // 2],
                  "peak_rss_mib": rss1 / 1024, "forward_peak_mib": (rss1 - rss0) / 1024,
                  "threads": torch.get_num_threads(),
                  "input": [cfg.num_blocks, cfg.block_frames, cfg.height, cfg.width]}))
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["tiny", "paper"])
    parser.add_argument("--models", nargs="+", default=["teacher", "fsve"])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    print(
        f"{'model':8} {'preset':6} {'visual params':>14} {'all params':>12} {'fwd ms (B=1)':>13}"
        f" {'peak RSS MiB':>13} {'fwd adds MiB':>13}"
    )
    for model in args.models:
        for preset in args.presets:
            out = subprocess.run(
                [sys.executable, "-c", CHILD, model, preset, str(args.repeats)],
                capture_output=True,
                text=True,
                check=False,
            )
            if out.returncode:
                print(f"{model:8} {preset:6} failed: {out.stderr.strip().splitlines()[-1]}")
                continue
            row = json.loads(out.stdout.strip().splitlines()[-1])
            print(
                f"{model:8} {preset:6} {row['visual_params']:>14,} {row['params']:>12,}"
                f" {row['forward_ms']:>13.1f} {row['peak_rss_mib']:>13.0f}"
                f" {row['forward_peak_mib']:>13.0f}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
