"""The course's L-layer network: initialisation, forward, cost, backward, update.

Names, argument order, return values, cache tuples and ``grads`` keys follow the
course assignment "Building your Deep Neural Network: Step by Step", so code
written for it runs by changing the import.  Examples are columns:

* ``X`` / ``A[0]`` : ``(n_x, m)``
* ``W[l]`` : ``(n_l, n_{l-1})``, ``b[l]`` : ``(n_l, 1)``
* ``Z[l]``, ``A[l]``, ``dZ[l]``, ``dA[l]`` : ``(n_l, m)``

Forward, layer l::

    Z[l] = W[l] A[l-1] + b[l]            A[l] = g[l](Z[l])

Backward, layer l (``dA``/``dZ`` carry no 1/m, ``dW``/``db`` do)::

    dZ[l]   = dA[l] * g[l]'(Z[l])
    dW[l]   = (1/m) dZ[l] A[l-1]^T
    db[l]   = (1/m) sum(dZ[l], axis=1, keepdims=True)
    dA[l-1] = W[l]^T dZ[l]

started from the course's ``dA[L] = -(Y/A[L] - (1-Y)/(1-A[L]))`` or, with
``fused=True``, from the exact and stable ``dZ[L] = A[L] - Y``.

The public functions validate their inputs (a ``TypeError``/``ValueError``
naming the argument) and then call the unchecked kernels ``_forward``,
``_backward`` and ``_update``, which take the namespace ``xp`` and which the
training loops call directly once the data have been validated.
"""

from __future__ import annotations

from collections.abc import Sequence
import math
import numbers

import numpy as np

from . import backends as _backends
from ._checks import (
    check_finite,
    check_float_matrix,
    check_nonempty,
    check_parameters,
    check_positive_real,
    check_slots,
    check_X_matches,
    prepare_labels,
    same_dtype,
)
from .activations import get_activation
from .backends import namespace_of
from .losses import DEFAULT_OUTPUT, FUSED_PAIRS, get_loss

__all__ = [
    "INITS",
    "initialize_parameters_deep",
    "linear_forward",
    "linear_activation_forward",
    "L_model_forward",
    "model_forward",
    "compute_cost",
    "linear_backward",
    "linear_activation_backward",
    "L_model_backward",
    "model_backward",
    "update_parameters",
    "predict",
]

#: weight scale of each initialisation, as a function of n_{l-1}
INITS = {
    "course": lambda n_prev: 0.01,  # the Step-by-Step assignment: randn * 0.01
    "he": lambda n_prev: math.sqrt(2.0 / n_prev),  # He et al. 2015, for ReLU
    "xavier": lambda n_prev: math.sqrt(1.0 / n_prev),  # randn / sqrt(n_prev), the course's application notebook
}


# --------------------------------------------------------------------------- #
# initialisation


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
        Where the arrays are created (see :func:`bpnet.backends.get`).  Draws
        happen on the host and are moved, so every backend gets identical weights.

    Returns
    -------
    parameters : dict
        ``W{l}`` of shape ``(n_l, n_{l-1})`` and ``b{l}`` of shape ``(n_l, 1)``.
    """
    dims = _check_layer_dims(layer_dims)
    if init not in INITS:
        raise ValueError(f"init: unknown initialisation {init!r}; expected one of {', '.join(map(repr, INITS))}")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed: expected a non-negative integer, got {seed!r}")
    if seed < 0:
        raise ValueError(f"seed: expected a non-negative integer, got {seed!r}")
    try:
        dname = _backends._dtype_name(dtype)
    except TypeError:
        dname = None
    if dname not in ("float32", "float64"):
        raise TypeError(f"dtype: expected 'float32' or 'float64', got {dtype!r}")
    bk = _backends.get(backend)
    rng = np.random.RandomState(int(seed))
    parameters = {}
    for l in range(1, len(dims)):
        W = rng.randn(dims[l], dims[l - 1]) * INITS[init](dims[l - 1])  # float64 on the host
        parameters[f"W{l}"] = bk.asarray(W, dtype=dname)
        parameters[f"b{l}"] = bk.xp.zeros((dims[l], 1), dtype=bk.dtype(dname), device=bk.device)
    return parameters


def _check_layer_dims(layer_dims) -> list[int]:
    if isinstance(layer_dims, (str, bytes)) or not isinstance(layer_dims, Sequence):
        raise TypeError(f"layer_dims: expected a list of layer sizes like [n_x, n_1, ..., n_L], got {layer_dims!r}")
    dims = list(layer_dims)
    if len(dims) < 2:
        raise ValueError(f"layer_dims: expected at least 2 sizes (input and output), got {dims!r}")
    for i, n in enumerate(dims):
        if isinstance(n, bool) or not isinstance(n, numbers.Integral):
            raise TypeError(f"layer_dims: expected positive integers, got {n!r} at position {i} of {dims!r}")
        if n <= 0:
            raise ValueError(f"layer_dims: expected positive integers, got {n!r} at position {i} of {dims!r}")
    return [int(n) for n in dims]


# --------------------------------------------------------------------------- #
# kernels (unchecked; xp passed in)


def _forward(xp, X, parameters, L, hidden, output, masks=None):
    """A[L] and the caches ``[((A_prev, W, b), Z), ...]`` of all L layers.

    ``masks`` (inverted dropout): ``None`` or a list of L-1 arrays of shape
    ``(n_l, m)`` holding 0 or ``1/keep_prob``; hidden activations become
    ``A[l] = g(Z[l]) * M[l]`` (see :func:`dropout_masks`).
    """
    caches = []
    A = X
    for l in range(1, L + 1):
        W = parameters[f"W{l}"]
        b = parameters[f"b{l}"]
        Z = W @ A + b  # Z[l] = W[l] A[l-1] + b[l]
        caches.append(((A, W, b), Z))
        if l < L:
            A = hidden.fwd(xp, Z)  # A[l] = g[l](Z[l])
            if masks is not None:
                A = A * masks[l - 1]  # inverted dropout: A[l] = A[l] * D[l] / keep_prob
        else:
            A = output.fwd(xp, Z)
    return A, caches


def _backward(xp, AL, Y, caches, hidden, output, loss, *, fused, need_dA0=True, masks=None):
    """``grads`` with keys dA0..dA{L-1}, dW1..dWL, db1..dbL.

    ``fused`` starts from ``dZ[L] = A[L] - Y``; otherwise from the loss's
    ``dA[L]`` through the output activation.  ``need_dA0=False`` skips
    ``dA0 = W[1]^T dZ[1]`` (the gradient w.r.t. the input), which training
    never uses.  ``masks``: the dropout masks the forward pass used.
    """
    grads = {}
    L = len(caches)
    m = AL.shape[1]
    dA = None
    for l in range(L, 0, -1):
        (A_prev, W, b), Z = caches[l - 1]
        if l == L:
            if fused:
                dZ = AL - Y  # dZ[L] = A[L] - Y
            else:
                dA = loss.grad(xp, AL, Y)  # e.g. dA[L] = -(Y/A[L] - (1-Y)/(1-A[L]))
                dZ = output.bwd(xp, dA, Z, AL)
        else:
            if masks is None:
                A = caches[l][0][0]  # A[l] is the next layer's A_prev
            else:
                dA = dA * masks[l - 1]  # dropout backward: dA[l] = dA[l] * D[l] / keep_prob
                A = hidden.fwd(xp, Z)  # the cached A_prev was masked: recompute g(Z[l])
            dZ = hidden.bwd(xp, dA, Z, A)  # dZ[l] = dA[l] * g'(Z[l])
        grads[f"dW{l}"] = (dZ @ A_prev.T) / m  # dW = dZ A_prev^T / m
        grads[f"db{l}"] = xp.sum(dZ, axis=1, keepdims=True) / m  # db = sum_i dZ / m
        if l > 1 or need_dA0:
            dA = W.T @ dZ  # dA[l-1] = W^T dZ
            grads[f"dA{l - 1}"] = dA
    return grads


def _update(parameters, grads, learning_rate, L):
    """theta <- theta - learning_rate * d theta, into a new dict."""
    new = dict(parameters)
    for l in range(1, L + 1):
        new[f"W{l}"] = parameters[f"W{l}"] - learning_rate * grads[f"dW{l}"]
        new[f"b{l}"] = parameters[f"b{l}"] - learning_rate * grads[f"db{l}"]
    return new


def _resolve_output(output_activation, loss_name):
    if output_activation is None:
        output_activation = DEFAULT_OUTPUT[loss_name]
    return get_activation(output_activation, "output_activation")


# --------------------------------------------------------------------------- #
# forward


def linear_forward(A, W, b):
    """Z = W A + b.

    Parameters
    ----------
    A : array, shape (n_prev, m)
    W : array, shape (n_l, n_prev)
    b : array, shape (n_l, 1)

    Returns
    -------
    Z : array, shape (n_l, m)
    cache : tuple ``(A, W, b)``
    """
    _check_linear(A, W, b)
    return W @ A + b, (A, W, b)


def _check_linear(A, W, b, aname="A"):
    check_float_matrix(A, aname)
    check_float_matrix(W, "W")
    check_float_matrix(b, "b")
    namespace_of(**{aname: A}, W=W, b=b)
    same_dtype([(aname, A), ("W", W), ("b", b)])
    check_X_matches(A, W, aname, "W")
    if tuple(b.shape) != (W.shape[0], 1):
        raise ValueError(f"b: expected shape ({W.shape[0]}, 1) to match W of shape {tuple(W.shape)}, got {tuple(b.shape)}")


def linear_activation_forward(A_prev, W, b, activation):
    """A = g(W A_prev + b) for one layer.

    Parameters
    ----------
    A_prev : array, shape (n_prev, m)
    W : array, shape (n_l, n_prev)
    b : array, shape (n_l, 1)
    activation : str
        ``"relu"``, ``"leaky_relu"``, ``"tanh"``, ``"sigmoid"``, ``"linear"`` or ``"softmax"``.

    Returns
    -------
    A : array, shape (n_l, m)
    cache : tuple ``((A_prev, W, b), Z)``, the linear cache and the activation cache
    """
    act = get_activation(activation)
    _check_linear(A_prev, W, b, "A_prev")
    xp = namespace_of(A_prev=A_prev)
    Z = W @ A_prev + b
    return act.fwd(xp, Z), ((A_prev, W, b), Z)


def _check_forward_inputs(X, parameters, name="X"):
    L = check_parameters(parameters)
    xp = check_float_matrix(X, name)
    check_nonempty(X, name)
    W1 = parameters["W1"]
    namespace_of(**{name: X}, W1=W1)
    same_dtype([(name, X), ("parameters['W1']", W1)])
    check_X_matches(X, W1, name)
    check_finite(xp, X, name)
    return xp, L


def L_model_forward(X, parameters, *, hidden_activation="relu", output_activation="sigmoid", masks=None):
    """Forward propagation through L layers: [LINEAR -> g]*(L-1) -> LINEAR -> g_out.

    Parameters
    ----------
    X : array, shape (n_x, m)
    parameters : dict
        ``W{l}`` of shape ``(n_l, n_{l-1})``, ``b{l}`` of shape ``(n_l, 1)``.
    hidden_activation, output_activation : str
        Names from :data:`bpnet.ACTIVATIONS`.
    masks : list of L-1 arrays of shape (n_l, m), optional
        Inverted-dropout masks (0 or ``1/keep_prob``, from :func:`bpnet.dropout_masks`)
        applied to the hidden activations, ``A[l] = g(Z[l]) * M[l]``; pass the same
        list to :func:`L_model_backward`.  ``None`` (inference): no dropout.

    Returns
    -------
    AL : array, shape (n_L, m)
    caches : list of L tuples ``((A_prev, W, b), Z)``
    """
    hidden = get_activation(hidden_activation, "hidden_activation")
    output = get_activation(output_activation, "output_activation")
    xp, L = _check_forward_inputs(X, parameters)
    _check_masks(masks, [parameters[f"W{l}"].shape[0] for l in range(1, L)], X)
    return _forward(xp, X, parameters, L, hidden, output, masks)


def _check_masks(masks, hidden_sizes, like, likename="X"):
    """Dropout masks: a list of one (n_l, m) array per hidden layer, on like's backend and dtype."""
    if masks is None:
        return
    if not isinstance(masks, (list, tuple)):
        raise TypeError(f"masks: expected a list of {len(hidden_sizes)} dropout masks, got {type(masks).__name__}")
    if len(masks) != len(hidden_sizes):
        raise ValueError(f"masks: expected {len(hidden_sizes)} masks (one per hidden layer), got {len(masks)}")
    m = like.shape[1]
    for i, (M, n) in enumerate(zip(masks, hidden_sizes)):
        check_float_matrix(M, f"masks[{i}]")
        namespace_of(**{f"masks[{i}]": M, likename: like})
        same_dtype([(f"masks[{i}]", M), (likename, like)])
        if tuple(M.shape) != (n, m):
            raise ValueError(f"masks[{i}]: expected shape ({n}, {m}) for hidden layer {i + 1}, got {tuple(M.shape)}")


model_forward = L_model_forward


# --------------------------------------------------------------------------- #
# cost


def compute_cost(AL, Y, *, loss="binary_crossentropy"):
    """Cost J over the m examples.

    Parameters
    ----------
    AL : array, shape (n_L, m)
        Output probabilities (or values, for ``"mse"``).
    Y : array, shape (n_L, m), or (m,) when n_L = 1
        Labels; integer or boolean labels are cast to the dtype of ``AL``.
        One-hot of shape ``(n_classes, m)`` for ``"categorical_crossentropy"``.
    loss : {"binary_crossentropy", "categorical_crossentropy", "mse"}

    Returns
    -------
    cost : 0-d array of AL's backend, dtype and device (``float(cost)`` brings
        it to the host; nothing here synchronises the device).
    """
    spec = get_loss(loss)
    check_float_matrix(AL, "AL")
    check_nonempty(AL, "AL")
    Y = prepare_labels(Y, AL)
    xp = namespace_of(AL=AL)
    return spec.cost(xp, AL, Y)


# --------------------------------------------------------------------------- #
# backward


def linear_backward(dZ, cache):
    """Backward of Z = W A_prev + b.

    Parameters
    ----------
    dZ : array, shape (n_l, m)
    cache : tuple ``(A_prev, W, b)`` from :func:`linear_forward`

    Returns
    -------
    dA_prev : array, shape (n_prev, m)  -- ``W^T dZ``
    dW : array, shape (n_l, n_prev)     -- ``dZ A_prev^T / m``
    db : array, shape (n_l, 1)          -- ``sum(dZ, axis=1) / m``
    """
    A_prev, W, b = _unpack_linear_cache(cache)
    check_float_matrix(dZ, "dZ")
    xp = namespace_of(dZ=dZ, A_prev=A_prev)
    if tuple(dZ.shape) != (W.shape[0], A_prev.shape[1]):
        raise ValueError(
            f"dZ: expected shape ({W.shape[0]}, {A_prev.shape[1]}) = (rows of W, columns of A_prev), "
            f"got {tuple(dZ.shape)}"
        )
    same_dtype([("dZ", dZ), ("A_prev", A_prev)])
    m = A_prev.shape[1]
    dW = (dZ @ A_prev.T) / m
    db = xp.sum(dZ, axis=1, keepdims=True) / m
    dA_prev = W.T @ dZ
    return dA_prev, dW, db


def _unpack_linear_cache(cache, name="cache"):
    if not (isinstance(cache, tuple) and len(cache) == 3):
        raise TypeError(f"{name}: expected the linear cache (A_prev, W, b) from linear_forward, got {type(cache).__name__}")
    A_prev, W, b = cache
    _check_linear(A_prev, W, b, "A_prev")
    return A_prev, W, b


def _unpack_layer_cache(cache, name="cache"):
    if not (isinstance(cache, tuple) and len(cache) == 2 and isinstance(cache[0], tuple)):
        raise TypeError(
            f"{name}: expected the layer cache ((A_prev, W, b), Z) from linear_activation_forward, "
            f"got {type(cache).__name__}"
        )
    linear_cache, Z = cache
    A_prev, W, b = _unpack_linear_cache(linear_cache, name + "[0]")
    check_float_matrix(Z, name + "[1] (Z)")
    if tuple(Z.shape) != (W.shape[0], A_prev.shape[1]):
        raise ValueError(f"{name}[1] (Z): expected shape ({W.shape[0]}, {A_prev.shape[1]}), got {tuple(Z.shape)}")
    return A_prev, W, b, Z


def linear_activation_backward(dA, cache, activation):
    """Backward of one layer A = g(W A_prev + b).

    Parameters
    ----------
    dA : array, shape (n_l, m)
    cache : tuple ``((A_prev, W, b), Z)`` from :func:`linear_activation_forward`
    activation : str

    Returns
    -------
    dA_prev : array, shape (n_prev, m)
    dW : array, shape (n_l, n_prev)
    db : array, shape (n_l, 1)
    """
    act = get_activation(activation)
    A_prev, W, b, Z = _unpack_layer_cache(cache)
    check_float_matrix(dA, "dA")
    xp = namespace_of(dA=dA, Z=Z)
    if tuple(dA.shape) != tuple(Z.shape):
        raise ValueError(f"dA: expected shape {tuple(Z.shape)} like the cached Z, got {tuple(dA.shape)}")
    dZ = act.bwd(xp, dA, Z, act.fwd(xp, Z))  # dZ = dA * g'(Z)
    return linear_backward(dZ, (A_prev, W, b))


def L_model_backward(
    AL,
    Y,
    caches,
    *,
    hidden_activation="relu",
    output_activation="sigmoid",
    loss="binary_crossentropy",
    fused=False,
    masks=None,
):
    """Backward propagation through the L layers of :func:`L_model_forward`.

    Parameters
    ----------
    AL : array, shape (n_L, m)
    Y : array, shape (n_L, m), or (m,) when n_L = 1
    caches : list of L tuples ``((A_prev, W, b), Z)``
    hidden_activation, output_activation, loss : str
        As given to :func:`L_model_forward` and :func:`compute_cost`.
    fused : bool
        False (the course): start from ``dAL = -(Y/AL - (1-Y)/(1-AL))`` (the
        loss's ``dAL``, with AL clipped away from 0 and 1) through the output
        activation's derivative.  True: start from the exact, stable
        ``dZ[L] = AL - Y``, valid for the pairs in :data:`bpnet.FUSED_PAIRS`
        (sigmoid + binary cross-entropy, softmax + categorical
        cross-entropy, linear + mse); training uses it.
    masks : list of arrays, optional
        The dropout masks given to :func:`L_model_forward` (``dA[l] *= M[l]``).

    Returns
    -------
    grads : dict
        ``dA0 .. dA{L-1}`` (no 1/m), ``dW1 .. dW{L}`` and ``db1 .. db{L}`` (with 1/m).
    """
    hidden = get_activation(hidden_activation, "hidden_activation")
    output = get_activation(output_activation, "output_activation")
    spec = get_loss(loss)
    if fused and (output.name, spec.name) not in FUSED_PAIRS:
        pairs = ", ".join(f"{a}+{b}" for a, b in sorted(FUSED_PAIRS))
        raise ValueError(
            f"fused: dZ[L] = AL - Y holds only for {pairs}; got output_activation="
            f"{output.name!r} with loss={spec.name!r} (pass fused=False)"
        )
    check_float_matrix(AL, "AL")
    Y = prepare_labels(Y, AL)
    if not isinstance(fused, bool):
        raise TypeError(f"fused: expected True or False, got {type(fused).__name__} {fused!r}")
    if not isinstance(caches, (list, tuple)):
        raise TypeError(f"caches: expected the list of layer caches from L_model_forward, got {type(caches).__name__}")
    if len(caches) == 0:
        raise ValueError("caches: expected the list of layer caches from L_model_forward, got an empty list []")
    prev_rows = None
    for i, cache in enumerate(caches):
        A_prev, W, b, Z = _unpack_layer_cache(cache, f"caches[{i}]")
        if prev_rows is not None and A_prev.shape[0] != prev_rows:
            raise ValueError(f"caches[{i}]: A_prev has {A_prev.shape[0]} rows but layer {i} outputs {prev_rows}")
        prev_rows = W.shape[0]
    if tuple(Z.shape) != tuple(AL.shape):
        raise ValueError(f"AL: expected shape {tuple(Z.shape)} like the last cached Z, got {tuple(AL.shape)}")
    xp = namespace_of(AL=AL, Y=Y, Z=Z)
    _check_masks(masks, [c[0][1].shape[0] for c in caches[:-1]], AL, "AL")
    return _backward(xp, AL, Y, list(caches), hidden, output, spec, fused=fused, masks=masks)


model_backward = L_model_backward


# --------------------------------------------------------------------------- #
# update and predict


def update_parameters(parameters, grads, learning_rate):
    """One gradient-descent step, ``W[l] -= learning_rate * dW[l]`` (same for b).

    Parameters
    ----------
    parameters : dict ``W1, b1, ..., WL, bL``
    grads : dict with at least ``dW1, db1, ..., dWL, dbL`` of the same shapes
    learning_rate : float > 0

    Returns
    -------
    parameters : dict
        A new dict; the inputs are left untouched.
    """
    L = check_parameters(parameters)
    lr = check_positive_real(learning_rate, "learning_rate")
    check_slots(grads, "grads", parameters, L)
    return _update(parameters, grads, lr, L)


def predict(X, parameters, *, hidden_activation="relu", output_activation="sigmoid", threshold=0.5):
    """Predictions for the columns of ``X``.

    Parameters
    ----------
    X : array, shape (n_x, m)
    parameters : dict
    threshold : float
        For a sigmoid output: predict 1 where ``AL > threshold``.

    Returns
    -------
    array
        sigmoid output: 0/1 of shape ``(n_L, m)`` in X's dtype (as the course);
        softmax output: class indices of shape ``(1, m)`` (integer dtype);
        any other output: ``AL`` itself, shape ``(n_L, m)``.
    """
    if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real):
        raise TypeError(f"threshold: expected a real number in [0, 1], got {type(threshold).__name__} {threshold!r}")
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold: expected a real number in [0, 1], got {threshold!r}")
    AL, _ = L_model_forward(X, parameters, hidden_activation=hidden_activation, output_activation=output_activation)
    xp = namespace_of(X=X)
    return _decide(xp, AL, output_activation, threshold)


def _decide(xp, AL, output_activation, threshold=0.5):
    name = get_activation(output_activation, "output_activation").name
    if name == "sigmoid":
        return xp.astype(AL > threshold, AL.dtype)
    if name == "softmax":
        return xp.argmax(AL, axis=0, keepdims=True)
    return AL
