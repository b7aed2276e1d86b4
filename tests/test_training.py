"""L_layer_model: cost decreases, every backend agrees with numpy, data validated once."""

import numpy as np
import pytest
from conftest import assert_on, to_np

import bpnet
from bpnet.datasets import load_dataset

# Documented parity tolerance of any backend vs numpy after N steps from the same seed
PARITY_RTOL = {"float64": 1e-10, "float32": 1e-4}


@pytest.fixture(scope="module")
def cancer():
    return load_dataset("breast_cancer")


def test_cost_decreases_and_accuracy_is_good(bk, cancer):
    X = bk.asarray(cancer.X_train)
    Y = bk.asarray(cancer.Y_train)
    dims = [cancer.n_x, 20, 7, 5, 1]
    params, costs = bpnet.L_layer_model(X, Y, dims, learning_rate=0.05, num_iterations=600, init="he",
                                        backend=bk)
    assert len(costs) == 7  # iterations 0, 100, ..., 500 and the last, 599
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


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning", "ignore:invalid value:RuntimeWarning")
def test_divergence_is_reported_with_the_iteration(cancer):
    # numpy warns about the overflow on its way to inf; the loop then stops with a clear error
    with pytest.raises(bpnet.TrainingDivergedError, match=r"diverged at iteration \d+.*smaller learning_rate"):
        bpnet.L_layer_model(cancer.X_train * 1e3, cancer.Y_train, [cancer.n_x, 50, 1],
                            learning_rate=1e6, num_iterations=50, loss="mse", output_activation="linear",
                            init="he", print_every=1, backend="numpy")


def test_callback_receives_logged_costs(cancer):
    seen = []
    _, costs = bpnet.L_layer_model(cancer.X_train, cancer.Y_train, [cancer.n_x, 4, 1], num_iterations=25,
                                   print_every=10, backend="numpy", callback=lambda i, c: seen.append((i, c)))
    assert [i for i, _ in seen] == [0, 10, 20, 24]
    assert [c for _, c in seen] == costs
