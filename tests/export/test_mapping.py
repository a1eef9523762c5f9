"""Mapping report: exact counts on hand-built NIR graphs, errors, targets, CLI, micro FSVE."""

from __future__ import annotations

import csv
import dataclasses
import json

import nir
import numpy as np
import pytest
import torch

from export.map import main as map_main
from export.mapping import (
    TARGETS,
    MappingError,
    Target,
    load_target,
    map_graph,
    map_source,
    report_text,
    spike_rates,
    target_from_dict,
    write_report,
)
from export.nir import graph_summary, to_nir
from export.sim import simulate
from fsve.checkpoint import save_checkpoint

LOIHI2 = TARGETS["loihi2"]
LOIHI1 = TARGETS["loihi1"]


def small(**changes) -> Target:
    """A toy target for tiling tests (8 neurons/core unless changed)."""
    base = dict(
        name="toy",
        neurons_per_core=8,
        cores_per_chip=4,
        synapse_memory_bytes_per_core=1 << 20,
        max_input_axons_per_core=1 << 20,
        max_output_axons_per_core=1 << 20,
        weight_bits=8,
        shared_conv_weights=True,
    )
    return Target(**{**base, **changes})


def lif(shape) -> nir.LIF:
    ones = np.ones(shape)
    return nir.LIF(tau=ones * 1e-3, r=ones, v_leak=0 * ones, v_threshold=ones, v_reset=0 * ones)


def conv(c_out, c_in, k, hw, stride=1, padding=0, groups=1) -> nir.Conv2d:
    return nir.Conv2d(
        input_shape=hw,
        weight=np.ones((c_out, c_in // groups, k, k)),
        stride=stride,
        padding=padding,
        dilation=1,
        groups=groups,
        bias=np.zeros(c_out),
    )


def graph(nodes: dict, edges: list) -> nir.NIRGraph:
    return nir.NIRGraph(nodes=nodes, edges=edges)


def conv_graph(hw=(4, 4), k=3, stride=1, padding=1, c_out=2) -> nir.NIRGraph:
    c = conv(c_out, 1, k, hw, stride, padding)
    out = tuple(int(s) for s in c.output_type["output"])
    return graph(
        {
            "input": nir.Input(input_type={"input": np.array([1, *hw])}),
            "conv": c,
            "lif": lif(out),
            "output": nir.Output(output_type={"output": np.array(out)}),
        },
        [("input", "conv"), ("conv", "lif"), ("lif", "output")],
    )


def dense_chain() -> nir.NIRGraph:
    """input(4) -> Affine 4->3 -> lif1(3) -> Affine 3->2 -> lif2(2) -> output."""
    return graph(
        {
            "input": nir.Input(input_type={"input": np.array([4])}),
            "fc1": nir.Affine(weight=np.ones((3, 4)), bias=np.zeros(3)),
            "lif1": lif((3,)),
            "fc2": nir.Affine(weight=np.ones((2, 3)), bias=np.zeros(2)),
            "lif2": lif((2,)),
            "output": nir.Output(output_type={"output": np.array([2])}),
        },
        [("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "lif2"), ("lif2", "output")],
    )


# ----------------------------------------------------------------------------- counts


def test_conv_synapses_from_kernel_stride_padding():
    m = map_graph(conv_graph(), LOIHI2).layer("lif")
    # 3x3, pad 1 on 4 rows: in-bounds taps per output row 2, 3, 3, 2 = 10 (same for columns)
    # -> 10 x 10 = 100 connections per (in, out) channel pair x 1 x 2 channels = 200
    assert m.synapses == 200
    assert m.weights == 2 * 1 * 3 * 3
    assert m.max_fan_in == 9  # an interior neuron
    assert (m.cores, m.tile, m.neurons) == (1, (2, 4, 4), 32)
    assert m.utilisation(LOIHI2) == 32 / 8192
    assert m.memory_bytes == 18  # loihi2: the kernel once (2 x 1 x 3 x 3 weights x 1 byte)
    assert m.max_input_axons == 16
    m1 = map_graph(conv_graph(), LOIHI1).layer("lif")
    assert m1.memory_bytes == 200  # loihi1: one byte per connection


def test_conv_stride_without_padding():
    # 5x5, 3x3, stride 2, pad 0 -> 2x2 outputs, each reads 3 rows x 3 cols: 4 x 9 = 36 per pair
    m = map_graph(conv_graph(hw=(5, 5), stride=2, padding=0), LOIHI2).layer("lif")
    assert m.shape == (2, 2, 2)
    assert m.synapses == 2 * 36


def test_tiling_picks_fewest_cores_then_least_halo():
    m = map_graph(conv_graph(), small()).layer("lif")
    # 32 neurons / 8 per core = 4 cores; of the 4-core tiles, 2x2x2 has the least halo:
    # each 2x2 output tile reads 3x3 inputs = 9 axons (1x4x2 would read 4x3 = 12)
    assert (m.cores, m.tile, m.max_input_axons, m.max_core_neurons) == (4, (2, 2, 2), 9, 8)
    assert m.synapses == 200
    # input row r reaches output-row tiles [1, 2, 2, 1] (same for columns): 6 x 6 = 36 messages
    assert m.messages_in_bound == 36
    result = map_graph(conv_graph(), small())
    (inp,) = [b for b in result.boundary if b.name == "input"]
    assert inp.messages_bound == 36
    (out,) = [b for b in result.boundary if b.name == "output"]
    assert (out.neurons, out.messages_bound) == (32, 32)
    assert m.messages_out_bound == 32 and m.max_output_axons == 8  # one host message each


def test_memory_limit_adds_cores():
    # per-synapse storage, 100 bytes per core: 200 connections need at least 2 cores
    t = small(neurons_per_core=64, synapse_memory_bytes_per_core=100, shared_conv_weights=False)
    m = map_graph(conv_graph(), t).layer("lif")
    assert m.cores == 2 and m.binding == "synapse memory"
    # (2, 4, 2): 2 channels x 10 row taps x (2 + 3) column taps = 100 bytes and 4 x 3 = 12
    # input axons per core, less halo than one channel per core (1, 4, 4): 16 axons
    assert m.tile == (2, 4, 2) and m.max_core_memory_bytes == 100 and m.max_input_axons == 12


def test_dense_chain_counts_and_measured_traffic():
    rates = {
        "input": np.array([1.0, 0.0, 0.5, 0.0]),
        "lif1": np.array([1.0, 0.0, 0.5]),
        "lif2": np.array([0.25, 0.0]),
    }
    result = map_graph(dense_chain(), small(neurons_per_core=2), rates)
    l1, l2 = result.layer("lif1"), result.layer("lif2")
    assert (l1.synapses, l2.synapses) == (12, 6)
    assert (l1.cores, l1.tile, l2.cores) == (2, (2,), 1)
    assert l1.memory_bytes == 12 and l1.max_core_memory_bytes == 8  # dense: 2 neurons x 4
    assert l1.max_input_axons == 4 and l2.max_input_axons == 3
    # lif1 -> lif2 (1 core): each spike is 1 message; (1 + 0 + 0.5) spikes per step
    assert (l1.spikes_per_step, l1.messages_out_per_step, l1.messages_out_bound) == (1.5, 1.5, 3)
    assert l1.max_output_axons == 2  # 2 neurons per core x 1 destination core
    assert l2.messages_in_per_step == 1.5 and l2.messages_in_bound == 3
    assert l2.messages_out_per_step == 0.25  # to the host
    # every input neuron reaches both of lif1's cores: 1.5 spikes x 2 cores = 3 messages/step
    (inp,) = [b for b in result.boundary if b.name == "input"]
    assert (inp.messages_per_step, inp.messages_bound) == (3.0, 8)
    assert l1.messages_in_per_step == 3.0
    assert result.cores == 3 and result.chips == 1 and result.measured


def test_two_paths_from_one_source_share_axons():
    # input -> 1x1 conv -> lif and input -> 3x3 pad-1 conv -> lif (a residual sum)
    nodes = {
        "input": nir.Input(input_type={"input": np.array([1, 4, 4])}),
        "a": conv(1, 1, 1, (4, 4)),
        "b": conv(1, 1, 3, (4, 4), padding=1),
        "lif": lif((1, 4, 4)),
    }
    g = graph(nodes, [("input", "a"), ("input", "b"), ("a", "lif"), ("b", "lif")])
    m = map_graph(g, LOIHI2).layer("lif")
    assert m.synapses == 16 + 100 and m.max_input_axons == 16  # union, not 16 + 16
    m = map_graph(g, small(neurons_per_core=4)).layer("lif")
    # 2x2 tiles: 1x1 conv reads 4 inputs, 3x3 reads 9 containing them: union 4 + 9 - 4 = 9
    assert (m.tile, m.max_input_axons, m.messages_in_bound) == ((1, 2, 2), 9, 36)


def test_pool_then_conv_composes_exactly():
    # input (1,4,4) -> SumPool 2x2/2 -> (1,2,2) -> 2x2 conv -> (1,1,1): reads all 16 inputs
    nodes = {
        "input": nir.Input(input_type={"input": np.array([1, 4, 4])}),
        "pool": nir.SumPool2d(
            kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])
        ),
        "conv": conv(1, 1, 2, (2, 2)),
        "lif": lif((1, 1, 1)),
    }
    g = graph(nodes, [("input", "pool"), ("pool", "conv"), ("conv", "lif")])
    m = map_graph(g, LOIHI2).layer("lif")
    assert (m.synapses, m.max_fan_in, m.max_input_axons) == (16, 16, 16)
    assert m.memory_bytes == 16  # a composed kernel is stored per connection
    assert m.weights == 4


def test_grouped_conv_reads_its_group_only():
    nodes = {
        "input": nir.Input(input_type={"input": np.array([4, 3, 3])}),
        "conv": conv(4, 4, 3, (3, 3), padding=1, groups=2),
        "lif": lif((4, 3, 3)),
    }
    # nir's type inference takes weight.shape[1] as the input channels (ignoring groups)
    g = nir.NIRGraph(nodes=nodes, edges=[("input", "conv"), ("conv", "lif")], type_check=False)
    m = map_graph(g, LOIHI2).layer("lif")
    # per pair: row taps 2,3,2 = 7, cols 7 -> 49; 4 out channels x 2 in channels each
    assert m.synapses == 4 * 2 * 49 and m.max_fan_in == 2 * 9


@pytest.mark.parametrize("start_dim", [0, 1])  # 1: exporters that count a batch axis
def test_flatten_then_affine_is_dense(start_dim):
    nodes = {
        "input": nir.Input(input_type={"input": np.array([2, 2, 2])}),
        "flat": nir.Flatten(input_type={"input": np.array([2, 2, 2])}, start_dim=start_dim),
        "fc": nir.Affine(weight=np.ones((3, 8)), bias=np.zeros(3)),
        "lif": lif((3,)),
    }
    edges = [("input", "flat"), ("flat", "fc"), ("fc", "lif")]
    g = nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)
    result = map_graph(g, small(neurons_per_core=2))
    m = result.layer("lif")
    assert (m.synapses, m.max_input_axons, m.cores, m.max_fan_in) == (24, 8, 2, 8)
    # every input neuron reaches both cores: 8 x 2 messages if all spike
    assert result.boundary[0].messages_bound == 16


def test_partial_rates_leave_measured_totals_empty():
    rates = {"lif1": np.array([1.0, 0.0, 0.5])}  # no rate for the input, none for lif2
    result = map_graph(dense_chain(), LOIHI2, rates)
    assert result.layer("lif1").messages_out_per_step == 1.5
    assert np.isnan(result.layer("lif1").messages_in_per_step)  # its input has no rate
    assert result.layer("lif2").messages_in_per_step == 1.5
    assert np.isnan(result.layer("lif2").spikes_per_step) and not result.measured
    assert "no measured rates for ['lif2']" in report_text(result)


def _brute_force(src_shape, ops, dst_shape):
    """Connectivity [N_dst, N_src] from one-hot inputs pushed through ones-weight ops."""
    n_src = int(np.prod(src_shape))
    eye = torch.eye(n_src, dtype=torch.float64).reshape(n_src, *src_shape)
    out = eye
    for op in ops:
        out = op(out)
    return (out.reshape(n_src, -1) != 0).numpy().T  # [N_dst, N_src]


def _tile_ids(shape, tile):
    grid = np.indices(shape).reshape(len(shape), -1).T  # every neuron's index
    k = [-(-n // t) for n, t in zip(shape, tile, strict=True)]
    return np.ravel_multi_index(tuple((grid // np.array(tile)).T), k)


@pytest.mark.parametrize("case", ["strided-dilated-grouped", "pool-then-conv", "residual"])
def test_counts_equal_a_brute_force_connectivity_matrix(case):
    src = (4, 7, 6)
    w1 = np.ones((4, 2, 3, 3))  # groups 2
    c1 = nir.Conv2d((7, 6), w1, stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=2,
                    bias=np.zeros(4))  # fmt: skip
    t1 = lambda x: torch.nn.functional.conv2d(  # noqa: E731
        x, torch.ones(4, 2, 3, 3, dtype=x.dtype), stride=(2, 1), padding=(1, 2),
        dilation=(1, 2), groups=2,
    )  # fmt: skip
    nodes = {"input": nir.Input(input_type={"input": np.array(src)})}
    if case == "pool-then-conv":
        nodes["pool"] = nir.SumPool2d(np.array([2, 2]), np.array([1, 1]), np.array([0, 0]))
        nodes["conv"] = conv(3, 4, 2, (6, 5), stride=2)
        edges = [("input", "pool"), ("pool", "conv"), ("conv", "lif")]
        ops = [
            lambda x: torch.nn.functional.avg_pool2d(x, 2, 1),
            lambda x: torch.nn.functional.conv2d(
                x, torch.ones(3, 4, 2, 2, dtype=x.dtype), stride=2
            ),
        ]
        dst = (3, 3, 2)
        a = _brute_force(src, ops, dst)
    else:
        nodes["conv"] = c1
        edges = [("input", "conv"), ("conv", "lif")]
        dst = tuple(int(v) for v in c1.output_type["output"])
        a = _brute_force(src, [t1], dst)
        if case == "residual":  # + a 1x1 stride-(2,1) conv of the same input, pad (0, 1)
            c2 = nir.Conv2d((7, 6), np.ones((4, 4, 1, 1)), stride=(2, 1), padding=(0, 0),
                            dilation=1, groups=1, bias=np.zeros(4))  # fmt: skip
            nodes["short"] = c2
            edges += [("input", "short"), ("short", "lif")]
            t2 = lambda x: torch.nn.functional.conv2d(  # noqa: E731
                x, torch.ones(4, 4, 1, 1, dtype=x.dtype), stride=(2, 1)
            )
            b = _brute_force(src, [t2], dst)
            synapses = int(a.sum() + b.sum())
            a = a | b
    nodes["lif"] = lif(dst)
    g = nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)
    m = map_graph(g, small(neurons_per_core=5)).layer("lif")
    assert m.shape == dst
    assert m.synapses == (synapses if case == "residual" else int(a.sum()))
    if case != "residual":
        assert m.max_fan_in == int(a.sum(1).max())
    tiles = _tile_ids(dst, m.tile)
    per_core = np.stack([a[tiles == t].any(0) for t in range(m.cores)])  # [cores, N_src]
    assert m.max_input_axons == int(per_core.sum(1).max())
    assert m.messages_in_bound == int(per_core.sum())  # sum over sources of their dest cores


def test_messages_between_chips():
    g = graph(
        {
            "input": nir.Input(input_type={"input": np.array([4])}),
            "fc1": nir.Affine(weight=np.ones((4, 4)), bias=np.zeros(4)),
            "lif1": lif((4,)),
            "fc2": nir.Affine(weight=np.ones((4, 4)), bias=np.zeros(4)),
            "lif2": lif((4,)),
        },
        [("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "lif2")],
    )
    rates = {"lif1": np.array([1.0, 0.5, 0.0, 0.0]), "lif2": np.zeros(4), "input": np.ones(4)}
    # 2 neurons/core, 3 cores/chip: lif1 on cores 0-1 (chip 0), lif2 on cores 2 (chip 0) and
    # 3 (chip 1); each lif1 spike goes to both lif2 cores, one of them on another chip
    result = map_graph(g, small(neurons_per_core=2, cores_per_chip=3), rates)
    l1 = result.layer("lif1")
    assert (result.chips, l1.first_core, result.layer("lif2").first_core) == (2, 0, 2)
    assert (l1.messages_out_bound, l1.chip_messages_out_bound) == (8, 4)
    assert (l1.messages_out_per_step, l1.chip_messages_out_per_step) == (3.0, 1.5)
    assert "1.50 messages per step (bound 4)" in report_text(result)
    one_chip = map_graph(g, small(neurons_per_core=2, cores_per_chip=4), rates)
    assert one_chip.layer("lif1").chip_messages_out_bound == 0


# ----------------------------------------------------------------------------- errors


def test_fan_in_beyond_limit_names_layer_limit_value():
    g = graph(
        {
            "input": nir.Input(input_type={"input": np.array([5000])}),
            "fc": nir.Affine(weight=np.ones((10, 5000)), bias=np.zeros(10)),
            "wide": lif((10,)),
        },
        [("input", "fc"), ("fc", "wide")],
    )
    with pytest.raises(MappingError) as err:
        map_graph(g, LOIHI1)
    msg = str(err.value)
    assert "'wide'" in msg and "5000 input axons" in msg and "4096" in msg and "split" in msg
    assert map_graph(g, LOIHI2).layer("wide").cores == 1  # 32768 axons on loihi2


def test_kernel_too_big_for_memory_suggests_smaller_kernel():
    t = small(synapse_memory_bytes_per_core=100, shared_conv_weights=False)
    g = conv_graph(hw=(11, 11), k=11, padding=0, c_out=1)  # one neuron with 121 connections
    with pytest.raises(MappingError, match=r"'lif'.*121 bytes of synapse memory > the limit 100.*"
                       r"smaller kernel"):  # fmt: skip
        map_graph(g, t)


def test_recurrent_graph_is_refused():
    g = graph(
        {
            "input": nir.Input(input_type={"input": np.array([2])}),
            "fc": nir.Affine(weight=np.ones((2, 2)), bias=np.zeros(2)),
            "lif": lif((2,)),
            "rec": nir.Affine(weight=np.ones((2, 2)), bias=np.zeros(2)),
            "output": nir.Output(output_type={"output": np.array([2])}),
        },
        [("input", "fc"), ("fc", "lif"), ("lif", "rec"), ("rec", "lif"), ("lif", "output")],
    )
    with pytest.raises(MappingError, match="feed-forward graphs only"):
        map_graph(g, LOIHI2)


def test_weights_into_an_output_port_are_refused():
    g = graph(
        {
            "input": nir.Input(input_type={"input": np.array([3])}),
            "lif": lif((3,)),
            "fc": nir.Affine(weight=np.ones((2, 3)), bias=np.zeros(2)),
            "output": nir.Output(output_type={"output": np.array([2])}),
        },
        [("input", "lif"), ("lif", "fc"), ("fc", "output")],
    )
    with pytest.raises(MappingError, match="'output'.*LI/I layer"):
        map_graph(g, LOIHI2)


# ----------------------------------------------------------------------------- targets


def test_shipped_targets_hold_the_reference_figures():
    assert (LOIHI2.neurons_per_core, LOIHI2.cores_per_chip) == (8192, 128)
    assert (LOIHI1.neurons_per_core, LOIHI1.max_input_axons_per_core) == (1024, 4096)
    assert (LOIHI1.max_output_axons_per_core, LOIHI1.synapse_memory_bytes_per_core) == (
        4096,
        128 * 1024,
    )
    assert any("synapse_memory_bytes_per_core" in a for a in LOIHI2.assumptions)


def test_target_files_round_trip_and_reject_bad_keys(tmp_path):
    d = dataclasses.asdict(small())
    d["assumptions"] = ["neurons_per_core: made up"]
    (tmp_path / "toy.json").write_text(json.dumps(d))
    assert load_target(tmp_path / "toy.json") == dataclasses.replace(
        small(), assumptions=("neurons_per_core: made up",)
    )
    toml = "\n".join(
        f"{k} = {str(v).lower() if isinstance(v, bool) else json.dumps(v)}"
        for k, v in dataclasses.asdict(LOIHI1).items()
    )
    (tmp_path / "l1.toml").write_text(toml)
    assert load_target(str(tmp_path / "l1.toml")) == LOIHI1
    with pytest.raises(ValueError, match="unknown target keys"):
        target_from_dict({**dataclasses.asdict(small()), "cores": 3})
    with pytest.raises(ValueError, match="neurons_per_core must be >= 1"):
        target_from_dict({**dataclasses.asdict(small()), "neurons_per_core": 0})
    with pytest.raises(ValueError, match="unknown target 'loihi3'"):
        load_target("loihi3")


# ----------------------------------------------------------------------------- rates


def test_spike_rates_and_simulated_traffic():
    g = graph(
        {
            "input": nir.Input(input_type={"input": np.array([3])}),
            "fc": nir.Affine(weight=np.eye(3), bias=np.zeros(3)),
            "thr": nir.Threshold(threshold=np.full(3, 0.5)),
            "output": nir.Output(output_type={"output": np.array([3])}),
        },
        [("input", "fc"), ("fc", "thr"), ("thr", "output")],
    )
    x = np.zeros((4, 2, 3), dtype=np.float32)  # [T, B, 3]
    x[:, :, 0] = 1  # always
    x[::2, :, 1] = 1  # every other step
    out = simulate(g, x, record=["input", "thr"])
    rates = spike_rates([out])
    np.testing.assert_array_equal(rates["thr"], [1.0, 0.5, 0.0])
    m = map_graph(g, LOIHI2, rates).layer("thr")
    # (1 + 0.5) spikes per step, each one message to the host
    assert (m.spikes_per_step, m.messages_out_per_step, m.messages_out_bound) == (1.5, 1.5, 3)
    assert m.synapses == 9  # a dense Affine stores every pair, zeros included


def test_report_files_are_written(tmp_path):
    result = map_graph(dense_chain(), small(neurons_per_core=2))
    paths = write_report(result, tmp_path / "rep", ["Mapping of a test chain"])
    rows = list(csv.DictReader(paths["csv"].open()))
    assert [r["layer"] for r in rows] == ["lif1", "lif2", "TOTAL"]
    assert rows[-1]["cores"] == "3" and rows[0]["synapses"] == "12"
    text = paths["text"].read_text()
    assert text.startswith("Mapping of a test chain") and "3 cores on 1 chip(s)" in text
    assert text == report_text(result, ["Mapping of a test chain"])


# ----------------------------------------------------------------------------- CLI


def test_cli_on_a_nir_file_with_npy_data(tmp_path, capsys):
    path = tmp_path / "chain.nir"
    nir.write(path, dense_chain())
    x = np.zeros((5, 2, 4), dtype=np.float32)
    x[:, :, 0] = 1
    np.save(tmp_path / "x.npy", x)
    rc = map_main([str(path), "--target", "loihi1", "--data", str(tmp_path / "x.npy"),
                   "--out", str(tmp_path / "rep")])  # fmt: skip
    assert rc == 0
    rows = {r["layer"]: r for r in csv.DictReader((tmp_path / "rep" / "mapping.csv").open())}
    assert rows["lif1"]["synapses"] == "12" and rows["TOTAL"]["cores"] == "2"
    assert rows["lif1"]["spikes_per_step"] != ""  # measured
    assert "measured on" in (tmp_path / "rep" / "mapping.txt").read_text()
    result, header = map_source(path, "loihi1", data=tmp_path / "x.npy")  # the CLI's pipeline
    assert result.measured
    assert report_text(result, header) == (tmp_path / "rep" / "mapping.txt").read_text()


def test_cli_errors_are_one_line(tmp_path, capsys):
    path = tmp_path / "chain.nir"
    nir.write(path, dense_chain())
    assert map_main([str(path), "--target", "loihi9", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown target 'loihi9'" in err
    wide = tmp_path / "wide.nir"
    nir.write(
        wide,
        graph(
            {
                "input": nir.Input(input_type={"input": np.array([5000])}),
                "fc": nir.Affine(weight=np.ones((2, 5000)), bias=np.zeros(2)),
                "wide": lif((2,)),
            },
            [("input", "fc"), ("fc", "wide")],
        ),
    )
    assert map_main([str(wide), "--target", "loihi1", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cannot map: layer 'wide'") and err.count("\n") == 1
    assert not (tmp_path / "r").exists()  # nothing written on failure
    assert map_main([str(tmp_path / "missing.nir")]) == 2
    toy = tmp_path / "toy.json"
    toy.write_text(json.dumps(dataclasses.asdict(small(neurons_per_core=2))))
    assert map_main([str(path), "--target", str(toy), "--out", str(tmp_path / "t")]) == 0
    rows = list(csv.DictReader((tmp_path / "t" / "mapping.csv").open()))
    assert rows[-1]["cores"] == "3"  # lif1 on 2 cores, lif2 on 1


# ----------------------------------------------------------------------------- FSVE


def test_micro_fsve_mapping_matches_the_export(micro_fsve, clips):
    export = to_nir(micro_fsve, clips[:2])
    split = export.split_model()
    names = [n for n, node in export.graph.nodes.items() if not isinstance(node, nir.Output)]
    with torch.no_grad():
        runs = [split.run(clips[i : i + 4], record=names) for i in (0, 4)]
    rates = spike_rates(runs)
    result = map_graph(export.graph, LOIHI2, rates)
    assert result.neurons == sum(graph_summary(export.graph)["neurons"].values())
    stem = result.layer("stages.0.0.lif1")
    # stem 61 -> 8 channels, 3x3 stride 2 pad 1 on 32x32 -> 16x16: taps per output row
    # 2 (row 0) + 15 x 3 = 47, so 8 x 61 x 47 x 47 synapses
    assert stem.synapses == 8 * 61 * 47 * 47
    assert result.measured and result.chips == 1
    for m in result.layers:
        assert 0 <= m.messages_out_per_step <= m.messages_out_bound
        assert m.max_input_axons <= LOIHI2.max_input_axons_per_core
    spikes = float(torch.stack([r["stages.0.0.lif1"] for r in runs]).sum()) / (5 * 8)
    assert stem.spikes_per_step == pytest.approx(spikes)


def test_cli_on_an_fsve_checkpoint(micro_fsve, tiny_data, tmp_path):
    ckpt = save_checkpoint(tmp_path / "fsve.pt", "fsve", micro_fsve.cfg, micro_fsve.state_dict())
    out = tmp_path / "rep"
    rc = map_main([str(ckpt), "--data", str(tiny_data), "--samples", "4", "--out", str(out)])
    assert rc == 0
    rows = {r["layer"]: r for r in csv.DictReader((out / "mapping.csv").open())}
    assert rows["stages.0.0.lif1"]["synapses"] == str(8 * 61 * 47 * 47)
    assert float(rows["TOTAL"]["messages_out_per_step"]) <= int(rows["TOTAL"]["messages_out_bound"])
    assert "4 clips of" in (out / "mapping.txt").read_text()
