"""Fixtures for the export tests: a calibrated micro FSVE with every block type, tiny clips."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from fsve.data.dataset import SpikeDataset, WindowSpec, collate
from fsve.data.synth import SynthConfig, generate_dataset
from fsve.models.student import FSVE, calibrate_statistics, fsve_config
from fsve.nn.norm import TDBN1d, TDBN2d

# 32x32, every layer type of the paper model (downsampling and identity shortcuts, E-SDSA)
MICRO_FSVE = {
    "height": 32,
    "width": 32,
    "stem_width": 8,
    "widths": [8, 16, 16, 32],
    "layers": [2, 1, 1, 1],
    "attn_depth": 2,
    "attn_heads": 2,
    "mlp_ratio": 2,
    "embed_dim": 16,
    "text": {
        "vocab_size": 64,
        "context_length": 8,
        "width": 16,
        "layers": 1,
        "heads": 2,
        "embed_dim": 16,
    },
}


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
def tiny_data(tmp_path_factory):
    """12 classes x 2 test clips of 250 frames at 32x32 (real synthetic spike-camera data)."""
    config = SynthConfig(
        height=32, width=32, frames=250, train_per_class=1, val_per_class=1, test_per_class=2
    )
    return generate_dataset(tmp_path_factory.mktemp("export") / "data", config, progress=False)


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
