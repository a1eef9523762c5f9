"""``python -m fsve.train teacher|distill``: train SPKLIP with STCL, or distil it into the FSVE.

``teacher`` trains SPKLIP (Eq. 6) on the captions of a dataset folder. The text targets mix the
per-sample captions with class prompts (:class:`fsve.train.loop.StclPromptLoss`): STCL over the
captions with same-class pairs as positives, plus cross-entropy of each video against the C
class prompts of a template drawn per step from :data:`fsve.train.loop.PROMPT_TEMPLATES`. The
tokenizer is built from the train captions and all those prompts and stored in the checkpoint.

Recipes (each value can be overridden by its flag):

- ``default``: tuned for the built-in dataset with the ``tiny`` config on a 2-core CPU: AdamW,
  linear warmup then cosine decay, random translation of each training clip by up to
  ``--shift`` pixels (see :data:`RECIPES`);
- ``paper``: the paper's AdamW, lr 2e-5, batch 8, 30 epochs; it gives no schedule or weight
  decay, so the lr is constant and the weight decay is AdamW's usual 0.01.

The run folder gets ``last.pt``, ``best.pt``, ``metrics.csv``, ``curves.png`` (see
:mod:`fsve.train.loop`) and, at the end, ``test_metrics.json`` (best checkpoint on the test
split). ``--resume`` continues from ``last.pt`` with the settings stored there; flags that
contradict them are an error. Runs under ``torchrun --nproc_per_node N`` unchanged.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from fsve.io import atomic_write_text
from fsve.train.loop import (
    PROMPT_TEMPLATES,
    DistEnv,
    LoopConfig,
    NonFiniteLossError,
    RandomShift,
    StclPromptLoss,
    cleanup_distributed,
    fit,
    load_resume,
    prompt_bank,
    seed_everything,
    setup_distributed,
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

    ``make`` builds the config from a preset name or dict (default: the teacher's). A file is a
    (possibly partial) dict as stored in checkpoints; missing keys take the config's defaults,
    unknown keys are an error.
    """
    from fsve.models.config import PRESETS, config_to_dict, teacher_config

    make = make or teacher_config
    presets = PRESETS if presets is None else presets
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
                raise ValueError(
                    f"--resume: --{name.replace('_', '-')} {given} differs from the run in"
                    f" last.pt ({loop[name]}); drop the flag or start a new --out"
                )
        if args.recipe is not None and args.recipe != stored.get("recipe"):
            raise ValueError(f"--resume: --recipe {args.recipe} differs from last.pt's run")
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
            raise ValueError(
                f"--resume: --shift {args.shift} differs from the run in last.pt"
                f" ({stored['shift_px']})"
            )
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


def check_data(root: Path) -> None:
    """A one-line error with the command that makes the data, if ``root`` has no manifest."""
    if not (root / "manifest.csv").is_file():
        raise FileNotFoundError(
            f"{root}: no dataset (manifest.csv); generate the built-in one with"
            f" `python -m fsve.data synth --out {root}` or `make demo`"
        )


def window_for(cfg: Any) -> Any:
    """The sub-block layout (Eq. 2) a config expects: ``num_blocks`` blocks of ``block_frames``."""
    from fsve.data.dataset import window_of

    return window_of(cfg)


def check_size(dataset: Any, cfg: Any) -> None:
    """Data frames must have the config's height x width."""
    sizes = set(zip(dataset.table["height"], dataset.table["width"], strict=True))
    if sizes != {(cfg.height, cfg.width)}:
        found = ", ".join(f"{h}x{w}" for h, w in sorted(sizes))
        raise ValueError(
            f"{dataset.root}: frames are {found} but the model config expects"
            f" {cfg.height}x{cfg.width}; pick a matching --config"
        )


def _print(env: DistEnv, *parts: object) -> None:
    if env.is_main:
        print(*parts, flush=True)


def evaluator(
    tokenizer: Any, dataset: Any, prompts: list[str], env: DistEnv, batch_size: int, prefix: str
) -> Callable[[torch.nn.Module], dict[str, float]]:
    """Validation callback for :func:`fit`: zero-shot Top-k and R@k in %, keys ``prefix + ...``."""
    from fsve.train.evaluate import evaluate_model

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
    from fsve.models.text import WordTokenizer
    from fsve.train.evaluate import evaluate_model
    from fsve.train.loop import BEST

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
    _print(
        env,
        f"best val top1 {best_val:.1f}%; test (best.pt): "
        + ", ".join(f"{k[:-4]} {v:.1f}%" for k, v in metrics.items())
        + f"; files in {out}",
    )
    return metrics


def cmd_teacher(args: argparse.Namespace, env: DistEnv) -> int:
    from fsve.data.dataset import SpikeDataset
    from fsve.data.synth import DEFAULT_PROMPT_TEMPLATE
    from fsve.models.config import teacher_config, with_vocab_size
    from fsve.models.teacher import SPKLIP
    from fsve.models.text import WordTokenizer

    out: Path = args.out
    check_data(args.data)
    resume = load_resume(out, "teacher") if args.resume else None
    if resume is None and (out / "last.pt").exists():
        raise FileExistsError(
            f"{out / 'last.pt'} exists: pass --resume to continue that run, or another --out"
        )
    stored = resume["training"]["run"] if resume is not None else None
    loop = resolve_loop(args, stored)
    shift = resolve_shift(args, stored)
    if resume is not None:
        if args.config is not None:
            raise ValueError("--resume takes the model config from last.pt; drop --config")
        cfg = teacher_config(resume["config"])
        tokenizer = WordTokenizer.from_dict(resume["tokenizer"])
        templates = list(stored["templates"])
    else:
        cfg = teacher_config(read_config_arg(args.config or "tiny"))
        templates = list(PROMPT_TEMPLATES)
    window = window_for(cfg)
    train = SpikeDataset(args.data, "train", window=window)
    val = SpikeDataset(args.data, "val", window=window)
    check_size(train, cfg)
    classes = list(train.class_names)
    if resume is None:
        prompt_texts = [t.format(c) for t in templates for c in classes]
        tokenizer = WordTokenizer.from_texts([*train.captions, *prompt_texts])
        cfg = with_vocab_size(cfg, len(tokenizer))
    elif list(resume["classes"]) != classes:
        raise ValueError(f"--resume: {args.data} has other classes than the run in last.pt")

    seed_everything(loop.seed)
    model = SPKLIP(cfg)
    length = cfg.text.context_length
    bank = prompt_bank(tokenizer, classes, templates, length)
    loss_settings = resolve_loss_settings(args, stored)
    loss_fn = task_loss(tokenizer, bank, loss_settings)
    eval_prompts = [DEFAULT_PROMPT_TEMPLATE.format(c) for c in classes]
    n_params = sum(p.numel() for p in model.parameters())
    _print(
        env,
        f"teacher: {n_params / 1e6:.2f} M parameters, {len(train)} train / {len(val)} val clips,"
        f" {loop.epochs} epochs of batch {loop.batch_size} (lr {loop.lr:g}, {loop.schedule}),"
        f" {env.world_size} process(es) on {env.device.type}"
        + (f", resuming after epoch {resume['training']['epoch']}" if resume else ""),
    )
    run_info = {
        "recipe": stored.get("recipe") if stored else (args.recipe or "default"),
        "data": str(args.data),
        "templates": templates,
        "w_prompt": W_PROMPT,
        "loss": loss_settings,
        "shift_px": shift,
        "world_size": env.world_size,
    }
    result = fit(
        model,
        loss_fn,
        train,
        loop,
        out,
        {"kind": "teacher", "config": cfg, "tokenizer": tokenizer.to_dict(), "classes": classes},
        evaluate=evaluator(tokenizer, val, eval_prompts, env, loop.batch_size, "val_"),
        env=env,
        resume=resume,
        run_info=run_info,
        progress=not args.quiet,
        augment=RandomShift(shift) if shift else None,
    )
    finish(env, out, "teacher", args.data, cfg, loop.batch_size, args.workers, result.best)
    return 0


def add_common(p: argparse.ArgumentParser, out: str) -> None:
    """Flags shared by the subcommands."""
    p.add_argument("--data", type=Path, default=Path("data/synth"), help="dataset folder")
    p.add_argument("--out", type=Path, default=Path(out), help="run folder")
    p.add_argument("--epochs", type=int, default=None, help="epochs (default: from the recipe)")
    p.add_argument("--batch-size", type=int, default=None, help="global batch size")
    p.add_argument("--lr", type=float, default=None, help="peak learning rate")
    p.add_argument("--seed", type=int, default=None, help="seed (default 0)")
    p.add_argument(
        "--recipe", choices=sorted(RECIPES), default=None, help="hyperparameters (default)"
    )
    p.add_argument(
        "--shift", type=int, default=None, help="random translation, max pixels (recipe)"
    )
    p.add_argument("--resume", action="store_true", help="continue from <out>/last.pt")
    p.add_argument("--device", choices=["cpu", "cuda"], default=None, help="default: cuda if any")
    p.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    p.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m fsve.train",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("teacher", help="train the SPKLIP teacher with STCL (Eq. 6)")
    add_common(p, "runs/teacher")
    p.add_argument(
        "--config", default=None, help="tiny | paper | FILE.json of TeacherConfig keys (tiny)"
    )
    p.set_defaults(func=cmd_teacher)
    from fsve.train.distill import add_distill_parser

    add_distill_parser(sub, add_common)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    env: DistEnv | None = None
    try:
        if args.threads is not None:
            if args.threads < 1:
                raise ValueError(f"--threads must be >= 1, got {args.threads}")
            torch.set_num_threads(args.threads)
        env = setup_distributed(args.device)
        code = args.func(args, env)
    except NonFiniteLossError as err:
        print(f"error: {err}", file=sys.stderr)
        code = 1
    except (ValueError, FileNotFoundError, FileExistsError, ImportError) as err:
        print(f"error: {err}", file=sys.stderr)
        code = 2
    if env is not None and env.distributed:
        cleanup_distributed(barrier=code == 0)  # after an error other ranks may be gone
    return code


if __name__ == "__main__":
    raise SystemExit(main())
