"""The course's optimisation functions: mini-batches, momentum, Adam, RMSprop, lr decay, L2, clipping.

Names, argument order, return values, the keys ``dW1, db1, ...`` of the
moment dicts ``v`` and ``s``, and the numbers follow the course assignments
"Optimization methods" and "Regularization", generalised to L layers.  One
difference: nothing is updated in place; every function returns **new**
dicts (the course's ``parameters, v = ...`` calls work unchanged).  Each
function checks its inputs, then runs the one definition of its rule in
:mod:`bpnet.optim.rules`.  They work parameter by parameter, so the ``W``
shapes need not chain into a network (the course's own tests pass ``W1``
(2, 3) with ``W2`` (3, 3)): each ``grads``/``v``/``s`` entry only has to
match its own parameter.  Shapes, for layer l: ``W[l], dW[l], v["dW{l}"],
s["dW{l}"]`` are ``(n_l, n_{l-1})``; ``b[l], db[l], v["db{l}"], s["db{l}"]``
are ``(n_l, 1)``.
"""

from __future__ import annotations

import array_api_compat
import numpy as np

from .. import _validate as chk
from ..backends import namespace_of
from ..nn import compute_cost
from .rules import OPTIMIZERS, apply, check_hyper, clip_scale, l2_penalty, staircase, zeros_like_parameters

__all__ = [
    "random_mini_batches",
    "initialize_velocity",
    "update_parameters",
    "update_parameters_with_momentum",
    "initialize_adam",
    "update_parameters_with_adam",
    "update_lr",
    "schedule_lr_decay",
    "initialize_rmsprop",
    "update_parameters_with_rmsprop",
    "l2_cost",
    "compute_cost_with_regularization",
    "add_l2_gradients",
    "clip_gradients",
]


def _checked(parameters, grads, hint="", **moments):
    """L, after checking parameters, grads and each moment dict against them."""
    L = chk.check_parameters(parameters, chain=False)
    chk.check_slots(grads, "grads", parameters, L)
    for name, d in moments.items():
        chk.check_slots(d, name, parameters, L, hint)
    return L


def _lr(learning_rate):
    return chk.real(learning_rate, "learning_rate", low=0.0, low_open=True)


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
        if not chk.is_array(a):
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
        raise ValueError(f"Y: expected {m} examples (columns) like X of shape {tuple(X.shape)}, "
                         f"got shape {tuple(Y.shape)}")
    if m == 0:
        raise ValueError(f"X: expected at least one example (column), got shape {tuple(X.shape)}")
    size = chk.integer(mini_batch_size, "mini_batch_size", low=1)
    seed = chk.integer(seed, "seed", low=0, high=2**32 - 1)

    # the course's shuffle, on the host; one transfer of the index to X's device
    permutation = np.random.RandomState(seed).permutation(m)
    idx = xp.asarray(permutation.astype(np.int64), dtype=xp.int64, device=array_api_compat.device(X))
    mini_batches = []
    for start in range(0, m, size):  # complete batches, then the remainder
        batch = idx[start : min(start + size, m)]
        mini_batches.append((xp.take(X, batch, axis=1), xp.take(Y, batch, axis=1)))
    return mini_batches


# --------------------------------------------------------------------------- #
# gradient descent and momentum


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
    L = _checked(parameters, grads)
    return apply(OPTIMIZERS["gd"], parameters, grads, {}, 1, _lr(learning_rate), {}, L)[0]


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
    return zeros_like_parameters(parameters, chk.check_parameters(parameters, chain=False))


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
    L = _checked(parameters, grads, " (create v with initialize_velocity(parameters))", v=v)
    h = {"beta": check_hyper(beta, "beta")}
    new, mo, _ = apply(OPTIMIZERS["momentum"], parameters, grads, {"v": v}, 1, _lr(learning_rate), h, L)
    return new, mo["v"]


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
    L = chk.check_parameters(parameters, chain=False)
    return zeros_like_parameters(parameters, L), zeros_like_parameters(parameters, L)


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
    L = _checked(parameters, grads, " (create v, s with initialize_adam(parameters))", v=v, s=s)
    t = chk.integer(t, "t", low=1)
    h = {k: check_hyper(x, k) for k, x in (("beta1", beta1), ("beta2", beta2), ("epsilon", epsilon))}
    new, mo, ex = apply(OPTIMIZERS["adam"], parameters, grads, {"v": v, "s": s}, t, _lr(learning_rate), h, L)
    return new, mo["v"], mo["s"], ex["v_corrected"], ex["s_corrected"]


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
    return zeros_like_parameters(parameters, chk.check_parameters(parameters, chain=False))


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
    L = _checked(parameters, grads, " (create s with initialize_rmsprop(parameters))", s=s)
    h = {k: check_hyper(x, k) for k, x in (("beta2", beta2), ("epsilon", epsilon))}
    new, mo, _ = apply(OPTIMIZERS["rmsprop"], parameters, grads, {"s": s}, 1, _lr(learning_rate), h, L)
    return new, mo["s"]


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
    return _decayed(learning_rate0, epoch_num, decay_rate, 1)


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
    return _decayed(learning_rate0, epoch_num, decay_rate, chk.integer(time_interval, "time_interval", low=1))


def _decayed(learning_rate0, epoch_num, decay_rate, interval):
    return staircase(chk.real(learning_rate0, "learning_rate0", low=0.0, low_open=True),
                     chk.integer(epoch_num, "epoch_num", low=0), chk.real(decay_rate, "decay_rate", low=0.0), interval)


# --------------------------------------------------------------------------- #
# L2 regularisation (weights only; biases are not regularised)


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
    L = chk.check_parameters(parameters, chain=False)
    lambd = chk.real(lambd, "lambd", low=0.0)
    m = chk.integer(m, "m", low=1)
    return l2_penalty(array_api_compat.array_namespace(parameters["W1"]), parameters, L, lambd, m)


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
    cross_entropy_cost = compute_cost(AL, Y, loss=loss)  # validates AL, Y and loss
    L = chk.check_parameters(parameters, chain=False)
    namespace_of(AL=AL, **{"parameters['W1']": parameters["W1"]})
    chk.same_dtype([("AL", AL), ("parameters['W1']", parameters["W1"])])
    lambd = chk.real(lambd, "lambd", low=0.0)
    xp = array_api_compat.array_namespace(AL)
    return cross_entropy_cost + l2_penalty(xp, parameters, L, lambd, AL.shape[1])


def add_l2_gradients(grads, parameters, lambd, m):
    """Gradients of the regularised cost: ``dW[l] + (lambd / m) W[l]``, ``db[l]`` unchanged.

    ``(lambd / m) W[l]`` is the gradient of :func:`l2_cost` with respect to
    ``W[l]``, the term the course's ``backward_propagation_with_regularization`` adds.

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
    L = _checked(parameters, grads)
    lambd = chk.real(lambd, "lambd", low=0.0)
    m = chk.integer(m, "m", low=1)
    new = dict(grads)  # dW[l] += (lambd / m) W[l]
    if lambd:
        for l in range(1, L + 1):
            new[f"dW{l}"] = grads[f"dW{l}"] + (lambd / m) * parameters[f"W{l}"]
    return new


def _is_param_grad(key) -> bool:
    # "dW1", "db12", ...: a gradient of a parameter (not "dA0", not "dZ1")
    return isinstance(key, str) and len(key) > 2 and key[0] == "d" and key[1] in "Wb" and key[2:].isdigit()


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
        if not chk.is_array(grads[k]):
            kind = f"{type(grads[k]).__module__}.{type(grads[k]).__name__}"
            raise TypeError(f"grads[{k!r}]: expected an array, got {kind}")
    named = {f"grads[{k!r}]": grads[k] for k in keys}
    xp = namespace_of(**named)
    chk.same_dtype(named.items())
    scale, total = clip_scale(xp, [grads[k] for k in keys], chk.real(max_norm, "max_norm", low=0.0, low_open=True))
    return {**grads, **{k: grads[k] * scale for k in keys}}, total
