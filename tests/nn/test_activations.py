"""Activations: hand-worked values, kept dtype/device, derivatives, stability."""

import numpy as np
import pytest
from conftest import assert_on, to_np

import bpnet
from bpnet.nn import activations
from bpnet.nn.activations import ACTIVATIONS, LEAKY_RELU_SLOPE

# Z, shape (2, 3): columns are examples
Z_HOST = np.array([[-2.0, 0.0, 3.0],
                   [1.0, -0.5, 0.5]])


def test_registry_is_complete():
    assert set(ACTIVATIONS) == {"relu", "leaky_relu", "tanh", "sigmoid", "softplus", "linear", "softmax", "exp"}
    for name, act in ACTIVATIONS.items():
        assert act.name == name
        assert bpnet.get_activation(name) is act
        # every entry carries what every user reads: both halves, the equations explain prints, its FLOPs
        assert callable(act.forward) and (act.derivative is not None or act.vjp is not None or name == "linear")
        assert "{dA}" in act.dz and act.formula and act.derivative_text and len(act.flops) == 2
    assert [n for n, a in ACTIVATIONS.items() if not a.hidden] == ["softmax", "exp"]
    assert all(a.output_only for a in ACTIVATIONS.values() if not a.hidden)


def _course_pair(name):
    """The course-style (forward, backward) functions of an activation, e.g. bpnet.relu, bpnet.relu_backward
    (looked up where they are defined, bpnet.nn.activations)."""
    return getattr(activations, name), getattr(activations, "identity_backward" if name == "linear" else f"{name}_backward")


def test_softplus_values(bk, dtype):
    Z = bk.asarray(np.array([[0.0, np.log(3.0), -50.0]]), dtype=dtype)
    A, cache = bpnet.softplus(Z)
    assert cache is Z
    assert_on(bk, A, dtype, (1, 3))
    # log(1 + e^0) = ln 2; log(1 + 3) = ln 4; log(1 + e^-50) = e^-50 to rounding
    np.testing.assert_allclose(to_np(A), [[np.log(2.0), np.log(4.0), np.exp(-50.0)]], rtol=1e-6)
    dA = bk.asarray(np.ones((1, 3)), dtype=dtype)
    # softplus' = sigmoid: 1/2, 3/4, e^-50 (exact through expm1, not 1 - (1 - e^-50) = 0)
    np.testing.assert_allclose(to_np(bpnet.softplus_backward(dA, Z)), [[0.5, 0.75, np.exp(-50.0)]], rtol=1e-6)


def test_relu_values(bk, dtype):
    Z = bk.asarray(Z_HOST, dtype=dtype)
    A, cache = bpnet.relu(Z)
    assert cache is Z  # the course's activation_cache is Z itself
    assert_on(bk, A, dtype, (2, 3))
    # max(0, z): [-2, 0, 3] -> [0, 0, 3]; [1, -.5, .5] -> [1, 0, .5]
    np.testing.assert_array_equal(to_np(A), [[0, 0, 3], [1, 0, 0.5]])
    dA = bk.asarray(np.full((2, 3), 2.0), dtype=dtype)
    # dZ = dA * 1[z > 0]; at z = 0 the derivative is taken as 0
    np.testing.assert_array_equal(to_np(bpnet.relu_backward(dA, Z)), [[0, 0, 2], [2, 0, 2]])


def test_leaky_relu_values(bk, dtype):
    Z = bk.asarray(Z_HOST, dtype=dtype)
    A, _ = bpnet.leaky_relu(Z)
    assert_on(bk, A, dtype, (2, 3))
    # z < 0 -> 0.01 z: -2 -> -0.02, -0.5 -> -0.005
    np.testing.assert_allclose(to_np(A), [[-0.02, 0, 3], [1, -0.005, 0.5]], rtol=1e-6)
    dA = bk.asarray(np.ones((2, 3)), dtype=dtype)
    np.testing.assert_allclose(to_np(bpnet.leaky_relu_backward(dA, Z)),
                               [[LEAKY_RELU_SLOPE, LEAKY_RELU_SLOPE, 1], [1, LEAKY_RELU_SLOPE, 1]], rtol=1e-6)


def test_sigmoid_values(bk, dtype):
    Z = bk.asarray(np.array([[0.0, np.log(3.0), -np.log(3.0)]]), dtype=dtype)
    A, _ = bpnet.sigmoid(Z)
    assert_on(bk, A, dtype, (1, 3))
    # sigma(0) = 1/2; sigma(ln 3) = 1/(1 + 1/3) = 3/4; sigma(-ln 3) = 1/4
    np.testing.assert_allclose(to_np(A), [[0.5, 0.75, 0.25]], rtol=1e-6)
    dA = bk.asarray(np.ones((1, 3)), dtype=dtype)
    # sigma' = s(1-s): 1/4, 3/16, 3/16
    np.testing.assert_allclose(to_np(bpnet.sigmoid_backward(dA, Z)), [[0.25, 0.1875, 0.1875]], rtol=1e-6)


def test_tanh_values(bk, dtype):
    Z = bk.asarray(np.array([[0.0, np.log(2.0)]]), dtype=dtype)
    A, _ = bpnet.tanh(Z)
    # tanh(ln 2) = (2 - 1/2) / (2 + 1/2) = 3/5
    np.testing.assert_allclose(to_np(A), [[0.0, 0.6]], rtol=1e-6, atol=1e-7)
    dA = bk.asarray(np.ones((1, 2)), dtype=dtype)
    # 1 - tanh^2: 1, 1 - 9/25 = 16/25
    np.testing.assert_allclose(to_np(bpnet.tanh_backward(dA, Z)), [[1.0, 0.64]], rtol=1e-6)


def test_linear_values(bk, dtype):
    Z = bk.asarray(Z_HOST, dtype=dtype)
    A, _ = bpnet.linear(Z)
    np.testing.assert_array_equal(to_np(A), Z_HOST)
    dA = bk.asarray(Z_HOST * 3, dtype=dtype)
    np.testing.assert_array_equal(to_np(bpnet.identity_backward(dA, Z)), Z_HOST * 3)


def test_softmax_values(bk, dtype):
    # column 0: z = (0, ln 3) -> e^z = (1, 3) -> (1/4, 3/4); column 1: equal logits -> (1/2, 1/2)
    Z = bk.asarray(np.array([[0.0, 5.0], [np.log(3.0), 5.0]]), dtype=dtype)
    A, _ = bpnet.softmax(Z)
    assert_on(bk, A, dtype, (2, 2))
    np.testing.assert_allclose(to_np(A), [[0.25, 0.5], [0.75, 0.5]], rtol=1e-6)
    # JVP: dZ = A * (dA - sum(dA * A)); dA = (1, 0) in column 0:
    # sum = 1/4 -> dZ = (1/4 * 3/4, 3/4 * -1/4) = (3/16, -3/16)
    dA = bk.asarray(np.array([[1.0, 0.0], [0.0, 0.0]]), dtype=dtype)
    np.testing.assert_allclose(to_np(bpnet.softmax_backward(dA, Z))[:, 0], [0.1875, -0.1875], rtol=1e-6)


def _numeric_dZ(bk, act, Z_host, R_host, eps=1e-6):
    """d/dZ sum(g(Z) * R) by central differences, one entry at a time."""
    xp = bk.xp
    R = bk.asarray(R_host)
    grad = np.zeros_like(Z_host)
    for idx in np.ndindex(*Z_host.shape):
        E = np.zeros_like(Z_host)
        E[idx] = eps
        f_plus = float(xp.sum(act.forward(xp, bk.asarray(Z_host + E)) * R))
        f_minus = float(xp.sum(act.forward(xp, bk.asarray(Z_host - E)) * R))
        grad[idx] = (f_plus - f_minus) / (2 * eps)
    return grad


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_backward_matches_finite_differences(bk, name, rng):
    act = ACTIVATIONS[name]
    Z_host = rng.normal(size=(4, 5))
    Z_host = np.where(np.abs(Z_host) < 0.05, 0.3, Z_host)  # stay off the relu kink
    R_host = rng.normal(size=(4, 5))  # plays the role of dA
    dZ = _course_pair(name)[1](bk.asarray(R_host), bk.asarray(Z_host))
    assert_on(bk, dZ, "float64", (4, 5))
    np.testing.assert_allclose(to_np(dZ), _numeric_dZ(bk, act, Z_host, R_host), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_registry_backward_pure_and_in_place_equal_the_course_backward(bk, dtype, name, rng):
    """The entry's backward from A (the step's, in place; the course path's, pure) is the course's g_backward."""
    act, xp = ACTIVATIONS[name], bk.xp
    Z = bk.asarray(rng.normal(size=(3, 4)), dtype=dtype)
    dA_host = rng.normal(size=(3, 4))
    A = act.forward(xp, Z)
    assert_on(bk, A, dtype, (3, 4))
    want = to_np(_course_pair(name)[1](bk.asarray(dA_host, dtype=dtype), Z))
    dA = bk.asarray(dA_host, dtype=dtype)
    pure = act.backward(xp, dA, A)
    np.testing.assert_array_equal(to_np(dA), dA_host.astype(dtype))  # the pure form leaves dA alone
    assert_on(bk, pure, dtype, (3, 4))
    inplace = act.backward(xp, dA, A, inplace=True)
    for got in (pure, inplace):
        np.testing.assert_allclose(to_np(got), want, rtol=1e-6 if dtype == "float32" else 1e-12)
    if act.forward_inplace is not None:  # the step's softmax over Z equals the pure one
        np.testing.assert_allclose(to_np(act.forward_inplace(xp, xp.asarray(Z, copy=True))), to_np(A), rtol=1e-6)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_stable_at_extreme_preactivations(bk, dtype, name):
    # |z| = 1e4: no overflow, no warning (warnings are errors in this suite), finite A and dZ
    Z = bk.asarray(np.array([[-1e4, -50.0, 0.0, 50.0, 1e4], [1e4, 1e4, -1e4, 0.0, -1e4]]), dtype=dtype)
    forward, backward = _course_pair(name)
    A, _ = forward(Z)
    dZ = backward(bk.asarray(np.ones((2, 5)), dtype=dtype), Z)
    assert np.all(np.isfinite(to_np(A))) and np.all(np.isfinite(to_np(dZ)))
    if name == "sigmoid":
        np.testing.assert_array_equal(to_np(A)[0, [0, 4]], [0.0, 1.0])
    if name == "softmax":
        np.testing.assert_allclose(to_np(A).sum(axis=0), np.ones(5), rtol=1e-6)


def test_unknown_activation_name():
    with pytest.raises(ValueError, match=r"activation: unknown activation 'swish'.*'relu'"):
        bpnet.get_activation("swish")


def test_exp_values_and_cap(bk, dtype):
    """exp: A = exp(Z), g' = A (the log link of a Poisson output); Z is capped one below log(largest float)."""
    xp = bk.xp
    Z = bk.asarray(np.array([[0.0, np.log(3.0), -50.0, 1e4]]), dtype=dtype)
    A, cache = activations.exp(Z)
    assert cache is Z
    assert_on(bk, A, dtype, (1, 4))
    big = float(np.finfo(dtype).max) / np.e
    np.testing.assert_allclose(to_np(A), [[1.0, 3.0, np.exp(-50.0), big]], rtol=1e-5)
    dZ = activations.exp_backward(bk.asarray(np.full((1, 4), 0.5), dtype=dtype), Z)
    np.testing.assert_allclose(to_np(dZ), 0.5 * to_np(A), rtol=1e-6)
    with pytest.raises(ValueError, match="hidden_activation: exp grows without bound"):
        bpnet.get_activation("exp", "hidden_activation", hidden=True)
    assert bool(xp.all(xp.isfinite(A)))
