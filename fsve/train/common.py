"""What the ``teacher`` and ``distill`` commands share: recipes, ``--config`` and resume checks,
the run's start (data, resume, loop settings) and end (``fit``, test of ``best.pt``)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from fsve.cli import UsageError, check_frame_size, open_dataset, require_dataset
from fsve.io import atomic_write_text
from fsve.train.augment import RandomShift
from fsve.train.distributed import DistEnv
from fsve.train.loop import BEST, LoopConfig, fit, load_resume
from fsve.train.losses import StclPromptLoss
from fsve.train.runfolder import (
    check_resume_data,
    check_splits,
    guard_new_run,
    mismatch,
    remove_run_files,
)

W_CAPTION_DEFAULT = 0.25  # caption STCL weight of the default recipe (see StclPromptLoss)

# Hyperparameters per recipe; warmup in epochs, schedule "cosine" | "constant". The loss keys
# (w_caption, w_class, detach_video) configure :class:`fsve.train.loop.StclPromptLoss`: the
# default recipe trains the video encoder on fixed class anchors and aligns the text encoder to
# it; the paper recipe is the paper's joint STCL (plus the class-prompt term).
RECIPES: dict[str, dict[str, Any]] = {
    "default": {
        "epochs": 12,
        "batch_size": 16,
        "lr": 1e-3,
        "weight_decay": 0.05,
        "warmup_epochs": 1.0,
        "schedule": "cosine",
        "min_lr_ratio": 0.02,
        "grad_clip": 1.0,
        "shift_px": 16,
        "w_caption": W_CAPTION_DEFAULT,
        "w_class": 1.0,
        "detach_video": True,
    },
    "paper": {
        "epochs": 30,
        "batch_size": 8,
        "lr": 2e-5,
        "weight_decay": 0.01,
        "warmup_epochs": 0.0,
        "schedule": "constant",
        "min_lr_ratio": 1.0,
        "grad_clip": 1.0,
        "shift_px": 0,
        "w_caption": 1.0,
        "w_class": 0.0,
        "detach_video": False,
    },
}
HYPER = ("epochs", "batch_size", "lr", "seed")  # flags that may override a recipe
LOSS_KEYS = ("w_caption", "w_class", "detach_video")  # StclPromptLoss settings of a recipe
DATA_KEYS = ("shift_px", *LOSS_KEYS)  # recipe entries that are not LoopConfig fields
W_PROMPT = 1.0  # weight of the class-prompt term next to STCL


def read_config_arg(
    spec: str,
    make: Callable[[Any], Any] | None = None,
    presets: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """``--config``: a preset name (``tiny``, ``paper``) or a JSON file of config keys.

    ``make`` builds the config from a preset name or dict and ``presets`` names its presets
    (default: the teacher's, :func:`fsve.models.config.model_config`). A file is a (possibly
    partial) dict as stored in checkpoints; missing keys take the config's defaults, unknown keys
    are an error.
    """
    from fsve.models.config import config_to_dict, preset_names, teacher_config

    make = make or teacher_config
    presets = preset_names("teacher") if presets is None else presets
    if spec in presets:
        return config_to_dict(make(spec))
    path = Path(spec)
    if not path.is_file():
        raise ValueError(f"--config {spec!r} is neither a preset {sorted(presets)} nor a JSON file")
    try:
        data = json.loads(path.read_text())
    except ValueError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object of config keys")
    try:
        return config_to_dict(make(data))
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None


def resolve_loop(
    args: argparse.Namespace,
    stored: Mapping[str, Any] | None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> LoopConfig:
    """Recipe values (with ``overrides[recipe]`` on top), overridden by flags; on resume the
    stored values, checked against flags."""
    if stored is not None:
        loop = dict(stored["loop"])
        for name in HYPER:
            given = getattr(args, name)
            if given is not None and given != loop[name]:
                raise mismatch(f"--{name.replace('_', '-')}", loop[name], given)
        if args.recipe is not None and args.recipe != stored.get("recipe"):
            raise mismatch("--recipe", stored.get("recipe"), args.recipe)
        loop["workers"] = args.workers
        loop["betas"] = tuple(loop["betas"])
        return LoopConfig(**loop)
    recipe_name = args.recipe or "default"
    recipe = {k: v for k, v in RECIPES[recipe_name].items() if k not in DATA_KEYS}
    recipe.update((overrides or {}).get(recipe_name, {}))
    for name in HYPER:
        if getattr(args, name) is not None:
            recipe[name] = getattr(args, name)
    recipe.setdefault("seed", 0)
    return LoopConfig(**recipe, workers=args.workers)


def resolve_shift(args: argparse.Namespace, stored: Mapping[str, Any] | None) -> int:
    """``--shift`` (random translation, pixels): the flag, the recipe's or last.pt's value."""
    if stored is not None:
        if args.shift is not None and args.shift != stored["shift_px"]:
            raise mismatch("--shift", stored["shift_px"], args.shift)
        return int(stored["shift_px"])
    if args.shift is not None:
        if args.shift < 0:
            raise ValueError(f"--shift must be >= 0 pixels, got {args.shift}")
        return args.shift
    return int(RECIPES[args.recipe or "default"]["shift_px"])


def resolve_loss_settings(
    args: argparse.Namespace, stored: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The recipe's StclPromptLoss settings, or last.pt's on resume (runs before this change
    stored none: they used the joint loss)."""
    if stored is not None:
        return dict(stored.get("loss", {"w_caption": 1.0, "w_class": 0.0, "detach_video": False}))
    recipe = RECIPES[args.recipe or "default"]
    return {k: recipe[k] for k in LOSS_KEYS}


def task_loss(tokenizer: Any, bank: torch.Tensor, settings: Mapping[str, Any]) -> StclPromptLoss:
    """The teacher-free loss (teacher, and the FSVE trained alone) with a recipe's settings."""
    return StclPromptLoss(tokenizer, bank, w_prompt=W_PROMPT, **settings)


def window_for(cfg: Any) -> Any:
    """The sub-block layout (Eq. 2) a config expects: ``num_blocks`` blocks of ``block_frames``."""
    from fsve.data.dataset import window_of

    return window_of(cfg)


def check_size(dataset: Any, cfg: Any) -> None:
    """Data frames must have the config's height x width (one-line :class:`UsageError`)."""
    check_frame_size(dataset, cfg.height, cfg.width, what="the model config")


def print_main(env: DistEnv, *parts: object) -> None:
    """``print`` on rank 0 only (flushed: torchrun interleaves the ranks' output)."""
    if env.is_main:
        print(*parts, flush=True)


def evaluator(
    tokenizer: Any, dataset: Any, prompts: list[str], env: DistEnv, batch_size: int, prefix: str
) -> Callable[[torch.nn.Module], dict[str, float]]:
    """Validation callback for :func:`fit`: zero-shot Top-k and R@k in %, keys ``prefix + ...``."""
    from fsve.eval.metrics import evaluate_model

    def run(model: torch.nn.Module) -> dict[str, float]:
        metrics = evaluate_model(model, tokenizer, dataset, prompts, batch_size, env.device)
        return {prefix + k: v for k, v in metrics.items()}

    return run


def finish(
    env: DistEnv,
    out: Path,
    kind: str,
    data: Path,
    cfg: Any,
    batch_size: int,
    workers: int,
    best_val: float,
) -> dict[str, float]:
    """Evaluate ``best.pt`` on the test split (all ranks), write ``test_metrics.json`` and print
    a one-line summary (rank 0)."""
    from fsve.checkpoint import load_model
    from fsve.data.dataset import SpikeDataset
    from fsve.data.synth import DEFAULT_PROMPT_TEMPLATE
    from fsve.eval.metrics import evaluate_model
    from fsve.models.text import WordTokenizer

    model, ckpt = load_model(out / BEST, kind=kind)
    model.to(env.device)
    tokenizer = WordTokenizer.from_dict(ckpt["tokenizer"])
    test = SpikeDataset(data, "test", window=window_for(cfg))
    prompts = [DEFAULT_PROMPT_TEMPLATE.format(c) for c in test.class_names]
    metrics = evaluate_model(
        model, tokenizer, test, prompts, batch_size, env.device, workers=workers
    )
    if env.is_main:
        record = {
            "checkpoint": str(out / BEST),
            "split": "test",
            "epoch": ckpt["metrics"].get("epoch"),
            **metrics,
        }
        atomic_write_text(out / "test_metrics.json", json.dumps(record, indent=2) + "\n")
    print_main(
        env,
        f"best val top1 {best_val:.1f}%; test (best.pt): "
        + ", ".join(f"{k[:-4]} {v:.1f}%" for k, v in metrics.items())
        + f"; files in {out}",
    )
    return metrics


@dataclass(frozen=True)
class RunStart:
    """A run's settings before any model exists: ``last.pt`` on resume, loop and shift."""

    resume: Mapping[str, Any] | None  # the loaded last.pt, or None for a new run
    stored: Mapping[str, Any] | None  # its run settings (``training["run"]``)
    loop: LoopConfig
    shift: int  # random translation, max pixels
    data: Mapping[str, str]  # the dataset's identity: resolved "path", content "sha256"
    replace: tuple[Path, ...] = ()  # an earlier run's files to remove first (--overwrite)


def start_run(
    args: argparse.Namespace,
    kind: str,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> RunStart:
    """Check the data (every split the run needs), the run folder (a new run refuses an
    earlier run's files without ``--overwrite``; ``--resume`` loads ``last.pt`` and refuses other
    data) and resolve the loop settings and shift from the recipe, the flags and ``last.pt``."""
    from fsve.data.identity import data_identity

    out: Path = args.out
    require_dataset(args.data)
    check_splits(args.data)
    overwrite = getattr(args, "overwrite", False)
    if args.resume and overwrite:
        raise UsageError("--overwrite starts a new run and --resume continues one: pass one")
    replace: list[Path] = []
    if args.resume:
        resume = load_resume(out, kind)
        stored = resume["training"]["run"]
        data = check_resume_data(stored, args.data)
    else:
        resume = stored = None
        replace = guard_new_run(out, overwrite)
        data = data_identity(args.data)
    loop = resolve_loop(args, stored, overrides)
    return RunStart(resume, stored, loop, resolve_shift(args, stored), data, tuple(replace))


def run_info(
    args: argparse.Namespace, start: RunStart, env: DistEnv, **fields: Any
) -> dict[str, Any]:
    """The run settings stored in ``last.pt``: recipe, data, ``fields``, shift, world size."""
    recipe = start.stored.get("recipe") if start.stored else (args.recipe or "default")
    return {
        "recipe": recipe,
        "data": start.data["path"],
        "data_sha256": start.data["sha256"],
        **fields,
        "shift_px": start.shift,
        "world_size": env.world_size,
    }


def train_and_test(
    model: torch.nn.Module,
    loss_fn: Callable[..., torch.Tensor],
    train: Any,
    val: Any,
    tokenizer: Any,
    meta: Mapping[str, Any],
    info: Mapping[str, Any],
    args: argparse.Namespace,
    env: DistEnv,
    start: RunStart,
    cfg: Any,
) -> dict[str, float]:
    """:func:`fsve.train.loop.fit` with validation on ``val`` through the default prompt, then
    :func:`finish` (``best.pt`` on the test split); ``meta``: ``kind``, config, tokenizer,
    classes."""
    from fsve.data.synth import DEFAULT_PROMPT_TEMPLATE

    loop = start.loop
    prompts = [DEFAULT_PROMPT_TEMPLATE.format(c) for c in meta["classes"]]
    if env.is_main:
        remove_run_files(list(start.replace))  # --overwrite: the old set goes as a whole
    result = fit(
        model,
        loss_fn,
        train,
        loop,
        args.out,
        meta,
        evaluate=evaluator(tokenizer, val, prompts, env, loop.batch_size, "val_"),
        env=env,
        resume=start.resume,
        run_info=info,
        progress=not args.quiet,
        augment=RandomShift(start.shift) if start.shift else None,
    )
    return finish(
        env, args.out, meta["kind"], args.data, cfg, loop.batch_size, args.workers, result.best
    )


def open_splits(data: Path, cfg: Any) -> tuple[Any, Any]:
    """The train and val splits of ``data`` cut for ``cfg``, frame size checked; the test split
    :func:`finish` evaluates is opened and checked too, so it fails before the first step."""
    window = window_for(cfg)
    splits = [open_dataset(data, split, window) for split in ("train", "val", "test")]
    for split in splits:
        check_size(split, cfg)
    return splits[0], splits[1]


def prompt_texts(templates: Sequence[str], classes: Sequence[str]) -> list[str]:
    """Every template filled with every class name, template by template."""
    return [t.format(c) for t in templates for c in classes]
