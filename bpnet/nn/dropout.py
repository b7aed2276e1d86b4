"""Inverted dropout masks, drawn on the device by the counter-based generator (:mod:`bpnet.nn.random`):
the same masks on every backend, and nothing crosses the bus."""

from __future__ import annotations

import numpy as np

from .. import _validate as v
from .. import backends
from . import random

__all__ = ["dropout_masks"]


def dropout_masks(layer_dims, m, keep_prob, *, rng=0, dtype="float64", backend=None):
    """Inverted-dropout masks for the hidden layers, drawn on the backend's device.

    Parameters
    ----------
    layer_dims : list of int
        ``[n_x, n_1, ..., n_L]``; masks are made for layers 1 .. L-1.
    m : int
        Examples in the batch.
    keep_prob : float in (0, 1]
    rng : int, tuple of ints or numpy.random.Generator
        The counters of the draw: a seed, or ``(seed, epoch, batch)`` for the masks
        training draws for mini-batch ``batch`` (0-based) of 0-based ``epoch``
        (:func:`bpnet.nn.random.dropout`); a Generator gives a seed from its stream.
    dtype, backend : where the masks are created.

    Returns
    -------
    list of L-1 arrays, shape (n_l, m)
        ``D / keep_prob`` with ``D ~ Bernoulli(keep_prob)``: 0 or ``1/keep_prob``,
        so the expected activation is unchanged and inference needs no mask.
    """
    dims = v.layer_dims(layer_dims)
    m = v.integer(m, "m", low=1)
    keep_prob = v.real(keep_prob, "keep_prob", low=0.0, high=1.0, low_open=True)
    if isinstance(rng, np.random.Generator):
        counters = (int(rng.integers(2**63)),)
    elif isinstance(rng, tuple) and rng:
        counters = tuple(v.integer(c, "rng", low=0) for c in rng)
    else:
        counters = (v.integer(rng, "rng", low=0),)
    bk = backends.get(backend)
    return random.dropout(bk.xp, dims[1:-1], m, keep_prob, counters, bk.device, bk.dtype(dtype))
