"""Memory terms of both conventions, from given primitives and end to end on a small SNN."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from energy.conventions import COUNT_COLUMNS, derive
from energy.counting import Collector
from fsve.nn.neurons import LIF
from fsve.nn.norm import TDBN2d

# one spike-driven call of a conv: 10 input spikes, 70 exact SOPs (borders), 90 nominal
# (10 spikes x 9 synapses), 50 inputs, 40 outputs, 360 dense MACs, Lemaire FNN input reads 360
SYN = {
    "calls": 1,
    "dense_macs": 360,
    "sops": 70,
    "sops_nominal": 90,
    "macs": 0,
    "spikes_in": 10,
    "in_numel": 50,
    "in_numel_real": 0,
    "out_numel": 40,
    "out_numel_real": 0,
    "lemaire_in_dense": 360,
    "lemaire_in_real": 0,
}


def test_synapse_simple():
    snn, ann = derive("synapse", SYN, {"bias": True}, "simple")
    assert snn["sops"] == 70 and snn["macs"] == 0 and snn["dense_macs"] == 360
    assert snn["input_reads"] == 10  # one read per input spike
    assert snn["weight_reads"] == 70  # one weight per accumulate
    assert snn["bias_reads"] == 40 and snn["adds"] == 40  # bias per output element and step
    assert snn["output_writes"] == 40  # each output current written once
    assert snn["potential_reads"] == snn["potential_writes"] == 0
    assert ann["macs"] == ann["weight_reads"] == 360  # dense: every synapse, one weight each
    assert ann["input_reads"] == 50 and ann["output_writes"] == 40 and ann["bias_reads"] == 40
    assert ann["sops"] == 0 and ann["spikes_in"] == 0


def test_synapse_lemaire():
    snn, ann = derive("synapse", SYN, {"bias": True}, "lemaire")
    assert snn["input_reads"] == 10  # theta_in
    assert snn["weight_reads"] == 90  # theta_in x C_out x k x k (Eq. 7f)
    assert snn["potential_reads"] == snn["potential_writes"] == 90  # + T.C.H.W at the neuron
    assert snn["bias_reads"] == 40  # T x C_out x H_out x W_out (Eq. 7s)
    assert snn["output_writes"] == 0  # accumulations land in the membranes
    assert ann["input_reads"] == 360  # FNN conv: C_in.k.k.C_out.H_out.W_out (Eq. 3)
    assert ann["weight_reads"] == 360 and ann["bias_reads"] == 40 and ann["output_writes"] == 40


def test_synapse_with_real_input_counts_dense_in_both_conventions():
    real = {
        **SYN,
        "sops": 0,
        "sops_nominal": 0,
        "spikes_in": 0,
        "macs": 360,
        "in_numel_real": 50,
        "out_numel_real": 40,
        "lemaire_in_real": 360,
    }
    snn, _ = derive("synapse", real, {"bias": False}, "simple")
    assert (snn["macs"], snn["weight_reads"], snn["input_reads"], snn["output_writes"]) == (
        360,
        360,
        50,
        40,
    )
    snn, _ = derive("synapse", real, {"bias": False}, "lemaire")
    assert (snn["macs"], snn["weight_reads"], snn["input_reads"], snn["output_writes"]) == (
        360,
        360,
        360,
        40,
    )
    assert snn["potential_reads"] == 0 and snn["bias_reads"] == 0


NEURON = {"calls": 1, "updates": 40, "spikes_out": 6}


def test_neuron_simple_and_lemaire():
    snn, ann = derive("neuron", NEURON, {"stateful": True}, "simple")
    assert snn["neuron_updates"] == 40 and snn["spikes_out"] == 6
    assert snn["potential_reads"] == snn["potential_writes"] == 40  # once per neuron and step
    assert snn["input_reads"] == 40  # the input current
    assert snn["output_writes"] == 6  # one event per spike
    assert all(v == 0 for k, v in ann.items() if k not in ("inputs", "outputs"))  # fused ReLU
    snn, _ = derive("neuron", NEURON, {"stateful": False}, "simple")  # SN: no membrane
    assert snn["potential_reads"] == snn["potential_writes"] == 0 and snn["input_reads"] == 40
    snn, _ = derive("neuron", NEURON, {"stateful": True}, "lemaire")
    assert snn["potential_reads"] == snn["potential_writes"] == 40  # leak/fire pass (Eq. 9, 14)
    assert snn["input_reads"] == 0 and snn["output_writes"] == 6  # theta_out (Eq. 13)


@pytest.mark.parametrize("norm", ["fold", "free", "explicit"])
def test_norm_modes(norm):
    snn, ann = derive("norm", {"calls": 1, "numel": 40}, {}, "simple", norm)
    assert snn == ann
    expect = {"fold": (40, 0, 40, 0), "free": (0, 0, 0, 0), "explicit": (0, 40, 40, 40)}[norm]
    assert (snn["adds"], snn["macs"], snn["bias_reads"], snn["input_reads"]) == expect


def test_elementwise_defaults_snn_to_ann():
    snn, ann = derive("elementwise", {"ann_adds": 8, "ann_input_reads": 8, "snn_adds": 3}, {})
    assert ann["adds"] == 8 and snn["adds"] == 3 and snn["input_reads"] == 8


def test_bad_convention_and_norm():
    with pytest.raises(ValueError, match="convention"):
        derive("synapse", SYN, {}, "fancy")
    with pytest.raises(ValueError, match="norm"):
        derive("norm", {"numel": 1}, {}, "simple", "maybe")


class Net(nn.Module):
    """conv(bias) -> TDBN -> LIF -> linear, time-first [T, B, 1, 4, 4]."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, padding=1)
        self.bn = TDBN2d(2)
        self.lif = LIF()
        self.fc = nn.Linear(32, 3, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x.flatten(0, 1)).unflatten(0, x.shape[:2])  # [T, B, 2, 4, 4]
        s = self.lif(self.bn(y))
        return self.fc(s.flatten(2))  # [T, B, 3]


def test_every_memory_term_end_to_end():
    torch.manual_seed(0)
    net = Net().eval()
    with torch.no_grad():
        net.conv.weight.fill_(1.0)
        net.conv.bias.fill_(0.5)
    rng = np.random.default_rng(0)
    x = torch.from_numpy((rng.random((3, 2, 1, 4, 4)) < 0.5).astype(np.float32))
    with Collector(net) as c, torch.no_grad():
        c.begin_batch(2)
        net(x)
        recs = c.end_batch()
    s = net.lif(net.bn(net.conv(x.flatten(0, 1)).unflatten(0, x.shape[:2]))).detach()
    theta_in, theta_out = x.sum().item(), s.sum().item()
    outputs = 3 * 2 * 2 * 16  # T x B x C_out x H x W = 192 neurons x steps
    # exact conv SOPs: every output reads the spikes in its 3x3 window, for both channels
    window = torch.nn.functional.conv2d(x.flatten(0, 1), torch.ones(1, 1, 3, 3), padding=1)
    sops = 2 * window.sum().item()
    conv = {
        c: v
        for c, v in zip(
            ("simple", "lemaire"),
            [
                derive("synapse", recs["conv"].prims, recs["conv"].static, conv_)[0]
                for conv_ in ("simple", "lemaire")
            ],
            strict=True,
        )
    }
    assert conv["simple"]["sops"] == conv["lemaire"]["sops"] == sops
    assert conv["simple"]["input_reads"] == theta_in
    assert conv["simple"]["weight_reads"] == sops
    assert conv["simple"]["bias_reads"] == outputs
    assert conv["simple"]["output_writes"] == outputs
    assert conv["lemaire"]["input_reads"] == theta_in
    assert conv["lemaire"]["weight_reads"] == theta_in * 2 * 9
    assert conv["lemaire"]["potential_reads"] == theta_in * 2 * 9
    assert conv["lemaire"]["potential_writes"] == theta_in * 2 * 9
    assert conv["lemaire"]["bias_reads"] == outputs
    assert conv["lemaire"]["output_writes"] == 0
    for convention in ("simple", "lemaire"):
        lif, _ = derive("neuron", recs["lif"].prims, recs["lif"].static, convention)
        assert lif["neuron_updates"] == outputs
        assert lif["potential_reads"] == lif["potential_writes"] == outputs
        assert lif["output_writes"] == theta_out
        assert lif["input_reads"] == (outputs if convention == "simple" else 0)
        fc, ann = derive("synapse", recs["fc"].prims, recs["fc"].static, convention)
        assert fc["sops"] == theta_out * 3
        assert fc["input_reads"] == theta_out
        assert fc["weight_reads"] == theta_out * 3
        assert ann["macs"] == ann["weight_reads"] == 3 * 2 * 32 * 3  # T.B x 32 x 3
        assert ann["input_reads"] == 3 * 2 * 32  # each input read once (FNN linear, Eq. 4)
        bn, _ = derive("norm", recs["bn"].prims, recs["bn"].static, convention)
        assert bn["adds"] == bn["bias_reads"] == outputs  # folded bias of TDBN
    assert set(conv["simple"]) == set(COUNT_COLUMNS)
