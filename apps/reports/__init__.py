"""``make reports``: regenerate the paper's tables and figures on the built-in dataset.

Shared by the report modules: :func:`markdown_table`, :func:`save_png` and :func:`commit`.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fsve.io import atomic_path


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub markdown table of already formatted cells."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def save_png(fig: Any, path: Path, dpi: int) -> None:
    """Write a ``matplotlib.figure.Figure`` (no pyplot state to close) as PNG, atomically."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)


def commit(outputs: Path | None = None) -> str:
    """Short hash of the checked-out code, ``-dirty`` if tracked files changed.

    Changes under ``outputs`` (the folder being regenerated) do not count as dirty.
    """
    exclude = [] if outputs is None else ["--", ".", f":(exclude){outputs}"]
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", *exclude],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return head + ("-dirty" if dirty else "")
