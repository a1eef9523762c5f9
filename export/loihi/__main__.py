"""``python -m export.loihi``: see :mod:`export.loihi.cli`."""

from export.loihi.cli import main

raise SystemExit(main())
