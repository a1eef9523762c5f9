"""Interoperability with SpikingJelly's ``nir_exchange``: our graphs in, theirs in our simulator."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from export.nir import to_nir
from export.sim import simulate
from fsve.nn.neurons import LIF, LIFParams

sj = pytest.importorskip("spikingjelly.activation_based")
from spikingjelly.activation_based import functional, layer, neuron  # noqa: E402
from spikingjelly.activation_based.nir_exchange import export_to_nir, import_from_nir  # noqa: E402


def spikes(shape: tuple[int, ...], rate: float, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=g) < rate).float()


def scaled(net: nn.Module, factor: float) -> nn.Module:
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.Conv2d | nn.Linear):
                m.weight.mul_(factor)
    functional.set_step_mode(net, "m")
    return net.eval()


def run_sj(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    functional.reset_net(net)
    with torch.no_grad():
        y = net(x)
    functional.reset_net(net)
    return y


def test_our_export_of_a_chain_loads_in_spikingjelly_with_the_same_spikes():
    torch.manual_seed(0)
    net = scaled(
        nn.Sequential(
            layer.Conv2d(2, 8, 3, padding=1, bias=False),
            layer.BatchNorm2d(8),
            LIF(LIFParams(tau=2.0)),  # ours
            layer.AvgPool2d(2),
            layer.Conv2d(8, 8, 3, padding=1),
            neuron.LIFNode(tau=3.0, decay_input=False, v_threshold=0.5, step_mode="m"),
            layer.Flatten(),
            layer.Linear(8 * 4 * 4, 10),
            neuron.IFNode(step_mode="m"),
        ),
        4.0,
    )
    net.train()
    run_sj(net, spikes((6, 16, 2, 8, 8), 0.3, 1))  # BN statistics of spiking inputs
    net.eval()
    x = spikes((6, 4, 2, 8, 8), 0.3, 0)
    want = run_sj(net, x)
    assert want.sum() > 5
    graph = to_nir(net, x).graph
    ours = simulate(graph, x)["output"]
    gm = import_from_nir(graph, step_mode="m")
    with torch.no_grad():
        theirs, _ = gm(x)
    # our thresholds are nextafter(V_th, -inf) and SpikingJelly compares with >=: equal unless
    # a voltage lands exactly one float below V_th
    assert torch.equal(ours, want)
    assert torch.equal(theirs, want)


@pytest.mark.parametrize("kind", ["lif", "if", "cubalif"])
def test_spikingjelly_graphs_run_in_our_simulator(kind):
    torch.manual_seed(1)
    node = {
        "lif": lambda: neuron.LIFNode(tau=2.0, step_mode="m"),
        "if": lambda: neuron.IFNode(step_mode="m"),
        "cubalif": lambda: neuron.CUBALIFNode(c_decay=0.5, v_decay=0.75, v_threshold=1.0),
    }[kind]
    net = scaled(
        nn.Sequential(
            layer.Conv2d(2, 6, 3, padding=1),
            node(),
            layer.AvgPool2d(2),
            layer.Flatten(),
            layer.Linear(6 * 4 * 4, 10),
            node(),
        ),
        4.0,
    )
    with torch.no_grad():
        net[4].weight.mul_(4.0)  # 12-44% of the output neurons fire per step
        net[4].bias.fill_(0.5)
    x = spikes((8, 3, 2, 8, 8), 0.3, 2)
    graph = export_to_nir(net, x)
    want = run_sj(net, x)
    hidden = run_sj(net[:2], x)
    out = simulate(graph, x)
    assert want.sum() > 5 and hidden.sum() > 20
    # SpikingJelly writes its >= threshold as NIR's > threshold: equal unless v == V_th exactly
    assert torch.equal(out["output"], want)
    assert torch.equal(out["_1"], hidden)
