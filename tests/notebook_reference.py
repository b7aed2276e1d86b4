"""The course's notebooks in plain numpy, to check bpnet against: nothing here imports bpnet.

Three parts, kept apart:

* the notebooks' test inputs (the ``*_case`` functions), drawn in the notebooks' order --
  ``np.random.seed(s)`` and then their ``randn`` calls -- from a private ``RandomState(s)``,
  which gives the same numbers without touching the global generator;
* the notebooks' own code, transcribed (the ``ref_*`` functions): Step-by-Step (week 4),
  Optimization methods (course 2, week 2), Planar data classification (week 3) and the
  Application notebook (week 4);
* :func:`assert_printed`, which compares numbers with a value the notebooks print, to the
  printed digits.

The values the notebooks print are remembered in the test files, which first check each
one against this reference (a misremembered value fails there, not as a bpnet bug) and
then check bpnet against both.
"""

from __future__ import annotations

import math
import re

import numpy as np

# --------------------------------------------------------------------------- #
# comparing with printed values

_NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")


def printed(text: str):
    """``(values, tolerances)`` of a printed number or array: each value and half a unit of its last digit.

    ``0.`` (how numpy prints an exact zero next to other digits) gets tolerance 0.
    """
    tokens = _NUMBER.findall(text)
    values, tols = [], []
    for tok in tokens:
        mantissa, _, exponent = tok.lower().partition("e")
        decimals = len(mantissa.split(".")[1]) if "." in mantissa else 0
        value = float(tok)
        values.append(value)
        tols.append(0.0 if value == 0.0 else 0.5 * 10.0 ** (int(exponent or 0) - decimals))
    return np.array(values), np.array(tols)


def assert_printed(got, text: str, what: str = "") -> None:
    """``got`` (any array-like of floats or booleans) rounds to the printed ``text`` in every entry."""
    values, tols = printed(text)
    got = np.asarray(got, dtype=np.float64).ravel()
    assert got.size == values.size, f"{what}: {got.size} numbers, the printout has {values.size}"
    off = np.abs(got - values) > tols * (1 + 1e-9) + 1e-15
    assert not off.any(), (f"{what}: {got[off]} do not round to the printed {values[off]} "
                           f"(entries {np.flatnonzero(off).tolist()})")


# --------------------------------------------------------------------------- #
# the notebooks' inputs, in their draw order


def draws(seed: int, *shapes):
    """``np.random.seed(seed)`` then one ``randn(*shape)`` per shape, from a private generator."""
    rng = np.random.RandomState(seed)
    return [rng.randn(*shape) for shape in shapes]


def linear_forward_case():
    return draws(1, (3, 2), (1, 3), (1, 1))  # A, W, b


def linear_activation_forward_case():
    return draws(2, (3, 2), (1, 3), (1, 1))  # A_prev, W, b


def L_model_forward_case():
    X, W1, b1, W2, b2, W3, b3 = draws(6, (5, 4), (4, 5), (4, 1), (3, 4), (3, 1), (1, 3), (1, 1))
    return X, {"W1": W1, "b1": b1, "W2": W2, "b2": b2, "W3": W3, "b3": b3}


def linear_backward_case():
    """The current notebook's: dZ (3, 4), A (5, 4), W (3, 5), b (3, 1)."""
    dZ, A, W, b = draws(1, (3, 4), (5, 4), (3, 5), (3, 1))
    return dZ, (A, W, b)


def linear_backward_case_older():
    """The older notebook's: dZ (1, 2), A (3, 2), W (1, 3), b (1, 1)."""
    dZ, A, W, b = draws(1, (1, 2), (3, 2), (1, 3), (1, 1))
    return dZ, (A, W, b)


def linear_activation_backward_case():
    dA, A, W, b, Z = draws(2, (1, 2), (3, 2), (1, 3), (1, 1), (1, 2))
    return dA, ((A, W, b), Z)


def L_model_backward_case():
    """AL is drawn with randn (1.79 > 1, as the notebook's test); the caches are random, not a forward pass."""
    rng = np.random.RandomState(3)
    AL = rng.randn(1, 2)
    Y = np.array([[1, 0]])
    A1, W1, b1, Z1 = (rng.randn(*s) for s in ((4, 2), (3, 4), (3, 1), (3, 2)))
    A2, W2, b2, Z2 = (rng.randn(*s) for s in ((3, 2), (1, 3), (1, 1), (1, 2)))
    return AL, Y, (((A1, W1, b1), Z1), ((A2, W2, b2), Z2))


def update_parameters_case():
    W1, b1, W2, b2 = draws(2, (3, 4), (3, 1), (1, 3), (1, 1))
    dW1, db1, dW2, db2 = draws(3, (3, 4), (3, 1), (1, 3), (1, 1))
    return {"W1": W1, "b1": b1, "W2": W2, "b2": b2}, {"dW1": dW1, "db1": db1, "dW2": dW2, "db2": db2}


def optimization_case(w2=(3, 3)):
    """The Optimization notebook's ``parameters, grads``: W1 (2, 3) and W2 ``w2`` -- (3, 3) does not chain."""
    W1, b1, W2, b2, dW1, db1, dW2, db2 = draws(1, (2, 3), (2, 1), w2, (3, 1), (2, 3), (2, 1), w2, (3, 1))
    return {"W1": W1, "b1": b1, "W2": W2, "b2": b2}, {"dW1": dW1, "db1": db1, "dW2": dW2, "db2": db2}


def random_mini_batches_case(n_x, m):
    rng = np.random.RandomState(1)
    X = rng.randn(n_x, m)
    return X, rng.randn(1, m) < 0.5


def application_case(real_labels: bool):
    """The Application notebook's model tests: X (10, 10), and Y drawn with randn (real) or fixed 0/1."""
    rng = np.random.RandomState(1)
    X = rng.randn(10, 10)
    Y = rng.randn(1, 10) if real_labels else np.array([[1, 1, 1, 1, 0, 0, 0, 1, 1, 0]])
    return X, Y


# week 3: the notebook's hand-written parameters and caches
PLANAR_W1 = np.array([[-0.00416758, -0.00056267], [-0.02136196, 0.01640271], [-0.01793436, -0.00841747],
                      [0.00502881, -0.01245288]])
PLANAR_W2 = np.array([[-0.01057952, -0.00909008, 0.00551454, 0.02292208]])
PLANAR_TRAINED = {
    "W1": np.array([[-0.00615039, 0.0169021], [-0.02311792, 0.03137121], [-0.0169217, -0.01752545],
                    [0.00935436, -0.05018221]]),
    "b1": np.array([[-8.97523455e-07], [8.15562092e-06], [6.04810633e-07], [-2.54560700e-06]]),
    "W2": np.array([[-0.0104319, -0.04019007, 0.01607211, 0.04440255]]),
    "b2": np.array([[9.14954378e-05]]),
}
PLANAR_GRADS = {
    "dW1": np.array([[0.00023322, -0.00205423], [0.00082222, -0.00700776], [-0.00031831, 0.0028636],
                     [-0.00092857, 0.00809933]]),
    "db1": np.array([[1.05570087e-07], [-3.81814487e-06], [-1.90155145e-07], [5.46467802e-07]]),
    "dW2": np.array([[-1.75740039e-05, 3.70231337e-03, -1.25683095e-03, -2.55715317e-03]]),
    "db2": np.array([[-1.08923140e-05]]),
}
PLANAR_A1 = np.array([[-0.00616578, 0.0020626, 0.00349619], [-0.05225116, 0.02725659, -0.02646251],
                      [-0.02009721, 0.0036869, 0.02883756], [0.02152675, -0.01385234, 0.02599885]])
PLANAR_A2 = np.array([[0.5002307, 0.49985831, 0.50023963]])


def planar_forward_case():
    rng = np.random.RandomState(1)
    X, b1 = rng.randn(2, 3), rng.randn(4, 1)
    return X, {"W1": PLANAR_W1, "b1": b1, "W2": PLANAR_W2, "b2": np.array([[-1.3]])}


def planar_labels_case(m):
    """``np.random.seed(1); X = randn(2, m); Y = randn(1, m) > 0``: boolean labels."""
    rng = np.random.RandomState(1)
    X = rng.randn(2, m)
    return X, rng.randn(1, m) > 0


def planar_cost_labels(m):
    """``np.random.seed(1); Y = randn(1, m) > 0``: the compute_cost tests draw no X first."""
    return np.random.RandomState(1).randn(1, m) > 0


def planar_backward_case():
    """The current notebook's: random parameters and a random cache (its A1 is not tanh(Z1))."""
    rng = np.random.RandomState(1)
    X = rng.randn(3, 7)
    Y = rng.randn(1, 7) > 0
    parameters = {"W1": rng.randn(9, 3), "W2": rng.randn(1, 9), "b1": np.zeros((9, 1)), "b2": np.zeros((1, 1))}
    cache = {"A1": rng.randn(9, 7), "A2": rng.randn(1, 7), "Z1": rng.randn(9, 7), "Z2": rng.randn(1, 7)}
    return parameters, cache, X, Y


def planar_backward_case_older():
    X, Y = planar_labels_case(3)
    parameters = {"W1": PLANAR_W1, "W2": PLANAR_W2, "b1": np.zeros((4, 1)), "b2": np.zeros((1, 1))}
    return parameters, {"A1": PLANAR_A1, "A2": PLANAR_A2}, X, Y


# --------------------------------------------------------------------------- #
# Step-by-Step (course 1, week 4), and the Application notebook's helpers


def ref_sigmoid(Z):
    return 1 / (1 + np.exp(-Z))


def ref_relu(Z):
    return np.maximum(0, Z)


def ref_initialize_parameters(n_x, n_h, n_y, seed=1):
    rng = np.random.RandomState(seed)
    W1 = rng.randn(n_h, n_x) * 0.01
    W2 = rng.randn(n_y, n_h) * 0.01
    return {"W1": W1, "b1": np.zeros((n_h, 1)), "W2": W2, "b2": np.zeros((n_y, 1))}


def ref_initialize_parameters_deep(layer_dims, seed=3, application=False):
    """Step-by-Step: seed 3, ``randn * 0.01``; the Application notebook's helper: seed 1, ``randn / sqrt(n_prev)``."""
    rng = np.random.RandomState(seed)
    parameters = {}
    for l in range(1, len(layer_dims)):
        W = rng.randn(layer_dims[l], layer_dims[l - 1])
        parameters[f"W{l}"] = W / np.sqrt(layer_dims[l - 1]) if application else W * 0.01
        parameters[f"b{l}"] = np.zeros((layer_dims[l], 1))
    return parameters


def ref_linear_forward(A, W, b):
    return np.dot(W, A) + b, (A, W, b)


def ref_linear_activation_forward(A_prev, W, b, activation):
    Z, linear_cache = ref_linear_forward(A_prev, W, b)
    A = ref_sigmoid(Z) if activation == "sigmoid" else ref_relu(Z)
    return A, (linear_cache, Z)


def ref_L_model_forward(X, parameters):
    caches = []
    A = X
    L = len(parameters) // 2
    for l in range(1, L):
        A, cache = ref_linear_activation_forward(A, parameters[f"W{l}"], parameters[f"b{l}"], "relu")
        caches.append(cache)
    AL, cache = ref_linear_activation_forward(A, parameters[f"W{L}"], parameters[f"b{L}"], "sigmoid")
    caches.append(cache)
    return AL, caches


def ref_compute_cost(AL, Y):
    m = Y.shape[1]
    cost = (1.0 / m) * (-np.dot(Y, np.log(AL).T) - np.dot(1 - Y, np.log(1 - AL).T))
    return float(np.squeeze(cost))


def ref_linear_backward(dZ, cache):
    A_prev, W, b = cache
    m = A_prev.shape[1]
    return np.dot(W.T, dZ), np.dot(dZ, A_prev.T) / m, np.sum(dZ, axis=1, keepdims=True) / m


def ref_linear_activation_backward(dA, cache, activation):
    linear_cache, Z = cache
    if activation == "relu":
        dZ = np.array(dA, copy=True)
        dZ[Z <= 0] = 0
    else:
        s = ref_sigmoid(Z)
        dZ = dA * s * (1 - s)
    return ref_linear_backward(dZ, linear_cache)


def ref_L_model_backward(AL, Y, caches):
    grads = {}
    L = len(caches)
    Y = Y.reshape(AL.shape)
    dA = -(np.divide(Y, AL) - np.divide(1 - Y, 1 - AL))
    for l in reversed(range(L)):
        dA, grads[f"dW{l + 1}"], grads[f"db{l + 1}"] = ref_linear_activation_backward(
            dA, caches[l], "sigmoid" if l == L - 1 else "relu")
        grads[f"dA{l}"] = dA
    return grads


def ref_update_parameters(parameters, grads, learning_rate):
    return {k: parameters[k] - learning_rate * grads["d" + k] for k in parameters}


def ref_train(X, Y, parameters, learning_rate, num_iterations):
    """The Application notebook's loop (``two_layer_model`` and ``L_layer_model`` alike): ``(parameters, costs)``."""
    costs = []
    for i in range(num_iterations):
        AL, caches = ref_L_model_forward(X, parameters)
        cost = ref_compute_cost(AL, Y)
        parameters = ref_update_parameters(parameters, ref_L_model_backward(AL, Y, caches), learning_rate)
        if i % 100 == 0 or i == num_iterations:
            costs.append(cost)
    return parameters, costs


def ref_predict(X, y, parameters):
    """The Application notebook's ``predict``: ``(p, the accuracy it prints)``."""
    probas, _ = ref_L_model_forward(X, parameters)
    p = (probas > 0.5).astype(np.float64)
    return p, np.sum((p == y) / X.shape[1])


# --------------------------------------------------------------------------- #
# Optimization methods (course 2, week 2)


def ref_initialize_velocity(parameters):
    return {"d" + k: np.zeros(parameters[k].shape) for k in parameters}


def ref_update_parameters_with_momentum(parameters, grads, v, beta, learning_rate):
    v = {k: beta * v[k] + (1 - beta) * grads[k] for k in v}
    return {k: parameters[k] - learning_rate * v["d" + k] for k in parameters}, v


def ref_update_parameters_with_adam(parameters, grads, v, s, t, learning_rate=0.01, beta1=0.9, beta2=0.999,
                                    epsilon=1e-8):
    v = {k: beta1 * v[k] + (1 - beta1) * grads[k] for k in v}
    v_corrected = {k: v[k] / (1 - beta1**t) for k in v}
    s = {k: beta2 * s[k] + (1 - beta2) * np.power(grads[k], 2) for k in s}
    s_corrected = {k: s[k] / (1 - beta2**t) for k in s}
    new = {k: parameters[k] - learning_rate * v_corrected["d" + k] / (np.sqrt(s_corrected["d" + k]) + epsilon)
           for k in parameters}
    return new, v, s, v_corrected, s_corrected


def ref_random_mini_batches(X, Y, mini_batch_size=64, seed=0):
    m = X.shape[1]
    permutation = list(np.random.RandomState(seed).permutation(m))
    shuffled_X, shuffled_Y = X[:, permutation], Y[:, permutation].reshape((1, m))
    batches = []
    for k in range(math.floor(m / mini_batch_size)):
        cols = slice(k * mini_batch_size, (k + 1) * mini_batch_size)
        batches.append((shuffled_X[:, cols], shuffled_Y[:, cols]))
    if m % mini_batch_size != 0:
        rest = slice(math.floor(m / mini_batch_size) * mini_batch_size, m)
        batches.append((shuffled_X[:, rest], shuffled_Y[:, rest]))
    return batches


def ref_update_lr(learning_rate0, epoch_num, decay_rate):
    return 1 / (1 + decay_rate * epoch_num) * learning_rate0


def ref_schedule_lr_decay(learning_rate0, epoch_num, decay_rate, time_interval=1000):
    return 1 / (1 + decay_rate * np.floor(epoch_num / time_interval)) * learning_rate0


# --------------------------------------------------------------------------- #
# Planar data classification with one hidden layer (course 1, week 3)


def ref_layer_sizes(X, Y):
    return X.shape[0], 4, Y.shape[0]


def ref_forward_propagation(X, parameters):
    Z1 = np.dot(parameters["W1"], X) + parameters["b1"]
    A1 = np.tanh(Z1)
    Z2 = np.dot(parameters["W2"], A1) + parameters["b2"]
    A2 = ref_sigmoid(Z2)
    return A2, {"Z1": Z1, "A1": A1, "Z2": Z2, "A2": A2}


def ref_planar_compute_cost(A2, Y):
    m = Y.shape[1]
    logprobs = np.multiply(np.log(A2), Y) + np.multiply(np.log(1 - A2), 1 - Y)
    return float(np.squeeze(-np.sum(logprobs) / m))


def ref_backward_propagation(parameters, cache, X, Y):
    m = X.shape[1]
    A1, A2 = cache["A1"], cache["A2"]
    dZ2 = A2 - Y
    dW2 = np.dot(dZ2, A1.T) / m
    db2 = np.sum(dZ2, axis=1, keepdims=True) / m
    dZ1 = np.dot(parameters["W2"].T, dZ2) * (1 - np.power(A1, 2))
    dW1 = np.dot(dZ1, X.T) / m
    db1 = np.sum(dZ1, axis=1, keepdims=True) / m
    return {"dW1": dW1, "db1": db1, "dW2": dW2, "db2": db2}


def ref_nn_model(X, Y, n_h, num_iterations=10000, seed=3):
    """``(parameters, {i: cost})``: the notebook's loop, the cost of every 1000th iteration (what it prints)."""
    n_x, _, n_y = ref_layer_sizes(X, Y)
    parameters = ref_initialize_parameters(n_x, n_h, n_y, seed=seed)
    printed_costs = {}
    for i in range(num_iterations):
        A2, cache = ref_forward_propagation(X, parameters)
        cost = ref_planar_compute_cost(A2, Y)
        grads = ref_backward_propagation(parameters, cache, X, Y)
        parameters = ref_update_parameters(parameters, grads, 1.2)
        if i % 1000 == 0:
            printed_costs[i] = cost
    return parameters, printed_costs


def ref_planar_predict(parameters, X):
    A2, _ = ref_forward_propagation(X, parameters)
    return A2 > 0.5
