"""TFI and TFP reconstruction."""

import numpy as np
import pytest

from fsve.data.camera import simulate
from fsve.data.recon import tfi, tfi_intensity, tfp


def test_tfi_of_constant_scene_recovers_intensity():
    rng = np.random.default_rng(0)
    scene = rng.uniform(0.2, 0.9, size=(32, 32))
    spikes = simulate(np.broadcast_to(scene, (200, 32, 32)), seed=1)
    est = tfi_intensity(spikes, t=100)
    # each pixel's interval is quantised to whole read-outs, so compare over the scene
    assert abs(est.mean() / scene.mean() - 1) < 0.05
    # and per pixel where theta / I is a whole number of read-outs: I = 0.5 -> interval 10
    flat = simulate(np.full((200, 8, 8), 0.5), seed=2)
    np.testing.assert_allclose(tfi_intensity(flat, t=77), 0.5)
    assert tfi(flat, t=77).dtype == np.uint8
    assert (tfi(flat, t=77) == 128).all()  # round(0.5 * 255)


def test_tfi_interval_by_hand():
    # one pixel spiking at frames 3 and 7: at t=3..6 the interval is 4 -> I = theta / 4
    spikes = np.zeros((12, 1, 8), dtype=bool)
    spikes[[3, 7], 0, 0] = True
    assert tfi_intensity(spikes, 5, half_window=5, threshold=1.0)[0, 0] == 0.25
    assert tfi_intensity(spikes, 3, half_window=5, threshold=1.0)[0, 0] == 0.25
    # at t=8 no later spike within 3 frames: the no-spike interval 2*3+1 = 7
    assert tfi_intensity(spikes, 8, half_window=3, threshold=1.0)[0, 0] == pytest.approx(1 / 7)
    assert tfi_intensity(spikes, 8, half_window=3)[0, 1] == pytest.approx(5 / 7)  # silent pixel


def test_tfp_constant_scene_and_by_hand():
    flat = simulate(np.full((400, 8, 8), 0.4), seed=0)
    assert abs(tfp(flat, 200, 100).mean() / (0.4 * 255) - 1) < 0.02
    spikes = np.zeros((10, 1, 8), dtype=bool)
    spikes[[4, 5], 0, 0] = True
    # window [3, 7] has 5 frames with 2 spikes: 255 * 2/5 = 102
    assert tfp(spikes, 5, 2, threshold=1.0)[0, 0] == 102


def test_bad_time():
    with pytest.raises(ValueError, match="outside"):
        tfi(np.zeros((5, 2, 4), dtype=bool), 5)
