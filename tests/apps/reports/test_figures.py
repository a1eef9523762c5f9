"""Fig. 5 analog: centred block-feature correlations of a teacher, PNG + CSV + markdown."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from apps.reports.figures import fig5_correlation, mean_off_diagonal
from fsve.checkpoint import save_checkpoint
from fsve.models.config import teacher_config
from fsve.models.teacher import SPKLIP


@pytest.fixture(scope="module")
def data(synth_data):
    return synth_data("fig5", 0, 0, 2)


@pytest.fixture(scope="module")
def teacher_ckpt(tmp_path_factory, micro_teacher):
    torch.manual_seed(0)
    model = SPKLIP(teacher_config(micro_teacher))
    return save_checkpoint(tmp_path_factory.mktemp("t") / "t.pt", "teacher", model.cfg,
                           model.state_dict())  # fmt: skip


def test_fig5_files_and_markdown(teacher_ckpt, data, tmp_path):
    md = fig5_correlation(teacher_ckpt, data, tmp_path / "fig", (0, 1), md_dir=tmp_path)
    png = tmp_path / "fig" / "fig5_correlation.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = pd.read_csv(tmp_path / "fig" / "fig5_correlation.csv")
    assert list(table.columns) == ["sample", "class", "i", "j", "value"]
    assert len(table) == 2 * 5 * 5  # two samples, K x K = 5 x 5
    assert table["class"].nunique() == 2  # clips 0 and 1: "drifting left", "drifting right"
    means = []
    for _, rows in table.groupby("sample"):
        c = np.zeros((5, 5))
        c[rows["i"] - 1, rows["j"] - 1] = rows["value"]
        np.testing.assert_allclose(np.diag(c), 1.0, atol=1e-6)
        np.testing.assert_allclose(c, c.T, atol=1e-6)
        assert (np.abs(c) <= 1 + 1e-6).all()
        means.append(float(mean_off_diagonal(c[None])[0]))
    assert "![Fig. 5 analog" in md and "(fig/fig5_correlation.png)" in md
    for m in means:
        assert f"mean off-diagonal {m:+.3f}" in md


def test_fig5_needs_different_classes(teacher_ckpt, data, tmp_path):
    with pytest.raises(ValueError, match="different classes"):
        fig5_correlation(teacher_ckpt, data, tmp_path, (0, 12))  # both class 0 (2 per class)
    with pytest.raises(ValueError, match="outside the test split"):
        fig5_correlation(teacher_ckpt, data, tmp_path, (0, 99))


def test_mean_off_diagonal_of_equal_norm_centred_vectors():
    # 5 centred vectors of equal norm (a regular simplex) correlate -1/(5-1) = -0.25 pairwise
    v = np.eye(5) - 0.2  # rows sum to zero, all norms equal
    u = v / np.linalg.norm(v, axis=1, keepdims=True)
    corr = (u @ u.T)[None]
    np.testing.assert_allclose(mean_off_diagonal(corr), [-0.25], atol=1e-12)
