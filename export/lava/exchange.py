"""The ``.npz`` files that carry a graph, its spikes and its results to and from the Lava
interpreter (``python -m export.lava run IN OUT``)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from export.lava.graph import LIFQ, RECORD_VARS, LavaGraph, LavaLayer, Synapse

__all__ = ["FORMAT", "FORMAT_VERSION", "load_results", "load_run", "save_results", "save_run"]

FORMAT = "fsve-lava-run"  # tag of the .npz files exchanged with the Lava interpreter
FORMAT_VERSION = 1


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
    """Read a :func:`save_run` file: ``(graph, inputs, {"record": ..., "layers": ...})``.

    Anything else (not a zip, truncated, object arrays, missing keys or arrays, wrong dtypes or
    shapes) is one ``ValueError`` naming the file (issue 16, case 8).
    """
    path = Path(path)
    arrays = _read_npz(path)
    meta = _read_meta(path, arrays.pop("meta", None))
    try:
        graph = _graph_from_arrays(meta, arrays)
        inputs = {name: arrays[f"input{k}"] for k, name in enumerate(meta["input_order"])}
        record, layers = tuple(meta["record"]), meta["record_layers"]
    except KeyError as err:
        raise ValueError(f"{path}: not a complete {FORMAT} file (no {err})") from None
    except (TypeError, ValueError, AttributeError, IndexError, OverflowError) as err:
        raise ValueError(f"{path}: {err}") from None
    bad = [v for v in record if not isinstance(v, str) or v not in RECORD_VARS]
    names = {str(layer.name) for layer in graph.layers}
    if bad or not (layers is None or (isinstance(layers, list) and set(map(str, layers)) <= names)):
        raise ValueError(
            f"{path}: record must name {RECORD_VARS}, record_layers layers of {sorted(names)}"
        )
    for name, x in inputs.items():
        shape = graph.inputs.get(name) if isinstance(name, str) else None
        if shape is None:
            raise ValueError(f"{path}: input {name!r} is not an input of the graph")
        if x.dtype.kind not in "biu" or x.shape[1:] != tuple(shape) or x.ndim < 2:
            raise ValueError(
                f"{path}: input {name!r} must be integer spikes [T, {', '.join(map(str, shape))}],"
                f" got {x.dtype} {x.shape}"
            )
    return graph, inputs, {"record": record, "layers": layers}


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    """Every array of the ``.npz`` at ``path``; no pickled object is ever loaded."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    with open(path, "rb") as f:
        head = f.read(4)
    if head not in (b"PK\x03\x04", b"PK\x05\x06"):
        raise ValueError(f"{path}: not an .npz file (no zip archive)")
    try:
        with np.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in f.files}
    except ValueError as err:
        if "allow_pickle" in str(err):
            raise ValueError(f"{path}: holds object arrays (pickled objects); refused") from None
        raise ValueError(f"{path}: not a readable .npz file ({err})") from None
    except Exception as err:  # BadZipFile, zlib.error, EOFError, OSError: truncated or corrupt
        reason = f"{type(err).__name__}: {err}"
        raise ValueError(
            f"{path}: not a readable .npz file, truncated or corrupt ({reason})"
        ) from None


def _read_meta(path: Path, meta: np.ndarray | None) -> dict[str, Any]:
    """The JSON header of a run file, its format and top-level keys checked."""
    if meta is None or meta.dtype.kind != "U" or meta.ndim != 0:
        raise ValueError(f"{path}: not a {FORMAT} file (no JSON 'meta' string)")
    try:
        data = json.loads(str(meta))
    except RecursionError:
        raise ValueError(f"{path}: not a {FORMAT} file (meta nested too deeply)") from None
    except ValueError as err:
        raise ValueError(f"{path}: not a {FORMAT} file (meta is not JSON: {err})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"{path}: not a {FORMAT} file")
    if data.get("version", FORMAT_VERSION) != FORMAT_VERSION:
        raise ValueError(f"{path}: {FORMAT} version {data['version']!r}, expected {FORMAT_VERSION}")
    for key in ("inputs", "layers", "record", "input_order"):
        if not isinstance(data.get(key), list):
            raise ValueError(f"{path}: not a complete {FORMAT} file (meta {key!r} is no list)")
    return data


def save_results(path: str | Path, results: Mapping[str, Mapping[str, np.ndarray]]) -> Path:
    """Write ``{layer: {var: [T, *shape]}}`` as ``.npz`` keys ``<var>/<layer>``."""
    arrays = {f"{var}/{layer}": a for layer, rec in results.items() for var, a in rec.items()}
    path = Path(path)
    np.savez(path, **arrays)
    return path


def load_results(path: str | Path) -> dict[str, dict[str, np.ndarray]]:
    """Read :func:`save_results` back."""
    out: dict[str, dict[str, np.ndarray]] = {}
    for key, value in _read_npz(Path(path)).items():
        var, sep, layer = key.partition("/")
        if not sep or var not in RECORD_VARS:
            raise ValueError(f"{path}: {key!r} is not a <var>/<layer> result ({RECORD_VARS})")
        out.setdefault(layer, {})[var] = value
    return out
