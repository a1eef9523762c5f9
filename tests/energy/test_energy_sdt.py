"""The ``sdt`` convention: the spike-driven transformer papers' accounting, by hand."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch
from test_energy_conventions import SYN  # one spike-driven conv call, 360 dense MACs
from torch import nn

from energy.conventions import derive
from energy.profile import profile_model
from fsve.nn.neurons import LIF


def test_sdt_synapse_is_rate_times_flops_and_nothing_else():
    snn, ann = derive("synapse", SYN, {"bias": True}, "sdt")
    assert snn["sops"] == pytest.approx(10 / 50 * 360)  # fr x FLOPs x T = 72, not 70 exact
    assert snn["macs"] == 0 and snn["adds"] == 0  # no bias add
    assert ann["macs"] == 360 and ann["adds"] == 0
    memory = ("weight_reads", "bias_reads", "potential_reads", "input_reads", "output_writes")
    assert all(snn[k] == 0 and ann[k] == 0 for k in memory)


def test_sdt_mixed_real_and_spike_calls():
    # one call on 50 spikes-like inputs (10 events, 360 MACs) + one on 50 real inputs (360)
    mixed = {**SYN, "in_numel": 100, "in_numel_real": 50, "dense_macs": 720, "macs": 360}
    snn, _ = derive("synapse", mixed, {"bias": False}, "sdt")
    assert snn["macs"] == 360  # the real call: E_MAC
    assert snn["sops"] == pytest.approx(10 / 50 * 360)  # the spike call's own rate


def test_sdt_neurons_norms_and_elementwise_are_free():
    snn, ann = derive("neuron", {"updates": 40, "spikes_out": 6}, {"stateful": True}, "sdt")
    assert snn["neuron_updates"] == 40 and snn["spikes_out"] == 6  # kept for the firing rate
    assert snn["potential_reads"] == snn["output_writes"] == snn["input_reads"] == 0
    for kind, prims in (("norm", {"numel": 40}), ("elementwise", {"ann_adds": 8, "snn_adds": 3})):
        snn, ann = derive(kind, prims, {}, "sdt", "explicit")
        assert all(v == 0 for v in (*snn.values(), *ann.values()))


class RealInputNet(nn.Module):
    """``[T, B, 1, 6, 6]`` real frames -> conv (encoding) -> BN -> LIF -> conv s2 -> LIF -> fc."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(4)
        self.lif1 = LIF()
        self.conv2 = nn.Conv2d(4, 8, 3, stride=2, padding=1)
        self.lif2 = LIF()
        self.fc = nn.Linear(8 * 3 * 3, 5)

    def spikes(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        t, b = x.shape[:2]
        s1 = self.lif1(self.bn1(self.conv1(x.flatten(0, 1))).unflatten(0, (t, b)))
        s2 = self.lif2(self.conv2(s1.flatten(0, 1)).unflatten(0, (t, b)))
        return s1, s2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.spikes(x)[1].flatten(2))


@pytest.fixture(scope="module")
def real_net() -> tuple[nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    net = RealInputNet().eval()
    with torch.no_grad():  # positive weights so that both LIF layers fire
        net.conv1.weight.uniform_(0.0, 0.4)
        net.conv2.weight.uniform_(0.0, 0.2)
    rng = np.random.default_rng(0)
    x = torch.from_numpy(3 * rng.random((4, 2, 1, 6, 6)).astype(np.float32))  # T=4, B=2
    return net, x


def test_sdt_total_is_the_papers_formula(real_net):
    net, x = real_net
    t, b = x.shape[:2]
    report = profile_model(net, x, convention="sdt", batch_dim=1, time_steps=t)
    with torch.no_grad():
        s1, s2 = net.spikes(x)
    assert s1.sum() > 0 and s2.sum() > 0
    flops1 = t * b * 4 * 6 * 6 * 1 * 9  # conv1: outputs x C_in x k^2, over T and B
    flops2 = t * b * 8 * 3 * 3 * 4 * 9  # conv2, stride 2
    flops3 = t * b * 72 * 5  # fc
    fr2, fr3 = (s.sum().item() / s.numel() for s in (s1, s2))  # input rates of conv2, fc
    # E = E_MAC x FLOPs(first layer) + E_AC x sum fr x FLOPs x T; horowitz45: 4.6 and 0.9 pJ
    snn = (4.6 * flops1 + 0.9 * (fr2 * flops2 + fr3 * flops3)) * 1e-12 / b
    ann = 4.6 * (flops1 + flops2 + flops3) * 1e-12 / b
    assert report.costs.name == "horowitz45"  # the papers' E_MAC and E_AC by default
    assert report.row("snn")["total_j"] == pytest.approx(snn, rel=1e-12)
    assert report.row("ann")["total_j"] == pytest.approx(ann, rel=1e-12)
    assert report.row("snn")["compute_j"] == report.row("snn")["total_j"]
    assert report.row("snn")["neuron_j"] == 0 and report.row("snn")["memory_j"] == 0
    assert report.row("snn")["macs"] == flops1 / b  # per inference
    assert 0 < report.row("snn")["firing_rate"] < 1  # neuron updates still counted for it


def test_sdt_side_by_side_with_the_memory_conventions(real_net):
    net, x = real_net
    report = profile_model(net, x, convention="sdt", batch_dim=1)
    side = report.side_by_side.set_index("convention")
    assert list(side.index) == ["simple", "lemaire", "sdt"]
    assert side.loc["sdt", "snn_j"] == pytest.approx(report.row("snn")["total_j"], rel=1e-12)
    assert side.loc["sdt", "break_even_rate"] == pytest.approx(
        report.row("snn")["break_even_rate"], rel=1e-12
    )
    for convention in ("simple", "lemaire"):
        alone = profile_model(net, x, costs="horowitz45", convention=convention, batch_dim=1)
        assert alone.side_by_side is None
        assert side.loc[convention, "snn_j"] == pytest.approx(alone.row("snn")["total_j"])
        assert side.loc[convention, "ann_j"] == pytest.approx(alone.row("ann")["total_j"])
        assert side.loc[convention, "break_even_rate"] == pytest.approx(
            alone.row("snn")["break_even_rate"]
        )
        assert side.loc[convention, "snn_j"] > side.loc["sdt", "snn_j"]  # memory on top
    text = report.table()
    assert "Side by side" in text and "not counted under sdt" in text
    assert "Warning" not in text


def test_sdt_with_other_constants_warns(real_net):
    net, x = real_net
    report = profile_model(net, x, costs="paper", convention="sdt", batch_dim=1)
    assert "Warning: the SDT papers price E_MAC 4.6 and E_AC 0.9 pJ" in report.table()
    assert not math.isnan(report.row("snn")["total_j"])


def test_sdt_on_an_ann_alone():
    torch.manual_seed(0)
    ann = nn.Sequential(nn.Linear(6, 4), nn.ReLU(), nn.Linear(4, 3))
    report = profile_model(ann, torch.randn(2, 6), convention="sdt")
    assert report.break_even is None and list(report.summary["model"]) == ["ann"]
    # E_MAC x (6 x 4 + 4 x 3) MACs per sample; bias adds and the ReLU not counted
    assert report.row("ann")["total_j"] == pytest.approx(4.6 * (24 + 12) * 1e-12, rel=1e-12)
    side = report.side_by_side.set_index("convention")
    assert side["snn_j"].isna().all()
    assert side.loc["simple", "ann_j"] > side.loc["sdt", "ann_j"]
    assert re.search(r"\bnan\b", report.table()) is None
