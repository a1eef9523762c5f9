"""Distillation of the SPKLIP teacher into the FSVE student (``python -m fsve.train distill``).

The FSVE's text encoder is a copy of the teacher's, frozen, so both share one text space and the
student is trained only on its spiking visual encoder (surrogate gradients, Eq. 8) with

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
(:class:`fsve.train.loop.StclPromptLoss`: STCL on captions + class-prompt cross-entropy). With
``--teacher`` its text encoder and tokenizer still come from the teacher (frozen), so the two
runs differ only in the distillation signal; without ``--teacher`` the text encoder is trained
from scratch with a tokenizer built like the teacher's.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from fsve.train.losses import similarity_logits, stcl_loss

__all__ = [
    "DistillLoss",
    "DistillWeights",
    "build_student",
    "cmd_distill",
    "distill_terms",
    "student_config",
    "teacher_targets",
]


# The FSVE trains on the teacher's recipe with a higher peak lr: at lr 1e-3 it sat near 25%
# val Top-1 after 12 epochs; at 3e-3 it reached 67.5% by epoch 18 of 36 (distilled, seed 0).
FSVE_RECIPE_OVERRIDES: dict[str, dict[str, Any]] = {"default": {"lr": 3e-3}}


@dataclass(frozen=True)
class DistillWeights:
    """Weights ``a, b, c`` of the three terms and the KL temperature ``T``."""

    contrastive: float = 1.0  # a, L_con
    kl: float = 1.0  # b, L_kl
    embed: float = 1.0  # c, L_emb
    temperature: float = 2.0  # T of the class-prompt distributions
    steps: float = 0.0  # d, L_step: per time step against the teacher's per-block outputs

    def __post_init__(self) -> None:
        for name in ("contrastive", "kl", "embed", "steps"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"--w-{name} must be >= 0, got {getattr(self, name)!r}")
        if not self.temperature > 0:
            raise ValueError(f"--temperature must be > 0, got {self.temperature!r}")
        if self.contrastive + self.kl + self.embed + self.steps <= 0:
            raise ValueError("at least one distillation weight must be > 0")


def distill_terms(
    student_video: torch.Tensor,
    teacher_video: torch.Tensor,
    caption_text: torch.Tensor,
    prompt_text: torch.Tensor,
    student_scale: torch.Tensor | float,
    teacher_scale: torch.Tensor | float,
    labels: torch.Tensor | None,
    temperature: float,
) -> dict[str, torch.Tensor]:
    """The three loss terms (module docstring) as scalars: ``con``, ``kl``, ``emb``.

    ``student_video, teacher_video, caption_text [B, D]``, ``prompt_text [C, D]``.
    """
    con = stcl_loss(student_video, caption_text, student_scale, labels)
    t = temperature
    log_p_s = F.log_softmax(similarity_logits(student_video, prompt_text, student_scale) / t, 1)
    log_p_t = F.log_softmax(similarity_logits(teacher_video, prompt_text, teacher_scale) / t, 1)
    kl = F.kl_div(log_p_s, log_p_t, reduction="batchmean", log_target=True) * t * t
    emb = (1.0 - F.cosine_similarity(student_video, teacher_video, dim=-1)).mean()
    return {"con": con, "kl": kl, "emb": emb}


class DistillLoss:
    """``loss_fn(student, batch)`` for :func:`fsve.train.loop.fit` (module docstring).

    The frozen ``teacher`` gives video embeddings and its ``1/τ``; the student's forward gets
    the batch's caption tokens and the class prompts ``prompt_tokens [C, L]`` (one call: DDP).
    """

    def __init__(
        self,
        teacher: nn.Module,
        tokenizer: Any,
        prompt_tokens: torch.Tensor,
        w: DistillWeights,
        targets: torch.Tensor | None = None,
    ) -> None:
        if prompt_tokens.ndim != 2:
            raise ValueError(f"prompt_tokens must be [C, L], got {tuple(prompt_tokens.shape)}")
        if targets is not None and targets.ndim != 3:
            raise ValueError(f"targets must be [N, K, D], got {tuple(targets.shape)}")
        self.teacher, self.tokenizer, self.prompt_tokens, self.w = (
            teacher,
            tokenizer,
            prompt_tokens,
            w,
        )
        self.targets = targets  # teacher_targets(): per train clip, by dataset index

    def __call__(self, model: nn.Module, batch: Mapping[str, Any]) -> torch.Tensor:
        spikes, labels = batch["spikes"], batch["label"]
        b = len(labels)
        length = self.prompt_tokens.shape[-1]
        tokens = self.tokenizer.encode(list(batch["caption"]), length)
        tokens = torch.cat([tokens, self.prompt_tokens]).to(spikes.device)
        visual = getattr(model, "module", model).visual  # DDP wraps the FSVE
        captured: list[torch.Tensor] = []  # final-LIF spikes [T, B, N, C], for L_step only
        hook = (
            visual.final_lif.register_forward_hook(lambda m, a, out: captured.append(out))
            if self.w.steps > 0
            else None
        )
        try:
            video, text, scale = model(spikes, tokens)
        finally:
            if hook is not None:
                hook.remove()
        with torch.no_grad():
            if self.targets is not None:  # computed once per clip, on the unshifted clip
                teacher_blocks = self.targets[batch["index"].cpu()].to(spikes.device)
            else:
                teacher_blocks = teacher_block_embeddings(self.teacher, spikes).float()  # [B, K, D]
            teacher_video = teacher_blocks.mean(dim=1)  # Eq. 5: the teacher's video embedding
            teacher_scale = self.teacher.scale().float()
        terms = distill_terms(
            video.float(),
            teacher_video,
            text[:b].float(),
            text[b:].float(),
            scale.float(),
            teacher_scale,
            labels,
            self.w.temperature,
        )
        loss = (
            self.w.contrastive * terms["con"]
            + self.w.kl * terms["kl"]
            + self.w.embed * terms["emb"]
        )
        if self.w.steps > 0:
            # the student's embedding per time step: proj of that step's firing rates (the
            # video embedding is their mean, proj being affine), against the teacher's output
            # for the same sub-block after its temporal Transformer (5x denser targets)
            per_step = visual.proj(captured[-1].mean(dim=2)).float()  # [T=K, B, D]
            cos = F.cosine_similarity(per_step, teacher_blocks.transpose(0, 1), dim=-1)
            loss = loss + self.w.steps * (1.0 - cos).mean()
        return loss


def teacher_block_embeddings(teacher: nn.Module, spikes: torch.Tensor) -> torch.Tensor:
    """The teacher's per-sub-block outputs ``[B, K, D]`` whose mean is its video embedding."""
    x = teacher.forward_blocks(teacher.forward_features(spikes))
    return teacher.temporal(x) if teacher.temporal is not None else x


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


def _fsve_config_arg(spec: str) -> dict[str, Any]:
    """``--config``: an FSVE preset name or a JSON file of FSVEConfig keys (strict)."""
    from fsve.models.config import FSVE_PRESETS, fsve_config
    from fsve.train.__main__ import read_config_arg

    return read_config_arg(spec, fsve_config, FSVE_PRESETS)


def cmd_distill(args: argparse.Namespace, env: Any) -> int:
    """``distill``: train the FSVE from the frozen teacher (or alone with ``--no-teacher``)."""
    from fsve.checkpoint import load_model
    from fsve.data.dataset import SpikeDataset
    from fsve.data.synth import DEFAULT_PROMPT_TEMPLATE
    from fsve.models.config import config_to_dict, with_vocab_size
    from fsve.models.text import WordTokenizer
    from fsve.train.__main__ import (
        _print,
        check_data,
        check_size,
        evaluator,
        finish,
        resolve_loop,
        resolve_loss_settings,
        resolve_shift,
        task_loss,
        window_for,
    )
    from fsve.train.loop import (
        PROMPT_TEMPLATES,
        RandomShift,
        fit,
        load_resume,
        prompt_bank,
        seed_everything,
    )

    out: Path = args.out
    check_data(args.data)
    resume = load_resume(out, "fsve") if args.resume else None
    if resume is None and (out / "last.pt").exists():
        raise FileExistsError(
            f"{out / 'last.pt'} exists: pass --resume to continue that run, or another --out"
        )
    stored = resume["training"]["run"] if resume is not None else None
    loop = resolve_loop(args, stored, FSVE_RECIPE_OVERRIDES)
    shift = resolve_shift(args, stored)
    # runs stored before the cache existed ran the teacher at every step
    cache_teacher = bool(stored.get("cache_teacher", False)) if stored else not args.live_teacher
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
            if flag is not None and str(flag) != str(saved[name]):
                raise ValueError(
                    f"--resume: {name} {flag} differs from the run in last.pt ({saved[name]})"
                )
        if args.config is not None:
            raise ValueError("--resume takes the model config from last.pt; drop --config")
        weights = DistillWeights(**{"steps": 0.0, **stored["weights"]})
        teacher_path = stored["teacher"]
        no_teacher = bool(stored["no_teacher"])
    else:
        weights = DistillWeights(**given)
        teacher_path = str(args.teacher) if args.teacher is not None else None
        no_teacher = args.no_teacher
    if teacher_path is None and not no_teacher:
        raise ValueError("distill needs --teacher T.pt (or --no-teacher to train the FSVE alone)")

    teacher = None
    if teacher_path is not None:
        teacher, tckpt = load_model(teacher_path, kind="teacher")
        teacher.requires_grad_(False)
        teacher.eval().to(env.device)
    cfg_dict = resume["config"] if resume is not None else _fsve_config_arg(args.config or "tiny")
    cfg = student_config(cfg_dict, teacher.cfg if teacher is not None else None)
    window = window_for(cfg)
    train = SpikeDataset(args.data, "train", window=window)
    val = SpikeDataset(args.data, "val", window=window)
    check_size(train, cfg)
    classes = list(train.class_names)
    if teacher is not None:
        check_size(train, teacher.cfg)
        if (teacher.cfg.num_blocks, teacher.cfg.block_frames) != (cfg.num_blocks, cfg.block_frames):
            raise ValueError("teacher and FSVE configs must share num_blocks and block_frames")
        tokenizer = WordTokenizer.from_dict(tckpt["tokenizer"])
    elif resume is not None:
        tokenizer = WordTokenizer.from_dict(resume["tokenizer"])
    else:
        texts = [*train.captions, *(t.format(c) for t in PROMPT_TEMPLATES for c in classes)]
        tokenizer = WordTokenizer.from_texts(texts)
        cfg = with_vocab_size(cfg, len(tokenizer))

    seed_everything(loop.seed)
    student = build_student(cfg, teacher)
    length = cfg.text.context_length
    if no_teacher:
        bank = prompt_bank(tokenizer, classes, PROMPT_TEMPLATES, length)
        loss_settings = resolve_loss_settings(args, stored)
        loss_fn: Any = task_loss(tokenizer, bank, loss_settings)
    else:
        prompts = tokenizer.encode([DEFAULT_PROMPT_TEMPLATE.format(c) for c in classes], length)
        targets = None
        if cache_teacher:
            targets = teacher_targets(teacher, train, loop.batch_size, env.device, not args.quiet)
        loss_fn = DistillLoss(teacher, tokenizer, prompts, weights, targets)
    trainable = sum(p.numel() for p in student.parameters() if p.requires_grad)
    _print(
        env,
        f"fsve: {trainable / 1e6:.2f} M trainable parameters"
        f" ({'no teacher' if no_teacher else 'distilled from ' + str(teacher_path)}),"
        f" {len(train)} train / {len(val)} val clips, {loop.epochs} epochs of batch"
        f" {loop.batch_size} (lr {loop.lr:g}), {env.world_size} process(es) on {env.device.type}",
    )
    run_info = {
        "recipe": stored.get("recipe") if stored else (args.recipe or "default"),
        "data": str(args.data),
        "teacher": teacher_path,
        "no_teacher": no_teacher,
        "weights": dataclasses.asdict(weights),
        **({"loss": loss_settings} if no_teacher else {}),
        "shift_px": shift,
        "world_size": env.world_size,
        "cache_teacher": cache_teacher,
    }
    eval_prompts = [DEFAULT_PROMPT_TEMPLATE.format(c) for c in classes]
    result = fit(
        student,
        loss_fn,
        train,
        loop,
        out,
        {
            "kind": "fsve",
            "config": config_to_dict(cfg),
            "tokenizer": tokenizer.to_dict(),
            "classes": classes,
        },
        evaluate=evaluator(tokenizer, val, eval_prompts, env, loop.batch_size, "val_"),
        env=env,
        resume=resume,
        run_info=run_info,
        progress=not args.quiet,
        augment=RandomShift(shift) if shift else None,
    )
    finish(env, out, "fsve", args.data, cfg, loop.batch_size, args.workers, result.best)
    return 0


def add_distill_parser(sub: Any, add_common: Any) -> None:
    """Register the ``distill`` subcommand."""
    p = sub.add_parser("distill", help="distil the teacher into the spiking FSVE student")
    add_common(p, "runs/fsve")
    p.add_argument("--teacher", type=Path, default=None, help="teacher checkpoint (.pt)")
    p.add_argument(
        "--no-teacher", action="store_true", help="train the FSVE alone (STCL + class prompts)"
    )
    p.add_argument("--config", default=None, help="tiny | paper | FILE.json of FSVEConfig keys")
    d = DistillWeights()
    p.add_argument("--w-contrastive", type=float, default=None, help=f"a (L_con), {d.contrastive}")
    p.add_argument("--w-kl", type=float, default=None, help=f"b (L_kl), default {d.kl}")
    p.add_argument("--w-embed", type=float, default=None, help=f"c (L_emb), default {d.embed}")
    p.add_argument(
        "--temperature", type=float, default=None, help=f"T of L_kl, default {d.temperature}"
    )
    p.add_argument("--w-steps", type=float, default=None, help=f"d (L_step), default {d.steps}")
    p.add_argument(
        "--live-teacher",
        action="store_true",
        help="run the teacher on every (shifted) batch instead of once per unshifted train clip",
    )
    p.set_defaults(func=cmd_distill)
