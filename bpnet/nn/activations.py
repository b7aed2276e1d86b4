"""Activation functions g: one registry entry each, read by every part of bpnet.

An :class:`Activation` carries everything known about g: its forward
``A = g(Z)``, its derivative written through the output ``A`` (so the
backward pass needs no ``Z``), the equations and FLOP counts ``bpnet explain``
prints, and whether it may sit in a hidden layer.  ``Z``, ``A``, ``dA`` and
``dZ`` all have shape ``(n_l, m)``; every forward is stable for any finite
``Z``.  Adding an activation is one entry in :data:`ACTIVATIONS` (and its
two course-style functions, if it should have them).

The course's functions keep the course's signatures: ``g(Z) -> (A, Z)``
and ``g_backward(dA, Z) -> dZ = dA * g'(Z)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

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
    "softplus",
    "softplus_backward",
    "linear",
    "identity_backward",
    "softmax",
    "softmax_backward",
    "exp",
    "exp_backward",
]

#: slope of leaky ReLU for z < 0
LEAKY_RELU_SLOPE = 0.01


@dataclass(frozen=True)
class Activation:
    """A registry entry.

    Attributes
    ----------
    name : str
    forward : callable
        ``forward(xp, Z) -> A``, a new array.
    derivative : callable or None
        ``derivative(xp, A) -> g'(Z)`` elementwise, from the output ``A``;
        None for the identity and for softmax (see ``vjp``).
    vjp : callable or None
        ``vjp(xp, dA, A) -> dZ`` for a g that is not elementwise (softmax).
    forward_inplace : callable or None
        ``forward_inplace(xp, Z, ones_row) -> A`` that may overwrite ``Z``
        (the training step's softmax); None: the step calls ``forward``.
    formula, dz : str
        ``A = g(Z)`` and ``dZ = ...`` for ``bpnet explain``; ``dz`` has the
        placeholders ``{dA}`` and ``{A}``.
    derivative_text : str
    flops : (int, int)
        FLOPs per element of the forward and of the backward.
    hidden : bool
        Usable in a hidden layer (softmax normalises over the class axis, exp grows without bound: output only).
    output_only : str
        Why it is not (the refusal names it).
    min_units : int
        Fewest units the layer needs (a softmax over one unit is constantly 1).
    probability : bool
        Outputs lie in (0, 1), as log-losses need.
    """

    name: str
    forward: Callable
    derivative: Callable | None
    formula: str
    dz: str
    derivative_text: str
    flops: tuple
    vjp: Callable | None = None
    forward_inplace: Callable | None = None
    hidden: bool = True
    output_only: str = ""
    min_units: int = 1
    probability: bool = False
    #: ``backward_(xp, dA, A) -> dZ``: :meth:`backward` in place, bound once (the training step calls it per layer)
    backward_: Callable = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "backward_", _in_place(self.derivative, self.vjp))

    def backward(self, xp, dA, A, *, inplace: bool = False):
        """``dZ = dA * g'(Z)`` from the output ``A``; ``inplace`` may overwrite ``dA`` (the caller owns it)."""
        if self.vjp is not None:
            return self.vjp(xp, dA, A)
        if self.derivative is None:  # the identity: g' = 1
            return dA
        g = self.derivative(xp, A)
        if inplace:
            dA *= g
            return dA
        return dA * g


def _in_place(derivative, vjp):
    if vjp is not None:
        return vjp
    if derivative is None:  # the identity: dZ = dA
        return lambda xp, dA, A: dA

    def backward_(xp, dA, A):
        dA *= derivative(xp, A)  # dZ = dA * g'(Z), over dA (owned by the caller)
        return dA

    return backward_


# --------------------------------------------------------------------------- #
# forward and derivative of each g (xp passed in; scalars are Python floats,
# so dtype and device are kept)


def _relu(xp, Z):
    return xp.maximum(Z, 0.0)  # A = max(0, Z)


def _relu_d(xp, A):
    # g'(z) = 1[z > 0] = 1[A > 0]; a 0/1 multiply is ~20x faster than where() on numpy
    return xp.astype(A > 0, A.dtype)


def _leaky(xp, Z):
    return xp.where(Z > 0, Z, LEAKY_RELU_SLOPE * Z)


def _leaky_d(xp, A):
    # g'(z) = 1 if z > 0 else 0.01  ==  0.01 + 0.99 * 1[A > 0]
    g = xp.astype(A > 0, A.dtype)
    g *= 1.0 - LEAKY_RELU_SLOPE
    g += LEAKY_RELU_SLOPE
    return g


def _tanh(xp, Z):
    return xp.tanh(Z)


def _tanh_d(xp, A):
    return 1.0 - A * A  # g'(z) = 1 - tanh(z)^2


def _sigmoid(xp, Z):
    # two branches, exp(-|z|) never overflows: z >= 0: 1 / (1 + e^-z); z < 0: e^z / (1 + e^z)
    e = xp.exp(-xp.abs(Z))
    return xp.where(Z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _sigmoid_d(xp, A):
    return A * (1.0 - A)  # g'(z) = s (1 - s)


def _softplus(xp, Z):
    # log(1 + e^z) = max(z, 0) + log1p(e^-|z|): no overflow, exact for large |z|
    return xp.maximum(Z, 0.0) + xp.log1p(xp.exp(-xp.abs(Z)))


def _softplus_d(xp, A):
    # g'(z) = sigmoid(z) = 1 - e^-A (as e^A = 1 + e^z); -expm1(-A) keeps it exact for small A
    return -xp.expm1(-A)


def _linear(xp, Z):
    return Z


def _exp(xp, Z):
    # exp(Z), Z capped one below log(largest float): finite for every finite Z (exp(Z) <= max / e)
    cap = math.log(float(xp.finfo(Z.dtype).max)) - 1.0
    return xp.exp(xp.minimum(Z, cap))


def _exp_d(xp, A):
    return A  # g'(z) = exp(z) = A (a Poisson output's log link)


def _softmax(xp, Z):
    # shift each column by its max: exp(z - max) <= 1, so no overflow
    E = xp.exp(Z - xp.max(Z, axis=0, keepdims=True))
    return E / xp.sum(E, axis=0, keepdims=True)


def _softmax_inplace(xp, Z, ones_row=None):
    # softmax over Z (owned by the caller): two (n, m) arrays fewer; ones_row, (1, n) of ones,
    # turns the column sum into a GEMV, cheaper than xp.sum(axis=0) for an output layer's small n
    Z -= xp.max(Z, axis=0, keepdims=True)
    E = xp.exp(Z)
    E /= xp.sum(E, axis=0, keepdims=True) if ones_row is None else ones_row @ E
    return E


def _softmax_vjp(xp, dA, A):
    # dZ_k = sum_j dA_j dA_j/dZ_k = A_k (dA_k - sum_j dA_j A_j), per column
    return A * (dA - xp.sum(dA * A, axis=0, keepdims=True))


ACTIVATIONS: dict[str, Activation] = {a.name: a for a in (
    Activation("relu", _relu, _relu_d, "max(0, Z)", "{dA} * 1[{A} > 0]",
               "relu'(z) = 1 if z > 0 else 0", (1, 2)),
    Activation("leaky_relu", _leaky, _leaky_d, f"Z if Z > 0 else {LEAKY_RELU_SLOPE:g} Z",
               f"{{dA}} * (1 if {{A}} > 0 else {LEAKY_RELU_SLOPE:g})",
               f"leaky_relu'(z) = 1 if z > 0 else {LEAKY_RELU_SLOPE:g}", (2, 4)),
    Activation("tanh", _tanh, _tanh_d, "tanh(Z)", "{dA} * (1 - {A}^2)",
               "tanh'(z) = 1 - tanh(z)^2 = 1 - A^2", (1, 3)),
    Activation("sigmoid", _sigmoid, _sigmoid_d, "1 / (1 + exp(-Z))", "{dA} * {A} (1 - {A})",
               "sigmoid'(z) = s(z) (1 - s(z)) = A (1 - A)", (3, 3), probability=True),
    Activation("softplus", _softplus, _softplus_d, "log(1 + exp(Z))", "{dA} * (1 - exp(-{A}))",
               "softplus'(z) = sigmoid(z) = 1 - exp(-A)", (6, 3)),
    Activation("linear", _linear, None, "Z", "{dA}", "linear'(z) = 1", (0, 0)),
    Activation("softmax", _softmax, None, "exp(Z) / sum_k exp(Z)", "{A} * ({dA} - sum_k({dA} * {A}))",
               "softmax: dZ = A * (dA - sum_k(dA * A)) per column, the Jacobian-vector product of "
               "diag(a) - a a^T", (5, 4), vjp=_softmax_vjp, forward_inplace=_softmax_inplace,
               hidden=False, output_only="normalises over the class axis", min_units=2, probability=True),
    Activation("exp", _exp, _exp_d, "exp(Z)", "{dA} * {A}", "exp'(z) = exp(z) = A", (1, 1), hidden=False,
               output_only="grows without bound (the log link of a Poisson output)"),
)}


def get_activation(name, argname: str = "activation", *, hidden: bool = False) -> Activation:
    """Registry lookup; ``hidden=True`` also refuses output-only activations (softmax)."""
    if isinstance(name, Activation):
        entry = name
    elif not isinstance(name, str) or name not in ACTIVATIONS:
        raise ValueError(f"{argname}: unknown activation {name!r}; expected one of "
                         f"{', '.join(map(repr, ACTIVATIONS))}")
    else:
        entry = ACTIVATIONS[name]
    if hidden and not entry.hidden:
        raise ValueError(f"{argname}: {entry.name} {entry.output_only}; use it as output_activation "
                         f"(hidden activations: {', '.join(a for a, e in ACTIVATIONS.items() if e.hidden)})")
    return entry


# --------------------------------------------------------------------------- #
# the course's functions: g(Z) -> (A, Z) and g_backward(dA, Z) -> dZ


def _course_forward(name, Z):
    xp = array_api_compat.array_namespace(Z)
    return ACTIVATIONS[name].forward(xp, Z), Z


def _course_backward(name, dA, Z):
    xp = array_api_compat.array_namespace(dA, Z)
    g = ACTIVATIONS[name]
    return g.backward(xp, dA, g.forward(xp, Z))


def relu(Z):
    """A = max(0, Z).  Returns ``(A, Z)``; ``Z`` has shape ``(n_l, m)``."""
    return _course_forward("relu", Z)


def relu_backward(dA, Z):
    """dZ = dA * 1[Z > 0].  ``dA`` and ``Z`` have shape ``(n_l, m)``."""
    return _course_backward("relu", dA, Z)


def leaky_relu(Z):
    """A = Z where Z > 0, else 0.01 Z.  Returns ``(A, Z)``."""
    return _course_forward("leaky_relu", Z)


def leaky_relu_backward(dA, Z):
    """dZ = dA where Z > 0, else 0.01 dA."""
    return _course_backward("leaky_relu", dA, Z)


def tanh(Z):
    """A = tanh(Z).  Returns ``(A, Z)``."""
    return _course_forward("tanh", Z)


def tanh_backward(dA, Z):
    """dZ = dA * (1 - tanh(Z)^2)."""
    return _course_backward("tanh", dA, Z)


def sigmoid(Z):
    """A = 1 / (1 + exp(-Z)), computed stably.  Returns ``(A, Z)``."""
    return _course_forward("sigmoid", Z)


def sigmoid_backward(dA, Z):
    """dZ = dA * s (1 - s) with s = sigmoid(Z)."""
    return _course_backward("sigmoid", dA, Z)


def softplus(Z):
    """A = log(1 + exp(Z)), computed stably.  Returns ``(A, Z)``."""
    return _course_forward("softplus", Z)


def softplus_backward(dA, Z):
    """dZ = dA * sigmoid(Z)."""
    return _course_backward("softplus", dA, Z)


def linear(Z):
    """A = Z (identity, e.g. a regression output).  Returns ``(A, Z)``."""
    return _course_forward("linear", Z)


def identity_backward(dA, Z):
    """dZ = dA: backward of ``linear`` (``linear_backward`` is the course's name for the affine step)."""
    return _course_backward("linear", dA, Z)


def softmax(Z):
    """A[:, j] = exp(Z[:, j]) / sum_k exp(Z[k, j]), over the class axis 0.  Returns ``(A, Z)``."""
    return _course_forward("softmax", Z)


def softmax_backward(dA, Z):
    """dZ = A * (dA - sum_k dA[k] A[k]) per column, with A = softmax(Z)."""
    return _course_backward("softmax", dA, Z)


def exp(Z):
    """A = exp(Z) (a Poisson regression's output), finite for every finite Z.  Returns ``(A, Z)``."""
    return _course_forward("exp", Z)


def exp_backward(dA, Z):
    """dZ = dA * exp(Z)."""
    return _course_backward("exp", dA, Z)
