"""Activation functions g and their backward passes, one registry.

Every public forward has the course's signature ``g(Z) -> (A, activation_cache)``
with ``activation_cache = Z``; every public backward ``g_backward(dA, Z) -> dZ``
computes ``dZ = dA * g'(Z)`` elementwise (softmax: the Jacobian-vector product
over the class axis 0).  ``Z``, ``A``, ``dA`` and ``dZ`` all have shape
``(n_l, m)``.

Each :class:`Activation` in :data:`ACTIVATIONS` also carries the two kernels
the L-layer passes use, which take the namespace ``xp`` explicitly:
``fwd(xp, Z) -> A`` and ``bwd(xp, dA, Z, A) -> dZ``.  The backward kernel is
given the forward output ``A`` (the next layer's cached ``A_prev``), so
sigmoid, tanh and softmax do not recompute ``exp`` in the backward pass.

Everything is written against the Array API: the namespace comes from the
input, scalars are Python floats, so dtype and device are kept.  All forwards
are stable for any finite ``Z`` (no overflow warning at ``|z| = 1e4``).
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import array_api_compat

__all__ = [
    "ACTIVATIONS",
    "Activation",
    "LEAKY_RELU_SLOPE",
    "get_activation",
    "relu",
    "relu_backward",
    "leaky_relu",
    "leaky_relu_backward",
    "tanh",
    "tanh_backward",
    "sigmoid",
    "sigmoid_backward",
    "linear",
    "identity_backward",
    "softmax",
    "softmax_backward",
]

#: slope of leaky ReLU for z < 0
LEAKY_RELU_SLOPE = 0.01


# --------------------------------------------------------------------------- #
# kernels: fwd(xp, Z) -> A ; bwd(xp, dA, Z, A) -> dZ


def _relu_fwd(xp, Z):
    # A = max(0, Z)
    return xp.maximum(Z, 0.0)


def _relu_bwd(xp, dA, Z, A):
    # g'(z) = 1 if z > 0 else 0
    return xp.where(Z > 0, dA, 0.0)


def _leaky_fwd(xp, Z):
    # A = z if z > 0 else 0.01 z
    return xp.where(Z > 0, Z, LEAKY_RELU_SLOPE * Z)


def _leaky_bwd(xp, dA, Z, A):
    # g'(z) = 1 if z > 0 else 0.01
    return xp.where(Z > 0, dA, LEAKY_RELU_SLOPE * dA)


def _tanh_fwd(xp, Z):
    return xp.tanh(Z)


def _tanh_bwd(xp, dA, Z, A):
    # g'(z) = 1 - tanh(z)^2 = 1 - A^2
    return dA * (1.0 - A * A)


def _sigmoid_fwd(xp, Z):
    # two-branch form, exp(-|z|) never overflows:
    #   z >= 0: 1 / (1 + e^-z);   z < 0: e^z / (1 + e^z)
    e = xp.exp(-xp.abs(Z))
    return xp.where(Z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _sigmoid_bwd(xp, dA, Z, A):
    # g'(z) = s (1 - s) = A (1 - A)
    return dA * A * (1.0 - A)


def _linear_fwd(xp, Z):
    return Z


def _linear_bwd(xp, dA, Z, A):
    return dA


def _softmax_fwd(xp, Z):
    # shift each column by its max: exp(z - max) <= 1, so no overflow
    E = xp.exp(Z - xp.max(Z, axis=0, keepdims=True))
    return E / xp.sum(E, axis=0, keepdims=True)


def _softmax_bwd(xp, dA, Z, A):
    # dZ_k = sum_j dA_j dA_j/dZ_k = A_k (dA_k - sum_j dA_j A_j), per column
    return A * (dA - xp.sum(dA * A, axis=0, keepdims=True))


# --------------------------------------------------------------------------- #
# training-step kernels: bwd_a(xp, dA, A) -> dZ from the forward output A alone
# (every activation's derivative is a function of A: relu/leaky_relu through
# the sign of A, tanh 1 - A^2, sigmoid A (1 - A)), so the training step keeps
# no Z.  They may overwrite ``dA``, which the caller must own (a fresh
# ``W^T dZ``).  The 0/1 factor of relu is ``astype(A > 0)``: on numpy a
# multiply is ~20x faster than ``where`` over an unpredictable mask.


def _relu_bwd_a(xp, dA, A):
    dA *= xp.astype(A > 0, dA.dtype)  # g'(z) = 1[z > 0] = 1[A > 0]
    return dA


def _leaky_bwd_a(xp, dA, A):
    # g'(z) = 1 if A > 0 else 0.01  ==  0.01 + 0.99 * 1[A > 0]
    g = xp.astype(A > 0, dA.dtype)
    g *= 1.0 - LEAKY_RELU_SLOPE
    g += LEAKY_RELU_SLOPE
    dA *= g
    return dA


def _tanh_bwd_a(xp, dA, A):
    dA *= 1.0 - A * A
    return dA


def _sigmoid_bwd_a(xp, dA, A):
    dA *= A * (1.0 - A)
    return dA


def _linear_bwd_a(xp, dA, A):
    return dA


def _softmax_fwd_ip(xp, Z, ones_row=None):
    # softmax overwriting Z (owned by the caller): two (n, m) arrays fewer.
    # ones_row, a (1, n) array of ones, turns the column sum into a GEMV
    # (1, n) @ (n, m), cheaper than xp.sum(axis=0) for the small n of an output layer
    Z -= xp.max(Z, axis=0, keepdims=True)
    E = xp.exp(Z)
    E /= xp.sum(E, axis=0, keepdims=True) if ones_row is None else ones_row @ E
    return E


def _softmax_bwd_a(xp, dA, A):
    return _softmax_bwd(xp, dA, None, A)


# --------------------------------------------------------------------------- #
# the course's public functions


def _apply(fwd, Z):
    xp = array_api_compat.array_namespace(Z)
    return fwd(xp, Z), Z


def _apply_backward(fwd, bwd, dA, Z):
    xp = array_api_compat.array_namespace(dA, Z)
    return bwd(xp, dA, Z, fwd(xp, Z))


def relu(Z):
    """A = max(0, Z).  Returns ``(A, Z)``; ``Z`` has shape ``(n_l, m)``."""
    return _apply(_relu_fwd, Z)


def relu_backward(dA, Z):
    """dZ = dA * 1[Z > 0].  ``dA`` and ``Z`` have shape ``(n_l, m)``."""
    return _apply_backward(_relu_fwd, _relu_bwd, dA, Z)


def leaky_relu(Z):
    """A = Z where Z > 0, else 0.01 Z.  Returns ``(A, Z)``."""
    return _apply(_leaky_fwd, Z)


def leaky_relu_backward(dA, Z):
    """dZ = dA where Z > 0, else 0.01 dA."""
    return _apply_backward(_leaky_fwd, _leaky_bwd, dA, Z)


def tanh(Z):
    """A = tanh(Z).  Returns ``(A, Z)``."""
    return _apply(_tanh_fwd, Z)


def tanh_backward(dA, Z):
    """dZ = dA * (1 - tanh(Z)^2)."""
    return _apply_backward(_tanh_fwd, _tanh_bwd, dA, Z)


def sigmoid(Z):
    """A = 1 / (1 + exp(-Z)), computed stably.  Returns ``(A, Z)``."""
    return _apply(_sigmoid_fwd, Z)


def sigmoid_backward(dA, Z):
    """dZ = dA * s (1 - s) with s = sigmoid(Z)."""
    return _apply_backward(_sigmoid_fwd, _sigmoid_bwd, dA, Z)


def linear(Z):
    """A = Z (identity, e.g. a regression output).  Returns ``(A, Z)``."""
    return _apply(_linear_fwd, Z)


def identity_backward(dA, Z):
    """dZ = dA: backward of the ``linear`` (identity) activation.

    Not named ``linear_backward``: that is the course's name for the backward
    of the affine step ``Z = W A + b`` (:func:`bpnet.linear_backward`).
    """
    return _apply_backward(_linear_fwd, _linear_bwd, dA, Z)


def softmax(Z):
    """A[:, j] = exp(Z[:, j]) / sum_k exp(Z[k, j]), over the class axis 0.  Returns ``(A, Z)``."""
    return _apply(_softmax_fwd, Z)


def softmax_backward(dA, Z):
    """dZ = A * (dA - sum_k dA[k] A[k]) per column, with A = softmax(Z)."""
    return _apply_backward(_softmax_fwd, _softmax_bwd, dA, Z)


class Activation(NamedTuple):
    """A registry entry.

    ``forward(Z) -> (A, Z)`` and ``backward(dA, Z) -> dZ`` are the course's
    public functions; ``fwd(xp, Z) -> A`` and ``bwd(xp, dA, Z, A) -> dZ`` the
    kernels the L-layer passes call; ``bwd_a(xp, dA, A) -> dZ`` the training
    step's backward from ``A`` alone (may overwrite ``dA``) and ``fwd_ip(xp, Z, ones_row=None)``
    its forward, which may overwrite ``Z`` (``None``: use ``fwd``).
    """

    name: str
    forward: Callable
    backward: Callable
    fwd: Callable
    bwd: Callable
    bwd_a: Callable | None = None
    fwd_ip: Callable | None = None


ACTIVATIONS: dict[str, Activation] = {
    a.name: a
    for a in (
        Activation("relu", relu, relu_backward, _relu_fwd, _relu_bwd, _relu_bwd_a),
        Activation("leaky_relu", leaky_relu, leaky_relu_backward, _leaky_fwd, _leaky_bwd, _leaky_bwd_a),
        Activation("tanh", tanh, tanh_backward, _tanh_fwd, _tanh_bwd, _tanh_bwd_a),
        Activation("sigmoid", sigmoid, sigmoid_backward, _sigmoid_fwd, _sigmoid_bwd, _sigmoid_bwd_a),
        Activation("linear", linear, identity_backward, _linear_fwd, _linear_bwd, _linear_bwd_a),
        Activation("softmax", softmax, softmax_backward, _softmax_fwd, _softmax_bwd, _softmax_bwd_a,
                   _softmax_fwd_ip),
    )
}


def get_activation(name, argname: str = "activation") -> Activation:
    """Registry lookup with a clear error naming ``argname`` and the known names."""
    if isinstance(name, Activation):
        return name
    if not isinstance(name, str) or name not in ACTIVATIONS:
        raise ValueError(
            f"{argname}: unknown activation {name!r}; expected one of "
            f"{', '.join(map(repr, ACTIVATIONS))}"
        )
    return ACTIVATIONS[name]
