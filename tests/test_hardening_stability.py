"""Numerical stability end to end at pre-activations up to |z| = 1e4, every backend, float32 and float64.

What keeps it finite (bpnet/activations.py, bpnet/losses.py):

* sigmoid is the two-branch form built on ``exp(-|z|)`` (never overflows); softmax
  subtracts each column's max before ``exp``; tanh is the library's;
* **the log-losses are clipped, not computed from logits**: ``_clip01`` clips ``AL``
  to ``[eps, 1 - eps]`` with ``eps = finfo(dtype).eps`` (2.2e-16 in float64,
  1.2e-7 in float32) before the ``log`` in both costs *and* before the course's
  division in ``dAL = -(Y/AL - (1-Y)/(1-AL))`` (binary) and ``dAL = -Y/AL``
  (categorical).  So each cost term is at most ``-log(eps)`` (36.04 / 15.94) and
  ``|dAL| <= 1/eps`` (4.5e15 / 8.4e6): large, finite.  A saturated sigmoid output
  times its derivative ``A(1 - A) = 0`` gives ``dZ = 0`` on the course path (the
  gradient vanishes, it does not become NaN);
* mse is not clipped: ``J = sum (AL - Y)^2 / (2m)`` and ``dAL = AL - Y`` are finite
  for any finite ``AL`` (at |z| = 1e4: J ~ 5e7, fine even in float32);
* the fused path ``dZ[L] = AL - Y`` (sigmoid + binary, softmax + categorical,
  linear + mse), which training uses, divides by nothing.

The suite runs with ``filterwarnings = error``; each test also turns warnings into
errors itself, so an overflow/invalid ``RuntimeWarning`` anywhere fails it.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from conftest import HIDDEN, OUTPUT_LOSS_PAIRS, assert_on, to_np

import bpnet
from bpnet.datasets import load_dataset
from bpnet.model import MLP

Z_MAX = 1e4

PAIRS = OUTPUT_LOSS_PAIRS


def _g(name, Z):
    """The hidden activation on the host, float64 (to place the output pre-activations)."""
    if name == "relu":
        return np.maximum(Z, 0.0)
    if name == "leaky_relu":
        return np.where(Z > 0, Z, 0.01 * Z)
    if name == "tanh":
        return np.tanh(Z)
    if name == "sigmoid":
        e = np.exp(-np.abs(Z))
        return np.where(Z >= 0, 1 / (1 + e), e / (1 + e))
    return Z


def _extreme_net(bk, dtype, hidden, n_out):
    """X, parameters with max |Z[1]| = max |Z[2]| = 1e4 (both signs), and labels that disagree."""
    X = np.array([[1.0, -1.0, 1.0, 0.5, -0.3, 0.1], [1.0, -1.0, -1.0, 0.2, 0.9, -0.1]])
    W1 = np.array([[5e3, 5e3], [-5e3, -5e3], [1e4, 0.0], [0.0, -1e4]])
    b1 = np.array([[0.5], [-0.5], [0.25], [-0.25]])
    A1 = _g(hidden, W1 @ X + b1)
    base = np.random.default_rng(7).normal(size=(n_out, 4))
    W2 = base * (Z_MAX / np.abs(base @ A1).max())  # the output layer's |Z| peaks at exactly 1e4
    b2 = np.zeros((n_out, 1))
    classes = np.array([0, 1, 2, 2, 1, 0]) % max(n_out, 2)
    Y = (np.array([[0.0, 1.0, 1.0, 0.0, 1.0, 0.0]]) if n_out == 1 else np.eye(n_out)[:, classes])
    params = {k: bk.asarray(v, dtype=dtype) for k, v in dict(W1=W1, b1=b1, W2=W2, b2=b2).items()}
    return bk.asarray(X, dtype=dtype), bk.asarray(Y, dtype=dtype), params


def _finite(a):
    return bool(np.all(np.isfinite(to_np(a))))


@pytest.mark.parametrize("output, loss", PAIRS, ids=[f"{o}-{l}" for o, l in PAIRS])
def test_cost_and_gradients_finite_at_z_1e4(bk, dtype, output, loss):
    n_out = 3 if output == "softmax" or loss == "categorical_crossentropy" else 1
    eps = float(np.finfo(dtype).eps)
    for hidden in HIDDEN:
        X, Y, params = _extreme_net(bk, dtype, hidden, n_out)
        kw = dict(hidden_activation=hidden, output_activation=output)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            AL, caches = bpnet.L_model_forward(X, params, **kw)
            cost = bpnet.compute_cost(AL, Y, loss=loss)
            paths = {"course": bpnet.L_model_backward(AL, Y, caches, loss=loss, **kw)}
            if (output, loss) in bpnet.FUSED_PAIRS:
                paths["fused"] = bpnet.L_model_backward(AL, Y, caches, loss=loss, fused=True, **kw)
        # the test really is at the extreme: both layers' pre-activations reach |z| = 1e4
        for (_, Z) in caches:
            assert float(np.abs(to_np(Z)).max()) == pytest.approx(Z_MAX, rel=1e-3), hidden
        assert_on(bk, cost, dtype, ())
        assert math.isfinite(float(cost)), (hidden, float(cost))
        if loss != "mse":  # the documented clip: each term at most -log(eps)
            terms = n_out if loss == "binary_crossentropy" else 1
            assert float(cost) <= terms * -math.log(eps) * (1 + 1e-5), (hidden, float(cost))
        for path, grads in paths.items():
            for k, g in grads.items():
                assert_on(bk, g, dtype)
                assert _finite(g), (hidden, path, k)
        A = to_np(AL)  # saturated for real: outputs exactly at an asymptote
        if output == "sigmoid":
            assert np.any((A == 0.0) | (A == 1.0)), hidden
        elif output == "tanh":
            assert np.any(np.abs(A) == 1.0), hidden
        elif output == "softmax":
            assert np.any(A == 1.0), hidden


def test_losses_at_exactly_saturated_outputs(bk, dtype):
    """AL exactly 0 or 1 against the opposite label: the clipped value -log(eps), finite gradients."""
    eps = float(np.finfo(dtype).eps)
    AL = bk.asarray(np.array([[1.0, 0.0, 1.0, 0.0]]), dtype=dtype)
    Y = bk.asarray(np.array([[0.0, 1.0, 1.0, 0.0]]), dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bce = float(bpnet.compute_cost(AL, Y))
        A3 = bk.asarray(np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]), dtype=dtype)
        Y3 = bk.asarray(np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0]]), dtype=dtype)
        cce = float(bpnet.compute_cost(A3, Y3, loss="categorical_crossentropy"))
    # two wrong examples of four cost -log(eps) each (the right ones ~eps): J = -log(eps) / 2
    assert bce == pytest.approx(-math.log(eps) / 2, rel=1e-5)
    assert cce == pytest.approx(-math.log(eps) / 2, rel=1e-5)  # one of two columns wrong


def _saturation(AL):
    A = to_np(AL).astype(np.float64)
    return float(np.mean(A * (1 - A) < 1e-6))


@pytest.fixture(scope="module")
def cancer():
    return load_dataset("breast_cancer")


def test_huge_learning_rate_saturates_but_never_nans_mlp(bk, dtype, cancer):
    """gd at lr = 1e5 drives the sigmoid output into saturation; the cost stays finite, no NaN anywhere."""
    model = MLP([cancer.n_x, 16, 1], hidden_activation="tanh", dtype=dtype, seed=3, backend=bk)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        hist = model.fit(cancer.X_train, cancer.Y_train, epochs=12, batch_size=64, optimizer="gd",
                         learning_rate=1e5)
        AL = model.predict_proba(cancer.X_train)
    assert all(math.isfinite(c) for c in hist.cost), hist.cost
    assert all(_finite(v) for v in model.parameters.values())
    assert _finite(AL) and _saturation(AL) > 0.9, _saturation(AL)


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
            assert all(_finite(g) for g in grads.values())
            params = bpnet.update_parameters(params, grads, 1e3)
        AL, _ = bpnet.L_model_forward(X, params)
    assert all(math.isfinite(c) for c in costs), costs
    assert all(_finite(v) for v in params.values())
    assert _saturation(AL) > 0.5, _saturation(AL)


def test_huge_learning_rate_L_layer_model(bk, dtype, cancer):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        params, costs = bpnet.L_layer_model(bk.asarray(cancer.X_train, dtype=dtype),
                                            bk.asarray(cancer.Y_train, dtype=dtype), [cancer.n_x, 8, 1],
                                            learning_rate=1e4, num_iterations=40, hidden_activation="tanh",
                                            print_every=5, backend=bk)
        AL, _ = bpnet.L_model_forward(bk.asarray(cancer.X_train, dtype=dtype), params,
                                      hidden_activation="tanh")
    assert all(math.isfinite(c) for c in costs) and all(_finite(v) for v in params.values())
    assert _saturation(AL) > 0.5
