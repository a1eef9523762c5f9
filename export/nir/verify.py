"""The float comparison of a split model with its model, spike by spike, on clips of a dataset."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import nir
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from export.graph import NEURON_TYPES
from export.nir.exporter import to_nir
from export.nir.split import SplitModel
from fsve.models.student import FSVE

DEFAULT_TEMPLATE = "a video of an object {}"  # zero-shot prompt of fsve.eval


def clip_batches(dataset: Any, samples: int, batch_size: int) -> Iterable[dict[str, Any]]:
    """The first ``samples`` clips of ``dataset`` in collated batches of ``batch_size``."""
    from fsve.data.dataset import collate

    for start in range(0, samples, batch_size):
        yield collate([dataset[i] for i in range(start, min(start + batch_size, samples))])


def class_prompt_embeddings(model: FSVE, ckpt: Mapping[str, Any], classes: Sequence[str]):
    """Normalised text embeddings ``[classes, D]`` of :data:`DEFAULT_TEMPLATE` per class.

    ``None`` when the checkpoint has no tokenizer or there are no classes.
    """
    from fsve.models.text import WordTokenizer

    if not ckpt.get("tokenizer") or not classes:
        return None
    tok = WordTokenizer.from_dict(ckpt["tokenizer"])
    tokens = tok.encode(
        [DEFAULT_TEMPLATE.format(c) for c in classes], model.text.cfg.context_length
    )
    with torch.no_grad():
        return F.normalize(model.encode_text(tokens), dim=-1)  # [classes, D]


@dataclass(frozen=True)
class LayerComparison:
    """Spikes of one neuron node: the model's vs the split model's, over a set of inputs."""

    node: str
    module: str
    neurons: int  # per sample and step
    model_spikes: int
    sim_spikes: int
    mismatches: int  # free-running: differences including those inherited from upstream
    local_mismatches: int  # teacher-forced: the node fed with the model's upstream spikes
    max_margin: float = float("nan")  # largest |H - V_th| / |V_th| at a local mismatch


@dataclass
class SplitComparison:
    """:func:`compare_split` on one batch (``+`` adds two of them)."""

    layers: list[LayerComparison]
    model_outputs: dict[str, torch.Tensor]  # "embedding" (FSVE) or "output"
    split_outputs: dict[str, torch.Tensor]
    traffic: dict[str, tuple[int, int, int]]  # boundary node -> (spikes, sample-steps, max)

    def __add__(self, other: SplitComparison) -> SplitComparison:
        layers = []
        for a, b in zip(self.layers, other.layers, strict=True):
            layers.append(
                LayerComparison(
                    a.node,
                    a.module,
                    a.neurons,
                    a.model_spikes + b.model_spikes,
                    a.sim_spikes + b.sim_spikes,
                    a.mismatches + b.mismatches,
                    a.local_mismatches + b.local_mismatches,
                    float(np.fmax(a.max_margin, b.max_margin)),
                )
            )
        cat = lambda x, y: {k: torch.cat([x[k], y[k]]) for k in x}  # noqa: E731
        traffic = {
            k: (
                a[0] + other.traffic[k][0],
                a[1] + other.traffic[k][1],
                max(a[2], other.traffic[k][2]),
            )
            for k, a in self.traffic.items()
        }
        return SplitComparison(
            layers,
            cat(self.model_outputs, other.model_outputs),
            cat(self.split_outputs, other.split_outputs),
            traffic,
        )


def compare_split(
    model: nn.Module,
    split: SplitModel,
    x: torch.Tensor,
    boundary: Iterable[str] = (),
    local: bool = True,
) -> SplitComparison:
    """Run ``model`` and ``split`` on ``x``; count spike mismatches per neuron node.

    Free-running counts include mismatches inherited from upstream layers; local counts feed
    every node the model's own upstream spikes (``clamp``), so they isolate each node's
    arithmetic. ``boundary`` names port nodes whose spike traffic to total.
    """
    ref = to_nir(model, x, split.sim.dt, keep_activations=True, verify=False)
    free = split.run(x)
    forced = split.run(x, clamp=ref.activations) if local else free
    rows = []
    for name in ref.activations:  # forward order
        if name not in split.sim.nodes or not isinstance(split.sim.nodes[name], NEURON_TYPES):
            continue
        want = ref.activations[name].to(free[name].dtype)
        node = split.sim.nodes[name]
        mod = (node.metadata or {}).get("module", name)
        mod = mod.decode() if isinstance(mod, bytes) else str(mod)
        rows.append(
            LayerComparison(
                name,
                mod,
                int(np.prod(want.shape[2:])),
                int(want.sum()),
                int(free[name].sum()),
                int((free[name] != want).sum()),
                int((forced[name] != want).sum()),
            )
        )
    if local and any(r.local_mismatches for r in rows):
        margins = _margins(split, x, ref.activations, [r.node for r in rows if r.local_mismatches])
        rows = [dataclasses.replace(r, max_margin=margins.get(r.node, r.max_margin)) for r in rows]
    traffic = {}
    for name in boundary:
        t = free[name]
        per = t.flatten(2).sum(-1)  # [T, B] spikes per sample and step
        traffic[name] = (int(per.sum()), int(per.numel()), int(per.max()))
    sim_out = {k: free[k] for k in ref.outputs}
    return SplitComparison(rows, ref.outputs, sim_out, traffic)


def _margins(
    split: SplitModel, x: torch.Tensor, ref: Mapping[str, torch.Tensor], names: list[str]
) -> dict[str, float]:
    """Largest ``|H - V_th| / |V_th|`` where a teacher-forced node disagrees with the model.

    ``H`` is the value the simulator compared with the threshold (LIF/IF: the membrane before
    reset; Threshold: its input), rebuilt from the node's recorded inputs and state.
    """
    sim = split.sim
    preds = {p for n in names for p in sim.preds[n]}
    stateful = [n for n in names if isinstance(sim.nodes[n], nir.LIF | nir.IF)]
    rec = split.run(x, record=set(names) | preds, clamp=ref, states=stateful)
    out = {}
    dtype = sim.dtype
    param = lambda a: torch.as_tensor(np.asarray(a, np.float64), dtype=dtype)  # noqa: E731
    for n in names:
        node = sim.nodes[n]
        xin = sum(ref[p].to(dtype) if p in ref else rec[p] for p in sim.preds[n])
        if isinstance(node, nir.Threshold):
            h, thr = xin, param(node.threshold)
        elif isinstance(node, nir.LIF | nir.IF):
            v = rec[f"{n}.v"]
            rest = node.v_leak if isinstance(node, nir.LIF) else node.v_reset
            v_prev = torch.cat([param(rest).expand_as(v[:1]), v[:-1]])
            if isinstance(node, nir.LIF):
                tau = param(np.asarray(node.tau, np.float64) / sim.dt)
                h = v_prev + ((param(node.v_leak) - v_prev) + param(node.r) * xin) / tau
            else:
                h = v_prev + param(np.asarray(node.r, np.float64) * sim.dt) * xin
            thr = param(node.v_threshold)
        else:
            continue
        wrong = rec[n] != ref[n].to(dtype)
        rel = ((h - thr).abs() / thr.abs().clamp_min(1e-30)).expand_as(wrong)[wrong]
        out[n] = float(rel.max()) if rel.numel() else float("nan")
    return out


@dataclass(frozen=True)
class ZeroShot:
    """Zero-shot classes of the model's and the split model's embeddings on the same clips."""

    identical: int  # clips where both predict the same class
    clips: int
    top1_model: float  # fraction of clips whose label the model predicts
    top1_split: float


def zero_shot(
    model_embedding: torch.Tensor,
    split_embedding: torch.Tensor,
    classes: torch.Tensor,
    labels: torch.Tensor,
) -> ZeroShot:
    """Compare the zero-shot classes (``classes``: :func:`class_prompt_embeddings`)."""
    pm = (F.normalize(model_embedding, dim=-1) @ classes.T).argmax(-1)
    ps = (F.normalize(split_embedding, dim=-1) @ classes.T).argmax(-1)
    return ZeroShot(
        int((pm == ps).sum()),
        len(pm),
        float((pm == labels).float().mean()),
        float((ps == labels).float().mean()),
    )
