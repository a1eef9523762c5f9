"""The host program of a split model (E-SDSA products, FSVE readout) and the files it lives in."""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import nir
import torch
import torch.nn.functional as F
from torch import nn

from fsve.io import atomic_write_bytes

HOST_FORMAT = "fsve-nir-host"  # format tag of the host program file OUT.host.pt
HOST_VERSION = 1


def to_tokens(x: torch.Tensor) -> torch.Tensor:
    """Maps ``[T, B, C, h, w]`` as tokens ``[T, B, N = h*w, C]``."""
    return x.flatten(3).transpose(2, 3)  # [T, B, C, h, w] -> [T, B, N = h*w, C]


def to_grid(x: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """Tokens ``[T, B, N, C]`` as maps ``[T, B, C, h, w]`` (``grid = (h, w)``)."""
    return x.transpose(2, 3).unflatten(3, grid)  # [T, B, N, C] -> [T, B, C, h, w]


class HostOp(nn.Module):
    """A host op of a split model: reads the graph nodes ``inputs``, produces ``output``.

    ``feeds_graph``: ``output`` is a graph Input node (else a final output of the split model).
    ``spec()`` gives the op as plain values and tensors, ``from_spec`` rebuilds it.
    """

    kind: str
    feeds_graph: bool
    name: str
    inputs: tuple[str, ...]
    output: str

    def spec_head(self) -> dict[str, Any]:
        """The fields every op's spec starts with."""
        return {
            "kind": self.kind,
            "name": self.name,
            "inputs": list(self.inputs),
            "output": self.output,
        }


class HostESDSA(HostOp):
    """Host part of one E-SDSA (Eq. 10-11): spikes Q, K, V -> SN(A V_S) spikes, NIR layout.

    Repeats :class:`~fsve.nn.attention.ESDSA` from its SN/SN' outputs on: counts ``Q K^T`` per
    head, ``A = 1(counts - V_th/scale >= 0)`` (Eq. 11), ``A V``, ``1(A V - V_th' >= 0)`` with
    the fixed eval thresholds. Products of spikes are integer counts, exact in float.
    Inputs and output ``[T, B, C, h, w]``.
    """

    kind = "esdsa"

    def __init__(
        self,
        name: str,
        inputs: tuple[str, str, str],
        output: str,
        heads: int,
        grid: tuple[int, int],
        count_threshold: torch.Tensor,
        out_threshold: torch.Tensor,
    ) -> None:
        super().__init__()
        self.name, self.inputs, self.output = name, tuple(inputs), output
        self.heads, self.grid = int(heads), (int(grid[0]), int(grid[1]))
        self.register_buffer("count_threshold", count_threshold.detach().clone())  # [heads]
        self.register_buffer("out_threshold", out_threshold.detach().clone())  # [C]

    feeds_graph = True

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        d = x.shape[-1] // self.heads
        return x.unflatten(-1, (self.heads, d)).transpose(2, 3)  # [T, B, h, N, d]

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        q, k, v = (self._heads(to_tokens(t)) for t in (q, k, v))
        counts = torch.matmul(q, k.transpose(-2, -1))  # [T, B, h, N, N] integer counts
        thr = self.count_threshold.to(counts.dtype).view(1, 1, -1, 1, 1)
        a = (counts - thr >= 0).to(counts.dtype)  # SN' (Eq. 10-11)
        y = torch.matmul(a, v).transpose(2, 3).flatten(-2)  # [T, B, N, C] counts
        o = (y - self.out_threshold.to(y.dtype) >= 0).to(y.dtype)  # out SN
        return to_grid(o, self.grid).contiguous()

    def spec(self) -> dict[str, Any]:
        return {
            **self.spec_head(),
            "heads": self.heads,
            "grid": list(self.grid),
            "count_threshold": self.count_threshold.cpu(),
            "out_threshold": self.out_threshold.cpu(),
        }

    @classmethod
    def from_spec(cls, s: Mapping[str, Any]) -> HostESDSA:
        return cls(
            s["name"],
            tuple(s["inputs"]),
            s["output"],
            s["heads"],
            tuple(s["grid"]),
            s["count_threshold"],
            s["out_threshold"],
        )


class HostReadout(HostOp):
    """FSVE head on the host: final spikes ``[T, B, C, h, w]`` -> embedding ``[B, D]``.

    Firing rate per channel over time and tokens, then ``proj`` (the one rate-coded layer,
    :data:`~fsve.models.student.SPIKE_DRIVEN_EXCEPTIONS`).
    """

    kind = "readout"
    feeds_graph = False

    def __init__(
        self,
        name: str,
        inputs: tuple[str],
        output: str,
        grid: tuple[int, int],
        weight: torch.Tensor,
        bias: torch.Tensor | None,
    ) -> None:
        super().__init__()
        self.name, self.inputs, self.output = name, tuple(inputs), output
        self.grid = (int(grid[0]), int(grid[1]))
        self.register_buffer("weight", weight.detach().clone())  # [D, C]
        self.register_buffer("bias", None if bias is None else bias.detach().clone())  # [D]

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        rates = to_tokens(features).mean(dim=(0, 2))  # [B, C]
        w = self.weight.to(rates.dtype)
        return F.linear(rates, w, None if self.bias is None else self.bias.to(rates.dtype))

    def spec(self) -> dict[str, Any]:
        return {
            **self.spec_head(),
            "grid": list(self.grid),
            "weight": self.weight.cpu(),
            "bias": None if self.bias is None else self.bias.cpu(),
        }

    @classmethod
    def from_spec(cls, s: Mapping[str, Any]) -> HostReadout:
        return cls(
            s["name"], tuple(s["inputs"]), s["output"], tuple(s["grid"]), s["weight"], s["bias"]
        )


HOST_OPS: dict[str, type[HostOp]] = {"esdsa": HostESDSA, "readout": HostReadout}


class HostProgram(nn.Module):
    """The host side of a split model: ordered host ops and the graph input convention.

    ``input_layout`` is ``"clip"`` (FSVE: ``[B, K, F, H, W]`` clips, time = sub-blocks) or
    ``"time_first"`` (``[T, B, ...]``). Ops with ``feeds_graph`` produce a graph Input node from
    graph Output nodes; the others produce final outputs from graph outputs.
    """

    def __init__(
        self,
        ops: Iterable[nn.Module] = (),
        input_name: str = "input",
        input_layout: str = "time_first",
    ) -> None:
        super().__init__()
        if input_layout not in ("clip", "time_first"):
            raise ValueError(f"input_layout must be 'clip' or 'time_first', got {input_layout!r}")
        self.ops = nn.ModuleList(ops)
        self.input_name, self.input_layout = input_name, input_layout

    def graph_input(self, x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """The model input as the graph's time-first input ``[T, B, ...]``."""
        x = torch.as_tensor(x)
        if self.input_layout == "clip":
            if x.ndim != 5:
                raise ValueError(f"expected clips [B, K, F, H, W], got {tuple(x.shape)}")
            x = x.transpose(0, 1)  # [T = K, B, F, H, W]
        return x.to(dtype)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": HOST_FORMAT,
            "version": HOST_VERSION,
            "input_name": self.input_name,
            "input_layout": self.input_layout,
            "ops": [op.spec() for op in self.ops],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> HostProgram:
        fmt, version = d.get("format"), d.get("version")
        if not (isinstance(fmt, str) and fmt == HOST_FORMAT and type(version) is int) or (
            version != HOST_VERSION
        ):
            raise ValueError(
                f"not a host program (format {d.get('format')!r} version {d.get('version')!r};"
                f" expected {HOST_FORMAT!r} {HOST_VERSION})"
            )
        ops = []
        if not isinstance(d.get("ops"), list) or not all(
            isinstance(d.get(k), str) for k in ("input_name", "input_layout")
        ):
            raise ValueError("ops must be a list, input_name and input_layout strings")
        for s in d["ops"]:
            if not isinstance(s, Mapping) or s.get("kind") not in HOST_OPS:
                kind = s.get("kind") if isinstance(s, Mapping) else type(s).__name__
                raise ValueError(f"unknown host op kind {kind!r}")
            _check_spec(s)
            ops.append(HOST_OPS[s["kind"]].from_spec(s))
        return cls(ops, d["input_name"], d["input_layout"])

    def save(self, path: str | os.PathLike) -> Path:
        """Write atomically with ``torch.save`` (tensors and plain values only)."""
        path = Path(path)
        buf = io.BytesIO()
        torch.save(self.to_dict(), buf)
        atomic_write_bytes(path, buf.getvalue())
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> HostProgram:
        """Read ``OUT.host.pt`` (tensors and plain values only: ``weights_only``).

        ``FileNotFoundError`` for a missing file; anything else that is not a well-formed host
        program (random bytes, a truncated file, other pickled objects, fields of the wrong
        type or shape) is one ``ValueError`` naming the file (issue 16).
        """
        from fsve.checkpoint import load_torch_file

        path = Path(path)
        data = load_torch_file(path, "export.nir host program")  # one line naming the file
        if not isinstance(data, Mapping):
            raise ValueError(f"{path}: not a host program (holds a {type(data).__name__})")
        try:
            return cls.from_dict(data)
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as err:
            reason = " ".join(str(err).split())[:160] or type(err).__name__
            raise ValueError(f"{path}: bad host program ({reason})") from None


def _check_spec(s: Mapping[str, Any]) -> None:
    """Types and shapes of one host op spec (a file may hold anything; issue 16)."""
    what = f"host op {s.get('name')!r}"
    inputs = s.get("inputs")
    names = [s.get("name"), s.get("output"), *(inputs if isinstance(inputs, list | tuple) else [])]
    if not isinstance(inputs, list | tuple) or not all(isinstance(n, str) for n in names):
        raise ValueError(f"{what}: name, inputs and output must be strings")
    grid = s.get("grid")
    if not (isinstance(grid, list | tuple) and len(grid) == 2 and all(_count(g) for g in grid)):
        raise ValueError(f"{what}: grid must be two positive integers, got {grid!r}")
    if s["kind"] == "esdsa":
        if len(s["inputs"]) != 3 or not _count(s.get("heads")):
            raise ValueError(f"{what}: needs 3 inputs and a positive number of heads")
        _tensor(what, s, "count_threshold", (s["heads"],))
        _tensor(what, s, "out_threshold", (None,))
    else:
        weight = _tensor(what, s, "weight", (None, None))
        if len(s["inputs"]) != 1:
            raise ValueError(f"{what}: a readout reads one input")
        if s.get("bias") is not None:
            _tensor(what, s, "bias", (weight.shape[0],))


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _tensor(what: str, s: Mapping[str, Any], key: str, shape: tuple) -> torch.Tensor:
    """``s[key]``: a finite real tensor of ``shape`` (``None``: any size on that axis)."""
    t = s.get(key)
    if not isinstance(t, torch.Tensor) or not t.is_floating_point():
        raise ValueError(f"{what}: {key} must be a float tensor, got {type(t).__name__}")
    if t.ndim != len(shape) or any(
        n is not None and n != m for n, m in zip(shape, t.shape, strict=True)
    ):
        raise ValueError(f"{what}: {key} has shape {list(t.shape)}, expected {list(shape)}")
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{what}: {key} holds NaN or Inf")
    return t


def write_nir(path: str | os.PathLike, graph: nir.NIRGraph) -> Path:
    """``nir.write`` atomically, then ``nir.read`` it back with its type check."""
    path = Path(path)
    buf = io.BytesIO()
    nir.write(buf, graph)
    atomic_write_bytes(path, buf.getvalue())
    nir.read(path)  # loads and type-checks, or raises
    return path


def host_path_for(nir_path: str | os.PathLike) -> Path:
    """Where the host program of ``OUT.nir`` lives: ``OUT.host.pt``."""
    p = Path(nir_path)
    return p.with_name(p.stem + ".host.pt")
