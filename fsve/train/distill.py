"""``python -m fsve.train distill``: distil the SPKLIP teacher into the FSVE student.

The FSVE's text encoder is a copy of the teacher's, frozen, so both share one text space and the
student is trained only on its spiking visual encoder (surrogate gradients, Eq. 8) with
(:class:`fsve.train.losses.DistillLoss`)

    L = a · L_con + b · L_kl + c · L_emb + d · L_step

- ``L_con``: contrastive alignment of the student's video embeddings with the (teacher's) text
  embeddings of the captions, Eq. 6 with same-class pairs as positives (``stcl_loss``);
- ``L_kl``: ``T² · KL(p_t || p_s)`` between the teacher's and the student's class-prompt
  distributions ``softmax(s · cos(v, t_c) / T)`` over the C prompts (Hinton et al.'s T² keeps
  gradient sizes comparable across temperatures);
- ``L_emb``: ``1 - cos(v_s, v_t)``, alignment to the teacher's video embedding;
- ``L_step`` (weight ``d``): the same per sub-block: the student's embedding of time step k
  (``proj`` of its firing rates) against the teacher's output for block k after its temporal
  Transformer (Eq. 4, before the mean of Eq. 5).

``--no-teacher`` trains the same student with the teacher-free loss of the teacher itself
(:class:`fsve.train.losses.StclPromptLoss`: STCL on captions + class-prompt cross-entropy). With
``--teacher`` its text encoder and tokenizer still come from the teacher (frozen), so the two
runs differ only in the distillation signal; without ``--teacher`` the text encoder is trained
from scratch with a tokenizer built like the teacher's.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fsve.data.identity import file_sha256
from fsve.train.common import (
    RunStart,
    check_size,
    open_splits,
    print_main,
    prompt_texts,
    read_config_arg,
    resolve_loss_settings,
    run_info,
    start_run,
    task_loss,
    train_and_test,
)
from fsve.train.distributed import DistEnv
from fsve.train.losses import (
    PROMPT_TEMPLATES,
    DistillLoss,
    DistillWeights,
    prompt_bank,
    teacher_block_embeddings,
)
from fsve.train.runfolder import check_config, mismatch
from fsve.train.seeding import seed_everything

__all__ = [
    "FSVE_RECIPE_OVERRIDES",
    "build_student",
    "cmd_distill",
    "student_config",
    "teacher_targets",
]


# distill_settings' names -> their flags
FLAG_NAMES = {
    "contrastive": "w-contrastive",
    "kl": "w-kl",
    "embed": "w-embed",
    "steps": "w-steps",
    "no_teacher": "no-teacher",
}

# The FSVE trains on the teacher's recipe with a higher peak lr: at lr 1e-3 it sat near 25%
# val Top-1 after 12 epochs; at 3e-3 it reached 67.5% by epoch 18 of 36 (distilled, seed 0).
FSVE_RECIPE_OVERRIDES: dict[str, dict[str, Any]] = {"default": {"lr": 3e-3}}


def cmd_distill(args: argparse.Namespace, env: DistEnv) -> int:
    """``distill``: train the FSVE from the frozen teacher (or alone with ``--no-teacher``)."""
    from fsve.models.config import config_to_dict

    start = start_run(args, "fsve", FSVE_RECIPE_OVERRIDES)
    loop = start.loop
    # runs stored before the cache existed ran the teacher at every step
    stored = start.stored
    cache_teacher = bool(stored.get("cache_teacher", False)) if stored else not args.live_teacher
    if stored and args.live_teacher and cache_teacher:
        raise mismatch("--live-teacher", "a cached teacher", "--live-teacher")
    weights, teacher_path, no_teacher = distill_settings(args, stored)
    teacher_hash = check_teacher(teacher_path, stored)
    teacher, tokenizer_dict = load_teacher(teacher_path, env)
    cfg, tokenizer, (train, val), classes = _student_setup(args, start, teacher, tokenizer_dict)

    seed_everything(loop.seed)
    student = build_student(cfg, teacher)
    length = cfg.text.context_length
    loss_settings = resolve_loss_settings(args, stored) if no_teacher else None
    if no_teacher:
        bank = prompt_bank(tokenizer, classes, PROMPT_TEMPLATES, length)
        loss_fn: Any = task_loss(tokenizer, bank, loss_settings)
    else:
        targets = None
        if cache_teacher:
            targets = teacher_targets(teacher, train, loop.batch_size, env.device, not args.quiet)
        loss_fn = _distill_loss(teacher, tokenizer, classes, length, weights, targets)
    trainable = sum(p.numel() for p in student.parameters() if p.requires_grad)
    print_main(
        env,
        f"fsve: {trainable / 1e6:.2f} M trainable parameters"
        f" ({'no teacher' if no_teacher else 'distilled from ' + str(teacher_path)}),"
        f" {len(train)} train / {len(val)} val clips, {loop.epochs} epochs of batch"
        f" {loop.batch_size} (lr {loop.lr:g}), {env.world_size} process(es) on {env.device.type}",
    )
    info = run_info(
        args,
        start,
        env,
        teacher=teacher_path,
        no_teacher=no_teacher,
        weights=dataclasses.asdict(weights),
        **({"loss": loss_settings} if no_teacher else {}),
    )
    info["cache_teacher"] = cache_teacher
    info["teacher_sha256"] = teacher_hash
    meta = {
        "kind": "fsve",
        "config": config_to_dict(cfg),
        "tokenizer": tokenizer.to_dict(),
        "classes": classes,
    }
    train_and_test(student, loss_fn, train, val, tokenizer, meta, info, args, env, start, cfg)
    return 0


def distill_settings(
    args: argparse.Namespace, stored: Mapping[str, Any] | None
) -> tuple[DistillWeights, str | None, bool]:
    """Loss weights, teacher path and ``--no-teacher`` from the flags, or from ``last.pt`` on
    resume (flags that contradict it are an error)."""
    given = {
        "contrastive": args.w_contrastive,
        "kl": args.w_kl,
        "embed": args.w_embed,
        "temperature": args.temperature,
        "steps": args.w_steps,
    }
    given = {k: v for k, v in given.items() if v is not None}
    if stored is not None:
        flags = {**given, "teacher": args.teacher, "no_teacher": args.no_teacher or None}
        saved = {
            "steps": 0.0,  # runs stored before L_step existed did not use it
            **stored["weights"],
            "teacher": stored["teacher"],
            "no_teacher": stored["no_teacher"],
        }
        for name, flag in flags.items():
            same = _same_path if name == "teacher" else lambda x, y: str(x) == str(y)
            if flag is not None and not same(flag, saved[name]):
                raise mismatch(f"--{FLAG_NAMES.get(name, name)}", saved[name], flag)
        weights = DistillWeights(**{"steps": 0.0, **stored["weights"]})
        teacher_path = stored["teacher"]
        no_teacher = bool(stored["no_teacher"])
    else:
        weights = DistillWeights(**given)
        teacher_path = str(args.teacher) if args.teacher is not None else None
        no_teacher = args.no_teacher
    if teacher_path is None and not no_teacher:
        raise ValueError("distill needs --teacher T.pt (or --no-teacher to train the FSVE alone)")
    return weights, teacher_path, no_teacher


def _same_path(given: Any, stored: Any) -> bool:
    return stored is not None and Path(given).resolve() == Path(stored).resolve()


def check_teacher(path: str | None, stored: Mapping[str, Any] | None) -> str | None:
    """SHA-256 of the teacher checkpoint; on resume it must be the stored run's (a retrained
    teacher at the same path is refused). ``None`` without a teacher."""
    if path is None:
        return None
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint (--teacher)")
    digest = file_sha256(path)
    old = stored.get("teacher_sha256") if stored else None
    if old is not None and old != digest:
        raise mismatch(
            f"the content of --teacher {path}",
            f"sha256 {old[:16]}",
            f"sha256 {digest[:16]}: the checkpoint changed since the run started",
        )
    return digest


def load_teacher(
    path: str | Path | None, env: DistEnv
) -> tuple[nn.Module | None, dict[str, Any] | None]:
    """The frozen teacher in eval mode on the device and its tokenizer dict (``None``s without)."""
    from fsve.checkpoint import load_model

    if path is None:
        return None, None
    teacher, ckpt = load_model(path, kind="teacher")
    teacher.requires_grad_(False)
    teacher.eval().to(env.device)
    return teacher, ckpt["tokenizer"]


def _student_setup(
    args: argparse.Namespace,
    start: RunStart,
    teacher: nn.Module | None,
    tokenizer_dict: Mapping[str, Any] | None,
) -> tuple[Any, Any, tuple[Any, Any], list[str]]:
    """The student's config, tokenizer, (train, val) splits and class names: the teacher's
    tokenizer when there is one, else last.pt's or a new one built like the teacher's."""
    from fsve.models.config import config_to_dict, with_vocab_size
    from fsve.models.text import WordTokenizer

    resume = start.resume
    cfg_dict = resume["config"] if resume is not None else fsve_config_arg(args.config or "tiny")
    cfg = student_config(cfg_dict, teacher.cfg if teacher is not None else None)
    if resume is not None and args.config is not None:  # allowed if it is the run's own
        given = student_config(fsve_config_arg(args.config), getattr(teacher, "cfg", None))
        check_config(config_to_dict(given), resume["config"], ("text.vocab_size",))
    train, val = open_splits(args.data, cfg)
    classes = list(train.class_names)
    if teacher is not None:
        check_size(train, teacher.cfg)
        if (teacher.cfg.num_blocks, teacher.cfg.block_frames) != (cfg.num_blocks, cfg.block_frames):
            raise ValueError("teacher and FSVE configs must share num_blocks and block_frames")
        tokenizer = WordTokenizer.from_dict(tokenizer_dict)
    elif resume is not None:
        tokenizer = WordTokenizer.from_dict(resume["tokenizer"])
    else:
        texts = [*train.captions, *prompt_texts(PROMPT_TEMPLATES, classes)]
        tokenizer = WordTokenizer.from_texts(texts)
        cfg = with_vocab_size(cfg, len(tokenizer))
    return cfg, tokenizer, (train, val), classes


def _distill_loss(
    teacher: nn.Module,
    tokenizer: Any,
    classes: list[str],
    length: int,
    weights: DistillWeights,
    targets: torch.Tensor | None,
) -> DistillLoss:
    """:class:`DistillLoss` against the default prompt of every class."""
    from fsve.data.synth import DEFAULT_PROMPT_TEMPLATE

    prompts = tokenizer.encode([DEFAULT_PROMPT_TEMPLATE.format(c) for c in classes], length)
    return DistillLoss(teacher, tokenizer, prompts, weights, targets)


@torch.no_grad()
def teacher_targets(
    teacher: nn.Module, dataset: Any, batch_size: int, device: torch.device, progress: bool = False
) -> torch.Tensor:
    """The teacher's per-block outputs ``[N, K, D]`` for every clip of ``dataset``, by index.

    Computed once before training instead of at every step: the teacher is frozen, so its
    target for a clip never changes. The targets are those of the unshifted clip; the student
    still sees randomly shifted clips (the teacher was trained shift-invariant, so its output
    moves little under a shift). Saves the teacher's forward pass at every step.
    """
    from tqdm import tqdm

    from fsve.data.dataset import collate

    was_training = teacher.training
    teacher.eval()
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, collate_fn=collate)
    parts = []
    for batch in tqdm(loader, desc="teacher targets", disable=not progress, leave=False):
        parts.append(teacher_block_embeddings(teacher, batch["spikes"].to(device).float()).float())
    teacher.train(was_training)
    return torch.cat(parts).cpu()


def student_config(spec: str | Mapping[str, Any], teacher_cfg: Any | None) -> Any:
    """FSVEConfig from a preset or dict; with a teacher, its ``embed_dim`` and ``text`` config."""
    from fsve.models.student import fsve_config

    cfg = fsve_config(spec)
    if teacher_cfg is not None:
        cfg = dataclasses.replace(cfg, embed_dim=teacher_cfg.embed_dim, text=teacher_cfg.text)
    return cfg


def build_student(cfg: Any, teacher: nn.Module | None) -> nn.Module:
    """An FSVE; with a teacher, its text encoder and ``logit_scale`` copied and the text frozen."""
    from fsve.models.student import FSVE

    student = FSVE(cfg)
    if teacher is not None:
        student.text.load_state_dict(teacher.text.state_dict())
        with torch.no_grad():
            student.logit_scale.copy_(teacher.logit_scale)
        student.text.requires_grad_(False)
    return student


def fsve_config_arg(spec: str) -> dict[str, Any]:
    """``--config``: an FSVE preset name or a JSON file of FSVEConfig keys (strict)."""
    from fsve.models.config import fsve_config, preset_names

    return read_config_arg(spec, fsve_config, preset_names("fsve"))
