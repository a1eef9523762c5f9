"""Spike camera model (paper Eq. 1)."""

import numpy as np
import pytest

from fsve.data.camera import simulate, simulate_chunks


@pytest.mark.parametrize(
    ("intensity", "alpha", "threshold"), [(0.5, 1.0, 5.0), (0.23, 1.0, 5.0), (0.8, 0.5, 2.0)]
)
def test_constant_intensity_fires_at_alpha_i_over_theta(intensity, alpha, threshold):
    frames = np.full((4000, 8, 8), intensity)
    rate = simulate(frames, threshold=threshold, alpha=alpha, seed=0).mean()
    expected = alpha * intensity / threshold
    assert abs(rate - expected) / expected < 0.01


def test_reset_by_subtraction_exact_trajectory():
    # I = 0.3, theta = 1, no random start when charge starts at 0: seed picks U(0,1)*theta, so
    # check against the closed form floor((c0 + n*I) / theta) spikes after n read-outs.
    frames = np.full((20, 1, 8), 0.3)
    spikes = simulate(frames, threshold=1.0, seed=3)
    c0 = np.random.default_rng(3).random((1, 8))
    expected = np.diff(np.floor(c0 + 0.3 * np.arange(21)[:, None, None]), axis=0).astype(bool)
    np.testing.assert_array_equal(spikes, expected)


def test_at_most_one_spike_per_readout_and_charge_kept():
    # alpha*I = 2*theta: the pixel fires every read-out and the charge grows; once the light
    # goes dark it keeps firing until the stored charge is spent.
    frames = np.concatenate([np.full((3, 1, 8), 1.0), np.zeros((10, 1, 8))])
    spikes = simulate(frames, threshold=0.5, seed=0)
    assert spikes[:3].all()
    assert spikes.sum(axis=0).min() >= 6  # 3 x 1.0 / 0.5 = 6 thetas of charge


def test_chunks_equal_whole_and_seeded():
    frames = np.random.default_rng(0).random((90, 6, 8))
    whole = simulate(frames, seed=7)
    chunked = np.concatenate(list(simulate_chunks(np.array_split(frames, 4), seed=7)))
    np.testing.assert_array_equal(whole, chunked)
    assert not np.array_equal(whole, simulate(frames, seed=8))
    np.testing.assert_array_equal(whole, simulate(frames, seed=7))


def test_dark_noise_rate():
    spikes = simulate(np.zeros((2000, 8, 8)), seed=0, dark_rate=0.01)
    assert abs(spikes.mean() - 0.01) < 0.001


def test_bad_input():
    with pytest.raises(ValueError, match=r"\[N, H, W\]"):
        simulate(np.zeros((4, 4)))
    with pytest.raises(ValueError, match="threshold"):
        simulate(np.zeros((1, 4, 4)), threshold=0)
    with pytest.raises(ValueError, match="NaN"):
        simulate(np.full((1, 2, 4), np.nan))
