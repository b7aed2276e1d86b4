"""Inverted dropout (bpnet.nn.dropout): the masks, drawn on the device by the counter-based generator
(bpnet.nn.random), the same on every backend; the backward pass through them."""

import numpy as np
import pytest
from conftest import assert_on, to_np

import bpnet
from bpnet import dropout_masks

pytestmark = pytest.mark.every_backend  # torch and jax run every case here (tests/conftest.py)


def test_dropout_masks_are_reproducible_and_the_same_on_every_backend(bk, cancer):
    masks = dropout_masks([cancer.n_x, 32, 16, 1], 500, 0.8, rng=3, dtype="float32", backend=bk)
    assert len(masks) == 2
    M = to_np(masks[0])
    assert_on(bk, masks[0], "float32", (32, 500))
    assert set(np.unique(M)) == {0.0, np.float32(1 / 0.8)}
    assert abs((M > 0).mean() - 0.8) < 0.02  # 16000 Bernoulli(0.8) draws
    again = dropout_masks([cancer.n_x, 32, 16, 1], 500, 0.8, rng=3, dtype="float32", backend="numpy")
    np.testing.assert_array_equal(M, again[0])  # same masks on every backend


def test_dropout_backward_matches_finite_differences(bk):
    rng = np.random.default_rng(5)
    X = bk.asarray(rng.normal(size=(3, 6)))
    Y = bk.asarray(rng.integers(0, 2, size=(1, 6)))
    p = bpnet.initialize_parameters_deep([3, 5, 4, 1], init="xavier", seed=1, backend=bk)
    masks = dropout_masks([3, 5, 4, 1], 6, 0.6, rng=2, backend=bk)
    kw = dict(hidden_activation="tanh", masks=masks)
    AL, caches = bpnet.L_model_forward(X, p, **kw)
    grads = bpnet.L_model_backward(AL, Y, caches, **kw)
    eps = 1e-6
    for key in ("W1", "b2", "W3"):
        host = to_np(p[key])
        num = np.zeros_like(host)
        for idx in np.ndindex(*host.shape):
            E = np.zeros_like(host)
            E[idx] = eps
            Jp = float(bpnet.compute_cost(bpnet.L_model_forward(X, {**p, key: bk.asarray(host + E)}, **kw)[0], Y))
            Jm = float(bpnet.compute_cost(bpnet.L_model_forward(X, {**p, key: bk.asarray(host - E)}, **kw)[0], Y))
            num[idx] = (Jp - Jm) / (2 * eps)
        np.testing.assert_allclose(to_np(grads["d" + key]), num, rtol=1e-6, atol=1e-9)
