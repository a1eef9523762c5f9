"""Multi-step LIF (Eq. 7) and the rectangular surrogate (Eq. 8) against hand values and SJ."""

import math

import pytest
import torch
from spikingjelly.activation_based import neuron, surrogate

from fsve.nn import LIF, LIFParams, lif_multistep, rect_spike

ATOL, RTOL = 1e-6, 1e-5  # float32 gradients; summation order differs from autograd's


def _sj_node(p: LIFParams) -> neuron.LIFNode:
    return neuron.LIFNode(
        tau=p.tau,
        decay_input=p.decay_input,
        v_threshold=p.v_threshold,
        v_reset=p.v_reset,
        surrogate_function=surrogate.Rect(alpha=p.surrogate_alpha),
        detach_reset=p.detach_reset,
        step_mode="m",
    )


def _input(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    # mean 0.5, spread 1.2: many spikes and many H inside the window around V_th = 0.9
    return torch.randn(shape, generator=gen) * 1.2 + 0.5


@pytest.mark.parametrize("shape", [(2, 3, 5, 5), (4, 17)], ids=["TBCHW", "TBN"])
@pytest.mark.parametrize("steps", [1, 4, 9])
@pytest.mark.parametrize("detach_reset", [True, False])
@pytest.mark.parametrize("v_reset", [0.0, -0.2, None], ids=["hard0", "hard-0.2", "soft"])
@pytest.mark.parametrize("decay_input", [True, False])
def test_matches_spikingjelly_rect(
    decay_input: bool, v_reset: float | None, detach_reset: bool, steps: int, shape: tuple
) -> None:
    # tau = 1.7 is not a power of two, so any reordering of the charge would change roundings
    p = LIFParams(
        tau=1.7,
        v_threshold=0.9,
        v_reset=v_reset,
        decay_input=decay_input,
        detach_reset=detach_reset,
        strict_window=True,  # SJ's Rect window is open
    )
    x = _input((steps, *shape), seed=steps).requires_grad_()
    gen = torch.Generator().manual_seed(1)
    grad_s = torch.randn(x.shape, generator=gen)
    grad_v = torch.randn(shape, generator=gen)

    node = _sj_node(p)
    s_ref = node(x)
    v_ref = node.v
    ((s_ref * grad_s).sum() + (v_ref * grad_v).sum()).backward()
    gx_ref, x.grad = x.grad, None

    s, v = lif_multistep(x, None, p)
    ((s * grad_s).sum() + (v * grad_v).sum()).backward()

    assert torch.equal(s, s_ref)  # bit-identical spikes...
    assert torch.equal(v, v_ref)  # ...and final voltage
    assert 0.05 < s.mean() < 0.6
    torch.testing.assert_close(x.grad, gx_ref, atol=ATOL, rtol=RTOL)


@pytest.mark.parametrize("lens", [0.25, 1.0])
def test_matches_spikingjelly_other_lens_with_v_init(lens: float) -> None:
    # Rect(alpha = 1 / (2 lens)): alpha 2 and 0.5; gradient also flows into the initial voltage
    p = LIFParams(tau=3.0, v_threshold=0.9, lens=lens, detach_reset=False, strict_window=True)
    x = _input((6, 3, 8), seed=7).requires_grad_()
    v0 = (torch.rand(3, 8, generator=torch.Generator().manual_seed(2)) * 0.9).requires_grad_()
    grad_s = torch.randn(x.shape, generator=torch.Generator().manual_seed(3))

    node = _sj_node(p)
    node.v = v0
    s_ref = node(x)
    (s_ref * grad_s).sum().backward()
    gx_ref, gv_ref = x.grad, v0.grad
    x.grad = v0.grad = None

    s, _ = lif_multistep(x, v0, p)
    (s * grad_s).sum().backward()
    assert torch.equal(s, s_ref)
    torch.testing.assert_close(x.grad, gx_ref, atol=ATOL, rtol=RTOL)
    torch.testing.assert_close(v0.grad, gv_ref, atol=ATOL, rtol=RTOL)


def test_gradient_through_final_voltage_only() -> None:
    p = LIFParams(tau=1.7, v_threshold=0.9, v_reset=None, strict_window=True)
    x = _input((5, 2, 9), seed=4).requires_grad_()
    node = _sj_node(p)
    node(x)
    node.v.sum().backward()
    gx_ref, x.grad = x.grad, None
    lif_multistep(x, None, p)[1].sum().backward()
    torch.testing.assert_close(x.grad, gx_ref, atol=ATOL, rtol=RTOL)


def test_known_trajectory_by_hand() -> None:
    x = torch.full((4, 1, 1), 1.5)
    # tau 2, decay_input: H = V + (1.5 - V)/2 -> 0.75, 1.125 (fire), then the same again
    s, v = lif_multistep(x, None, LIFParams())
    assert s.flatten().tolist() == [0.0, 1.0, 0.0, 1.0]
    assert v.item() == 0.0
    # soft reset: 0.75; 1.125 -> 0.125; 0.8125; 1.15625 -> 0.15625
    s, v = lif_multistep(x, None, LIFParams(v_reset=None))
    assert s.flatten().tolist() == [0.0, 1.0, 0.0, 1.0]
    assert v.item() == 0.15625
    # decay_input=False, x = 0.6: H = V/2 + 0.6 -> 0.6, 0.9, 1.05 (fire), 0.6
    s, v = lif_multistep(torch.full((4, 1, 1), 0.6), None, LIFParams(decay_input=False))
    assert s.flatten().tolist() == [0.0, 0.0, 1.0, 0.0]
    assert v.item() == pytest.approx(0.6)


def test_gradient_by_hand() -> None:
    # H1 = 0.75, H2 = 1.125: both within lens = 0.5 of V_th = 1, so dS/dH = 1 at both steps.
    # L = S1 + S2: dL/dH2 = 1; dL/dH1 = 1 + (1 - 1/tau)(1 - S1) dL/dH2 = 1.5;
    # dL/dX = dL/dH / tau = [0.75, 0.5]
    x = torch.full((2, 1), 1.5, requires_grad=True)
    lif_multistep(x)[0].sum().backward()
    assert x.grad.flatten().tolist() == [0.75, 0.5]


@pytest.mark.parametrize("strict, expected", [(False, 0.5), (True, 0.0)])
def test_window_boundary_in_lif(strict: bool, expected: float) -> None:
    # x = 3: H = 1.5, H - V_th = 0.5 = lens exactly; closed window (Eq. 8) passes 1/(2 lens) = 1
    x = torch.full((1, 1), 3.0, requires_grad=True)
    lif_multistep(x, None, LIFParams(strict_window=strict))[0].sum().backward()
    assert x.grad.item() == expected  # 1 * 1 / tau


def test_rect_spike_forward_and_window() -> None:
    x = torch.tensor([-0.75, -0.5, -0.25, 0.0, 0.5, 0.6], requires_grad=True)
    s = rect_spike(x, 0.5)
    assert s.tolist() == [0.0, 0.0, 0.0, 1.0, 1.0, 1.0]
    s.sum().backward()
    assert x.grad.tolist() == [0.0, 1.0, 1.0, 1.0, 1.0, 0.0]  # |x| <= 0.5, height 1/(2*0.5)
    x.grad = None
    rect_spike(x, 0.25).sum().backward()
    assert x.grad.tolist() == [0.0, 0.0, 2.0, 2.0, 0.0, 0.0]  # |x| <= 0.25, height 2
    # strict window = SpikingJelly's Rect(alpha=1): |x| < 0.5
    x.grad = None
    rect_spike(x, 0.5, strict_window=True).sum().backward()
    y = x.detach().clone().requires_grad_()
    surrogate.Rect(alpha=1.0)(y).sum().backward()
    assert x.grad.tolist() == y.grad.tolist() == [0.0, 0.0, 1.0, 1.0, 0.0, 0.0]


def test_module_is_stateless_and_leaves_v_init_alone() -> None:
    layer = LIF(LIFParams(tau=1.7, v_threshold=0.9))
    x = _input((5, 2, 4, 6, 6), seed=5)
    first, second = layer(x), layer(x[:, :1])  # a different batch size is no problem either
    assert torch.equal(layer(x), first)
    assert torch.equal(second, first[:, :1])
    assert list(layer.parameters()) == [] and list(layer.buffers()) == []
    v0 = torch.full((2, 4, 6, 6), 0.3)
    lif_multistep(x, v0, layer.params)
    assert (v0 == 0.3).all()


def test_chunks_chained_through_v_init_match_whole_sequence() -> None:
    p = LIFParams(tau=1.7, v_threshold=0.9, v_reset=None, detach_reset=False)
    x = _input((8, 3, 10), seed=6).requires_grad_()
    grad_s = torch.randn(x.shape, generator=torch.Generator().manual_seed(8))
    s_full, v_full = lif_multistep(x, None, p)
    (s_full * grad_s).sum().backward()
    g_full, x.grad = x.grad, None

    s_a, v_a = lif_multistep(x[:3], None, p)
    s_b, v_b = lif_multistep(x[3:], v_a, p)
    assert torch.equal(torch.cat([s_a, s_b]), s_full)
    assert torch.equal(v_b, v_full)
    (torch.cat([s_a, s_b]) * grad_s).sum().backward()
    torch.testing.assert_close(x.grad, g_full, atol=ATOL, rtol=RTOL)


def test_no_grad_and_float64_paths_agree() -> None:
    p = LIFParams(tau=1.7, v_threshold=0.9)
    x = _input((4, 2, 7), seed=9)
    s_grad, v_grad = lif_multistep(x.clone().requires_grad_(), None, p)
    with torch.no_grad():
        s, v = lif_multistep(x, None, p)
    assert torch.equal(s, s_grad) and torch.equal(v, v_grad)
    s64, _ = lif_multistep(x.double(), None, p)
    assert s64.dtype == torch.float64
    assert (s64 != s).sum() <= 1  # only a rounding at the threshold could differ
    s_int, _ = lif_multistep(torch.ones(3, 2, dtype=torch.int64), None, p)
    assert s_int.dtype == torch.float32


def test_autocast_bf16() -> None:
    conv = torch.nn.Conv2d(3, 4, 3, padding=1)
    layer = LIF()
    x = torch.randn(3, 2, 3, 8, 8, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = conv(x.flatten(0, 1)).unflatten(0, (3, 2))  # [T, B, C, H, W] in bf16
        assert y.dtype == torch.bfloat16
        s = layer(y)
    assert s.dtype == torch.bfloat16
    assert set(s.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(s.float(), layer(y.detach().float()))  # computed in float32 inside
    s.float().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_second_backward_through_same_graph_raises() -> None:
    x = _input((3, 4), seed=10).requires_grad_()
    loss = lif_multistep(x)[0].sum()
    loss.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="twice"):
        loss.backward()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"tau": 1.0},  # SpikingJelly also requires tau > 1
        {"tau": 0.5},
        {"tau": math.nan},
        {"v_threshold": math.inf},
        {"v_reset": math.nan},
        {"lens": 0.0},
        {"lens": -0.5},
        {"detach_reset": 1},
    ],
)
def test_params_reject(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        LIFParams(**kwargs)


def test_bad_shapes_and_lens_reject() -> None:
    with pytest.raises(ValueError, match="T, B"):
        lif_multistep(torch.zeros(5))
    with pytest.raises(ValueError, match="T >= 1"):
        lif_multistep(torch.zeros(0, 2))
    with pytest.raises(ValueError, match="v_init"):
        lif_multistep(torch.zeros(3, 2, 4), torch.zeros(2, 5))
    with pytest.raises(ValueError, match="lens"):
        rect_spike(torch.zeros(3), 0.0)


def test_params_are_frozen_and_alpha_matches_eq8() -> None:
    p = LIFParams(tau=4, lens=0.25)
    assert isinstance(p.tau, float) and p.surrogate_alpha == 2.0
    with pytest.raises(AttributeError):
        p.tau = 3.0  # type: ignore[misc]
