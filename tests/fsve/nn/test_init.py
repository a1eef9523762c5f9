"""Temporal initialisations of the layers that read raw spike frames."""

import math

import pytest
import torch

from fsve.models.config import tiny
from fsve.models.teacher import HSFE
from fsve.nn.init import temporal_basis_init_, temporal_span_init_


def _profiles(weight: torch.Tensor) -> torch.Tensor:
    """Each filter's temporal profile (spatial weights factored out): ``[C_out, T]``."""
    flat = weight.flatten(2).double()  # [C, T, k]
    spatial = flat[:, flat.shape[1] // 2 + 1]  # any frame of a non-zero profile value
    return torch.einsum("ctk,ck->ct", flat, spatial) / spatial.pow(2).sum(1, keepdim=True)


def test_first_filter_is_a_late_minus_early_ramp():
    torch.manual_seed(0)
    w = temporal_basis_init_(torch.empty(6, 61, 3, 3))
    p = _profiles(w)
    ramp = p[0]
    # linear in time, antisymmetric about the centre: a motion map, not a rate map
    assert torch.allclose(ramp, -ramp.flip(0), atol=1e-6)
    steps = ramp.diff()
    assert torch.allclose(steps, steps[0].expand_as(steps), atol=1e-6) and steps[0] != 0
    # then constant (rate map), cubic, parabola; the basis cycles after 4
    assert torch.allclose(p[1], p[1][0].expand(61), atol=1e-6)
    assert torch.allclose(p[2], -p[2].flip(0), atol=1e-6)  # odd
    assert torch.allclose(p[3], p[3].flip(0), atol=1e-6)  # even
    assert torch.allclose(p[4] / p[4].norm(), p[0] / p[0].norm(), atol=1e-6) or torch.allclose(
        p[4] / p[4].norm(), -p[0] / p[0].norm(), atol=1e-6
    )
    # odd and even profiles are orthogonal over time (by symmetry, on any frame grid)
    for i, j in ((0, 1), (0, 3), (2, 1), (2, 3)):
        assert abs(float(p[i] @ p[j])) < 1e-9 * float(p[i].norm() * p[j].norm())


@pytest.mark.parametrize("shape", [(1, 61, 3, 3), (9, 7, 3, 3), (4, 3, 1, 1), (2, 1, 3, 3)])
def test_every_filter_has_the_kaiming_rms(shape):
    torch.manual_seed(1)
    w = temporal_basis_init_(torch.empty(shape))
    fan_in = math.prod(shape[1:])
    rms = w.flatten(1).pow(2).mean(1).sqrt()
    assert torch.allclose(rms, torch.full_like(rms, math.sqrt(2.0 / fan_in)), rtol=1e-5)


def test_rejects_a_non_conv_weight():
    with pytest.raises(ValueError, match="conv weight"):
        temporal_basis_init_(torch.empty(4, 3))


def test_every_hsfe_branch_starts_with_a_ramp_over_its_own_window():
    """The cause of the seed-fragile teacher: the 1-channel 61-frame branch must see motion."""
    torch.manual_seed(2)
    hsfe = HSFE(tiny())
    assert hsfe.branch_channels == (1, 2, 4, 9)
    for branch in hsfe.branches:
        ramp = _profiles(branch.conv.weight)[0]
        assert ramp[0] * ramp[-1] < 0 and torch.allclose(ramp, -ramp.flip(0), atol=1e-6)


def test_span_init_is_piecewise_constant_in_time():
    torch.manual_seed(3)
    w = temporal_span_init_(torch.empty(8, 61, 3, 3))
    spans = torch.arange(61) * 4 // 61
    for s in range(4):
        block = w[:, spans == s]
        assert torch.equal(block, block[:, :1].expand_as(block))  # constant within a span
    assert not torch.equal(w[:, spans == 0][:, 0], w[:, spans == 1][:, 0])  # spans differ
    std = (2.0 / (61 * 9)) ** 0.5
    assert 0.3 * std < w.std().item() < 3 * std
