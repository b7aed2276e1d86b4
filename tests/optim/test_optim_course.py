"""The course's optimisation functions (bpnet.optim.course): update_parameters, momentum, RMSprop, Adam,
mini-batches, LR decay, L2, clipping; hand-worked values, kept dtype and device, inputs never modified."""

from __future__ import annotations

import math

import numpy as np
import pytest
from badinput import api_context, check_table, default_and_device1, host, numpy_and_strict, replaced, small_net, without
from conftest import assert_on, rtol_for, to_np

import bpnet
from bpnet import optim

# Hand-worked values on a tiny one-layer parameter set, with the arithmetic in comments; the course
# functions and bpnet.optim.Optimizer agree bit for bit.


# one layer, n_0 = 2 inputs, n_1 = 1 unit: W1 (1, 2), b1 (1, 1)
P0 = {"W1": np.array([[1.0, -2.0]]), "b1": np.array([[0.5]])}

# two gradients: g1 then g2 (dW constant, db flips sign)
G1 = {"dW1": np.array([[1.0, -2.0]]), "db1": np.array([[4.0]])}
G2_MOM = {"dW1": np.array([[2.0, 0.0]]), "db1": np.array([[-4.0]])}
G2_ADAM = {"dW1": np.array([[1.0, -2.0]]), "db1": np.array([[-4.0]])}


def _on(bk, d, dtype):
    return {k: bk.asarray(v, dtype=dtype) for k, v in d.items()}


def _host(d):
    return {k: to_np(v).copy() for k, v in d.items()}


def _assert_untouched(d, snapshot, objects):
    """d still holds the same array objects with the same values."""
    assert list(d) == list(snapshot)
    for k in d:
        assert d[k] is objects[k]
        np.testing.assert_array_equal(to_np(d[k]), snapshot[k])


def _assert_same(a, b):
    assert list(a) == list(b)
    for k in a:
        np.testing.assert_array_equal(to_np(a[k]), to_np(b[k]))


def _close(x, expected, dtype):
    np.testing.assert_allclose(to_np(x), expected, rtol=rtol_for(dtype) * 10, atol=1e-12)


# --------------------------------------------------------------------------- #
# update_parameters


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


# --------------------------------------------------------------------------- #
# momentum


def test_initialize_velocity(bk, dtype):
    p = _on(bk, P0, dtype)
    v = optim.initialize_velocity(p)
    assert list(v) == ["dW1", "db1"]
    assert_on(bk, v["dW1"], dtype, (1, 2))
    assert_on(bk, v["db1"], dtype, (1, 1))
    assert not to_np(v["dW1"]).any() and not to_np(v["db1"]).any()


def test_momentum_two_steps(bk, dtype):
    p, g1, g2 = _on(bk, P0, dtype), _on(bk, G1, dtype), _on(bk, G2_MOM, dtype)
    snap, objs = _host(p), dict(p)
    g1_snap, g1_objs = _host(g1), dict(g1)
    v0 = optim.initialize_velocity(p)
    v0_objs = dict(v0)
    # beta = 0.9, learning_rate = 0.1
    p1, v1 = optim.update_parameters_with_momentum(p, g1, v0, 0.9, 0.1)
    # v1 = 0.9 * 0 + 0.1 * g1 = dW [[0.1, -0.2]], db [[0.4]]
    _close(v1["dW1"], [[0.1, -0.2]], dtype)
    _close(v1["db1"], [[0.4]], dtype)
    # W = [[1, -2]] - 0.1 * [[0.1, -0.2]] = [[0.99, -1.98]] ; b = 0.5 - 0.1 * 0.4 = 0.46
    _close(p1["W1"], [[0.99, -1.98]], dtype)
    _close(p1["b1"], [[0.46]], dtype)
    p2, v2 = optim.update_parameters_with_momentum(p1, g2, v1, 0.9, 0.1)
    # v2 = 0.9 v1 + 0.1 g2 = dW [[0.09 + 0.2, -0.18 + 0]] = [[0.29, -0.18]], db [[0.36 - 0.4]] = [[-0.04]]
    _close(v2["dW1"], [[0.29, -0.18]], dtype)
    _close(v2["db1"], [[-0.04]], dtype)
    # W = [[0.99 - 0.029, -1.98 + 0.018]] = [[0.961, -1.962]] ; b = 0.46 + 0.004 = 0.464
    _close(p2["W1"], [[0.961, -1.962]], dtype)
    _close(p2["b1"], [[0.464]], dtype)
    for x in (*p2.values(), *v2.values()):
        assert_on(bk, x, dtype)
    # nothing modified in place
    _assert_untouched(p, snap, objs)
    _assert_untouched(g1, g1_snap, g1_objs)
    assert all(v0[k] is v0_objs[k] for k in v0) and not to_np(v0["dW1"]).any()
    assert p1 is not p and v1 is not v0

    # the Optimizer gives the same numbers
    opt = optim.get_optimizer("momentum", beta=0.9)
    st = opt.init(p)
    q1, st1 = opt.step(p, g1, st, 0.1)
    q2, st2 = opt.step(q1, g2, st1, 0.1)
    assert st == {"t": 0, "v": st["v"]} and st1["t"] == 1 and st2["t"] == 2
    assert set(st2) == {"t", "v"}
    _assert_same(q2, p2)
    _assert_same(st2["v"], v2)


# --------------------------------------------------------------------------- #
# Adam


def test_initialize_adam(bk, dtype):
    v, s = optim.initialize_adam(_on(bk, P0, dtype))
    for d in (v, s):
        assert list(d) == ["dW1", "db1"]
        assert_on(bk, d["dW1"], dtype, (1, 2))
        assert_on(bk, d["db1"], dtype, (1, 1))
    assert v["dW1"] is not s["dW1"]


def test_adam_two_steps_bias_correction(bk, dtype):
    p, g1, g2 = _on(bk, P0, dtype), _on(bk, G1, dtype), _on(bk, G2_ADAM, dtype)
    snap, objs = _host(p), dict(p)
    v0, s0 = optim.initialize_adam(p)
    eps = 1e-8
    # course defaults: learning_rate 0.01, beta1 0.9, beta2 0.999, epsilon 1e-8
    p1, v1, s1, vc1, sc1 = optim.update_parameters_with_adam(p, g1, v0, s0, 1)
    # t = 1: v = 0.1 g1 = [[0.1, -0.2]], [[0.4]] ; s = 0.001 g1^2 = [[0.001, 0.004]], [[0.016]]
    _close(v1["dW1"], [[0.1, -0.2]], dtype)
    _close(s1["dW1"], [[0.001, 0.004]], dtype)
    _close(s1["db1"], [[0.016]], dtype)
    # v_corrected = v / (1 - 0.9) = g1 ; s_corrected = s / (1 - 0.999) = g1^2
    _close(vc1["dW1"], [[1.0, -2.0]], dtype)
    _close(sc1["db1"], [[16.0]], dtype)
    # theta -= 0.01 g / (|g| + eps) = 0.01 sign(g) |g| / (|g| + eps)
    # W = [[1 - 0.01 / (1 + 1e-8), -2 + 0.01 * 2 / (2 + 1e-8)]] ~ [[0.99, -1.99]] ; b ~ 0.5 - 0.01 = 0.49
    _close(p1["W1"], [[1 - 0.01 / (1 + eps), -2 + 0.02 / (2 + eps)]], dtype)
    _close(p1["b1"], [[0.5 - 0.04 / (4 + eps)]], dtype)

    p2, v2, s2, vc2, sc2 = optim.update_parameters_with_adam(p1, g2, v1, s1, 2)
    # t = 2, dW constant: v = 0.9 * 0.1 g + 0.1 g = 0.19 g = [[0.19, -0.38]]
    #   s = 0.999 * 0.001 g^2 + 0.001 g^2 = 0.001999 g^2 = [[0.001999, 0.007996]]
    #   v_corrected = 0.19 g / (1 - 0.81) = g ; s_corrected = 0.001999 g^2 / (1 - 0.998001) = g^2
    #   so the step is 0.01 sign(g) again: W ~ [[0.98, -1.98]]
    _close(v2["dW1"], [[0.19, -0.38]], dtype)
    _close(s2["dW1"], [[0.001999, 0.007996]], dtype)
    _close(vc2["dW1"], [[1.0, -2.0]], dtype)
    _close(sc2["dW1"], [[1.0, 4.0]], dtype)
    _close(p2["W1"], [[1 - 0.02 / (1 + eps), -2 + 0.04 / (2 + eps)]], dtype)
    # db: g1 = 4, g2 = -4: v = 0.9 * 0.4 - 0.4 = -0.04 ; s = 0.999 * 0.016 + 0.016 = 0.031984
    #   v_corrected = -0.04 / 0.19 = -0.2105263158 ; s_corrected = 0.031984 / 0.001999 = 16
    #   b = b1 - 0.01 * (-0.2105263158) / (4 + eps) = b1 + 0.000526315789...
    _close(v2["db1"], [[-0.04]], dtype)
    _close(s2["db1"], [[0.031984]], dtype)
    _close(vc2["db1"], [[-0.04 / 0.19]], dtype)
    _close(sc2["db1"], [[16.0]], dtype)
    _close(p2["b1"], [[0.5 - 0.04 / (4 + eps) + 0.01 * (0.04 / 0.19) / (4 + eps)]], dtype)
    for d in (p2, v2, s2, vc2, sc2):
        for x in d.values():
            assert_on(bk, x, dtype)
    _assert_untouched(p, snap, objs)

    # the Optimizer (t incremented before the update) gives the same numbers
    opt = optim.get_optimizer("adam")
    assert opt.hyper == {"beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8}
    st = opt.init(p)
    assert st["t"] == 0 and set(st) == {"t", "v", "s"}
    q1, st1 = opt.step(p, g1, st, 0.01)
    q2, st2 = opt.step(q1, g2, st1, 0.01)
    assert st2["t"] == 2
    _assert_same(q2, p2)
    _assert_same(st2["v"], v2)
    _assert_same(st2["s"], s2)


def test_adam_without_t_increment_would_differ():
    # guards the bias correction: reusing t = 1 at the second step gives
    # v_hat = 0.19 g / 0.1 = 1.9 g, s_hat = 0.001999 g^2 / 0.001 = 1.999 g^2,
    # a step of 0.01 * 1.9 / sqrt(1.999) = 0.013438 instead of 0.01
    p1, v1, s1, _, _ = optim.update_parameters_with_adam(P0, G1, *optim.initialize_adam(P0), 1)
    right = optim.update_parameters_with_adam(p1, G1, v1, s1, 2)[0]
    wrong = optim.update_parameters_with_adam(p1, G1, v1, s1, 1)[0]
    assert right["W1"][0, 0] == pytest.approx(p1["W1"][0, 0] - 0.01, rel=1e-9)
    assert wrong["W1"][0, 0] == pytest.approx(p1["W1"][0, 0] - 0.01 * 1.9 / math.sqrt(1.999), rel=1e-9)


# --------------------------------------------------------------------------- #
# RMSprop


def test_rmsprop_steps(bk, dtype):
    p, g = _on(bk, P0, dtype), _on(bk, G1, dtype)
    snap, objs = _host(p), dict(p)
    s0 = optim.initialize_rmsprop(p)
    assert list(s0) == ["dW1", "db1"]
    assert_on(bk, s0["dW1"], dtype, (1, 2))
    # learning_rate 0.01, beta2 0.9, epsilon 1e-8
    p1, s1 = optim.update_parameters_with_rmsprop(p, g, s0, learning_rate=0.01)
    # s = 0.1 g^2 = [[0.1, 0.4]], [[1.6]]
    _close(s1["dW1"], [[0.1, 0.4]], dtype)
    _close(s1["db1"], [[1.6]], dtype)
    # step = 0.01 g / (sqrt(0.1 g^2) + eps) = 0.01 sign(g) / (sqrt(0.1) + eps / |g|) ~ 0.0316227766 sign(g)
    # W ~ [[1 - 0.0316227766, -2 + 0.0316227766]] = [[0.9683772234, -1.9683772234]] ; b ~ 0.4683772234
    def step(g, k):  # 0.01 g / (sqrt(k g^2) + 1e-8)
        return 0.01 * g / (math.sqrt(k) * abs(g) + 1e-8)

    _close(p1["W1"], [[1 - step(1, 0.1), -2 - step(-2, 0.1)]], dtype)
    _close(p1["b1"], [[0.5 - step(4, 0.1)]], dtype)
    assert to_np(p1["W1"])[0, 0] == pytest.approx(0.9683772234, abs=2e-9)
    # second step, same g: s = 0.09 g^2 + 0.1 g^2 = 0.19 g^2 ; step = 0.01 / sqrt(0.19) ~ 0.0229415734
    p2, s2 = optim.update_parameters_with_rmsprop(p1, g, s1, learning_rate=0.01)
    _close(s2["dW1"], [[0.19, 0.76]], dtype)
    _close(p2["W1"], [[1 - step(1, 0.1) - step(1, 0.19), -2 - step(-2, 0.1) - step(-2, 0.19)]], dtype)
    assert to_np(p2["W1"])[0, 0] == pytest.approx(0.9683772234 - 0.0229415734, abs=5e-7)
    for x in (*p2.values(), *s2.values()):
        assert_on(bk, x, dtype)
    _assert_untouched(p, snap, objs)

    opt = optim.get_optimizer("rmsprop")
    assert opt.hyper == {"beta2": 0.9, "epsilon": 1e-8}
    st = opt.init(p)
    assert set(st) == {"t", "s"}
    q1, st1 = opt.step(p, g, st, 0.01)
    q2, st2 = opt.step(q1, g, st1, 0.01)
    _assert_same(q2, p2)
    _assert_same(st2["s"], s2)
    assert st2["t"] == 2


def test_gd_step_is_update_parameters(bk, dtype):
    p, g = _on(bk, P0, dtype), _on(bk, G1, dtype)
    opt = optim.get_optimizer("gd")
    st = opt.init(p)
    assert st == {"t": 0}
    q, st1 = opt.step(p, g, st, 0.1)
    assert st1 == {"t": 1} and st == {"t": 0}
    _assert_same(q, bpnet.update_parameters(p, g, 0.1))
    # W = [[1 - 0.1, -2 + 0.2]] = [[0.9, -1.8]] ; b = 0.5 - 0.4 = 0.1
    _close(q["W1"], [[0.9, -1.8]], dtype)
    _close(q["b1"], [[0.1]], dtype)
    assert_on(bk, q["W1"], dtype, (1, 2))


# --------------------------------------------------------------------------- #
# mini-batches


def _course_permutation(seed, m):
    state = np.random.get_state()
    try:
        np.random.seed(seed)
        return np.random.permutation(m)
    finally:
        np.random.set_state(state)


def _indexed_data(bk, n_x, m):
    # X[i, j] = 1000 i + j: the columns reveal the permutation ; Y[0, j] = j (int64)
    X = np.arange(n_x)[:, None] * 1000.0 + np.arange(m)[None, :]
    Y = np.arange(m, dtype=np.int64)[None, :]
    return X, Y, bk.asarray(X, dtype="float64"), bk.asarray(Y)


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_random_mini_batches_course_permutation_and_sizes(bk, seed):
    X_h, Y_h, X, Y = _indexed_data(bk, 3, 148)
    state = np.random.get_state()[1].copy()
    batches = optim.random_mini_batches(X, Y, 64, seed)
    np.testing.assert_array_equal(np.random.get_state()[1], state)  # global state untouched
    # m = 148 = 64 + 64 + 20
    assert [b[0].shape for b in batches] == [(3, 64), (3, 64), (3, 20)]
    assert [b[1].shape for b in batches] == [(1, 64), (1, 64), (1, 20)]
    perm = _course_permutation(seed, 148)
    np.testing.assert_array_equal(np.concatenate([to_np(b[0]) for b in batches], axis=1), X_h[:, perm])
    np.testing.assert_array_equal(np.concatenate([to_np(b[1]) for b in batches], axis=1), Y_h[:, perm])
    for bx, by in batches:
        assert_on(bk, bx, "float64")
        assert_on(bk, by, "int64")


def test_random_mini_batches_course_defaults_and_exact_split(bk):
    _, _, X, Y = _indexed_data(bk, 2, 128)
    batches = optim.random_mini_batches(X, Y)  # mini_batch_size 64, seed 0
    assert [b[0].shape[1] for b in batches] == [64, 64]  # no empty last batch
    np.testing.assert_array_equal(to_np(batches[0][1])[0], _course_permutation(0, 128)[:64])


@pytest.mark.parametrize("size", [10, 11, 50])
def test_random_mini_batches_one_batch_when_size_at_least_m(bk, size):
    X_h, _, X, Y = _indexed_data(bk, 2, 10)
    batches = optim.random_mini_batches(X, Y, size, 3)
    assert len(batches) == 1
    np.testing.assert_array_equal(to_np(batches[0][0]), X_h[:, _course_permutation(3, 10)])


def test_random_mini_batches_bad_inputs():
    X = np.zeros((2, 5))
    Y = np.zeros((1, 5))
    with pytest.raises(ValueError, match=r"mini_batch_size: expected an integer > 0, got 0"):
        optim.random_mini_batches(X, Y, 0)
    with pytest.raises(TypeError, match=r"mini_batch_size: expected an integer"):
        optim.random_mini_batches(X, Y, 2.5)
    with pytest.raises(ValueError, match=r"Y: expected a 2-D array .*reshape it to \(1, 5\)"):
        optim.random_mini_batches(X, np.zeros(5))
    with pytest.raises(ValueError, match=r"Y: expected 5 examples"):
        optim.random_mini_batches(X, np.zeros((1, 4)))
    with pytest.raises(ValueError, match=r"seed: expected an integer in \[0, 4294967295\], got -1"):
        optim.random_mini_batches(X, Y, 2, -1)
    with pytest.raises(TypeError, match=r"X: expected a 2-D array"):
        optim.random_mini_batches([[1.0, 2.0]], Y)


# --------------------------------------------------------------------------- #
# learning-rate decay


def test_update_lr_course_value():
    # 0.5 / (1 + 1 * 2) = 0.5 / 3
    assert optim.update_lr(0.5, 2, 1) == pytest.approx(0.5 / 3, rel=1e-15)
    assert optim.update_lr(0.5, 0, 1) == 0.5
    assert optim.update_lr(0.5, 10, 0) == 0.5
    assert type(optim.update_lr(0.5, 2, 1)) is float


def test_schedule_lr_decay_course_values():
    # floor(100 / 1000) = 0 -> 0.5 ; floor(1000 / 1000) = 1 -> 0.5 / 2 ; floor(2999 / 1000) = 2 -> 0.5 / 3
    assert optim.schedule_lr_decay(0.5, 100, 1, 1000) == 0.5
    assert optim.schedule_lr_decay(0.5, 1000, 1, 1000) == 0.25
    assert optim.schedule_lr_decay(0.5, 2999, 1) == pytest.approx(0.5 / 3, rel=1e-15)
    # the course's notebook check: lr0 0.5, decay_rate 0.3, epoch 10 (interval 100) -> 0.5 / 1.0
    assert optim.schedule_lr_decay(0.5, 10, 0.3, 100) == 0.5
    # epoch 200, interval 100, decay 0.3 -> 0.5 / (1 + 0.6) = 0.3125
    assert optim.schedule_lr_decay(0.5, 200, 0.3, 100) == pytest.approx(0.3125, rel=1e-15)
    assert type(optim.schedule_lr_decay(0.5, 1000, 1)) is float


def test_lr_decay_bad_inputs():
    with pytest.raises(ValueError, match="learning_rate0: expected a finite number > 0"):
        optim.update_lr(-0.5, 1, 1)
    with pytest.raises(ValueError, match="decay_rate: expected a finite number >= 0"):
        optim.update_lr(0.5, 1, -1)
    with pytest.raises(ValueError, match="epoch_num: expected an integer >= 0"):
        optim.schedule_lr_decay(0.5, -1, 1)
    with pytest.raises(ValueError, match="time_interval: expected an integer > 0"):
        optim.schedule_lr_decay(0.5, 10, 1, 0)


# --------------------------------------------------------------------------- #
# L2 regularisation


def _two_layer(bk, dtype="float64"):
    rng = np.random.default_rng(3)
    host = {"W1": rng.standard_normal((3, 2)), "b1": rng.standard_normal((3, 1)),
            "W2": rng.standard_normal((1, 3)), "b2": rng.standard_normal((1, 1))}
    return host, _on(bk, host, dtype)


def test_l2_cost_hand_value(bk, dtype):
    p = _on(bk, {"W1": np.array([[1.0, -2.0]]), "b1": np.array([[10.0]]),
                 "W2": np.array([[3.0]]), "b2": np.array([[-7.0]])}, dtype)
    # (lambd / (2 m)) * (1 + 4 + 9) = (0.7 / 10) * 14 = 0.98 (biases not penalised)
    cost = optim.l2_cost(p, 0.7, 5)
    assert_on(bk, cost, dtype, ())
    assert float(cost) == pytest.approx(0.98, rel=rtol_for(dtype) * 10)
    assert float(optim.l2_cost(p, 0, 5)) == 0.0


def test_add_l2_gradients_is_the_gradient_of_l2_cost(bk):
    host, p = _two_layer(bk)
    lambd, m, h = 0.3, 4, 1e-6
    zero = {"dW1": np.zeros((3, 2)), "db1": np.zeros((3, 1)), "dW2": np.zeros((1, 3)), "db2": np.zeros((1, 1))}
    grads = optim.add_l2_gradients(_on(bk, zero, "float64"), p, lambd, m)  # (lambd / m) W, 0 for b
    for l in (1, 2):
        W = host[f"W{l}"]
        num = np.zeros_like(W)
        for idx in np.ndindex(W.shape):  # central differences
            plus, minus = W.copy(), W.copy()
            plus[idx] += h
            minus[idx] -= h
            jp = float(optim.l2_cost({**p, f"W{l}": bk.asarray(plus)}, lambd, m))
            jm = float(optim.l2_cost({**p, f"W{l}": bk.asarray(minus)}, lambd, m))
            num[idx] = (jp - jm) / (2 * h)
        np.testing.assert_allclose(to_np(grads[f"dW{l}"]), num, rtol=1e-7, atol=1e-10)
        np.testing.assert_allclose(to_np(grads[f"dW{l}"]), lambd / m * W, rtol=1e-14)
        np.testing.assert_array_equal(to_np(grads[f"db{l}"]), 0.0)


def test_add_l2_gradients_adds_to_existing_and_keeps_other_keys(bk, dtype):
    p = _on(bk, {"W1": np.array([[1.0, -2.0]]), "b1": np.array([[0.5]])}, dtype)
    g = _on(bk, {**G1, "dA0": np.array([[1.0], [2.0]])}, dtype)
    snap, objs = _host(g), dict(g)
    new = optim.add_l2_gradients(g, p, 0.5, 2)
    # dW = [[1, -2]] + (0.5 / 2) [[1, -2]] = [[1.25, -2.5]] ; db, dA0 unchanged
    _close(new["dW1"], [[1.25, -2.5]], dtype)
    assert new["db1"] is g["db1"] and new["dA0"] is g["dA0"]
    assert_on(bk, new["dW1"], dtype, (1, 2))
    _assert_untouched(g, snap, objs)
    _assert_same(optim.add_l2_gradients(g, p, 0, 2), g)  # lambd = 0: nothing changes


def test_compute_cost_with_regularization_adds_l2_cost(bk, dtype):
    _, p = _two_layer(bk, dtype)
    AL = bk.asarray(np.array([[0.8, 0.9, 0.4, 0.3]]), dtype=dtype)
    Y = bk.asarray(np.array([[1.0, 1.0, 0.0, 1.0]]), dtype=dtype)
    J = optim.compute_cost_with_regularization(AL, Y, p, 0.2)
    assert_on(bk, J, dtype, ())
    expected = bpnet.compute_cost(AL, Y) + optim.l2_cost(p, 0.2, 4)
    np.testing.assert_array_equal(to_np(J), to_np(expected))
    np.testing.assert_array_equal(to_np(optim.compute_cost_with_regularization(AL, Y, p, 0)),
                                  to_np(bpnet.compute_cost(AL, Y)))


def test_compute_cost_with_regularization_course_value():
    # the course's compute_cost_with_regularization_test_case: expected cost 1.78648594516
    rs = np.random.RandomState(1)
    p = {}
    for l, (n, n_prev) in enumerate([(2, 3), (3, 2), (1, 3)], start=1):
        p[f"W{l}"] = rs.randn(n, n_prev)
        p[f"b{l}"] = rs.randn(n, 1)
    Y = np.array([[1, 1, 0, 1, 0]])
    a3 = np.array([[0.40682402, 0.01629284, 0.16722898, 0.10118111, 0.40682402]])
    assert float(optim.compute_cost_with_regularization(a3, Y, p, 0.1)) == pytest.approx(1.78648594516, abs=1e-10)


def test_l2_bad_inputs():
    with pytest.raises(ValueError, match="lambd: expected a finite number >= 0"):
        optim.l2_cost(P0, -0.1, 3)
    with pytest.raises(ValueError, match="m: expected an integer > 0"):
        optim.add_l2_gradients(G1, P0, 0.1, 0)
    with pytest.raises(TypeError, match=r"parameters\['W1'\]"):
        optim.compute_cost_with_regularization(np.array([[0.5]], dtype=np.float32), np.array([[1.0]]), P0, 0.1)


# --------------------------------------------------------------------------- #
# gradient clipping


def test_clip_gradients_hand_example(bk, dtype):
    g = _on(bk, {"dA0": np.array([[9.0], [9.0]]), "dW1": np.array([[3.0, 0.0]]), "db1": np.array([[4.0]])}, dtype)
    snap, objs = _host(g), dict(g)
    new, norm = optim.clip_gradients(g, 1.0)
    # ||g|| = sqrt(3^2 + 0^2 + 4^2) = 5 (dA0 not counted) ; scale = 1 / (5 + 1e-6) ~ 0.2
    assert_on(bk, norm, dtype, ())
    assert float(norm) == pytest.approx(5.0, rel=rtol_for(dtype))
    scale = 1 / (5 + 1e-6)
    _close(new["dW1"], [[3 * scale, 0.0]], dtype)
    _close(new["db1"], [[4 * scale]], dtype)
    assert new["dA0"] is g["dA0"]
    assert_on(bk, new["dW1"], dtype, (1, 2))
    _assert_untouched(g, snap, objs)


def test_clip_gradients_below_max_norm_changes_nothing(bk, dtype):
    g = _on(bk, {"dW1": np.array([[3.0, 0.0]]), "db1": np.array([[4.0]]),
                 "dW2": np.array([[0.0]]), "db2": np.array([[0.0]])}, dtype)
    new, norm = optim.clip_gradients(g, 10.0)  # 10 / (5 + 1e-6) > 1 -> scale 1
    assert float(norm) == pytest.approx(5.0, rel=rtol_for(dtype))
    _assert_same(new, g)
    zero = _on(bk, {"dW1": np.zeros((2, 2)), "db1": np.zeros((2, 1))}, dtype)
    new, norm = optim.clip_gradients(zero, 1.0)  # ||g|| = 0: no division by zero
    assert float(norm) == 0.0
    _assert_same(new, zero)


def test_clip_gradients_bad_inputs():
    with pytest.raises(ValueError, match="max_norm: expected a finite number > 0"):
        optim.clip_gradients(G1, 0)
    with pytest.raises(ValueError, match=r"grads: expected keys dW1, db1"):
        optim.clip_gradients({"dA0": np.zeros((1, 1))}, 1.0)
    with pytest.raises(TypeError, match=r"grads\['db1'\] has dtype float32"):
        optim.clip_gradients({"dW1": np.zeros((1, 1)), "db1": np.zeros((1, 1), dtype=np.float32)}, 1.0)


# --------------------------------------------------------------------------- #
# bad inputs (badinput.py)


#: each case: (function of a small network n on the backend under test, exception type, regex on the message)
PER_BACKEND = [
    # ---- update_parameters ---------------------------------------------------------------
    pytest.param(
        lambda n: bpnet.update_parameters(n.params, n.grads, 0),
        ValueError, r"^learning_rate: expected a finite number > 0, got 0$",
        id="update-lr-zero",
    ),
    pytest.param(
        lambda n: bpnet.update_parameters(n.params, n.grads, -0.1),
        ValueError, r"^learning_rate: expected a finite number > 0, got -0\.1$",
        id="update-lr-negative",
    ),
    pytest.param(
        lambda n: bpnet.update_parameters(n.params, n.grads, math.nan),
        ValueError, r"^learning_rate: expected a finite number > 0, got nan$",
        id="update-lr-nan",
    ),
    pytest.param(
        lambda n: bpnet.update_parameters(n.params, n.grads, math.inf),
        ValueError, r"^learning_rate: expected a finite number > 0, got inf$",
        id="update-lr-inf",
    ),
    pytest.param(
        lambda n: bpnet.update_parameters(n.params, n.grads, "0.01"),
        TypeError, r"^learning_rate: expected a real number > 0, got str '0\.01'$",
        id="update-lr-string",
    ),
    pytest.param(
        lambda n: bpnet.update_parameters(n.params, n.grads, True),
        TypeError, r"^learning_rate: expected a real number > 0, got bool True$",
        id="update-lr-True",
    ),
    pytest.param(
        lambda n: bpnet.update_parameters(n.params, n.grads, 1j),
        TypeError, r"^learning_rate: expected a real number > 0, got complex",
        id="update-lr-complex",
    ),
    pytest.param(
        lambda n: bpnet.update_parameters(n.params, without(n.grads, "db2"), 0.1),
        ValueError, r"^grads: missing key 'db2' \(parameters has L = 2 layers\)$",
        id="update-grads-missing-db2",
    ),
    pytest.param(
        lambda n: bpnet.update_parameters(n.params, replaced(n.grads, dW1=n.bk.asarray(host((3, 4)))), 0.1),
        ValueError, r"^grads\['dW1'\]: expected shape \(4, 3\) like parameters\['W1'\], got \(3, 4\)$",
        id="update-grads-dW1-wrong-shape",
    ),
    pytest.param(
        lambda n: bpnet.update_parameters(n.params, replaced(n.grads, db2=n.bk.asarray(np.zeros((1, 2)))), 0.1),
        ValueError, r"^grads\['db2'\]: expected shape \(1, 1\) like parameters\['b2'\], got \(1, 2\)$",
        id="update-grads-db2-wrong-shape",
    ),
    pytest.param(
        lambda n: bpnet.update_parameters(n.params, replaced(n.grads, dW2=n.bk.asarray(host((1, 4)), dtype="float32")), 0.1),
        TypeError, r"grads\['dW2'\].*float32.*float64|float64.*grads\['dW2'\].*float32",
        id="update-grads-dW2-float32",
    ),
    pytest.param(
        lambda n: bpnet.update_parameters(n.params, replaced(n.grads, dW1=0.0), 0.1),
        TypeError, r"^grads\['dW1'\]: expected an array, got float",
        id="update-grads-dW1-scalar",
    ),
    pytest.param(
        lambda n: bpnet.update_parameters(n.params, list(n.grads.values()), 0.1),
        TypeError, r"^grads: expected a dict with keys dW1, db1, \.\.\.(, dW2, db2)?, got list",
        id="update-grads-not-a-dict",
    ),
    pytest.param(
        lambda n: bpnet.update_parameters(without(n.params, "W2"), n.grads, 0.1),
        ValueError, r"^parameters: unexpected keys \['b2'\] for an L = 1 layer network",
        id="update-params-missing-W2",
    ),
]


@pytest.mark.parametrize(("call", "exc", "pattern"), PER_BACKEND)
def test_bad_input(bk, call, exc, pattern, harness):
    n = small_net(bk)
    harness.refuses(lambda: call(n), exc, pattern)


def _update_grads_numpy_params_strict(c):
    np_bk, strict, params = numpy_and_strict()
    grads = {f"d{k}": np_bk.asarray(np.zeros(tuple(v.shape))) for k, v in params.items()}
    return bpnet.update_parameters(params, grads, 0.1)


def _update_grads_device1_params_default(c):
    dev0, dev1, params = default_and_device1()
    grads = {f"d{k}": dev1.asarray(np.zeros(tuple(v.shape))) for k, v in params.items()}
    return bpnet.update_parameters(params, grads, 0.1)


#: each case: (function of the numpy context c of badinput.api_context, exception type, regex on the message)
BAD_INPUTS = [
    # ---- two backends, two devices ---------------------------------------------------
    pytest.param(
        _update_grads_numpy_params_strict, TypeError,
        r"come from two backends: .*grads\['dW1'\] is a numpy array",
        id="update-grads-numpy-params-strict",
    ),
    pytest.param(
        _update_grads_device1_params_default, ValueError,
        r"on two devices of array_api_strict: .*grads\['dW1'\] on 'device1'",
        id="update-grads-device1-params-default-device",
    ),
    # ---- on the numpy context c ------------------------------------------------------
    pytest.param(lambda c: bpnet.update_parameters(c.params, c.grads, 0), ValueError,
                 r"^learning_rate: expected a finite number > 0, got 0$", id="api-update-lr-zero"),
    pytest.param(lambda c: bpnet.update_parameters(c.params, c.grads, -0.5), ValueError,
                 r"^learning_rate: expected a finite number > 0, got -0\.5$", id="api-update-lr-negative"),
    # ---- momentum, RMSprop, Adam on P0, G1 -------------------------------------------
    pytest.param(
        lambda c: optim.update_parameters_with_momentum(P0, G1, optim.initialize_velocity(P0), 1.5, 0.1),
        ValueError, r"beta: expected a finite number in \[0, 1\)",
        id="momentum-beta-above-1",
    ),
    pytest.param(
        lambda c: optim.update_parameters_with_momentum(P0, G1, optim.initialize_velocity(P0), 0.9, -0.1),
        ValueError, r"learning_rate: expected a finite number > 0, got -0.1",
        id="momentum-lr-negative",
    ),
    pytest.param(
        lambda c: optim.update_parameters_with_rmsprop(P0, G1, optim.initialize_rmsprop(P0), learning_rate=0),
        ValueError, r"learning_rate: expected a finite number > 0",
        id="rmsprop-lr-zero",
    ),
    pytest.param(
        lambda c: optim.update_parameters_with_adam(P0, G1, *optim.initialize_adam(P0), 0),
        ValueError, r"t: expected an integer > 0, got 0",
        id="adam-t-zero",
    ),
    pytest.param(
        lambda c: optim.update_parameters_with_adam(P0, G1, *optim.initialize_adam(P0), 1.0),
        TypeError, r"t: expected an integer",
        id="adam-t-float",
    ),
    pytest.param(
        lambda c: optim.update_parameters_with_adam(P0, G1, *optim.initialize_adam(P0), 1, beta2=1),
        ValueError, r"beta2: expected a finite number in \[0, 1\)",
        id="adam-beta2-1",
    ),
    pytest.param(
        lambda c: optim.update_parameters_with_momentum(P0, {"dW1": G1["dW1"]}, optim.initialize_velocity(P0), 0.9, 0.1),
        ValueError, r"grads: missing key 'db1' \(parameters has L = 1 layers\)",
        id="momentum-grads-missing-db1",
    ),
    pytest.param(
        lambda c: optim.update_parameters_with_momentum(P0, G1, {"dW1": np.zeros((1, 2))}, 0.9, 0.1),
        ValueError, r"^v: missing key 'db1' .*initialize_velocity",
        id="momentum-v-missing-db1",
    ),
    pytest.param(
        lambda c: optim.update_parameters_with_adam(P0, G1, optim.initialize_velocity(P0), {"dW1": np.zeros((1, 2))}, 1),
        ValueError, r"^s: missing key 'db1' .*initialize_adam",
        id="adam-s-missing-db1",
    ),
    pytest.param(
        lambda c: optim.update_parameters_with_momentum(P0, {**G1, "dW1": np.zeros((2, 1))}, optim.initialize_velocity(P0), 0.9, 0.1),
        ValueError, r"grads\['dW1'\]: expected shape \(1, 2\) like parameters\['W1'\], got \(2, 1\)",
        id="momentum-grads-dW1-wrong-shape",
    ),
    pytest.param(
        lambda c: optim.update_parameters_with_rmsprop(P0, {**G1, "db1": np.zeros((1, 1), dtype=np.float32)}, optim.initialize_rmsprop(P0)),
        TypeError, r"grads\['db1'\] has dtype float32 but parameters\['b1'\] has float64",
        id="rmsprop-grads-db1-float32",
    ),
    pytest.param(
        lambda c: optim.update_parameters_with_momentum(P0, [1], optim.initialize_velocity(P0), 0.9, 0.1),
        TypeError, r"grads: expected a dict",
        id="momentum-grads-not-a-dict",
    ),
    pytest.param(
        lambda c: optim.initialize_velocity({"W1": np.zeros((1, 2))}),
        ValueError, r"parameters: missing keys \['b1'\]",
        id="initialize_velocity-params-missing-b1",
    ),
]


@pytest.mark.parametrize(("call", "exc", "pattern"), BAD_INPUTS)
def test_bad_input_once(call, exc, pattern, harness):
    c = api_context()
    harness.refuses(lambda: call(c), exc, pattern)


def test_the_bad_input_tables_are_distinct():
    check_table(PER_BACKEND, minimum=14)
    check_table(BAD_INPUTS, minimum=17)


def test_bad_inputs_mixed_devices():
    import array_api_strict as xps

    dev1 = [d for d in xps.__array_namespace_info__().devices() if "device1" in str(d)][0]
    p = {"W1": xps.asarray([[1.0, -2.0]]), "b1": xps.asarray([[0.5]])}
    g = {"dW1": xps.asarray([[1.0, -2.0]], device=dev1), "db1": xps.asarray([[4.0]])}
    with pytest.raises(ValueError, match=r"grads\['dW1'\] and parameters\['W1'\] are on two devices"):
        optim.update_parameters_with_momentum(p, g, optim.initialize_velocity(p), 0.9, 0.1)


# --------------------------------------------------------------------------- #
# nothing half-done: a call that raises leaves its inputs untouched


def _snapshot(d):
    return {k: (v, to_np(v).copy()) for k, v in d.items()}


def _assert_unchanged(d, snap):
    assert list(d) == list(snap)
    for k, (obj, values) in snap.items():
        assert d[k] is obj, f"{k} was replaced"
        np.testing.assert_array_equal(to_np(d[k]), values, err_msg=f"{k} was modified")


@pytest.mark.parametrize(
    "breakage",
    [
        pytest.param(lambda n: (n.params, n.grads, -1.0), id="lr-negative"),
        pytest.param(lambda n: (n.params, n.grads, math.nan), id="lr-nan"),
        pytest.param(lambda n: (n.params, without(n.grads, "db2"), 0.1), id="grads-missing-last-key"),
        pytest.param(
            lambda n: (n.params, replaced(n.grads, db2=n.bk.asarray(np.zeros((1, 2)))), 0.1),
            id="grads-last-wrong-shape",
        ),
    ],
)
def test_update_parameters_leaves_inputs_unchanged(bk, breakage):
    n = small_net(bk)
    params, grads, lr = breakage(n)
    p_snap, g_snap = _snapshot(params), _snapshot(grads)
    with pytest.raises((ValueError, TypeError)):
        bpnet.update_parameters(params, grads, lr)
    _assert_unchanged(params, p_snap)
    _assert_unchanged(grads, g_snap)


def test_update_parameters_valid_call_does_not_mutate(bk):
    # the contrast: the valid call returns a new dict and leaves the input alone
    n = small_net(bk)
    snap = _snapshot(n.params)
    new = bpnet.update_parameters(n.params, n.grads, 0.1)
    assert new is not n.params
    _assert_unchanged(n.params, snap)
