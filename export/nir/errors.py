"""The error of the NIR export: a module NIR cannot express."""

from __future__ import annotations

from typing import NoReturn

from torch import nn


class ExportError(ValueError):
    """A module NIR cannot express; the message names the module, its type and the reason."""


def fail(name: str, module: nn.Module | None, reason: str) -> NoReturn:
    """Raise :class:`ExportError` naming the module, its type and ``reason``."""
    what = type(module).__name__ if module is not None else "?"
    raise ExportError(f"{name or '<root>'} ({what}): {reason}")
