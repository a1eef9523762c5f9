"""The reference checkpoints under checkpoints/ still score what their cards say."""

from __future__ import annotations

import copy
import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "ship_checkpoints.py"


@pytest.fixture(scope="module")
def ship():
    spec = importlib.util.spec_from_file_location("ship_checkpoints", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_teacher_and_a_distilled_fsve_are_shipped_small(ship):
    cards = ship.cards()
    kinds = sorted(c["kind"] for c in cards)
    assert "teacher" in kinds and "fsve" in kinds
    total = sum((ship.CHECKPOINTS / c["file"]).stat().st_size for c in cards)
    assert total <= 25e6, f"checkpoints/ holds {total / 1e6:.1f} MB (budget 25 MB)"
    for c in cards:
        assert c["data"]["version"] == 2 and c["test"]["top1_pct"] > 0
        assert ("firing_rate_pct" in c) == (c["kind"] == "fsve")


def test_every_card_matches_a_fresh_measurement(ship, capsys):
    """Regenerates the built-in test split, re-evaluates each checkpoint (about 20 s)."""
    code = ship.check(None)
    out = capsys.readouterr()
    assert code == 0, out.err


def test_drift_names_what_moved(ship):
    card = ship.cards()[0]
    now = copy.deepcopy(card)
    assert ship.drift(card, now) == []
    now["test"]["top1_pct"] += 2 * ship.METRIC_TOLERANCE
    now["data"]["test_split_sha256"] = "0" * 64
    lines = ship.drift(card, now)
    assert any("top1_pct" in line for line in lines)
    assert any("test_split_sha256" in line for line in lines)
    json.dumps(lines)  # plain strings
