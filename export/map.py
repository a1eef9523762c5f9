"""``python -m export.map``: runs the mapping command, :mod:`export.mapping.cli`."""

from export.mapping.cli import main

__all__ = ["main"]

if __name__ == "__main__":
    raise SystemExit(main())
