"""Manifest validation, sub-block windows (Eq. 2) and the torch dataset."""

import numpy as np
import pytest
import torch

from fsve.data.dat import write_dat
from fsve.data.dataset import SpikeDataset, WindowSpec, collate, sub_blocks
from fsve.data.manifest import read_manifest, write_manifest


def make_folder(root, frames=250, h=8, w=8, per_split=2):
    """A hand-made dataset: frame t of every sample has pixel (0, 0) = t % 2, label-coded."""
    rows = []
    rng = np.random.default_rng(0)
    for split in ("train", "val", "test"):
        for label, name in enumerate(["left", "right"]):
            for i in range(per_split):
                spikes = rng.random((frames, h, w)) < 0.1
                rel = f"{split}/{name}_{i}.dat"
                write_dat(root / rel, spikes)
                rows.append(
                    dict(
                        path=rel,
                        split=split,
                        label=label,
                        class_name=name,
                        caption=f"{name} {i}",
                        height=h,
                        width=w,
                        frames=frames,
                    )
                )
    write_manifest(root, rows)
    return rows


def test_window_centres_default_layout():
    spec = WindowSpec()  # K=5, r=30, step=45: span 4*45 + 61 = 241 frames
    assert spec.span == 241
    assert spec.centres(250) == [34, 79, 124, 169, 214]  # first = (250-241)//2 + 30
    assert spec.frame_range(250) == (4, 245)
    with pytest.raises(ValueError, match="240 frames is too short.*need 241"):
        spec.centres(240)


def test_sub_blocks_are_eq2_slices():
    stream = np.arange(250)[:, None, None] * np.ones((1, 2, 4), dtype=np.int64)
    blocks = sub_blocks(stream, WindowSpec(num_blocks=3, radius=2, step=10))
    assert blocks.shape == (3, 5, 2, 4)
    # span = 2*10 + 5 = 25, first centre = (250-25)//2 + 2 = 114
    assert blocks[:, :, 0, 0].tolist() == [
        [112, 113, 114, 115, 116],
        [122, 123, 124, 125, 126],
        [132, 133, 134, 135, 136],
    ]


def test_dataset_items_match_file_and_collate(tmp_path):
    make_folder(tmp_path)
    ds = SpikeDataset(tmp_path, "train")
    assert len(ds) == 4 and ds.class_names == ["left", "right"]
    item = ds[3]
    assert item["spikes"].dtype == torch.bool and item["spikes"].shape == (5, 61, 8, 8)
    from fsve.data.dat import read_dat

    full = read_dat(tmp_path / ds.table["path"][3], 8, 8)
    np.testing.assert_array_equal(item["spikes"].numpy(), sub_blocks(full))
    assert item["caption"] == "right 1" and item["label"] == 1
    batch = collate([ds[0], ds[3]])
    assert batch["spikes"].shape == (2, 5, 61, 8, 8)
    assert batch["label"].tolist() == [0, 1] and batch["caption"] == ["left 0", "right 1"]
    stream = SpikeDataset(tmp_path, "test", mode="stream")[0]["spikes"]
    assert stream.shape == (250, 8, 8)


def test_manifest_errors(tmp_path):
    rows = make_folder(tmp_path)
    with pytest.raises(ValueError, match="unknown split 'training'"):
        SpikeDataset(tmp_path, "training")
    bad = [dict(r) for r in rows]
    bad[1]["split"] = "dev"
    write_manifest(tmp_path, bad)
    with pytest.raises(ValueError, match=r"manifest\.csv: row 3: unknown split 'dev'"):
        read_manifest(tmp_path)
    bad = [dict(r) for r in rows]
    bad[2]["frames"] = 251
    write_manifest(tmp_path, bad)
    with pytest.raises(
        ValueError, match=r"row 4: .*train/right_0\.dat has 2000 bytes, expected 2008"
    ):
        read_manifest(tmp_path)
    bad = [dict(r) for r in rows]
    bad[0]["path"] = "nowhere.dat"
    write_manifest(tmp_path, bad)
    with pytest.raises(FileNotFoundError, match=r"row 2: missing spike file .*nowhere\.dat"):
        read_manifest(tmp_path)
    bad = [dict(r) for r in rows]
    bad[0]["height"], bad[0]["width"] = 3, 5
    write_manifest(tmp_path, bad)
    with pytest.raises(ValueError, match="3x5 is not a multiple of 8"):
        read_manifest(tmp_path)
    (tmp_path / "manifest.csv").write_text("path,split\na.dat,train\n")
    with pytest.raises(ValueError, match="missing columns"):
        read_manifest(tmp_path)
    with pytest.raises(FileNotFoundError, match="no manifest"):
        read_manifest(tmp_path / "train")


def test_short_clips_rejected_in_blocks_mode(tmp_path):
    make_folder(tmp_path, frames=100)
    with pytest.raises(ValueError, match="100 frames, but 5 sub-blocks.*need 241"):
        SpikeDataset(tmp_path, "val")
    assert len(SpikeDataset(tmp_path, "val", window=WindowSpec(3, 10, 20))) == 4


def test_window_of_follows_the_config_block_step() -> None:
    import dataclasses

    from fsve.data.dataset import window_of
    from fsve.models.config import fsve_tiny, tiny

    cfg = dataclasses.replace(tiny(), num_blocks=7, block_step=31)
    window = window_of(cfg)
    assert (window.num_blocks, window.radius, window.step) == (7, 30, 31)
    assert window.span == 6 * 31 + 61 == 247
    assert window.centres(250)[0] == (250 - 247) // 2 + 30  # centred in the clip
    assert window_of(fsve_tiny()).step == 45  # the FSVE config has no block_step
    with pytest.raises(ValueError, match="block_step"):
        dataclasses.replace(tiny(), block_step=0)
