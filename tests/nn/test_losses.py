"""Losses through compute_cost and the backward pass: values, and finite costs and gradients at saturated
outputs and pre-activations up to |z| = 1e4, every backend, float32 and float64."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from conftest import HIDDEN, OUTPUT_LOSS_PAIRS, all_finite, assert_on, to_np

import bpnet
from bpnet.nn.losses import LOSSES

# --------------------------------------------------------------------------- #
# values


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
# stability


# What keeps it finite (bpnet/nn/activations.py, bpnet/nn/losses.py): sigmoid's two-branch form on exp(-|z|);
# softmax less each column's max; the log-losses clip AL to [eps, 1 - eps] (eps = finfo(dtype).eps) before the
# log and before the course's division in dAL, so a cost term is at most -log(eps) and |dAL| <= 1/eps; mse is
# finite for any finite AL; the fused dZ[L] = AL - Y divides by nothing.  Warnings are errors here.


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


@pytest.mark.parametrize("output, loss", PAIRS, ids=[f"{o}-{l}" for o, l in PAIRS])
def test_cost_and_gradients_finite_at_z_1e4(bk, dtype, output, loss):
    n_out = 3 if output == "softmax" or loss == "categorical_crossentropy" else 1
    tiny = float(np.finfo(dtype).smallest_normal)
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
        if loss != "mse":  # the one guard: each term at most -log(smallest normal)
            terms = n_out if loss == "binary_crossentropy" else 1
            assert float(cost) <= terms * -math.log(tiny) * (1 + 1e-5), (hidden, float(cost))
        for path, grads in paths.items():
            for k, g in grads.items():
                assert_on(bk, g, dtype)
                assert all_finite(g), (hidden, path, k)
        A = to_np(AL)  # saturated for real: outputs exactly at an asymptote
        if output == "sigmoid":
            assert np.any((A == 0.0) | (A == 1.0)), hidden
        elif output == "tanh":
            assert np.any(np.abs(A) == 1.0), hidden
        elif output == "softmax":
            assert np.any(A == 1.0), hidden


def test_losses_at_exactly_saturated_outputs(bk, dtype):
    """AL exactly 0 or 1 against the opposite label: -log(smallest normal) per wrong example, no inf."""
    tiny = float(np.finfo(dtype).smallest_normal)
    AL = bk.asarray(np.array([[1.0, 0.0, 1.0, 0.0]]), dtype=dtype)
    Y = bk.asarray(np.array([[0.0, 1.0, 1.0, 0.0]]), dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bce = float(bpnet.compute_cost(AL, Y))
        A3 = bk.asarray(np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]), dtype=dtype)
        Y3 = bk.asarray(np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0]]), dtype=dtype)
        cce = float(bpnet.compute_cost(A3, Y3, loss="categorical_crossentropy"))
    # two wrong examples of four cost -log(tiny) each, the right ones exactly 0: J = -log(tiny) / 2
    assert bce == pytest.approx(-math.log(tiny) / 2, rel=1e-6)
    assert cce == pytest.approx(-math.log(tiny) / 2, rel=1e-6)  # one of two columns wrong




def test_course_costs_are_exact_inside_0_1(bk):
    """No clip: AL = 1 - 1e-12 (which the old eps-clip left alone) and AL = 1e-20 (which it moved) are exact."""
    AL = bk.asarray(np.array([[1e-20, 1 - 1e-12, 0.3]]))
    Y = bk.asarray(np.array([[1.0, 0.0, 1.0]]))
    want = -(math.log(1e-20) + math.log(1 - (1 - 1e-12)) + math.log(0.3)) / 3  # 1 - AL of the stored AL
    assert float(bpnet.compute_cost(AL, Y)) == pytest.approx(want, rel=1e-12)
    grads = -(to_np(Y) / to_np(AL) - (1 - to_np(Y)) / (1 - to_np(AL)))
    np.testing.assert_allclose(to_np(LOSSES["binary_crossentropy"].grad(bk.xp, AL, Y)), grads, rtol=1e-12)


def test_a_confidently_wrong_softmax_costs_its_exact_value(bk):
    """Probability 2e-22 on the true class: -log(2e-22) = 49.96 from AL and from the logits alike (the old clip
    said 36.04); at probability 0 (logit gap 800) only the logits know the cost, 800."""
    xp = bk.xp
    Z = bk.asarray(np.array([[0.0, 0.0], [math.log(0.5e22), 800.0]]))  # column 0: p(true) = 2e-22
    Y = bk.asarray(np.array([[1.0, 1.0], [0.0, 0.0]]))
    AL = bpnet.softmax(Z)[0]
    spec = LOSSES["categorical_crossentropy"]
    exact0 = -math.log(1 / (1 + 0.5e22))
    per_column = [float(spec.cost(xp, AL[:, i:i + 1], Y[:, i:i + 1])) for i in range(2)]
    assert per_column[0] == pytest.approx(exact0, rel=1e-12)
    logits = [float(spec.logit_cost(xp, Z[:, i:i + 1], Y[:, i:i + 1])) for i in range(2)]
    assert logits[0] == pytest.approx(exact0, rel=1e-12) and logits[1] == pytest.approx(800.0, rel=1e-12)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_the_cost_from_the_logits_is_the_cost_from_the_output(bk, dtype, name):
    """Away from saturation the two forms agree; at |z| = 1e4 the logit form stays finite and exact."""
    spec, xp = LOSSES[name], bk.xp
    rng = np.random.default_rng(4)
    n = 1 if spec.output != "softmax" else 3
    Z = bk.asarray(rng.normal(size=(n, 6)), dtype=dtype)
    Y = bk.asarray(np.eye(n)[:, rng.integers(0, n, 6)] if n > 1 else rng.integers(0, 2, (1, 6)), dtype=dtype)
    AL = bpnet.get_activation(spec.output).forward(xp, Z)
    tol = 1e-12 if dtype == "float64" else 1e-5
    assert float(spec.logit_cost(xp, Z, Y)) == pytest.approx(float(spec.cost(xp, AL, Y)), rel=tol)
    big = bk.asarray(np.full((n, 2), 1e4) * np.array([[1.0, -1.0]]), dtype=dtype)
    J = float(spec.logit_cost(xp, big, bk.asarray(np.zeros((n, 2)) if name != "categorical_crossentropy"
                                                  else np.eye(n)[:, [1, 1]], dtype=dtype)))
    assert math.isfinite(J) and J >= 0


def test_compute_cost_warns_naming_suspicious_input_and_computes_the_course_number(bk):
    with pytest.warns(bpnet.CourseInputWarning, match=r"^AL: binary_crossentropy takes probabilities in \[0, 1\], "
                      r"got values from 0\.4 to 1\.5; the log of a negative number is NaN"):
        J = bpnet.compute_cost(bk.asarray(np.array([[1.5, 0.9, 0.4]])), bk.asarray(np.array([[1.0, 1.0, 0.0]])))
    assert math.isnan(float(J))  # the course's NaN, not a silent one
    with pytest.warns(bpnet.CourseInputWarning, match=r"^Y: expected labels 0 or 1, got 1 other value such as 2"):
        J = bpnet.compute_cost(bk.asarray(np.array([[0.5, 0.9, 0.4]])), bk.asarray(np.array([[2.0, 1.0, 0.0]])))
    assert float(J) == pytest.approx(-(2 * math.log(0.5) - math.log(0.5) + math.log(0.9) + math.log(0.6)) / 3)
    with pytest.warns(bpnet.CourseInputWarning, match=r"^Y: expected finite labels, got NaN or inf"):
        bpnet.compute_cost(bk.asarray(np.array([[0.5]])), bk.asarray(np.array([[np.nan]])))


def test_poisson_value_gradient_and_logits(bk, dtype):
    """Half the Poisson deviance, scikit-learn's MLPRegressor(loss="poisson"): J = (1/m) sum(Y log(Y/A) - Y + A)
    (Y log Y = 0 at Y = 0); dA = 1 - Y/A; from the log link's Z = log A the same value, exactly."""
    xp = bk.xp
    A_host = np.array([[0.5, 2.0, 1.0, 3.0]])
    Y_host = np.array([[1.0, 0.0, 1.0, 4.0]])
    want = np.mean(np.where(Y_host > 0, Y_host * np.log(np.where(Y_host > 0, Y_host, 1) / A_host), 0.0)
                   - Y_host + A_host)
    loss = LOSSES["poisson"]
    assert loss.output == "exp" and loss.task == "regression"
    A, Y = bk.asarray(A_host, dtype=dtype), bk.asarray(Y_host, dtype=dtype)
    rtol = 1e-12 if dtype == "float64" else 1e-6
    assert float(bpnet.compute_cost(A, Y, loss="poisson")) == pytest.approx(want, rel=rtol)
    np.testing.assert_allclose(to_np(loss.grad(xp, A, Y)), 1.0 - Y_host / A_host, rtol=rtol)
    Z = bk.asarray(np.log(A_host), dtype=dtype)
    assert float(loss.logit_cost(xp, Z, Y)) == pytest.approx(want, rel=rtol * 10)
    w = bk.asarray(np.array([[1.0, 0.0, 2.0, 1.0]]), dtype=dtype)  # example weights: sum(E w) / m
    terms = np.where(Y_host > 0, Y_host * np.log(np.where(Y_host > 0, Y_host, 1) / A_host), 0.0) - Y_host + A_host
    assert float(loss.cost(xp, A, Y, w)) == pytest.approx(float((terms * [1, 0, 2, 1]).sum() / 4), rel=rtol)


def test_predictions_are_the_one_decision_of_predict_and_the_metrics(bk):
    """nn.losses.predictions: argmax (the first of equal units) for multiclass, AL > 0.5 for binary and
    multi-label, AL for regression; MLP.predict and evaluate's accuracy (batch_metrics) decide alike."""
    from bpnet.nn import predictions

    AL = bk.asarray(np.array([[0.2, 0.5, 0.5, 0.1], [0.7, 0.5, 0.2, 0.1], [0.1, 0.0, 0.3, 0.8]]), dtype="float64")
    np.testing.assert_array_equal(to_np(predictions(bk.xp, AL, "multiclass")), [1, 0, 0, 2])  # ties: the first
    np.testing.assert_array_equal(to_np(predictions(bk.xp, AL, "binary")), to_np(AL) > 0.5)  # 0.5 is not > 0.5
    assert predictions(bk.xp, AL, "regression") is AL
    rng = np.random.default_rng(0)
    X = rng.normal(size=(4, 30))
    for dims, y in (([4, 5, 3], rng.integers(0, 3, size=30)), ([4, 5, 1], rng.integers(0, 2, size=30))):
        model = bpnet.MLP(dims, dtype="float64", backend=bk, seed=2)
        pred = to_np(model.predict(bk.asarray(X, dtype="float64")))
        acc = model.evaluate(bk.asarray(X, dtype="float64"), y)["accuracy"]
        assert acc == pytest.approx(float(np.mean(pred == y)), abs=1e-12)
