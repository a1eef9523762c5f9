"""Neurons of SpikingJelly, snnTorch, Norse and Sinabs counted exactly; the samples axis is read
from the model or asked for; spiking modules without a rule are reported loudly (issue 15)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from energy.profile import profile_model
from energy.profile.model import UncountedSpikingWarning

T, B, N = 3, 2, 3
# [T, B, N] binary input: 7 events in all
X = torch.tensor(
    [
        [[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]],
        [[1.0, 1.0, 0.0], [0.0, 0.0, 0.0]],
        [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]],
    ]
)
EVENTS = 7.0


def eye_linear(n: int = N, scale: float = 1.0) -> nn.Linear:
    lin = nn.Linear(n, n, bias=False)
    with torch.no_grad():
        lin.weight.copy_(scale * torch.eye(n))
    return lin


def snn_row(report) -> dict:
    return report.row("snn").to_dict()


def test_import_energy_loads_no_snn_framework():
    code = (
        "import sys, energy, energy.counting as c; c.rule_table(); "
        "bad = [m for m in ('snntorch', 'norse', 'sinabs', 'spikingjelly') if m in sys.modules]; "
        "sys.exit(len(bad))"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


# -- SpikingJelly ----------------------------------------------------------------------------


def sj_net(step_mode: str, threshold: float = 1.0) -> nn.Module:
    sj = pytest.importorskip("spikingjelly.activation_based.neuron")
    node = sj.IFNode(v_threshold=threshold, v_reset=0.0, step_mode=step_mode)
    return nn.Sequential(eye_linear(), node, eye_linear())


def test_spikingjelly_multi_step_time_first_is_read_off_the_model():
    net = sj_net("m")  # IF with threshold 1 on x in {0, 1}: spikes = x
    row = snn_row(profile_model(net, X))  # no batch_dim: step_mode="m" says [T, B, ...]
    assert row["samples"] == B
    assert row["neuron_updates"] == T * N  # per sample: 3 neurons x 3 steps
    assert row["spikes_out"] == EVENTS / B
    assert row["sops"] == 2 * EVENTS * N / B  # both layers: 7 events x 3 fan-out, 2 samples
    with pytest.raises(ValueError, match=r"batch_dim=0 contradicts the model.*axis 1"):
        profile_model(net, X, batch_dim=0)


def test_spikingjelly_single_step_needs_batch_dim_and_is_checked():
    net = sj_net("s")

    def forward(x: torch.Tensor) -> torch.Tensor:
        return torch.stack([net(x[t]) for t in range(x.shape[0])])

    with pytest.raises(ValueError, match="pass batch_dim="):
        profile_model(net, X, forward=forward)
    row = snn_row(profile_model(net, X, forward=forward, batch_dim=1))
    assert row["neuron_updates"] == T * N and row["spikes_out"] == EVENTS / B
    with pytest.raises(ValueError, match=r"gives 3 samples.*processed 2"):
        profile_model(net, X, forward=forward, batch_dim=0)


def test_spikingjelly_state_is_reset_between_batches():
    net = sj_net("m", threshold=2.0)  # every second input event spikes: state carries over
    one = snn_row(profile_model(net, X))
    two = snn_row(profile_model(net, [X, X]))
    assert one["spikes_out"] == two["spikes_out"] == 1.0  # row 0, neuron 0: two events -> 1


# -- snnTorch --------------------------------------------------------------------------------


class SnnTorchNet(nn.Module):
    """Linear -> neuron -> Linear, looped over ``[T, B, N]`` by hand (snnTorch's idiom)."""

    def __init__(self, neuron: nn.Module) -> None:
        super().__init__()
        self.fc1, self.lif, self.fc2 = eye_linear(), neuron, eye_linear()

    def spikes(self, x: torch.Tensor) -> torch.Tensor:
        out = []
        with torch.no_grad():
            for t in range(x.shape[0]):
                s = self.lif(self.fc1(x[t]))
                out.append(s[0] if isinstance(s, tuple) else s)
        return torch.stack(out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = []
        for t in range(x.shape[0]):
            s = self.lif(self.fc1(x[t]))
            out.append(self.fc2(s[0] if isinstance(s, tuple) else s))
        return torch.stack(out)


def snntorch_neurons() -> list[tuple[str, nn.Module]]:
    snn = pytest.importorskip("snntorch")
    # beta 0.5, threshold 0.9, reset to zero: a neuron spikes exactly when its input is 1
    kw = dict(beta=0.5, threshold=0.9, reset_mechanism="zero")
    return [
        ("Leaky", snn.Leaky(**kw)),
        ("Leaky init_hidden", snn.Leaky(**kw, init_hidden=True)),
        ("Leaky output", snn.Leaky(**kw, init_hidden=True, output=True)),
        ("Synaptic", snn.Synaptic(alpha=0.0, **kw)),
    ]


def test_snntorch_neurons_count_exactly_and_ask_for_the_axis():
    for label, neuron in snntorch_neurons():
        net = SnnTorchNet(neuron)
        with pytest.raises(ValueError, match="pass batch_dim="):
            profile_model(net, X)
        neuron.reset_mem()
        spikes = float(net.spikes(X).sum())
        assert spikes == EVENTS or label == "Synaptic"  # Leaky: spikes = x by construction
        row = snn_row(profile_model(net, X, batch_dim=1))
        assert row["neuron_updates"] == T * N, label
        assert row["spikes_out"] == spikes / B, label
        assert row["sops"] == (EVENTS + spikes) * N / B, label
        with pytest.raises(ValueError, match="processed 2"):
            profile_model(net, X, batch_dim=0)  # 3 "samples" but the neurons saw 2


def test_snntorch_state_is_reset_between_batches():
    snn = pytest.importorskip("snntorch")
    net = SnnTorchNet(snn.Leaky(beta=1.0, threshold=1.5, reset_mechanism="subtract"))
    one = snn_row(profile_model(net, X, batch_dim=1))
    two = snn_row(profile_model(net, [X, X, X], batch_dim=1))
    # integrate and fire at 2 events: sample 0, neurons 0 and 1 spike once each
    assert one["spikes_out"] == two["spikes_out"] == 2 / B


def rleaky_recurrent_sops(mode: str, all_to_all: bool) -> tuple[float, float]:
    """(our SOPs of RLeaky's recurrence per sample, spikes read by it per sample)."""
    snn = pytest.importorskip("snntorch")
    kw = dict(beta=0.5, threshold=0.9, reset_mechanism=mode)
    if all_to_all:
        neuron = snn.RLeaky(**kw, linear_features=N)
        with torch.no_grad():
            neuron.recurrent.weight.zero_()
            neuron.recurrent.bias.zero_()
    else:
        neuron = snn.RLeaky(**kw, all_to_all=False, V=0.0)
    net = SnnTorchNet(neuron)
    read = float(net.spikes(X)[:-1].sum())  # step t reads the spikes of step t-1
    assert read > 0
    report = profile_model(net, X, batch_dim=1)
    assert report.unknown == []
    layers = report.layers[report.layers["model"] == "snn"].set_index("layer")
    return float(layers.loc["lif.recurrent", "sops"]), read / B


def test_snntorch_rleaky_recurrence_counted_on_previous_spikes():
    sops, read = rleaky_recurrent_sops("subtract", all_to_all=True)
    assert sops == read * N  # dense recurrent Linear: fan-out N per spike
    sops, read = rleaky_recurrent_sops("subtract", all_to_all=False)
    assert sops == read  # one-to-one V: one accumulate per spike
    # reset "zero": snnTorch evaluates the recurrent layer twice per step; we count what runs
    sops, read = rleaky_recurrent_sops("zero", all_to_all=False)
    assert sops == 2 * read


def test_snntorch_graded_spikes_count_events_not_values():
    snn = pytest.importorskip("snntorch")
    neuron = snn.Leaky(beta=0.5, threshold=0.9, reset_mechanism="zero", graded_spikes_factor=0.5)
    report = profile_model(SnnTorchNet(neuron), X, batch_dim=1)
    row = snn_row(report)
    assert row["spikes_out"] == EVENTS / B
    assert row["sops"] == EVENTS * N / B and row["macs"] == T * N * N  # fc2 reads 0.5s: MACs


# -- Norse -----------------------------------------------------------------------------------


def norse_params():
    norse = pytest.importorskip("norse.torch")
    return norse, norse.LIFParameters(v_th=torch.as_tensor(0.5))


def reference_spikes(net: nn.Module, x: torch.Tensor) -> float:
    with torch.no_grad():
        return float(net(x).sum())


def test_norse_sequence_module_is_time_first():
    norse, p = norse_params()
    lif = norse.LIF(p)

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc1, self.lif, self.fc2 = eye_linear(scale=60.0), lif, eye_linear()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc2(self.lif(self.fc1(x))[0])

    net = Net()
    with torch.no_grad():
        spikes = float(net.lif(net.fc1(X))[0].sum())
    assert spikes > 0
    row = snn_row(profile_model(net, X))  # no batch_dim: LIF runs [T, B, ...]
    assert row["neuron_updates"] == T * N and row["spikes_out"] == spikes / B
    assert row["sops"] == (EVENTS + spikes) * N / B


class NorseCellNet(nn.Module):
    """Linear -> Norse cell, looped over ``[T, B, N]`` with the state passed by hand."""

    def __init__(self, cell: nn.Module) -> None:
        super().__init__()
        self.fc, self.cell = eye_linear(scale=60.0), cell

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        state, out = None, []
        for t in range(x.shape[0]):
            z, state = self.cell(self.fc(x[t]), state)
            out.append(z)
        return torch.stack(out)


def test_norse_cells_one_step_per_call():
    norse, p = norse_params()
    for cell in (norse.LIFCell(p), norse.LIFBoxCell(norse.LIFBoxParameters(v_th=0.5))):
        net = NorseCellNet(cell)
        spikes = reference_spikes(net, X)
        assert spikes > 0, type(cell).__name__
        with pytest.raises(ValueError, match="pass batch_dim="):
            profile_model(net, X)
        row = snn_row(profile_model(net, X, batch_dim=1))
        assert row["neuron_updates"] == T * N and row["spikes_out"] == spikes / B


# -- Sinabs ----------------------------------------------------------------------------------


def multispike_reference(current: torch.Tensor) -> torch.Tensor:
    """IAF, threshold 1, multi-spike, subtract reset, over ``[B, T, N]``: spikes per step."""
    v = torch.zeros_like(current[:, 0])
    out = []
    for t in range(current.shape[1]):
        v = v + current[:, t]
        s = torch.floor(v).clamp(min=0)
        v = v - s
        out.append(s)
    return torch.stack(out, 1)


def test_sinabs_batch_first_and_multi_spikes_count_their_value():
    sl = pytest.importorskip("sinabs.layers")
    net = nn.Sequential(eye_linear(scale=2.5), sl.IAF(), eye_linear())
    xb = X.transpose(0, 1).contiguous()  # Sinabs is batch-first [B, T, N]
    spikes = multispike_reference(2.5 * xb)
    assert spikes.max() >= 2  # multi-spikes happen
    row = snn_row(profile_model(net, xb))
    assert row["samples"] == B and row["neuron_updates"] == T * N
    assert row["spikes_out"] == float(spikes.sum()) / B
    assert row["sops"] == (EVENTS + float(spikes.sum())) * N / B  # value-weighted events
    again = snn_row(profile_model(net, [xb, xb]))  # state reset between batches
    assert again["spikes_out"] == row["spikes_out"]
    with pytest.raises(ValueError, match="contradicts"):
        profile_model(net, xb, batch_dim=1)


@pytest.mark.parametrize("how", ["batch_size", "num_timesteps"])
def test_sinabs_squeezed_layers_fold_time_into_the_batch(how):
    sl = pytest.importorskip("sinabs.layers")
    layer = sl.IAFSqueeze(**{how: B if how == "batch_size" else T})
    net = nn.Sequential(eye_linear(scale=2.5), layer)
    xb = X.transpose(0, 1).reshape(B * T, N)  # [B*T, N]
    spikes = multispike_reference(2.5 * X.transpose(0, 1))
    row = snn_row(profile_model(net, xb))
    assert row["samples"] == B and row["neuron_updates"] == T * N
    assert row["spikes_out"] == float(spikes.sum()) / B


# -- loud unknowns ---------------------------------------------------------------------------


class HomemadeLIF(nn.Module):
    """A neuron no rule knows: it holds a membrane."""

    def __init__(self) -> None:
        super().__init__()
        self.mem = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.mem = x if self.mem is None else 0.5 * self.mem + x
        return (self.mem > 1).float()


def test_unknown_spiking_module_is_reported_loudly():
    net = nn.Sequential(eye_linear(), HomemadeLIF(), eye_linear())
    with pytest.warns(UncountedSpikingWarning, match=r"1 spiking module.*HomemadeLIF"):
        report = profile_model(net, X[0])
    assert list(report.summary["model"]) == ["ann"]  # nothing to count it as an SNN, but:
    assert report.summary["unknown_spiking"].tolist() == [1]
    assert report.table().startswith("WARNING: 1 spiking module")
    assert "1 (HomemadeLIF): SPIKING" in report.table()
    assert report.layers.set_index("layer").loc["1", "kind"] == "unknown_spiking"


def test_unsupported_framework_neuron_is_reported_loudly():
    snn = pytest.importorskip("snntorch")
    net = SnnTorchNet(snn.Lapicque(beta=0.5, threshold=0.9))
    with pytest.warns(UncountedSpikingWarning, match="Lapicque"):
        report = profile_model(net, X, batch_dim=1)
    assert report.row("snn") is not None  # an snnTorch neuron: an SNN with a hole, said so
    assert report.summary["unknown_spiking"].tolist() == [1, 1]


# -- the examples of docs/energy.md ----------------------------------------------------------

DOCS = Path(__file__).resolve().parents[2] / "docs" / "energy.md"
FRAMEWORKS = {"spikingjelly": 2, "snntorch": 8, "norse": 8, "sinabs": 8}  # -> samples


def doc_examples() -> list[str]:
    text = DOCS.read_text()
    section = text.split("## Profiling your own network", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def uses(code: str, framework: str) -> bool:
    return re.search(rf"^(?:import|from) {framework}\b", code, flags=re.M) is not None


def test_docs_has_one_example_per_framework():
    found = [next(f for f in FRAMEWORKS if uses(code, f)) for code in doc_examples()]
    assert found == list(FRAMEWORKS)


@pytest.mark.parametrize("framework", list(FRAMEWORKS))
def test_docs_example_runs(framework, capsys):
    pytest.importorskip(framework)
    code = next(c for c in doc_examples() if uses(c, framework))
    namespace: dict = {}
    exec(compile(code, f"docs/energy.md ({framework})", "exec"), namespace)
    row = namespace["report"].row("snn")
    assert row["samples"] == FRAMEWORKS[framework]
    assert row["neuron_updates"] > 0 and namespace["report"].unknown_spiking == []
    assert "Total estimated energy" in capsys.readouterr().out


def test_subclass_of_a_supported_neuron_is_not_assumed_to_behave_like_it():
    snn = pytest.importorskip("snntorch")
    net = SnnTorchNet(snn.DeltaLeaky(beta=0.5, init_hidden=True))  # a Leaky subclass
    with pytest.warns(UncountedSpikingWarning, match="DeltaLeaky"):
        report = profile_model(net, X, batch_dim=1)
    assert report.row("snn")["neuron_updates"] == 0


def test_neurons_disagreeing_on_the_layout_are_refused():
    norse = pytest.importorskip("norse.torch")
    sl = pytest.importorskip("sinabs.layers")
    net = nn.Sequential(norse.LIF(), sl.IAF())  # time-first next to batch-first
    with pytest.raises(ValueError, match="disagree on the input layout"):
        profile_model(net, X)
    squeezed = sl.IAFSqueeze(num_timesteps=T)
    with pytest.raises(ValueError, match="not a multiple of the 3 time steps"):
        profile_model(nn.Sequential(squeezed), torch.zeros(4, N))
