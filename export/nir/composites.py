"""Converters of our blocks (:mod:`fsve.nn`): each repeats its block's forward on NIR nodes."""

from __future__ import annotations

import nir
import numpy as np
from torch import nn

from export.nir.builder import Builder, Converter, Value, join
from export.nir.errors import fail
from export.nir.host import HostESDSA, to_tokens
from export.nir.partition import BoundaryTensor
from fsve.models.student import SpikingVisualEncoder
from fsve.nn.attention import ESDSA, SpikeProjection, SpikingMLP, SpikingTransformerBlock
from fsve.nn.blocks import ConvTDBN, MSBlock


def _sequential(b: Builder, m: nn.Sequential, name: str, x: Value) -> Value:
    for child_name, child in m.named_children():
        x = b.convert(child, join(name, child_name), x)
    return x


def _conv_tdbn(b: Builder, m: ConvTDBN, name: str, x: Value) -> Value:
    return b.convert(m.bn, join(name, "bn"), b.convert(m.conv, join(name, "conv"), x))


def _ms_block(b: Builder, m: MSBlock, name: str, x: Value) -> Value:
    j = lambda s: join(name, s)  # noqa: E731
    b.place(name, type(m).__name__, "core", (), "membrane shortcut: fan-in edges")
    s = b.convert(m.lif1, j("lif1"), x)
    y = b.convert(m.bn1, j("bn1"), b.convert(m.conv1, j("conv1"), s))
    y = b.convert(m.bn2, j("bn2"), b.convert(m.conv2, j("conv2"), b.convert(m.lif2, j("lif2"), y)))
    short = x if m.shortcut is None else b.convert(m.shortcut, j("shortcut"), s)
    return b.add(y, short, j("add"))


def _spike_projection(b: Builder, m: SpikeProjection, name: str, x: Value) -> Value:
    y = b.convert(m.bn, join(name, "bn"), b.convert(m.fc, join(name, "fc"), x))
    return b.convert(m.sn, join(name, "sn"), y)


def _esdsa(b: Builder, m: ESDSA, name: str, u: Value) -> Value:
    j = lambda s: join(name, s)  # noqa: E731
    if u.grid is None:
        fail(name, m, "ESDSA export needs the token grid (build tokens from a conv map)")
    b.place(name, type(m).__name__, "split", (), "projections on cores, products on the host")
    s = b.convert(m.lif, j("lif"), u)
    q, k, v = (b.convert(getattr(m, p), j(p), s) for p in ("q", "k", "v"))
    ports = tuple(
        b.port_out(t, j(f"host.{p}"), name) for t, p in zip((q, k, v), "qkv", strict=True)
    )
    op = HostESDSA(
        name,
        ports,
        b.unique(j("host.out")),
        m.heads,
        u.grid,
        m.attn_sn.inference_threshold() / m.attn_sn.scale,
        m.out_sn.inference_threshold(),
    )
    o_nir = op(q.nir_tensor(), k.nir_tensor(), v.nir_tensor())
    shape = (int(o_nir.shape[2]), *u.grid)
    n_in = b.node(op.output, nir.Input(input_type={"input": np.array(shape)}), None)
    o = b.value(to_tokens(o_nir), (n_in,), u.grid)
    b.record(n_in, o)
    b.host_ops.append(op)
    b.partition.host_ops.append(name)
    for sub in ("qk", "attn_sn", "av", "out_sn"):
        b.place(j(sub), type(getattr(m, sub)).__name__, "host", (), "E-SDSA product/threshold")
    y = b.convert(m.proj_bn, j("proj_bn"), b.convert(m.proj, j("proj"), o))
    b.partition.boundary.append(BoundaryTensor(n_in, "host->core", shape, name, ",".join(y.terms)))
    return b.add(u, y, j("add"))


def _mlp(b: Builder, m: SpikingMLP, name: str, u: Value) -> Value:
    j = lambda s: join(name, s)  # noqa: E731
    y = b.convert(m.bn1, j("bn1"), b.convert(m.fc1, j("fc1"), b.convert(m.lif1, j("lif1"), u)))
    y = b.convert(m.bn2, j("bn2"), b.convert(m.fc2, j("fc2"), b.convert(m.lif2, j("lif2"), y)))
    return b.add(u, y, j("add"))


def _transformer_block(b: Builder, m: SpikingTransformerBlock, name: str, u: Value) -> Value:
    return b.convert(m.mlp, join(name, "mlp"), b.convert(m.attn, join(name, "attn"), u))


def convert_visual(b: Builder, m: SpikingVisualEncoder, name: str, x: Value) -> Value:
    """Time-first clip value -> final LIF spikes (tokens); the head stays on the host."""
    j = lambda s: join(name, s)  # noqa: E731
    x = b.convert(m.stem, j("stem"), x)
    for i, stage in enumerate(m.stages):
        x = b.convert(stage, j(f"stages.{i}"), x)
    h, w = x.tensor.shape[-2:]
    u = Value(to_tokens(x.tensor), x.terms, x.versions, (int(h), int(w)), x.label)
    u = b.convert(m.blocks, j("blocks"), u)
    return b.convert(m.final_lif, j("final_lif"), u)


# module type -> converter (looked up along the MRO by :func:`export.nir.converters.lookup`)
COMPOSITE_CONVERTERS: dict[type, Converter] = {
    nn.Sequential: _sequential,
    ConvTDBN: _conv_tdbn,
    MSBlock: _ms_block,
    SpikeProjection: _spike_projection,
    ESDSA: _esdsa,
    SpikingMLP: _mlp,
    SpikingTransformerBlock: _transformer_block,
}
# checked against their forward (nn.Sequential is children in order)
VERIFIED = frozenset({_conv_tdbn, _ms_block, _spike_projection, _esdsa, _mlp, _transformer_block})
