"""Initial weights: the course's ``initialize_parameters`` and ``initialize_parameters_deep``, and their scales."""

from __future__ import annotations

import math

import numpy as np

from .. import _validate as v
from .. import backends

__all__ = ["INITS", "initialize_parameters", "initialize_parameters_deep"]

#: weight scale of each initialisation, as a function of n_{l-1}
INITS = {
    "course": lambda n_prev: 0.01,  # the Step-by-Step assignment: randn * 0.01
    "he": lambda n_prev: math.sqrt(2.0 / n_prev),  # He et al. 2015, for ReLU
    "xavier": lambda n_prev: math.sqrt(1.0 / n_prev),  # randn / sqrt(n_prev), the application notebook
}


def initialize_parameters_deep(layer_dims, *, init="course", seed=3, dtype="float64", backend=None):
    """Initialise ``W1, b1, ..., WL, bL`` for the layer sizes ``layer_dims``.

    Called as the course calls it, ``initialize_parameters_deep([5, 4, 3])``
    returns exactly the course's numbers: float64, drawn from the legacy
    ``numpy.random.RandomState(3)`` as ``randn(n_l, n_{l-1}) * 0.01``, zero
    biases.  The global numpy random state is not touched.

    Parameters
    ----------
    layer_dims : sequence of int
        ``[n_x, n_1, ..., n_L]``, at least two positive sizes.
    init : {"course", "he", "xavier"}
        Weight scale: ``0.01``, ``sqrt(2 / n_{l-1})`` or ``sqrt(1 / n_{l-1})``.
    seed : int
        Seed of the ``RandomState`` the weights are drawn from.
    dtype : {"float64", "float32"}
    backend : str or Backend, optional
        Where the arrays are created (:func:`bpnet.backends.get`).  Draws
        happen on the host and are moved, so every backend gets identical weights.

    Returns
    -------
    parameters : dict
        ``W{l}`` of shape ``(n_l, n_{l-1})`` and ``b{l}`` of shape ``(n_l, 1)``.
    """
    dims = v.layer_dims(layer_dims)
    v.choice(init, "init", INITS, what="initialisation")
    seed = v.seed(seed)
    dname = backends.float_dtype(dtype)
    bk = backends.get(backend)
    v.fits_memory(dims, np.dtype(dname).itemsize)  # drawn on the host
    rng = np.random.RandomState(seed)
    parameters = {}
    for l in range(1, len(dims)):
        W = rng.randn(dims[l], dims[l - 1]) * INITS[init](dims[l - 1])  # float64 on the host
        parameters[f"W{l}"] = bk.asarray(W, dtype=dname)
        parameters[f"b{l}"] = bk.xp.zeros((dims[l], 1), dtype=bk.dtype(dname), device=bk.device)
    return parameters


def initialize_parameters(n_x, n_h, n_y, *, seed=1, dtype="float64", backend=None):
    """Initialise the two-layer network ``n_x -> n_h -> n_y`` of the Step-by-Step notebook.

    The course's numbers: ``np.random.seed(1)``, then ``W1 = randn(n_h, n_x) * 0.01``,
    ``b1 = zeros((n_h, 1))``, ``W2 = randn(n_y, n_h) * 0.01``, ``b2 = zeros((n_y, 1))``
    -- that is ``initialize_parameters_deep([n_x, n_h, n_y], seed=1)`` -- drawn
    from a private ``RandomState(seed)``.  The week-3 notebook's function of the
    same name (seed 2) is :func:`bpnet.planar.initialize_parameters`.

    Parameters
    ----------
    n_x, n_h, n_y : int > 0
        Sizes of the input, the hidden layer and the output.
    seed, dtype, backend : see :func:`initialize_parameters_deep`

    Returns
    -------
    parameters : dict ``W1`` (n_h, n_x), ``b1`` (n_h, 1), ``W2`` (n_y, n_h), ``b2`` (n_y, 1)
    """
    dims = [v.integer(n, name, low=1) for n, name in ((n_x, "n_x"), (n_h, "n_h"), (n_y, "n_y"))]
    return initialize_parameters_deep(dims, seed=seed, dtype=dtype, backend=backend)
