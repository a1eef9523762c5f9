"""Fixtures for the export tests: a calibrated micro FSVE with every block type, tiny clips."""

from __future__ import annotations

from pathlib import Path

import micro_configs
import pytest
import torch
from torch import nn

from fsve.checkpoint import save_checkpoint
from fsve.data.dataset import SpikeDataset, WindowSpec, collate
from fsve.models.student import FSVE, calibrate_statistics, fsve_config
from fsve.models.text import WordTokenizer
from fsve.nn.norm import TDBN1d, TDBN2d

# the shared micro FSVE with a downsampling and an identity shortcut and two E-SDSA blocks
MICRO_FSVE = {**micro_configs.MICRO_FSVE, "layers": [2, 1, 1, 1], "attn_depth": 2}


def calibrate(model: nn.Module, x: torch.Tensor) -> nn.Module:
    """Give every residual branch weight, set BN/TDBN/SN statistics from batch ``x``, eval.

    An untrained FSVE is silent in eval mode and its blocks are identities (the last TDBN of
    each block starts at 0); one train-mode forward with momentum 1 makes it spike like a
    trained network would.
    """
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, TDBN1d | TDBN2d) and float(m.weight.abs().max()) == 0.0:
                m.weight.fill_(0.5)
    return calibrate_statistics(model, x)


@pytest.fixture(scope="session")
def calibrated():
    """``calibrated(model, x)``: :func:`calibrate` for tests that build their own model."""
    return calibrate


@pytest.fixture(scope="session")
def tiny_data(synth_data):
    """12 classes x 2 test clips of 250 frames at 32x32 (real synthetic spike-camera data)."""
    return synth_data("export", 1, 1, 2)


@pytest.fixture(scope="session")
def clips(tiny_data) -> torch.Tensor:
    """All 24 test clips ``[24, 5, 61, 32, 32]`` (bool)."""
    ds = SpikeDataset(tiny_data, "test", window=WindowSpec())
    return collate([ds[i] for i in range(len(ds))])["spikes"]


@pytest.fixture(scope="session")
def micro_fsve(clips) -> FSVE:
    torch.manual_seed(0)
    model = FSVE(fsve_config(MICRO_FSVE))
    return calibrate(model, clips[::3])


@pytest.fixture(scope="session")
def micro_checkpoint(micro_fsve, tiny_data, tmp_path_factory) -> Path:
    """:func:`micro_fsve` saved as an ``fsve`` checkpoint with the class names of ``tiny_data``
    and a word tokenizer of their prompts (what the CLIs need for Top-1)."""
    ds = SpikeDataset(tiny_data, "test")
    tok = WordTokenizer.from_texts([f"a video of an object {c}" for c in ds.class_names])
    return save_checkpoint(
        tmp_path_factory.mktemp("ckpt") / "fsve.pt", "fsve", micro_fsve.cfg,
        micro_fsve.state_dict(), tokenizer=tok.to_dict(), classes=ds.class_names,
    )  # fmt: skip
