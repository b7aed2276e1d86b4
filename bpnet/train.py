"""The course's full-batch training loop, ``L_layer_model``.

Each iteration is one forward pass, the fused output gradient
``dZ[L] = A[L] - Y``, one backward pass and one gradient-descent step, all on
the backend where the data live.  The cost is computed and brought to the
host only on logging iterations (every ``print_every``), so a GPU is never
stalled in between.
"""

from __future__ import annotations

import math

import array_api_compat
import numpy as np

from . import backends as _backends
from ._checks import check_finite, check_float_matrix, check_nonempty, check_positive_int, check_positive_real, prepare_labels
from .activations import get_activation
from .core import _backward, _check_layer_dims, _forward, _update, initialize_parameters_deep
from .losses import DEFAULT_OUTPUT, FUSED_PAIRS, get_loss

__all__ = ["L_layer_model", "TrainingDivergedError"]


class TrainingDivergedError(FloatingPointError):
    """The cost became NaN or infinite during training."""


def _to_backend(bk, x, name, dtype=None, *, labels=False):
    """Move ``x`` onto backend ``bk`` (a no-op when it is already there).

    ``x`` must hold real numbers (bool/int too when ``labels``); anything else
    is refused here, before a cast could silently drop data.
    """
    if array_api_compat.is_array_api_obj(x):
        xp = array_api_compat.array_namespace(x)
        kinds = ("real floating", "integral", "bool") if labels else ("real floating", "integral")
        if not xp.isdtype(x.dtype, kinds):
            want = "real numbers or booleans" if labels else "a real floating dtype (float32 or float64)"
            raise TypeError(f"{name}: expected {want}, got {_backends._dtype_str(x.dtype)}")
        if xp is bk.xp and array_api_compat.device(x) == bk.device:
            if dtype is None:
                return x
            _check_fits(xp, x, name, dtype)
            # no copy when the dtype already matches (the math never writes its inputs), as
            # bk.asarray does for host numpy below: a dataset on the GPU is not doubled
            return xp.astype(x, bk.dtype(dtype), copy=False)
        host = _backends.to_numpy(x)
    else:
        try:
            host = np.asarray(x)
        except (ValueError, TypeError) as exc:  # e.g. a ragged nested list
            raise TypeError(f"{name}: expected an array of real numbers, got a {type(x).__name__} that is not "
                            f"one ({exc})") from None
        if host.dtype.kind not in ("f", "i", "u") + (("b",) if labels else ()):
            want = "real numbers or booleans" if labels else "a real floating dtype (float32 or float64)"
            raise TypeError(f"{name}: expected {want}, got {host.dtype} ({type(x).__name__})")
    if dtype is not None:
        _check_fits(np, host, name, dtype)
    return bk.asarray(host, dtype=dtype)


def _check_fits(xp, x, name, dtype):
    """A float64 array cast to float32 must not overflow to inf (one host sync, only for that cast)."""
    if _backends._dtype_name(dtype) != "float32" or _float_dtype_of(x) != "float64" or 0 in tuple(x.shape):
        return
    biggest = float(xp.max(xp.abs(x)))  # NaN/inf: left to the finiteness check that follows the cast
    limit = float(np.finfo(np.float32).max)
    if math.isfinite(biggest) and biggest > limit:
        raise ValueError(f"{name}: expected values that fit in float32 (|x| <= {limit:.4g}), got values up to "
                         f"{biggest:.4g}; rescale the data (e.g. standardise it) or use dtype='float64'")


def _float_dtype_of(x):
    name = str(getattr(x, "dtype", "")).rsplit(".", 1)[-1]
    return name if name in ("float32", "float64") else None


def L_layer_model(X, Y, layers_dims, learning_rate=0.0075, num_iterations=3000, print_cost=False, *,
                  hidden_activation="relu", output_activation=None, loss="binary_crossentropy",
                  init="xavier", seed=1, dtype=None, backend=None, print_every=100, callback=None):
    """Train an L-layer network by full-batch gradient descent (the course's model).

    Called as the course calls it, ``L_layer_model(X, Y, layers_dims,
    num_iterations=2500, print_cost=True)`` trains
    [LINEAR->RELU]*(L-1) -> LINEAR->SIGMOID with binary cross-entropy, from
    the application notebook's initialisation (``randn / sqrt(n_{l-1})``,
    seed 1), printing ``Cost after iteration i: J`` every 100 iterations.

    Parameters
    ----------
    X : array, shape (n_x, m)
        numpy on the host or an array of any backend.
    Y : array, shape (n_L, m), or (m,) for one output unit
        0/1 labels (binary), one-hot (categorical) or targets (mse).
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
        The cost at iterations 0, print_every, 2 print_every, ... and the last.

    Raises
    ------
    TypeError, ValueError
        Bad input, before any computation: shapes, dtypes (``dtype`` other than
        float32/float64, X values beyond float32's range for ``dtype="float32"``),
        NaN/inf in X or Y, labels other than 0/1 for the log-losses (one-hot
        columns for the categorical one), a softmax or categorical output of one unit.
    TrainingDivergedError
        (a ``FloatingPointError``) when the cost becomes NaN or inf, or the last
        update makes the parameters NaN or inf; the message names the iteration
        and suggests a smaller learning rate.
    """
    dims = _check_layer_dims(layers_dims)
    lr = check_positive_real(learning_rate, "learning_rate")
    n_iter = check_positive_int(num_iterations, "num_iterations")
    every = check_positive_int(print_every, "print_every")
    spec = get_loss(loss)
    hidden = get_activation(hidden_activation, "hidden_activation")
    output = get_activation(output_activation or DEFAULT_OUTPUT[spec.name], "output_activation")
    fused = (output.name, spec.name) in FUSED_PAIRS
    if spec.name == "categorical_crossentropy" and dims[-1] < 2:
        raise ValueError(f"layers_dims: categorical_crossentropy needs >= 2 output units (one per class), "
                         f"got layers_dims[-1] = {dims[-1]}")
    if output.name == "softmax" and dims[-1] < 2:
        raise ValueError(f"layers_dims: a softmax output needs >= 2 units (one per class; over one unit it is "
                         f"constantly 1), got layers_dims[-1] = {dims[-1]}")
    if dtype is not None and _float_dtype_name(dtype) is None:
        raise TypeError(f"dtype: expected 'float32', 'float64' or None (X's dtype), got {dtype!r}")

    if backend is None and array_api_compat.is_array_api_obj(X) and not array_api_compat.is_numpy_array(X):
        xp0 = array_api_compat.array_namespace(X)
        bk = _backends.get(_backends._name_of_namespace(xp0), device=array_api_compat.device(X))
    else:
        bk = _backends.get(backend)
    dtype = dtype or _float_dtype_of(X) or "float64"
    X = _to_backend(bk, X, "X", dtype)
    xp = check_float_matrix(X, "X")
    check_nonempty(X, "X")
    if X.shape[0] != dims[0]:
        raise ValueError(f"X: expected shape ({dims[0]}, m) for layers_dims[0] = {dims[0]}, got {tuple(X.shape)}"
                         + ("; pass X.T (examples are columns)" if X.shape[1] == dims[0] else ""))
    check_finite(xp, X, "X")
    AL_like = xp.empty((dims[-1], X.shape[1]), dtype=X.dtype, device=bk.device)
    Y = prepare_labels(_to_backend(bk, Y, "Y", labels=True), AL_like,
                       alname="the network output (layers_dims[-1], m of X)")
    check_finite(xp, Y, "Y")
    _check_label_values(xp, Y, spec.name)

    parameters = initialize_parameters_deep(dims, init=init, seed=seed, dtype=dtype, backend=bk)
    L = len(dims) - 1
    costs = []
    for i in range(n_iter):
        AL, caches = _forward(xp, X, parameters, L, hidden, output)
        if i % every == 0 or i == n_iter - 1:
            cost = float(spec.cost(xp, AL, Y))  # the only host sync of an iteration
            if not math.isfinite(cost):
                raise TrainingDivergedError(
                    f"training diverged at iteration {i}: the cost is {cost}; "
                    f"try a smaller learning_rate (now {lr:g})"
                )
            costs.append(cost)
            if print_cost:
                print(f"Cost after iteration {i}: {cost}")
            if callback is not None:
                callback(i, cost)
        grads = _backward(xp, AL, Y, caches, hidden, output, spec, fused=fused, need_dA0=False)
        parameters = _update(parameters, grads, lr, L)
    # the last update comes after the last cost check: never hand back NaN/inf parameters silently
    if not _all_finite(xp, parameters.values()):
        raise TrainingDivergedError(
            f"training diverged at iteration {n_iter - 1}: its update made the parameters NaN or infinite; "
            f"try a smaller learning_rate (now {lr:g})"
        )
    return parameters, costs


def _all_finite(xp, arrays) -> bool:
    """No NaN or inf in any of ``arrays`` (one host sync)."""
    ok = None
    for a in arrays:
        f = xp.all(xp.isfinite(a))
        ok = f if ok is None else xp.logical_and(ok, f)
    return ok is None or bool(ok)


def _float_dtype_name(dtype):
    try:
        name = _backends._dtype_name(dtype)
    except TypeError:
        return None
    return name if name in ("float32", "float64") else None


def _check_label_values(xp, Y, loss_name):
    """The log-losses need 0/1 labels (one-hot columns for the categorical one); one host sync."""
    if loss_name not in ("binary_crossentropy", "categorical_crossentropy"):
        return
    if not bool(xp.all((Y == 0.0) | (Y == 1.0))):
        host = _backends.to_numpy(Y)
        bad = np.unique(host[(host != 0.0) & (host != 1.0)])
        raise ValueError(f"Y: expected labels 0 or 1 for {loss_name}, got {bad.size} other value"
                         f"{'s' if bad.size != 1 else ''} such as {', '.join(f'{v:g}' for v in bad[:3])}")
    if loss_name == "categorical_crossentropy" and not bool(xp.all(xp.sum(Y, axis=0) == 1.0)):
        host = _backends.to_numpy(Y)
        col = int(np.flatnonzero(host.sum(axis=0) != 1.0)[0])
        raise ValueError(f"Y: expected one-hot columns (exactly one 1 per example) for categorical_crossentropy, "
                         f"got {int(host[:, col].sum())} ones in column {col}")
