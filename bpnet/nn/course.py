"""The course's checked Step-by-Step API: forward, cost, backward, predict.

Names, argument order, return values, cache tuples and ``grads`` keys follow the
course assignment "Building your Deep Neural Network: Step by Step", so code
written for it runs by changing the import.  Examples are columns: ``X`` /
``A[0]`` ``(n_x, m)``, ``W[l]`` ``(n_l, n_{l-1})``, ``b[l]`` ``(n_l, 1)``,
``Z[l]``, ``A[l]``, ``dZ[l]``, ``dA[l]`` ``(n_l, m)``; ``dA``/``dZ`` carry no
1/m, ``dW``/``db`` do.  Each function validates its inputs (a
``TypeError``/``ValueError`` naming the argument) and then runs the unchecked
kernels of :mod:`bpnet.nn._kernels`.
"""

from __future__ import annotations

from .. import _validate as v
from ..backends import backend_of, dtype_str, namespace_of
from ._kernels import affine_backward, backward, decide, forward
from .activations import get_activation
from .losses import FUSED_PAIRS, get_loss

__all__ = [
    "linear_forward",
    "linear_activation_forward",
    "L_model_forward",
    "model_forward",
    "compute_cost",
    "linear_backward",
    "linear_activation_backward",
    "L_model_backward",
    "model_backward",
    "predict",
]


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
    v.check_float_matrix(A, aname)
    v.check_float_matrix(W, "W")
    v.check_float_matrix(b, "b")
    namespace_of(**{aname: A}, W=W, b=b)
    v.same_dtype([(aname, A), ("W", W), ("b", b)])
    v.check_rows(A, W.shape[1], aname, f"to match W of shape {tuple(W.shape)}")
    if tuple(b.shape) != (W.shape[0], 1):
        raise ValueError(f"b: expected shape ({W.shape[0]}, 1) to match W of shape {tuple(W.shape)}, "
                         f"got {tuple(b.shape)}")


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
    return act.forward(xp, Z), ((A_prev, W, b), Z)


def check_forward_inputs(X, parameters, name="X"):
    """``(xp, L, X)``: the parameters checked, X as features on their backend and dtype (lists, ints, ... converted)."""
    L = v.check_parameters(parameters)
    W1 = parameters["W1"]
    bk = backend_of(W1)
    X = v.as_features(X, name, bk, dtype_str(W1.dtype), W1.shape[1], f"to match W1 of shape {tuple(W1.shape)}")
    return bk.xp, L, X


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
    xp, L, X = check_forward_inputs(X, parameters)
    _check_masks(masks, [parameters[f"W{l}"].shape[0] for l in range(1, L)], X)
    return forward(xp, X, parameters, L, hidden, output, masks)


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
        v.check_float_matrix(M, f"masks[{i}]")
        namespace_of(**{f"masks[{i}]": M, likename: like})
        v.same_dtype([(f"masks[{i}]", M), (likename, like)])
        if tuple(M.shape) != (n, m):
            raise ValueError(f"masks[{i}]: expected shape ({n}, {m}) for hidden layer {i + 1}, got {tuple(M.shape)}")


model_forward = L_model_forward


# --------------------------------------------------------------------------- #
# cost


def compute_cost(AL, Y, *, loss="binary_crossentropy"):
    """Cost J over the m examples, from the output ``AL``: the course's number for every finite input.

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
    cost : 0-d array of AL's backend, dtype and device (``float(cost)`` brings it to the host).

    A log-loss of an exact 0 or 1 uses the smallest normal number instead of 0
    (a large finite cost).  Suspicious but computable input -- labels outside
    {0, 1}, NaN labels, ``AL`` outside [0, 1] for a log-loss (whose log is
    NaN, as in the course's code) -- gives a :class:`bpnet.CourseInputWarning`
    (one host sync).  Training reports the cost from the logits instead
    (``Loss.logit_cost``), exact where ``AL`` has rounded to 0 or 1.
    """
    spec = get_loss(loss)
    v.check_float_matrix(AL, "AL")
    v.check_nonempty(AL, "AL")
    Y = v.prepare_labels(Y, AL)
    xp = namespace_of(AL=AL)
    _warn_if_suspicious(xp, AL, Y, spec)
    return spec.cost(xp, AL, Y)


def _warn_if_suspicious(xp, AL, Y, spec):
    if spec.target == "real":
        fine = xp.all(xp.isfinite(Y))
    else:
        fine = xp.all((Y == 0.0) | (Y == 1.0)) & xp.all((AL >= 0.0) & (AL <= 1.0))
    if bool(fine):  # the one host sync of the usual case
        return
    if not bool(xp.all(xp.isfinite(Y))):
        v.warn_course_input("Y: expected finite labels, got NaN or inf; the cost is NaN")
        return
    v.check_label_values(xp, Y, spec.target, "Y", warn=True)
    if not bool(xp.all((AL >= 0.0) & (AL <= 1.0))):
        v.warn_course_input(f"AL: {spec.name} takes probabilities in [0, 1], got values from "
                            f"{float(xp.min(AL)):g} to {float(xp.max(AL)):g}; the log of a negative number is NaN")


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
    v.check_float_matrix(dZ, "dZ")
    xp = namespace_of(dZ=dZ, A_prev=A_prev)
    if tuple(dZ.shape) != (W.shape[0], A_prev.shape[1]):
        raise ValueError(
            f"dZ: expected shape ({W.shape[0]}, {A_prev.shape[1]}) = (rows of W, columns of A_prev), "
            f"got {tuple(dZ.shape)}"
        )
    v.same_dtype([("dZ", dZ), ("A_prev", A_prev)])
    return affine_backward(xp, dZ, A_prev, W)


def _unpack_linear_cache(cache, name="cache"):
    if not (isinstance(cache, tuple) and len(cache) == 3):
        raise TypeError(f"{name}: expected the linear cache (A_prev, W, b) from linear_forward, "
                        f"got {type(cache).__name__}")
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
    v.check_float_matrix(Z, name + "[1] (Z)")
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
    v.check_float_matrix(dA, "dA")
    xp = namespace_of(dA=dA, Z=Z)
    if tuple(dA.shape) != tuple(Z.shape):
        raise ValueError(f"dA: expected shape {tuple(Z.shape)} like the cached Z, got {tuple(dA.shape)}")
    dZ = act.backward(xp, dA, act.forward(xp, Z))  # dZ = dA * g'(Z)
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
    v.check_float_matrix(AL, "AL")
    Y = v.prepare_labels(Y, AL)
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
    return backward(xp, AL, Y, list(caches), hidden, output, spec, fused=fused, masks=masks)


model_backward = L_model_backward


# --------------------------------------------------------------------------- #
# predict


def predict(X, parameters, *args, hidden_activation="relu", output_activation="sigmoid", threshold=0.5):
    """Predictions for the columns of ``X``.

    ``predict(X, parameters)``; or, as the Application notebook calls it,
    ``predict(X, y, parameters)``, which also prints ``Accuracy: a``, the
    share of the predictions equal to ``y`` (computed as the notebook does,
    ``sum((p == y) / m)``).

    Parameters
    ----------
    X : array, shape (n_x, m)
    parameters : dict
    y : array, optional (the notebook's second argument)
        Labels shaped like the predictions: 0/1 ``(n_L, m)`` (or ``(m,)``), class indices for softmax.
    threshold : float
        For a sigmoid output: predict 1 where ``AL > threshold``.

    Returns
    -------
    array
        sigmoid output: 0/1 of shape ``(n_L, m)`` in X's dtype (as the course);
        softmax output: class indices of shape ``(1, m)`` (integer dtype);
        any other output: ``AL`` itself, shape ``(n_L, m)``.
    """
    y = None
    if args or isinstance(X, dict):
        parameters, y = _notebook_predict_args(X, parameters, args)
    threshold = v.real(threshold, "threshold", low=0.0, high=1.0)
    hidden = get_activation(hidden_activation, "hidden_activation")
    output = get_activation(output_activation, "output_activation")
    xp, L, X = check_forward_inputs(X, parameters)
    if y is not None:
        n_out = 1 if output.name == "softmax" else parameters[f"W{L}"].shape[0]
        y = _labels_like_predictions(y, (n_out, X.shape[1]), backend_of(X))
    AL, _ = forward(xp, X, parameters, L, hidden, output)
    p = decide(xp, AL, output, threshold)
    if y is not None:
        hits = xp.astype(p == xp.astype(y, p.dtype), xp.float64)
        print(f"Accuracy: {float(xp.sum(hits / p.shape[1]))}")  # the notebook's np.sum((p == y) / m)
    return p


def _labels_like_predictions(y, shape, bk):
    """The notebook's ``y`` on ``bk``, ``(n, m)`` like the predictions (a 1-D ``y`` is one row)."""
    y = v.to_backend(y, "y", bk, labels=True)
    if y.ndim == 1:
        y = bk.xp.reshape(y, (1, y.shape[0]))
    if tuple(y.shape) != shape:
        raise ValueError(f"y: expected shape {shape} like the predictions (the labels of the columns of X), "
                         f"got {tuple(y.shape)}")
    return y


def _notebook_predict_args(X, second, rest):
    """``(parameters, y)`` of ``predict(X, y, parameters)``; a TypeError for any other call."""
    if isinstance(X, dict):
        raise TypeError("X: expected the features (n_x, m), got the parameters dict; the week-3 notebook's "
                        "predict(parameters, X) is bpnet.planar.predict")
    if len(rest) == 1 and isinstance(rest[0], dict) and not isinstance(second, dict):
        return rest[0], second
    got = ", ".join(["X", *(type(a).__name__ for a in (second, *rest))])
    raise TypeError(f"predict: expected predict(X, parameters) or the notebook's predict(X, y, parameters) "
                    f"(parameters a dict), got predict({got})")
