"""The course's week-3 network, "Planar data classification with one hidden layer", on bpnet's L-layer code.

``n_x -> n_h`` (tanh) ``-> n_y`` (sigmoid), binary cross-entropy, full-batch
gradient descent with learning rate 1.2.  Names, argument order, the cache
dict ``{"Z1", "A1", "Z2", "A2"}``, the ``grads`` keys and the numbers are the
notebook's; the math is bpnet's, with L = 2: the forward and backward passes
of :mod:`bpnet.nn._kernels`, the cost of :func:`bpnet.compute_cost`, the
update of :func:`bpnet.update_parameters` and the loop of
:func:`bpnet.L_layer_model`.  ``bpnet train --data flower --layers 4
--hidden-activation tanh --lr 1.2`` trains this network on the notebook's data.

Several names repeat the Step-by-Step API's with the week-3 signatures
(``initialize_parameters`` seeds 2, ``predict(parameters, X)``), so they live
here rather than at the top level.
"""

from __future__ import annotations

import numpy as np

from . import _validate as v
from . import nn, optim
from .backends import namespace_of
from .nn import _kernels
from .nn.course import check_forward_inputs
from .train import L_layer_model

__all__ = ["layer_sizes", "initialize_parameters", "forward_propagation", "compute_cost", "backward_propagation",
           "update_parameters", "nn_model", "predict", "N_H"]

#: the hidden size ``layer_sizes`` returns, as the notebook's
N_H = 4


def _tanh_sigmoid():
    """The hidden and output activations (looked up at each call: the registry is the one definition)."""
    return nn.get_activation("tanh"), nn.get_activation("sigmoid")


def _shape(a, name):
    if v.is_array(a):
        return tuple(a.shape)
    try:
        return np.shape(a)
    except ValueError as exc:  # e.g. a ragged nested list
        raise TypeError(f"{name}: expected an array, got a {type(a).__name__} that is not one ({exc})") from None


def layer_sizes(X, Y):
    """``(n_x, 4, n_y)``: the rows of ``X``, the notebook's hidden size, the rows of ``Y`` (Python ints).

    Parameters
    ----------
    X : array, shape (n_x, m)
    Y : array, shape (n_y, m), or (m,) for one output unit
    """
    sx, sy = _shape(X, "X"), _shape(Y, "Y")
    if len(sx) != 2:
        raise ValueError(f"X: expected a 2-D array of shape (n_x, m), got shape {sx}")
    if len(sy) not in (1, 2) or sy[-1] != sx[1]:
        raise ValueError(f"Y: expected shape (n_y, {sx[1]}) like the columns of X of shape {sx}, got {sy}")
    return int(sx[0]), N_H, int(sy[0]) if len(sy) == 2 else 1


def initialize_parameters(n_x, n_h, n_y, *, seed=2, dtype="float64", backend=None):
    """``W1 = randn(n_h, n_x) * 0.01``, ``b1 = 0``, ``W2 = randn(n_y, n_h) * 0.01``, ``b2 = 0``, the notebook's numbers.

    The notebook seeds the global generator with 2 (inside the function in its
    older version, in the test in the newer); here the draws come from a
    private ``RandomState(seed)``.  Returns the dict ``W1, b1, W2, b2``.
    """
    return nn.initialize_parameters(n_x, n_h, n_y, seed=seed, dtype=dtype, backend=backend)


def _two_layers(parameters) -> int:
    L = v.n_layers(parameters)
    if L != 2:
        raise ValueError(f"parameters: expected W1, b1, W2, b2 (one hidden layer), got {L} layers")
    return L


def forward_propagation(X, parameters):
    """``Z1 = W1 X + b1, A1 = tanh(Z1), Z2 = W2 A1 + b2, A2 = sigmoid(Z2)``.

    Parameters
    ----------
    X : array, shape (n_x, m)
    parameters : dict ``W1, b1, W2, b2``

    Returns
    -------
    A2 : array, shape (n_y, m)
    cache : dict ``{"Z1", "A1", "Z2", "A2"}``
    """
    xp, L, X = check_forward_inputs(X, parameters)
    _two_layers(parameters)
    A2, ((_, Z1), ((A1, _, _), Z2)) = _kernels.forward(xp, X, parameters, L, *_tanh_sigmoid())
    return A2, {"Z1": Z1, "A1": A1, "Z2": Z2, "A2": A2}


def compute_cost(A2, Y):
    """``J = -(1/m) sum(Y log A2 + (1 - Y) log(1 - A2))`` as a Python float, as the notebook returns it.

    ``A2`` may be ``(1, m)`` or ``(m,)``; ``Y`` ``(1, m)`` or ``(m,)``, of
    floating, integer or boolean dtype.  This is :func:`bpnet.compute_cost`
    (its checks and warnings included), brought to the host.
    """
    if v.is_array(A2) and A2.ndim == 1:
        A2 = namespace_of(A2=A2).reshape(A2, (1, A2.shape[0]))
    return float(nn.compute_cost(A2, Y))


def _cached(cache, parameters, m):
    """``(A1, A2)`` from the notebook's cache dict, shaped for ``parameters`` and m examples."""
    if not isinstance(cache, dict):
        raise TypeError(f"cache: expected the dict {{'Z1', 'A1', 'Z2', 'A2'}} from forward_propagation, "
                        f"got {type(cache).__name__}")
    out = []
    for key, W in (("A1", parameters["W1"]), ("A2", parameters["W2"])):
        if key not in cache:
            raise ValueError(f"cache: missing key {key!r} (forward_propagation returns Z1, A1, Z2, A2)")
        A = cache[key]
        v.check_float_matrix(A, f"cache[{key!r}]")
        namespace_of(**{"parameters['W1']": parameters["W1"], f"cache[{key!r}]": A})
        v.same_dtype([("parameters['W1']", parameters["W1"]), (f"cache[{key!r}]", A)])
        if tuple(A.shape) != (W.shape[0], m):
            raise ValueError(f"cache[{key!r}]: expected shape ({W.shape[0]}, {m}) (rows of W{key[1]}, columns of X), "
                             f"got {tuple(A.shape)}")
        out.append(A)
    return out


def backward_propagation(parameters, cache, X, Y):
    """The notebook's gradients, from the cached ``A1`` and ``A2``.

    ``dZ2 = A2 - Y``, ``dW2 = dZ2 A1^T / m``, ``db2 = sum(dZ2) / m``,
    ``dZ1 = W2^T dZ2 * (1 - A1^2)``, ``dW1 = dZ1 X^T / m``, ``db1 = sum(dZ1) / m``
    -- the general backward pass with L = 2, tanh's derivative taken from
    ``A1`` as the notebook does (so also when the cache's ``A1`` is not
    ``tanh(Z1)``, as in its test).

    Parameters
    ----------
    parameters : dict ``W1, b1, W2, b2``
    cache : dict with ``A1`` (n_h, m) and ``A2`` (n_y, m), from :func:`forward_propagation`
    X : array, shape (n_x, m)
    Y : array, shape (n_y, m), or (m,); floating, integer or boolean

    Returns
    -------
    grads : dict ``dW1, db1, dW2, db2``
    """
    xp, L, X = check_forward_inputs(X, parameters)
    _two_layers(parameters)
    A1, A2 = _cached(cache, parameters, X.shape[1])
    Y = v.prepare_labels(Y, A2, alname="cache['A2']")
    caches = [((X, parameters["W1"], parameters["b1"]), cache.get("Z1")),
              ((A1, parameters["W2"], parameters["b2"]), cache.get("Z2"))]
    grads = _kernels.backward(xp, A2, Y, caches, *_tanh_sigmoid(), nn.get_loss("binary_crossentropy"), fused=True,
                              need_dA0=False, at_z=False)  # g' from the cached A1, as the notebook
    return {k: grads[k] for k in ("dW1", "db1", "dW2", "db2")}


def update_parameters(parameters, grads, learning_rate=1.2):
    """``theta -= learning_rate * d theta``: :func:`bpnet.update_parameters` at the notebook's default rate."""
    return optim.update_parameters(parameters, grads, learning_rate)


def nn_model(X, Y, n_h, num_iterations=10000, print_cost=False, *, seed=3, learning_rate=1.2, dtype=None,
             backend=None):
    """Train the notebook's network: :func:`initialize_parameters`, then ``num_iterations`` gradient-descent steps.

    ``seed`` says which notebook's numbers come out.  The default 3 is the
    current notebook's test, which calls ``np.random.seed(3)`` before
    ``nn_model`` (whose ``initialize_parameters`` then draws from the global
    generator).  ``seed=2`` is the older notebook, whose
    ``initialize_parameters`` calls ``np.random.seed(2)`` itself, overriding
    the ``np.random.seed(3)`` at the top of its ``nn_model``: its printed run
    on the flower data (``bpnet.io.make_flower()``) is ``nn_model(X, Y, 4,
    print_cost=True, seed=2)``.

    Parameters
    ----------
    X : array, shape (n_x, m)
    Y : array, shape (n_y, m), or (m,); 0/1 labels (others train with a :class:`bpnet.CourseInputWarning`)
    n_h : int > 0
    num_iterations : int > 0
    print_cost : bool
        Print ``Cost after iteration i: J`` (``%f``) every 1000 iterations, as the notebook.
    seed : int
    learning_rate : float > 0
    dtype, backend : as for :func:`bpnet.L_layer_model` (the arrays stay where X lives)

    Returns
    -------
    parameters : dict ``W1, b1, W2, b2``
    """
    n_x, _, n_y = layer_sizes(X, Y)
    n_h = v.integer(n_h, "n_h", low=1)

    def show(i, cost):
        if i % 1000 == 0:
            print("Cost after iteration %i: %f" % (i, cost))

    parameters, _ = L_layer_model(X, Y, [n_x, n_h, n_y], learning_rate, num_iterations, False,
                                  hidden_activation="tanh", output_activation="sigmoid", loss="binary_crossentropy",
                                  init="course", seed=seed, dtype=dtype, backend=backend, print_every=1000,
                                  callback=show if print_cost else None)
    return parameters


def predict(parameters, X):
    """``A2 > 0.5``: boolean predictions ``(n_y, m)``, as the notebook (note the argument order, the week-3 one)."""
    if isinstance(X, dict) and not isinstance(parameters, dict):
        raise TypeError("parameters: expected the dict W1, b1, W2, b2 as the first argument: the week-3 notebook's "
                        "predict(parameters, X) (bpnet.predict takes (X, parameters))")
    A2, _ = forward_propagation(X, parameters)
    return A2 > 0.5
