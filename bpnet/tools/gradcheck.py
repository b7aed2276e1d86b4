"""Gradient checking by central differences: one checker for ``gradient_check``, ``bpnet gradcheck`` and ``explain``.

For a scalar parameter theta_i::

    gradapprox_i = (J(theta_i + eps) - J(theta_i - eps)) / (2 eps)

and the course's relative difference ``||grad - gradapprox|| / (||grad|| + ||gradapprox||)``:
below ~1e-7 (float64) the backward pass is right.  The perturbed forward passes
run on the backend of the inputs; only the costs come to the host.  Use
float64: in float32 the differences drown in rounding (~1e-3 at best).

ReLU has a kink at 0, where a central difference measures neither side's
slope: with zero biases an example whose previous layer is all zero has
``Z`` exactly 0.  Check with nonzero biases (as ``bpnet gradcheck`` does), or
let :func:`central_differences` shrink the step while it straddles a kink.
"""

from __future__ import annotations

import numpy as np
from array_api_compat import device, is_writeable_array

from .. import _validate as v
from ..backends import namespace_of, to_numpy
from ..nn import get_activation, get_loss
from ..nn._kernels import forward
from ..nn.course import check_forward_inputs

__all__ = ["gradient_check", "numerical_gradients", "central_differences", "relative_difference"]


def _shifted(xp, theta, i, j, h):
    """A copy of ``theta`` (n, k) with ``theta[i, j] + h`` at ``(i, j)``."""
    if is_writeable_array(theta):
        out = xp.asarray(theta, copy=True)
        out[i, j] = theta[i, j] + h
        return out
    # immutable arrays (JAX): the same sum, selected at (i, j)
    dev = device(theta)
    rows, cols = xp.arange(theta.shape[0], device=dev), xp.arange(theta.shape[1], device=dev)
    at = (rows == i)[:, None] & (cols == j)[None, :]
    return xp.where(at, theta + h, theta)


def central_differences(cost, theta, entries, eps, *, retries=0):
    """``dJ/dtheta[i, j]`` for each ``(i, j)`` of ``entries``, a host float64 vector.

    ``cost(theta_shifted)`` returns ``(J, sides)``: J a float, ``sides`` any
    value that changes when a shift crosses a kink (None when there is none);
    while ``theta +- h`` give different sides the step shrinks 10-fold, at
    most ``retries`` times.
    """
    xp = namespace_of(theta=theta)
    out = np.empty(len(entries))
    for t, (i, j) in enumerate(entries):
        h = eps
        for _ in range(retries + 1):
            J_plus, s_plus = cost(_shifted(xp, theta, i, j, h))
            J_minus, s_minus = cost(_shifted(xp, theta, i, j, -h))
            if s_plus == s_minus:
                break
            h /= 10.0
        out[t] = (J_plus - J_minus) / (2 * h)
    return out


def relative_difference(g, g_approx) -> float:
    """``||g - g_approx|| / (||g|| + ||g_approx||)``, 0 when both vanish."""
    den = np.linalg.norm(g) + np.linalg.norm(g_approx)
    return float(np.linalg.norm(g - g_approx) / den) if den > 0 else 0.0


def numerical_gradients(parameters, X, Y, epsilon=1e-7, *, hidden_activation="relu",
                        output_activation="sigmoid", loss="binary_crossentropy"):
    """Central-difference estimate of ``dJ/dtheta`` for every ``W{l}``, ``b{l}``.

    Parameters
    ----------
    parameters : dict ``W1, b1, ..., WL, bL``
    X : array, shape (n_x, m)
    Y : array, shape (n_L, m)
    epsilon : float > 0

    Returns
    -------
    dict
        ``dW{l}``, ``db{l}`` as host ``numpy.ndarray`` (float64) of the parameters' shapes.
    """
    hidden = get_activation(hidden_activation, "hidden_activation")
    output = get_activation(output_activation, "output_activation")
    spec = get_loss(loss)
    eps = v.real(epsilon, "epsilon", low=0.0, low_open=True)
    xp, L, X = check_forward_inputs(X, parameters)
    W1 = parameters["W1"]
    like = xp.empty((parameters[f"W{L}"].shape[0], X.shape[1]), dtype=W1.dtype, device=device(W1))  # unfilled
    Y = v.prepare_labels(Y, like, alname="the network output for X")  # checked before any pass runs
    approx = {}
    for key in v.param_keys(L):
        theta = parameters[key]

        def J(th, key=key):
            AL, _ = forward(xp, X, {**parameters, key: th}, L, hidden, output)
            return float(spec.cost(xp, AL, Y)), None

        entries = [(i, j) for i in range(theta.shape[0]) for j in range(theta.shape[1])]
        approx["d" + key] = central_differences(J, theta, entries, eps).reshape(tuple(theta.shape))
    return approx


def gradient_check(parameters, grads, X, Y, epsilon=1e-7, *, hidden_activation="relu",
                   output_activation="sigmoid", loss="binary_crossentropy", print_msg=False):
    """Relative difference between ``grads`` and the central-difference gradients.

    Parameters
    ----------
    parameters : dict ``W1, b1, ..., WL, bL``
    grads : dict
        At least ``dW1, db1, ..., dWL, dbL`` (e.g. from :func:`bpnet.L_model_backward`).
    X : array, shape (n_x, m)
    Y : array, shape (n_L, m)
    epsilon : float
        The perturbation; the course's 1e-7.
    hidden_activation, output_activation, loss : str
        The network and cost the gradients were computed for.
    print_msg : bool
        Print the course's verdict (threshold 2e-7).

    Returns
    -------
    difference : float
        ``||grad - gradapprox|| / (||grad|| + ||gradapprox||)`` over all W and b.
    """
    L = v.check_parameters(parameters)
    if not isinstance(grads, dict):
        raise TypeError(f"grads: expected a dict with keys dW1, db1, ..., got {type(grads).__name__}")
    keys = v.param_keys(L, "d")
    missing = [k for k in keys if k not in grads]
    if missing:
        raise ValueError(f"grads: missing keys {missing} for an L = {L} layer network")
    for k in keys:
        namespace_of(**{f"grads[{k!r}]": grads[k]}, W1=parameters["W1"])
        if tuple(grads[k].shape) != tuple(parameters[k[1:]].shape):
            raise ValueError(f"grads[{k!r}]: expected shape {tuple(parameters[k[1:]].shape)}, "
                             f"got {tuple(grads[k].shape)}")
    approx = numerical_gradients(parameters, X, Y, epsilon, hidden_activation=hidden_activation,
                                 output_activation=output_activation, loss=loss)
    grad = np.concatenate([to_numpy(grads[k]).astype(np.float64).ravel() for k in keys])
    difference = relative_difference(grad, np.concatenate([approx[k].ravel() for k in keys]))
    if print_msg:
        if difference > 2e-7:
            print(f"\033[93mThere is a mistake in the backward propagation! difference = {difference}\033[0m")
        else:
            print(f"\033[92mYour backward propagation works perfectly fine! difference = {difference}\033[0m")
    return difference
