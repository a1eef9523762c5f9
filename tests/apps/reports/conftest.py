"""Shared by the report tests: 32x32 micro models with every layer type of the paper ones."""

from __future__ import annotations

import pytest
import torch

TEXT = {"vocab_size": 64, "context_length": 8, "width": 16, "layers": 1, "heads": 2,
        "embed_dim": 16}  # fmt: skip


@pytest.fixture(autouse=True, scope="session")
def one_thread():
    """One intra-op thread: on a shared 2-core machine more threads oversubscribe."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def micro_teacher() -> dict:
    """A micro SPKLIP teacher config dict (never mutated)."""
    return {"height": 32, "width": 32, "hsfe_channels": 8, "sa_hidden": 4, "base_width": 4,
            "layers": [1, 1, 1, 1], "pool_heads": 4, "temporal_layers": 1,
            "temporal_heads": 2, "embed_dim": 16, "text": TEXT}  # fmt: skip


@pytest.fixture(scope="session")
def micro_fsve() -> dict:
    """A micro FSVE config dict with the micro teacher's text and D (never mutated)."""
    return {"height": 32, "width": 32, "stem_width": 8, "widths": [8, 16, 16, 32],
            "layers": [1, 1, 1, 1], "attn_depth": 1, "attn_heads": 2, "mlp_ratio": 2,
            "embed_dim": 16, "text": TEXT}  # fmt: skip
