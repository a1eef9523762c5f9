"""``profile_checkpoint``: the energy table of a checkpoint on a dataset split, the pipeline of
``python -m energy.profile``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from energy.costs import CostModel, load_costs
from energy.profile.model import profile_model
from energy.report import EnergyReport
from fsve.cli import UsageError, open_dataset

__all__ = ["profile_checkpoint"]


def profile_checkpoint(
    checkpoint: str | os.PathLike,
    *,
    data: str | os.PathLike = "data/synth",
    split: str = "test",
    samples: int | None = None,
    costs: str | os.PathLike | CostModel | None = None,
    convention: str = "simple",
    norm: str = "fold",
    baseline: str = "twin",
    batch_size: int = 1,
    device: str = "cpu",
    progress: bool = False,
) -> EnergyReport:
    """Profile an FSVE or SPKLIP checkpoint on the first ``samples`` clips (None: all) of a
    dataset split, per inference (:func:`~energy.profile.profile_model`).

    ``baseline``: ``"twin"`` (the same network run densely) or ``"teacher:CKPT"`` (an SPKLIP
    teacher with the same input, for an FSVE checkpoint). ``costs=None``: ``paper``, or
    ``horowitz45`` under ``sdt`` (:func:`~energy.conventions.default_costs`). ``progress``: a
    tqdm bar on stderr. The report's ``checkpoint_kind`` says which kind of checkpoint it was.
    Raises :class:`~fsve.cli.UsageError` (a ``ValueError``, one line) for a missing or corrupt
    checkpoint, an unknown cost preset, a bad baseline, or data that does not fit.
    """
    import torch
    from torch.utils.data import DataLoader, Subset

    from fsve.checkpoint import CheckpointError
    from fsve.data.dataset import collate

    checkpoint, data = Path(checkpoint), Path(data)
    from energy.conventions import default_costs

    try:
        cost = load_costs(default_costs(convention) if costs is None else costs)
    except ValueError as err:
        raise UsageError(str(err)) from None
    if device == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA device is available")
    if baseline != "twin" and not baseline.startswith("teacher:"):
        raise UsageError(f"--baseline must be 'twin' or 'teacher:CKPT', got {baseline!r}")
    try:
        model, ckpt = _load(checkpoint)
        spec = _input_spec(ckpt, checkpoint)
        base = _teacher(baseline, ckpt, spec, device) if baseline != "twin" else "twin"
    except CheckpointError as err:
        raise UsageError(str(err)) from None
    ds = _dataset(data, split, spec)
    n = len(ds) if samples is None else min(samples, len(ds))
    loader = DataLoader(Subset(ds, range(n)), batch_size=batch_size, collate_fn=collate)
    model.to(device)
    report = profile_model(
        model,
        loader,
        costs=cost,
        convention=convention,
        baseline=base,
        norm=norm,
        progress=_progress_bar(n) if progress else None,
    )
    if not isinstance(base, str):
        report.baseline = baseline
        report.summary["baseline"] = baseline
    report.checkpoint_kind = ckpt["kind"]
    return report


def _load(path: Path, kind: str | None = None):
    from fsve.checkpoint import load_model

    try:
        return load_model(path, kind=kind)
    except FileNotFoundError as err:
        raise UsageError(str(err)) from None


def _input_spec(ckpt: dict, path: Path) -> tuple[int, int, int, int, int]:
    """``(blocks, frames, height, width, step)`` of the clips the checkpoint takes."""
    cfg = ckpt["config"]
    try:
        return (
            int(cfg.get("num_blocks", 5)),
            int(cfg.get("block_frames", 61)),
            int(cfg["height"]),
            int(cfg["width"]),
            int(cfg.get("block_step", 45)),
        )
    except (KeyError, TypeError, ValueError):
        raise UsageError(f"{path}: config lacks the input size (height, width)") from None


def _teacher(baseline: str, ckpt: dict, spec: tuple[int, ...], device: str) -> Any:
    """The teacher of ``teacher:CKPT``, checked to take the same clips as the checkpoint."""
    if ckpt["kind"] != "fsve":
        raise UsageError("--baseline teacher:CKPT compares an FSVE checkpoint")
    teacher_path = Path(baseline.split(":", 1)[1])
    teacher, tckpt = _load(teacher_path, kind="teacher")
    if _input_spec(tckpt, teacher_path) != spec:
        raise UsageError(
            f"{teacher_path}: teacher input {_input_spec(tckpt, teacher_path)} differs "
            f"from the checkpoint's {spec} (blocks, frames, height, width, step)"
        )
    return teacher.to(device)


def _dataset(data: Path, split: str, spec: tuple[int, int, int, int, int]) -> Any:
    from fsve.data.dataset import WindowSpec

    blocks, frames, height, width, step = spec
    try:
        window = WindowSpec(num_blocks=blocks, radius=frames // 2, step=step)
    except ValueError as err:
        raise UsageError(f"{data}: {err}") from None
    return open_dataset(data, split, window, (height, width))


def _progress_bar(total: int):
    """A wrapper of the batch iterable that advances a tqdm bar by each batch's samples."""
    from tqdm import tqdm

    def progress(items):
        bar = tqdm(total=total, desc="energy", unit="sample")
        for item in items:
            yield item
            bar.update(len(item["spikes"]))  # after the batch was profiled
        bar.close()

    return progress
