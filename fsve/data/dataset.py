"""Torch datasets over dataset folders, and the temporal sub-blocks of paper Eq. 2.

A sample is the spike stream ``[N, H, W]`` or, by default, the K overlapping sub-blocks
``B_i = S[t_i - r : t_i + r + 1]`` (Eq. 2) as a bool tensor ``[K, 2r+1, H, W]``, with the block
centres ``t_i`` spaced ``step`` apart and centred in the clip. Only the frames the blocks cover
are read from disk.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from fsve.data.dat import read_dat
from fsve.data.manifest import SPLITS, read_manifest


@dataclass(frozen=True)
class WindowSpec:
    """Sub-block layout of Eq. 2: ``num_blocks`` windows of ``2*radius+1`` frames."""

    num_blocks: int = 5  # K
    radius: int = 30  # r_win, frames
    step: int = 45  # distance between block centres, frames

    def __post_init__(self) -> None:
        if self.num_blocks < 1 or self.radius < 0 or self.step < 1:
            raise ValueError(
                f"window spec needs num_blocks >= 1, radius >= 0, step >= 1, got {self}"
            )

    @property
    def block_frames(self) -> int:
        """Frames per sub-block, ``2r + 1``."""
        return 2 * self.radius + 1

    @property
    def span(self) -> int:
        """Frames covered from the first block's start to the last block's end."""
        return (self.num_blocks - 1) * self.step + self.block_frames

    def centres(self, n_frames: int) -> list[int]:
        """Block centres ``t_i``, centred in a clip of ``n_frames``; raises if they don't fit."""
        if n_frames < self.span:
            raise ValueError(
                f"a clip of {n_frames} frames is too short for {self.num_blocks} sub-blocks of"
                f" radius {self.radius} and step {self.step}: they need {self.span} frames"
            )
        first = (n_frames - self.span) // 2 + self.radius
        return [first + i * self.step for i in range(self.num_blocks)]

    def frame_range(self, n_frames: int) -> tuple[int, int]:
        """``[start, stop)`` of the frames the blocks cover."""
        centres = self.centres(n_frames)
        return centres[0] - self.radius, centres[-1] + self.radius + 1


def window_of(cfg: object) -> WindowSpec:
    """The sub-block layout a model config expects: ``num_blocks`` blocks of ``block_frames``
    frames, ``block_step`` apart (45 for configs without that field, such as the FSVE's)."""
    return WindowSpec(
        num_blocks=int(cfg.num_blocks),  # type: ignore[attr-defined]
        radius=int(cfg.block_frames) // 2,  # type: ignore[attr-defined]
        step=int(getattr(cfg, "block_step", WindowSpec.step)),
    )


def sub_blocks(spikes: np.ndarray, spec: WindowSpec = WindowSpec()) -> np.ndarray:
    """Spike stream ``[N, H, W]`` -> sub-blocks ``[K, 2r+1, H, W]`` (Eq. 2), a copy."""
    spikes = np.asarray(spikes)
    if spikes.ndim != 3:
        raise ValueError(f"spikes must be [N, H, W], got shape {spikes.shape}")
    return np.stack(
        [spikes[c - spec.radius : c + spec.radius + 1] for c in spec.centres(len(spikes))]
    )


class SpikeDataset(Dataset):
    """Samples of one split of a dataset folder (``manifest.csv`` + ``.dat`` files).

    Each item is a dict: ``spikes`` (bool tensor, ``[K, 2r+1, H, W]`` in ``"blocks"`` mode or
    ``[N, H, W]`` in ``"stream"`` mode), ``caption`` (str), ``label`` (int), ``index`` (int,
    row in the split). ``class_names[label]`` names the classes of the whole dataset.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "train",
        mode: str = "blocks",
        window: WindowSpec = WindowSpec(),
    ) -> None:
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; expected one of {list(SPLITS)}")
        if mode not in ("blocks", "stream"):
            raise ValueError(f"unknown mode {mode!r}; expected 'blocks' or 'stream'")
        self.root = Path(root)
        table = read_manifest(self.root)
        names = table.drop_duplicates("label").sort_values("label")
        self.class_names: list[str] = [""] * (int(table["label"].max()) + 1)
        for label, name in zip(names["label"], names["class_name"], strict=True):
            self.class_names[int(label)] = str(name)
        self.table = table[table["split"] == split].reset_index(drop=True)
        if self.table.empty:
            raise ValueError(f"{self.root / 'manifest.csv'}: split {split!r} has no samples")
        self.split, self.mode, self.window = split, mode, window
        if mode == "blocks":
            short = self.table["frames"] < window.span
            if short.any():
                row = self.table[short].iloc[0]
                raise ValueError(
                    f"{row['file']}: {row['frames']} frames, but {window.num_blocks} sub-blocks"
                    f" of radius {window.radius} and step {window.step} need {window.span}"
                )

    def __len__(self) -> int:
        return len(self.table)

    @property
    def labels(self) -> list[int]:
        return [int(x) for x in self.table["label"]]

    @property
    def captions(self) -> list[str]:
        return [str(x) for x in self.table["caption"]]

    def __getitem__(self, index: int) -> dict[str, object]:
        row = self.table.iloc[index]
        h, w, n = int(row["height"]), int(row["width"]), int(row["frames"])
        if self.mode == "stream":
            spikes = read_dat(row["file"], h, w)
        else:
            start, stop = self.window.frame_range(n)
            stream = read_dat(row["file"], h, w, start, stop)
            centres = [c - start for c in self.window.centres(n)]
            r = self.window.radius
            spikes = np.stack([stream[c - r : c + r + 1] for c in centres])
        return {
            "spikes": torch.from_numpy(spikes),
            "caption": str(row["caption"]),
            "label": int(row["label"]),
            "index": int(index),
        }


def collate(items: Sequence[dict[str, object]]) -> dict[str, object]:
    """Batch dataset items: ``spikes [B, ...]`` bool, ``label [B]`` long, lists of captions."""
    if not items:
        raise ValueError("cannot collate an empty batch")
    shapes = {tuple(item["spikes"].shape) for item in items}
    if len(shapes) > 1:
        raise ValueError(f"samples in a batch must share a shape, got {sorted(shapes)}")
    return {
        "spikes": torch.stack([item["spikes"] for item in items]),
        "caption": [item["caption"] for item in items],
        "label": torch.tensor([item["label"] for item in items], dtype=torch.long),
        "index": torch.tensor([item["index"] for item in items], dtype=torch.long),
    }
