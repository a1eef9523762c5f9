"""TDBN (against SpikingJelly), multi-step conv helper and membrane-shortcut MS-ResNet blocks."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from fsve.nn.blocks import ConvTDBN, MSBlock, ms_stage, seq_forward
from fsve.nn.neurons import LIFParams
from fsve.nn.norm import TDBN1d, TDBN2d

sj_bn = pytest.importorskip("spikingjelly.activation_based.layer.bn")


def _is_binary(t: torch.Tensor) -> bool:
    return bool(((t == 0) | (t == 1)).all())


# ---------------------------------------------------------------- TDBN


def test_tdbn2d_matches_spikingjelly_train_and_eval():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 2, 3, 5, 6, generator=g) * 2 + 1  # [T, B, C, H, W]
    ours = TDBN2d(3, alpha=0.7, v_threshold=0.5)
    ref = sj_bn.ThresholdDependentBatchNorm2d(0.7, 0.5, 3)
    assert torch.allclose(ours.weight, torch.full((3,), 0.35))  # alpha * V_th
    assert torch.equal(ours.weight, ref.weight)
    for _ in range(2):  # train: batch statistics over T*B*H*W, running stats updated alike
        assert torch.allclose(ours(x), ref(x), atol=1e-6)
    assert torch.allclose(ours.running_mean, ref.running_mean, atol=1e-6)
    assert torch.allclose(ours.running_var, ref.running_var, atol=1e-6)
    ours.eval()
    ref.eval()
    assert torch.allclose(ours(x), ref(x), atol=1e-6)


def test_tdbn2d_statistics_are_over_time_batch_and_space():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 2, 4, 5, 5, generator=g) * 3 - 2
    x[0] += 10.0  # time step 0 shifted: per-step statistics would remove this, TDBN must not
    y = TDBN2d(4, alpha=1.0, v_threshold=2.0)(x)
    assert y.shape == x.shape
    mean = y.mean(dim=(0, 1, 3, 4))
    std = y.var(dim=(0, 1, 3, 4), unbiased=False).sqrt()
    assert torch.allclose(mean, torch.zeros(4), atol=1e-5)
    assert torch.allclose(std, torch.full((4,), 2.0), atol=1e-3)  # weight alpha * V_th = 2
    assert (y[0].mean() - y[1:].mean()).item() > 1.0  # the shift at t = 0 survives


def test_tdbn1d_matches_spikingjelly_on_channel_first_tokens():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(3, 2, 7, 4, generator=g)  # [T, B, N, C]
    ours = TDBN1d(4, alpha=1.0, v_threshold=1.0)
    ref = sj_bn.ThresholdDependentBatchNorm1d(1.0, 1.0, 4)
    y_ref = ref(x.transpose(-1, -2)).transpose(-1, -2)  # SJ wants [T, B, C, N]
    assert torch.allclose(ours(x), y_ref, atol=1e-6)
    assert torch.allclose(ours.running_mean, ref.running_mean, atol=1e-6)
    assert torch.allclose(ours.running_var, ref.running_var, atol=1e-6)


def test_tdbn_rejects_wrong_shapes():
    with pytest.raises(ValueError, match=r"\[T, B, C, H, W\]"):
        TDBN2d(3)(torch.zeros(2, 3, 4, 4))
    with pytest.raises(ValueError, match="TDBN1d expects"):
        TDBN1d(4)(torch.zeros(2, 3, 5, 3))
    with pytest.raises(ValueError, match="alpha"):
        TDBN2d(3, alpha=float("nan"))


# ---------------------------------------------------------------- conv helpers


def test_seq_forward_equals_a_loop_over_time():
    g = torch.Generator().manual_seed(3)
    conv = nn.Conv2d(2, 3, 3, padding=1)
    x = (torch.rand(4, 2, 2, 6, 6, generator=g) < 0.3).float()
    y = seq_forward(conv, x)
    assert y.shape == (4, 2, 3, 6, 6)
    assert torch.allclose(y, torch.stack([conv(x[t]) for t in range(4)]), atol=1e-6)
    seen = []
    conv.register_forward_pre_hook(lambda m, a: seen.append(tuple(a[0].shape)))
    seq_forward(conv, x)
    assert seen == [(8, 2, 6, 6)]  # hooks see a plain 4-D batch, [T*B, C, H, W]


def test_conv_tdbn_stride_and_padding():
    m = ConvTDBN(5, 8, kernel_size=3, stride=2)
    y = m(torch.zeros(3, 2, 5, 15, 16))
    assert y.shape == (3, 2, 8, 8, 8)  # floor((15 - 1) / 2) + 1 = 8
    assert m.conv.bias is None


# ---------------------------------------------------------------- MS-ResNet blocks


def test_ms_block_is_identity_at_init():
    g = torch.Generator().manual_seed(4)
    x = torch.randn(3, 2, 8, 6, 6, generator=g) * 2  # real-valued membrane input
    block = MSBlock(8, 8)
    assert block.shortcut is None
    assert torch.equal(block.bn2.weight, torch.zeros(8))
    assert torch.equal(block(x), x)  # zero-init TDBN: residual branch is exactly 0


def test_ms_block_downsample_shape_and_spike_driven_shortcut():
    g = torch.Generator().manual_seed(5)
    x = torch.randn(3, 2, 8, 15, 16, generator=g) * 2
    block = MSBlock(8, 16, stride=2)
    seen = {}
    for name in ("conv1", "conv2", "shortcut.conv"):
        block.get_submodule(name).register_forward_pre_hook(
            lambda m, a, name=name: seen.__setitem__(name, _is_binary(a[0]))
        )
    y = block(x)
    assert y.shape == (3, 2, 16, 8, 8)
    assert seen == {"conv1": True, "conv2": True, "shortcut.conv": True}
    # at init the output is the shortcut alone, computed from the SPIKES of lif1
    assert torch.equal(y, block.shortcut(block.lif1(x)))
    # channel change without stride also gets a projection shortcut
    assert MSBlock(8, 16, stride=1)(x).shape == (3, 2, 16, 15, 16)


def test_ms_block_gradients_with_zero_init():
    g = torch.Generator().manual_seed(6)
    x = (torch.randn(3, 2, 4, 6, 6, generator=g) * 2).requires_grad_()
    block = MSBlock(4, 4, lif=LIFParams(tau=2.0, v_threshold=0.5))
    block(x).square().sum().backward()
    assert torch.equal(x.grad, 2 * x.detach())  # identity at init: d(sum y^2)/dx = 2x
    # the zero-init TDBN blocks the branch's gradient but receives one itself
    assert block.bn2.weight.grad.abs().sum() > 0
    assert block.conv1.weight.grad.abs().sum() == 0


def test_ms_stage_structure():
    stage = ms_stage(8, 16, blocks=2, stride=2)
    assert len(stage) == 2
    assert stage[0].shortcut is not None and stage[1].shortcut is None
    assert stage(torch.zeros(2, 1, 8, 8, 8)).shape == (2, 1, 16, 4, 4)
    with pytest.raises(ValueError, match="at least one block"):
        ms_stage(8, 16, blocks=0, stride=1)
    with pytest.raises(ValueError, match=r"\[T, B, C, H, W\]"):
        MSBlock(8, 8)(torch.zeros(2, 8, 4, 4))
