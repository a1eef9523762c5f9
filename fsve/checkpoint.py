"""The one place that saves and loads checkpoints (ARCHITECTURE.md, "Checkpoint").

A checkpoint is ``torch.save`` of a plain dict::

    {"format": "fsve-checkpoint", "version": 1, "kind": "teacher" | "fsve",
     "config": {...}, "state_dict": {...}, "tokenizer": {...}, "classes": [...],
     "metrics": {...}, "training": {...}}   # "training" only in resumable checkpoints

holding only tensors and plain Python values, so it loads with ``torch.load(...,
weights_only=True)``: a file that smuggles in any other pickled object is refused before that
object is built. The model is rebuilt from ``config`` alone. Saves are atomic (temporary file in
the same folder, fsync, ``os.replace``), so a crash never leaves a half-written checkpoint.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import is_dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fsve.io import atomic_open

FORMAT = "fsve-checkpoint"
VERSION = 1
KINDS = ("teacher", "fsve")
REQUIRED = ("format", "version", "kind", "config", "state_dict")


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used; the message names the file and the problem."""


def save_checkpoint(
    path: str | os.PathLike,
    kind: str,
    config: Mapping[str, Any] | Any,
    state_dict: Mapping[str, torch.Tensor],
    tokenizer: Mapping[str, Any] | None = None,
    classes: list[str] | None = None,
    metrics: Mapping[str, Any] | None = None,
    training: Mapping[str, Any] | None = None,
) -> Path:
    """Write a checkpoint atomically; ``config`` may be a config dataclass or its dict."""
    if kind not in KINDS:
        raise ValueError(f"unknown checkpoint kind {kind!r}; expected one of {list(KINDS)}")
    if is_dataclass(config):
        from fsve.models.config import config_to_dict

        config = config_to_dict(config)
    payload: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "kind": kind,
        "config": dict(config),
        "state_dict": {k: v.detach().cpu() for k, v in state_dict.items()},
        "tokenizer": dict(tokenizer or {}),
        "classes": list(classes or []),
        "metrics": dict(metrics or {}),
    }
    if training is not None:
        payload["training"] = dict(training)
    path = Path(path)
    with atomic_open(path, "wb") as f:
        torch.save(payload, f)
    return path


def load_checkpoint(
    path: str | os.PathLike, kind: str | None = None, map_location: str | torch.device = "cpu"
) -> dict[str, Any]:
    """Load and validate a checkpoint dict with ``weights_only=True``.

    Raises ``FileNotFoundError`` for a missing file and :class:`CheckpointError` (a
    ``ValueError``) for a truncated or corrupt file, a refused pickled object, another format or
    version, or a ``kind`` other than the one asked for.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(
            f"{path}: refused to load: it holds objects other than tensors and plain values"
            f" ({first})"
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(
            f"{path}: not a readable checkpoint, truncated or corrupt ({first})"
        ) from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        found = ckpt.get("format") if isinstance(ckpt, dict) else type(ckpt).__name__
        raise CheckpointError(
            f"{path}: not an fsve checkpoint (format {found!r}, expected {FORMAT!r})"
        )
    if ckpt.get("version") != VERSION:
        raise CheckpointError(
            f"{path}: checkpoint version {ckpt.get('version')!r} is not supported"
            f" (expected {VERSION})"
        )
    missing = [key for key in REQUIRED if key not in ckpt]
    if missing:
        raise CheckpointError(f"{path}: checkpoint lacks {missing}")
    if ckpt["kind"] not in KINDS:
        raise CheckpointError(
            f"{path}: unknown model kind {ckpt['kind']!r}; expected {list(KINDS)}"
        )
    if kind is not None and ckpt["kind"] != kind:
        raise CheckpointError(f"{path}: holds a {ckpt['kind']!r} model, expected {kind!r}")
    return ckpt


def _build_teacher(config: Mapping[str, Any]) -> nn.Module:
    from fsve.models.config import teacher_config
    from fsve.models.teacher import SPKLIP

    return SPKLIP(teacher_config(dict(config)))


def _build_fsve(config: Mapping[str, Any]) -> nn.Module:
    from fsve.models.student import build_fsve

    return build_fsve(dict(config))


BUILDERS: dict[str, Callable[[Mapping[str, Any]], nn.Module]] = {
    "teacher": _build_teacher,
    "fsve": _build_fsve,
}


def build_model(ckpt: Mapping[str, Any], path: str | os.PathLike = "<checkpoint>") -> nn.Module:
    """Rebuild the model of a loaded checkpoint from its config and load its weights (strict)."""
    try:
        model = BUILDERS[ckpt["kind"]](ckpt["config"])
    except (ValueError, TypeError) as err:
        raise CheckpointError(f"{path}: bad model config ({err})") from None
    try:
        model.load_state_dict(ckpt["state_dict"], strict=True)
    except RuntimeError as err:
        first = str(err).strip().splitlines()[0]
        raise CheckpointError(f"{path}: weights do not fit the config ({first})") from None
    return model


def load_model(
    path: str | os.PathLike, kind: str | None = None, map_location: str | torch.device = "cpu"
) -> tuple[nn.Module, dict[str, Any]]:
    """Load a checkpoint and rebuild its model in eval mode: ``(model, checkpoint dict)``."""
    ckpt = load_checkpoint(path, kind=kind, map_location=map_location)
    model = build_model(ckpt, path)
    model.eval()
    return model, ckpt
