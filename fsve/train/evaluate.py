"""The evaluation metrics moved to :mod:`fsve.eval.metrics`; this name is kept for old imports."""

from fsve.eval.metrics import *  # noqa: F403
from fsve.eval.metrics import __all__  # noqa: F401
