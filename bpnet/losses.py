"""Losses: the cost J(AL, Y) and the course's output gradient dAL = dL/dAL.

Convention of the course: the cost averages over the m examples (columns),
``J = (1/m) sum_i L(a_i, y_i)``, while ``dAL`` is the gradient of the
per-example loss L and carries **no** ``1/m``; the ``1/m`` enters once, in
``dW`` and ``db`` (:func:`bpnet.linear_backward`).

========================== ============================================== ==============================
loss                        J                                              dAL
========================== ============================================== ==============================
``binary_crossentropy``     -(1/m) sum(Y log AL + (1-Y) log(1-AL))         -(Y/AL - (1-Y)/(1-AL))
``categorical_crossentropy`` -(1/m) sum(Y log AL)  (Y one-hot, (C, m))      -Y/AL
``mse``                     (1/(2m)) sum((AL - Y)^2)                       AL - Y
========================== ============================================== ==============================

Both log-losses clip ``AL`` to ``[eps, 1 - eps]`` with ``eps`` the machine
epsilon of its dtype (float32: 1.2e-7, float64: 2.2e-16) before the log and
the division, so a saturated output gives a large finite cost and gradient,
never ``inf``/``NaN``.  Training uses the fused, exact ``dZL = AL - Y``
(:data:`FUSED_PAIRS`) and never divides by ``AL``.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

__all__ = ["LOSSES", "Loss", "FUSED_PAIRS", "get_loss", "DEFAULT_OUTPUT"]


def _clip01(xp, AL):
    # P = min(max(AL, eps), 1 - eps): two elementwise kernels.  Not xp.clip: array-api-compat's
    # clip assigns through boolean masks, which on cupy waits for the GPU (a host sync per call)
    eps = float(xp.finfo(AL.dtype).eps)
    return xp.minimum(xp.maximum(AL, eps), 1.0 - eps)


def _bce_cost(xp, AL, Y):
    # J = -(1/m) sum(Y log AL + (1-Y) log(1-AL))
    m = AL.shape[1]
    P = _clip01(xp, AL)
    return -xp.sum(Y * xp.log(P) + (1.0 - Y) * xp.log(1.0 - P)) / m


def _bce_grad(xp, AL, Y):
    # dAL = -(Y/AL - (1-Y)/(1-AL))
    P = _clip01(xp, AL)
    return -(Y / P - (1.0 - Y) / (1.0 - P))


def _cce_cost(xp, AL, Y):
    # J = -(1/m) sum_k sum_i Y[k,i] log AL[k,i]
    m = AL.shape[1]
    return -xp.sum(Y * xp.log(_clip01(xp, AL))) / m


def _cce_grad(xp, AL, Y):
    # dAL = -Y / AL
    return -Y / _clip01(xp, AL)


def _mse_cost(xp, AL, Y):
    # J = (1/(2m)) sum (AL - Y)^2 ; the 1/2 makes dAL = AL - Y (as scikit-learn's squared loss)
    m = AL.shape[1]
    D = AL - Y
    return xp.sum(D * D) / (2 * m)


def _mse_grad(xp, AL, Y):
    return AL - Y


class Loss(NamedTuple):
    """A registry entry: ``cost(xp, AL, Y)`` -> 0-d array, ``grad(xp, AL, Y)`` -> dAL."""

    name: str
    cost: Callable
    grad: Callable


LOSSES: dict[str, Loss] = {
    l.name: l
    for l in (
        Loss("binary_crossentropy", _bce_cost, _bce_grad),
        Loss("categorical_crossentropy", _cce_cost, _cce_grad),
        Loss("mse", _mse_cost, _mse_grad),
    )
}

#: (output activation, loss) pairs whose output gradient simplifies exactly to
#: ``dZL = AL - Y`` (the canonical link of each loss).
FUSED_PAIRS = frozenset(
    {
        ("sigmoid", "binary_crossentropy"),
        ("softmax", "categorical_crossentropy"),
        ("linear", "mse"),
    }
)

#: the natural output activation of each loss
DEFAULT_OUTPUT = {
    "binary_crossentropy": "sigmoid",
    "categorical_crossentropy": "softmax",
    "mse": "linear",
}


def get_loss(name, argname: str = "loss") -> Loss:
    """Registry lookup with a clear error naming ``argname`` and the known names."""
    if isinstance(name, Loss):
        return name
    if not isinstance(name, str) or name not in LOSSES:
        raise ValueError(
            f"{argname}: unknown loss {name!r}; expected one of {', '.join(map(repr, LOSSES))}"
        )
    return LOSSES[name]
