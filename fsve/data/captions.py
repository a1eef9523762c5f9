"""What the captions of the built-in dataset say, and the retrieval ceiling that follows.

A caption states a few attributes of its clip (:class:`~fsve.data.synth.CaptionSignature`):
class, shape, size, brightness and speed bins, background, position cell, and sometimes
sensor noise. Several clips of a split can fit everything one caption states; from the
caption alone no model can tell them apart, so a perfect text-to-video model ranks those ``n``
clips first in some order and, taking that order at random, finds the right one in its top
``k`` with probability ``min(1, k / n)``. :func:`retrieval_ceiling` averages that over the
captions of a split: the best R@k (Table 5) this dataset allows.

The signatures are re-drawn from each sample's seed (:func:`fsve.data.synth.sample_seed`)
without rendering any spikes, so this takes well under a second per split at the default size.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fsve.data.manifest import MANIFEST_NAME, SPLITS, read_manifest
from fsve.data.synth import (
    CLASSES,
    CONFIG_NAME,
    CaptionSignature,
    Plan,
    SynthConfig,
    plan_sample,
    read_config,
    sample_path,
    sample_seed,
)

__all__ = [
    "RetrievalCeiling",
    "caption_signature",
    "ceiling_counts",
    "ceiling_recall",
    "clip_attributes",
    "retrieval_ceiling",
    "split_signatures",
]

KS = (1, 5, 10)


def _draw(config: SynthConfig, split: str, cls_index: int, index: int) -> Plan:
    return plan_sample(
        cls_index, np.random.default_rng(sample_seed(config, split, cls_index, index)), config
    )


def caption_signature(
    config: SynthConfig, split: str, cls_index: int, index: int
) -> CaptionSignature:
    """What the caption of sample ``index`` of class ``cls_index`` in ``split`` states."""
    return _draw(config, split, cls_index, index).signature


def clip_attributes(
    config: SynthConfig, split: str, cls_index: int, index: int
) -> CaptionSignature:
    """The same fields for the clip itself: ``noise`` is whether it is noisy enough to say so."""
    plan = _draw(config, split, cls_index, index)
    return plan.signature._replace(noise=plan.noisy)


def split_signatures(
    config: SynthConfig, split: str
) -> tuple[list[str], list[str], list[CaptionSignature], list[CaptionSignature]]:
    """Paths, captions, caption signatures and clip attributes of a split, in manifest order."""
    paths, captions, stated, actual = [], [], [], []
    for i in range(config.per_class(split)):
        for c in range(len(CLASSES)):
            plan = _draw(config, split, c, i)
            paths.append(sample_path(split, c, i))
            captions.append(plan.caption)
            stated.append(plan.signature)
            actual.append(plan.signature._replace(noise=plan.noisy))
    return paths, captions, stated, actual


def ceiling_counts(
    queries: Sequence[CaptionSignature], clips: Sequence[CaptionSignature]
) -> np.ndarray:
    """For caption ``i`` (``queries[i]``, describing ``clips[i]``), how many clips it fits.

    A clip fits when it has every attribute the caption states (:meth:`CaptionSignature.fits`);
    unstated noise fits either way. Raises ``ValueError`` if a caption does not fit its own clip.
    """
    if len(queries) != len(clips):
        raise ValueError(f"{len(queries)} captions but {len(clips)} clips; one caption per clip")
    by_noise = Counter((tuple(c[:-1]), c.noise) for c in clips)
    total = Counter(tuple(c[:-1]) for c in clips)
    counts = np.empty(len(queries), dtype=np.int64)
    for i, (query, clip) in enumerate(zip(queries, clips, strict=True)):
        if not query.fits(clip):
            raise ValueError(f"caption {i} ({query}) does not fit its own clip ({clip})")
        key = tuple(query[:-1])
        counts[i] = total[key] if query.noise is None else by_noise[key, query.noise]
    return counts


def ceiling_recall(counts: Sequence[int] | np.ndarray, ks: Sequence[int] = KS) -> dict[int, float]:
    """Expected R@k in % of a perfect model, given how many clips each caption fits.

    The ``n`` clips a caption fits are ranked first in random order, so its clip is in the top
    ``k`` with probability ``min(1, k / n)``; the mean over captions, times 100.
    """
    n = np.asarray(counts, dtype=np.float64)
    if n.size == 0 or (n < 1).any():
        raise ValueError("need at least one caption, each fitting at least its own clip")
    return {int(k): float(100.0 * np.minimum(1.0, k / n).mean()) for k in ks}


@dataclass(frozen=True)
class RetrievalCeiling:
    """Per caption of a split: how many clips fit it; and the R@k a perfect model reaches."""

    split: str
    paths: list[str]
    captions: list[str]
    counts: np.ndarray  # [captions] clips of the split that fit each caption (>= 1)
    recall: dict[int, float]  # k -> expected R@k in %

    @property
    def mean_count(self) -> float:
        return float(self.counts.mean())

    @property
    def max_count(self) -> int:
        return int(self.counts.max())

    @property
    def unique(self) -> float:
        """Share of captions that fit their own clip only."""
        return float((self.counts == 1).mean())

    def summary(self) -> str:
        """One line: ``test: 120 captions fit 1.05 clips on average (max 3) ...``."""
        ks = "/".join(str(k) for k in self.recall)
        values = " / ".join(f"{v:.1f}" for v in self.recall.values())
        return (
            f"{self.split}: {len(self.counts)} captions fit {self.mean_count:.2f} clips on"
            f" average (max {self.max_count}, {100 * self.unique:.0f}% only their own);"
            f" perfect-model R@{ks} {values}%"
        )


def retrieval_ceiling(
    folder: str | os.PathLike, split: str = "test", ks: Sequence[int] = KS
) -> RetrievalCeiling:
    """The retrieval ceiling of one split of a dataset folder written by the generator.

    Reads ``synth_config.json`` (:func:`fsve.data.synth.read_config`: a folder of another
    generator version is refused) and re-draws each sample's caption plan. The manifest's
    captions of the split must be the ones re-drawn (a one-line ``ValueError`` names the first
    row that differs), so the figures describe the captions a model is evaluated on.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    folder = Path(folder)
    config = read_config(folder)
    paths, captions, stated, actual = split_signatures(config, split)
    table = read_manifest(folder, check_files=False)
    rows = table[table["split"] == split]
    stored = dict(zip(rows["path"], rows["caption"], strict=True))
    expected = dict(zip(paths, captions, strict=True))
    if stored.keys() != expected.keys():
        missing = sorted(expected.keys() - stored.keys()) or sorted(stored.keys() - expected.keys())
        raise ValueError(
            f"{folder / MANIFEST_NAME}: the {split} rows are not those of {CONFIG_NAME}"
            f" (first odd path {missing[0]})"
        )
    for row, (path, caption) in zip(rows.index, stored.items(), strict=True):
        if caption != expected[path]:
            raise ValueError(
                f"{folder / MANIFEST_NAME}: row {row + 2}: caption of {path} differs from the"
                " generator's; the manifest was edited or written by other code"
            )
    counts = ceiling_counts(stated, actual)
    return RetrievalCeiling(split, paths, captions, counts, ceiling_recall(counts, ks))
