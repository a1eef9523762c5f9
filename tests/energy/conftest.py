"""Fixtures for the energy tests: calibrated tiny FSVEs, a micro teacher, a tiny dataset."""

from __future__ import annotations

import pytest
import torch
from micro_configs import MICRO_FSVE, MICRO_TEACHER
from torch import nn

from fsve.models.config import teacher_config
from fsve.models.student import FSVE, calibrate_statistics, fsve_config
from fsve.models.teacher import SPKLIP


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
def tiny_data(synth_data):
    """12 classes x (1 train, 1 val, 1 test) clips of 250 frames at 32x32."""
    return synth_data("energy", 1, 1, 1)
