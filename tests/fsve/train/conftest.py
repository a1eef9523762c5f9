"""Shared fixtures: a tiny 32x32 synthetic dataset and a micro teacher config (seconds per run)."""

from __future__ import annotations

import json

import pytest
from micro_configs import MICRO_FSVE as SHARED_FSVE
from micro_configs import MICRO_TEACHER

# The text of the micro models here: no vocab_size (the tokenizer built from the data sets it).
TEXT = {"context_length": 16, "width": 16, "layers": 1, "heads": 2, "embed_dim": 16}
# About 0.1 M parameters: an epoch over the tiny dataset takes well under a second on CPU.
MICRO = {**MICRO_TEACHER, "branch_radii": [30, 15, 7, 3], "text": TEXT}


@pytest.fixture(scope="session")
def tiny_data(synth_data):
    """12 classes x (2 train, 1 val, 1 test) clips of 250 frames at 32x32."""
    return synth_data("tiny", 2, 1, 1)


@pytest.fixture(scope="session")
def tiny_real_data(synth_data):
    """The shifted "real" domain, 12 classes x (8 train, 1 val, 2 test) clips at 32x32."""
    return synth_data("real", 8, 1, 2, domain="real")


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


MICRO_FSVE = {**SHARED_FSVE, "widths": [8, 16], "layers": [1, 1], "text": TEXT}


@pytest.fixture(scope="session")
def micro_fsve_config(tmp_path_factory):
    """A JSON config file of a micro FSVE (text and D as the micro teacher's)."""
    path = tmp_path_factory.mktemp("cfg") / "micro_fsve.json"
    path.write_text(json.dumps(MICRO_FSVE))
    return path
