"""A generic epoch loop: optimizer, warmup-cosine schedule, checkpoints, resume, NaN guard.

:func:`fit` trains any model whose loss is a function of ``(model, batch)``; the teacher (STCL,
Eq. 6) and the distilled FSVE plug in their own loss functions and evaluation callbacks.

Per epoch it writes into the run folder (rank 0 only):

- ``last.pt``: the checkpoint plus a ``training`` dict (optimizer and scheduler state, RNG
  states, completed epochs, best metric, history, run settings), saved atomically;
- ``best.pt``: the checkpoint with the best validation metric so far (``monitor``);
- ``metrics.csv``: one row per epoch (rewritten from the history, so a killed run never leaves a
  row without its checkpoint); ``curves.png``: loss and accuracy curves.

Resume: ``last.pt`` restores weights, optimizer, scheduler and the torch/numpy/random RNG states
of the end of its epoch; each epoch's shuffling comes from a generator seeded by
``(seed, epoch)`` (or ``DistributedSampler.set_epoch``), so a run killed anywhere and resumed
ends with the same weights as an uninterrupted one.

Distributed: under ``torchrun`` (env ``WORLD_SIZE`` > 1) :func:`setup_distributed` joins the
process group (NCCL on CUDA, gloo on CPU); :func:`fit` wraps the model in DDP, shards batches
with ``DistributedSampler`` (``batch_size`` is the global batch, split evenly over ranks; a
contrastive loss sees only its rank's share as negatives) and all-reduces the metrics.
"""

from __future__ import annotations

import csv
import math
import os
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler
from tqdm import tqdm

from fsve.checkpoint import load_checkpoint, save_checkpoint
from fsve.data.dataset import collate
from fsve.io import atomic_open, atomic_path

__all__ = [
    "PROMPT_TEMPLATES",
    "SCHEDULES",
    "DistEnv",
    "FitResult",
    "LoopConfig",
    "NonFiniteLossError",
    "RandomShift",
    "StclPromptLoss",
    "cleanup_distributed",
    "epoch_seed",
    "fit",
    "get_rng_state",
    "load_resume",
    "lr_factor",
    "make_optimizer",
    "make_scheduler",
    "plot_curves",
    "prompt_bank",
    "random_shift",
    "seed_everything",
    "set_rng_state",
    "setup_distributed",
    "write_metrics_csv",
]

SCHEDULES = ("cosine", "constant")
LAST, BEST, METRICS, CURVES = "last.pt", "best.pt", "metrics.csv", "curves.png"

LossFn = Callable[[nn.Module, dict[str, Any]], torch.Tensor]
EvalFn = Callable[[nn.Module], dict[str, float]]


class NonFiniteLossError(RuntimeError):
    """Training stopped on a NaN or infinite loss (or gradient norm); the message is one line."""


@dataclass(frozen=True)
class LoopConfig:
    """Optimisation settings of :func:`fit` (AdamW, linear warmup then cosine, Eq.-free)."""

    epochs: int
    batch_size: int  # global batch, split evenly over the ranks
    lr: float  # peak learning rate
    weight_decay: float = 0.05  # AdamW, on weights with >= 2 dims only
    betas: tuple[float, float] = (0.9, 0.98)
    warmup_epochs: float = 1.0  # linear warmup from 0, in epochs (fractions allowed)
    schedule: str = "cosine"  # "cosine" to min_lr_ratio * lr at the end, or "constant"
    min_lr_ratio: float = 0.0
    grad_clip: float = 1.0  # max global gradient norm; 0 disables clipping
    seed: int = 0
    workers: int = 0  # DataLoader worker processes

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr must be a positive number, got {self.lr!r}")
        if self.weight_decay < 0 or self.warmup_epochs < 0 or self.grad_clip < 0:
            raise ValueError("weight_decay, warmup_epochs and grad_clip must be >= 0")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ValueError(f"min_lr_ratio must be in [0, 1], got {self.min_lr_ratio!r}")
        if self.workers < 0:
            raise ValueError(f"workers must be >= 0, got {self.workers}")


# ---------------------------------------------------------------- distributed environment


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


def _all_reduce(values: Sequence[float], env: DistEnv, op: str = "sum") -> list[float]:
    """Sum (or min) a few floats over the ranks; identity in a single process."""
    if not env.distributed:
        return [float(v) for v in values]
    t = torch.tensor([float(v) for v in values], dtype=torch.float64, device=env.device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM if op == "sum" else dist.ReduceOp.MIN)
    return t.tolist()


# ---------------------------------------------------------------- seeds and RNG state


def epoch_seed(seed: int, epoch: int) -> int:
    """Seed of the shuffling generator of ``epoch`` (0-based), a 63-bit function of both."""
    state = np.random.SeedSequence([int(seed), int(epoch)]).generate_state(2, dtype=np.uint32)
    return int(state[0]) << 31 | int(state[1]) >> 1


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA), numpy's global generator and ``random``."""
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 (the global generator others may use)
    torch.manual_seed(seed)


def get_rng_state() -> dict[str, Any]:
    """torch, CUDA, numpy and ``random`` generator states as tensors and plain values.

    Fit for a ``weights_only`` checkpoint: numpy's key array and ``random``'s tuple become lists.
    """
    np_state = np.random.get_state(legacy=False)  # noqa: NPY002 (global state, on purpose)
    version, internal, gauss = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "bit_generator": np_state["bit_generator"],
            "key": [int(x) for x in np_state["state"]["key"]],
            "pos": int(np_state["state"]["pos"]),
            "has_gauss": int(np_state["has_gauss"]),
            "gauss": float(np_state["gauss"]),
        },
        "random": [version, list(internal), gauss],
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Inverse of :func:`get_rng_state`."""
    torch.set_rng_state(state["torch"])
    s = state["numpy"]
    np.random.set_state(  # noqa: NPY002
        {
            "bit_generator": s["bit_generator"],
            "state": {"key": np.asarray(s["key"], dtype=np.uint32), "pos": s["pos"]},
            "has_gauss": s["has_gauss"],
            "gauss": s["gauss"],
        }
    )
    version, internal, gauss = state["random"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ---------------------------------------------------------------- optimizer and schedule


def make_optimizer(params: Iterable[nn.Parameter], cfg: LoopConfig) -> torch.optim.AdamW:
    """AdamW; weight decay on matrices and conv kernels only (not biases, norms, scalars)."""
    params = [p for p in params if p.requires_grad]
    if not params:
        raise ValueError("no trainable parameters")
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    groups = [
        {"params": decay, "weight_decay": cfg.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=cfg.lr, betas=cfg.betas)


def lr_factor(step: int, total_steps: int, warmup_steps: int, cfg: LoopConfig) -> float:
    """Multiplier of the peak lr at optimizer ``step`` (0-based): linear warmup, then cosine.

    During warmup ``(step + 1) / warmup_steps``; then ``min + (1 - min) (1 + cos(π p)) / 2``
    with ``p`` going from 0 after warmup to 1 at the last step, or 1 for ``"constant"``.
    """
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    if cfg.schedule == "constant":
        return 1.0
    span = max(total_steps - warmup_steps - 1, 1)
    p = min(max(step - warmup_steps, 0) / span, 1.0)
    return cfg.min_lr_ratio + (1.0 - cfg.min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * p))


def make_scheduler(
    optimizer: torch.optim.Optimizer, cfg: LoopConfig, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """Per-step :func:`lr_factor` schedule over ``cfg.epochs * steps_per_epoch`` steps."""
    total = cfg.epochs * steps_per_epoch
    warmup = min(round(cfg.warmup_epochs * steps_per_epoch), total)
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, total, warmup, cfg)
    )


# ---------------------------------------------------------------- files


def write_metrics_csv(path: str | os.PathLike, rows: Sequence[Mapping[str, Any]]) -> Path:
    """Write the per-epoch rows (dicts with the same keys) as CSV, atomically."""
    path = Path(path)
    with atomic_open(path, "w", newline="") as f:
        keys = list(rows[0]) if rows else ["epoch"]
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: row.get(k, "") for k in keys})
    return path


def plot_curves(path: str | os.PathLike, rows: Sequence[Mapping[str, Any]]) -> Path:
    """Loss (left) and validation accuracy (right, every ``val_*_pct`` column) per epoch, PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    epochs = [r["epoch"] for r in rows]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(9, 3.5))
    ax_loss.plot(epochs, [r["train_loss"] for r in rows], "o-", label="train")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("loss")
    ax_loss.legend()
    keys = [k for k in (rows[0] if rows else {}) if k.startswith("val_") and k.endswith("_pct")]
    for key in keys:
        ax_acc.plot(epochs, [r[key] for r in rows], "o-", label=key[4:-4])
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("validation %")
    ax_acc.set_ylim(0, 100)
    if keys:
        ax_acc.legend()
    fig.tight_layout()
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=100)
    finally:
        plt.close(fig)
    return path


# ---------------------------------------------------------------- the loop


def _to_device(batch: Mapping[str, Any], device: torch.device) -> dict[str, Any]:
    return {
        k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v
        for k, v in batch.items()
    }


def _loader(dataset: Dataset, cfg: LoopConfig, epoch: int, env: DistEnv) -> DataLoader:
    """Shuffled training batches of ``epoch``; the order depends only on ``(seed, epoch)``."""
    per_rank = cfg.batch_size // env.world_size
    common = {
        "batch_size": per_rank,
        "drop_last": len(dataset) // env.world_size >= per_rank,  # keep one batch if tiny
        "collate_fn": collate,
        "num_workers": cfg.workers,
        "pin_memory": env.device.type == "cuda",
    }
    generator = torch.Generator().manual_seed(epoch_seed(cfg.seed, epoch))
    if env.distributed:
        sampler = DistributedSampler(
            dataset, env.world_size, env.rank, shuffle=True, seed=cfg.seed, drop_last=True
        )
        sampler.set_epoch(epoch)
        return DataLoader(dataset, sampler=sampler, generator=generator, **common)
    return DataLoader(dataset, shuffle=True, generator=generator, **common)


@dataclass
class FitResult:
    """What :func:`fit` leaves: per-epoch ``history`` rows, the best monitored value, paths."""

    history: list[dict[str, Any]]
    best: float
    last_path: Path
    best_path: Path


def fit(
    model: nn.Module,
    loss_fn: LossFn,
    train_set: Dataset,
    cfg: LoopConfig,
    out_dir: str | os.PathLike,
    checkpoint_meta: Mapping[str, Any],
    evaluate: EvalFn | None = None,
    env: DistEnv | None = None,
    resume: Mapping[str, Any] | None = None,
    monitor: str = "val_top1_pct",
    run_info: Mapping[str, Any] | None = None,
    progress: bool = True,
    augment: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> FitResult:
    """Train ``model`` for ``cfg.epochs`` epochs; see the module docstring for the files.

    ``loss_fn(model, batch)`` gets the (possibly DDP-wrapped) model and a collated batch on the
    device and returns a scalar loss; it must call ``model(...)`` (DDP syncs gradients in
    ``forward``). ``evaluate(model)`` gets the unwrapped model in eval mode on every rank and
    returns metrics (``*_pct`` keys are plotted; ``monitor`` picks ``best.pt``, higher is better).
    ``checkpoint_meta``: ``kind``, ``config``, ``tokenizer``, ``classes`` for
    :func:`fsve.checkpoint.save_checkpoint`. ``resume``: a loaded ``last.pt`` dict.
    ``augment(batch)``: applied to training batches only, after moving them to the device.
    Only parameters with ``requires_grad`` are optimised. Raises :class:`NonFiniteLossError`
    before touching any file if a loss or gradient norm is not finite.
    """
    env = env or DistEnv()
    out = Path(out_dir)
    if cfg.batch_size % env.world_size:
        raise ValueError(
            f"batch size {cfg.batch_size} is not divisible by {env.world_size} processes"
        )
    if len(train_set) < env.world_size:
        raise ValueError(f"{len(train_set)} training samples for {env.world_size} processes")
    for key in ("kind", "config"):
        if key not in checkpoint_meta:
            raise ValueError(f"checkpoint_meta needs {key!r}")

    if resume is None:
        seed_everything(cfg.seed)
    model.to(env.device)
    optimizer = make_optimizer(model.parameters(), cfg)
    steps_per_epoch = len(_loader(train_set, cfg, 0, env))
    scheduler = make_scheduler(optimizer, cfg, steps_per_epoch)
    history: list[dict[str, Any]] = []
    best = -math.inf
    start_epoch = 0
    if resume is not None:
        training = resume.get("training")
        if not isinstance(training, Mapping):
            raise ValueError("the checkpoint to resume from has no training state (not last.pt?)")
        model.load_state_dict(resume["state_dict"], strict=True)
        optimizer.load_state_dict(training["optimizer"])
        scheduler.load_state_dict(training["scheduler"])
        history = [dict(r) for r in training["history"]]
        best = float(training["best"])
        start_epoch = int(training["epoch"])
        set_rng_state(training["rng"])

    train_model: nn.Module = model
    if env.distributed:
        ids = [env.device.index] if env.device.type == "cuda" else None
        train_model = nn.parallel.DistributedDataParallel(model, device_ids=ids)
    autocast = env.device.type == "cuda"
    last_path, best_path = out / LAST, out / BEST

    def save(path: Path, metrics: Mapping[str, Any], training: Mapping[str, Any] | None) -> None:
        save_checkpoint(
            path,
            checkpoint_meta["kind"],
            checkpoint_meta["config"],
            model.state_dict(),
            tokenizer=checkpoint_meta.get("tokenizer"),
            classes=checkpoint_meta.get("classes"),
            metrics=metrics,
            training=training,
        )

    for epoch in range(start_epoch, cfg.epochs):
        loader = _loader(train_set, cfg, epoch, env)
        model.train()
        started = time.perf_counter()
        loss_sum, seen = 0.0, 0
        bar = tqdm(
            loader,
            desc=f"epoch {epoch + 1}/{cfg.epochs}",
            unit="batch",
            disable=not (progress and env.is_main),
            leave=False,
        )
        for step, batch in enumerate(bar):
            batch = _to_device(batch, env.device)
            if augment is not None:
                batch = augment(batch)
            n = len(batch["label"]) if "label" in batch else cfg.batch_size // env.world_size
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast):
                loss = loss_fn(train_model, batch)
            loss = loss.float()
            # agree on finiteness before backward: a rank skipping it would hang DDP's all-reduce
            finite = _all_reduce([float(torch.isfinite(loss))], env, op="min")[0] >= 1
            norm = torch.tensor(math.nan)
            if finite:
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                params = [p for p in model.parameters() if p.grad is not None]
                if cfg.grad_clip > 0:
                    norm = nn.utils.clip_grad_norm_(params, cfg.grad_clip)
                else:
                    norm = torch.linalg.vector_norm(
                        torch.stack([torch.linalg.vector_norm(p.grad) for p in params])
                    )
            # gradients are all-reduced, so every rank sees the same norm
            if not finite or not bool(torch.isfinite(norm)):
                what = "gradient norm" if finite else "loss"
                kept = (
                    f"{last_path} (epoch {epoch}) left untouched"
                    if epoch > 0
                    else "no checkpoint was written"
                )
                value = float(norm) if finite else float(loss.detach())
                raise NonFiniteLossError(
                    f"non-finite {what} ({value:.4g}) at epoch {epoch + 1} step {step + 1}"
                    f" (on this or another rank); training stopped, {kept}"
                )
            optimizer.step()
            scheduler.step()
            loss_sum += float(loss.detach()) * n
            seen += n
            elapsed = max(time.perf_counter() - started, 1e-9)
            bar.set_postfix(
                loss=f"{loss_sum / seen:.4f}",
                samples_s=f"{seen * env.world_size / elapsed:.1f}",
                lr=f"{scheduler.get_last_lr()[0]:.2e}",
            )
        bar.close()
        train_seconds = time.perf_counter() - started
        loss_sum, seen = _all_reduce([loss_sum, seen], env)
        row: dict[str, Any] = {
            "epoch": epoch + 1,
            "train_loss": loss_sum / max(seen, 1),
            "lr": optimizer.param_groups[0]["lr"],
            "samples_per_s": seen / max(train_seconds, 1e-9),
        }
        if evaluate is not None:
            model.eval()
            with torch.no_grad():
                row.update({k: float(v) for k, v in evaluate(model).items()})
        row["seconds"] = time.perf_counter() - started
        history.append(row)
        value = float(row.get(monitor, -row["train_loss"]))
        improved = value > best
        best = max(best, value)
        metrics = {**row, "best": best, "monitor": monitor}
        if env.is_main:
            if improved:
                save(best_path, metrics, None)
            training = {
                "epoch": epoch + 1,
                "best": best,
                "history": history,
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "rng": get_rng_state(),
                "run": {"loop": _plain(asdict(cfg)), **_plain(dict(run_info or {}))},
            }
            save(last_path, metrics, training)
            write_metrics_csv(out / METRICS, history)
            plot_curves(out / CURVES, history)
            shown = " ".join(
                f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()
            )
            tqdm.write(f"epoch {epoch + 1}/{cfg.epochs}: {shown}")
    if env.distributed:
        dist.barrier()  # rank 0 has written the last files before anyone reads them
    return FitResult(history=history, best=best, last_path=last_path, best_path=best_path)


def _plain(value: Any) -> Any:
    """Tuples -> lists, paths -> str, recursively (plain values for checkpoints)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def load_resume(out_dir: str | os.PathLike, kind: str) -> dict[str, Any]:
    """The ``last.pt`` of a run folder, for ``resume=``; one-line errors if absent or foreign."""
    path = Path(out_dir) / LAST
    if not path.is_file():
        raise FileNotFoundError(f"--resume: {path} does not exist (nothing to resume)")
    ckpt = load_checkpoint(path, kind=kind)
    if "training" not in ckpt:
        raise ValueError(f"--resume: {path} holds no training state")
    return ckpt


# ---------------------------------------------------------------- augmentation


def random_shift(spikes: torch.Tensor, max_px: int) -> torch.Tensor:
    """Roll each clip ``[B, ..., H, W]`` by its own random ``(dy, dx)`` in ``[-max_px, max_px]``.

    One offset per clip (all blocks and frames alike), drawn with the global torch RNG (so a
    resumed run draws the same); pixels leaving one edge re-enter at the other. Labels and
    captions are unchanged: the built-in classes are defined by motion, not position.
    """
    if max_px <= 0:
        return spikes
    offsets = torch.randint(-max_px, max_px + 1, (spikes.shape[0], 2)).tolist()
    return torch.stack(
        [
            torch.roll(x, (dy, dx), dims=(-2, -1))
            for x, (dy, dx) in zip(spikes, offsets, strict=True)
        ]
    )


class RandomShift:
    """``augment`` for :func:`fit`: :func:`random_shift` of ``batch["spikes"]``."""

    def __init__(self, max_px: int) -> None:
        if max_px < 0:
            raise ValueError(f"shift must be >= 0 pixels, got {max_px}")
        self.max_px = max_px

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        return {**batch, "spikes": random_shift(batch["spikes"], self.max_px)}


# ---------------------------------------------------------------- a contrastive task loss

# Prompt templates the text encoder sees in training; the first is the evaluation prompt
# (fsve.data.synth.DEFAULT_PROMPT_TEMPLATE), the others keep it from keying on exact wording.
PROMPT_TEMPLATES = (
    "a video of an object {}",
    "a spike camera clip of an object {}",
    "an object {}",
    "a clip of a shape {}",
)


def prompt_bank(
    tokenizer: Any, class_names: Sequence[str], templates: Sequence[str], context_length: int
) -> torch.Tensor:
    """Token ids of every template x class prompt, ``[T, C, L]``."""
    if not templates or not class_names:
        raise ValueError("prompt_bank needs at least one template and one class")
    rows = [
        tokenizer.encode([t.format(name) for name in class_names], context_length)
        for t in templates
    ]
    return torch.stack(rows)


def class_anchors(num_classes: int, dim: int, seed: int = 0) -> torch.Tensor:
    """Fixed orthonormal class directions ``[C, D]`` (QR of a seeded Gaussian), no parameters.

    A fixed classifier (Hoffer et al., ICLR 2018) gives the video encoder a direct supervised
    signal without adding weights to the model, so checkpoints keep the SPKLIP/FSVE layout and a
    resumed run sees the same anchors.
    """
    if num_classes > dim:
        raise ValueError(f"{num_classes} class anchors need embed_dim >= {num_classes}, got {dim}")
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(dim, num_classes, generator=g, dtype=torch.float64))
    return q.T.contiguous().float()


class StclPromptLoss:
    """STCL on captions plus a class-prompt term, for the teacher and FSVE trained alone.

    ``loss = w_caption * stcl(v', t_caption, labels) + w_prompt * CE(s * cos(v', t_prompt), label)
    + w_class * CE(v @ A^T, label)``:

    - Eq. 6 (``stcl_loss``) over the batch's captions; with ``use_labels`` every same-class
      pair is a positive (two captions of one class are not pushed apart);
    - the video->text half of Eq. 6 against the C class prompts of one template (drawn per step
      from ``prompt_tokens [T, C, L]`` with the torch RNG), i.e. zero-shot classification
      through the text encoder, the task the paper evaluates (Table 1);
    - with ``w_class > 0``, cross-entropy of the video embedding against fixed orthonormal class
      anchors ``A`` (:func:`class_anchors`), a supervised signal for the video encoder alone.

    ``detach_video=True`` makes ``v' = stopgrad(v)``: the two text terms then train only the text
    encoder (and the temperature), aligning it to the video embeddings, while the video encoder
    learns from the anchor term (LiT-style, with the roles swapped). On the built-in data the
    joint objective learned motion several times slower: the text targets move every step and
    their gradients fight the video features (README, "Training").

    Captions and prompts go through one ``model(spikes, tokens)`` call (DDP-safe).
    """

    def __init__(
        self,
        tokenizer: Any,
        prompt_tokens: torch.Tensor,
        w_prompt: float = 1.0,
        use_labels: bool = True,
        w_caption: float = 1.0,
        w_class: float = 0.0,
        detach_video: bool = False,
    ) -> None:
        if prompt_tokens.ndim != 3:
            raise ValueError(f"prompt_tokens must be [T, C, L], got {tuple(prompt_tokens.shape)}")
        for name, value in (("w_prompt", w_prompt), ("w_caption", w_caption), ("w_class", w_class)):
            if not value >= 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        if detach_video and w_class == 0:
            raise ValueError("detach_video needs w_class > 0, or nothing trains the video encoder")
        self.tokenizer = tokenizer
        self.prompt_tokens = prompt_tokens
        self.context_length = prompt_tokens.shape[-1]  # captions are padded to the same L
        self.w_prompt = w_prompt
        self.use_labels = use_labels
        self.w_caption = w_caption
        self.w_class = w_class
        self.detach_video = detach_video
        self._anchors: torch.Tensor | None = None

    def anchors(self, dim: int, device: torch.device) -> torch.Tensor:
        """The ``[C, D]`` class anchors (C from the prompt bank), cached."""
        if self._anchors is None or self._anchors.shape[1] != dim:
            self._anchors = class_anchors(self.prompt_tokens.shape[1], dim)
        return self._anchors.to(device)

    def __call__(self, model: nn.Module, batch: Mapping[str, Any]) -> torch.Tensor:
        from fsve.train.losses import stcl_loss, zero_shot_logits

        spikes, labels = batch["spikes"], batch["label"]
        b = len(labels)
        tokens = self.tokenizer.encode(list(batch["caption"]), self.context_length)
        t = int(torch.randint(len(self.prompt_tokens), ())) if len(self.prompt_tokens) > 1 else 0
        tokens = torch.cat([tokens, self.prompt_tokens[t]]).to(spikes.device)
        video, text, scale = model(spikes, tokens)
        video, text = video.float(), text.float()
        v = video.detach() if self.detach_video else video
        loss = video.new_zeros(())
        if self.w_caption > 0:
            loss = loss + self.w_caption * stcl_loss(
                v, text[:b], scale, labels if self.use_labels else None
            )
        else:  # keep every parameter in the graph (DDP), at no cost to the value
            loss = loss + 0.0 * text[:b].sum()
        if self.w_prompt > 0:
            logits = zero_shot_logits(v, text[b:], scale)  # [B, C]
            loss = loss + self.w_prompt * nn.functional.cross_entropy(logits, labels)
        if self.w_class > 0:
            logits = video @ self.anchors(video.shape[1], video.device).T  # [B, C]
            loss = loss + self.w_class * nn.functional.cross_entropy(logits, labels)
        return loss
