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

import math
import os
import pickle
import re
import warnings
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
ZIP_MAGIC = b"PK\x03\x04"  # torch.save's default format is a zip archive
PICKLE_PROTO = 0x80  # the PROTO opcode that starts a legacy torch.save pickle
HDF5_MAGIC = b"\x89HDF"
SAFETY_HINT = r"weights_only|will likely succeed|trusted source|safe_globals"


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
    if path.is_dir():
        raise CheckpointError(f"{path}: is a directory, not a checkpoint file")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint")
    ckpt = _read(path, map_location)
    fmt = ckpt.get("format") if isinstance(ckpt, dict) else None
    if not (isinstance(fmt, str) and fmt == FORMAT):  # values may be tensors (issue 16)
        found = _shown(fmt) if isinstance(ckpt, dict) else repr(type(ckpt).__name__)
        raise CheckpointError(
            f"{path}: not an fsve checkpoint (format {found}, expected {FORMAT!r})"
        )
    version = ckpt.get("version")
    if type(version) is not int or version != VERSION:
        raise CheckpointError(
            f"{path}: checkpoint version {_shown(version)} is not supported (expected {VERSION})"
        )
    missing = [key for key in REQUIRED if key not in ckpt]
    if missing:
        raise CheckpointError(f"{path}: checkpoint lacks {missing}")
    if not isinstance(ckpt["kind"], str) or ckpt["kind"] not in KINDS:
        raise CheckpointError(
            f"{path}: unknown model kind {_shown(ckpt['kind'])}; expected {list(KINDS)}"
        )
    if kind is not None and ckpt["kind"] != kind:
        raise CheckpointError(f"{path}: holds a {ckpt['kind']!r} model, expected {kind!r}")
    check_tensors(ckpt["state_dict"], path)
    return ckpt


def _read(
    path: Path,
    map_location: str | torch.device,
    what: str = "fsve checkpoint",
    short: str = "checkpoint",
) -> Any:
    """``torch.load(path, weights_only=True)`` with every failure as one :class:`CheckpointError`
    that names the file (a ``what``, for short a ``short``) and never suggests turning the
    safety off."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError as err:
        raise CheckpointError(f"{path}: cannot read the {short} ({err.strerror})") from None
    if not head:
        raise CheckpointError(f"{path}: not an {what} (the file is empty)")
    if head.startswith(HDF5_MAGIC):
        raise CheckpointError(f"{path}: not an {what} (an HDF5 file, not a torch .pt)")
    zipped = head.startswith(ZIP_MAGIC)
    if not zipped and head[0] != PICKLE_PROTO:
        raise CheckpointError(
            f"{path}: not an {what} (neither a torch zip archive nor a torch pickle)"
        )
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols on stderr
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        reason = _torch_reason(err)
        if "global" in reason:
            raise CheckpointError(
                f"{path}: refused to load: it holds objects other than tensors and plain values"
                f" ({reason})"
            ) from None
        raise CheckpointError(
            f"{path}: not an {what} (a pickle torch cannot read safely: {reason})"
        ) from None
    except Exception as err:  # any parse failure of a foreign file is one line
        reason = _torch_reason(err)
        if zipped:
            raise CheckpointError(
                f"{path}: not a readable {short}, truncated or corrupt ({reason})"
            ) from None
        raise CheckpointError(f"{path}: not an {what} ({reason})") from None


def load_torch_file(path: str | os.PathLike, what: str) -> Any:
    """What ``torch.save`` wrote to ``path``, read as safely as a checkpoint (tensors and plain
    values only); a missing, foreign, truncated or object-holding file is one
    :class:`CheckpointError` naming the file as ``what`` (e.g. "export.nir host program")."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such {what}")
    return _read(path, "cpu", what, what)


def _torch_reason(err: BaseException) -> str:
    """The cause in one short clause; torch's hints about ``weights_only`` are dropped."""
    text = str(err)
    found = re.search(r"WeightsUnpickler error:\s*([^\n]+)", text)
    line = found.group(1) if found else (text.strip().splitlines() or [""])[0]
    line = re.sub(r"^\[enforce fail at [^\]]*\]\s*\.?\s*", "", line)
    glob = re.match(r"Unsupported global: GLOBAL (\S+)", line)
    if glob:
        return f"pickled global {glob.group(1)} is not allowed"
    sentences = [s for s in line.split(". ") if not re.search(SAFETY_HINT, s)]
    reason = sentences[0].strip().rstrip(".")[:160] if sentences else ""
    if isinstance(err, RuntimeError | pickle.UnpicklingError) and reason:
        return reason
    return f"{type(err).__name__}: {reason}" if reason else type(err).__name__


def check_tensors(state_dict: Any, path: str | os.PathLike = "<checkpoint>") -> None:
    """Every entry of ``state_dict`` is a real tensor with finite values (issue 16, item 3).

    Raises :class:`CheckpointError` naming the first offending tensor, e.g. ``"CKPT: tensor
    'visual.stem.conv.weight' has NaN (12 of 17568 values)"``.
    """
    if not isinstance(state_dict, Mapping):
        raise CheckpointError(f"{path}: state_dict is a {type(state_dict).__name__}, not a dict")
    for name, value in state_dict.items():
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(
                f"{path}: state_dict entry {name!r} is a {type(value).__name__}, not a tensor"
            )
        if value.is_complex():
            raise CheckpointError(f"{path}: tensor {name!r} is complex ({value.dtype})")
        if not value.is_floating_point():
            continue
        nan, inf = int(torch.isnan(value).sum()), int(torch.isinf(value).sum())
        bad = [
            f"{label} ({n} of {value.numel()} values)"
            for label, n in (("NaN", nan), ("Inf", inf))
            if n
        ]
        if bad:
            raise CheckpointError(f"{path}: tensor {name!r} has {' and '.join(bad)}")


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


# Sane bounds of the config values that no stored tensor shape pins down (frame size, clip
# length) or that multiply the modules to build (depths); each entry of a list is bounded.
CONFIG_LIMITS = {
    "height": 4096,
    "width": 4096,
    "num_blocks": 1024,
    "block_frames": 4096,
    "block_step": 4096,
    "context_length": 4096,
    "layers": 256,
    "temporal_layers": 256,
    "attn_depth": 256,
}


def _check_bounds(config: Any, path: str | os.PathLike, prefix: str = "") -> None:
    if not isinstance(config, Mapping):
        return
    for key, value in config.items():
        if isinstance(value, Mapping):
            _check_bounds(value, path, f"{prefix}{key}.")
            continue
        limit = CONFIG_LIMITS.get(key)
        items = value if isinstance(value, list | tuple) else [value]
        if limit is not None and any(isinstance(v, int) and v > limit for v in items):
            raise CheckpointError(
                f"{path}: config {prefix}{key}={value!r} is beyond the sane bound {limit};"
                " refusing to build the model"
            )


def check_config(ckpt: Mapping[str, Any], path: str | os.PathLike = "<checkpoint>") -> None:
    """Check a loaded checkpoint's config before any module is built (issue 16, item 4).

    The config must respect :data:`CONFIG_LIMITS`, and every tensor shape it implies must equal
    the stored one: the model is built on the ``meta`` device (shapes only, nothing allocated)
    and its state dict compared with the checkpoint's. Raises :class:`CheckpointError`.
    """
    _check_bounds(ckpt["config"], path)
    try:
        with torch.device("meta"):
            shell = BUILDERS[ckpt["kind"]](ckpt["config"])
    except (ValueError, TypeError) as err:
        raise CheckpointError(f"{path}: bad model config ({_one_line(err)})") from None
    implied = {k: tuple(v.shape) for k, v in shell.state_dict().items()}
    stored = {k: tuple(v.shape) for k, v in ckpt["state_dict"].items()}
    if implied == stored:
        return
    wrong = [k for k in implied if k in stored and implied[k] != stored[k]]
    missing = [k for k in implied if k not in stored]
    extra = [k for k in stored if k not in implied]
    if wrong:
        k = wrong[0]
        detail = f"tensor {k!r} is {list(stored[k])} in the file, {list(implied[k])} by the config"
    elif missing:
        detail = f"the config needs {len(missing)} tensors the file lacks, e.g. {missing[0]!r}"
    else:
        detail = f"the file holds {len(extra)} tensors the config has no place for: {extra[0]!r}"
    raise CheckpointError(
        f"{path}: the config does not fit the stored weights ({_count(implied)} parameters"
        f" implied, {_count(stored)} stored): {detail}; the model was not built"
    )


def _shown(value: Any) -> str:
    """A stored value for a message: its repr on one line, at most 60 characters."""
    return " ".join(repr(value).split())[:60]


def _one_line(err: BaseException) -> str:
    """``err`` as one short line (a tensor's repr in a message spans lines)."""
    return " ".join(str(err).split())[:200] or type(err).__name__


def _count(shapes: Mapping[str, tuple[int, ...]]) -> str:
    n = sum(math.prod(shape) for shape in shapes.values())
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return str(n)


def build_model(ckpt: Mapping[str, Any], path: str | os.PathLike = "<checkpoint>") -> nn.Module:
    """Rebuild the model of a loaded checkpoint from its config and load its weights (strict).

    The config is checked first (:func:`check_config`), so a config that does not fit the
    stored weights is refused before anything is allocated.
    """
    check_config(ckpt, path)
    try:
        model = BUILDERS[ckpt["kind"]](ckpt["config"])
    except (ValueError, TypeError) as err:
        raise CheckpointError(f"{path}: bad model config ({_one_line(err)})") from None
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
