"""Shared by the report tests: 32x32 micro models with every layer type of the paper ones."""

from __future__ import annotations

import pytest
from micro_configs import MICRO_FSVE, MICRO_TEACHER


@pytest.fixture(scope="session")
def micro_teacher() -> dict:
    """A micro SPKLIP teacher config dict (never mutated)."""
    return MICRO_TEACHER


@pytest.fixture(scope="session")
def micro_fsve() -> dict:
    """A micro FSVE config dict with the micro teacher's text and D (never mutated)."""
    return MICRO_FSVE
