"""Kept where it was: see :mod:`bpnet.train.distributed`."""

from .train.distributed import *  # noqa: F401,F403
from .train.distributed import __all__  # noqa: F401
