"""``python -m fsve.train teacher``: train SPKLIP with STCL (Eq. 6) plus class prompts.

The text targets mix the per-sample captions with class prompts
(:class:`fsve.train.losses.StclPromptLoss`); the tokenizer is built from the train captions and
all the prompts of :data:`fsve.train.losses.PROMPT_TEMPLATES` and stored in the checkpoint.
"""

from __future__ import annotations

import argparse
from typing import Any

from fsve.train.common import (
    W_PROMPT,
    RunStart,
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
from fsve.train.losses import PROMPT_TEMPLATES, prompt_bank
from fsve.train.runfolder import check_config, mismatch
from fsve.train.seeding import seed_everything

__all__ = ["cmd_teacher"]

VOCAB = ("text.vocab_size",)  # set from the tokenizer, not by --config


def cmd_teacher(args: argparse.Namespace, env: DistEnv) -> int:
    """``teacher``: train SPKLIP on ``--data`` into ``--out`` (a new run or ``--resume``)."""
    from fsve.models.teacher import SPKLIP

    start = start_run(args, "teacher")
    cfg, tokenizer, templates, (train, val), classes = _teacher_setup(args, start)
    loop = start.loop
    seed_everything(loop.seed)
    model = SPKLIP(cfg)
    bank = prompt_bank(tokenizer, classes, templates, cfg.text.context_length)
    loss_settings = resolve_loss_settings(args, start.stored)
    loss_fn = task_loss(tokenizer, bank, loss_settings)
    n_params = sum(p.numel() for p in model.parameters())
    print_main(
        env,
        f"teacher: {n_params / 1e6:.2f} M parameters, {len(train)} train / {len(val)} val clips,"
        f" {loop.epochs} epochs of batch {loop.batch_size} (lr {loop.lr:g}, {loop.schedule}),"
        f" {env.world_size} process(es) on {env.device.type}"
        + (f", resuming after epoch {start.resume['training']['epoch']}" if start.resume else ""),
    )
    info = run_info(args, start, env, templates=templates, w_prompt=W_PROMPT, loss=loss_settings)
    meta = {"kind": "teacher", "config": cfg, "tokenizer": tokenizer.to_dict(), "classes": classes}
    train_and_test(model, loss_fn, train, val, tokenizer, meta, info, args, env, start, cfg)
    return 0


def _teacher_setup(args: argparse.Namespace, start: RunStart) -> tuple[Any, ...]:
    """Config, tokenizer, prompt templates, (train, val) splits and class names of the run:
    from ``--config`` and the data for a new run, from ``last.pt`` on resume."""
    from fsve.models.config import teacher_config, with_vocab_size
    from fsve.models.text import WordTokenizer

    resume = start.resume
    if resume is not None:
        if args.config is not None:  # allowed if it is the run's own
            check_config(read_config_arg(args.config), resume["config"], VOCAB)
        cfg = teacher_config(resume["config"])
        tokenizer = WordTokenizer.from_dict(resume["tokenizer"])
        templates = list(start.stored["templates"])
    else:
        cfg = teacher_config(read_config_arg(args.config or "tiny"))
        templates = list(PROMPT_TEMPLATES)
    splits = open_splits(args.data, cfg)
    classes = list(splits[0].class_names)
    if resume is None:
        tokenizer = WordTokenizer.from_texts(
            [*splits[0].captions, *prompt_texts(templates, classes)]
        )
        cfg = with_vocab_size(cfg, len(tokenizer))
    elif list(resume["classes"]) != classes:  # runs stored before the data hash
        raise mismatch("the classes of --data", resume["classes"], classes)
    return cfg, tokenizer, templates, splits, classes
