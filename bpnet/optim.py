"""Optimisation methods: mini-batches, momentum, RMSprop, Adam, L2, clipping.

The first group of functions follows the course assignment "Optimization
methods" (names, argument order, return values, the keys ``dW1, db1, ...`` of
the moment dicts ``v`` and ``s``, and the numbers), generalised to L layers;
the second group generalises "Regularization" (L2) and adds RMSprop, gradient
clipping by global norm and the learning-rate schedules.  One difference from
the course: nothing is updated in place; every function returns **new** dicts
and leaves its inputs untouched (the course's ``parameters, v = ...`` calls
work unchanged).

Shapes, for layer l = 1..L (examples are columns)::

    W[l], dW[l], v["dW{l}"], s["dW{l}"] : (n_l, n_{l-1})
    b[l], db[l], v["db{l}"], s["db{l}"] : (n_l, 1)

Updates, for each parameter theta in {W[l], b[l]} with gradient d theta::

    gradient descent   theta <- theta - lr d theta
    momentum           v <- beta v + (1 - beta) d theta
                       theta <- theta - lr v
    RMSprop            s <- beta2 s + (1 - beta2) d theta^2
                       theta <- theta - lr d theta / (sqrt(s) + epsilon)
    Adam (step t >= 1) v <- beta1 v + (1 - beta1) d theta
                       s <- beta2 s + (1 - beta2) d theta^2
                       v_hat = v / (1 - beta1^t),  s_hat = s / (1 - beta2^t)
                       theta <- theta - lr v_hat / (sqrt(s_hat) + epsilon)

All array math uses the Array API standard with the namespace of the inputs,
so it runs on numpy, cupy and array-api-strict alike, keeps the dtype and
device of the parameters and never brings a value to the host.  Random
numbers (the mini-batch shuffle) are drawn on the host from
``numpy.random.RandomState(seed)`` (the global numpy state is not touched)
and the index is moved to the data's device.

The public functions validate their inputs (``TypeError``/``ValueError``
naming the argument); :class:`Optimizer` validates once, in
:func:`get_optimizer` and :meth:`Optimizer.init`, and its :meth:`~Optimizer.step`,
which runs every mini-batch, only checks that the keys it reads exist.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field

import array_api_compat
import numpy as np

from ._checks import (
    check_parameters,
    check_positive_int,
    check_positive_real,
    check_slots,
    is_array,
    same_dtype,
)
from .backends import namespace_of

__all__ = [
    # the course's "Optimization methods"
    "random_mini_batches",
    "initialize_velocity",
    "update_parameters_with_momentum",
    "initialize_adam",
    "update_parameters_with_adam",
    "update_lr",
    "schedule_lr_decay",
    # beyond the course
    "initialize_rmsprop",
    "update_parameters_with_rmsprop",
    "l2_cost",
    "compute_cost_with_regularization",
    "add_l2_gradients",
    "clip_gradients",
    # the optimiser interface of the training loop
    "Optimizer",
    "OPTIMIZERS",
    "get_optimizer",
]

#: names accepted by :func:`get_optimizer`
OPTIMIZERS = ("gd", "momentum", "rmsprop", "adam")

#: default hyper-parameters of each optimiser (the course's values; RMSprop's
#: decay is called ``beta2`` as in Adam, whose second moment it is)
_DEFAULTS = {
    "gd": {},
    "momentum": {"beta": 0.9},
    "rmsprop": {"beta2": 0.9, "epsilon": 1e-8},
    "adam": {"beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8},
}

#: the moment dicts each optimiser keeps in its state, besides the step count "t"
_SLOTS = {"gd": (), "momentum": ("v",), "rmsprop": ("s",), "adam": ("v", "s")}

#: added to the global norm before dividing, so a zero gradient gives scale 1
_CLIP_EPS = 1e-6


# --------------------------------------------------------------------------- #
# validation helpers


def _check_decay(value, name: str) -> float:
    """A real number in [0, 1) (a moving-average decay such as beta, beta1, beta2)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a real number in [0, 1), got {type(value).__name__} {value!r}")
    v = float(value)
    if not (0.0 <= v < 1.0):
        raise ValueError(f"{name}: expected a number in [0, 1), got {value!r}")
    return v


def _zeros_like_parameters(parameters, L: int) -> dict:
    """``{"dW1": 0, "db1": 0, ...}`` of each parameter's shape, dtype and device."""
    xp = array_api_compat.array_namespace(parameters["W1"])
    out = {}
    for l in range(1, L + 1):
        for p in "Wb":
            theta = parameters[f"{p}{l}"]
            out[f"d{p}{l}"] = xp.zeros(tuple(theta.shape), dtype=theta.dtype, device=array_api_compat.device(theta))
    return out


def _n_layers(parameters) -> int:
    """L, counting W1, W2, ... (cheap; no validation)."""
    L = 0
    while f"W{L + 1}" in parameters:
        L += 1
    return L


# --------------------------------------------------------------------------- #
# kernels (unchecked; shared by the course functions and Optimizer.step so both
# give bit-identical numbers)


def _gd(parameters, grads, L, lr):
    # theta <- theta - lr d theta
    new = dict(parameters)
    for l in range(1, L + 1):
        for p in "Wb":
            new[f"{p}{l}"] = parameters[f"{p}{l}"] - lr * grads[f"d{p}{l}"]
    return new


def _momentum(parameters, grads, v, L, beta, lr):
    new, new_v = dict(parameters), dict(v)
    for l in range(1, L + 1):
        for p in "Wb":
            key = f"d{p}{l}"
            vk = beta * v[key] + (1 - beta) * grads[key]  # v = beta v + (1 - beta) d theta
            new_v[key] = vk
            new[f"{p}{l}"] = parameters[f"{p}{l}"] - lr * vk  # theta = theta - lr v
    return new, new_v


def _rmsprop(xp, parameters, grads, s, L, beta2, epsilon, lr):
    new, new_s = dict(parameters), dict(s)
    for l in range(1, L + 1):
        for p in "Wb":
            key = f"d{p}{l}"
            g = grads[key]
            sk = beta2 * s[key] + (1 - beta2) * (g * g)  # s = beta2 s + (1 - beta2) d theta^2
            new_s[key] = sk
            new[f"{p}{l}"] = parameters[f"{p}{l}"] - lr * g / (xp.sqrt(sk) + epsilon)
    return new, new_s


def _adam(xp, parameters, grads, v, s, t, L, beta1, beta2, epsilon, lr):
    # the course's expressions, in the course's order (t >= 1, a Python int)
    bc1 = 1 - beta1**t  # bias corrections 1 - beta^t (Python floats)
    bc2 = 1 - beta2**t
    new, new_v, new_s = dict(parameters), dict(v), dict(s)
    v_corrected, s_corrected = {}, {}
    for l in range(1, L + 1):
        for p in "Wb":
            key = f"d{p}{l}"
            g = grads[key]
            vk = beta1 * v[key] + (1 - beta1) * g  # v = beta1 v + (1 - beta1) d theta
            vc = vk / bc1  # v_hat = v / (1 - beta1^t)
            sk = beta2 * s[key] + (1 - beta2) * (g * g)  # s = beta2 s + (1 - beta2) d theta^2
            sc = sk / bc2  # s_hat = s / (1 - beta2^t)
            new_v[key], new_s[key] = vk, sk
            v_corrected[key], s_corrected[key] = vc, sc
            new[f"{p}{l}"] = parameters[f"{p}{l}"] - lr * vc / (xp.sqrt(sc) + epsilon)
    return new, new_v, new_s, v_corrected, s_corrected


# --------------------------------------------------------------------------- #
# mini-batches


def random_mini_batches(X, Y, mini_batch_size=64, seed=0):
    """Shuffle the m examples (columns) and cut them into mini-batches.

    The permutation is the course's, ``np.random.seed(seed);
    np.random.permutation(m)``, drawn from ``np.random.RandomState(seed)`` (the
    same numbers) without touching the global numpy random state.  Batches
    ``0 .. floor(m / mini_batch_size) - 1`` hold ``mini_batch_size`` examples;
    a last one holds the ``m % mini_batch_size`` remaining, if any.

    Parameters
    ----------
    X : array, shape (n_x, m)
    Y : array, shape (n_y, m)
        Labels of any dtype (a 1-D ``Y`` is refused: reshape it to ``(1, m)``).
    mini_batch_size : int > 0
    seed : int, 0 <= seed < 2**32

    Returns
    -------
    mini_batches : list of tuples ``(mini_batch_X, mini_batch_Y)``
        of shapes ``(n_x, size)`` and ``(n_y, size)``, on the backend and
        device of X, in X's and Y's dtypes.
    """
    for name, a in (("X", X), ("Y", Y)):
        if not is_array(a):
            raise TypeError(
                f"{name}: expected a 2-D array (numpy, cupy or array_api_strict), "
                f"got {type(a).__module__}.{type(a).__name__}"
            )
    if X.ndim != 2:
        raise ValueError(f"X: expected a 2-D array of shape (n_x, m), got shape {tuple(X.shape)}")
    if Y.ndim != 2:
        hint = f"; reshape it to (1, {Y.shape[0]})" if Y.ndim == 1 else ""
        raise ValueError(f"Y: expected a 2-D array of shape (n_y, m), got shape {tuple(Y.shape)}{hint}")
    xp = namespace_of(X=X, Y=Y)
    m = X.shape[1]
    if Y.shape[1] != m:
        raise ValueError(f"Y: expected {m} examples (columns) like X of shape {tuple(X.shape)}, got shape {tuple(Y.shape)}")
    if m == 0:
        raise ValueError(f"X: expected at least one example (column), got shape {tuple(X.shape)}")
    size = check_positive_int(mini_batch_size, "mini_batch_size")
    seed = check_positive_int(seed, "seed", allow_zero=True)
    if seed >= 2**32:
        raise ValueError(f"seed: expected an integer in [0, 2**32), got {seed!r}")

    # the course's shuffle, on the host; one transfer of the index to X's device
    permutation = np.random.RandomState(seed).permutation(m)
    idx = xp.asarray(permutation.astype(np.int64), dtype=xp.int64, device=array_api_compat.device(X))
    mini_batches = []
    for start in range(0, m, size):  # complete batches, then the remainder
        batch = idx[start : min(start + size, m)]
        mini_batches.append((xp.take(X, batch, axis=1), xp.take(Y, batch, axis=1)))
    return mini_batches


# --------------------------------------------------------------------------- #
# momentum


def initialize_velocity(parameters):
    """Zero velocities ``v``, the moving average of the gradients.

    Parameters
    ----------
    parameters : dict ``W1, b1, ..., WL, bL``

    Returns
    -------
    v : dict
        ``v["dW{l}"]`` zeros of ``W{l}``'s shape ``(n_l, n_{l-1})``,
        ``v["db{l}"]`` zeros of shape ``(n_l, 1)``; dtype and device of the
        parameters.
    """
    L = check_parameters(parameters)
    return _zeros_like_parameters(parameters, L)


def update_parameters_with_momentum(parameters, grads, v, beta, learning_rate):
    """One step of gradient descent with momentum.

    For each parameter theta (``W{l}``, ``b{l}``)::

        v = beta v + (1 - beta) d theta
        theta = theta - learning_rate v

    Parameters
    ----------
    parameters : dict ``W1, b1, ..., WL, bL``
    grads : dict with at least ``dW1, db1, ..., dWL, dbL`` of the parameters' shapes
    v : dict ``dW1, db1, ...`` of the same shapes, from :func:`initialize_velocity`
    beta : float in [0, 1)
        Momentum (0 is plain gradient descent).
    learning_rate : float > 0

    Returns
    -------
    parameters : dict
        New dict; the inputs are left untouched.
    v : dict
        New dict of the updated velocities.
    """
    L = check_parameters(parameters)
    check_slots(grads, "grads", parameters, L)
    check_slots(v, "v", parameters, L, " (create v with initialize_velocity(parameters))")
    beta = _check_decay(beta, "beta")
    lr = check_positive_real(learning_rate, "learning_rate")
    return _momentum(parameters, grads, v, L, beta, lr)


# --------------------------------------------------------------------------- #
# Adam


def initialize_adam(parameters):
    """Zero first and second moments ``v`` and ``s`` for Adam.

    Parameters
    ----------
    parameters : dict ``W1, b1, ..., WL, bL``

    Returns
    -------
    v, s : dicts
        Each with ``"dW{l}"`` zeros of shape ``(n_l, n_{l-1})`` and ``"db{l}"``
        zeros of shape ``(n_l, 1)``, in the parameters' dtype and device.
    """
    L = check_parameters(parameters)
    return _zeros_like_parameters(parameters, L), _zeros_like_parameters(parameters, L)


def update_parameters_with_adam(parameters, grads, v, s, t, learning_rate=0.01, beta1=0.9, beta2=0.999, epsilon=1e-8):
    """One Adam step (Kingma & Ba 2015), exactly as the course computes it.

    For each parameter theta (``W{l}``, ``b{l}``)::

        v = beta1 v + (1 - beta1) d theta            v_corrected = v / (1 - beta1^t)
        s = beta2 s + (1 - beta2) d theta^2          s_corrected = s / (1 - beta2^t)
        theta = theta - learning_rate v_corrected / (sqrt(s_corrected) + epsilon)

    Parameters
    ----------
    parameters : dict ``W1, b1, ..., WL, bL``
    grads : dict with at least ``dW1, db1, ..., dWL, dbL`` of the parameters' shapes
    v, s : dicts ``dW1, db1, ...`` of the same shapes, from :func:`initialize_adam`
    t : int >= 1
        The number of this step (the course increments ``t`` before calling).
    learning_rate : float > 0
    beta1, beta2 : float in [0, 1)
    epsilon : float > 0

    Returns
    -------
    parameters, v, s, v_corrected, s_corrected : dicts
        New dicts (inputs untouched); the moments keyed ``dW1, db1, ...``.
    """
    L = check_parameters(parameters)
    check_slots(grads, "grads", parameters, L)
    check_slots(v, "v", parameters, L, " (create v, s with initialize_adam(parameters))")
    check_slots(s, "s", parameters, L, " (create v, s with initialize_adam(parameters))")
    t = check_positive_int(t, "t")
    lr = check_positive_real(learning_rate, "learning_rate")
    beta1 = _check_decay(beta1, "beta1")
    beta2 = _check_decay(beta2, "beta2")
    epsilon = check_positive_real(epsilon, "epsilon")
    xp = array_api_compat.array_namespace(parameters["W1"])
    return _adam(xp, parameters, grads, v, s, t, L, beta1, beta2, epsilon, lr)


# --------------------------------------------------------------------------- #
# RMSprop


def initialize_rmsprop(parameters):
    """Zero mean squared gradients ``s`` for RMSprop.

    Returns
    -------
    s : dict
        ``"dW{l}"`` zeros of shape ``(n_l, n_{l-1})``, ``"db{l}"`` zeros of
        shape ``(n_l, 1)``, in the parameters' dtype and device.
    """
    L = check_parameters(parameters)
    return _zeros_like_parameters(parameters, L)


def update_parameters_with_rmsprop(parameters, grads, s, learning_rate=0.001, beta2=0.9, epsilon=1e-8):
    """One RMSprop step (Hinton's lecture 6e), without bias correction.

    For each parameter theta (``W{l}``, ``b{l}``)::

        s = beta2 s + (1 - beta2) d theta^2
        theta = theta - learning_rate d theta / (sqrt(s) + epsilon)

    Parameters
    ----------
    parameters : dict ``W1, b1, ..., WL, bL``
    grads : dict with at least ``dW1, db1, ..., dWL, dbL`` of the parameters' shapes
    s : dict ``dW1, db1, ...`` of the same shapes, from :func:`initialize_rmsprop`
    learning_rate : float > 0
    beta2 : float in [0, 1)
        Decay of the moving average of squared gradients (called ``beta2`` as
        Adam's second moment, which it is; often written rho or alpha).
    epsilon : float > 0

    Returns
    -------
    parameters, s : dicts
        New dicts; the inputs are left untouched.
    """
    L = check_parameters(parameters)
    check_slots(grads, "grads", parameters, L)
    check_slots(s, "s", parameters, L, " (create s with initialize_rmsprop(parameters))")
    lr = check_positive_real(learning_rate, "learning_rate")
    beta2 = _check_decay(beta2, "beta2")
    epsilon = check_positive_real(epsilon, "epsilon")
    xp = array_api_compat.array_namespace(parameters["W1"])
    return _rmsprop(xp, parameters, grads, s, L, beta2, epsilon, lr)


# --------------------------------------------------------------------------- #
# learning-rate decay (Python floats)


def update_lr(learning_rate0, epoch_num, decay_rate):
    """Inverse-time decay, ``learning_rate0 / (1 + decay_rate * epoch_num)``.

    Parameters
    ----------
    learning_rate0 : float > 0
    epoch_num : int >= 0
    decay_rate : float >= 0

    Returns
    -------
    float
    """
    lr0 = check_positive_real(learning_rate0, "learning_rate0")
    epoch_num = check_positive_int(epoch_num, "epoch_num", allow_zero=True)
    decay_rate = check_positive_real(decay_rate, "decay_rate", allow_zero=True)
    return 1 / (1 + decay_rate * epoch_num) * lr0  # the course's expression


def schedule_lr_decay(learning_rate0, epoch_num, decay_rate, time_interval=1000):
    """Staircase decay, ``learning_rate0 / (1 + decay_rate * floor(epoch_num / time_interval))``.

    Parameters
    ----------
    learning_rate0 : float > 0
    epoch_num : int >= 0
    decay_rate : float >= 0
    time_interval : int > 0
        Epochs between two decays.

    Returns
    -------
    float
    """
    lr0 = check_positive_real(learning_rate0, "learning_rate0")
    epoch_num = check_positive_int(epoch_num, "epoch_num", allow_zero=True)
    decay_rate = check_positive_real(decay_rate, "decay_rate", allow_zero=True)
    interval = check_positive_int(time_interval, "time_interval")
    return 1 / (1 + decay_rate * math.floor(epoch_num / interval)) * lr0  # the course's expression


# --------------------------------------------------------------------------- #
# L2 regularisation (weights only; biases are not regularised)


def _l2_cost(xp, parameters, L, lambd, m):
    # (1/m) (lambd/2) sum_l sum(W[l]^2), in the course's order
    total = None
    for l in range(1, L + 1):
        W = parameters[f"W{l}"]
        sq = xp.sum(W * W)
        total = sq if total is None else total + sq
    return (1 / m) * (lambd / 2) * total


def _add_l2_gradients(grads, parameters, L, lambd, m):
    # dW[l] += (lambd / m) W[l]
    new = dict(grads)
    if lambd == 0:
        return new
    c = lambd / m
    for l in range(1, L + 1):
        new[f"dW{l}"] = grads[f"dW{l}"] + c * parameters[f"W{l}"]
    return new


def l2_cost(parameters, lambd, m):
    """The L2 penalty ``(lambd / (2 m)) * sum_l sum(W[l]^2)`` (biases are not penalised).

    Parameters
    ----------
    parameters : dict ``W1, b1, ..., WL, bL``
    lambd : float >= 0
        Regularisation strength (the course's name; ``lambda`` is a keyword).
    m : int > 0
        Number of examples the cost averages over.

    Returns
    -------
    0-d array in the parameters' dtype and device (no host sync).
    """
    L = check_parameters(parameters)
    lambd = check_positive_real(lambd, "lambd", allow_zero=True)
    m = check_positive_int(m, "m")
    xp = array_api_compat.array_namespace(parameters["W1"])
    return _l2_cost(xp, parameters, L, lambd, m)


def compute_cost_with_regularization(AL, Y, parameters, lambd, *, loss="binary_crossentropy"):
    """Cost with L2 regularisation, ``compute_cost(AL, Y) + l2_cost(parameters, lambd, m)``.

    Parameters
    ----------
    AL : array, shape (n_L, m)
    Y : array, shape (n_L, m), or (m,) when n_L = 1
    parameters : dict ``W1, b1, ..., WL, bL`` on AL's backend and device, in AL's dtype
    lambd : float >= 0
    loss : {"binary_crossentropy", "categorical_crossentropy", "mse"}

    Returns
    -------
    0-d array in AL's dtype and device (no host sync).
    """
    from .core import compute_cost  # late: core is the heavier module

    cross_entropy_cost = compute_cost(AL, Y, loss=loss)  # validates AL, Y and loss
    L = check_parameters(parameters)
    namespace_of(AL=AL, **{"parameters['W1']": parameters["W1"]})
    same_dtype([("AL", AL), ("parameters['W1']", parameters["W1"])])
    lambd = check_positive_real(lambd, "lambd", allow_zero=True)
    xp = array_api_compat.array_namespace(AL)
    return cross_entropy_cost + _l2_cost(xp, parameters, L, lambd, AL.shape[1])


def add_l2_gradients(grads, parameters, lambd, m):
    """Gradients of the regularised cost: ``dW[l] + (lambd / m) W[l]``, ``db[l]`` unchanged.

    ``(lambd / m) W[l]`` is the gradient of :func:`l2_cost` with respect to
    ``W[l]``, the term the course's ``backward_propagation_with_regularization``
    adds.

    Parameters
    ----------
    grads : dict with at least ``dW1, db1, ..., dWL, dbL`` (other keys pass through)
    parameters : dict ``W1, b1, ..., WL, bL``
    lambd : float >= 0
    m : int > 0

    Returns
    -------
    grads : dict
        New dict; the inputs are left untouched.
    """
    L = check_parameters(parameters)
    check_slots(grads, "grads", parameters, L)
    lambd = check_positive_real(lambd, "lambd", allow_zero=True)
    m = check_positive_int(m, "m")
    return _add_l2_gradients(grads, parameters, L, lambd, m)


# --------------------------------------------------------------------------- #
# gradient clipping


def _is_param_grad(key) -> bool:
    # "dW1", "db12", ...: a gradient of a parameter (not "dA0", not "dZ1")
    return isinstance(key, str) and len(key) > 2 and key[0] == "d" and key[1] in "Wb" and key[2:].isdigit()


def _clip(xp, grads, keys, max_norm):
    # ||g|| = sqrt(sum_k sum(g_k^2)) over the parameter gradients
    total_sq = None
    for k in keys:
        g = grads[k]
        sq = xp.sum(g * g)
        total_sq = sq if total_sq is None else total_sq + sq
    total = xp.sqrt(total_sq)
    # scale = min(1, max_norm / (||g|| + 1e-6)), a 0-d array: no host sync
    scale = xp.minimum(xp.ones_like(total), max_norm / (total + _CLIP_EPS))
    new = dict(grads)
    for k in keys:
        new[k] = grads[k] * scale
    return new, total


def clip_gradients(grads, max_norm):
    """Rescale the parameter gradients so their global L2 norm is at most ``max_norm``.

    ``g <- g * min(1, max_norm / (||g|| + 1e-6))`` for every ``dW{l}`` and
    ``db{l}``, with ``||g||`` the norm of all of them together (Pascanu et al.
    2013).  Other keys (``dA{l}``) pass through unchanged.  The scale stays a
    0-d device array: nothing is brought to the host.

    Parameters
    ----------
    grads : dict
        ``dW{l}`` of shape ``(n_l, n_{l-1})``, ``db{l}`` of shape ``(n_l, 1)``,
        all on one backend and device, in one dtype.
    max_norm : float > 0

    Returns
    -------
    grads : dict
        New dict; the input is left untouched.
    total_norm : 0-d array
        The global norm before clipping, in the gradients' dtype and device.
    """
    if not isinstance(grads, dict):
        raise TypeError(f"grads: expected a dict with keys dW1, db1, ..., got {type(grads).__name__}")
    keys = [k for k in grads if _is_param_grad(k)]
    if not keys:
        raise ValueError(f"grads: expected keys dW1, db1, ..., got keys {sorted(map(str, grads))}")
    for k in keys:
        if not is_array(grads[k]):
            raise TypeError(f"grads[{k!r}]: expected an array, got {type(grads[k]).__module__}.{type(grads[k]).__name__}")
    named = {f"grads[{k!r}]": grads[k] for k in keys}
    xp = namespace_of(**named)
    same_dtype(named.items())
    max_norm = check_positive_real(max_norm, "max_norm")
    return _clip(xp, grads, keys, max_norm)


# --------------------------------------------------------------------------- #
# the optimiser interface of the training loop


def _check_hyper(name: str, hyper) -> dict:
    """The full hyper-parameter dict of optimiser ``name``: defaults, then ``hyper``, validated."""
    if not isinstance(hyper, dict):
        raise TypeError(f"hyper: expected a dict of hyper-parameters, got {type(hyper).__name__}")
    defaults = _DEFAULTS[name]
    unknown = [k for k in hyper if k not in defaults]
    if unknown:
        accepted = ", ".join(defaults) if defaults else "none"
        raise ValueError(
            f"{unknown[0]}: not a hyper-parameter of optimizer {name!r} (it takes: {accepted}; "
            "the learning rate is given to step)"
        )
    full = {**defaults, **hyper}
    for key, value in full.items():
        if key == "epsilon":
            full[key] = check_positive_real(value, key)
        else:  # beta, beta1, beta2
            full[key] = _check_decay(value, key)
    return full


@dataclass(frozen=True)
class Optimizer:
    """A parameter-update rule with its hyper-parameters (build it with :func:`get_optimizer`).

    Attributes
    ----------
    name : {"gd", "momentum", "rmsprop", "adam"}
    hyper : dict
        The hyper-parameters, defaults filled in: ``{}`` for gd,
        ``{"beta": 0.9}`` for momentum, ``{"beta2": 0.9, "epsilon": 1e-8}`` for
        RMSprop (``beta2`` is the decay of the squared-gradient average),
        ``{"beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8}`` for Adam.

    State
    -----
    :meth:`init` returns, and :meth:`step` takes and returns, a dict with
    only the entries the method uses::

        {"t": int,                              # steps taken so far
         "v": {"dW1": arr, "db1": arr, ...},    # momentum, adam
         "s": {"dW1": arr, "db1": arr, ...}}    # rmsprop, adam

    with ``v``/``s`` entries shaped like ``W{l}`` ``(n_l, n_{l-1})`` and
    ``b{l}`` ``(n_l, 1)``.
    """

    name: str
    hyper: dict = field(default_factory=dict)

    def __post_init__(self):
        if not isinstance(self.name, str):
            raise TypeError(f"name: expected an optimizer name (str), got {type(self.name).__name__} {self.name!r}")
        name = self.name.strip().lower()
        if name not in OPTIMIZERS:
            raise ValueError(f"name: unknown optimizer {self.name!r}; expected one of {', '.join(map(repr, OPTIMIZERS))}")
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "hyper", _check_hyper(name, self.hyper))

    def init(self, parameters) -> dict:
        """The initial state for ``parameters`` (``W1, b1, ..., WL, bL``): t = 0, zero moments."""
        L = check_parameters(parameters)
        state = {"t": 0}
        for slot in _SLOTS[self.name]:
            state[slot] = _zeros_like_parameters(parameters, L)
        return state

    def step(self, parameters, grads, state, learning_rate) -> tuple[dict, dict]:
        """One update: ``(new parameters, new state)``; the inputs are left untouched.

        ``t`` is incremented first and Adam's bias correction uses the new
        ``t``, so the numbers are those of the course's functions called with
        ``t = t + 1``.  Only the presence of the keys read is checked (this
        runs every mini-batch; :func:`get_optimizer` and :meth:`init` validated
        the rest).

        Parameters
        ----------
        parameters : dict ``W1, b1, ..., WL, bL``
        grads : dict with at least ``dW1, db1, ..., dWL, dbL`` of the same shapes
        state : dict from :meth:`init` or a previous :meth:`step`
        learning_rate : float > 0 (or a 0-d array on the parameters' device, unchecked)
        """
        if isinstance(learning_rate, numbers.Real):
            lr = float(learning_rate)  # a Python float: no up-cast of float32 arrays
            if not (lr > 0 and math.isfinite(lr)):
                raise ValueError(f"learning_rate: expected a finite number > 0, got {learning_rate!r}")
        else:
            lr = learning_rate
        try:
            L = _n_layers(parameters)
            if L == 0:
                raise KeyError("W1")
            t = int(state["t"]) + 1  # a Python int: beta**t stays a Python float
            h = self.hyper
            if self.name == "gd":
                new, new_state = _gd(parameters, grads, L, lr), {"t": t}
            elif self.name == "momentum":
                new, v = _momentum(parameters, grads, state["v"], L, h["beta"], lr)
                new_state = {"t": t, "v": v}
            elif self.name == "rmsprop":
                xp = array_api_compat.array_namespace(parameters["W1"])
                new, s = _rmsprop(xp, parameters, grads, state["s"], L, h["beta2"], h["epsilon"], lr)
                new_state = {"t": t, "s": s}
            else:  # adam
                xp = array_api_compat.array_namespace(parameters["W1"])
                new, v, s, _, _ = _adam(xp, parameters, grads, state["v"], state["s"], t, L,
                                        h["beta1"], h["beta2"], h["epsilon"], lr)
                new_state = {"t": t, "v": v, "s": s}
        except (KeyError, TypeError) as exc:
            msg = self._missing_key(parameters, grads, state)
            if msg is None:
                raise
            raise (ValueError if isinstance(exc, KeyError) else TypeError)(msg) from None
        return new, new_state

    def _missing_key(self, parameters, grads, state):
        """The message for a key that :meth:`step` could not find, or None."""
        if not isinstance(parameters, dict):
            return f"parameters: expected a dict with keys W1, b1, ..., WL, bL, got {type(parameters).__name__}"
        L = _n_layers(parameters)
        if L == 0:
            return f"parameters: expected keys W1, b1, ..., WL, bL, got keys {sorted(map(str, parameters))}"
        if not isinstance(grads, dict):
            return f"grads: expected a dict with keys dW1, db1, ..., got {type(grads).__name__}"
        if not isinstance(state, dict):
            return f"state: expected the dict from Optimizer.init(parameters), got {type(state).__name__}"
        wanted = ["t", *_SLOTS[self.name]]
        for entry in wanted:
            if entry not in state:
                return (
                    f"state: missing entry {entry!r} (the {self.name!r} optimizer keeps "
                    f"{', '.join(map(repr, wanted))}; create the state with Optimizer.init(parameters))"
                )
        keys = [f"{p}{l}" for l in range(1, L + 1) for p in "Wb"]
        for k in keys:
            if k not in parameters:
                return f"parameters: missing key {k!r} (found W1..W{L})"
        for k in keys:
            if f"d{k}" not in grads:
                return f"grads: missing key {'d' + k!r} (parameters has L = {L} layers)"
        for slot in _SLOTS[self.name]:
            if not isinstance(state[slot], dict):
                return f"state[{slot!r}]: expected a dict with keys dW1, db1, ..., got {type(state[slot]).__name__}"
            for k in keys:
                if f"d{k}" not in state[slot]:
                    return (
                        f"state[{slot!r}]: missing key {'d' + k!r} (parameters has L = {L} layers; "
                        "create the state with Optimizer.init(parameters))"
                    )
        return None


def get_optimizer(name, **hyper) -> Optimizer:
    """The optimiser ``name`` with hyper-parameters ``hyper`` (defaults for the others).

    Parameters
    ----------
    name : {"gd", "momentum", "rmsprop", "adam"}
    **hyper
        momentum: ``beta`` in [0, 1) (0.9); rmsprop: ``beta2`` in [0, 1) (0.9),
        the decay of the squared-gradient average, and ``epsilon`` > 0 (1e-8);
        adam: ``beta1`` (0.9), ``beta2`` (0.999) in [0, 1) and ``epsilon`` > 0
        (1e-8); gd: none.

    Raises
    ------
    ValueError
        Unknown name (the message lists :data:`OPTIMIZERS`), a hyper-parameter
        the optimiser does not take, or one out of range.
    TypeError
        A name or hyper-parameter of the wrong type.

    Examples
    --------
    >>> opt = get_optimizer("adam", beta2=0.99)
    >>> state = opt.init(parameters)                     # doctest: +SKIP
    >>> parameters, state = opt.step(parameters, grads, state, 0.01)  # doctest: +SKIP
    """
    return Optimizer(name, dict(hyper))
