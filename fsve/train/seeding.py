"""Seeds and generator states: what makes a resumed run end with the same weights.

Each epoch's shuffling comes from a generator seeded by :func:`epoch_seed` ``(seed, epoch)``;
``last.pt`` stores the torch/CUDA/numpy/``random`` states (:func:`get_rng_state`) of the end of
its epoch and a resumed run restores them (:func:`set_rng_state`).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

__all__ = ["epoch_seed", "get_rng_state", "seed_everything", "set_rng_state"]


def epoch_seed(seed: int, epoch: int) -> int:
    """Seed of the shuffling generator of ``epoch`` (0-based), a 63-bit function of both."""
    state = np.random.SeedSequence([int(seed), int(epoch)]).generate_state(2, dtype=np.uint32)
    return int(state[0]) << 31 | int(state[1]) >> 1


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA), numpy's global generator and ``random``."""
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 (the global generator others may use)
    torch.manual_seed(seed)


def get_rng_state() -> dict[str, Any]:
    """torch, CUDA, numpy and ``random`` generator states as tensors and plain values.

    Fit for a ``weights_only`` checkpoint: numpy's key array and ``random``'s tuple become lists.
    """
    np_state = np.random.get_state(legacy=False)  # noqa: NPY002 (global state, on purpose)
    version, internal, gauss = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "bit_generator": np_state["bit_generator"],
            "key": [int(x) for x in np_state["state"]["key"]],
            "pos": int(np_state["state"]["pos"]),
            "has_gauss": int(np_state["has_gauss"]),
            "gauss": float(np_state["gauss"]),
        },
        "random": [version, list(internal), gauss],
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Inverse of :func:`get_rng_state`."""
    torch.set_rng_state(state["torch"])
    s = state["numpy"]
    np.random.set_state(  # noqa: NPY002
        {
            "bit_generator": s["bit_generator"],
            "state": {"key": np.asarray(s["key"], dtype=np.uint32), "pos": s["pos"]},
            "has_gauss": s["has_gauss"],
            "gauss": s["gauss"],
        }
    )
    version, internal, gauss = state["random"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
