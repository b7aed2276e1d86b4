"""L_layer_model (bpnet.train.course): cost decreases, every backend agrees with numpy, divergence is
reported, bad inputs are refused before any iteration."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from badinput import DIMS, M, X_with, api_context, check_table, small_net
from conftest import all_finite, assert_on, saturated_fraction, to_np

import bpnet
from bpnet.datasets import load_dataset

# Documented parity tolerance of any backend vs numpy after N steps from the same seed
PARITY_RTOL = {"float64": 1e-10, "float32": 1e-4}


def test_cost_decreases_and_accuracy_is_good(bk, cancer):
    X = bk.asarray(cancer.X_train)
    Y = bk.asarray(cancer.Y_train)
    dims = [cancer.n_x, 20, 7, 5, 1]
    params, costs = bpnet.L_layer_model(X, Y, dims, learning_rate=0.05, num_iterations=600, init="he",
                                        backend=bk)
    assert len(costs) == 6  # iterations 0, 100, ..., 500, as the notebook records them (599 is printed only)
    assert all(b < a for a, b in zip(costs, costs[1:])), costs
    assert costs[-1] < 0.2 * costs[0]
    assert_on(bk, params["W1"], "float64", (20, cancer.n_x))
    pred = to_np(bpnet.predict(bk.asarray(cancer.X_test), params)).ravel()
    assert (pred == cancer.y_test).mean() > 0.9


def test_parity_with_numpy_from_the_same_seed(bk, dtype, cancer):
    dims = [cancer.n_x, 8, 4, 1]
    kw = dict(learning_rate=0.05, num_iterations=50, init="he", seed=5, dtype=dtype, print_every=10)
    ref, ref_costs = bpnet.L_layer_model(cancer.X_train, cancer.Y_train, dims, backend="numpy", **kw)
    got, got_costs = bpnet.L_layer_model(bk.asarray(cancer.X_train, dtype=dtype),
                                         bk.asarray(cancer.Y_train, dtype=dtype), dims, backend=bk, **kw)
    for k in ref:
        assert_on(bk, got[k], dtype)
        np.testing.assert_allclose(to_np(got[k]), to_np(ref[k]), rtol=PARITY_RTOL[dtype],
                                   atol=PARITY_RTOL[dtype])
    np.testing.assert_allclose(got_costs, ref_costs, rtol=PARITY_RTOL[dtype])


def test_same_seed_same_backend_is_bit_identical(bk, cancer):
    dims = [cancer.n_x, 6, 1]
    runs = [bpnet.L_layer_model(bk.asarray(cancer.X_train), bk.asarray(cancer.Y_train), dims,
                                learning_rate=0.1, num_iterations=30, seed=9, backend=bk)[0] for _ in range(2)]
    for k in runs[0]:
        np.testing.assert_array_equal(to_np(runs[0][k]), to_np(runs[1][k]))


def test_softmax_training_on_digits(bk):
    ds = load_dataset("digits")
    params, costs = bpnet.L_layer_model(bk.asarray(ds.X_train, dtype="float32"),
                                        bk.asarray(ds.Y_train, dtype="float32"),
                                        [ds.n_x, 32, ds.n_y], learning_rate=0.5, num_iterations=150,
                                        loss="categorical_crossentropy", init="he", print_every=50,
                                        backend=bk)
    assert_on(bk, params["W1"], "float32")
    assert costs[-1] < 0.5 * costs[0]
    cls = to_np(bpnet.predict(bk.asarray(ds.X_test, dtype="float32"), params, output_activation="softmax"))
    assert (cls.ravel() == ds.y_test).mean() > 0.85


def test_course_call_prints_cost_lines(capsys, cancer):
    bpnet.L_layer_model(cancer.X_train, cancer.Y_train, [cancer.n_x, 5, 1], num_iterations=201,
                        print_cost=True, backend="numpy")
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "Cost after iteration 0", "Cost after iteration 100", "Cost after iteration 200"]


def test_host_data_moves_to_the_selected_backend(monkeypatch, cancer):
    monkeypatch.setenv("BPNET_BACKEND", "array_api_strict")
    params, _ = bpnet.L_layer_model(cancer.X_train, cancer.Y_train, [cancer.n_x, 3, 1], num_iterations=2)
    assert type(params["W1"]).__module__.startswith("array_api_strict")


def test_callback_receives_logged_costs(cancer):
    seen = []
    _, costs = bpnet.L_layer_model(cancer.X_train, cancer.Y_train, [cancer.n_x, 4, 1], num_iterations=25,
                                   print_every=10, backend="numpy", callback=lambda i, c: seen.append((i, c)))
    assert [i for i, _ in seen] == [0, 10, 20, 24]  # the logged iterations, the last included
    assert [c for i, c in seen if i % 10 == 0] == costs  # costs: every print_every-th, as the notebook


# --------------------------------------------------------------------------- #
# labels the notebook computes with: a warning, not a refusal (MLP and the estimators still refuse them)


@pytest.mark.parametrize(("Y", "dims", "loss", "pattern"), [
    pytest.param(lambda Y: 2 * Y, DIMS, None, r"^Y: expected labels 0 or 1, got 1 other value such as 2; computing",
                 id="binary-2"),
    pytest.param(lambda Y: Y - 0.5, DIMS, None, r"^Y: expected labels 0 or 1, got 2 other values such as -0\.5, 0\.5",
                 id="binary-real"),
    pytest.param(lambda Y: np.ones((2, Y.shape[1])), [3, 4, 2], "categorical_crossentropy",
                 r"^Y: expected one-hot columns \(exactly one 1 per example\), got 2 ones in column 0; computing",
                 id="categorical-not-one-hot"),
])
def test_labels_outside_0_1_warn_and_train(bk, Y, dims, loss, pattern):
    c = api_context()
    Yw = Y(c.Y20)
    with pytest.warns(bpnet.CourseInputWarning, match=pattern) as record:
        params, costs = bpnet.L_layer_model(bk.asarray(c.X20), bk.asarray(Yw), dims, num_iterations=2, loss=loss,
                                            backend=bk)
    assert record[0].filename == __file__  # attributed to the caller, not to bpnet's internals
    assert len(costs) == 1 and math.isfinite(costs[0])
    assert_on(bk, params["W1"], "float64", (dims[1], 3))


def test_labels_warning_can_be_silenced_and_mlp_still_refuses():
    c = api_context()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.simplefilter("ignore", bpnet.CourseInputWarning)
        bpnet.L_layer_model(c.X20, 3 * c.Y20, DIMS, num_iterations=1, backend="numpy")
    with pytest.raises(ValueError, match=r"^Y: expected labels 0 or 1, got 1 other value such as 3$"):
        bpnet.MLP(DIMS, backend="numpy").fit(c.X20, 3 * c.Y20, epochs=1)


# --------------------------------------------------------------------------- #
# divergence and huge learning rates


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning", "ignore:invalid value:RuntimeWarning")
def test_divergence_is_reported_with_the_iteration(cancer):
    # numpy warns about the overflow on its way to inf; the loop then stops with a clear error
    with pytest.raises(bpnet.TrainingDivergedError, match=r"diverged at iteration \d+.*smaller learning_rate"):
        bpnet.L_layer_model(cancer.X_train * 1e3, cancer.Y_train, [cancer.n_x, 50, 1],
                            learning_rate=1e6, num_iterations=50, loss="mse", output_activation="linear",
                            init="he", print_every=1, backend="numpy")


def test_L_layer_model_never_returns_non_finite_parameters(cancer):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with np.errstate(all="ignore"):
            with pytest.raises(bpnet.TrainingDivergedError,
                               match=r"^training diverged at iteration 0: its updates made the parameters NaN or "
                                     r"infinite; try a smaller learning_rate \(now 1e\+308\)$"):
                bpnet.L_layer_model(cancer.X_train * 3, cancer.Y_train * 10, [cancer.n_x, 4, 1],
                                    learning_rate=1e308, num_iterations=1, loss="mse", backend="numpy")


def test_huge_learning_rate_L_layer_model(bk, dtype, cancer):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        params, costs = bpnet.L_layer_model(bk.asarray(cancer.X_train, dtype=dtype),
                                            bk.asarray(cancer.Y_train, dtype=dtype), [cancer.n_x, 8, 1],
                                            learning_rate=1e4, num_iterations=40, hidden_activation="tanh",
                                            print_every=5, backend=bk)
        AL, _ = bpnet.L_model_forward(bk.asarray(cancer.X_train, dtype=dtype), params,
                                      hidden_activation="tanh")
    assert all(math.isfinite(c) for c in costs) and all(all_finite(v) for v in params.values())
    assert saturated_fraction(AL) > 0.5


# --------------------------------------------------------------------------- #
# bad inputs (badinput.py)


#: each case: (function of a small network n on the backend under test, exception type, regex on the message)
PER_BACKEND = [
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
        lambda n: bpnet.L_layer_model(X_with(n, {(0, 1): math.nan}), n.Y, DIMS, num_iterations=1, backend=n.bk),
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
]


@pytest.mark.parametrize(("call", "exc", "pattern"), PER_BACKEND)
def test_bad_input(bk, call, exc, pattern, harness):
    n = small_net(bk)
    harness.refuses(lambda: call(n), exc, pattern)


#: each case: (function of the numpy context c of badinput.api_context, exception type, regex on the message)
BAD_INPUTS = [
    pytest.param(
        lambda c: bpnet.L_layer_model(np.ones((3, M)), np.ones((1, M)), DIMS, num_iterations=1, backend="tensorflow"),
        ValueError, r"^backend: unknown backend 'tensorflow'",
        id="train-unknown-backend",
    ),
    # ---- on the numpy context c ------------------------------------------------------
    pytest.param(lambda c: bpnet.two_layer_model(c.X20, c.Y20, [3, 4, 2, 1], num_iterations=1, backend="numpy"),
                 ValueError, r"^layers_dims: expected \(n_x, n_h, n_y\) for the two-layer model, got \(3, 4, 2, 1\); "
                 r"L_layer_model trains 3 layers$", id="api-two_layer_model-three-layers"),
    pytest.param(lambda c: bpnet.L_layer_model(c.X20, c.Y20, DIMS, num_iterations=1,
                                               loss="categorical_crossentropy", backend="numpy"),
                 ValueError, r"^layers_dims: a softmax output needs >= 2 units \(one per class; over one unit it is constantly 1\), "
                 r"got 1", id="api-train-categorical-one-output-unit"),
    pytest.param(lambda c: bpnet.two_layer_model(c.X20, c.Y20[:, :7], DIMS, num_iterations=1, backend="numpy"),
                 ValueError, r"^Y: expected shape \(1, 20\) = \(layers_dims\[-1\], m of X\), got \(1, 7\)$",
                 id="api-two_layer_model-Y-m-differs"),
    pytest.param(lambda c: bpnet.L_layer_model(c.X20, np.eye(2)[:, np.arange(20) % 2], [3, 4, 3],
                                               num_iterations=1, loss="categorical_crossentropy",
                                               backend="numpy"),
                 ValueError, r"^Y: expected shape \(3, 20\) = \(layers_dims\[-1\], m of X\).*got \(2, 20\)",
                 id="api-train-softmax-class-count-mismatch"),
    pytest.param(lambda c: bpnet.L_layer_model(c.X20 * 1e300, c.Y20, DIMS, num_iterations=1,
                                               dtype="float32", backend="numpy"),
                 ValueError, r"^X: expected values that fit in float32 \(\|x\| <= 3\.403e\+38\), got values up to "
                 r"\d\.\d+e\+300", id="api-train-X-overflows-float32"),
    pytest.param(lambda c: bpnet.L_layer_model(c.X20, c.Y20, DIMS, num_iterations=0, backend="numpy"),
                 ValueError, r"^num_iterations: expected an integer > 0, got 0$", id="api-train-iterations-zero"),
    pytest.param(lambda c: bpnet.L_layer_model(c.X20, c.Y20, DIMS, dtype="int64", backend="numpy"),
                 TypeError, r"^dtype: expected 'float32' or 'float64', got 'int64'$",
                 id="api-train-dtype-int"),
]


@pytest.mark.parametrize(("call", "exc", "pattern"), BAD_INPUTS)
def test_bad_input_once(call, exc, pattern, harness):
    c = api_context()
    harness.refuses(lambda: call(c), exc, pattern)


def test_the_bad_input_tables_are_distinct():
    check_table(PER_BACKEND, minimum=10)
    check_table(BAD_INPUTS, minimum=8)


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"X": "transposed"}, id="X-transposed"),
        pytest.param({"Y": "short"}, id="Y-m-differs"),
        pytest.param({"learning_rate": 0.0}, id="lr-zero"),
    ],
)
def test_failed_training_prints_and_calls_back_nothing(bk, capsys, kwargs):
    n = small_net(bk)
    X = bk.asarray(to_np(n.X).T) if kwargs.get("X") == "transposed" else n.X
    Y = n.Y[:, :4] if kwargs.get("Y") == "short" else n.Y
    lr = kwargs.get("learning_rate", 0.01)
    calls = []
    with pytest.raises(ValueError):
        bpnet.L_layer_model(X, Y, DIMS, learning_rate=lr, num_iterations=3, print_cost=True,
                            print_every=1, callback=lambda i, c: calls.append(i), backend=bk)
    assert calls == []
    assert capsys.readouterr().out == ""
