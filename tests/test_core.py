"""The course's functional API: hand-worked values, shapes, dtype and device kept."""

import numpy as np
import pytest
from conftest import assert_on, rtol_for, to_np

import bpnet

# --------------------------------------------------------------------------- #
# initialize_parameters_deep


def test_initialize_parameters_deep_course_numbers():
    # the course's test: initialize_parameters_deep([5, 4, 3]) with np.random.seed(3)
    p = bpnet.initialize_parameters_deep([5, 4, 3], backend="numpy")
    expected_W1 = [[0.01788628, 0.0043651, 0.00096497, -0.01863493, -0.00277388],
                   [-0.00354759, -0.00082741, -0.00627001, -0.00043818, -0.00477218],
                   [-0.01313865, 0.00884622, 0.00881318, 0.01709573, 0.00050034],
                   [-0.00404677, -0.0054536, -0.01546477, 0.00982367, -0.01101068]]
    expected_W2 = [[-0.01185047, -0.0020565, 0.01486148, 0.00236716],
                   [-0.01023785, -0.00712993, 0.00625245, -0.00160513],
                   [-0.00768836, -0.00230031, 0.00745056, 0.01976111]]
    np.testing.assert_allclose(p["W1"], expected_W1, atol=5e-9)
    np.testing.assert_allclose(p["W2"], expected_W2, atol=5e-9)
    np.testing.assert_array_equal(p["b1"], np.zeros((4, 1)))
    np.testing.assert_array_equal(p["b2"], np.zeros((3, 1)))
    assert p["W1"].dtype == np.float64
    assert list(p) == ["W1", "b1", "W2", "b2"]


def test_initialize_does_not_touch_global_random_state():
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    bpnet.initialize_parameters_deep([3, 2, 1], backend="numpy")
    np.testing.assert_array_equal(np.random.get_state()[1], before)


def test_initialize_identical_on_every_backend(bk, dtype):
    p = bpnet.initialize_parameters_deep([6, 5, 2], init="he", seed=7, dtype=dtype, backend=bk)
    ref = bpnet.initialize_parameters_deep([6, 5, 2], init="he", seed=7, dtype=dtype, backend="numpy")
    for key in ref:
        assert_on(bk, p[key], dtype, ref[key].shape)
        np.testing.assert_array_equal(to_np(p[key]), ref[key])  # bit-identical: drawn on the host


@pytest.mark.parametrize("init, scale", [("course", lambda n: 0.01), ("he", lambda n: np.sqrt(2 / n)),
                                         ("xavier", lambda n: np.sqrt(1 / n))])
def test_initialize_scales(init, scale):
    p = bpnet.initialize_parameters_deep([400, 300, 1], init=init, seed=0, backend="numpy")
    raw = np.random.RandomState(0).randn(300, 400)
    np.testing.assert_allclose(p["W1"], raw * scale(400), rtol=1e-12)
    assert abs(p["W1"].std() / scale(400) - 1) < 0.01  # 120000 draws: std within 1%


def test_initialize_respects_backend_env_var(monkeypatch):
    monkeypatch.setenv("BPNET_BACKEND", "array_api_strict")
    p = bpnet.initialize_parameters_deep([2, 1])
    assert type(p["W1"]).__module__.startswith("array_api_strict")


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


def test_categorical_crossentropy_value(bk, dtype):
    # two examples, three classes; true classes 0 and 2
    AL = bk.asarray(np.array([[0.5, 0.2], [0.25, 0.3], [0.25, 0.5]]), dtype=dtype)
    Y = bk.asarray(np.array([[1, 0], [0, 0], [0, 1]]), dtype=dtype)
    # J = -(ln .5 + ln .5) / 2 = ln 2
    cost = bpnet.compute_cost(AL, Y, loss="categorical_crossentropy")
    assert float(cost) == pytest.approx(np.log(2), rel=1e-6)


def test_mse_value(bk, dtype):
    AL = bk.asarray(np.array([[1.0, 2.0], [0.0, 0.0]]), dtype=dtype)
    Y = bk.asarray(np.array([[0.0, 2.0], [2.0, 0.0]]), dtype=dtype)
    # J = (1 / (2m)) sum (AL - Y)^2 = (1 + 0 + 4 + 0) / 4 = 1.25
    assert float(bpnet.compute_cost(AL, Y, loss="mse")) == pytest.approx(1.25, rel=1e-7)


@pytest.mark.parametrize("loss", ["binary_crossentropy", "categorical_crossentropy"])
def test_saturated_outputs_give_finite_cost(bk, dtype, loss):
    AL = bk.asarray(np.array([[0.0, 1.0], [1.0, 0.0]]), dtype=dtype)
    Y = bk.asarray(np.array([[1.0, 0.0], [0.0, 1.0]]), dtype=dtype)  # confidently wrong
    cost = float(bpnet.compute_cost(AL, Y, loss=loss))
    assert np.isfinite(cost) and cost > 10


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
# update and predict


def test_update_parameters_returns_new_dict(bk, dtype):
    p = {"W1": bk.asarray(np.array([[1.0, 2.0]]), dtype=dtype), "b1": bk.asarray(np.array([[0.5]]), dtype=dtype)}
    grads = {"dW1": bk.asarray(np.array([[10.0, -10.0]]), dtype=dtype),
             "db1": bk.asarray(np.array([[1.0]]), dtype=dtype),
             "dA0": bk.asarray(np.zeros((2, 1)), dtype=dtype)}
    before = {k: to_np(v).copy() for k, v in p.items()}
    new = bpnet.update_parameters(p, grads, 0.1)
    assert new is not p
    # W - 0.1 dW = [1 - 1, 2 + 1]; b - 0.1 db = 0.4
    np.testing.assert_allclose(to_np(new["W1"]), [[0.0, 3.0]], atol=1e-6)
    np.testing.assert_allclose(to_np(new["b1"]), [[0.4]], rtol=1e-6)
    assert_on(bk, new["W1"], dtype, (1, 2))
    for k in p:
        np.testing.assert_array_equal(to_np(p[k]), before[k])  # inputs untouched


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
