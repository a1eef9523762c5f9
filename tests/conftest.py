"""Fixtures of every test folder: one intra-op thread, tiny synthetic datasets."""

from __future__ import annotations

import pytest
import torch

from fsve.data.synth import SynthConfig, generate_dataset


@pytest.fixture(autouse=True, scope="session")
def one_thread():
    """One intra-op thread: on a shared 2-core machine more threads oversubscribe (10x slower)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def synth_data(tmp_path_factory):
    """``synth_data(name, train, val, test, **config)``: a new 12-class synthetic dataset of
    250-frame 32x32 clips, ``train``/``val``/``test`` clips per class, in a temp folder
    ``name``; more :class:`SynthConfig` fields (``domain=``) as keywords."""

    def make(name: str, train: int, val: int, test: int, **config):
        config = SynthConfig(
            height=32,
            width=32,
            frames=250,
            train_per_class=train,
            val_per_class=val,
            test_per_class=test,
            **config,
        )
        return generate_dataset(tmp_path_factory.mktemp(name) / "data", config, progress=False)

    return make
