"""The user's input to a NIR graph: ``--input [NAME=]FILE`` arrays, time-first, batch explicit.

Every command that runs a NIR graph on the user's spikes (``export.sim``, ``export.loihi``,
``export.lava compile``, ``export.map``) reads them here, so the axis convention is one:
``[T, B, *shape]`` with an explicit batch axis, or ``[T, *shape]`` for one sample (a batch
axis of 1 is added), where ``shape`` is the graph Input node's shape. Anything else is an
error naming both shapes: the batch axis is never guessed from a size (issue 15). An Input node
that declares no shape takes ``[T, B, ...]`` unless the caller says ``layout="T"``; the energy
profiler, whose per-sample figures depend on B, asks for the layout instead. Arrays must be
numeric (bool, int, float) and finite.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from export.graph import port_shape

__all__ = [
    "LAYOUTS",
    "GraphInputs",
    "check_array",
    "input_shape",
    "load_array",
    "load_inputs",
    "time_first",
]

LAYOUTS = ("auto", "T", "TB")  # from the Input node's shape; one sample [T, ...]; [T, B, ...]


class GraphInputs(NamedTuple):
    """Arrays ``{Input node: [T, B, *shape]}`` and whether they were given for one sample."""

    arrays: dict[str, np.ndarray]
    single: bool  # every array was [T, *shape] and got a batch axis of 1
    files: dict[str, str]  # Input node -> the file it came from (for reports)


def load_array(path: str | os.PathLike) -> np.ndarray:
    """One array from a ``.npy`` or a one-array ``.npz`` file, checked by :func:`check_array`.

    Whatever the suffix says, the file's content decides (numpy's magic). A damaged or foreign
    file is one ``ValueError`` naming it (issue 16), never numpy's zip or header errors.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such input file")
    if not _numpy_magic(path):  # numpy would try a pickle and suggest allow_pickle=True
        raise ValueError(f"{path}: not a numpy array file (neither .npy nor .npz)")
    try:
        loaded = np.load(path, allow_pickle=False)
        if hasattr(loaded, "files"):  # an .npz archive
            with loaded as z:
                if len(z.files) != 1:
                    raise ValueError(f"an .npz input must hold one array, has {z.files}")
                arr = z[z.files[0]]
        else:
            arr = loaded
    except ValueError as err:  # object arrays refuse to load without pickle; bad headers
        raise ValueError(f"{path}: {' '.join(str(err).split())[:200]}") from None
    except Exception as err:  # zipfile, tokenize, EOF, OS errors of a damaged file
        reason = " ".join(str(err).split())[:160]
        raise ValueError(
            f"{path}: not a numpy array file ({type(err).__name__}: {reason})"
        ) from None
    return check_array(str(path), arr)


def _numpy_magic(path: Path) -> bool:
    """Whether ``path`` starts like an ``.npy`` file or a zip archive (``.npz``)."""
    try:
        with open(path, "rb") as f:
            head = f.read(6)
    except OSError as err:
        raise ValueError(f"{path}: cannot read ({err.strerror or err})") from None
    return head.startswith((b"\x93NUMPY", b"PK\x03\x04", b"PK\x05\x06"))


def check_array(what: str, value: Any) -> np.ndarray:
    """``value`` as a numpy array of booleans, integers or floats, all finite."""
    if hasattr(value, "detach"):  # a torch tensor, without importing torch here
        value = value.detach().cpu().numpy()
    arr = np.asarray(value)
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{what}: expected numbers (bool, int or float), got dtype {arr.dtype}")
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise ValueError(f"{what}: {bad} values are NaN or infinite")
    return arr


def input_shape(nodes: Mapping[str, Any], name: str) -> tuple[int, ...] | None:
    """Shape per sample of Input node ``name`` (its input port, else output), None if untyped."""
    node = nodes[name]
    return port_shape(node, "input") or port_shape(node, "output")


def time_first(
    given: Mapping[str, Any],
    nodes: Mapping[str, Any],
    what: Mapping[str, str] | None = None,
    layout: str = "auto",
) -> tuple[dict[str, np.ndarray], bool]:
    """Check ``{Input node: array}`` against the nodes' shapes; ``[T, *shape]`` gains a batch
    axis (``[T, 1, *shape]``). Returns the arrays and whether they were one sample each.

    ``what``: how to name each array in errors (its file); a shape that is neither
    ``[T, *shape]`` nor ``[T, B, *shape]`` is a ``ValueError`` naming both shapes. ``layout``
    (:data:`LAYOUTS`) fixes which of the two is meant instead of reading it off the shape.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    out: dict[str, np.ndarray] = {}
    singles = set()
    for name, value in given.items():
        if name not in nodes:
            raise ValueError(f"{name!r} is not a node of the graph")
        label = (what or {}).get(name, f"input {name!r}")
        arr = check_array(label, value)
        shape = input_shape(nodes, name)
        if shape is None or layout != "auto":
            out[name] = _as_layout(label, arr, shape, "TB" if layout == "auto" else layout)
            if layout == "T":
                singles.add(name)
            continue
        if arr.ndim == len(shape) + 1 and tuple(arr.shape[1:]) == shape:
            out[name] = arr[:, None]  # [T, *shape] -> [T, 1, *shape]
            singles.add(name)
        elif arr.ndim == len(shape) + 2 and tuple(arr.shape[2:]) == shape:
            out[name] = arr
        else:
            dims = ", ".join(map(str, shape))
            raise ValueError(
                f"{label} has shape {tuple(arr.shape)} but the graph's Input {name!r} has shape"
                f" {shape}: give [T, {dims}] (one sample) or [T, B, {dims}]"
            )
    lead = {a.shape[:2] for a in out.values()}
    if len(lead) > 1:
        raise ValueError(f"the inputs disagree on [T, B]: {sorted(lead)}")
    if singles and len(singles) != len(out):
        raise ValueError("give every input with a batch axis [T, B, ...] or none ([T, ...])")
    return out, bool(out) and len(singles) == len(out)


def _as_layout(label: str, arr: np.ndarray, shape: tuple[int, ...] | None, layout: str):
    """``arr`` given as ``layout`` (``"T"`` or ``"TB"``) -> ``[T, B, *shape]``."""
    arr = arr[:, None] if layout == "T" and arr.ndim >= 1 else arr
    if arr.ndim < 2 or (shape is not None and tuple(arr.shape[2:]) != shape):
        axes = ("T",) if layout == "T" else ("T", "B")
        want = "[" + ", ".join((*axes, *map(str, shape or ("...",)))) + "]"
        got = tuple(arr.shape[:1] + arr.shape[2:]) if layout == "T" else tuple(arr.shape)
        raise ValueError(f"{label} must be {want} as layout {layout}, got {got}")
    return arr


def load_inputs(
    items: Iterable[str], nodes: Mapping[str, Any], inputs: Sequence[str]
) -> GraphInputs:
    """``[NAME=]FILE`` arguments -> :class:`GraphInputs` for the graph Input nodes ``inputs``
    (the name may be left out when there is one); shapes checked by :func:`time_first`."""
    files: dict[str, str] = {}
    for item in items:
        name, sep, file = item.partition("=")
        if not sep:
            if len(inputs) != 1:
                raise ValueError(f"the graph has Input nodes {list(inputs)}; use NAME=FILE")
            name, file = inputs[0], item
        if name not in inputs:
            raise ValueError(f"{name!r} is not an Input node of the graph ({list(inputs)})")
        if name in files:
            raise ValueError(f"two inputs for the Input node {name!r}")
        files[name] = file
    missing = [n for n in inputs if n not in files]
    if missing:
        raise ValueError(f"no --input for the graph's Input nodes {missing}")
    given = {name: load_array(file) for name, file in files.items()}
    arrays, single = time_first(given, nodes, files)
    return GraphInputs(arrays, single, files)
