"""Gradient checking by central differences, as in the course.

For every scalar parameter theta_i (all W and b)::

    gradapprox_i = (J(theta_i + eps) - J(theta_i - eps)) / (2 eps)

and the check returns the course's relative difference::

    ||grad - gradapprox||_2 / (||grad||_2 + ||gradapprox||_2)

Below ~1e-7 (float64) the backward pass is right.  The perturbed forward
passes run on the backend of the inputs; only the scalar costs and the final
vectors come to the host.  Use float64: in float32 the differences drown in
rounding (expect ~1e-3 at best).

ReLU has a kink at 0, where a central difference measures neither side's
slope.  With the zero biases of a fresh initialisation, an example whose
previous layer is all zero has ``Z`` exactly 0 and the check can report a
large, spurious difference; check with nonzero biases (or a smooth
activation), as ``bpnet gradcheck`` does.  With the course's 0.01 weights the
gradients of deep layers are tiny and the check's rounding floor (~1e-6)
dominates; He or Xavier weights avoid that.
"""

from __future__ import annotations

import numpy as np

from ._checks import check_parameters, check_positive_real, prepare_labels
from .activations import get_activation
from .backends import namespace_of, to_numpy
from .core import _check_forward_inputs, _forward
from .losses import get_loss

__all__ = ["gradient_check", "numerical_gradients"]


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
    eps = check_positive_real(epsilon, "epsilon")
    xp, L = _check_forward_inputs(X, parameters)
    AL, _ = _forward(xp, X, parameters, L, hidden, output)
    Y = prepare_labels(Y, AL, alname="the network output for X")

    def J(params):
        AL, _ = _forward(xp, X, params, L, hidden, output)
        return float(spec.cost(xp, AL, Y))

    approx = {}
    for key in [f"{p}{l}" for l in range(1, L + 1) for p in "Wb"]:
        theta = parameters[key]
        g = np.zeros(tuple(theta.shape))
        for i in range(theta.shape[0]):
            for j in range(theta.shape[1]):
                plus = xp.asarray(theta, copy=True)
                plus[i, j] = theta[i, j] + eps
                minus = xp.asarray(theta, copy=True)
                minus[i, j] = theta[i, j] - eps
                J_plus = J({**parameters, key: plus})
                J_minus = J({**parameters, key: minus})
                g[i, j] = (J_plus - J_minus) / (2 * eps)
        approx["d" + key] = g
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
    L = check_parameters(parameters)
    if not isinstance(grads, dict):
        raise TypeError(f"grads: expected a dict with keys dW1, db1, ..., got {type(grads).__name__}")
    keys = [f"d{p}{l}" for l in range(1, L + 1) for p in "Wb"]
    missing = [k for k in keys if k not in grads]
    if missing:
        raise ValueError(f"grads: missing keys {missing} for an L = {L} layer network")
    for k in keys:
        namespace_of(**{f"grads[{k!r}]": grads[k]}, W1=parameters["W1"])
        if tuple(grads[k].shape) != tuple(parameters[k[1:]].shape):
            raise ValueError(f"grads[{k!r}]: expected shape {tuple(parameters[k[1:]].shape)}, got {tuple(grads[k].shape)}")
    approx = numerical_gradients(parameters, X, Y, epsilon, hidden_activation=hidden_activation,
                                 output_activation=output_activation, loss=loss)
    grad = np.concatenate([to_numpy(grads[k]).astype(np.float64).ravel() for k in keys])
    gradapprox = np.concatenate([approx[k].ravel() for k in keys])
    numerator = np.linalg.norm(grad - gradapprox)
    denominator = np.linalg.norm(grad) + np.linalg.norm(gradapprox)
    difference = float(numerator / denominator) if denominator > 0 else 0.0
    if print_msg:
        if difference > 2e-7:
            print(f"\033[93mThere is a mistake in the backward propagation! difference = {difference}\033[0m")
        else:
            print(f"\033[92mYour backward propagation works perfectly fine! difference = {difference}\033[0m")
    return difference
