"""Kept where it was: see :mod:`bpnet.io.datasets`."""

from .io.datasets import *  # noqa: F401,F403
from .io.datasets import __all__  # noqa: F401
