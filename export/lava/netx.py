"""lava-dl netx HDF5 of a chain-shaped :class:`~export.lava.graph.LavaGraph`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from export.fixed_point import effective_weights
from export.lava.graph import LavaGraph, LavaLayer, Synapse
from export.lava.layout import lava_array

__all__ = ["NETX_BIAS_EXP", "NetxError", "write_netx"]

NETX_BIAS_EXP = 6  # netx builds every LIF with bias_exp = 6


class NetxError(ValueError):
    """A graph (or a layer of it) netx HDF5 cannot hold; the message names the layer."""


def _netx_weight(layer: LavaLayer, syn: Synapse) -> np.ndarray:
    if syn.weight_exp < 0:
        raise NetxError(
            f"layer {layer.name!r}: netx has no weight exponent; weight_exp={syn.weight_exp} "
            "(a shift after the sum) cannot be stored exactly"
        )
    w = effective_weights(syn.weight, syn.num_weight_bits) if syn.kind == "dense" else syn.weight
    w = np.left_shift(w, syn.weight_exp)
    if w.min() < -256 or w.max() > 255:
        raise NetxError(
            f"layer {layer.name!r}: weights << weight_exp span [{w.min()}, {w.max()}], beyond "
            "netx's 8-bit synapse"
        )
    return w


def _netx_bias(layer: LavaLayer) -> np.ndarray | None:
    """Bias as netx stores it (applied with bias_exp = 6), or None when it is zero."""
    bias = layer.neuron.bias(layer.shape)  # [*ours]
    if not bias.any():
        return None
    scale = 1 << NETX_BIAS_EXP
    if np.any(bias % scale):
        raise NetxError(
            f"layer {layer.name!r}: netx applies bias << {NETX_BIAS_EXP}; bias_mant << bias_exp "
            "is not a multiple of 64"
        )
    bias = bias // scale
    if len(layer.shape) == 3:
        per_channel = bias.reshape(bias.shape[0], -1)
        if np.all(per_channel == per_channel[:, :1]):
            return per_channel[:, 0]
        return lava_array(bias)  # netx takes neuron-wise bias in (W, H, C)
    return bias


def _netx_plan(graph: LavaGraph) -> list[dict[str, Any]]:
    """The netx layer groups of ``graph`` as ``{"type", "shape", datasets..., "neuron"}``;
    raises :class:`NetxError` before anything is written."""
    bad = graph.first_non_chain()
    if bad is not None:
        raise NetxError(
            f"netx HDF5 holds sequential networks only; {bad!r} breaks the chain "
            "(residual join, fan-out or a second input)"
        )
    (in_shape,) = graph.inputs.values()
    # netx feeds input spikes through the input neuron's bias (±64 << 6 per step); this
    # pass-through neuron (u and v forgotten each step, vth 1 << 6) fires on each spike
    plan: list[dict[str, Any]] = [{"type": "input", "shape": in_shape, "neuron": (4095, 4095, 1)}]
    vector = len(in_shape) == 1  # netx's output of a dense block is a vector
    for layer in graph.layers:
        syn = layer.synapses[0]
        if syn.kind == "conv" and vector:
            raise NetxError(
                f"layer {layer.name!r}: a conv reading a vector (a dense layer's output) needs "
                "a reshape netx does not have"
            )
        if syn.kind == "dense" and not vector:
            plan.append({"type": "flatten", "shape": (int(np.prod(graph.shape(syn.source))),)})
        entry: dict[str, Any] = {
            "type": syn.kind,
            "shape": layer.shape,
            "weight": _netx_weight(layer, syn),
            "neuron": (layer.neuron.du, layer.neuron.dv, layer.neuron.vth),
        }
        if syn.kind == "conv":
            entry |= {
                "stride": np.asarray(syn.stride),
                "padding": np.asarray(syn.padding),
                "dilation": np.asarray(syn.dilation),
                "groups": np.asarray(syn.groups),
            }
        bias = _netx_bias(layer)
        if bias is not None:
            entry["bias"] = bias
        plan.append(entry)
        vector = syn.kind == "dense"
    return plan


def write_netx(graph: LavaGraph, path: str | Path) -> Path:
    """Write a chain-shaped ``graph`` as lava-dl netx HDF5 (``layer/0`` input, then one group
    per layer; a ``flatten`` group where a dense layer follows an image).

    netx is sequential only: a residual join, a fan-out or several inputs raise
    :class:`NetxError` naming the first node that breaks the chain. So do values netx cannot
    hold exactly (negative ``weight_exp``, biases not a multiple of ``1 << 6``, a conv after a
    dense layer). Neurons are ``CUBA`` with ``iDecay = du + 1`` (netx subtracts 1),
    ``vDecay = dv``, ``vThMant = vth``. Shapes are ours, ``(C, H, W)``, as netx expects; conv
    weights ``[C_out, C_in/groups, kh, kw]`` cross-correlation, ``stride``/``padding``/
    ``dilation`` as ``(y, x)``.
    """
    import h5py

    plan = _netx_plan(graph)
    path = Path(path)
    with h5py.File(path, "w") as f:
        for index, entry in enumerate(plan):
            g = f.create_group(f"layer/{index}")
            g.create_dataset("type", data=np.array([entry["type"].encode("ascii")]))
            g.create_dataset("shape", data=np.asarray(entry["shape"], dtype=np.int64))
            for key, value in entry.items():
                if key not in ("type", "shape", "neuron"):
                    g.create_dataset(key, data=value)
            if "neuron" in entry:
                du, dv, vth = entry["neuron"]
                n = g.create_group("neuron")
                n.create_dataset("type", data=np.array([b"CUBA"]))
                n.create_dataset("iDecay", data=np.array([du + 1]))
                n.create_dataset("vDecay", data=np.array([dv]))
                n.create_dataset("vThMant", data=np.array([vth]))
    return path
