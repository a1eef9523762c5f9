"""A quantised spiking graph as plain data: spike inputs and LIF layers fed by synapses.

Integer numpy arrays and ints only (no torch, no Lava, no nir: this imports under the Lava
interpreter). Shapes are ours, time-first ``[T, n]`` or ``[T, C, H, W]``; conv weights
``[C_out, C_in/groups, kh, kw]`` as cross-correlation (PyTorch, NIR).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from export.fixed_point import BIAS_EXP_MAX, BIAS_MANT_BITS, DECAY_BITS, VTH_BITS, int_array

__all__ = [
    "LIFQ",
    "RECORD_VARS",
    "LavaGraph",
    "LavaLayer",
    "Synapse",
    "conv_out_size",
    "pair",
]

RECORD_VARS = ("s", "v", "u")  # spikes, voltage, current: each [T, *layer shape], int64


def pair(x: int | Sequence[int], what: str) -> tuple[int, int]:
    """An int or a ``(y, x)`` pair as a pair of ints."""
    t = (int(x), int(x)) if np.ndim(x) == 0 else tuple(int(v) for v in x)  # type: ignore[arg-type]
    if len(t) != 2:
        raise ValueError(f"{what} must be an int or a (y, x) pair, got {x!r}")
    return t  # type: ignore[return-value]


def conv_out_size(n: int, k: int, s: int, p: int, d: int) -> int:
    """Output length of a conv axis (length n, kernel k, stride s, padding p, dilation d).

    :func:`export.graph.conv_out_size` again: export.graph imports nir, which the Lava
    interpreter does not have."""
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


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
        mant = int_array(self.bias_mant, "bias_mant")
        exp = int_array(self.bias_exp, "bias_exp")
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
        w = int_array(self.weight, f"weight from {self.source!r}")
        if w.ndim not in (2, 4):
            raise ValueError(f"weight from {self.source!r} must be 2-D or 4-D, got {w.shape}")
        object.__setattr__(self, "weight", w)
        object.__setattr__(self, "weight_exp", int(self.weight_exp))
        object.__setattr__(self, "num_weight_bits", int(self.num_weight_bits))
        object.__setattr__(self, "groups", int(self.groups))
        for name in ("stride", "padding", "dilation"):
            object.__setattr__(self, name, pair(getattr(self, name), name))

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
        size = [
            conv_out_size(n, k, s, p, d)
            for n, k, s, p, d in zip(
                (h, w), (kh, kw), self.stride, self.padding, self.dilation, strict=True
            )
        ]
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
