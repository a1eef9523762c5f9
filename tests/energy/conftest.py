"""Fixtures for the energy tests: calibrated tiny FSVEs, a micro teacher, a tiny dataset."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from fsve.data.synth import SynthConfig, generate_dataset
from fsve.models.config import teacher_config
from fsve.models.student import FSVE, calibrate_statistics, fsve_config
from fsve.models.teacher import SPKLIP

# a 32x32 FSVE with every layer type of the paper model; a forward takes milliseconds
MICRO_FSVE = {
    "height": 32,
    "width": 32,
    "stem_width": 8,
    "widths": [8, 16, 16, 32],
    "layers": [1, 1, 1, 1],
    "attn_depth": 1,
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

MICRO_TEACHER = {
    "height": 32,
    "width": 32,
    "hsfe_channels": 8,
    "sa_hidden": 4,
    "base_width": 4,
    "layers": [1, 1, 1, 1],
    "pool_heads": 4,
    "temporal_layers": 1,
    "temporal_heads": 2,
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
    """Statistics of batch ``x`` so an untrained model spikes (see calibrate_statistics)."""
    return calibrate_statistics(model, x)


def clip_batch(cfg, batch: int, rate: float = 0.06, seed: int = 0) -> torch.Tensor:
    """Random binary clips ``[B, K, F, H, W]`` with the given spike rate."""
    g = torch.Generator().manual_seed(seed)
    shape = (batch, cfg.num_blocks, cfg.block_frames, cfg.height, cfg.width)
    return torch.rand(shape, generator=g) < rate


@pytest.fixture(scope="session")
def clips():
    """``clips(cfg, batch, rate=0.06, seed=0)``: random binary clips for a model config."""
    return clip_batch


@pytest.fixture(scope="session")
def micro_fsve() -> FSVE:
    torch.manual_seed(0)
    model = FSVE(fsve_config(MICRO_FSVE))
    return calibrate(model, clip_batch(model.cfg, 4))


@pytest.fixture(scope="session")
def micro_teacher() -> SPKLIP:
    torch.manual_seed(0)
    return SPKLIP(teacher_config(MICRO_TEACHER)).eval()


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    """12 classes x (1 train, 1 val, 1 test) clips of 250 frames at 32x32."""
    config = SynthConfig(
        height=32, width=32, frames=250, train_per_class=1, val_per_class=1, test_per_class=1
    )
    return generate_dataset(tmp_path_factory.mktemp("energy") / "data", config, progress=False)
