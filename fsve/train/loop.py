"""A generic epoch loop: optimizer, warmup-cosine schedule, checkpoints, resume, NaN guard.

:func:`fit` trains any model whose loss is a function of ``(model, batch)``; the teacher (STCL,
Eq. 6) and the distilled FSVE plug in their own loss functions and evaluation callbacks.

Per epoch it writes into the run folder (rank 0 only):

- ``last.pt``: the checkpoint plus a ``training`` dict (optimizer and scheduler state, RNG
  states, completed epochs, best metric, history, run settings), saved atomically;
- ``best.pt``: the checkpoint with the best validation metric so far (``monitor``);
- ``metrics.csv``: one row per epoch (rewritten from the history, so a killed run never leaves a
  row without its checkpoint); ``curves.png``: loss and accuracy curves.

NaN guard (issue 16, case 9): a non-finite loss, gradient norm, weight or validation output
stops the run with :class:`NonFiniteLossError` before the epoch's files are written.

Resume: ``last.pt`` restores weights, optimizer, scheduler and the torch/numpy/random RNG states
of the end of its epoch (:mod:`fsve.train.seeding`); each epoch's shuffling comes from a
generator seeded by ``(seed, epoch)`` (or ``DistributedSampler.set_epoch``), so a run killed
anywhere and resumed ends with the same weights as an uninterrupted one.

Distributed: under ``torchrun`` (env ``WORLD_SIZE`` > 1)
:func:`fsve.train.distributed.setup_distributed` joins the process group (NCCL on CUDA, gloo on
CPU); :func:`fit` wraps the model in DDP, shards batches
with ``DistributedSampler`` (``batch_size`` is the global batch, split evenly over ranks; a
contrastive loss sees only its rank's share as negatives) and all-reduces the metrics.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler
from tqdm import tqdm

from fsve.checkpoint import load_checkpoint, save_checkpoint
from fsve.data.dataset import collate
from fsve.train.distributed import DistEnv, all_reduce
from fsve.train.history import plot_curves, write_metrics_csv
from fsve.train.losses import PROMPT_TEMPLATES, StclPromptLoss  # noqa: F401 (named in --help texts)
from fsve.train.seeding import epoch_seed, get_rng_state, seed_everything, set_rng_state

__all__ = [
    "SCHEDULES",
    "FitResult",
    "LoopConfig",
    "NonFiniteLossError",
    "fit",
    "load_resume",
    "lr_factor",
    "make_optimizer",
    "make_scheduler",
]

SCHEDULES = ("cosine", "constant")
LAST, BEST, METRICS, CURVES = "last.pt", "best.pt", "metrics.csv", "curves.png"

LossFn = Callable[[nn.Module, dict[str, Any]], torch.Tensor]
EvalFn = Callable[[nn.Module], dict[str, float]]


class NonFiniteLossError(RuntimeError):
    """Training stopped on a NaN or infinite loss, gradient norm, weight or validation output
    (issue 16, case 9); the message is one line naming epoch and step, and no file of the
    diverged epoch is written."""


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


@dataclass
class FitResult:
    """What :func:`fit` leaves: per-epoch ``history`` rows, the best monitored value, paths."""

    history: list[dict[str, Any]]
    best: float
    last_path: Path
    best_path: Path


@dataclass
class _Training:
    """What every step of :func:`fit` works on: the model (and its DDP wrapper), the loss, the
    optimizer and schedule, settings and the rows of the epochs done."""

    model: nn.Module
    train_model: nn.Module  # the model, wrapped in DDP when distributed
    loss_fn: LossFn
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    cfg: LoopConfig
    env: DistEnv
    last_path: Path
    augment: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    best: float = -math.inf
    start_epoch: int = 0


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
    (naming epoch and step) before the epoch's files are written if a loss, gradient norm or
    weight after an update, or a validation output of a direct submodule or metric, is not
    finite: ``last.pt`` and ``best.pt`` stay those of the last good epoch.
    """
    env = env or DistEnv()
    out = Path(out_dir)
    _check_inputs(cfg, train_set, env, checkpoint_meta)
    run = _start(model, loss_fn, train_set, cfg, env, out / LAST, resume)
    run.augment = augment  # applied by _train_epoch after moving a batch to the device
    for epoch in range(run.start_epoch, cfg.epochs):
        loader = _loader(train_set, cfg, epoch, env)
        model.train()
        started = time.perf_counter()
        row = _train_epoch(run, loader, epoch, progress and env.is_main)
        if evaluate is not None:
            row.update(_validate(run, evaluate, epoch, len(loader)))
        row["seconds"] = time.perf_counter() - started
        run.history.append(row)
        value = float(row.get(monitor, -row["train_loss"]))
        improved = value > run.best
        run.best = max(run.best, value)
        if env.is_main:
            _write_epoch(
                run,
                out,
                checkpoint_meta,
                {**row, "best": run.best, "monitor": monitor},
                improved,
                run_info,
            )
    if env.distributed:
        dist.barrier()  # rank 0 has written the last files before anyone reads them
    return FitResult(history=run.history, best=run.best, last_path=out / LAST, best_path=out / BEST)


def _check_inputs(
    cfg: LoopConfig, train_set: Dataset, env: DistEnv, checkpoint_meta: Mapping[str, Any]
) -> None:
    """One-line errors for a batch the ranks cannot share and incomplete checkpoint metadata."""
    if cfg.batch_size % env.world_size:
        raise ValueError(
            f"batch size {cfg.batch_size} is not divisible by {env.world_size} processes"
        )
    if len(train_set) < env.world_size:
        raise ValueError(f"{len(train_set)} training samples for {env.world_size} processes")
    for key in ("kind", "config"):
        if key not in checkpoint_meta:
            raise ValueError(f"checkpoint_meta needs {key!r}")


def _start(
    model: nn.Module,
    loss_fn: LossFn,
    train_set: Dataset,
    cfg: LoopConfig,
    env: DistEnv,
    last_path: Path,
    resume: Mapping[str, Any] | None,
) -> _Training:
    """Seed (a new run) or restore ``resume`` (weights, optimizer, schedule, history, RNG), and
    wrap the model in DDP when distributed."""
    if resume is None:
        seed_everything(cfg.seed)
    model.to(env.device)
    optimizer = make_optimizer(model.parameters(), cfg)
    scheduler = make_scheduler(optimizer, cfg, len(_loader(train_set, cfg, 0, env)))
    run = _Training(model, model, loss_fn, optimizer, scheduler, cfg, env, last_path)
    if resume is not None:
        training = resume.get("training")
        if not isinstance(training, Mapping):
            raise ValueError("the checkpoint to resume from has no training state (not last.pt?)")
        model.load_state_dict(resume["state_dict"], strict=True)
        optimizer.load_state_dict(training["optimizer"])
        scheduler.load_state_dict(training["scheduler"])
        run.history = [dict(r) for r in training["history"]]
        run.best = float(training["best"])
        run.start_epoch = int(training["epoch"])
        set_rng_state(training["rng"])
    if env.distributed:
        ids = [env.device.index] if env.device.type == "cuda" else None
        run.train_model = nn.parallel.DistributedDataParallel(model, device_ids=ids)
    return run


def _train_epoch(run: _Training, loader: DataLoader, epoch: int, progress: bool) -> dict[str, Any]:
    """One pass over ``loader`` (optimizer steps); the epoch's row of loss, lr and speed."""
    cfg, env = run.cfg, run.env
    started = time.perf_counter()
    loss_sum, seen = 0.0, 0
    bar = tqdm(
        loader,
        desc=f"epoch {epoch + 1}/{cfg.epochs}",
        unit="batch",
        disable=not progress,
        leave=False,
    )
    for step, batch in enumerate(bar):
        batch = _to_device(batch, env.device)
        if run.augment is not None:
            batch = run.augment(batch)
        n = len(batch["label"]) if "label" in batch else cfg.batch_size // env.world_size
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=env.device.type == "cuda"):
            loss = run.loss_fn(run.train_model, batch)
        loss = loss.float()
        _optimizer_step(run, loss, epoch, step)
        loss_sum += float(loss.detach()) * n
        seen += n
        elapsed = max(time.perf_counter() - started, 1e-9)
        bar.set_postfix(
            loss=f"{loss_sum / seen:.4f}",
            samples_s=f"{seen * env.world_size / elapsed:.1f}",
            lr=f"{run.scheduler.get_last_lr()[0]:.2e}",
        )
    bar.close()
    train_seconds = time.perf_counter() - started
    loss_sum, seen = all_reduce([loss_sum, seen], env)
    return {
        "epoch": epoch + 1,
        "train_loss": loss_sum / max(seen, 1),
        "lr": run.optimizer.param_groups[0]["lr"],
        "samples_per_s": seen / max(train_seconds, 1e-9),
    }


def _optimizer_step(run: _Training, loss: torch.Tensor, epoch: int, step: int) -> None:
    """Backward, clip and step; :class:`NonFiniteLossError` (on every rank) for a non-finite
    loss or gradient norm, before anything is written."""
    # agree on finiteness before backward: a rank skipping it would hang DDP's all-reduce
    finite = all_reduce([float(torch.isfinite(loss))], run.env, op="min")[0] >= 1
    norm = torch.tensor(math.nan)
    if finite:
        run.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        params = [p for p in run.model.parameters() if p.grad is not None]
        if run.cfg.grad_clip > 0:
            norm = nn.utils.clip_grad_norm_(params, run.cfg.grad_clip)
        else:
            norm = torch.linalg.vector_norm(
                torch.stack([torch.linalg.vector_norm(p.grad) for p in params])
            )
    # gradients are all-reduced, so every rank sees the same norm
    if not finite or not bool(torch.isfinite(norm)):
        what = "gradient norm" if finite else "loss"
        value = float(norm) if finite else float(loss.detach())
        raise NonFiniteLossError(
            f"non-finite {what} ({value:.4g}) at epoch {epoch + 1} step {step + 1}"
            f" (on this or another rank); training stopped, {_kept(run, epoch)}"
        )
    run.optimizer.step()
    run.scheduler.step()
    bad = _first_non_finite(run.model.named_parameters())
    if bad is not None:
        raise NonFiniteLossError(
            f"non-finite weight {bad!r} after the update of epoch {epoch + 1} step {step + 1};"
            f" training stopped, {_kept(run, epoch)}"
        )


def _kept(run: _Training, epoch: int) -> str:
    """What a stopped run leaves: the last good ``last.pt`` (and ``best.pt``) or nothing."""
    if epoch > 0:
        return f"{run.last_path} (epoch {epoch}) left untouched, and best.pt"
    return "no checkpoint was written"


def _first_non_finite(named: Iterable[tuple[str, torch.Tensor]]) -> str | None:
    """The name of the first floating tensor holding a NaN or infinity, else ``None``."""
    named = [(n, t.detach()) for n, t in named if t.is_floating_point()]
    if not named:
        return None
    # fast path, one sync: a norm is finite iff every element is (or it overflowed: look closer)
    norms = torch._foreach_norm([t for _, t in named])
    device = norms[0].device
    if bool(torch.stack([x.to(device, torch.float32) for x in norms]).isfinite().all()):
        return None
    finite = torch.stack([torch.isfinite(t).all().to(device) for _, t in named])
    return None if bool(finite.all()) else named[int((~finite).nonzero()[0])][0]


def _validate(run: _Training, evaluate: EvalFn, epoch: int, steps: int) -> dict[str, float]:
    """``evaluate(model)`` in eval mode, watching the outputs of the model's direct submodules;
    :class:`NonFiniteLossError` (on every rank) for a non-finite output or metric."""
    seen: list[str] = []

    def watch(name: str) -> Callable[..., None]:
        def hook(module: nn.Module, inputs: Any, output: Any) -> None:
            tensors = output if isinstance(output, tuple | list) else [output]
            tensors = [("", t) for t in tensors if isinstance(t, torch.Tensor)]
            if not seen and _first_non_finite(tensors) is not None:
                seen.append(name)

        return hook

    model = run.model
    hooks = [m.register_forward_hook(watch(n)) for n, m in model.named_children()]
    model.eval()
    where = f"validation after epoch {epoch + 1} step {steps}"
    try:
        with torch.no_grad():
            metrics = {k: float(v) for k, v in evaluate(model).items()}
    except (ValueError, RuntimeError) as err:
        if seen:  # the metric code saw the NaN first ("scores contain NaN")
            raise _non_finite_output(run, epoch, where, seen[0]) from err
        raise
    finally:
        for h in hooks:
            h.remove()
    bad = [k for k, v in metrics.items() if not math.isfinite(v)]
    flags = all_reduce([float(bool(seen)), float(bool(bad))], run.env)  # summed: > 0 if any
    if flags[0] or flags[1]:
        what = seen[0] if seen else (f"metric {bad[0]!r}" if bad else "another rank")
        raise _non_finite_output(run, epoch, where, what)
    return metrics


def _non_finite_output(run: _Training, epoch: int, where: str, what: str) -> NonFiniteLossError:
    return NonFiniteLossError(
        f"non-finite output of {what!r} in {where}; training stopped, {_kept(run, epoch)}"
    )


def _write_epoch(
    run: _Training,
    out: Path,
    meta: Mapping[str, Any],
    metrics: Mapping[str, Any],
    improved: bool,
    run_info: Mapping[str, Any] | None,
) -> None:
    """Rank 0 at the end of an epoch: ``best.pt`` if ``improved``, ``last.pt`` with the training
    state, ``metrics.csv``, ``curves.png`` and the epoch's line on the console."""

    def save(path: Path, training: Mapping[str, Any] | None) -> None:
        save_checkpoint(
            path,
            meta["kind"],
            meta["config"],
            run.model.state_dict(),
            tokenizer=meta.get("tokenizer"),
            classes=meta.get("classes"),
            metrics=metrics,
            training=training,
        )

    row, epoch = run.history[-1], run.history[-1]["epoch"]
    if improved:
        save(out / BEST, None)
    training = {
        "epoch": epoch,
        "best": run.best,
        "history": run.history,
        "optimizer": run.optimizer.state_dict(),
        "scheduler": run.scheduler.state_dict(),
        "rng": get_rng_state(),
        "run": {"loop": _plain(asdict(run.cfg)), **_plain(dict(run_info or {}))},
    }
    save(run.last_path, training)
    write_metrics_csv(out / METRICS, run.history)
    plot_curves(out / CURVES, run.history)
    shown = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items())
    tqdm.write(f"epoch {epoch}/{run.cfg.epochs}: {shown}")


def load_resume(out_dir: str | os.PathLike, kind: str) -> dict[str, Any]:
    """The ``last.pt`` of a run folder, for ``resume=``; one-line errors if absent or foreign."""
    path = Path(out_dir) / LAST
    if not path.is_file():
        raise FileNotFoundError(f"--resume: {path} does not exist (nothing to resume)")
    ckpt = load_checkpoint(path, kind=kind)
    if "training" not in ckpt:
        raise ValueError(f"--resume: {path} holds no training state")
    return ckpt


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


def _to_device(batch: Mapping[str, Any], device: torch.device) -> dict[str, Any]:
    return {
        k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v
        for k, v in batch.items()
    }


def _plain(value: Any) -> Any:
    """Tuples -> lists, paths -> str, recursively (plain values for checkpoints)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


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
