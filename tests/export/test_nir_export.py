"""NIR export: neuron mapping, BN folding, FSVE partition, split model == model, CLI, errors."""

from __future__ import annotations

import copy
import csv

import nir
import numpy as np
import pytest
import torch
from torch import nn

from export.nir import (
    ExportError,
    HostProgram,
    SplitModel,
    compare_split,
    lif_from_nir,
    lif_to_nir,
    main,
    nir_threshold,
    to_nir,
)
from export.sim import simulate
from fsve.checkpoint import save_checkpoint
from fsve.nn.attention import SN, AttentionSN
from fsve.nn.blocks import seq_forward
from fsve.nn.neurons import LIF, LIFParams
from fsve.nn.norm import TDBN1d, TDBN2d

# ----------------------------------------------------------------------------- mapping


def test_lif_mapping_numbers():
    node = lif_to_nir(LIFParams(), (2, 3))
    assert node.tau.shape == (2, 3)
    assert float(node.tau[0, 0]) == pytest.approx(2e-4, rel=1e-15)  # tau_steps * dt
    assert float(node.r[0, 0]) == 1.0  # decay_input: the input is divided by tau too
    assert float(node.v_leak[0, 0]) == float(node.v_reset[0, 0]) == 0.0
    assert node.v_threshold.dtype == np.float32
    assert float(node.v_threshold[0, 0]) == float(np.float32(1) - np.float32(2**-24))
    no_decay = lif_to_nir(LIFParams(tau=3.0, decay_input=False, v_reset=-0.5), (4,))
    assert float(no_decay.r[0]) == 3.0 and float(no_decay.v_leak[0]) == -0.5


def test_lif_from_nir_inverts_the_mapping():
    for p in (LIFParams(), LIFParams(tau=3.5, v_threshold=0.3, v_reset=-0.1, decay_input=False)):
        back = lif_from_nir(lif_to_nir(p, (5,)))
        assert back.tau == pytest.approx(p.tau, rel=1e-12)
        assert (back.v_threshold, back.v_reset, back.decay_input) == (
            float(np.float32(p.v_threshold)), p.v_reset, p.decay_input,
        )  # fmt: skip


def test_strict_threshold_on_nextafter_equals_inclusive_threshold():
    v_th = np.float32(0.7)
    thr = nir_threshold(v_th)
    near = np.array(
        [np.nextafter(np.nextafter(v_th, 0), 0), np.nextafter(v_th, 0), v_th,
         np.nextafter(v_th, 1)], np.float32,
    )  # fmt: skip
    np.testing.assert_array_equal(near > thr, near >= v_th)  # [F, F, T, T]


def test_soft_reset_is_refused():
    with pytest.raises(ExportError, match="soft reset"):
        lif_to_nir(LIFParams(v_reset=None), (3,))
    net = nn.Sequential(nn.Linear(3, 2), LIF(LIFParams(v_reset=None)))
    with pytest.raises(ExportError, match=r"^1 \(LIF\): soft reset"):
        to_nir(net, torch.rand(4, 2, 3))


# ----------------------------------------------------------------------------- chains


class Residual(nn.Module):
    """A plain module with a residual add (exported through torch.fx)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1, bias=False)
        self.bn = TDBN2d(4)  # time-first [T, B, C, H, W]
        self.lif = LIF(LIFParams(tau=2.0, v_threshold=0.3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn(seq_forward(self.conv, self.lif(x)))
        return x + y


def chain_model() -> nn.Sequential:
    """A SpikingJelly multi-step chain with our LIFs, a residual block, BN, pooling, Linear."""
    from spikingjelly.activation_based import functional, layer

    torch.manual_seed(0)
    net = nn.Sequential(
        layer.Conv2d(2, 4, 3, padding=1),
        layer.BatchNorm2d(4),
        Residual(),
        LIF(LIFParams(tau=3.0, v_threshold=0.6, v_reset=-0.2)),
        layer.AvgPool2d(2),
        layer.Flatten(),
        layer.Linear(4 * 4 * 4, 10),
        LIF(LIFParams()),
    )
    functional.set_step_mode(net, "m")
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 2.0)
                m.bias.uniform_(-0.3, 0.3)
            if isinstance(m, nn.Conv2d | nn.Linear):
                m.weight.mul_(3.0)
        net[6].weight.mul_(4.0)  # ~8% of the output neurons fire per step
        net[6].bias.fill_(0.5)
    return net.eval()


def chain_input(seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(8, 3, 2, 8, 8, generator=g) < 0.4).float()  # [T, B, C, H, W]


def test_chain_with_residual_add_simulates_to_the_same_spikes():
    net, x = chain_model(), chain_input()
    ex = to_nir(net, x, keep_activations=True)
    out = simulate(ex.graph, x)
    names = [n for n, v in ex.graph.nodes.items() if isinstance(v, nir.LIF)]
    assert names == ["2.lif", "3", "7"]
    for n in names:
        assert torch.equal(out[n].bool(), ex.activations[n]), n
    assert torch.equal(out["output"], net(x))
    assert net(x).sum() > 10  # the output layer fires
    # the residual sum feeds one LIF through two edges, no identity node needed
    assert sorted(s for s, d in ex.graph.edges if d == "3") == ["0", "2.conv"]


def test_bn_fold_is_exact_in_real_arithmetic():
    net, x = chain_model(), chain_input()
    ex = to_nir(net, x)
    conv = ex.graph.nodes["0"]  # conv + folded BN
    assert conv.metadata["folded"] == "1"
    y = simulate(ex.graph, x, record=["0"])["0"]
    with torch.no_grad():
        want = net[1](net[0](x))
    torch.testing.assert_close(y, want, atol=1e-5, rtol=1e-6)
    placed = {m.module: m.placement for m in ex.partition.modules}
    assert placed["1"] == placed["2.bn"] == "folded"


@pytest.mark.parametrize(
    ("module", "match"),
    [
        (nn.MaxPool2d(2), r"^1 \(MaxPool2d\): max pooling has no NIR node"),
        (nn.GELU(), r"^1 \(GELU\): no NIR mapping for this module type"),
        (AttentionSN(2, 0.5), r"^1 \(AttentionSN\): thresholds a product"),
    ],
)
def test_unsupported_modules_are_named(module, match):
    net = nn.Sequential(nn.Conv2d(2, 2, 1), module)
    with pytest.raises(ExportError, match=match):
        to_nir(net, torch.rand(3, 1, 2, 4, 4))


def test_threshold_varying_over_the_batch_is_refused():
    net = nn.Sequential(nn.Linear(3, 3), SN(2, dim=1))  # statistics per sample of the batch
    with pytest.raises(ExportError, match=r"^1 \(SN\): its threshold varies along time or"):
        to_nir(net, torch.rand(4, 2, 3))


def test_bn_that_cannot_be_folded_is_named():
    class AddThenBN(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b, self.bn = nn.Linear(3, 3), nn.Linear(3, 3), TDBN1d(3)

        def forward(self, x):
            return self.bn(self.a(x) + self.b(x))

    with pytest.raises(ExportError, match=r"^bn \(TDBN1d\): BatchNorm is folded .* follows a sum"):
        to_nir(AddThenBN().eval(), torch.rand(2, 2, 3))
    net = nn.Sequential(nn.Linear(3, 3), LIF(), TDBN1d(3))
    with pytest.raises(ExportError, match=r"^2 \(TDBN1d\): .* follows LIF node '1'"):
        to_nir(net, torch.rand(2, 2, 3))
    flat = nn.Sequential(nn.Flatten(0))
    with pytest.raises(ExportError, match=r"^0 \(Flatten\): flattens the batch or time"):
        to_nir(flat, torch.rand(2, 2, 3))


def test_products_of_signals_are_refused_in_plain_modules():
    class Gate(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(3, 3)

        def forward(self, x):
            return self.fc(x) * x

    with pytest.raises(ExportError, match=r"\(Gate\): operation call_function 'mul'"):
        to_nir(nn.Sequential(Gate()), torch.rand(2, 2, 3))


# ----------------------------------------------------------------------------- FSVE


def test_fsve_export_structure(micro_fsve, clips, tmp_path):
    ex = to_nir(micro_fsve, clips[:2])
    nir_path, host_path = ex.save(tmp_path / "fsve.nir")
    g = nir.read(nir_path)  # loads and passes NIR's type check
    assert set(g.nodes) == set(ex.graph.nodes)
    # at most two edges into any node: every sum is formed as the model forms it
    fan_in = {}
    for _, dst in g.edges:
        fan_in[dst] = fan_in.get(dst, 0) + 1
    assert max(fan_in.values()) == 2
    depth = micro_fsve.cfg.attn_depth
    kinds = [type(n).__name__ for n in g.nodes.values()]
    assert kinds.count("Threshold") == 3 * depth  # SN of Q, K, V per block
    assert kinds.count("Input") == 1 + depth  # clip + one host->core port per E-SDSA
    assert kinds.count("Output") == 3 * depth + 1  # Q, K, V per block + final features
    directions = [(b.name, b.direction) for b in ex.partition.boundary]
    assert ("blocks.0.attn.host.out", "host->core") in directions
    assert ("features", "core->host") in directions
    # nothing dropped silently: every leaf module of the visual encoder is placed
    leaves = {f"visual.{n}" for n, m in micro_fsve.visual.named_modules() if not list(m.children())}
    placed = {m.module: m.placement for m in ex.partition.modules}
    assert leaves <= set(placed), sorted(leaves - set(placed))
    host = {name for name, where in placed.items() if where == "host"}
    assert {"visual.blocks.1.attn.qk", "visual.blocks.1.attn.av", "visual.proj"} <= host
    assert all(placed[n] in ("core", "folded") for n in leaves if ".bn" in n or "lif" in n)
    prog = torch.load(host_path, weights_only=True)
    assert [op["kind"] for op in prog["ops"]] == ["esdsa"] * depth + ["readout"]


def test_fsve_split_model_reproduces_every_spike(micro_fsve, clips):
    x = clips[:6]
    ex = to_nir(micro_fsve, x[:2])
    boundary = [b.name for b in ex.partition.boundary]
    # float32 neurons, float64 synaptic sums: every current is the rounded exact sum
    res = compare_split(micro_fsve, ex.split_model(accumulate=torch.float64), x, boundary)
    spikes = sum(r.model_spikes for r in res.layers)
    assert len(res.layers) == 5 * 2 + 2 * (1 + 3 + 2) + 1  # 5 MS blocks, 2 attn+MLP, final
    assert spikes > 10_000 and all(r.model_spikes > 0 for r in res.layers)
    assert [r.mismatches for r in res.layers] == [0] * len(res.layers)
    assert torch.equal(res.split_outputs["embedding"], res.model_outputs["embedding"])
    torch.testing.assert_close(
        res.split_outputs["embedding"], micro_fsve.encode_video(x).detach(), atol=0, rtol=0
    )
    # traffic of a boundary port = the model's spikes there (6 clips x 5 steps of samples)
    ref = to_nir(micro_fsve, x, keep_activations=True, verify=False).activations
    q_spikes, sample_steps, _ = res.traffic["blocks.0.attn.host.q"]
    assert q_spikes == int(ref["blocks.0.attn.q.sn"].sum()) and sample_steps == 5 * 6


def test_fsve_float32_simulation_flips_only_rounding_ties(micro_fsve, clips):
    ex = to_nir(micro_fsve, clips[:2])
    res = compare_split(micro_fsve, ex.split_model(), clips[6:10])  # float32 synaptic sums
    spikes = sum(r.model_spikes for r in res.layers)
    assert sum(r.local_mismatches for r in res.layers) <= 1e-4 * spikes  # measured: 0
    for r in res.layers:  # a local flip needs H within float32 rounding of V_th
        assert not r.local_mismatches or r.max_margin < 1e-6, r


def test_local_mismatch_reports_its_margin():
    net = nn.Sequential(nn.Linear(1, 1, bias=False), LIF()).eval()
    with torch.no_grad():
        net[0].weight.fill_(2.0)  # step 0: H = 0 + (2 - 0)/2 = 1.0 = V_th exactly -> spike
    x = torch.tensor([1.0, 0.0, 0.0, 0.0]).view(4, 1, 1)
    ex = to_nir(net, x)
    ex.graph.nodes["1"].v_threshold[:] = 1.0  # as if exported without nextafter: strict > 1
    res = compare_split(net, ex.split_model(), x)
    row = res.layers[0]
    assert (row.model_spikes, row.sim_spikes, row.local_mismatches) == (1, 0, 1)
    assert row.max_margin == 0.0  # the tie itself


def test_split_model_loads_from_files(micro_fsve, clips, tmp_path):
    ex = to_nir(micro_fsve, clips[:2])
    nir_path, host_path = ex.save(tmp_path / "m.nir")
    split = SplitModel.load(nir_path)
    assert split.sim.dt == pytest.approx(1e-4)
    emb = split.encode_video(clips[:3])
    assert torch.equal(emb, ex.split_model().encode_video(clips[:3]))
    assert HostProgram.load(host_path).input_layout == "clip"


def test_export_restores_modes_and_needs_no_grad(micro_fsve, clips):
    model = copy.deepcopy(micro_fsve).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    to_nir(model, clips[:2])
    assert all(m.training for m in model.modules())
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # running stats untouched


@pytest.mark.slow
def test_fsve_float64_export_reproduces_every_spike(micro_fsve, clips):
    model = copy.deepcopy(micro_fsve).double()
    ex = to_nir(model, clips[:2])
    assert ex.graph.nodes["stem.conv"].weight.dtype == np.float64
    res = compare_split(model, ex.split_model(torch.float64), clips)
    assert sum(r.mismatches for r in res.layers) == 0
    assert torch.equal(res.split_outputs["embedding"], res.model_outputs["embedding"])


# ----------------------------------------------------------------------------- CLI


def test_cli_exports_and_reports(micro_checkpoint, tiny_data, tmp_path, capsys):
    ckpt = micro_checkpoint
    out = tmp_path / "out" / "fsve.nir"
    rc = main([str(ckpt), str(out), "--data", str(tiny_data), "--samples", "6",
               "--batch-size", "4"])  # fmt: skip
    assert rc == 0
    text = capsys.readouterr().out
    assert "NIR subgraphs 1" in text and "identical for 6/6 clips" in text
    assert nir.read(out) is not None
    assert (tmp_path / "out" / "fsve.host.pt").is_file()
    report = tmp_path / "out" / "fsve_partition.txt"
    assert "Boundary tensors" in report.read_text()
    with open(tmp_path / "out" / "fsve_partition_boundary.csv") as f:
        rows = list(csv.DictReader(f))
    assert {r["direction"] for r in rows} == {"core->host", "host->core"}
    assert all(float(r["spikes_per_step"]) >= 0 for r in rows)
    with open(tmp_path / "out" / "fsve_partition_layers.csv") as f:
        layers = list(csv.DictReader(f))
    assert sum(int(r["mismatches"]) for r in layers) <= 1e-4 * sum(
        int(r["model_spikes"]) for r in layers
    )
    assert main([str(tmp_path / "nope.pt"), str(out), "--data", str(tiny_data)]) == 2
    assert main([str(ckpt), str(out), "--data", str(tmp_path / "none")]) == 2
    assert "no dataset" in capsys.readouterr().err


def test_export_checkpoint_returns_what_it_wrote(micro_fsve, tiny_data, tmp_path):
    from export.nir import export_checkpoint

    ckpt = save_checkpoint(tmp_path / "fsve.pt", "fsve", micro_fsve.cfg, micro_fsve.state_dict())
    res = export_checkpoint(
        ckpt, tmp_path / "f.nir", data=tiny_data, samples=4, batch_size=4, verify=False
    )
    assert res.samples == 4
    assert res.nir_path == tmp_path / "f.nir" and res.host_path == tmp_path / "f.host.pt"
    assert res.report["text"].read_text() == res.text
    assert "Boundary tensors" in res.text and "Equivalence" not in res.text
    assert res.report["boundary"].is_file() and not res.report["layers"].exists()
    assert set(res.comparison.traffic) == {t.name for t in res.export.partition.boundary}
    with pytest.raises(ValueError, match="must end in .nir"):
        export_checkpoint(ckpt, tmp_path / "f.txt", data=tiny_data)


@pytest.mark.parametrize("module", ["export.nir", "export.sim"])
def test_module_entry_points(module):
    import subprocess
    import sys

    run = subprocess.run(
        [sys.executable, "-m", module, "--help"], capture_output=True, text=True, check=False
    )
    assert run.returncode == 0 and run.stderr == ""
    assert run.stdout.startswith(f"usage: python -m {module} ")


@pytest.mark.slow
def test_fsve_tiny_on_the_builtin_test_split(tmp_path, capsys, calibrated):
    from pathlib import Path

    from fsve.data.dataset import SpikeDataset, collate
    from fsve.models.student import FSVE, fsve_config

    data = Path(__file__).resolve().parents[2] / "data" / "synth"
    if not (data / "manifest.csv").is_file():
        pytest.skip("built-in dataset missing (python -m fsve.data synth --out data/synth)")
    ds = SpikeDataset(data, "test")
    torch.manual_seed(0)
    x = collate([ds[i] for i in range(0, len(ds), max(1, len(ds) // 8))])["spikes"]
    model = calibrated(FSVE(fsve_config("tiny")), x)
    ckpt = save_checkpoint(tmp_path / "tiny.pt", "fsve", model.cfg, model.state_dict())
    rc = main([str(ckpt), str(tmp_path / "tiny.nir"), "--data", str(data), "--samples", "24"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "mismatches 0 (0.00e+00 of all spikes), local mismatches 0" in text


def test_traced_flatten_counts_time_first_dims():
    class Head(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc, self.lif = nn.Linear(2 * 3 * 3, 4), LIF(LIFParams(v_threshold=0.2))

        def forward(self, x):
            return self.lif(self.fc(x.flatten(2)))  # [T, B, C, H, W] -> [T, B, C*H*W]

    torch.manual_seed(0)  # the assertion below needs spikes; don't depend on earlier tests' RNG
    net, x = Head().eval(), torch.rand(5, 3, 2, 3, 3)
    ex = to_nir(net, x)
    flat = next(n for n in ex.graph.nodes.values() if isinstance(n, nir.Flatten))
    assert (flat.start_dim, flat.end_dim) == (0, 2)  # NIR dims exclude time and batch
    assert torch.equal(simulate(ex.graph, x)["output"], net(x))
    assert net(x).sum() > 0
