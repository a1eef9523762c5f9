"""Run a quantised spiking graph in Intel Lava's fixed-point models; write lava-dl netx HDF5.

A :class:`LavaGraph` is a quantised graph as plain data (integer numpy arrays and ints, no
torch, no Lava; :func:`from_quantized` makes one from ``export.loihi.quantize``): spike inputs
and LIF layers, each layer driven by the sum of its synapses (Dense or Conv from an input
or an earlier layer; several synapses into one layer are a residual join). ``run_lava`` builds
the Lava network (``RingBuffer`` sources, ``Dense``/``Conv`` and ``LIF`` processes, fan-in by
connecting several synapses to one ``LIF.a_in``) and runs it with
``Loihi2SimCfg(select_tag='fixed_pt')`` (:class:`LavaNetwork` to run it in parts);
``write_netx`` writes chain-shaped graphs as netx HDF5.

Lava (``lava-nc==0.10.0``) needs Python 3.10 and lives in ``.venv-lava`` (``make lava-env``),
never in the main venv. This module imports under both: Lava is imported only inside the
functions that run it, so the main 3.11 venv can build graphs and call :func:`run_in_lava_env`,
which hands the graph over as ``.npz`` to ``.venv-lava/bin/python -m export.lava run IN OUT``.

Fixed-point semantics (``../shared/REFERENCE.md`` section 3): per step a Dense sends the
accumulation of the previous step, so each synapse adds one step of delay. Lava's
``PyConvModelFixed`` neither truncates weights nor applies ``weight_exp``; a non-negative conv
``weight_exp`` is applied here by shifting the weights (exact: ``Σ(w << e) = (Σw) << e``), a
negative one is refused. Conv sums wrap to 24-bit two's complement.

Layouts: ours are time-first, ``[T, n]`` or ``[T, C, H, W]``; conv weights ``[C_out, C_in/groups,
kh, kw]`` as cross-correlation (PyTorch, NIR). Lava's ``[*shape, T]`` buffers, ``(W, H, C)``
images and flipped ``(C_out, kw, kh, C_in)`` true-convolution kernels appear only in the
``_lava_*`` helpers.

CLI (run with the Lava interpreter)::

    python -m export.lava run IN.npz OUT.npz      # IN from save_run, OUT: s/<layer>, v/<layer>...
    python -m export.lava netx IN.npz OUT.h5      # IN from save_run (inputs optional)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "LAVA_VENV",
    "LIFQ",
    "RECORD_VARS",
    "LavaGraph",
    "LavaLayer",
    "LavaNetwork",
    "NetxError",
    "Synapse",
    "from_quantized",
    "lava_python",
    "load_results",
    "load_run",
    "main",
    "run_in_lava_env",
    "run_lava",
    "save_results",
    "save_run",
    "write_netx",
]

REPO_ROOT = Path(__file__).resolve().parent.parent
LAVA_VENV = REPO_ROOT / ".venv-lava"  # created by `make lava-env`
RECORD_VARS = ("s", "v", "u")  # spikes, voltage, current: each [T, *layer shape], int64

DECAY_BITS = 12  # du, dv: unsigned 12-bit
VTH_BITS = 17  # threshold mantissa: unsigned 17-bit (applied as vth << 6)
BIAS_MANT_BITS = 13  # signed
BIAS_EXP_MAX = 7  # unsigned 3-bit
NETX_BIAS_EXP = 6  # netx builds every LIF with bias_exp = 6
FORMAT = "fsve-lava-run"  # tag of the .npz files exchanged with the Lava interpreter
FORMAT_VERSION = 1


class NetxError(ValueError):
    """A graph (or a layer of it) netx HDF5 cannot hold; the message names the layer."""


# ----------------------------------------------------------------------------- graph description


def _int_array(x: Any, what: str) -> np.ndarray:
    a = np.asarray(x)
    if a.dtype.kind == "b":
        a = a.astype(np.int64)
    if a.dtype.kind not in "iu":
        if a.dtype.kind == "f" and np.array_equal(a, np.round(a)):
            a = a.astype(np.int64)
        else:
            raise ValueError(f"{what} must be integer, got dtype {a.dtype}")
    return a.astype(np.int64)


def _pair(x: int | Sequence[int], what: str) -> tuple[int, int]:
    t = (int(x), int(x)) if np.ndim(x) == 0 else tuple(int(v) for v in x)  # type: ignore[arg-type]
    if len(t) != 2:
        raise ValueError(f"{what} must be an int or a (y, x) pair, got {x!r}")
    return t  # type: ignore[return-value]


@dataclass(frozen=True)
class LIFQ:
    """Fixed-point LIF parameters of one layer (Lava ``LIF``, bit-accurate model).

    Per step: ``u = u·(4096 - (du + 1)) >> 12 + (a_in << 6)`` (24-bit wrap),
    ``v = v·(4096 - dv) >> 12 + u + (bias_mant << bias_exp)`` (saturating), spike where
    ``v > vth << 6``, then ``v = 0`` there; shifts of products truncate toward zero.
    """

    du: int  # current decay, 12-bit (Lava adds 1)
    dv: int  # voltage decay, 12-bit
    vth: int  # threshold mantissa, 17-bit
    bias_mant: np.ndarray | int = 0  # scalar or [*layer shape], signed 13-bit
    bias_exp: np.ndarray | int = 0  # scalar or [*layer shape], 0..7

    def __post_init__(self) -> None:
        for name, bits in (("du", DECAY_BITS), ("dv", DECAY_BITS), ("vth", VTH_BITS)):
            value = getattr(self, name)
            if int(value) != value or not 0 <= value < 2**bits:
                raise ValueError(f"{name}={value!r} outside the unsigned {bits}-bit range")
            object.__setattr__(self, name, int(value))
        mant = _int_array(self.bias_mant, "bias_mant")
        exp = _int_array(self.bias_exp, "bias_exp")
        lim = 2 ** (BIAS_MANT_BITS - 1)
        if mant.size and (mant.min() < -lim or mant.max() >= lim):
            raise ValueError(f"bias_mant outside the signed {BIAS_MANT_BITS}-bit range")
        if exp.size and (exp.min() < 0 or exp.max() > BIAS_EXP_MAX):
            raise ValueError(f"bias_exp outside 0..{BIAS_EXP_MAX}")
        object.__setattr__(self, "bias_mant", mant)
        object.__setattr__(self, "bias_exp", exp)

    def bias(self, shape: tuple[int, ...]) -> np.ndarray:
        """Effective bias ``bias_mant << bias_exp`` broadcast to ``shape``."""
        return np.broadcast_to(np.left_shift(self.bias_mant, self.bias_exp), shape).copy()  # type: ignore[arg-type]


@dataclass(frozen=True)
class Synapse:
    """One weighted connection into a layer: Dense (2-D weight) or Conv (4-D weight)."""

    source: str  # name of a graph input or of an earlier layer
    weight: (
        np.ndarray
    )  # int; dense [n_out, n_in] (flattened C,H,W order), conv [C_out, C_in/g, kh, kw]
    weight_exp: int = 0  # activation shifted by weight_exp after the sum (dense)
    num_weight_bits: int = 8  # dense: mantissa bits kept (Lava's truncation)
    stride: tuple[int, int] = (1, 1)  # conv, (y, x)
    padding: tuple[int, int] = (0, 0)  # conv, (y, x)
    dilation: tuple[int, int] = (1, 1)  # conv, (y, x)
    groups: int = 1  # conv

    def __post_init__(self) -> None:
        w = _int_array(self.weight, f"weight from {self.source!r}")
        if w.ndim not in (2, 4):
            raise ValueError(f"weight from {self.source!r} must be 2-D or 4-D, got {w.shape}")
        object.__setattr__(self, "weight", w)
        object.__setattr__(self, "weight_exp", int(self.weight_exp))
        object.__setattr__(self, "num_weight_bits", int(self.num_weight_bits))
        object.__setattr__(self, "groups", int(self.groups))
        for name in ("stride", "padding", "dilation"):
            object.__setattr__(self, name, _pair(getattr(self, name), name))

    @property
    def kind(self) -> str:
        """``"dense"`` or ``"conv"``."""
        return "dense" if self.weight.ndim == 2 else "conv"

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """Shape this synapse produces from a source of ``input_shape`` (ours: (n,) or (C,H,W))."""
        if self.kind == "dense":
            n_in = int(np.prod(input_shape))
            if self.weight.shape[1] != n_in:
                raise ValueError(
                    f"dense weight {self.weight.shape} from {self.source!r} needs {n_in} inputs"
                )
            return (self.weight.shape[0],)
        if len(input_shape) != 3:
            raise ValueError(f"conv from {self.source!r} needs a (C, H, W) source")
        c_in, h, w = input_shape
        c_out, c_per_group, kh, kw = self.weight.shape
        if c_in % self.groups or c_out % self.groups or c_per_group * self.groups != c_in:
            raise ValueError(
                f"conv weight {self.weight.shape} with groups={self.groups} does not fit "
                f"{c_in} input channels from {self.source!r}"
            )
        size = []
        for n, k, s, p, d in zip(
            (h, w), (kh, kw), self.stride, self.padding, self.dilation, strict=True
        ):
            size.append((n + 2 * p - d * (k - 1) - 1) // s + 1)
        return (c_out, *size)


@dataclass(frozen=True)
class LavaLayer:
    """A LIF population driven by the sum of its synapses."""

    name: str
    shape: tuple[int, ...]  # (n,) or (C, H, W)
    neuron: LIFQ
    synapses: tuple[Synapse, ...]  # summed at the neurons' input (fan-in)

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", tuple(int(n) for n in self.shape))
        object.__setattr__(self, "synapses", tuple(self.synapses))
        if len(self.shape) not in (1, 3):
            raise ValueError(f"layer {self.name!r}: shape must be (n,) or (C, H, W)")
        if not self.synapses:
            raise ValueError(f"layer {self.name!r} has no synapse")
        for arr, what in ((self.neuron.bias_mant, "bias_mant"), (self.neuron.bias_exp, "bias_exp")):
            try:
                np.broadcast_to(arr, self.shape)
            except ValueError:
                raise ValueError(
                    f"layer {self.name!r}: {what} {arr.shape} does not fit {self.shape}"
                ) from None


@dataclass(frozen=True)
class LavaGraph:
    """Spike inputs and LIF layers in topological order (a DAG; fan-in and fan-out allowed)."""

    inputs: Mapping[str, tuple[int, ...]]  # input name -> shape, (n,) or (C, H, W)
    layers: tuple[LavaLayer, ...]
    _shapes: dict[str, tuple[int, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        inputs = {str(k): tuple(int(n) for n in v) for k, v in self.inputs.items()}
        object.__setattr__(self, "inputs", inputs)
        object.__setattr__(self, "layers", tuple(self.layers))
        shapes: dict[str, tuple[int, ...]] = {}
        for name, shape in inputs.items():
            if len(shape) not in (1, 3):
                raise ValueError(f"input {name!r}: shape must be (n,) or (C, H, W)")
            shapes[name] = shape
        for layer in self.layers:
            if layer.name in shapes:
                raise ValueError(f"duplicate node name {layer.name!r}")
            for syn in layer.synapses:
                if syn.source not in shapes:
                    raise ValueError(
                        f"layer {layer.name!r}: source {syn.source!r} is not an input or an "
                        "earlier layer"
                    )
                out = syn.output_shape(shapes[syn.source])
                if int(np.prod(out)) != int(np.prod(layer.shape)) or (
                    syn.kind == "conv" and out != layer.shape
                ):
                    raise ValueError(
                        f"layer {layer.name!r}: synapse from {syn.source!r} gives {out}, "
                        f"layer is {layer.shape}"
                    )
            shapes[layer.name] = layer.shape
        if not self.layers:
            raise ValueError("a graph needs at least one layer")
        object.__setattr__(self, "_shapes", shapes)

    def shape(self, name: str) -> tuple[int, ...]:
        """Shape of an input or a layer."""
        return self._shapes[name]

    def layer(self, name: str) -> LavaLayer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)

    def first_non_chain(self) -> str | None:
        """Name of the first node that breaks a single input -> layer -> layer chain, or None."""
        if len(self.inputs) != 1:
            return sorted(self.inputs)[1] if self.inputs else None
        previous = next(iter(self.inputs))
        for layer in self.layers:
            if len(layer.synapses) != 1 or layer.synapses[0].source != previous:
                return layer.name
            previous = layer.name
        return None


# ----------------------------------------------------------------------------- from export.loihi

MAX_COMPOSED_WEIGHTS = 1 << 24  # entries of a dense matrix composed from a projection's ops


def from_quantized(q: Any) -> LavaGraph:
    """:class:`LavaGraph` of an ``export.loihi.QuantizedGraph`` (read by attribute, so this
    module never imports export.loihi or torch).

    A projection that is one Conv2d becomes a Lava Conv (its ``exp`` folded into the weights,
    so ``exp >= 0`` only); one Affine/Linear, with Flattens around it, a Dense. Anything else
    (sum pools, per-neuron identities, a Conv2d with a negative exponent) becomes the Dense of
    the composed integer linear map, which is exact as long as that matrix is what Lava's
    Dense uses unchanged (no truncation) and has at most ``MAX_COMPOSED_WEIGHTS`` entries; a
    projection that cannot be expressed raises ValueError naming the layer and its path.
    """
    shapes: dict[str, tuple[int, ...]] = {k: tuple(v) for k, v in q.inputs.items()}
    layers = []
    for name in q.order:
        if name not in q.layers:
            continue
        ql = q.layers[name]
        shape = tuple(int(n) for n in ql.shape)
        syns = tuple(
            _synapse_from_projection(p, shapes[p.source], shape, name) for p in ql.projections
        )
        neuron = LIFQ(du=ql.du, dv=ql.dv, vth=ql.vth, bias_mant=ql.bias_mant, bias_exp=ql.bias_exp)
        layers.append(LavaLayer(name, shape, neuron, syns))
        shapes[name] = shape
    inputs = {k: v for k, v in shapes.items() if k in q.inputs}
    return LavaGraph(inputs, tuple(layers))


def _conv_padding(
    padding: Any, kernel: tuple[int, ...], dilation: tuple[int, ...], stride
) -> tuple[int, int] | None:
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0)
        span = [d * (k - 1) for k, d in zip(kernel, dilation, strict=True)]
        if (
            padding == "same"
            and all(int(st) == 1 for st in stride)
            and all(x % 2 == 0 for x in span)
        ):
            return (span[0] // 2, span[1] // 2)
        return None
    return _pair(padding, "padding")


def _synapse_from_projection(
    p: Any, src_shape: tuple[int, ...], shape: tuple[int, ...], layer: str
) -> Synapse:
    kinds = [op.kind for op in p.ops]
    weighted = [op for op in p.ops if op.kind == "weighted"]
    w = np.asarray(p.weight)
    path = " -> ".join((p.source, *p.path, layer))
    if kinds == ["weighted"] and weighted[0].node_type == "Conv2d" and int(p.exp) >= 0:
        stride, padding, dilation, groups = weighted[0].params
        pad = _conv_padding(padding, w.shape[2:], tuple(dilation), tuple(stride))
        if pad is not None:
            return Synapse(
                p.source,
                w,
                int(p.exp),
                stride=tuple(stride),
                padding=pad,
                dilation=tuple(dilation),
                groups=int(groups),
            )
    if (
        len(weighted) == 1
        and weighted[0].node_type in ("Affine", "Linear")
        and set(kinds) <= {"weighted", "flatten"}
        and w.ndim == 2
        and w.shape == (int(np.prod(shape)), int(np.prod(src_shape)))
    ):
        return Synapse(p.source, w, int(p.exp))
    n_in, n_out = int(np.prod(src_shape)), int(np.prod(shape))
    if n_in * n_out > MAX_COMPOSED_WEIGHTS:
        raise ValueError(
            f"layer {layer!r}: projection {path} ({', '.join(kinds)}) has no single Lava "
            f"process, and its composed dense matrix ({n_out}x{n_in}) is too large"
        )
    basis = np.eye(n_in, dtype=np.int64).reshape(n_in, *src_shape)
    m = _apply_int_ops(p.ops, basis, w, layer).reshape(n_in, n_out).T  # [n_out, n_in]
    syn = Synapse(p.source, m, int(p.exp))
    if not np.array_equal(_effective_dense_weight(syn), m):
        raise ValueError(
            f"layer {layer!r}: the composed weights of {path} ({', '.join(kinds)}) are not "
            "what Lava's Dense keeps (clipping or truncation would change them)"
        )
    return syn


def _apply_int_ops(ops: Sequence[Any], x: np.ndarray, w: np.ndarray, layer: str) -> np.ndarray:
    """The projection's integer ops on ``x [N, *shape]`` (numpy, exact), as export.loihi
    applies them: sum pool (padding counted), flatten, per-neuron identity, conv, linear."""
    for op in ops:
        if op.kind == "sumpool":
            k, st, pad = (_pair(v, "pool") for v in op.params)
            x = _correlate(x, np.ones((x.shape[1], 1, *k), np.int64), st, pad, (1, 1), x.shape[1])
        elif op.kind == "flatten":
            start, end = (int(v) for v in op.params)
            n = x.ndim - 1
            start, end = (start + n if start < 0 else start) + 1, (end + n if end < 0 else end) + 1
            x = x.reshape(*x.shape[:start], -1, *x.shape[end + 1 :])
        elif op.kind == "identity":
            x = x * w
        elif op.kind == "weighted" and op.node_type == "Conv2d":
            stride, padding, dilation, groups = op.params
            pad = _conv_padding(padding, w.shape[2:], tuple(dilation), tuple(stride))
            if pad is None:
                raise ValueError(f"layer {layer!r}: conv padding {padding!r} is not symmetric")
            x = _correlate(
                x, w, _pair(stride, "stride"), pad, _pair(dilation, "dilation"), int(groups)
            )
        elif op.kind == "weighted" and op.node_type in ("Affine", "Linear"):
            x = x.reshape(len(x), -1) @ w.T
        else:
            raise ValueError(
                f"layer {layer!r}: op {op.kind} ({op.node_type}) has no Lava form here"
            )
    return x


def _correlate(x: np.ndarray, w: np.ndarray, stride, padding, dilation, groups: int) -> np.ndarray:
    """Exact integer cross-correlation of ``x [N, C, H, W]`` with ``w [O, C/g, kh, kw]``."""
    n, _, h, wd = x.shape
    o, cg, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding[0],) * 2, (padding[1],) * 2))
    ho = (h + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    wo = (wd + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    out = np.zeros((n, o, ho, wo), np.int64)
    og = o // groups
    for g in range(groups):
        xs, ws = xp[:, g * cg : (g + 1) * cg], w[g * og : (g + 1) * og]
        for a in range(kh):
            for b in range(kw):
                y0, x0 = a * dilation[0], b * dilation[1]
                patch = xs[
                    :, :, y0 : y0 + stride[0] * ho : stride[0], x0 : x0 + stride[1] * wo : stride[1]
                ]
                out[:, g * og : (g + 1) * og] += np.einsum("ncij,oc->noij", patch, ws[:, :, a, b])
    return out


# ----------------------------------------------------------------------------- .npz exchange


def _graph_to_arrays(graph: LavaGraph) -> tuple[dict, dict[str, np.ndarray]]:
    arrays: dict[str, np.ndarray] = {}
    layers = []
    for i, layer in enumerate(graph.layers):
        n = layer.neuron
        arrays[f"layer{i}.bias_mant"] = n.bias_mant  # type: ignore[assignment]
        arrays[f"layer{i}.bias_exp"] = n.bias_exp  # type: ignore[assignment]
        syns = []
        for j, s in enumerate(layer.synapses):
            arrays[f"layer{i}.syn{j}.weight"] = s.weight
            syns.append(
                {
                    "source": s.source,
                    "weight_exp": s.weight_exp,
                    "num_weight_bits": s.num_weight_bits,
                    "stride": list(s.stride),
                    "padding": list(s.padding),
                    "dilation": list(s.dilation),
                    "groups": s.groups,
                }
            )
        layers.append(
            {
                "name": layer.name,
                "shape": list(layer.shape),
                "du": n.du,
                "dv": n.dv,
                "vth": n.vth,
                "synapses": syns,
            }
        )
    meta = {"inputs": [[k, list(v)] for k, v in graph.inputs.items()], "layers": layers}
    return meta, arrays


def _graph_from_arrays(meta: dict, arrays: Mapping[str, np.ndarray]) -> LavaGraph:
    layers = []
    for i, spec in enumerate(meta["layers"]):
        syns = tuple(
            Synapse(
                source=s["source"],
                weight=arrays[f"layer{i}.syn{j}.weight"],
                weight_exp=s["weight_exp"],
                num_weight_bits=s["num_weight_bits"],
                stride=tuple(s["stride"]),
                padding=tuple(s["padding"]),
                dilation=tuple(s["dilation"]),
                groups=s["groups"],
            )
            for j, s in enumerate(spec["synapses"])
        )
        neuron = LIFQ(
            du=spec["du"],
            dv=spec["dv"],
            vth=spec["vth"],
            bias_mant=arrays[f"layer{i}.bias_mant"],
            bias_exp=arrays[f"layer{i}.bias_exp"],
        )
        layers.append(LavaLayer(spec["name"], tuple(spec["shape"]), neuron, syns))
    return LavaGraph({k: tuple(v) for k, v in meta["inputs"]}, tuple(layers))


def save_run(
    path: str | Path,
    graph: LavaGraph,
    inputs: Mapping[str, np.ndarray] | None = None,
    *,
    record: Iterable[str] = RECORD_VARS,
    layers: Iterable[str] | None = None,
) -> Path:
    """Write ``graph``, spike ``inputs`` ``{name: [T, *shape]}`` and what to record to ``.npz``."""
    meta, arrays = _graph_to_arrays(graph)
    meta["format"], meta["version"] = FORMAT, FORMAT_VERSION
    meta["record"] = list(record)
    meta["record_layers"] = None if layers is None else list(layers)
    meta["input_order"] = []
    for k, (name, x) in enumerate((inputs or {}).items()):
        arrays[f"input{k}"] = np.asarray(x).astype(np.int8)
        meta["input_order"].append(name)
    path = Path(path)
    np.savez(path, meta=np.array(json.dumps(meta)), **arrays)
    return path


def load_run(path: str | Path) -> tuple[LavaGraph, dict[str, np.ndarray], dict[str, Any]]:
    """Read a :func:`save_run` file: ``(graph, inputs, {"record": ..., "layers": ...})``."""
    with np.load(path, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    meta = json.loads(str(arrays.pop("meta")))
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path}: not a {FORMAT} file")
    graph = _graph_from_arrays(meta, arrays)
    inputs = {name: arrays[f"input{k}"] for k, name in enumerate(meta["input_order"])}
    return graph, inputs, {"record": tuple(meta["record"]), "layers": meta["record_layers"]}


def save_results(path: str | Path, results: Mapping[str, Mapping[str, np.ndarray]]) -> Path:
    """Write ``{layer: {var: [T, *shape]}}`` as ``.npz`` keys ``<var>/<layer>``."""
    arrays = {f"{var}/{layer}": a for layer, rec in results.items() for var, a in rec.items()}
    path = Path(path)
    np.savez(path, **arrays)
    return path


def load_results(path: str | Path) -> dict[str, dict[str, np.ndarray]]:
    """Read :func:`save_results` back."""
    out: dict[str, dict[str, np.ndarray]] = {}
    with np.load(path, allow_pickle=False) as f:
        for key in f.files:
            var, layer = key.split("/", 1)
            out.setdefault(layer, {})[var] = f[key]
    return out


# ----------------------------------------------------------------------------- Lava boundary


def _lava_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """Our (n,) or (C, H, W) -> Lava's (n,) or (W, H, C)."""
    return tuple(shape[::-1]) if len(shape) == 3 else tuple(shape)


def _lava_array(a: np.ndarray) -> np.ndarray:
    """[*ours] -> [*Lava] for one state array, (C, H, W) -> (W, H, C)."""
    return a.transpose(2, 1, 0) if a.ndim == 3 else a


def _lava_time_last(x: np.ndarray) -> np.ndarray:
    """Time-first [T, *ours] -> Lava buffer [*Lava, T]."""
    if x.ndim == 4:  # [T, C, H, W] -> [W, H, C, T]
        return x.transpose(3, 2, 1, 0)
    return x.T  # [T, n] -> [n, T]


def _from_lava_time_last(x: np.ndarray) -> np.ndarray:
    """Lava buffer [*Lava, T] -> time-first [T, *ours]."""
    if x.ndim == 4:  # [W, H, C, T] -> [T, C, H, W]
        return x.transpose(3, 2, 1, 0)
    return x.T


def _from_lava_time_first(x: np.ndarray) -> np.ndarray:
    """Monitor data [T, *Lava] -> [T, *ours]."""
    if x.ndim == 4:  # [T, W, H, C] -> [T, C, H, W]
        return x.transpose(0, 3, 2, 1)
    return x


def _lava_conv_weight(w: np.ndarray) -> np.ndarray:
    """Cross-correlation kernel [C_out, C_in, kh, kw] -> Lava's convolution kernel (C_out, kw,
    kh, C_in): Lava convolves (flips the kernel), so the flip here cancels it."""
    return np.ascontiguousarray(w[:, :, ::-1, ::-1].transpose(0, 3, 2, 1))


def _import_lava() -> dict[str, Any]:
    try:
        from lava.magma.core.run_conditions import RunSteps
        from lava.magma.core.run_configs import Loihi2SimCfg
        from lava.proc.conv.process import Conv
        from lava.proc.dense.process import Dense
        from lava.proc.io.sink import RingBuffer as Sink
        from lava.proc.io.source import RingBuffer as Source
        from lava.proc.lif.process import LIF
        from lava.proc.monitor.process import Monitor
    except ImportError as e:
        raise ImportError(
            f"export.lava needs lava-nc (Python 3.10): run `make lava-env` and use "
            f"{LAVA_VENV}/bin/python, or call run_in_lava_env() from another interpreter ({e})"
        ) from e
    return {
        "RunSteps": RunSteps,
        "Loihi2SimCfg": Loihi2SimCfg,
        "Conv": Conv,
        "Dense": Dense,
        "Sink": Sink,
        "Source": Source,
        "LIF": LIF,
        "Monitor": Monitor,
    }


def _check_connected(graph: LavaGraph) -> None:
    """Lava runs the component of the process it is started from: refuse disconnected graphs."""
    parent = {name: name for name in graph._shapes}

    def find(a: str) -> str:
        while parent[a] != a:
            a = parent[a]
        return a

    for layer in graph.layers:
        for syn in layer.synapses:
            parent[find(syn.source)] = find(layer.name)
    roots = {find(n) for n in parent}
    if len(roots) > 1:
        raise ValueError(f"graph has {len(roots)} disconnected parts; Lava runs one network")


def _num_steps(graph: LavaGraph, inputs: Mapping[str, np.ndarray]) -> int:
    steps = set()
    for name, shape in graph.inputs.items():
        if name not in inputs:
            raise ValueError(f"no spikes for input {name!r}")
        x = np.asarray(inputs[name])
        if x.shape[1:] != shape:
            raise ValueError(f"input {name!r}: spikes {x.shape}, expected [T, *{shape}]")
        steps.add(x.shape[0])
    if len(steps) != 1:
        raise ValueError(f"inputs disagree on the number of steps: {sorted(steps)}")
    return steps.pop()


class LavaNetwork:
    """``graph`` built as Lava processes on spike ``inputs {name: [T, *shape]}``, not yet run.

    ``run(num_steps)`` may be called several times (the first compiles and starts the network)
    until T steps in all; ``read()`` then returns ``{layer: {var: int64 [T, *shape]}}`` for the
    steps run. Spikes are recorded by one sink per layer, ``v``/``u`` by one Monitor per
    variable, each read once; record only what you need, monitors are slow. ``stop()`` (or
    leaving a ``with`` block) stops the processes; without it the interpreter hangs at exit.
    """

    def __init__(
        self,
        graph: LavaGraph,
        inputs: Mapping[str, np.ndarray],
        *,
        record: Iterable[str] = RECORD_VARS,
        layers: Iterable[str] | None = None,
    ) -> None:
        record = tuple(record)
        if unknown := set(record) - set(RECORD_VARS):
            raise ValueError(f"cannot record {sorted(unknown)}; choose from {RECORD_VARS}")
        wanted = [layer.name for layer in graph.layers] if layers is None else list(layers)
        for name in wanted:
            graph.layer(name)  # KeyError for an unknown layer
        _check_connected(graph)
        self.num_steps = _num_steps(graph, inputs)
        self.steps_run = 0
        self._lv = lv = _import_lava()

        ports: dict[str, Any] = {}  # node -> its s_out port (Lava shape)
        for name in graph.inputs:
            data = _lava_time_last(np.asarray(inputs[name]).astype(np.int32))
            ports[name] = lv["Source"](data=data).s_out
        lifs: dict[str, Any] = {}
        for layer in graph.layers:
            n = layer.neuron
            lif = lv["LIF"](
                shape=_lava_shape(layer.shape),
                du=n.du,
                dv=n.dv,
                vth=n.vth,
                bias_mant=_lava_array(np.broadcast_to(n.bias_mant, layer.shape).astype(np.int32)),
                bias_exp=_lava_array(np.broadcast_to(n.bias_exp, layer.shape).astype(np.int32)),
                name=layer.name,
            )
            for syn in layer.synapses:
                _connect_synapse(lv, syn, ports[syn.source], graph.shape(syn.source), layer, lif)
            ports[layer.name] = lif.s_out
            lifs[layer.name] = lif

        self._sinks, self._monitors = {}, {}
        for name in wanted:
            lif = lifs[name]
            if "s" in record:
                self._sinks[name] = lv["Sink"](shape=lif.s_out.shape, buffer=self.num_steps)
                lif.s_out.connect(self._sinks[name].a_in)
            for var in ("v", "u"):
                if var in record:
                    self._monitors[name, var] = lv["Monitor"]()
                    self._monitors[name, var].probe(getattr(lif, var), self.num_steps)
        self._wanted = wanted
        self._runner = lifs[graph.layers[-1].name]
        self._started = False

    def run(self, num_steps: int | None = None) -> None:
        """Run ``num_steps`` more steps (default: all that are left)."""
        left = self.num_steps - self.steps_run
        steps = left if num_steps is None else int(num_steps)
        if not 0 < steps <= left:
            raise ValueError(f"cannot run {steps} steps: {left} of {self.num_steps} left")
        self._started = True
        self._runner.run(
            condition=self._lv["RunSteps"](num_steps=steps),
            run_cfg=self._lv["Loihi2SimCfg"](select_tag="fixed_pt"),
        )
        self.steps_run += steps

    def read(self) -> dict[str, dict[str, np.ndarray]]:
        """The recorded variables of the steps run so far, ``[steps_run, *shape]`` each."""
        t = self.steps_run
        results: dict[str, dict[str, np.ndarray]] = {name: {} for name in self._wanted}
        for name, sink in self._sinks.items():
            s = _from_lava_time_last(sink.data.get())[:t]
            results[name]["s"] = s.astype(np.int64)
        for (name, var), mon in self._monitors.items():
            data = np.asarray(mon.get_data()[name][var])[:t]  # [t, *Lava shape]
            results[name][var] = _from_lava_time_first(data).astype(np.int64)
        return results

    def stop(self) -> None:
        if self._started:
            self._started = False
            self._runner.stop()

    def __enter__(self) -> LavaNetwork:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def run_lava(
    graph: LavaGraph,
    inputs: Mapping[str, np.ndarray],
    *,
    record: Iterable[str] = RECORD_VARS,
    layers: Iterable[str] | None = None,
) -> dict[str, dict[str, np.ndarray]]:
    """Run ``graph`` in Lava fixed point on binary spikes ``{input: [T, *shape]}`` for T steps.

    Returns ``{layer: {var: int64 [T, *shape]}}`` for ``var`` in ``record`` (``s``, ``v``, ``u``;
    the state after each step) and the layers named in ``layers`` (default all); see
    :class:`LavaNetwork`. Processes are stopped in any case.
    """
    with LavaNetwork(graph, inputs, record=record, layers=layers) as net:
        net.run()
        return net.read()


def _connect_synapse(
    lv: dict[str, Any],
    syn: Synapse,
    src_port: Any,
    src_shape: tuple[int, ...],
    layer: LavaLayer,
    lif: Any,
) -> None:
    if syn.kind == "dense":
        proc = lv["Dense"](
            weights=syn.weight.astype(np.int32),
            weight_exp=syn.weight_exp,
            num_weight_bits=syn.num_weight_bits,
        )
        # (W, H, C) spikes -> our flattened (C, H, W) order, and back for a 3-D layer
        inp = src_port if len(src_shape) == 1 else src_port.transpose([2, 1, 0]).flatten()
        inp.connect(proc.s_in)
        out = proc.a_out
        if len(layer.shape) == 3:
            out = out.reshape(layer.shape).transpose([2, 1, 0])
        out.connect(lif.a_in)
        return
    if syn.weight_exp < 0:
        raise ValueError(
            f"layer {layer.name!r}: Lava's fixed-point Conv ignores weight_exp; a negative "
            f"weight_exp ({syn.weight_exp}) cannot be folded into the weights"
        )
    weight = np.left_shift(syn.weight, syn.weight_exp)
    proc = lv["Conv"](
        weight=_lava_conv_weight(weight).astype(np.int32),
        input_shape=_lava_shape(src_shape),
        stride=syn.stride[::-1],
        padding=syn.padding[::-1],
        dilation=syn.dilation[::-1],
        groups=syn.groups,
    )
    src_port.connect(proc.s_in)
    proc.a_out.connect(lif.a_in)


# ----------------------------------------------------------------------------- netx HDF5


def _effective_dense_weight(syn: Synapse) -> np.ndarray:
    """Dense weights as Lava uses them: clipped by sign mode, low bits dropped (REFERENCE §3);
    an inhibitory matrix is truncated in magnitude."""
    w = syn.weight
    mixed = bool(w.min() < 0 < w.max())
    inhibitory = not mixed and bool(w.min() < 0)
    mag = -w if inhibitory else w
    mag = np.clip(mag, -256 if mixed else 0, 255)
    k = 8 - syn.num_weight_bits + int(mixed)
    mag = np.left_shift(np.right_shift(mag, k), k)
    return -mag if inhibitory else mag


def _netx_weight(layer: LavaLayer, syn: Synapse) -> np.ndarray:
    if syn.weight_exp < 0:
        raise NetxError(
            f"layer {layer.name!r}: netx has no weight exponent; weight_exp={syn.weight_exp} "
            "(a shift after the sum) cannot be stored exactly"
        )
    w = _effective_dense_weight(syn) if syn.kind == "dense" else syn.weight
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
        return _lava_array(bias)  # netx takes neuron-wise bias in (W, H, C)
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


# ----------------------------------------------------------------------------- bridge (any Python)


def lava_python(venv: str | Path = LAVA_VENV) -> Path | None:
    """The Lava interpreter of ``make lava-env``, or None when the environment is absent."""
    py = Path(venv) / "bin" / "python"
    return py if py.is_file() and (Path(venv) / ".installed").is_file() else None


def run_in_lava_env(
    graph: LavaGraph,
    inputs: Mapping[str, np.ndarray],
    *,
    record: Iterable[str] = RECORD_VARS,
    layers: Iterable[str] | None = None,
    python: str | Path | None = None,
    timeout_s: float = 600.0,
) -> dict[str, dict[str, np.ndarray]]:
    """:func:`run_lava` in the Lava interpreter, from any Python (the main 3.11 venv).

    Writes the graph and spikes to a temporary ``.npz``, runs ``python -m export.lava run``
    with this repository on ``PYTHONPATH`` and loads the results.
    """
    py = Path(python) if python is not None else lava_python()
    if py is None:
        raise FileNotFoundError(f"no Lava environment at {LAVA_VENV}: run `make lava-env`")
    with tempfile.TemporaryDirectory(prefix="fsve-lava-") as tmp:
        src, dst = Path(tmp) / "in.npz", Path(tmp) / "out.npz"
        save_run(src, graph, inputs, record=record, layers=layers)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p
        )
        proc = subprocess.run(
            [str(py), "-m", "export.lava", "run", str(src), str(dst)],
            cwd=tmp,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"Lava run failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
        return load_results(dst)


# ----------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m export.lava", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_run = sub.add_parser("run", help="run a save_run .npz in Lava fixed point")
    p_run.add_argument("input", type=Path)
    p_run.add_argument("output", type=Path)
    p_netx = sub.add_parser("netx", help="write the graph of a save_run .npz as netx HDF5")
    p_netx.add_argument("input", type=Path)
    p_netx.add_argument("output", type=Path)
    args = parser.parse_args(argv)

    graph, inputs, opts = load_run(args.input)
    if args.cmd == "run":
        results = run_lava(graph, inputs, record=opts["record"], layers=opts["layers"])
        save_results(args.output, results)
    else:
        write_netx(graph, args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
