"""``python -m export.lava``: see :mod:`export.lava.cli`."""

from export.lava.cli import main

raise SystemExit(main())
