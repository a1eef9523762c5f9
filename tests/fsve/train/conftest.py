"""Shared fixtures: a tiny 32x32 synthetic dataset and a micro teacher config (seconds per run)."""

from __future__ import annotations

import json

import pytest
import torch

from fsve.data.synth import SynthConfig, generate_dataset

# About 0.1 M parameters: an epoch over the tiny dataset takes well under a second on CPU.
MICRO = {
    "height": 32,
    "width": 32,
    "branch_radii": [30, 15, 7, 3],
    "hsfe_channels": 8,
    "sa_hidden": 4,
    "base_width": 4,
    "layers": [1, 1, 1, 1],
    "pool_heads": 4,
    "temporal_layers": 1,
    "temporal_heads": 2,
    "embed_dim": 16,
    "text": {"context_length": 16, "width": 16, "layers": 1, "heads": 2, "embed_dim": 16},
}


@pytest.fixture(autouse=True, scope="session")
def one_thread():
    """One intra-op thread: on a shared 2-core machine more threads oversubscribe (10x slower)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    """12 classes x (2 train, 1 val, 1 test) clips of 250 frames at 32x32."""
    config = SynthConfig(
        height=32, width=32, frames=250, train_per_class=2, val_per_class=1, test_per_class=1
    )
    return generate_dataset(tmp_path_factory.mktemp("tiny") / "data", config, progress=False)


@pytest.fixture(scope="session")
def tiny_real_data(tmp_path_factory):
    """The shifted "real" domain, 12 classes x (8 train, 1 val, 2 test) clips at 32x32."""
    config = SynthConfig(
        height=32,
        width=32,
        frames=250,
        train_per_class=8,
        val_per_class=1,
        test_per_class=2,
        domain="real",
    )
    return generate_dataset(tmp_path_factory.mktemp("real") / "data", config, progress=False)


@pytest.fixture(scope="session")
def micro() -> dict:
    """The micro teacher config as a dict (a fresh copy per use is not needed: never mutated)."""
    return MICRO


@pytest.fixture(scope="session")
def micro_config(tmp_path_factory):
    """A JSON config file of the micro teacher."""
    path = tmp_path_factory.mktemp("cfg") / "micro.json"
    path.write_text(json.dumps(MICRO))
    return path


MICRO_FSVE = {
    "height": 32,
    "width": 32,
    "stem_width": 8,
    "widths": [8, 16],
    "layers": [1, 1],
    "attn_depth": 1,
    "attn_heads": 2,
    "mlp_ratio": 2,
    "embed_dim": 16,
    "text": {"context_length": 16, "width": 16, "layers": 1, "heads": 2, "embed_dim": 16},
}


@pytest.fixture(scope="session")
def micro_fsve_config(tmp_path_factory):
    """A JSON config file of a micro FSVE (text and D as the micro teacher's)."""
    path = tmp_path_factory.mktemp("cfg") / "micro_fsve.json"
    path.write_text(json.dumps(MICRO_FSVE))
    return path
