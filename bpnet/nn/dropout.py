"""Inverted dropout masks, drawn on the host so every backend gets the same ones."""

from __future__ import annotations

import numpy as np

from .. import _validate as v
from .. import backends

__all__ = ["dropout_masks", "draw_masks"]


def draw_masks(rng, sizes, m, keep_prob):
    """Host 0/1 masks ``D[l] ~ Bernoulli(keep_prob)``, shape ``(n_l, m)`` for each n_l of ``sizes``, in order."""
    return [rng.random((n, m)) < keep_prob for n in sizes]


def dropout_masks(layer_dims, m, keep_prob, *, rng=0, dtype="float64", backend=None):
    """Inverted-dropout masks for the hidden layers, drawn on the host.

    Parameters
    ----------
    layer_dims : list of int
        ``[n_x, n_1, ..., n_L]``; masks are made for layers 1 .. L-1.
    m : int
        Examples in the batch.
    keep_prob : float in (0, 1]
    rng : int seed or numpy.random.Generator
        The host generator of the Bernoulli draws (the same masks on every backend).
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
    if not isinstance(rng, np.random.Generator):
        rng = np.random.default_rng(rng)
    bk = backends.get(backend)
    return [bk.asarray(D / keep_prob, dtype=dtype) for D in draw_masks(rng, dims[1:-1], m, keep_prob)]
