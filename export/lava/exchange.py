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
