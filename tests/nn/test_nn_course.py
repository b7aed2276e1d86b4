"""The course's Step-by-Step API (bpnet.nn.course): hand-worked values, shapes, dtype and device kept;
its bad inputs refused before any math."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from badinput import (
    DIMS,
    M,
    X_with,
    api_context,
    check_table,
    default_and_device1,
    host,
    layer_cache,
    numpy_and_strict,
    replaced,
    small_net,
    with_entry,
    without,
)
from conftest import all_finite, assert_on, rtol_for, saturated_fraction, to_np

import bpnet
from bpnet import backends

# --------------------------------------------------------------------------- #
# forward


# A (3, 2), W (2, 3), b (2, 1)
A_H = np.array([[1.0, 2.0], [0.0, -1.0], [3.0, 1.0]])
W_H = np.array([[1.0, -1.0, 0.5], [0.0, 2.0, -1.0]])
b_H = np.array([[0.5], [-1.0]])

# Z = W A + b:
#   row 0: col 0: 1*1 + -1*0 + .5*3 + .5 = 3.0 ; col 1: 2 + 1 + .5 + .5 = 4.0
#   row 1: col 0: 0 + 0 - 3 - 1 = -4.0      ; col 1: 0 - 2 - 1 - 1 = -4.0
Z_H = np.array([[3.0, 4.0], [-4.0, -4.0]])


def test_linear_forward(bk, dtype):
    A, W, b = (bk.asarray(x, dtype=dtype) for x in (A_H, W_H, b_H))
    Z, cache = bpnet.linear_forward(A, W, b)
    assert_on(bk, Z, dtype, (2, 2))
    np.testing.assert_allclose(to_np(Z), Z_H, rtol=rtol_for(dtype))
    assert cache[0] is A and cache[1] is W and cache[2] is b


@pytest.mark.parametrize("activation, expected", [
    ("relu", [[3.0, 4.0], [0.0, 0.0]]),
    ("linear", Z_H.tolist()),
    ("sigmoid", (1 / (1 + np.exp(-Z_H))).tolist()),
])
def test_linear_activation_forward(bk, dtype, activation, expected):
    A, W, b = (bk.asarray(x, dtype=dtype) for x in (A_H, W_H, b_H))
    A_out, ((A_c, W_c, b_c), Z) = bpnet.linear_activation_forward(A, W, b, activation)
    assert_on(bk, A_out, dtype, (2, 2))
    assert A_c is A and W_c is W and b_c is b
    np.testing.assert_allclose(to_np(Z), Z_H, rtol=rtol_for(dtype))
    np.testing.assert_allclose(to_np(A_out), expected, rtol=rtol_for(dtype) * 10)


def _tiny_parameters(bk, dtype):
    # X (2, 3); W1 (2, 2), b1 (2, 1); W2 (1, 2), b2 (1, 1)
    p = {"W1": np.array([[1.0, 0.0], [0.0, -1.0]]), "b1": np.array([[0.0], [0.0]]),
         "W2": np.array([[1.0, 2.0]]), "b2": np.array([[-1.0]])}
    return {k: bk.asarray(v, dtype=dtype) for k, v in p.items()}


def test_L_model_forward_hand_worked(bk, dtype):
    X = bk.asarray(np.array([[1.0, -1.0, 2.0], [1.0, -2.0, 0.0]]), dtype=dtype)
    p = _tiny_parameters(bk, dtype)
    AL, caches = bpnet.L_model_forward(X, p)
    # Z1 = W1 X = [[1, -1, 2], [-1, 2, 0]] ; A1 = relu = [[1, 0, 2], [0, 2, 0]]
    # Z2 = [1, 2] A1 - 1 = [1 - 1, 4 - 1, 2 - 1] = [0, 3, 1]
    assert len(caches) == 2
    np.testing.assert_allclose(to_np(caches[0][1]), [[1, -1, 2], [-1, 2, 0]])
    np.testing.assert_allclose(to_np(caches[1][0][0]), [[1, 0, 2], [0, 2, 0]])
    np.testing.assert_allclose(to_np(caches[1][1]), [[0, 3, 1]])
    assert_on(bk, AL, dtype, (1, 3))
    np.testing.assert_allclose(to_np(AL), 1 / (1 + np.exp(-np.array([[0.0, 3.0, 1.0]]))), rtol=rtol_for(dtype) * 10)
    # cache layout: ((A_prev, W, b), Z)
    assert caches[0][0][0] is X and caches[0][0][1] is p["W1"] and caches[1][0][2] is p["b2"]


def test_model_forward_is_the_pep8_alias():
    assert bpnet.model_forward is bpnet.L_model_forward
    assert bpnet.model_backward is bpnet.L_model_backward


def test_the_course_forward_takes_what_fit_takes(bk):
    """L_model_forward and predict convert X as MLP.fit and L_layer_model do: a list, ints, another precision
    or another device give the numbers of the same values as a float array on the parameters' backend."""
    n = small_net(bk)
    want = to_np(bpnet.L_model_forward(n.X, n.params)[0])
    host = to_np(n.X)
    for X in (host.tolist(), host, host.astype(np.float32), backends.get("numpy").asarray(host)):
        AL, caches = bpnet.L_model_forward(X, n.params)
        assert_on(n.bk, AL, "float64", (1, M))
        np.testing.assert_allclose(to_np(AL), want, rtol=1e-6)
    half = host.astype(np.float16)
    np.testing.assert_allclose(to_np(bpnet.L_model_forward(half, n.params)[0]),
                               to_np(bpnet.L_model_forward(half.astype(np.float64), n.params)[0]), rtol=1e-12)
    ints = np.arange(3 * M).reshape(3, M) % 3
    np.testing.assert_array_equal(to_np(bpnet.predict(ints, n.params)),
                                  to_np(bpnet.predict(n.bk.asarray(ints.astype(np.float64)), n.params)))
    model = bpnet.MLP(DIMS, dtype="float64", backend=n.bk)
    model.fit(ints, np.array([0, 1, 1, 0, 1]), epochs=1, batch_size=M)  # fit and predict take the same X
    assert tuple(model.predict(ints).shape) == (M,)


# --------------------------------------------------------------------------- #
# cost


def test_compute_cost_course_value(bk):
    # course test case: Y = [1, 1, 0], AL = [.8, .9, .4]
    # J = -(ln .8 + ln .9 + ln .6) / 3 = (0.22314 + 0.10536 + 0.51083) / 3 = 0.27978
    Y = bk.asarray(np.array([[1, 1, 0]]))  # integer labels are cast to AL's dtype
    AL = bk.asarray(np.array([[0.8, 0.9, 0.4]]))
    cost = bpnet.compute_cost(AL, Y)
    assert_on(bk, cost, "float64", ())
    assert float(cost) == pytest.approx(0.2797765635793422, rel=1e-12)


def test_compute_cost_accepts_1d_and_bool_labels(bk, dtype):
    AL = bk.asarray(np.array([[0.8, 0.9, 0.4]]), dtype=dtype)
    for Y in (bk.asarray(np.array([1, 1, 0])), bk.asarray(np.array([True, True, False])),
              bk.asarray(np.array([[1.0, 1.0, 0.0]]), dtype=dtype)):
        cost = bpnet.compute_cost(AL, Y)
        assert_on(bk, cost, dtype, ())
        assert float(cost) == pytest.approx(0.2797765635793422, rel=1e-6)


# --------------------------------------------------------------------------- #
# backward


def test_linear_backward_hand_worked(bk, dtype):
    A, W, b = (bk.asarray(x, dtype=dtype) for x in (A_H, W_H, b_H))
    dZ = bk.asarray(np.array([[1.0, -1.0], [2.0, 0.0]]), dtype=dtype)
    dA_prev, dW, db = bpnet.linear_backward(dZ, (A, W, b))
    # dW = dZ A^T / m, m = 2: dZ A^T = [[1-2, 0+1, 3-1], [2, 0, 6]] = [[-1, 1, 2], [2, 0, 6]]
    np.testing.assert_allclose(to_np(dW), [[-0.5, 0.5, 1.0], [1.0, 0.0, 3.0]], rtol=rtol_for(dtype))
    # db = row sums / m = [[0], [1]]
    np.testing.assert_allclose(to_np(db), [[0.0], [1.0]], rtol=rtol_for(dtype))
    # dA_prev = W^T dZ = [[1, -1], [-1+4, 1], [.5-2, -.5]]
    np.testing.assert_allclose(to_np(dA_prev), [[1.0, -1.0], [3.0, 1.0], [-1.5, -0.5]], rtol=rtol_for(dtype))
    assert_on(bk, dA_prev, dtype, (3, 2))
    assert_on(bk, dW, dtype, (2, 3))
    assert_on(bk, db, dtype, (2, 1))


def test_linear_activation_backward_relu(bk, dtype):
    A, W, b = (bk.asarray(x, dtype=dtype) for x in (A_H, W_H, b_H))
    _, cache = bpnet.linear_activation_forward(A, W, b, "relu")
    dA = bk.asarray(np.array([[1.0, -1.0], [2.0, 5.0]]), dtype=dtype)
    dA_prev, dW, db = bpnet.linear_activation_backward(dA, cache, "relu")
    # Z = [[3, 4], [-4, -4]] -> dZ = dA * 1[Z > 0] = [[1, -1], [0, 0]]
    ref = bpnet.linear_backward(bk.asarray(np.array([[1.0, -1.0], [0.0, 0.0]]), dtype=dtype), cache[0])
    for got, want in zip((dA_prev, dW, db), ref):
        np.testing.assert_allclose(to_np(got), to_np(want), rtol=rtol_for(dtype))


def test_L_model_backward_keys_and_shapes(bk, dtype, rng):
    dims = [4, 5, 3, 1]
    p = bpnet.initialize_parameters_deep(dims, init="he", dtype=dtype, backend=bk)
    X = bk.asarray(rng.normal(size=(4, 7)), dtype=dtype)
    Y = bk.asarray(rng.integers(0, 2, size=(1, 7)))
    AL, caches = bpnet.L_model_forward(X, p)
    grads = bpnet.L_model_backward(AL, Y, caches)
    assert set(grads) == {"dA0", "dA1", "dA2", "dW1", "dW2", "dW3", "db1", "db2", "db3"}
    for l in (1, 2, 3):
        assert_on(bk, grads[f"dW{l}"], dtype, p[f"W{l}"].shape)
        assert_on(bk, grads[f"db{l}"], dtype, p[f"b{l}"].shape)
        assert_on(bk, grads[f"dA{l - 1}"], dtype, (dims[l - 1], 7))


def test_L_model_backward_course_dAL_convention(bk):
    # one layer, sigmoid: grads["dA0"] = W^T dZ with dZ = dAL * s(1-s) and NO 1/m
    p = {"W1": bk.asarray(np.array([[0.5, -0.5]])), "b1": bk.asarray(np.array([[0.0]]))}
    X = bk.asarray(np.array([[1.0, 2.0], [0.0, 2.0]]))  # Z = [0.5, 0] -> A = [s(.5), .5]
    Y = bk.asarray(np.array([[1.0, 0.0]]))
    AL, caches = bpnet.L_model_forward(X, p)
    grads = bpnet.L_model_backward(AL, Y, caches)
    a = to_np(AL)
    dAL = -(np.array([[1.0, 0.0]]) / a - (1 - np.array([[1.0, 0.0]])) / (1 - a))
    dZ = dAL * a * (1 - a)  # equals AL - Y
    np.testing.assert_allclose(dZ, a - np.array([[1.0, 0.0]]), rtol=1e-12)
    np.testing.assert_allclose(to_np(grads["dA0"]), np.array([[0.5], [-0.5]]) @ dZ, rtol=1e-12)
    np.testing.assert_allclose(to_np(grads["dW1"]), dZ @ np.array([[1.0, 2.0], [0.0, 2.0]]).T / 2, rtol=1e-12)
    np.testing.assert_allclose(to_np(grads["db1"]), dZ.sum(axis=1, keepdims=True) / 2, rtol=1e-12)


@pytest.mark.parametrize("output, loss", [("sigmoid", "binary_crossentropy"),
                                          ("softmax", "categorical_crossentropy"),
                                          ("linear", "mse")])
def test_fused_and_course_output_gradients_agree(bk, dtype, rng, output, loss):
    n_out = 3 if output == "softmax" else 1
    dims = [4, 6, n_out]
    p = bpnet.initialize_parameters_deep(dims, init="xavier", seed=2, dtype=dtype, backend=bk)
    X = bk.asarray(rng.normal(size=(4, 9)), dtype=dtype)
    if output == "softmax":
        Y_h = np.eye(3)[:, rng.integers(0, 3, size=9)]
    elif output == "sigmoid":
        Y_h = rng.integers(0, 2, size=(1, 9)).astype(float)
    else:
        Y_h = rng.normal(size=(1, 9))
    Y = bk.asarray(Y_h, dtype=dtype)
    kw = dict(hidden_activation="tanh", output_activation=output)
    AL, caches = bpnet.L_model_forward(X, p, **kw)
    course = bpnet.L_model_backward(AL, Y, caches, loss=loss, **kw)
    fused = bpnet.L_model_backward(AL, Y, caches, loss=loss, fused=True, **kw)
    assert course.keys() == fused.keys()
    tol = 1e-10 if dtype == "float64" else 2e-4
    for k in course:
        np.testing.assert_allclose(to_np(fused[k]), to_np(course[k]), rtol=tol, atol=tol)


def test_fused_gradient_stays_finite_when_saturated(bk, dtype):
    # a huge pre-activation saturates sigmoid to exactly 1.0: the course's dAL divides by
    # 1 - AL (clipped, so large but finite); the fused dZ = AL - Y is exact
    p = {"W1": bk.asarray(np.array([[1e4]]), dtype=dtype), "b1": bk.asarray(np.array([[0.0]]), dtype=dtype)}
    X = bk.asarray(np.array([[1.0, -1.0]]), dtype=dtype)
    Y = bk.asarray(np.array([[0.0, 1.0]]), dtype=dtype)
    AL, caches = bpnet.L_model_forward(X, p)
    for fused in (False, True):
        grads = bpnet.L_model_backward(AL, Y, caches, fused=fused)
        assert all(np.all(np.isfinite(to_np(g))) for g in grads.values())
    grads = bpnet.L_model_backward(AL, Y, caches, fused=True)
    # dZ = AL - Y = [1, -1]; dW = dZ X^T / 2 = (1*1 + -1*-1) / 2 = 1
    np.testing.assert_allclose(to_np(grads["dW1"]), [[1.0]])


# --------------------------------------------------------------------------- #
# predict


def test_predict_sigmoid_softmax_linear(bk, dtype):
    X = bk.asarray(np.array([[1.0, -1.0, 2.0], [1.0, -2.0, 0.0]]), dtype=dtype)
    p = _tiny_parameters(bk, dtype)
    # AL = sigmoid([0, 3, 1]) = [.5, .95, .73] -> AL > .5 -> [0, 1, 1]
    pred = bpnet.predict(X, p)
    assert_on(bk, pred, dtype, (1, 3))
    np.testing.assert_array_equal(to_np(pred), [[0.0, 1.0, 1.0]])
    np.testing.assert_array_equal(to_np(bpnet.predict(X, p, threshold=0.9)), [[0.0, 1.0, 0.0]])
    np.testing.assert_allclose(to_np(bpnet.predict(X, p, output_activation="linear")), [[0.0, 3.0, 1.0]])
    p3 = dict(p, W2=bk.asarray(np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]]), dtype=dtype),
              b2=bk.asarray(np.zeros((3, 1)), dtype=dtype))
    # A1 = [[1, 0, 2], [0, 2, 0]] -> Z2 columns (1, 0, .5), (0, 2, 1), (2, 0, 1) -> classes 0, 1, 0
    cls = bpnet.predict(X, p3, output_activation="softmax")
    assert tuple(cls.shape) == (1, 3)
    np.testing.assert_array_equal(to_np(cls), [[0, 1, 0]])


# --------------------------------------------------------------------------- #
# the course's loop at a huge learning rate: saturated, never NaN


def test_huge_learning_rate_on_the_course_path_never_nans(bk, dtype, cancer):
    """The course's loop with the division-based dAL (fused=False) at lr = 1e3: saturated, finite."""
    X = bk.asarray(cancer.X_train, dtype=dtype)
    Y = bk.asarray(cancer.Y_train, dtype=dtype)
    params = bpnet.initialize_parameters_deep([cancer.n_x, 8, 1], init="he", seed=2, dtype=dtype, backend=bk)
    costs = []
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(25):
            AL, caches = bpnet.L_model_forward(X, params)
            costs.append(float(bpnet.compute_cost(AL, Y)))
            grads = bpnet.L_model_backward(AL, Y, caches)  # dAL = -(Y/AL - (1-Y)/(1-AL)), clipped
            assert all(all_finite(g) for g in grads.values())
            params = bpnet.update_parameters(params, grads, 1e3)
        AL, _ = bpnet.L_model_forward(X, params)
    assert all(math.isfinite(c) for c in costs), costs
    assert all(all_finite(v) for v in params.values())
    assert saturated_fraction(AL) > 0.5, saturated_fraction(AL)


# --------------------------------------------------------------------------- #
# bad inputs: the exception, a message that helps, no math, no file written (badinput.py)


#: each case: (function of a small network n on the backend under test, exception type, regex on the message)
PER_BACKEND = [
    # ---- X against W1 ---------------------------------------------------------------
    pytest.param(
        lambda n: bpnet.L_model_forward(n.bk.asarray(host((2, M))), n.params),
        ValueError, r"^X: expected shape \(3, m\) to match W1 of shape \(4, 3\), got \(2, 5\)$",
        id="forward-X-rows-not-matching-W1",
    ),
    pytest.param(
        lambda n: bpnet.L_model_forward(n.bk.asarray(host((M, 3))), n.params),
        ValueError, r"^X: expected shape \(3, m\) .*got \(5, 3\); it looks transposed.*pass X\.T",
        id="forward-X-transposed-hint",
    ),
    pytest.param(
        lambda n: bpnet.predict(n.bk.asarray(host((M, 3))), n.params),
        ValueError, r"^X: expected shape \(3, m\) .*got \(5, 3\); it looks transposed",
        id="predict-X-transposed-hint",
    ),
    pytest.param(
        lambda n: bpnet.predict(n.X, n.params, threshold="0.5"),
        TypeError, r"^threshold: expected a real number in \[0, 1\], got str '0\.5'",
        id="predict-threshold-string",
    ),
    pytest.param(
        lambda n: bpnet.L_model_forward(n.bk.asarray(host((3,))), n.params),
        ValueError, r"^X: expected a 2-D array, got shape \(3,\)$",
        id="forward-X-1d",
    ),
    # ---- X dtype and values ---------------------------------------------------------
    pytest.param(
        lambda n: bpnet.L_model_forward(n.bk.asarray(np.ones((3, M), dtype=np.complex128)), n.params),
        TypeError, r"^X: expected real numbers \(a floating or integer dtype\), got complex128",
        id="forward-X-complex",
    ),
    pytest.param(
        lambda n: bpnet.L_model_forward(n.bk.asarray(np.ones((3, M), dtype=bool)), n.params),
        TypeError, r"^X: expected real numbers .*got bool",
        id="forward-X-bool",
    ),
    pytest.param(
        lambda n: bpnet.L_model_forward(X_with(n, {(1, 2): math.nan}), n.params),
        ValueError, r"^X: expected finite values, got 1 NaN and 0 inf in an array of shape \(3, 5\)$",
        id="forward-X-nan",
    ),
    pytest.param(
        lambda n: bpnet.L_model_forward(X_with(n, {(0, 0): math.inf, (2, 4): -math.inf}), n.params),
        ValueError, r"^X: expected finite values, got 0 NaN and 2 inf",
        id="forward-X-inf",
    ),
    pytest.param(
        lambda n: bpnet.L_model_forward(n.bk.asarray(np.zeros((3, 0))), n.params),
        ValueError, r"^X: expected a non-empty array, got shape \(3, 0\) \(m .*is 0\)",
        id="forward-X-empty-m0",
    ),
    # ---- parameters -----------------------------------------------------------------
    pytest.param(
        lambda n: bpnet.L_model_forward(n.X, without(n.params, "b2")),
        ValueError, r"^parameters: missing keys \['b2'\]",
        id="params-missing-b2",
    ),
    pytest.param(
        lambda n: bpnet.L_model_forward(n.X, without(n.params, "b1")),
        ValueError, r"^parameters: missing keys \['b1'\]",
        id="params-missing-b1",
    ),
    pytest.param(
        lambda n: bpnet.L_model_forward(n.X, {}),
        ValueError, r"^parameters: expected keys W1, b1, \.\.\., WL, bL, got keys \[\]",
        id="params-empty-dict",
    ),
    pytest.param(
        lambda n: bpnet.L_model_forward(n.X, list(n.params.values())),
        TypeError, r"^parameters: expected a dict with keys W1, b1, \.\.\., WL, bL, got list",
        id="params-not-a-dict",
    ),
    pytest.param(
        lambda n: bpnet.L_model_forward(n.X, replaced(n.params, W2=n.bk.asarray(host((1, 5))))),
        ValueError, r"^parameters\['W2'\]: expected 4 columns \(W1 has shape \(4, 3\)\), got shape \(1, 5\)",
        id="params-W2-columns-not-W1-rows",
    ),
    pytest.param(
        lambda n: bpnet.L_model_forward(n.X, replaced(n.params, b1=n.bk.asarray(np.zeros((1, 4))))),
        ValueError, r"^parameters\['b1'\]: expected shape \(4, 1\) to match W1 of shape \(4, 3\), got \(1, 4\)",
        id="params-b1-transposed",
    ),
    pytest.param(
        lambda n: bpnet.L_model_forward(n.X, replaced(n.params, b2=n.bk.asarray(np.zeros((2, 1))))),
        ValueError, r"^parameters\['b2'\]: expected shape \(1, 1\) .*got \(2, 1\)",
        id="params-b2-wrong-rows",
    ),
    pytest.param(
        lambda n: bpnet.L_model_forward(n.X, replaced(n.params, b1=n.bk.asarray(np.zeros(4)))),
        ValueError, r"^parameters\['b1'\]: expected a 2-D array, got shape \(4,\)",
        id="params-b1-1d",
    ),
    pytest.param(
        lambda n: bpnet.L_model_forward(n.X, replaced(n.params, W1=n.bk.asarray(np.ones((4, 3), dtype=np.int64)))),
        TypeError, r"^parameters\['W1'\]: expected a real floating dtype .*got int64",
        id="params-W1-integer",
    ),
    pytest.param(
        lambda n: bpnet.L_model_forward(n.X, replaced(n.params, W2=n.bk.asarray(host((1, 4)), dtype="float32"))),
        TypeError, r"float32.*float64|float64.*float32",
        id="params-mixed-dtypes",
    ),
    pytest.param(
        lambda n: bpnet.L_model_forward(n.X, replaced(n.params, W3=n.bk.asarray(host((1, 1))))),
        ValueError, r"^parameters: missing keys \['b3'\]",
        id="params-W3-without-b3",
    ),
    # ---- activation and loss names --------------------------------------------------
    pytest.param(
        lambda n: bpnet.L_model_forward(n.X, n.params, hidden_activation="relu6"),
        ValueError, r"^hidden_activation: unknown activation 'relu6'; expected one of 'relu', .*'softmax'",
        id="forward-unknown-hidden-activation",
    ),
    pytest.param(
        lambda n: bpnet.L_model_forward(n.X, n.params, output_activation="Sigmoid"),
        ValueError, r"^output_activation: unknown activation 'Sigmoid'; expected one of .*'sigmoid'",
        id="forward-unknown-output-activation",
    ),
    pytest.param(
        lambda n: bpnet.L_model_forward(n.X, n.params, output_activation=None),
        ValueError, r"^output_activation: unknown activation None",
        id="forward-output-activation-None",
    ),
    pytest.param(
        lambda n: bpnet.L_model_backward(n.AL, n.Y, n.caches, hidden_activation="gelu"),
        ValueError, r"^hidden_activation: unknown activation 'gelu'",
        id="backward-unknown-hidden-activation",
    ),
    pytest.param(
        lambda n: bpnet.L_model_backward(n.AL, n.Y, n.caches, output_activation="logistic"),
        ValueError, r"^output_activation: unknown activation 'logistic'",
        id="backward-unknown-output-activation",
    ),
    pytest.param(
        lambda n: bpnet.compute_cost(n.AL, n.Y, loss="hinge"),
        ValueError, r"^loss: unknown loss 'hinge'; expected one of 'binary_crossentropy', 'categorical_crossentropy', 'mse'",
        id="cost-unknown-loss",
    ),
    pytest.param(
        lambda n: bpnet.L_model_backward(n.AL, n.Y, n.caches, loss="cross_entropy"),
        ValueError, r"^loss: unknown loss 'cross_entropy'",
        id="backward-unknown-loss",
    ),
    pytest.param(
        lambda n: bpnet.L_model_backward(n.AL, n.Y, n.caches, output_activation="tanh", fused=True),
        ValueError,
        r"^fused: dZ\[L\] = AL - Y holds only for .*sigmoid\+binary_crossentropy.*"
        r"got output_activation='tanh' with loss='binary_crossentropy' \(pass fused=False\)",
        id="backward-fused-tanh-bce",
    ),
    pytest.param(
        lambda n: bpnet.L_model_backward(n.AL, n.Y, n.caches, loss="mse", fused=True),
        ValueError, r"^fused: .*got output_activation='sigmoid' with loss='mse'",
        id="backward-fused-sigmoid-mse",
    ),
    # ---- AL and Y: compute_cost -----------------------------------------------------
    pytest.param(
        lambda n: bpnet.compute_cost(n.AL, n.Y[:, :4]),
        ValueError, r"^Y: expected 5 examples \(columns\) like AL of shape \(1, 5\), got shape \(1, 4\)$",
        id="cost-m-differs",
    ),
    pytest.param(
        lambda n: bpnet.compute_cost(n.AL, n.bk.asarray(np.zeros(4))),
        ValueError, r"^Y: expected 5 examples \(columns\) like AL of shape \(1, 5\), got shape \(1, 4\)$",
        id="cost-Y-1d-wrong-length",
    ),
    pytest.param(
        lambda n: bpnet.compute_cost(n.AL, n.bk.asarray(np.zeros((2, M)))),
        ValueError, r"^Y: expected 1 row \(output units\) like AL of shape \(1, 5\), got shape \(2, 5\)$",
        id="cost-Y-wrong-rows",
    ),
    pytest.param(
        lambda n: bpnet.compute_cost(n.bk.asarray(np.full((3, M), 1 / 3)), n.bk.asarray(np.zeros((2, M)))),
        ValueError, r"^Y: expected 3 rows .*got shape \(2, 5\).*one-hot Y of shape \(n_classes, m\)",
        id="cost-Y-wrong-rows-categorical-hint",
    ),
    pytest.param(
        lambda n: bpnet.compute_cost(n.AL, n.bk.asarray(np.zeros((1, 1, M)))),
        ValueError, r"^Y: expected shape \(1, 5\), got \(1, 1, 5\)",
        id="cost-Y-3d",
    ),
    pytest.param(
        lambda n: bpnet.compute_cost(n.AL, n.bk.asarray(np.zeros((1, M), dtype=np.complex128))),
        TypeError, r"^Y: expected real labels, got dtype complex128",
        id="cost-Y-complex",
    ),
    pytest.param(
        lambda n: bpnet.compute_cost(n.AL, [0, 1, 1, 0, 1]),
        TypeError, r"^Y: expected an array of labels, got builtins\.list",
        id="cost-Y-list",
    ),
    pytest.param(
        lambda n: bpnet.compute_cost(n.bk.asarray(np.zeros((1, 0))), n.bk.asarray(np.zeros((1, 0)))),
        ValueError, r"^AL: expected a non-empty array, got shape \(1, 0\)",
        id="cost-AL-empty",
    ),
    pytest.param(
        lambda n: bpnet.compute_cost(n.bk.asarray(np.ones((1, M), dtype=np.int64)), n.Y),
        TypeError, r"^AL: expected a real floating dtype .*got int64",
        id="cost-AL-integer",
    ),
    # ---- L_model_backward ------------------------------------------------------------
    pytest.param(
        lambda n: bpnet.L_model_backward(n.AL, n.Y[:, :4], n.caches),
        ValueError, r"^Y: expected 5 examples \(columns\) like AL of shape \(1, 5\), got shape \(1, 4\)$",
        id="backward-m-differs-AL-Y",
    ),
    pytest.param(
        lambda n: bpnet.L_model_backward(n.AL, n.bk.asarray(np.zeros((2, M))), n.caches),
        ValueError, r"^Y: expected 1 row \(output units\) like AL of shape \(1, 5\), got shape \(2, 5\)$",
        id="backward-Y-wrong-rows",
    ),
    pytest.param(
        lambda n: bpnet.L_model_backward(n.AL[:, :4], n.Y[:, :4], n.caches),
        ValueError, r"^AL: expected shape \(1, 5\) like the last cached Z, got \(1, 4\)$",
        id="backward-AL-not-matching-caches",
    ),
    pytest.param(
        lambda n: bpnet.L_model_backward(n.AL, n.Y, []),
        ValueError, r"^caches: expected the list of layer caches from L_model_forward.*got an empty list \[\]",
        id="backward-empty-caches",
    ),
    pytest.param(
        lambda n: bpnet.L_model_backward(n.AL, n.Y, None),
        TypeError, r"^caches: expected the list of layer caches from L_model_forward, got None",
        id="backward-caches-None",
    ),
    pytest.param(
        lambda n: bpnet.L_model_backward(n.AL, n.Y, [n.caches[1], n.caches[0]]),
        ValueError, r"^caches\[1\]: A_prev has 3 rows but layer 1 outputs 1$",
        id="backward-caches-out-of-order",
    ),
    pytest.param(
        lambda n: bpnet.L_model_backward(n.AL, n.Y, n.caches[:1]),
        ValueError, r"^AL: expected shape \(4, 5\) like the last cached Z, got \(1, 5\)$",
        id="backward-caches-missing-last-layer",
    ),
    pytest.param(
        lambda n: bpnet.L_model_backward(n.AL, n.Y, [n.caches[0][0], n.caches[1]]),
        TypeError, r"^caches\[0\]: expected the layer cache \(\(A_prev, W, b\), Z\) from linear_activation_forward, got tuple",
        id="backward-caches-linear-cache-given",
    ),
    # ---- linear_forward / linear_backward -----------------------------------------------
    pytest.param(
        lambda n: bpnet.linear_forward(n.bk.asarray(host((2, M))), n.params["W1"], n.params["b1"]),
        ValueError, r"^A: expected shape \(3, m\) to match W of shape \(4, 3\), got \(2, 5\)$",
        id="linear_forward-A-rows-not-matching-W",
    ),
    pytest.param(
        lambda n: bpnet.linear_forward(n.X, n.params["W1"], n.bk.asarray(np.zeros((1, 4)))),
        ValueError, r"^b: expected shape \(4, 1\) to match W of shape \(4, 3\), got \(1, 4\)$",
        id="linear_forward-b-wrong-shape",
    ),
    pytest.param(
        lambda n: bpnet.linear_forward(n.bk.asarray(host((3, M)), dtype="float32"), n.params["W1"], n.params["b1"]),
        TypeError, r"W has dtype float64 but A has float32",
        id="linear_forward-dtype-mix",
    ),
    pytest.param(
        lambda n: bpnet.linear_forward(n.X, to_np(n.params["W1"]).tolist(), n.params["b1"]),
        TypeError, r"^W: expected a 2-D floating array .*got builtins\.list",
        id="linear_forward-W-list",
    ),
    pytest.param(
        lambda n: bpnet.linear_activation_forward(n.bk.asarray(host((2, M))), n.params["W1"], n.params["b1"], "relu"),
        ValueError, r"^A_prev: expected shape \(3, m\) to match W of shape \(4, 3\), got \(2, 5\)$",
        id="linear_activation_forward-A_prev-rows",
    ),
    pytest.param(
        lambda n: bpnet.linear_activation_forward(n.X, n.params["W1"], n.params["b1"], "ReLU"),
        ValueError, r"^activation: unknown activation 'ReLU'; expected one of 'relu'",
        id="linear_activation_forward-unknown-activation",
    ),
    pytest.param(
        lambda n: bpnet.linear_backward(n.bk.asarray(host((4, M + 1))), layer_cache(n)[0]),
        ValueError, r"^dZ: expected shape \(4, 5\) = \(rows of W, columns of A_prev\), got \(4, 6\)$",
        id="linear_backward-dZ-wrong-shape",
    ),
    pytest.param(
        lambda n: bpnet.linear_backward(
            n.bk.asarray(host((4, M))), (n.bk.asarray(host((2, M))), n.params["W1"], n.params["b1"])
        ),
        ValueError, r"^A_prev: expected shape \(3, m\) to match W of shape \(4, 3\), got \(2, 5\)$",
        id="linear_backward-cache-A_prev-not-matching-W",
    ),
    pytest.param(
        lambda n: bpnet.linear_backward(n.bk.asarray(host((4, M))), list(layer_cache(n)[0])),
        TypeError, r"^cache: expected the linear cache \(A_prev, W, b\) from linear_forward, got list",
        id="linear_backward-cache-list",
    ),
    pytest.param(
        lambda n: bpnet.linear_backward(n.bk.asarray(host((4, M)), dtype="float32"), layer_cache(n)[0]),
        TypeError, r"A_prev has dtype float64 but dZ has float32",
        id="linear_backward-dtype-mix",
    ),
    # ---- linear_activation_backward -----------------------------------------------------
    pytest.param(
        lambda n: bpnet.linear_activation_backward(n.bk.asarray(host((4, M))), layer_cache(n)[0], "relu"),
        TypeError, r"^cache: expected the layer cache \(\(A_prev, W, b\), Z\) from linear_activation_forward, got tuple",
        id="linear_activation_backward-linear-cache-instead-of-layer-cache",
    ),
    pytest.param(
        lambda n: bpnet.linear_activation_backward(
            n.bk.asarray(host((4, M))), (layer_cache(n)[0][:2], layer_cache(n)[1]), "relu"
        ),
        TypeError, r"^cache\[0\]: expected the linear cache \(A_prev, W, b\) from linear_forward, got tuple",
        id="linear_activation_backward-cache-without-b",
    ),
    pytest.param(
        lambda n: bpnet.linear_activation_backward(
            n.bk.asarray(host((4, M))), (layer_cache(n)[0], n.bk.asarray(host((4, M + 1)))), "relu"
        ),
        ValueError, r"^cache\[1\] \(Z\): expected shape \(4, 5\), got \(4, 6\)$",
        id="linear_activation_backward-cache-Z-wrong-shape",
    ),
    pytest.param(
        lambda n: bpnet.linear_activation_backward(n.bk.asarray(host((4, M))), (layer_cache(n)[0], None), "relu"),
        TypeError, r"^cache\[1\] \(Z\): expected a 2-D floating array .*got builtins\.NoneType",
        id="linear_activation_backward-cache-Z-None",
    ),
    pytest.param(
        lambda n: bpnet.linear_activation_backward(n.bk.asarray(host((4, M - 1))), layer_cache(n), "relu"),
        ValueError, r"^dA: expected shape \(4, 5\) like the cached Z, got \(4, 4\)$",
        id="linear_activation_backward-dA-wrong-shape",
    ),
    pytest.param(
        lambda n: bpnet.linear_activation_backward(n.bk.asarray(host((4, M))), layer_cache(n), "swish"),
        ValueError, r"^activation: unknown activation 'swish'",
        id="linear_activation_backward-unknown-activation",
    ),
]


@pytest.mark.parametrize(("call", "exc", "pattern"), PER_BACKEND)
def test_bad_input(bk, call, exc, pattern, harness):
    n = small_net(bk)
    harness.refuses(lambda: call(n), exc, pattern)


def _params_two_devices(c):
    dev0, dev1, params = default_and_device1()
    params["W2"] = dev1.asarray(host((1, 4)))
    return bpnet.L_model_forward(dev0.asarray(host((3, M))), params)


def _params_two_backends(c):
    np_bk, strict, params = numpy_and_strict()
    params["b2"] = np_bk.asarray(np.zeros((1, 1)))
    return bpnet.L_model_forward(strict.asarray(host((3, M))), params)


def _cost_Y_numpy_AL_strict(c):
    np_bk, strict, _ = numpy_and_strict()
    return bpnet.compute_cost(strict.asarray(np.full((1, M), 0.5)), np_bk.asarray(np.ones((1, M))))


def _cost_Y_device1_AL_default(c):
    dev0, dev1, _ = default_and_device1()
    return bpnet.compute_cost(dev0.asarray(np.full((1, M), 0.5)), dev1.asarray(np.ones((1, M))))


def _linear_forward_two_devices(c):
    dev0, dev1, params = default_and_device1()
    return bpnet.linear_forward(dev1.asarray(host((3, M))), params["W1"], params["b1"])


def _backward_Y_other_backend(c):
    # the pass on array-api-strict is made before the harness forbids the math
    return bpnet.L_model_backward(c.strict_AL, backends.get("numpy").asarray(np.ones((1, M))), c.strict_caches)


#: each case: (function of the numpy context c of badinput.api_context, exception type, regex on the message)
#: (the first cases build their own arrays on two backends or two devices: they do not use c)
BAD_INPUTS = [
    # ---- two backends / two devices -------------------------------------------------
    pytest.param(
        _params_two_devices, ValueError,
        r"parameters\['W2'\] and parameters\['W1'\] are on two devices of array_api_strict: parameters\['W2'\] on 'device1'",
        id="params-W2-on-another-device",
    ),
    pytest.param(
        _params_two_backends, TypeError,
        r"parameters\['b2'\] and parameters\['W1'\] come from two backends: parameters\['b2'\] is a numpy array",
        id="params-b2-from-numpy",
    ),
    pytest.param(
        _cost_Y_numpy_AL_strict, TypeError,
        r"Y and AL come from two backends: Y is a numpy array, AL is an? array_api_strict array",
        id="cost-Y-numpy-AL-strict",
    ),
    pytest.param(
        _cost_Y_device1_AL_default, ValueError,
        r"Y and AL are on two devices of array_api_strict: Y on 'device1', AL on 'CPU_DEVICE'",
        id="cost-Y-device1-AL-default-device",
    ),
    pytest.param(
        _backward_Y_other_backend, TypeError,
        r"Y and AL come from two backends",
        id="backward-Y-numpy-AL-strict",
    ),
    pytest.param(
        _linear_forward_two_devices, ValueError,
        r"on two devices of array_api_strict: .*A on 'device1'",
        id="linear_forward-A-on-another-device",
    ),
    # ---- on the numpy context c ------------------------------------------------------
    pytest.param(lambda c: bpnet.L_model_forward(c.X.T.copy(), c.params), ValueError,
                 r"^X: expected shape \(3, m\) to match W1 of shape \(4, 3\), got \(5, 3\); it looks transposed",
                 id="api-forward-X-transposed"),
    pytest.param(lambda c: bpnet.L_model_forward(c.X[:2], c.params), ValueError,
                 r"^X: expected shape \(3, m\) to match W1 of shape \(4, 3\), got \(2, 5\)$",
                 id="api-forward-X-wrong-rows"),
    pytest.param(lambda c: bpnet.L_model_forward(c.X[:, :0], c.params), ValueError,
                 r"^X: expected a non-empty array, got shape \(3, 0\)", id="api-forward-X-empty"),
    pytest.param(lambda c: bpnet.compute_cost(c.AL, c.Y[:, :4]), ValueError,
                 r"^Y: expected 5 examples \(columns\) like AL of shape \(1, 5\), got shape \(1, 4\)$",
                 id="api-cost-Y-m-mismatch"),
    pytest.param(lambda c: bpnet.L_model_backward(c.AL, c.Y[:, :3], c.caches), ValueError,
                 r"^Y: expected 5 examples \(columns\) like AL of shape \(1, 5\), got shape \(1, 3\)$",
                 id="api-backward-Y-m-mismatch"),
    pytest.param(lambda c: bpnet.compute_cost(c.AL3, np.eye(2)[:, [0, 1, 0, 1, 0]],
                                              loss="categorical_crossentropy"), ValueError,
                 r"^Y: expected 3 rows \(output units\) like AL of shape \(3, 5\), got shape \(2, 5\).*one-hot",
                 id="api-cost-softmax-class-count-mismatch"),
    pytest.param(lambda c: bpnet.L_model_forward(c.X + 0j, c.params), TypeError,
                 r"^X: expected real numbers \(a floating or integer dtype\), got complex128",
                 id="api-forward-X-complex"),
    pytest.param(lambda c: bpnet.L_model_forward(c.X.astype(object), c.params), TypeError,
                 r"^X: expected real numbers \(a floating or integer dtype\), got object", id="api-forward-X-object"),
    pytest.param(lambda c: bpnet.L_model_forward(with_entry(c.X, (1, 2), math.nan), c.params), ValueError,
                 r"^X: expected finite values, got 1 NaN and 0 inf in an array of shape \(3, 5\)$",
                 id="api-forward-X-nan"),
    pytest.param(lambda c: bpnet.L_model_forward(with_entry(c.X, (0, 0), -math.inf), c.params), ValueError,
                 r"^X: expected finite values, got 0 NaN and 1 inf", id="api-forward-X-inf"),
    pytest.param(lambda c: bpnet.compute_cost(c.AL, c.Y.astype(object)), TypeError,
                 r"^Y: expected real labels \(floating, integer or bool dtype\), got dtype object",
                 id="api-cost-Y-object"),
    pytest.param(lambda c: bpnet.compute_cost(c.AL, c.Y + 0j), TypeError,
                 r"^Y: expected real labels, got dtype complex128", id="api-cost-Y-complex"),
    pytest.param(lambda c: bpnet.L_model_forward(c.X, c.params, hidden_activation="gelu"), ValueError,
                 r"^hidden_activation: unknown activation 'gelu'; expected one of 'relu', ",
                 id="api-forward-unknown-hidden-activation"),
    pytest.param(lambda c: bpnet.L_model_backward(c.AL, c.Y, c.caches, loss="hinge"), ValueError,
                 r"^loss: unknown loss 'hinge'; expected one of 'binary_crossentropy'", id="api-backward-unknown-loss"),
]


@pytest.mark.parametrize(("call", "exc", "pattern"), BAD_INPUTS)
def test_bad_input_once(call, exc, pattern, harness):
    c = api_context()
    harness.refuses(lambda: call(c), exc, pattern)


def test_the_bad_input_tables_are_distinct():
    check_table(PER_BACKEND, minimum=63)
    check_table(BAD_INPUTS, minimum=20)


# --------------------------------------------------------------------------- #
# nothing half-done: a call that raises leaves its inputs untouched


def test_failed_backward_leaves_caches_unchanged(bk):
    n = small_net(bk)
    caches = list(n.caches)
    with pytest.raises(ValueError):
        bpnet.L_model_backward(n.AL, n.Y[:, :4], caches)
    assert len(caches) == len(n.caches)
    assert all(a is b for a, b in zip(caches, n.caches))


def test_failed_compute_cost_does_not_cast_caller_Y(bk):
    # integer labels are accepted and cast internally; a failing call must not
    # have replaced or altered the caller's array
    n = small_net(bk)
    Y_int = bk.asarray(np.array([[0, 1, 1, 0]], dtype=np.int64))
    with pytest.raises(ValueError, match=r"^Y: expected 5 examples"):
        bpnet.compute_cost(n.AL, Y_int)
    assert Y_int.dtype == bk.xp.int64
    np.testing.assert_array_equal(to_np(Y_int), [[0, 1, 1, 0]])
