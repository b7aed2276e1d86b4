"""Bad inputs to the public functional API: the right exception, a message that helps.

Every case asserts the exception *type* (``TypeError`` for a wrong kind or dtype,
``ValueError`` for a wrong shape or value, the rule stated in ``bpnet/_checks.py``)
and, through ``match``, that the message names the argument and says what was
expected and what came.  The per-backend table runs on every backend of the ``bk``
fixture (numpy, array-api-strict on its default device and on ``device1``); the
cases that mix backends or devices, or that create no array, run once.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import assert_on, to_np

import bpnet
from bpnet import backends
from bpnet.tools import gradcheck

DIMS = [3, 4, 1]  # n_x = 3, one hidden layer of 4, one output unit
M = 5


# --------------------------------------------------------------------------- #
# a small valid network on backend bk; each case breaks one thing


def _net(bk, dtype="float64"):
    rng = np.random.default_rng(0)
    params = bpnet.initialize_parameters_deep(DIMS, init="xavier", seed=1, dtype=dtype, backend=bk)
    X = bk.asarray(rng.standard_normal((DIMS[0], M)), dtype=dtype)
    Y = bk.asarray(np.array([[0.0, 1.0, 1.0, 0.0, 1.0]]), dtype=dtype)
    AL, caches = bpnet.L_model_forward(X, params)
    grads = bpnet.L_model_backward(AL, Y, caches)
    return SimpleNamespace(bk=bk, X=X, Y=Y, params=params, AL=AL, caches=caches, grads=grads, rng=rng)


def _host(shape, fill=None, dtype=np.float64):
    a = np.random.default_rng(1).standard_normal(shape)
    if fill is not None:
        a = np.full(shape, fill)
    return a.astype(dtype)


def _without(d, key):
    d = dict(d)
    del d[key]
    return d


def _with(d, **kw):
    return {**d, **kw}


def _X_with(n, values):
    """X of the right shape with some entries replaced (NaN, inf)."""
    host = _host((DIMS[0], M))
    for (i, j), v in values.items():
        host[i, j] = v
    return n.bk.asarray(host)


def _layer_cache(n):
    """((A_prev, W, b), Z) of layer 1."""
    return n.caches[0]


# each case: (function of the network n, exception type, regex on the message)
PER_BACKEND = [
    # ---- X against W1 ---------------------------------------------------------------
    pytest.param(
        lambda n: bpnet.L_model_forward(n.bk.asarray(_host((2, M))), n.params),
        ValueError, r"^X: expected shape \(3, m\) to match W1 of shape \(4, 3\), got \(2, 5\)$",
        id="forward-X-rows-not-matching-W1",
    ),
    pytest.param(
        lambda n: bpnet.L_model_forward(n.bk.asarray(_host((M, 3))), n.params),
        ValueError, r"^X: expected shape \(3, m\) .*got \(5, 3\); it looks transposed.*pass X\.T",
        id="forward-X-transposed-hint",
    ),
    pytest.param(
        lambda n: bpnet.predict(n.bk.asarray(_host((M, 3))), n.params),
        ValueError, r"^X: expected shape \(3, m\) .*got \(5, 3\); it looks transposed",
        id="predict-X-transposed-hint",
    ),
    pytest.param(
        lambda n: bpnet.predict(n.X, n.params, threshold="0.5"),
        TypeError, r"^threshold: expected a real number in \[0, 1\], got str '0\.5'",
        id="predict-threshold-string",
    ),
    pytest.param(
        lambda n: bpnet.L_model_forward(n.bk.asarray(_host((3,))), n.params),
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
        lambda n: bpnet.L_model_forward(_X_with(n, {(1, 2): math.nan}), n.params),
        ValueError, r"^X: expected finite values, got 1 NaN and 0 inf in an array of shape \(3, 5\)$",
        id="forward-X-nan",
    ),
    pytest.param(
        lambda n: bpnet.L_model_forward(_X_with(n, {(0, 0): math.inf, (2, 4): -math.inf}), n.params),
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
        lambda n: bpnet.L_model_forward(n.X, _without(n.params, "b2")),
        ValueError, r"^parameters: missing keys \['b2'\]",
        id="params-missing-b2",
    ),
    pytest.param(
        lambda n: bpnet.L_model_forward(n.X, _without(n.params, "b1")),
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
        lambda n: bpnet.L_model_forward(n.X, _with(n.params, W2=n.bk.asarray(_host((1, 5))))),
        ValueError, r"^parameters\['W2'\]: expected 4 columns \(W1 has shape \(4, 3\)\), got shape \(1, 5\)",
        id="params-W2-columns-not-W1-rows",
    ),
    pytest.param(
        lambda n: bpnet.L_model_forward(n.X, _with(n.params, b1=n.bk.asarray(np.zeros((1, 4))))),
        ValueError, r"^parameters\['b1'\]: expected shape \(4, 1\) to match W1 of shape \(4, 3\), got \(1, 4\)",
        id="params-b1-transposed",
    ),
    pytest.param(
        lambda n: bpnet.L_model_forward(n.X, _with(n.params, b2=n.bk.asarray(np.zeros((2, 1))))),
        ValueError, r"^parameters\['b2'\]: expected shape \(1, 1\) .*got \(2, 1\)",
        id="params-b2-wrong-rows",
    ),
    pytest.param(
        lambda n: bpnet.L_model_forward(n.X, _with(n.params, b1=n.bk.asarray(np.zeros(4)))),
        ValueError, r"^parameters\['b1'\]: expected a 2-D array, got shape \(4,\)",
        id="params-b1-1d",
    ),
    pytest.param(
        lambda n: bpnet.L_model_forward(n.X, _with(n.params, W1=n.bk.asarray(np.ones((4, 3), dtype=np.int64)))),
        TypeError, r"^parameters\['W1'\]: expected a real floating dtype .*got int64",
        id="params-W1-integer",
    ),
    pytest.param(
        lambda n: bpnet.L_model_forward(n.X, _with(n.params, W2=n.bk.asarray(_host((1, 4)), dtype="float32"))),
        TypeError, r"float32.*float64|float64.*float32",
        id="params-mixed-dtypes",
    ),
    pytest.param(
        lambda n: bpnet.L_model_forward(n.X, _with(n.params, W3=n.bk.asarray(_host((1, 1))))),
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
        lambda n: bpnet.linear_forward(n.bk.asarray(_host((2, M))), n.params["W1"], n.params["b1"]),
        ValueError, r"^A: expected shape \(3, m\) to match W of shape \(4, 3\), got \(2, 5\)$",
        id="linear_forward-A-rows-not-matching-W",
    ),
    pytest.param(
        lambda n: bpnet.linear_forward(n.X, n.params["W1"], n.bk.asarray(np.zeros((1, 4)))),
        ValueError, r"^b: expected shape \(4, 1\) to match W of shape \(4, 3\), got \(1, 4\)$",
        id="linear_forward-b-wrong-shape",
    ),
    pytest.param(
        lambda n: bpnet.linear_forward(n.bk.asarray(_host((3, M)), dtype="float32"), n.params["W1"], n.params["b1"]),
        TypeError, r"W has dtype float64 but A has float32",
        id="linear_forward-dtype-mix",
    ),
    pytest.param(
        lambda n: bpnet.linear_forward(n.X, to_np(n.params["W1"]).tolist(), n.params["b1"]),
        TypeError, r"^W: expected a 2-D floating array .*got builtins\.list",
        id="linear_forward-W-list",
    ),
    pytest.param(
        lambda n: bpnet.linear_activation_forward(n.bk.asarray(_host((2, M))), n.params["W1"], n.params["b1"], "relu"),
        ValueError, r"^A_prev: expected shape \(3, m\) to match W of shape \(4, 3\), got \(2, 5\)$",
        id="linear_activation_forward-A_prev-rows",
    ),
    pytest.param(
        lambda n: bpnet.linear_activation_forward(n.X, n.params["W1"], n.params["b1"], "ReLU"),
        ValueError, r"^activation: unknown activation 'ReLU'; expected one of 'relu'",
        id="linear_activation_forward-unknown-activation",
    ),
    pytest.param(
        lambda n: bpnet.linear_backward(n.bk.asarray(_host((4, M + 1))), _layer_cache(n)[0]),
        ValueError, r"^dZ: expected shape \(4, 5\) = \(rows of W, columns of A_prev\), got \(4, 6\)$",
        id="linear_backward-dZ-wrong-shape",
    ),
    pytest.param(
        lambda n: bpnet.linear_backward(
            n.bk.asarray(_host((4, M))), (n.bk.asarray(_host((2, M))), n.params["W1"], n.params["b1"])
        ),
        ValueError, r"^A_prev: expected shape \(3, m\) to match W of shape \(4, 3\), got \(2, 5\)$",
        id="linear_backward-cache-A_prev-not-matching-W",
    ),
    pytest.param(
        lambda n: bpnet.linear_backward(n.bk.asarray(_host((4, M))), list(_layer_cache(n)[0])),
        TypeError, r"^cache: expected the linear cache \(A_prev, W, b\) from linear_forward, got list",
        id="linear_backward-cache-list",
    ),
    pytest.param(
        lambda n: bpnet.linear_backward(n.bk.asarray(_host((4, M)), dtype="float32"), _layer_cache(n)[0]),
        TypeError, r"A_prev has dtype float64 but dZ has float32",
        id="linear_backward-dtype-mix",
    ),
    # ---- linear_activation_backward -----------------------------------------------------
    pytest.param(
        lambda n: bpnet.linear_activation_backward(n.bk.asarray(_host((4, M))), _layer_cache(n)[0], "relu"),
        TypeError, r"^cache: expected the layer cache \(\(A_prev, W, b\), Z\) from linear_activation_forward, got tuple",
        id="linear_activation_backward-linear-cache-instead-of-layer-cache",
    ),
    pytest.param(
        lambda n: bpnet.linear_activation_backward(
            n.bk.asarray(_host((4, M))), (_layer_cache(n)[0][:2], _layer_cache(n)[1]), "relu"
        ),
        TypeError, r"^cache\[0\]: expected the linear cache \(A_prev, W, b\) from linear_forward, got tuple",
        id="linear_activation_backward-cache-without-b",
    ),
    pytest.param(
        lambda n: bpnet.linear_activation_backward(
            n.bk.asarray(_host((4, M))), (_layer_cache(n)[0], n.bk.asarray(_host((4, M + 1)))), "relu"
        ),
        ValueError, r"^cache\[1\] \(Z\): expected shape \(4, 5\), got \(4, 6\)$",
        id="linear_activation_backward-cache-Z-wrong-shape",
    ),
    pytest.param(
        lambda n: bpnet.linear_activation_backward(n.bk.asarray(_host((4, M))), (_layer_cache(n)[0], None), "relu"),
        TypeError, r"^cache\[1\] \(Z\): expected a 2-D floating array .*got builtins\.NoneType",
        id="linear_activation_backward-cache-Z-None",
    ),
    pytest.param(
        lambda n: bpnet.linear_activation_backward(n.bk.asarray(_host((4, M - 1))), _layer_cache(n), "relu"),
        ValueError, r"^dA: expected shape \(4, 5\) like the cached Z, got \(4, 4\)$",
        id="linear_activation_backward-dA-wrong-shape",
    ),
    pytest.param(
        lambda n: bpnet.linear_activation_backward(n.bk.asarray(_host((4, M))), _layer_cache(n), "swish"),
        ValueError, r"^activation: unknown activation 'swish'",
        id="linear_activation_backward-unknown-activation",
    ),
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
        lambda n: bpnet.update_parameters(n.params, _without(n.grads, "db2"), 0.1),
        ValueError, r"^grads: missing key 'db2' \(parameters has L = 2 layers\)$",
        id="update-grads-missing-db2",
    ),
    pytest.param(
        lambda n: bpnet.update_parameters(n.params, _with(n.grads, dW1=n.bk.asarray(_host((3, 4)))), 0.1),
        ValueError, r"^grads\['dW1'\]: expected shape \(4, 3\) like parameters\['W1'\], got \(3, 4\)$",
        id="update-grads-dW1-wrong-shape",
    ),
    pytest.param(
        lambda n: bpnet.update_parameters(n.params, _with(n.grads, db2=n.bk.asarray(np.zeros((1, 2)))), 0.1),
        ValueError, r"^grads\['db2'\]: expected shape \(1, 1\) like parameters\['b2'\], got \(1, 2\)$",
        id="update-grads-db2-wrong-shape",
    ),
    pytest.param(
        lambda n: bpnet.update_parameters(n.params, _with(n.grads, dW2=n.bk.asarray(_host((1, 4)), dtype="float32")), 0.1),
        TypeError, r"grads\['dW2'\].*float32.*float64|float64.*grads\['dW2'\].*float32",
        id="update-grads-dW2-float32",
    ),
    pytest.param(
        lambda n: bpnet.update_parameters(n.params, _with(n.grads, dW1=0.0), 0.1),
        TypeError, r"^grads\['dW1'\]: expected an array, got float",
        id="update-grads-dW1-scalar",
    ),
    pytest.param(
        lambda n: bpnet.update_parameters(n.params, list(n.grads.values()), 0.1),
        TypeError, r"^grads: expected a dict with keys dW1, db1, \.\.\.(, dW2, db2)?, got list",
        id="update-grads-not-a-dict",
    ),
    pytest.param(
        lambda n: bpnet.update_parameters(_without(n.params, "W2"), n.grads, 0.1),
        ValueError, r"^parameters: unexpected keys \['b2'\] for an L = 1 layer network",
        id="update-params-missing-W2",
    ),
    # ---- initialize_parameters_deep on this backend --------------------------------------
    pytest.param(
        lambda n: bpnet.initialize_parameters_deep(DIMS, init="glorot", backend=n.bk),
        ValueError, r"^init: unknown initialisation 'glorot'; expected one of 'course', 'he', 'xavier'$",
        id="init-unknown-init",
    ),
    pytest.param(
        lambda n: bpnet.initialize_parameters_deep(DIMS, dtype="int32", backend=n.bk),
        TypeError, r"^dtype: expected 'float32' or 'float64', got 'int32'$",
        id="init-dtype-int32",
    ),
    pytest.param(
        lambda n: bpnet.initialize_parameters_deep(DIMS, dtype="float16", backend=n.bk),
        TypeError, r"^dtype: expected 'float32' or 'float64', got 'float16'$",
        id="init-dtype-float16",
    ),
    pytest.param(
        lambda n: bpnet.initialize_parameters_deep(DIMS, seed=-1, backend=n.bk),
        ValueError, r"^seed: expected an integer >= 0, got -1$",
        id="init-seed-negative",
    ),
    pytest.param(
        lambda n: bpnet.initialize_parameters_deep(DIMS, seed=1.5, backend=n.bk),
        TypeError, r"^seed: expected an integer, got float 1\.5$",
        id="init-seed-float",
    ),
    # ---- L_layer_model ----------------------------------------------------------------------
    pytest.param(
        lambda n: bpnet.L_layer_model(n.X, n.Y, DIMS, num_iterations=0, backend=n.bk),
        ValueError, r"^num_iterations: expected an integer > 0, got 0$",
        id="train-num_iterations-zero",
    ),
    pytest.param(
        lambda n: bpnet.L_layer_model(n.X, n.Y, DIMS, num_iterations=2.5, backend=n.bk),
        TypeError, r"^num_iterations: expected an integer, got float 2\.5$",
        id="train-num_iterations-float",
    ),
    pytest.param(
        lambda n: bpnet.L_layer_model(n.X, n.Y, DIMS, learning_rate=-1, num_iterations=1, backend=n.bk),
        ValueError, r"^learning_rate: expected a finite number > 0, got -1$",
        id="train-learning_rate-negative",
    ),
    pytest.param(
        lambda n: bpnet.L_layer_model(n.bk.asarray(to_np(n.X).T), n.Y, DIMS, num_iterations=1, backend=n.bk),
        ValueError, r"^X: expected shape \(3, m\) for layers_dims\[0\] = 3, got \(5, 3\); it looks transposed.*pass X\.T",
        id="train-X-transposed",
    ),
    # L_layer_model takes no AL: its messages must speak of X / layers_dims, not of an internal AL
    pytest.param(
        lambda n: bpnet.L_layer_model(n.X, n.Y[:, :4], DIMS, num_iterations=1, backend=n.bk),
        ValueError, r"^(?!.*\bAL\b)Y: expected shape \(1, 5\) = \(layers_dims\[-1\], m of X\), got \(1, 4\)",
        id="train-Y-m-differs",
    ),
    pytest.param(
        lambda n: bpnet.L_layer_model(n.X, n.bk.asarray(np.zeros((2, M))), DIMS, num_iterations=1, backend=n.bk),
        ValueError, r"^(?!.*\bAL\b)Y: expected shape \(1, 5\) = \(layers_dims\[-1\], m of X\), got \(2, 5\)",
        id="train-Y-wrong-rows",
    ),
    pytest.param(
        lambda n: bpnet.L_layer_model(n.bk.asarray(np.ones((3, M)) + 0.5j), n.Y, DIMS, num_iterations=1, backend=n.bk),
        TypeError, r"^X: expected real numbers \(a floating or integer dtype\), got complex128",
        id="train-X-complex",
    ),
    pytest.param(
        lambda n: bpnet.L_layer_model(_X_with(n, {(0, 1): math.nan}), n.Y, DIMS, num_iterations=1, backend=n.bk),
        ValueError, r"^X: expected finite values, got 1 NaN and 0 inf",
        id="train-X-nan",
    ),
    pytest.param(
        lambda n: bpnet.L_layer_model(n.X, n.Y, DIMS, num_iterations=1, loss="hinge", backend=n.bk),
        ValueError, r"^loss: unknown loss 'hinge'",
        id="train-unknown-loss",
    ),
    pytest.param(
        lambda n: bpnet.L_layer_model(n.X, n.Y, [3, 0, 1], num_iterations=1, backend=n.bk),
        ValueError, r"^layers_dims: expected positive integers, got 0 at position 1",
        id="train-layers_dims-zero",
    ),
    # ---- gradient_check -----------------------------------------------------------------------
    pytest.param(
        lambda n: bpnet.gradient_check(n.params, _without(n.grads, "db2"), n.X, n.Y),
        ValueError, r"^grads: missing keys \['db2'\] for an L = 2 layer network$",
        id="gradient_check-grads-missing-db2",
    ),
    pytest.param(
        lambda n: bpnet.gradient_check(n.params, _with(n.grads, dW1=n.bk.asarray(_host((3, 4)))), n.X, n.Y),
        ValueError, r"^grads\['dW1'\]: expected shape \(4, 3\), got \(3, 4\)$",
        id="gradient_check-grads-wrong-shape",
    ),
    pytest.param(
        lambda n: bpnet.gradient_check(n.params, list(n.grads.values()), n.X, n.Y),
        TypeError, r"^grads: expected a dict with keys dW1, db1, \.\.\.(, dW2, db2)?, got list",
        id="gradient_check-grads-not-a-dict",
    ),
    pytest.param(
        lambda n: bpnet.gradient_check(n.params, n.grads, n.X, n.Y[:, :4]),
        ValueError, r"^(?!.*\bAL\b)Y: expected 5 examples \(columns\).*got shape \(1, 4\)",
        id="gradient_check-Y-m-differs",
    ),
    pytest.param(
        lambda n: bpnet.gradient_check(n.params, n.grads, n.X, n.Y, epsilon=0.0),
        ValueError, r"^epsilon: expected a finite number > 0, got 0\.0$",
        id="gradient_check-epsilon-zero",
    ),
    pytest.param(
        lambda n: bpnet.gradient_check(n.params, n.grads, n.bk.asarray(_host((M, 3))), n.Y),
        ValueError, r"^X: expected shape \(3, m\) .*it looks transposed",
        id="gradient_check-X-transposed",
    ),
]


@pytest.mark.parametrize(("call", "exc", "pattern"), PER_BACKEND)
def test_bad_input(bk, call, exc, pattern):
    n = _net(bk)
    with pytest.raises(exc, match=pattern) as info:
        call(n)
    # exactly the documented type, not a subclass from deep inside the math
    assert type(info.value) is exc, f"{type(info.value).__name__}: {info.value}"


# --------------------------------------------------------------------------- #
# cases that create their own arrays: two backends, two devices, no arrays at all


def _numpy_and_strict():
    strict = backends.get("array_api_strict")
    return backends.get("numpy"), strict, bpnet.initialize_parameters_deep(DIMS, backend=strict)


def _default_and_device1():
    dev0 = backends.get("array_api_strict")
    dev1 = backends.get("array_api_strict:device1")
    return dev0, dev1, bpnet.initialize_parameters_deep(DIMS, backend=dev0)


def _params_two_devices():
    dev0, dev1, params = _default_and_device1()
    params["W2"] = dev1.asarray(_host((1, 4)))
    return bpnet.L_model_forward(dev0.asarray(_host((3, M))), params)


def _params_two_backends():
    np_bk, strict, params = _numpy_and_strict()
    params["b2"] = np_bk.asarray(np.zeros((1, 1)))
    return bpnet.L_model_forward(strict.asarray(_host((3, M))), params)


def _cost_Y_numpy_AL_strict():
    np_bk, strict, _ = _numpy_and_strict()
    return bpnet.compute_cost(strict.asarray(np.full((1, M), 0.5)), np_bk.asarray(np.ones((1, M))))


def _cost_Y_device1_AL_default():
    dev0, dev1, _ = _default_and_device1()
    return bpnet.compute_cost(dev0.asarray(np.full((1, M), 0.5)), dev1.asarray(np.ones((1, M))))


def _update_grads_numpy_params_strict():
    np_bk, strict, params = _numpy_and_strict()
    grads = {f"d{k}": np_bk.asarray(np.zeros(tuple(v.shape))) for k, v in params.items()}
    return bpnet.update_parameters(params, grads, 0.1)


def _update_grads_device1_params_default():
    dev0, dev1, params = _default_and_device1()
    grads = {f"d{k}": dev1.asarray(np.zeros(tuple(v.shape))) for k, v in params.items()}
    return bpnet.update_parameters(params, grads, 0.1)


def _linear_forward_two_devices():
    dev0, dev1, params = _default_and_device1()
    return bpnet.linear_forward(dev1.asarray(_host((3, M))), params["W1"], params["b1"])


def _backward_Y_other_backend():
    np_bk, strict, params = _numpy_and_strict()
    X = strict.asarray(_host((3, M)))
    AL, caches = bpnet.L_model_forward(X, params)
    return bpnet.L_model_backward(AL, np_bk.asarray(np.ones((1, M))), caches)


ONCE = [
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
        _update_grads_numpy_params_strict, TypeError,
        r"come from two backends: .*grads\['dW1'\] is a numpy array",
        id="update-grads-numpy-params-strict",
    ),
    pytest.param(
        _update_grads_device1_params_default, ValueError,
        r"on two devices of array_api_strict: .*grads\['dW1'\] on 'device1'",
        id="update-grads-device1-params-default-device",
    ),
    pytest.param(
        _linear_forward_two_devices, ValueError,
        r"on two devices of array_api_strict: .*A on 'device1'",
        id="linear_forward-A-on-another-device",
    ),
    # ---- initialize_parameters_deep: layer_dims, backend -----------------------------
    pytest.param(
        lambda: bpnet.initialize_parameters_deep([5]),
        ValueError, r"^layer_dims: expected at least 2 sizes \(input and output\), got \[5\]$",
        id="init-layer_dims-single",
    ),
    pytest.param(
        lambda: bpnet.initialize_parameters_deep([]),
        ValueError, r"^layer_dims: expected at least 2 sizes \(input and output\), got \[\]$",
        id="init-layer_dims-empty",
    ),
    pytest.param(
        lambda: bpnet.initialize_parameters_deep([5, 0, 1]),
        ValueError, r"^layer_dims: expected positive integers, got 0 at position 1 of \[5, 0, 1\]$",
        id="init-layer_dims-zero",
    ),
    pytest.param(
        lambda: bpnet.initialize_parameters_deep([5, -2]),
        ValueError, r"^layer_dims: expected positive integers, got -2 at position 1 of \[5, -2\]$",
        id="init-layer_dims-negative",
    ),
    pytest.param(
        lambda: bpnet.initialize_parameters_deep("5,3"),
        TypeError, r"^layer_dims: expected a list of layer sizes like \[n_x, n_1, \.\.\., n_L\], got '5,3'$",
        id="init-layer_dims-string",
    ),
    pytest.param(
        lambda: bpnet.initialize_parameters_deep(5),
        TypeError, r"^layer_dims: expected a list of layer sizes .*got 5$",
        id="init-layer_dims-int",
    ),
    pytest.param(
        lambda: bpnet.initialize_parameters_deep([5, 2.5]),
        TypeError, r"^layer_dims: expected positive integers, got 2\.5 at position 1 of \[5, 2\.5\]$",
        id="init-layer_dims-float",
    ),
    pytest.param(
        lambda: bpnet.initialize_parameters_deep(DIMS, backend="tensorflow"),
        ValueError, r"^backend: unknown backend 'tensorflow'; expected one of .*'numpy'.*\(available here: .*numpy",
        id="init-unknown-backend",
    ),
    pytest.param(
        lambda: bpnet.initialize_parameters_deep(DIMS, backend="array_api_strict:device7"),
        ValueError, r"^device: array_api_strict has devices .*got 'device7'$",
        id="init-unknown-device",
    ),
    pytest.param(
        lambda: bpnet.L_layer_model(np.ones((3, M)), np.ones((1, M)), DIMS, num_iterations=1, backend="tensorflow"),
        ValueError, r"^backend: unknown backend 'tensorflow'",
        id="train-unknown-backend",
    ),
]


@pytest.mark.parametrize(("call", "exc", "pattern"), ONCE)
def test_bad_input_once(call, exc, pattern):
    with pytest.raises(exc, match=pattern) as info:
        call()
    assert type(info.value) is exc, f"{type(info.value).__name__}: {info.value}"


# --------------------------------------------------------------------------- #
# nothing half-done: a call that raises leaves its inputs and the world untouched


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
        pytest.param(lambda n: (n.params, _without(n.grads, "db2"), 0.1), id="grads-missing-last-key"),
        pytest.param(
            lambda n: (n.params, _with(n.grads, db2=n.bk.asarray(np.zeros((1, 2)))), 0.1),
            id="grads-last-wrong-shape",
        ),
    ],
)
def test_update_parameters_leaves_inputs_unchanged(bk, breakage):
    n = _net(bk)
    params, grads, lr = breakage(n)
    p_snap, g_snap = _snapshot(params), _snapshot(grads)
    with pytest.raises((ValueError, TypeError)):
        bpnet.update_parameters(params, grads, lr)
    _assert_unchanged(params, p_snap)
    _assert_unchanged(grads, g_snap)


def test_update_parameters_valid_call_does_not_mutate(bk):
    # the contrast: the valid call returns a new dict and leaves the input alone
    n = _net(bk)
    snap = _snapshot(n.params)
    new = bpnet.update_parameters(n.params, n.grads, 0.1)
    assert new is not n.params
    _assert_unchanged(n.params, snap)


def test_failed_backward_leaves_caches_unchanged(bk):
    n = _net(bk)
    caches = list(n.caches)
    with pytest.raises(ValueError):
        bpnet.L_model_backward(n.AL, n.Y[:, :4], caches)
    assert len(caches) == len(n.caches)
    assert all(a is b for a, b in zip(caches, n.caches))


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"X": "transposed"}, id="X-transposed"),
        pytest.param({"Y": "short"}, id="Y-m-differs"),
        pytest.param({"learning_rate": 0.0}, id="lr-zero"),
    ],
)
def test_failed_training_prints_and_calls_back_nothing(bk, capsys, kwargs):
    n = _net(bk)
    X = bk.asarray(to_np(n.X).T) if kwargs.get("X") == "transposed" else n.X
    Y = n.Y[:, :4] if kwargs.get("Y") == "short" else n.Y
    lr = kwargs.get("learning_rate", 0.01)
    calls = []
    with pytest.raises(ValueError):
        bpnet.L_layer_model(X, Y, DIMS, learning_rate=lr, num_iterations=3, print_cost=True,
                            print_every=1, callback=lambda i, c: calls.append(i), backend=bk)
    assert calls == []
    assert capsys.readouterr().out == ""


def test_failed_gradient_check_computes_nothing(bk, monkeypatch):
    n = _net(bk)
    called = []
    monkeypatch.setattr(gradcheck, "numerical_gradients", lambda *a, **k: called.append(1))
    with pytest.raises(ValueError, match=r"grads: missing keys \['db2'\]"):
        bpnet.gradient_check(n.params, _without(n.grads, "db2"), n.X, n.Y)
    assert called == []


def test_failed_init_leaves_global_random_state(bk):
    state = np.random.get_state()
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    try:
        for bad in ({"init": "glorot"}, {"dtype": "int32"}, {"seed": -1}):
            with pytest.raises((ValueError, TypeError)):
                bpnet.initialize_parameters_deep(DIMS, backend=bk, **bad)
        bpnet.initialize_parameters_deep(DIMS, backend=bk)  # a valid call does not touch it either
        np.testing.assert_array_equal(np.random.get_state()[1], before)
    finally:
        np.random.set_state(state)


def test_failed_compute_cost_does_not_cast_caller_Y(bk):
    # integer labels are accepted and cast internally; a failing call must not
    # have replaced or altered the caller's array
    n = _net(bk)
    Y_int = bk.asarray(np.array([[0, 1, 1, 0]], dtype=np.int64))
    with pytest.raises(ValueError, match=r"^Y: expected 5 examples"):
        bpnet.compute_cost(n.AL, Y_int)
    assert Y_int.dtype == bk.xp.int64
    np.testing.assert_array_equal(to_np(Y_int), [[0, 1, 1, 0]])


def test_the_course_forward_takes_what_fit_takes(bk):
    """L_model_forward and predict convert X as MLP.fit and L_layer_model do: a list, ints, another precision
    or another device give the numbers of the same values as a float array on the parameters' backend."""
    n = _net(bk)
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
