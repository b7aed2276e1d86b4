"""Kept where it was: see :mod:`bpnet.io.checkpoint`."""

from .io.checkpoint import *  # noqa: F401,F403
from .io.checkpoint import __all__  # noqa: F401
