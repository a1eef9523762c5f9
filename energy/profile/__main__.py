"""``python -m energy.profile``: runs the command of :mod:`energy.profile.cli`."""

from energy.profile.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
