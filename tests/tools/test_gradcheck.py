"""Central-difference gradient checks (bpnet.tools.gradcheck) of the whole backward pass, in float64;
gradient_check's bad inputs."""

import numpy as np
import pytest
from badinput import M, check_table, host, replaced, small_net, without
from conftest import to_np

import bpnet
from bpnet.tools import gradcheck

HIDDEN = [a for a, e in bpnet.ACTIVATIONS.items() if e.hidden]  # every hidden activation of the registry
OUTPUTS = [("sigmoid", "binary_crossentropy"), ("softmax", "categorical_crossentropy"),
           ("linear", "mse"), ("tanh", "mse"), ("sigmoid", "mse")]


def _problem(bk, dims, m, output, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(dims[0], m))
    n_out = dims[-1]
    if output == "softmax":
        Y = np.eye(n_out)[:, rng.integers(0, n_out, size=m)]
    elif output == "sigmoid":
        Y = rng.integers(0, 2, size=(n_out, m)).astype(float)
    else:
        Y = rng.normal(size=(n_out, m))
    p = bpnet.initialize_parameters_deep(dims, init="xavier", seed=seed, backend=bk)
    return bk.asarray(X), bk.asarray(Y), p


@pytest.mark.parametrize("hidden", HIDDEN)
@pytest.mark.parametrize("output, loss", OUTPUTS, ids=[f"{o}-{l}" for o, l in OUTPUTS])
def test_backward_matches_central_differences(bk, hidden, output, loss):
    n_out = 3 if output == "softmax" else 2
    X, Y, p = _problem(bk, [3, 4, n_out], 5, output)
    kw = dict(hidden_activation=hidden, output_activation=output)
    AL, caches = bpnet.L_model_forward(X, p, **kw)
    grads = bpnet.L_model_backward(AL, Y, caches, loss=loss, **kw)
    diff = bpnet.gradient_check(p, grads, X, Y, loss=loss, **kw)
    assert diff < 1e-7


@pytest.mark.parametrize("dims, m", [
    ([2, 1], 1),                 # logistic regression, a single example
    ([5, 3, 1], 1),
    ([4, 6, 5, 3, 1], 8),        # the course's 4-layer shape, small
    ([3, 8, 8, 8, 8, 2], 3),     # deep and narrow
    ([10, 1, 4, 1], 6),          # bottleneck of width 1
    ([1, 7, 3], 16),
])
def test_depths_widths_batches(bk, dims, m):
    output, loss = ("sigmoid", "binary_crossentropy") if dims[-1] == 1 else ("softmax", "categorical_crossentropy")
    X, Y, p = _problem(bk, dims, m, output, seed=len(dims) + m)
    kw = dict(hidden_activation="tanh", output_activation=output)
    AL, caches = bpnet.L_model_forward(X, p, **kw)
    grads = bpnet.L_model_backward(AL, Y, caches, loss=loss, fused=True, **kw)
    assert bpnet.gradient_check(p, grads, X, Y, loss=loss, **kw) < 1e-7


def test_dA0_is_the_gradient_with_respect_to_X(bk):
    # dA0 carries no 1/m: it is m * dJ/dX
    X, Y, p = _problem(bk, [3, 4, 1], 4, "sigmoid", seed=3)
    kw = dict(hidden_activation="tanh")
    AL, caches = bpnet.L_model_forward(X, p, **kw)
    dA0 = to_np(bpnet.L_model_backward(AL, Y, caches, **kw)["dA0"])
    X_h, eps = to_np(X), 1e-6
    num = np.zeros_like(X_h)
    for idx in np.ndindex(*X_h.shape):
        E = np.zeros_like(X_h)
        E[idx] = eps
        Jp = float(bpnet.compute_cost(bpnet.L_model_forward(bk.asarray(X_h + E), p, **kw)[0], Y))
        Jm = float(bpnet.compute_cost(bpnet.L_model_forward(bk.asarray(X_h - E), p, **kw)[0], Y))
        num[idx] = (Jp - Jm) / (2 * eps)
    np.testing.assert_allclose(dA0 / X_h.shape[1], num, rtol=1e-6, atol=1e-9)


def test_gradient_check_detects_a_wrong_gradient(bk, capsys):
    X, Y, p = _problem(bk, [3, 4, 1], 5, "sigmoid")
    AL, caches = bpnet.L_model_forward(X, p)
    grads = bpnet.L_model_backward(AL, Y, caches)
    assert bpnet.gradient_check(p, grads, X, Y, print_msg=True) < 1e-7
    assert "works perfectly fine" in capsys.readouterr().out
    bad = dict(grads, dW1=grads["dW1"] * 1.5)
    assert bpnet.gradient_check(p, bad, X, Y, print_msg=True) > 1e-3
    assert "mistake in the backward propagation" in capsys.readouterr().out


def test_numerical_gradients_shapes(bk):
    X, Y, p = _problem(bk, [2, 3, 1], 4, "sigmoid")
    approx = bpnet.numerical_gradients(p, X, Y)
    assert set(approx) == {"dW1", "db1", "dW2", "db2"}
    for k, v in approx.items():
        assert isinstance(v, np.ndarray) and v.shape == tuple(p[k[1:]].shape)


# --------------------------------------------------------------------------- #
# bad inputs (badinput.py)


#: each case: (function of a small network n on the backend under test, exception type, regex on the message)
PER_BACKEND = [
    # ---- gradient_check -----------------------------------------------------------------------
    pytest.param(
        lambda n: bpnet.gradient_check(n.params, without(n.grads, "db2"), n.X, n.Y),
        ValueError, r"^grads: missing keys \['db2'\] for an L = 2 layer network$",
        id="gradient_check-grads-missing-db2",
    ),
    pytest.param(
        lambda n: bpnet.gradient_check(n.params, replaced(n.grads, dW1=n.bk.asarray(host((3, 4)))), n.X, n.Y),
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
        lambda n: bpnet.gradient_check(n.params, n.grads, n.bk.asarray(host((M, 3))), n.Y),
        ValueError, r"^X: expected shape \(3, m\) .*it looks transposed",
        id="gradient_check-X-transposed",
    ),
]


@pytest.mark.parametrize(("call", "exc", "pattern"), PER_BACKEND)
def test_bad_input(bk, call, exc, pattern, harness):
    n = small_net(bk)
    harness.refuses(lambda: call(n), exc, pattern)


def test_the_bad_input_tables_are_distinct():
    check_table(PER_BACKEND, minimum=6)


def test_gradient_check_refuses_a_Y_of_another_m(bk):
    """The refusal itself, without the harness."""
    n = small_net(bk)
    with pytest.raises(ValueError, match=r"^(?!.*\bAL\b)Y: expected 5 examples \(columns\).*got shape \(1, 4\)") as info:
        bpnet.gradient_check(n.params, n.grads, n.X, n.Y[:, :4])
    assert type(info.value) is ValueError, f"{type(info.value).__name__}: {info.value}"


def test_failed_gradient_check_computes_nothing(bk, monkeypatch):
    n = small_net(bk)
    called = []
    monkeypatch.setattr(gradcheck, "numerical_gradients", lambda *a, **k: called.append(1))
    with pytest.raises(ValueError, match=r"grads: missing keys \['db2'\]"):
        bpnet.gradient_check(n.params, without(n.grads, "db2"), n.X, n.Y)
    assert called == []
