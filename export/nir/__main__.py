"""``python -m export.nir``: see :mod:`export.nir.cli`."""

from export.nir.cli import main

raise SystemExit(main())
