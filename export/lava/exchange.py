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

    ``FileNotFoundError`` for a missing file; anything else that is not a well-formed run file
    (not an ``.npz``, damaged, fields of the wrong type, inputs that do not fit the graph) is
    one ``ValueError`` naming the file (issue 16).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such run file")
    with open(path, "rb") as f:
        zipped = f.read(4) in (b"PK\x03\x04", b"PK\x05\x06")
    if not zipped:  # numpy would try a pickle and suggest allow_pickle=True
        raise ValueError(f"{path}: not a readable {FORMAT} file (not an .npz archive)")
    try:
        loaded = np.load(path, allow_pickle=False)
        if not hasattr(loaded, "files"):
            raise ValueError(f"an .npy array, not a {FORMAT} .npz file")
        with loaded as f:
            arrays = {k: f[k] for k in f.files}
    except Exception as err:  # zipfile, header, EOF errors of a damaged file
        raise ValueError(f"{path}: not a readable {FORMAT} file ({_reason(err)})") from None
    try:
        return _parse_run(arrays)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError) as err:
        raise ValueError(f"{path}: bad {FORMAT} file ({_reason(err)})") from None
    except RecursionError:
        raise ValueError(f"{path}: bad {FORMAT} file (metadata nested too deeply)") from None


def _reason(err: BaseException) -> str:
    text = " ".join(str(err).split())[:160]
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def _parse_run(arrays: dict[str, np.ndarray]) -> tuple[LavaGraph, dict, dict[str, Any]]:
    if "meta" not in arrays or arrays["meta"].dtype.kind != "U" or arrays["meta"].ndim != 0:
        raise ValueError("no metadata string")
    meta = json.loads(str(arrays.pop("meta")))
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"not a {FORMAT} file")
    graph = _graph_from_arrays(meta, arrays)
    inputs = {}
    for k, name in enumerate(meta["input_order"]):
        x = arrays[f"input{k}"]
        shape = graph.inputs.get(name) if isinstance(name, str) else None
        if shape is None or x.dtype.kind not in "biu" or x.shape[1:] != shape:
            raise ValueError(f"input {k} does not fit the graph's inputs {graph.inputs}")
        inputs[name] = x
    record, layers = meta["record"], meta["record_layers"]
    if not isinstance(record, list) or not set(record) <= set(RECORD_VARS):
        raise ValueError(f"record must be a list of {RECORD_VARS}")
    names = {layer.name for layer in graph.layers}
    if layers is not None and (not isinstance(layers, list) or not set(layers) <= names):
        raise ValueError(f"record_layers must be a list of layers of {sorted(names)}")
    return graph, inputs, {"record": tuple(record), "layers": layers}


def save_results(path: str | Path, results: Mapping[str, Mapping[str, np.ndarray]]) -> Path:
    """Write ``{layer: {var: [T, *shape]}}`` as ``.npz`` keys ``<var>/<layer>``."""
    arrays = {f"{var}/{layer}": a for layer, rec in results.items() for var, a in rec.items()}
    path = Path(path)
    np.savez(path, **arrays)
    return path


def load_results(path: str | Path) -> dict[str, dict[str, np.ndarray]]:
    """Read :func:`save_results` back; a damaged file is one ``ValueError`` naming it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such results file")
    with open(path, "rb") as f:
        if f.read(4) not in (b"PK\x03\x04", b"PK\x05\x06"):
            raise ValueError(f"{path}: not a results file (not an .npz archive)")
    out: dict[str, dict[str, np.ndarray]] = {}
    try:
        with np.load(path, allow_pickle=False) as f:
            for key in f.files:
                var, sep, layer = key.partition("/")
                if not sep or var not in RECORD_VARS:
                    raise ValueError(f"array {key!r} is not <{'|'.join(RECORD_VARS)}>/<layer>")
                out.setdefault(layer, {})[var] = f[key]
    except Exception as err:  # zipfile, header, EOF errors of a damaged file
        raise ValueError(f"{path}: not a readable results file ({_reason(err)})") from None
    return out
