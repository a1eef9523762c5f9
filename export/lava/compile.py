"""``python -m export.lava compile GRAPH.nir --input spikes.npy OUT.npz``: any NIR graph to a
Lava run file, in the main venv (issue 15).

Quantises the graph with :func:`export.loihi.quantize_on_input` (ranges from the user's
input), converts it with :func:`~export.lava.convert.from_quantized` and writes the
:func:`~export.lava.exchange.save_run` file of one sample (zero-padded by the graph's depth
so the deepest layer sees every input step), plus ``OUT.expected.npz``: what
:func:`export.loihi.simulate_quantized` computes with Lava's timing (spikes, u, v per layer).
``.venv-lava/bin/python -m export.lava run OUT.npz RES.npz`` then runs it in Lava; ``--run``
does that from here and compares every layer. export.loihi, torch and nir are imported
only inside :func:`compile_graph`: the rest of export.lava still imports under the Lava venv.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from export.lava.convert import from_quantized
from export.lava.exchange import save_results, save_run
from export.lava.graph import LavaGraph
from fsve.io import atomic_path

__all__ = ["CompiledRun", "compare_with_lava", "compile_graph", "expected_path"]


@dataclass
class CompiledRun:
    """A NIR graph compiled for Lava: the graph, one sample's padded input, the expected run."""

    graph: LavaGraph
    inputs: dict[str, np.ndarray]  # {Input: [T + depth, *shape]} int8, zero-padded
    expected: dict[str, dict[str, np.ndarray]]  # {layer: {"s"|"u"|"v": [T + depth, *shape]}}
    steps: int  # input steps T (the rest is padding)


def expected_path(out: str | os.PathLike) -> Path:
    """Where the expected run of ``OUT.npz`` lives: ``OUT.expected.npz``."""
    out = Path(out)
    return out.with_name(out.stem + ".expected.npz")


def compile_graph(
    graph: str | os.PathLike,
    inputs: str | os.PathLike | np.ndarray,
    *,
    sample: int = 0,
    calibration: int = 16,
    headroom: float = 2.0,
    dt: float | None = None,
) -> CompiledRun:
    """Quantise ``GRAPH.nir`` on the user's time-first ``inputs`` and build sample ``sample``'s
    Lava run (see the module docstring)."""
    from export.loihi import QuantConfig, quantize_on_input, simulate_quantized

    q, given = quantize_on_input(
        graph, inputs, calibration=calibration, config=QuantConfig(headroom=headroom), dt=dt
    )
    batch = next(iter(given.values())).shape[1]
    if not 0 <= sample < batch:
        raise ValueError(f"--sample {sample} is not one of the input's {batch} samples")
    one = {k: v[:, sample : sample + 1] for k, v in given.items()}  # [T, 1, *shape]
    run = simulate_quantized(q, one, align=False, states=list(q.layers))
    steps = next(iter(one.values())).shape[0]
    padded = {}
    for name, x in one.items():
        pad = np.zeros((run.steps, *x.shape[2:]), np.int8)
        pad[:steps] = x[:, 0]
        padded[name] = pad
    expected = {
        n: {"s": run.values[n][:, 0], "u": run.states[f"{n}.u"][:, 0],
            "v": run.states[f"{n}.v"][:, 0]}
        for n in q.layers
    }  # fmt: skip
    return CompiledRun(from_quantized(q), padded, expected, steps)


def write_compiled(run: CompiledRun, out: str | os.PathLike) -> tuple[Path, Path]:
    """Write the run file ``OUT.npz`` and ``OUT.expected.npz`` atomically."""
    out = Path(out)
    if out.suffix != ".npz":
        raise ValueError(f"{out}: the run file must end in .npz")
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        save_run(tmp, run.graph, run.inputs)
    exp = expected_path(out)
    with atomic_path(exp) as tmp:
        save_results(tmp, run.expected)
    return out, exp


def compare_with_lava(
    expected: dict[str, dict[str, np.ndarray]], lava: dict[str, dict[str, np.ndarray]]
) -> list[dict[str, Any]]:
    """Per layer: spikes of export.loihi (Lava timing) and of Lava, and whether s, u, v are
    equal at every step."""
    rows = []
    for layer, ours in expected.items():
        theirs = lava.get(layer, {})
        same = all(
            k in theirs and np.array_equal(np.asarray(theirs[k]), np.asarray(v))
            for k, v in ours.items()
        )
        rows.append(
            {
                "layer": layer,
                "spikes_export_loihi": int(np.sum(ours["s"])),
                "spikes_lava": int(np.sum(theirs["s"])) if "s" in theirs else "",
                "s_u_v_equal": "yes" if same else "NO",
            }
        )
    return rows
