"""Where a training process runs: one process, or one rank of a ``torchrun`` process group.

Under ``torchrun`` (env ``WORLD_SIZE`` > 1) :func:`setup_distributed` joins the process group
(NCCL on CUDA, gloo on CPU); :func:`all_reduce` sums (or takes the min of) a few floats over the
ranks and is the identity in a single process.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.distributed as dist

__all__ = ["DistEnv", "all_reduce", "cleanup_distributed", "setup_distributed"]


@dataclass(frozen=True)
class DistEnv:
    """Where this process runs: ``rank`` of ``world_size`` processes on ``device``."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        """True on the process that writes files and prints (rank 0)."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def setup_distributed(device: str | None = None) -> DistEnv:
    """Join the process group if launched by ``torchrun`` (``WORLD_SIZE`` > 1), else one process.

    ``device``: ``"cpu"``, ``"cuda"`` or ``None`` (CUDA if available). Under torchrun on CUDA,
    each process takes GPU ``LOCAL_RANK`` and NCCL; on CPU, gloo.
    """
    if device not in (None, "cpu", "cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda', got {device!r}")
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for, but torch sees no CUDA device")
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistEnv(device=torch.device(device))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device == "cuda":
        torch.cuda.set_device(local_rank)
        dev = torch.device("cuda", local_rank)
        backend = "nccl"
    else:
        dev = torch.device("cpu")
        backend = "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return DistEnv(rank=rank, world_size=world, local_rank=local_rank, device=dev)


def cleanup_distributed(barrier: bool = True) -> None:
    """Leave the process group, after a barrier unless leaving on an error, if one was joined."""
    if dist.is_available() and dist.is_initialized():
        if barrier:
            dist.barrier()
        dist.destroy_process_group()


def all_reduce(values: Sequence[float], env: DistEnv, op: str = "sum") -> list[float]:
    """Sum (or min) a few floats over the ranks; identity in a single process."""
    if not env.distributed:
        return [float(v) for v in values]
    t = torch.tensor([float(v) for v in values], dtype=torch.float64, device=env.device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM if op == "sum" else dist.ReduceOp.MIN)
    return t.tolist()
