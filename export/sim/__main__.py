"""``python -m export.sim``: see :mod:`export.sim.cli`."""

from export.sim.cli import main

raise SystemExit(main())
