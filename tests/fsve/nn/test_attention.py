"""SN neuron (Eq. 9), threshold re-parameterisation (Eq. 11), E-SDSA and spiking MLP (Eq. 10)."""

from __future__ import annotations

import pytest
import torch

from fsve.nn.attention import (
    ESDSA,
    SN,
    AttentionSN,
    SpikeMatmul,
    SpikingMLP,
    SpikingTransformerBlock,
    reparam_spike,
)
from fsve.nn.neurons import rect_spike


def _is_binary(t: torch.Tensor) -> bool:
    return bool(((t == 0) | (t == 1)).all())


# x [T=1, B=1, N=4, C=2]; per channel E|x|: (1 + 3 + 0.5 + 2) / 4 = 1.625 and 2 / 4 = 0.5
HAND_X = torch.tensor([[[[1.0, 0.5], [-3.0, -0.5], [0.5, 0.25], [2.0, 0.75]]]])


# ---------------------------------------------------------------- SN (Eq. 9)


def test_sn_fires_where_x_reaches_alpha_times_mean_abs():
    sn = SN(2, alpha=1.0)
    s = sn(HAND_X)
    # channel 0: x >= 1.625 only at 2.0; channel 1: x >= 0.5 at 0.5 (inclusive) and 0.75
    assert s[0, 0].tolist() == [[0, 1], [0, 0], [0, 0], [1, 1]]
    sn_half = SN(2, alpha=0.5)  # thresholds 0.8125 and 0.25
    assert sn_half(HAND_X)[0, 0].tolist() == [[1, 1], [0, 0], [0, 1], [1, 1]]


def test_sn_running_estimate_updates_in_train_mode_only():
    sn = SN(2, alpha=2.0, momentum=0.1)
    assert torch.equal(sn.running_abs_mean, torch.ones(2))
    sn(HAND_X)
    expected = torch.tensor([0.9 * 1 + 0.1 * 1.625, 0.9 * 1 + 0.1 * 0.5])  # [1.0625, 0.95]
    assert torch.allclose(sn.running_abs_mean, expected)
    assert torch.allclose(sn.inference_threshold(), 2.0 * expected)  # α · running E|x|
    sn.eval()
    s = sn(HAND_X * 10)
    assert torch.allclose(sn.running_abs_mean, expected)  # eval: no update
    # eval thresholds are the fixed 2.125 and 1.9: channel 0 has 10 and 20, channel 1 has 5, 7.5
    assert s[0, 0].tolist() == [[1, 1], [0, 0], [1, 1], [1, 1]]


def test_sn_eval_output_does_not_depend_on_the_rest_of_the_batch():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 4, 5, 6, generator=g)  # [T, B, N, C]
    other = torch.randn(3, 4, 5, 6, generator=g) * 5
    sn = SN(6)
    sn(torch.randn(3, 4, 5, 6, generator=g))  # move the running estimate
    sn.eval()
    alone = sn(x[:, :1])
    assert torch.equal(sn(x)[:, :1], alone)
    assert torch.equal(sn(torch.cat([x[:, :1], other], dim=1))[:, :1], alone)
    assert torch.equal(sn(x[:, :1]), alone)  # same input twice, same spikes
    sn.train()  # training uses batch statistics: the same sample may spike differently
    assert not torch.equal(sn(torch.cat([x[:, :1], other], dim=1))[:, :1], sn(x[:, :1]))


def test_sn_channel_dim_and_gradients():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, 4, 5, 5, generator=g, requires_grad=True)  # channels in dim 2
    sn = SN(4, dim=2)
    s = sn(x)
    assert s.shape == x.shape and _is_binary(s)
    s.sum().backward()
    assert x.grad.abs().sum() > 0
    assert sn.alpha.grad is not None and sn.alpha.grad.item() < 0  # higher V_th, fewer spikes
    with pytest.raises(ValueError, match="4 channels in dim 2"):
        sn(torch.zeros(2, 3, 5, 5, 5))


def test_sn_all_zero_channel_does_not_fire():
    s = SN(2)(torch.zeros(1, 2, 3, 2))
    assert s.sum() == 0  # E|x| is floored at SN_EPS, so 0 < V_th


# ---------------------------------------------------------------- threshold re-parameterisation


def test_reparam_spike_equals_scaled_spike_forward_and_backward():
    g = torch.Generator().manual_seed(2)
    d = 8
    scale = d**-0.5
    q = (torch.rand(2, 3, 6, d, generator=g) < 0.5).float()
    k = (torch.rand(2, 3, 6, d, generator=g) < 0.5).float()
    counts = (q @ k.transpose(-2, -1)).requires_grad_()  # integers 0..8
    counts2 = counts.detach().clone().requires_grad_()
    v_th = 0.9  # raw threshold 0.9 / scale = 2.546 counts; surrogate window +-1.414 counts
    s_reparam = reparam_spike(counts, v_th, scale, lens=0.5)
    s_scaled = rect_spike(scale * counts2 - v_th, lens=0.5)
    assert torch.equal(s_reparam, s_scaled)
    assert torch.equal(s_reparam, (counts.detach() >= 3).float())
    w = torch.randn(s_reparam.shape, generator=g)
    (s_reparam * w).sum().backward()
    (s_scaled * w).sum().backward()
    assert torch.allclose(counts.grad, counts2.grad, atol=1e-6)
    # gradient scale/(2 lens) on counts 2 and 3 (|0.3536 c - 0.9| <= 0.5), 0 elsewhere
    window = (counts.detach() == 2) | (counts.detach() == 3)
    assert torch.allclose(counts.grad, torch.where(window, w * scale, torch.zeros(())), atol=1e-6)


def test_attention_sn_equals_sn_on_the_scaled_map():
    g = torch.Generator().manual_seed(3)
    scale = 16**-0.5  # 0.25, exact in binary: bit-identical thresholds
    counts = torch.randint(0, 12, (2, 3, 2, 5, 5), generator=g).float().requires_grad_()
    counts2 = counts.detach().clone().requires_grad_()
    a_sn = AttentionSN(2, scale, dim=2, alpha=1.2)
    ref = SN(2, dim=2, alpha=1.2)
    s = a_sn(counts)
    s_ref = ref(scale * counts2)
    assert torch.equal(s, s_ref)
    assert 0 < s.mean() < 1
    assert torch.allclose(a_sn.running_abs_mean, ref.running_abs_mean)  # in scaled units
    w = torch.randn(s.shape, generator=g)
    (s * w).sum().backward()
    (s_ref * w).sum().backward()
    assert torch.allclose(counts.grad, counts2.grad, atol=1e-6)
    assert torch.allclose(a_sn.alpha.grad, ref.alpha.grad, atol=1e-5)
    a_sn.eval()
    ref.eval()
    assert torch.equal(a_sn(counts), ref(scale * counts))
    assert torch.allclose(a_sn.count_threshold(), ref.inference_threshold() / scale)


# ---------------------------------------------------------------- E-SDSA and MLP


def _esdsa_input(seed: int = 4) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(3, 2, 5, 16, generator=g) * 2  # membrane tokens [T, B, N, C]


def test_esdsa_shapes_and_binary_q_k_v_and_attention_map():
    attn = ESDSA(16, heads=2, scale_factor=1.0)
    assert attn.head_dim == 8 and attn.scale == pytest.approx(8**-0.5)
    outputs, matmul_inputs = {}, {}
    for name in ("q.sn", "k.sn", "v.sn", "attn_sn", "out_sn"):
        attn.get_submodule(name).register_forward_hook(
            lambda m, a, o, name=name: outputs.__setitem__(name, (a[0].detach(), o.detach()))
        )
    for name in ("qk", "av"):
        attn.get_submodule(name).register_forward_pre_hook(
            lambda m, a, name=name: matmul_inputs.__setitem__(name, a)
        )
    u = _esdsa_input()
    y = attn(u)
    assert y.shape == u.shape
    for name in ("q.sn", "k.sn", "v.sn"):
        assert outputs[name][1].shape == (3, 2, 5, 16) and _is_binary(outputs[name][1])
    counts, a = outputs["attn_sn"]
    assert a.shape == (3, 2, 2, 5, 5) and _is_binary(a)  # [T, B, heads, N, N]
    assert torch.equal(counts, counts.round()) and counts.max() <= 8  # raw counts, <= d
    av_counts = outputs["out_sn"][0]
    assert torch.equal(av_counts, av_counts.round()) and av_counts.max() <= 5  # <= N
    assert all(_is_binary(t) for t in (*matmul_inputs["qk"], *matmul_inputs["av"]))
    assert matmul_inputs["qk"][1].shape == (3, 2, 2, 8, 5)  # K^T per head [.., d, N]


def test_esdsa_membrane_shortcut_and_gradients():
    attn = ESDSA(16, heads=4)
    u = _esdsa_input(5).requires_grad_()
    with torch.no_grad():
        attn.proj_bn.weight.zero_()
    assert torch.equal(attn(u), u)  # branch silenced: U' = U
    with torch.no_grad():
        attn.proj_bn.weight.fill_(1.0)
    attn(u).square().sum().backward()
    for name, p in attn.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name
    with pytest.raises(ValueError, match="divisible"):
        ESDSA(16, heads=3)
    with pytest.raises(ValueError, match=r"\[T, B, N, 16\]"):
        attn(torch.zeros(3, 5, 16))


def test_spike_matmul_is_a_plain_matmul():
    a = torch.tensor([[1.0, 0.0, 1.0]])
    b = torch.tensor([[1.0], [1.0], [1.0]])
    assert SpikeMatmul()(a, b).item() == 2.0  # 1 + 0 + 1 coincidences


def test_spiking_mlp_and_transformer_block():
    u = _esdsa_input(6)
    mlp = SpikingMLP(16, 32)
    reads = []
    for fc in (mlp.fc1, mlp.fc2):
        fc.register_forward_pre_hook(lambda m, a: reads.append(_is_binary(a[0])))
    assert mlp(u).shape == u.shape
    assert reads == [True, True]
    block = SpikingTransformerBlock(16, heads=2, mlp_ratio=2)
    assert block.mlp.fc1.out_features == 32
    assert block(u).shape == u.shape
