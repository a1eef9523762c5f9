"""NeuroBench 2.3 as an external oracle of our counts (issue 15, item 2).

NeuroBench's ``SynapticOperations`` (Effective_ACs, Effective_MACs, Dense) and
``MembraneUpdates`` run through its own ``Benchmark`` on snnTorch and plain torch nets; our
per-sample ``sops``, ``macs``, ``dense_macs`` and ``neuron_updates`` equal its figures exactly,
or equal them plus the correction ``docs/energy.md`` states where the two define a quantity
differently (zero-padding taps, zero activations of real-valued inputs, unchanged membranes).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from energy.profile import profile_model

snn = pytest.importorskip("snntorch")
pytest.importorskip("neurobench")
from neurobench.benchmarks import Benchmark  # noqa: E402
from neurobench.metrics.workload import MembraneUpdates, SynapticOperations  # noqa: E402
from neurobench.models import SNNTorchModel, TorchModel  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

B, T = 3, 4


def neurobench(model, x: torch.Tensor) -> dict[str, float]:
    """NeuroBench's per-sample figures of ``model`` (a NeuroBench wrapper) on one batch."""
    data = DataLoader(TensorDataset(x, torch.zeros(len(x))), batch_size=len(x))
    bench = Benchmark(model, data, [], [], [[], [SynapticOperations, MembraneUpdates]])
    res = bench.run(quiet=True)
    ops = res["SynapticOperations"]
    assert isinstance(ops, dict), ops  # NeuroBench prints a failing metric and returns 0.0
    return {
        "sops": ops["Effective_ACs"],
        "macs": ops["Effective_MACs"],
        "dense_macs": ops["Dense"],
        "neuron_updates": res["MembraneUpdates"],
    }


def ours(net: nn.Module, x: torch.Tensor, snn_model: bool = True) -> dict[str, float]:
    """Our per-sample figures; snnTorch nets run one step per call over ``[B, T, ...]``."""

    def over_time(xb: torch.Tensor) -> torch.Tensor:
        return torch.stack([net(xb[:, t])[0] for t in range(xb.shape[1])], 1)

    if snn_model:
        row = profile_model(net, x, forward=over_time, batch_dim=0).row("snn")
    else:
        row = profile_model(net, x).row("ann")
    return {k: float(row[k]) for k in ("sops", "macs", "dense_macs", "neuron_updates")}


def leaky(output: bool = False) -> nn.Module:
    return snn.Leaky(beta=0.9, threshold=0.5, init_hidden=True, output=output)


def linear_net() -> nn.Module:
    return nn.Sequential(nn.Linear(20, 16), leaky(), nn.Linear(16, 5), leaky(True))


def conv_net(padding: int = 0) -> nn.Module:
    size = 8 - 2 * (2 - 2 * padding)  # two 3x3 convs
    return nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=padding),
        leaky(),
        nn.Conv2d(4, 4, 3, padding=padding, bias=False),
        leaky(),
        nn.Flatten(),
        nn.Linear(4 * size * size, 5),
        leaky(True),
    )


def pool_net() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(2, 6, 3, padding=0),
        leaky(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(6 * 3 * 3, 5),
        leaky(True),
    )


def spikes(shape: tuple[int, ...], seed: int, rate: float = 0.3) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=g) < rate).float()


CASES = {
    "linear": (linear_net, (B, T, 20)),
    "conv": (conv_net, (B, T, 2, 8, 8)),
    "maxpool": (pool_net, (B, T, 2, 8, 8)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_spiking_nets_equal_neurobench_exactly(case):
    build, shape = CASES[case]
    torch.manual_seed(0)
    net = build()
    x = spikes(shape, seed=1)
    theirs = neurobench(SNNTorchModel(net), x)
    mine = ours(net, x)
    assert theirs["sops"] > 0 and theirs["neuron_updates"] > 0
    assert mine == theirs  # binary input: no MACs on either side


def test_mixed_net_analog_first_layer_equals_neurobench():
    # real-valued input (no zeros) into the first layer: MACs; spikes after it: accumulates
    torch.manual_seed(0)
    net = linear_net()
    x = torch.rand(B, T, 20, generator=torch.Generator().manual_seed(2)) + 0.1
    theirs = neurobench(SNNTorchModel(net), x)
    mine = ours(net, x)
    assert theirs["macs"] == T * 20 * 16 > 0
    assert mine == theirs


def test_zero_padding_taps_are_in_our_dense_count_not_neurobenchs():
    # NeuroBench's Dense convolves all-ones inputs with the layer zero-padded: taps on padding
    # read zeros and do not count; our dense_macs (the ANN twin's MACs) include them
    torch.manual_seed(0)
    net = conv_net(padding=1)
    x = spikes((B, T, 2, 8, 8), seed=3)
    theirs = neurobench(SNNTorchModel(net), x)
    mine = ours(net, x)
    inside = (3 * 8 - 2) ** 2  # in-bounds taps of a 3x3 stride-1 'same' conv on 8x8, per pair
    padded = 9 * 8 * 8 - inside
    channel_pairs = 2 * 4 + 4 * 4
    assert mine["dense_macs"] == theirs["dense_macs"] + T * channel_pairs * padded
    assert mine["sops"] == theirs["sops"]  # accumulates are exact at borders on both sides
    assert mine["neuron_updates"] == theirs["neuron_updates"]


def test_ann_zero_activations_are_skipped_by_neurobench_effective_macs():
    # a ReLU ANN: NeuroBench's Effective_MACs skip zero activations; our MACs are the dense
    # work of a real-valued layer (zeros included), so ours = theirs + zeros x fan-out
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(20, 16), nn.ReLU(), nn.Linear(16, 5))
    x = torch.randn(B, 20, generator=torch.Generator().manual_seed(4))
    theirs = neurobench(TorchModel(net), x)
    mine = ours(net, x, snn_model=False)
    with torch.no_grad():
        zeros = int((torch.relu(net[0](x)) == 0).sum())
    assert zeros > 0
    assert mine["dense_macs"] == theirs["dense_macs"] == 20 * 16 + 16 * 5
    assert mine["macs"] == theirs["macs"] + zeros * 5 / B
    assert mine["sops"] == theirs["sops"] == 0 and mine["neuron_updates"] == 0


def test_neurobench_membrane_updates_skip_unchanged_membranes():
    # NeuroBench counts, after the first step, only membranes whose value changed; a neuron at
    # rest with no input does not change. Ours: neurons x steps. The bias-free first layer
    # rests while its input is silent (the biased second layer always moves).
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(20, 16, bias=False), leaky(), nn.Linear(16, 5), leaky(True))
    x = spikes((B, T, 20), seed=5)
    x[0, :2] = 0  # sample 0 silent for two steps, sample 1 throughout
    x[1] = 0
    theirs = neurobench(SNNTorchModel(net), x)
    mine = ours(net, x)
    unchanged = 0
    snn.utils.reset(net)
    with torch.no_grad():
        for t in range(T):
            before = [net[1].mem.clone(), net[3].mem.clone()]
            net(x[:, t])
            if t:
                after = [net[1].mem, net[3].mem]
                unchanged += sum(int((a == b).sum()) for a, b in zip(after, before, strict=True))
    assert unchanged == 16 * (1 + 3)  # sample 0: step 1; sample 1: steps 1-3
    assert mine["neuron_updates"] == T * (16 + 5)
    assert mine["neuron_updates"] * B == theirs["neuron_updates"] * B + unchanged
    assert mine["sops"] == pytest.approx(theirs["sops"], rel=1e-15)  # 565 / 3, one ulp apart
