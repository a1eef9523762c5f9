"""Counting engine: SOPs, MACs, attention products and neuron updates against brute force."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from energy.counting import Collector, conv_fanout
from energy.profile import profile_model
from fsve.nn.attention import SN, SpikeMatmul
from fsve.nn.neurons import LIF


def count(model: nn.Module, *args: torch.Tensor, event_driven: bool = True) -> dict:
    """Primitives per layer name after one forward of ``model(*args)``."""
    with Collector(model, event_driven=event_driven) as c, torch.no_grad():
        c.begin_batch(1)
        model(*args)
        return {name: rec.prims for name, rec in c.end_batch().items()}


class One(nn.Module):
    """Wraps one layer so that its record is named "layer"."""

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, *args: torch.Tensor) -> torch.Tensor:
        return self.layer(*args)


def brute_conv_sops(x: np.ndarray, conv: nn.Conv2d) -> int:
    """Accumulates a conv triggers: for every output neuron and tap, |x| of the input it reads."""
    n, _, h, w = x.shape
    cout, cin_g, kh, kw = conv.weight.shape
    sh, sw = conv.stride
    dh, dw = conv.dilation
    if isinstance(conv.padding, str):  # 'same': the extra padding goes right
        ph, pw = (dh * (kh - 1)) // 2, (dw * (kw - 1)) // 2
        oh, ow = h, w
    else:
        ph, pw = conv.padding
        oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
        ow = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    per_group = cout // conv.groups
    total = 0
    for b, co, i, j, c, a, e in itertools.product(
        range(n), range(cout), range(oh), range(ow), range(cin_g), range(kh), range(kw)
    ):
        ci = (co // per_group) * cin_g + c
        y, z = i * sh - ph + a * dh, j * sw - pw + e * dw
        if 0 <= y < h and 0 <= z < w:
            total += abs(int(x[b, ci, y, z]))
    return total


SYMMETRIC = [
    dict(in_channels=2, out_channels=3, kernel_size=3, stride=1, padding=1),
    dict(in_channels=2, out_channels=3, kernel_size=3, stride=2, padding=1),
    dict(in_channels=2, out_channels=2, kernel_size=3, stride=2, padding=0),
    dict(in_channels=2, out_channels=3, kernel_size=(3, 2), stride=(1, 2), padding=(2, 0)),
    dict(in_channels=4, out_channels=4, kernel_size=3, stride=1, padding=2, dilation=2, groups=2),
    dict(in_channels=2, out_channels=2, kernel_size=1, stride=2, padding=0),
]
# 'same' with an even kernel pads one more on the right than on the left
CONVS = [*SYMMETRIC, dict(in_channels=2, out_channels=2, kernel_size=4, stride=1, padding="same")]


@pytest.mark.parametrize("spec", SYMMETRIC)
def test_conv_fanout_equals_transposed_conv_of_ones(spec):
    conv = nn.Conv2d(**spec)
    h, w = 7, 6
    out = conv(torch.zeros(1, spec["in_channels"], h, w))
    ones = torch.ones(1, 1, *out.shape[-2:])
    kernel = torch.ones(1, 1, *conv.kernel_size)
    extra = [  # output_padding: input rows/cols past the last full stride still get read
        n - ((o - 1) * s - 2 * p + d * (k - 1) + 1)
        for n, o, s, p, d, k in zip(
            (h, w),
            out.shape[-2:],
            conv.stride,
            conv.padding,
            conv.dilation,
            conv.kernel_size,
            strict=True,
        )
    ]
    ref = F.conv_transpose2d(
        ones,
        kernel,
        stride=conv.stride,
        padding=conv.padding,
        output_padding=extra,
        dilation=conv.dilation,
    )[0, 0]
    fan = conv_fanout(
        (h, w), tuple(out.shape[-2:]), conv.kernel_size, conv.stride, conv.padding, conv.dilation
    )
    assert torch.equal(fan, ref.to(torch.float64))


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("spec", CONVS)
def test_conv_sops_on_binary_spikes_match_brute_force(spec):
    rng = np.random.default_rng(0)
    conv = nn.Conv2d(**spec, bias=False)
    x = (rng.random((3, spec["in_channels"], 7, 6)) < 0.3).astype(np.float32)
    prims = count(One(conv), torch.from_numpy(x))["layer"]
    assert prims["sops"] == brute_conv_sops(x, conv)
    assert prims["spikes_in"] == x.sum()
    assert prims["macs"] == 0
    out_numel = conv(torch.from_numpy(x)).numel()
    taps = int(np.prod(conv.kernel_size))
    assert prims["dense_macs"] == out_numel * conv.weight.shape[1] * taps
    # without border correction every spike reaches C_out/groups x taps synapses
    assert prims["sops_nominal"] == x.sum() * (conv.out_channels // conv.groups) * taps


def test_conv_on_time_first_input_and_reflect_padding():
    rng = np.random.default_rng(1)
    conv = nn.Conv2d(2, 3, 3, padding=1, padding_mode="reflect", bias=False)
    x = (rng.random((2, 3, 2, 5, 5)) < 0.4).astype(np.float32)  # [T, B, C, H, W]
    padded = np.pad(x.reshape(6, 2, 5, 5), ((0, 0), (0, 0), (1, 1), (1, 1)), mode="reflect")
    ref = nn.Conv2d(2, 3, 3, padding=0, bias=False)
    prims = count(One(conv), torch.from_numpy(x).flatten(0, 1))["layer"]
    assert prims["sops"] == brute_conv_sops(padded, ref)


def test_multilevel_spikes_count_value_times_fanout():
    rng = np.random.default_rng(2)
    conv = nn.Conv2d(2, 3, 3, stride=2, padding=1, bias=False)
    x = rng.integers(0, 4, size=(2, 2, 6, 6)).astype(np.float32)  # counts 0..3
    prims = count(One(conv), torch.from_numpy(x))["layer"]
    assert prims["sops"] == brute_conv_sops(x, conv)
    assert prims["spikes_in"] == x.sum()
    assert prims["macs"] == 0

    lin = nn.Linear(5, 4, bias=False)
    counts = torch.tensor([[0.0, 2.0, 0.0, 3.0, 1.0], [1.0, 0.0, 0.0, 0.0, 0.0]])
    prims = count(One(lin), counts)["layer"]
    assert prims["sops"] == (2 + 3 + 1 + 1) * 4  # 7 input events x 4 outputs = 28
    assert prims["dense_macs"] == 2 * 5 * 4


def test_negative_integer_spikes_count_by_magnitude():
    lin = nn.Linear(3, 2, bias=False)
    prims = count(One(lin), torch.tensor([[-1.0, 0.0, 2.0]]))["layer"]
    assert prims["sops"] == (1 + 2) * 2
    assert prims["macs"] == 0


def test_linear_sops_and_real_input_macs():
    rng = np.random.default_rng(3)
    lin = nn.Linear(6, 5)
    s = (rng.random((2, 3, 4, 6)) < 0.25).astype(np.float32)  # [T, B, N, C] spikes
    prims = count(One(lin), torch.from_numpy(s))["layer"]
    assert prims["sops"] == s.sum() * 5  # each spike reaches all 5 outputs
    assert prims["dense_macs"] == s.size * 5
    assert prims["macs"] == 0
    real = torch.from_numpy(rng.random((2, 6)).astype(np.float32))
    prims = count(One(lin), real)["layer"]
    assert prims["sops"] == 0
    assert prims["macs"] == prims["dense_macs"] == 2 * 6 * 5
    assert prims["in_numel_real"] == 12 and prims["out_numel_real"] == 10


def test_ann_collector_counts_everything_dense():
    rng = np.random.default_rng(4)
    conv = nn.Conv2d(2, 3, 3, padding=1, bias=False)
    x = torch.from_numpy((rng.random((2, 2, 5, 5)) < 0.3).astype(np.float32))
    prims = count(One(conv), x, event_driven=False)["layer"]
    assert prims["sops"] == 0
    assert prims["macs"] == prims["dense_macs"] == 2 * 3 * 25 * 2 * 9


def brute_matmul(a: np.ndarray, b: np.ndarray) -> int:
    """Σ over (batch, i, j, l) of |a_il| |b_lj|: an accumulate only where both are non-zero."""
    batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    a = np.broadcast_to(a, (*batch, *a.shape[-2:]))
    b = np.broadcast_to(b, (*batch, *b.shape[-2:]))
    total = 0
    for idx in np.ndindex(*batch):
        aa, bb = a[idx], b[idx]  # [n, k], [k, m]
        for i, j, r in itertools.product(
            range(aa.shape[0]), range(bb.shape[1]), range(aa.shape[1])
        ):
            total += abs(int(aa[i, r])) * abs(int(bb[r, j]))
    return total


@pytest.mark.parametrize(
    "a_shape,b_shape", [((2, 3, 4, 5), (2, 3, 5, 6)), ((2, 3, 4, 5), (5, 6)), ((4, 5), (3, 5, 2))]
)
def test_spike_matmul_counts_and_accumulates(a_shape, b_shape):
    rng = np.random.default_rng(5)
    a = (rng.random(a_shape) < 0.4).astype(np.float32)
    b = (rng.random(b_shape) < 0.5).astype(np.float32)
    prims = count(One(SpikeMatmul()), torch.from_numpy(a), torch.from_numpy(b))["layer"]
    out = np.matmul(a, b)
    assert prims["sops"] == brute_matmul(a, b) == out.sum()  # for binary operands: Σ of A @ B
    products = out.size // (a_shape[-2] * b_shape[-1])
    repeat_a = products // (a.size // (a_shape[-2] * a_shape[-1]))
    assert prims["sops_nominal"] == a.sum() * repeat_a * b_shape[-1]  # event-driven on A only
    assert prims["dense_macs"] == products * a_shape[-2] * a_shape[-1] * b_shape[-1]
    assert prims["macs"] == 0


def test_spike_matmul_integer_and_real_operands():
    rng = np.random.default_rng(6)
    a = (rng.random((3, 4)) < 0.5).astype(np.float32)
    counts = rng.integers(0, 3, size=(4, 2)).astype(np.float32)
    prims = count(One(SpikeMatmul()), torch.from_numpy(a), torch.from_numpy(counts))["layer"]
    assert prims["sops"] == brute_matmul(a, counts)
    real = rng.random((4, 2)).astype(np.float32)
    prims = count(One(SpikeMatmul()), torch.from_numpy(a), torch.from_numpy(real))["layer"]
    assert prims["sops"] == a.sum() * 2  # event-driven on the spikes of A, real rows of B
    prims = count(One(SpikeMatmul()), torch.from_numpy(real.T), torch.from_numpy(real))["layer"]
    assert prims["sops"] == 0 and prims["macs"] == 2 * 4 * 2


def test_neuron_updates_and_spikes():
    torch.manual_seed(0)
    x = torch.randn(4, 3, 5, 2) * 2  # [T, B, C, N]
    lif = LIF()
    prims = count(One(lif), x)["layer"]
    assert prims["updates"] == 4 * 3 * 5 * 2  # neurons x time steps
    assert prims["spikes_out"] == lif(x).sum().item()
    sn = SN(2).eval()
    prims = count(One(sn), x)["layer"]
    assert prims["updates"] == x.numel()
    assert prims["spikes_out"] == sn(x).sum().item()


def test_spike_inputs_of_neurons_skip_the_integer_check_but_count_the_same():
    torch.manual_seed(1)
    model = nn.Sequential(LIF(), nn.Linear(6, 3, bias=False))
    x = torch.randn(2, 4, 6) * 3
    prims = count(model, x)
    spikes = LIF()(x)
    assert prims["1"]["sops"] == spikes.sum().item() * 3
    assert prims["1"]["spikes_in"] == prims["0"]["spikes_out"]


class Scale(nn.Module):
    """A leaf with a parameter and no counting rule."""

    def __init__(self) -> None:
        super().__init__()
        self.g = nn.Parameter(torch.ones(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.g


class Hidden(nn.Module):
    """A container computing functionally (invisible to module hooks)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.fc(x)) + x


def test_unknown_modules_and_functional_ops_are_reported():
    model = nn.Sequential(Scale(), Hidden(), nn.Dropout())
    report = profile_model(model, torch.randn(2, 4), audit=True)
    text = "\n".join(report.unknown)
    assert "0 (Scale)" in text  # unknown leaf
    assert "relu" in text and "1:" in text  # F.relu inside the Hidden container
    assert "Dropout" not in text  # known to compute nothing
    assert report.summary["unknown_modules"].iloc[0] == len(report.unknown)
    assert "NOT COUNTED" in report.table()


def test_fsve_is_fully_counted_and_attention_products_are_seen(micro_fsve, clips):
    x = clips(micro_fsve.cfg, 2, seed=1)
    report = profile_model(micro_fsve, x, audit=True)
    assert report.unknown == []
    snn = report.layers[report.layers["model"] == "snn"].set_index("layer")
    assert snn.loc["visual.blocks.0.attn.qk", "sops"] > 0
    assert snn.loc["visual.blocks.0.attn.av", "sops"] > 0
    assert snn.loc["visual.stem.conv", "macs"] == 0  # binary input frames: accumulates only
    proj = snn.loc["visual.proj"]  # reads firing rates: the one real-valued synapse
    assert proj["macs"] == proj["dense_macs"] > 0 and proj["sops"] == 0
    synapses = snn[snn["kind"] == "synapse"].drop(index="visual.proj")
    assert (synapses["macs"] == 0).all()


def test_teacher_attention_and_functional_ops_are_counted(micro_teacher, clips):
    cfg = micro_teacher.cfg
    x = clips(cfg, 2, seed=2)
    report = profile_model(micro_teacher, x, audit=True)
    assert report.unknown == []
    assert list(report.summary["model"]) == ["ann"]
    ann = report.layers.set_index("layer")
    h, w = cfg.pool_grid
    length, width = h * w + 1, 32 * cfg.base_width
    # attention pooling: one query against (1 + h*w) keys per block, B*K blocks per sample
    assert ann.loc["backbone.pool:sdpa:qk", "macs"] == cfg.num_blocks * length * width
    assert ann.loc["backbone.pool:sdpa:av", "macs"] == cfg.num_blocks * length * width
    d = cfg.embed_dim
    layer = "temporal.encoder.layers.0"
    assert ann.loc[f"{layer}:self_attn:qk", "macs"] == cfg.num_blocks**2 * d
    assert ann.loc[f"{layer}:linear1", "macs"] == cfg.num_blocks * d * 4 * d
    assert "model:block_mean" in ann.index  # the mean over K in encode_video
    assert ann.loc["backbone.layer1.0:relu", "other_ops"] > 0
