"""The Application notebook's training loops, ``L_layer_model`` and ``two_layer_model``, on bpnet's one epoch loop.

Each iteration is one full-batch step of :mod:`bpnet.train.step` (forward,
``dZ[L] = A[L] - Y``, backward, gradient descent).  The cost is brought to the
host only on logging iterations (every ``print_every``), so a GPU is never
stalled in between.  As the notebook's, these loops compute with any real
labels; labels other than 0/1 get a :class:`bpnet.CourseInputWarning`.
"""

from __future__ import annotations

import array_api_compat

from .. import _validate as v
from .. import backends
from ..nn import get_activation, initialize_parameters_deep, resolve_head
from ..optim import get_optimizer
from .config import FitConfig
from .loop import LocalBatches, TrainingDivergedError, epochs
from .step import Net, TrainState

__all__ = ["L_layer_model", "two_layer_model", "TrainingDivergedError"]


def L_layer_model(X, Y, layers_dims, learning_rate=0.0075, num_iterations=3000, print_cost=False, *,
                  hidden_activation="relu", output_activation=None, loss=None,
                  init="xavier", seed=1, dtype=None, backend=None, print_every=100, callback=None):
    """Train an L-layer network by full-batch gradient descent (the course's model).

    Called as the course calls it, ``L_layer_model(X, Y, layers_dims,
    num_iterations=2500, print_cost=True)`` trains
    [LINEAR->RELU]*(L-1) -> LINEAR->SIGMOID with binary cross-entropy, from
    the application notebook's initialisation (``randn / sqrt(n_{l-1})``,
    seed 1), printing ``Cost after iteration i: J`` every 100 iterations and
    at the last, and returns the notebook's numbers.

    Parameters
    ----------
    X : array, shape (n_x, m)
        numpy on the host or an array of any backend.
    Y : array, shape (n_L, m), or (m,) for one output unit
        0/1 labels (binary), one-hot (categorical) or targets (mse).  Other
        finite values are trained on, as the notebook does, with a
        :class:`bpnet.CourseInputWarning`.
    layers_dims : list of int
        ``[n_x, n_1, ..., n_L]``.
    learning_rate : float > 0
    num_iterations : int > 0
    print_cost : bool
        Print the cost every ``print_every`` iterations and at the last one.
    hidden_activation : str
    output_activation : str, optional
        Default: the loss's natural output (sigmoid, softmax or linear).
    loss : {"binary_crossentropy", "categorical_crossentropy", "mse"}
    init, seed : see :func:`bpnet.initialize_parameters_deep`
    dtype : {"float32", "float64"}, optional
        Default: X's floating dtype, else float64.
    backend : str or Backend, optional
        ``None``: where X lives if X is a cupy or array_api_strict array, else
        :func:`bpnet.backends.get` (``BPNET_BACKEND``, else auto).  Data are
        moved to the backend once.
    print_every : int
    callback : callable, optional
        ``callback(i, cost)`` on every logging iteration (cost a Python float).

    Returns
    -------
    parameters : dict
        Trained ``W1, b1, ..., WL, bL`` on the backend.
    costs : list of float
        The cost at iterations 0, print_every, 2 print_every, ..., as the
        notebook records them (the last iteration's is printed, not recorded).

    Raises
    ------
    TypeError, ValueError
        Bad input, before any computation: shapes, dtypes (``dtype`` other than
        float32/float64, X values beyond float32's range for ``dtype="float32"``),
        NaN/inf in X or Y, an output/loss pair :func:`bpnet.nn.resolve_head` refuses.
    TrainingDivergedError
        (a ``FloatingPointError``) when a logged cost, or the parameters, become
        NaN or inf; the message names the iteration and suggests a smaller
        learning rate.
    """
    dims = v.layer_dims(layers_dims, "layers_dims")
    lr = v.real(learning_rate, "learning_rate", low=0.0, low_open=True)
    n_iter = v.integer(num_iterations, "num_iterations", low=1)
    every = v.integer(print_every, "print_every", low=1)
    hidden = get_activation(hidden_activation, "hidden_activation", hidden=True)
    output, spec = resolve_head(dims[-1], output_activation, loss, units_arg="layers_dims")
    if dtype is not None:
        dtype = backends.float_dtype(dtype)
    if backend is None and array_api_compat.is_array_api_obj(X) and not array_api_compat.is_numpy_array(X):
        bk = backends.backend_of(X)  # data already on a backend stay there
    else:
        bk = backends.get(backend)
    dtype = dtype or _float_dtype_of(X) or "float64"
    X = v.as_features(X, "X", bk, dtype, dims[0], f"for layers_dims[0] = {dims[0]}")
    Y = v.as_labels(Y, "Y", bk, dtype, dims[-1], X.shape[1], spec.target,
                    "= (layers_dims[-1], m of X)", strict=False)

    parameters = initialize_parameters_deep(dims, init=init, seed=seed, dtype=dtype, backend=bk)
    cfg = FitConfig(epochs=n_iter, batch_size=X.shape[1], optimizer=get_optimizer("gd"), learning_rate=lr,
                    shuffle=False, seed=0)
    ts = TrainState(parameters, cfg.optimizer, {"t": 0})
    costs = []
    for r in epochs(LocalBatches(X, Y, bk), ts, Net(hidden, output, spec), cfg, report=lambda i: i % every == 0,
                    where=lambda e: f"at iteration {e}", batches=False):
        i = r.epoch - 1  # the course counts iterations from 0; the cost is the one before that update
        if i % every == 0:  # the notebook records every 100th; it prints the last one too
            costs.append(r.cost)
        if print_cost:
            print(f"Cost after iteration {i}: {r.cost}")
        if callback is not None:
            callback(i, r.cost)
    return ts.parameters, costs  # the live arrays: new ones on an immutable backend (JAX)


def two_layer_model(X, Y, layers_dims, learning_rate=0.0075, num_iterations=3000, print_cost=False, *,
                    dtype=None, backend=None, print_every=100, callback=None):
    """Train the Application notebook's two-layer network LINEAR->RELU->LINEAR->SIGMOID.

    The notebook's model and numbers: :func:`bpnet.initialize_parameters`
    (``randn * 0.01``, seed 1), binary cross-entropy, full-batch gradient
    descent; the loop, options, printing and ``costs`` of :func:`L_layer_model`.

    Parameters
    ----------
    X : array, shape (n_x, m)
    Y : array, shape (n_y, m), or (m,) when n_y = 1
    layers_dims : (n_x, n_h, n_y)
    learning_rate, num_iterations, print_cost, dtype, backend, print_every, callback :
        as for :func:`L_layer_model`.

    Returns
    -------
    parameters : dict ``W1, b1, W2, b2``
    costs : list of float
    """
    dims = v.layer_dims(layers_dims, "layers_dims")
    if len(dims) != 3:
        raise ValueError(f"layers_dims: expected (n_x, n_h, n_y) for the two-layer model, got {tuple(dims)}; "
                         f"L_layer_model trains {len(dims) - 1} layers")
    return L_layer_model(X, Y, dims, learning_rate, num_iterations, print_cost, hidden_activation="relu",
                         output_activation="sigmoid", loss="binary_crossentropy", init="course", seed=1, dtype=dtype,
                         backend=backend, print_every=print_every, callback=callback)


def _float_dtype_of(x):
    name = backends.dtype_str(getattr(x, "dtype", ""))
    return name if name in ("float32", "float64") else None
