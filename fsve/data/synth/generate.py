"""Writing the built-in dataset to a folder (:func:`generate_dataset`) and reading back the
configuration it was generated with (:func:`read_config`).

:func:`check_size` refuses, before anything is allocated or written, a dataset larger than
``max_gb`` on disk (:data:`MAX_DATASET_GB` unless raised) or whose clips need more than
:data:`MAX_WORKER_GB` of memory each to render (issue 16, item 4).
"""

from __future__ import annotations

import json
import os
import re
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from tqdm import tqdm

from fsve.data.dat import DatWriter, frame_bytes
from fsve.data.manifest import MANIFEST_NAME, SPLITS, read_manifest, write_manifest
from fsve.data.synth.plan import plan_sample
from fsve.data.synth.render import spike_chunks
from fsve.data.synth.spec import CLASSES, CONFIG_NAME, DOMAINS, GENERATOR_VERSION, SynthConfig
from fsve.io import atomic_write_text

__all__ = [
    "MAX_DATASET_GB",
    "MAX_WORKER_GB",
    "check_size",
    "dataset_bytes",
    "generate_dataset",
    "read_config",
    "render_bytes",
    "sample_path",
    "sample_seed",
]

MAX_DATASET_GB = 20.0  # default cap on the files one call writes (the default set: 0.09 GB)
MAX_WORKER_GB = 4.0  # cap on one clip's render memory: 40 M frames, or ~8000x8000 pixels
TRAJECTORY_BYTES = 100  # per frame: trajectory arrays (float64 draws and float32 copies)
PIXEL_BYTES = 64  # per pixel: background draw and one frame's render temporaries

_Job = tuple[Path, SynthConfig, str, int, int]  # folder, config, split, class index, index


def sample_seed(
    config: SynthConfig, split: str, cls_index: int, index: int
) -> np.random.SeedSequence:
    """The seed of sample ``index`` of class ``cls_index`` in ``split`` of a dataset."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    if not 0 <= cls_index < len(CLASSES) or index < 0:
        raise ValueError(f"bad class index {cls_index} or sample index {index}")
    key = [config.seed, DOMAINS.index(config.domain), SPLITS.index(split), cls_index, index]
    return np.random.SeedSequence(key)


def sample_path(split: str, cls_index: int, index: int) -> str:
    """Relative path of a sample in a generated dataset, ``"train/drift_left_0003.dat"``."""
    return f"{split}/{CLASSES[cls_index].key}_{index:04d}.dat"


def dataset_bytes(config: SynthConfig) -> int:
    """Bytes of ``.dat`` files a dataset of ``config`` holds (every split, every class)."""
    clips = len(CLASSES) * sum(config.per_class(split) for split in SPLITS)
    return clips * config.frames * frame_bytes(config.height, config.width)


def render_bytes(config: SynthConfig) -> int:
    """Rough peak memory of rendering one clip of ``config`` (one worker), in bytes."""
    pixels = config.height * config.width
    return TRAJECTORY_BYTES * config.frames + PIXEL_BYTES * pixels


def _gb(n_bytes: float) -> str:
    gb = n_bytes / 1e9
    return f"{gb:,.0f}" if gb >= 100 else f"{gb:.3g}"


def check_size(config: SynthConfig, max_gb: float = MAX_DATASET_GB) -> None:
    """Raise a one-line ``ValueError`` with the estimate if ``config`` is too large to make."""
    if not max_gb > 0:
        raise ValueError(f"max_gb must be > 0, got {max_gb!r}")
    size = f"{config.height}x{config.width}"
    clips = len(CLASSES) * sum(config.per_class(split) for split in SPLITS)
    total = dataset_bytes(config)
    if total > max_gb * 1e9:
        raise ValueError(
            f"{clips} clips of {config.frames} frames at {size} would write ~{_gb(total)} GB,"
            f" more than the limit of {max_gb:g} GB (raise it with --max-gb if you mean it)"
        )
    work = render_bytes(config)
    if work > MAX_WORKER_GB * 1e9:
        raise ValueError(
            f"rendering one clip of {config.frames} frames at {size} would need ~{_gb(work)} GB"
            f" of memory, more than {MAX_WORKER_GB:g} GB; use a smaller size or fewer frames"
        )


def _write_sample(job: _Job) -> str:
    """Write one sample's ``.dat`` file; its caption."""
    folder, config, split, cls_index, index = job
    plan = plan_sample(
        cls_index, np.random.default_rng(sample_seed(config, split, cls_index, index)), config
    )
    with DatWriter(
        folder / sample_path(split, cls_index, index), config.height, config.width
    ) as writer:
        for spikes in spike_chunks(plan, config):
            writer.write(spikes)
    return plan.caption


def _stored_config(folder: Path) -> dict[str, object] | None:
    try:
        return json.loads((folder / CONFIG_NAME).read_text())
    except (OSError, ValueError):
        return None


def _config_record(config: SynthConfig) -> dict[str, object]:
    return {"generator": "fsve.data.synth", "version": GENERATOR_VERSION, **config.to_dict()}


def read_config(folder: str | os.PathLike) -> SynthConfig:
    """The :class:`SynthConfig` stored in a generated dataset folder's ``synth_config.json``.

    Raises ``FileNotFoundError`` without the file and a one-line ``ValueError`` naming it when
    it is unreadable, was not written by this generator, or holds another
    :data:`GENERATOR_VERSION` (its captions, so anything derived from them, would differ).
    """
    path = Path(folder) / CONFIG_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no {CONFIG_NAME}; not a generated synthetic dataset")
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ValueError(f"{path}: unreadable ({err})") from None
    if not isinstance(record, dict) or record.get("generator") != "fsve.data.synth":
        raise ValueError(f"{path}: not written by fsve.data.synth")
    version = record.get("version")
    if version != GENERATOR_VERSION:
        raise ValueError(
            f"{path}: generator version {version}, this code is version {GENERATOR_VERSION};"
            " regenerate the folder with python -m fsve.data synth"
        )
    try:
        return SynthConfig.from_dict(
            {k: v for k, v in record.items() if k not in ("generator", "version")}
        )
    except (TypeError, ValueError) as err:
        raise ValueError(f"{path}: {err}") from None


_SAMPLE_NAME = re.compile(r"[a-z_]+_\d{4,}\.dat")


def generate_dataset(
    out_dir: str | os.PathLike,
    config: SynthConfig | None = None,
    progress: bool = True,
    overwrite: bool = False,
    workers: int = 1,
    max_gb: float = MAX_DATASET_GB,
) -> Path:
    """Write the dataset to ``out_dir`` and return ``out_dir`` as a :class:`~pathlib.Path`.

    Layout: ``<split>/<class key>_<index>.dat`` (SpikeCV layout), ``manifest.csv`` and
    ``synth_config.json``; every split holds the same number of samples per class. If the folder
    already holds a complete dataset of the same configuration (every file present) this returns
    at once, unless ``overwrite``; any other configuration is regenerated in place, dropping
    stale sample files. A folder with a manifest that this generator did not write (e.g. real data)
    is never overwritten without ``overwrite=True``. ``workers > 1`` renders in processes;
    the files are byte-identical whatever the worker count. A dataset over ``max_gb`` or too
    large to render is refused first (:func:`check_size`).
    """
    config = config or SynthConfig()
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    check_size(config, max_gb)
    folder = Path(out_dir)
    record = _config_record(config)
    if not overwrite and _is_complete(folder, record):
        return folder
    # The folder is incomplete until the end: an interrupted run leaves neither file behind.
    (folder / CONFIG_NAME).unlink(missing_ok=True)
    (folder / MANIFEST_NAME).unlink(missing_ok=True)

    jobs = [
        (folder, config, split, c, i)
        for split in SPLITS
        for i in range(config.per_class(split))
        for c in range(len(CLASSES))
    ]
    captions = _write_samples(jobs, workers, progress)
    rows = [
        {
            "path": sample_path(split, c, i),
            "split": split,
            "label": c,
            "class_name": CLASSES[c].name,
            "caption": caption,
            "height": config.height,
            "width": config.width,
            "frames": config.frames,
        }
        for (_, _, split, c, i), caption in zip(jobs, captions, strict=True)
    ]
    _drop_stale_samples(folder, {row["path"] for row in rows})
    write_manifest(folder, rows)
    atomic_write_text(folder / CONFIG_NAME, json.dumps(record, indent=2, sort_keys=True) + "\n")
    return folder


def _is_complete(folder: Path, record: dict[str, object]) -> bool:
    """Whether ``folder`` holds a complete dataset of ``record``'s configuration (every file
    present with the right size); refuses a manifest this generator did not write."""
    manifest = folder / MANIFEST_NAME
    if not manifest.is_file():
        return False
    stored = _stored_config(folder)
    if stored == record:
        try:
            read_manifest(folder)
            return True
        except (OSError, ValueError):
            return False
    if stored is None:
        raise FileExistsError(
            f"{manifest} exists but was not written by the synthetic generator (no"
            f" {CONFIG_NAME}); pass overwrite=True to replace it"
        )
    return False


def _write_samples(jobs: list[_Job], workers: int, progress: bool) -> list[str]:
    """Write every job's ``.dat`` file (in ``workers`` processes); their captions, in order."""
    captions = []
    bar = tqdm(total=len(jobs), desc="synthetic dataset", unit="clip", disable=not progress)
    try:
        if workers == 1:
            for job in jobs:
                captions.append(_write_sample(job))
                bar.update()
        else:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                for caption in pool.map(_write_sample, jobs, chunksize=4):
                    captions.append(caption)
                    bar.update()
    finally:
        bar.close()
    return captions


def _drop_stale_samples(folder: Path, keep: set[str]) -> None:
    """Delete sample files of an earlier, larger configuration (paths not in ``keep``)."""
    for split in SPLITS:
        split_dir = folder / split
        if split_dir.is_dir():
            for file in split_dir.iterdir():
                if _SAMPLE_NAME.fullmatch(file.name) and f"{split}/{file.name}" not in keep:
                    file.unlink()
