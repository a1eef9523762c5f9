"""Lava from any Python: the graph goes to the Lava interpreter as ``.npz`` and back.

Lava (``lava-nc==0.10.0``) needs Python 3.10 and lives in ``.venv-lava`` (``make lava-env``),
never in the main venv; :func:`run_in_lava_env` runs ``python -m export.lava run IN OUT``
there.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from export.lava.exchange import load_results, save_run
from export.lava.graph import RECORD_VARS, LavaGraph

__all__ = ["LAVA_VENV", "REPO_ROOT", "lava_python", "run_in_lava_env"]

REPO_ROOT = Path(__file__).resolve().parents[2]
LAVA_VENV = REPO_ROOT / ".venv-lava"  # created by `make lava-env`


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
