"""MLP (bpnet.model): training, early stopping, resume, checkpoints, data moved once, on every backend; its
bad inputs."""

import math
import warnings

import numpy as np
import pytest
from badinput import api_context, check_table, with_entry
from conftest import all_finite, assert_on, assert_same_result, saturated_fraction, to_np

import bpnet
import bpnet.train.loop
from bpnet import backends
from bpnet._validate import to_backend
from bpnet.io.checkpoint import CheckpointError
from bpnet.model import MLP, History

# XOR: 2 features, 4 examples as columns
X_XOR = np.array([[0.0, 0.0, 1.0, 1.0], [0.0, 1.0, 0.0, 1.0]])
Y_XOR = np.array([[0.0, 1.0, 1.0, 0.0]])


@pytest.mark.parametrize("optimizer, lr", [("adam", 0.05), ("momentum", 0.5), ("rmsprop", 0.02), ("gd", 1.0)])
def test_tiny_network_trains_to_near_zero_cost(bk, optimizer, lr):
    model = MLP([2, 8, 1], hidden_activation="tanh", seed=1, dtype="float64", backend=bk)
    hist = model.fit(X_XOR, Y_XOR, epochs=400, batch_size=4, optimizer=optimizer, learning_rate=lr)
    assert hist.cost[-1] < 0.02, hist.cost[-1]
    assert hist.accuracy[-1] == 1.0
    pred = model.predict(X_XOR)
    assert_on(bk, pred, shape=(4,))
    np.testing.assert_array_equal(to_np(pred), [0, 1, 1, 0])


def test_defaults_float32_and_float64_on_request(bk, cancer):
    m32 = MLP([cancer.n_x, 4, 1], backend=bk)
    assert m32.dtype == "float32" and m32.loss == "binary_crossentropy" and m32.output_activation == "sigmoid"
    assert_on(bk, m32.parameters["W1"], "float32", (4, cancer.n_x))
    m32.fit(cancer.X_train, cancer.Y_train, epochs=2)
    assert_on(bk, m32.parameters["W1"], "float32")
    assert_on(bk, m32.predict_proba(cancer.X_test), "float32", (1, cancer.X_test.shape[1]))
    m64 = MLP([cancer.n_x, 4, 1], dtype="float64", backend=bk)
    m64.fit(cancer.X_train, cancer.Y_train, epochs=2)
    assert_on(bk, m64.parameters["W1"], "float64")


def test_history_and_evaluate(bk, cancer):
    model = MLP([cancer.n_x, 16, 1], backend=bk)
    hist = model.fit(cancer.X_train, cancer.Y_train, epochs=8, batch_size=32, learning_rate=0.01,
                     lr_decay=0.5, decay_interval=2, validation_split=0.2)
    assert isinstance(hist, History) and len(hist) == 8 and hist is model.history
    assert hist.epoch == list(range(1, 9))
    # lr = 0.01 / (1 + 0.5 floor(e / 2)), e = 0..7
    np.testing.assert_allclose(hist.learning_rate, [0.01 / (1 + 0.5 * (e // 2)) for e in range(8)])
    assert hist.cost[-1] < hist.cost[0]
    assert all(0 <= a <= 1 for a in hist.accuracy + hist.val_accuracy)
    assert all(b >= a for a, b in zip(hist.time_s, hist.time_s[1:]))
    ev = model.evaluate(cancer.X_test, cancer.Y_test)
    assert set(ev) == {"cost", "accuracy", "m"} and ev["m"] == cancer.X_test.shape[1]
    assert ev["accuracy"] > 0.9
    # predictions agree with evaluate's accuracy
    acc = (to_np(model.predict(cancer.X_test)) == cancer.y_test).mean()
    assert acc == pytest.approx(ev["accuracy"])


def test_multiclass_with_index_or_one_hot_labels(bk, digits):
    kw = dict(epochs=3, batch_size=64, learning_rate=0.01, seed=3)
    a = MLP([digits.n_x, 32, 10], backend=bk)
    a.fit(digits.X_train, digits.y_train, **kw)  # 1-D class indices
    b = MLP([digits.n_x, 32, 10], backend=bk)
    b.fit(digits.X_train, digits.Y_train, **kw)  # one-hot (10, m)
    for k in a.parameters:
        np.testing.assert_array_equal(to_np(a.parameters[k]), to_np(b.parameters[k]))
    assert a.loss == "categorical_crossentropy" and a.output_activation == "softmax"
    assert a.evaluate(digits.X_test, digits.y_test)["accuracy"] > 0.85
    assert tuple(a.predict(digits.X_test).shape) == (digits.X_test.shape[1],)


@pytest.mark.parametrize("int_dtype", ["uint8", "int32", "uint64", "int64"])
def test_class_indices_of_any_integer_dtype(bk, int_dtype):
    # the one-hot comparison uses the labels' own integer dtype (uint64 vs int64 has no promotion)
    y = np.array([0, 2, 1, 2, 0, 1], dtype=int_dtype)
    X = np.random.default_rng(0).normal(size=(3, 6))
    model = MLP([3, 4, 3], dtype="float64", backend=bk, seed=0)
    model.fit(X, bk.asarray(y), epochs=1, batch_size=6)
    ref = MLP([3, 4, 3], dtype="float64", backend=bk, seed=0)
    ref.fit(X, np.eye(3)[:, y.astype(np.int64)], epochs=1, batch_size=6)
    for k in ref.parameters:
        np.testing.assert_array_equal(to_np(model.parameters[k]), to_np(ref.parameters[k]))


def test_regression_with_mse(bk):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3, 200))
    y = (X[0] - 2 * X[1] + 0.5 * X[2])[np.newaxis, :]  # a linear target
    model = MLP([3, 16, 1], loss="mse", dtype="float64", backend=bk)
    assert model.output_activation == "linear" and model.task == "regression"
    hist = model.fit(X, y, epochs=60, batch_size=32, learning_rate=0.01)
    assert hist.accuracy[-1] is None and hist.cost[-1] < 0.05 * hist.cost[0]
    pred = model.predict(X)
    assert_on(bk, pred, "float64", (1, 200))


def test_same_seed_bit_identical_and_parity_with_numpy(bk, cancer):
    kw = dict(epochs=3, batch_size=50, dropout=0.2, l2=0.1, clip_norm=1.0, learning_rate=0.01)
    runs = []
    for backend in (bk, bk, "numpy"):
        model = MLP([cancer.n_x, 8, 4, 1], dtype="float64", seed=4, backend=backend)
        model.fit(cancer.X_train, cancer.Y_train, **kw)
        runs.append({k: to_np(v) for k, v in model.parameters.items()})
    for k in runs[0]:
        np.testing.assert_array_equal(runs[0][k], runs[1][k])  # same backend: bit-identical
        np.testing.assert_allclose(runs[0][k], runs[2][k], rtol=1e-10, atol=1e-12)  # vs numpy


@pytest.mark.parametrize("schedule", ["invscaling", "adaptive"])
def test_sgd_schedules_fit_predict_save_load_agree_with_numpy(bk, cancer, tmp_path, schedule):
    """MLP.fit with the registry's sgd (Nesterov) and the schedules of FitConfig, on every backend: the same
    numbers as numpy (float64, 1e-10), through predict and a save/load round trip."""
    kw = dict(epochs=4, batch_size=100, optimizer="sgd", momentum=0.9, nesterov=True, learning_rate=0.05,
              schedule=schedule, power_t=0.3, tol=10.0, n_iter_no_change=1, dropout=0.1, seed=3)
    runs = []
    for backend in (bk, "numpy"):
        model = MLP([cancer.n_x, 8, 1], dtype="float64", seed=4, backend=backend)
        model.fit(cancer.X_train, cancer.Y_train, **kw)
        runs.append(model)
    got, ref = runs
    # tol=10: no epoch after the first improves enough; once more than n_iter_no_change=1 did not (epoch 3),
    # adaptive divides the learning rate by 5, any other schedule stops (scikit-learn's rule)
    if schedule == "adaptive":
        assert got.history.learning_rate == pytest.approx([0.05, 0.05, 0.05, 0.01])
    else:
        assert got.history.learning_rate == pytest.approx([0.05 / (1 + e * 455) ** 0.3 for e in range(3)])
        assert got.history.stopped_early
    assert got.history.learning_rate == ref.history.learning_rate
    np.testing.assert_allclose(got.history.cost, ref.history.cost, rtol=1e-10)
    assert got.optimizer_config == {"name": "sgd", "hyper": {"momentum": 0.9, "nesterov": True}}
    for k in ref.parameters:
        np.testing.assert_allclose(to_np(got.parameters[k]), to_np(ref.parameters[k]), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(to_np(got.optimizer_state["v"][f"d{k}"]), to_np(ref.optimizer_state["v"][f"d{k}"]),
                                   rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(to_np(got.predict_proba(cancer.X_test)), to_np(ref.predict_proba(cancer.X_test)),
                               rtol=1e-10, atol=1e-12)
    got.save(tmp_path / "m.safetensors")
    back = MLP.load(tmp_path / "m.safetensors", backend=bk)
    assert back.backend == got.backend and back.epoch == got.epoch and back.optimizer_config == got.optimizer_config
    for k in got.parameters:
        np.testing.assert_array_equal(to_np(back.parameters[k]), to_np(got.parameters[k]))
    np.testing.assert_array_equal(to_np(back.predict(cancer.X_test)), to_np(got.predict(cancer.X_test)))


@pytest.mark.parametrize("optimizer", ["adam", "momentum", "rmsprop", "gd"])
def test_resume_from_checkpoint_equals_uninterrupted(bk, cancer, tmp_path, optimizer):
    kw = dict(batch_size=64, optimizer=optimizer, dropout=0.1, lr_decay=0.1, learning_rate=0.01, seed=11)
    full = MLP([cancer.n_x, 8, 1], dtype="float64", seed=2, backend=bk)
    full.fit(cancer.X_train, cancer.Y_train, epochs=6, **kw)

    part = MLP([cancer.n_x, 8, 1], dtype="float64", seed=2, backend=bk)
    part.fit(cancer.X_train, cancer.Y_train, epochs=2, checkpoint=tmp_path / "ck.npz", **kw)
    resumed = MLP.load(tmp_path / "ck.npz", backend=bk)
    assert resumed.epoch == 2 and len(resumed.history) == 2
    resumed.fit(cancer.X_train, cancer.Y_train, epochs=4, **kw)
    assert resumed.epoch == 6
    for k in full.parameters:
        np.testing.assert_array_equal(to_np(resumed.parameters[k]), to_np(full.parameters[k]))
    np.testing.assert_allclose(resumed.history.cost, full.history.cost, rtol=1e-12)


def test_checkpoint_portable_across_backends(bk, cancer, tmp_path):
    model = MLP([cancer.n_x, 6, 1], backend=bk)
    model.fit(cancer.X_train, cancer.Y_train, epochs=2)
    model.save(tmp_path / "m.npz")
    for target in ("numpy", "array_api_strict", "array_api_strict:device1"):
        loaded = MLP.load(tmp_path / "m.npz", backend=target)
        assert loaded.backend.name == target.split(":")[0]
        for k in model.parameters:  # the parameters travel bit for bit
            np.testing.assert_array_equal(to_np(loaded.parameters[k]), to_np(model.parameters[k]), strict=True)
        assert_same_result(loaded.backend, model.backend, loaded.predict_proba(cancer.X_test),
                           model.predict_proba(cancer.X_test))
        assert loaded.config() == model.config()


@pytest.mark.parametrize("shuffle", [False, True])
def test_data_already_on_the_backend_is_used_in_place_and_never_written(bk, cancer, shuffle):
    X = bk.asarray(cancer.X_train, dtype="float32")
    Y = bk.asarray(cancer.Y_train, dtype="float32")
    before = to_np(X).copy()
    model = MLP([cancer.n_x, 8, 1], backend=bk, dtype="float32", seed=0)
    assert to_backend(X, "X", bk, "float32") is X  # no copy of a dataset already where and what it must be
    model.fit(X, Y, epochs=2, batch_size=64, shuffle=shuffle, optimizer="gd", learning_rate=0.1)
    model.predict_proba(X)
    np.testing.assert_array_equal(to_np(X), before)
    assert to_backend(bk.asarray(cancer.X_train, dtype="float64"), "X", bk, "float32").dtype == bk.dtype("float32")


def test_predict_applies_no_dropout(bk, cancer):
    a = MLP([cancer.n_x, 32, 1], backend=bk, seed=1)
    before = to_np(a.predict_proba(cancer.X_test))
    assert np.array_equal(before, to_np(a.predict_proba(cancer.X_test)))  # no dropout in predict


def test_early_stopping_restores_the_best_epoch(bk, cancer, tmp_path):
    model = MLP([cancer.n_x, 64, 1], backend=bk, dtype="float64")
    # a learning rate far too high for a long run: validation cost stops improving
    hist = model.fit(cancer.X_train, cancer.Y_train, epochs=200, batch_size=16, learning_rate=0.05,
                     validation_split=0.25, early_stopping=3, checkpoint=tmp_path / "es.npz")
    assert hist.stopped_early and len(hist) < 200
    best = hist.best_epoch
    assert hist.val_cost[best - 1] == min(hist.val_cost)
    assert all(v >= hist.val_cost[best - 1] for v in hist.val_cost[best:])
    # the restored parameters are the best epoch's, and so is the checkpoint
    saved = MLP.load(tmp_path / "es.npz", backend=bk)
    for k in model.parameters:
        np.testing.assert_array_equal(to_np(saved.parameters[k]), to_np(model.parameters[k]))


def test_data_moved_to_the_backend_once(monkeypatch, bk, cancer):
    calls = []
    real = backends.Backend.asarray

    def counting(self, host_array, dtype=None):
        calls.append(np.shape(host_array))
        return real(self, host_array, dtype)

    monkeypatch.setattr(backends.Backend, "asarray", counting)
    model = MLP([cancer.n_x, 8, 1], backend=bk)
    calls.clear()
    model.fit(cancer.X_train, cancer.Y_train, epochs=4, batch_size=16)  # 29 batches an epoch
    m = cancer.X_train.shape[1]
    # X and Y at most once (not at all when numpy data already are numpy-backend arrays); nothing per epoch or
    # batch (the shuffles are drawn on the device, bpnet.nn.random)
    assert calls.count((cancer.n_x, m)) <= 1 and calls.count((1, m)) <= 1
    assert set(calls) <= {(cancer.n_x, m), (1, m)}


@pytest.mark.parametrize("kwargs, exc, pattern", [
    (dict(epochs=0), ValueError, r"epochs: expected an integer > 0, got 0"),
    (dict(batch_size=-4), ValueError, r"batch_size: expected an integer > 0"),
    (dict(optimizer="adamw"), ValueError, r"optimizer: unknown optimizer 'adamw'.*'adam'"),
    (dict(learning_rate=0.0), ValueError, r"learning_rate: expected a finite number > 0, got 0.0"),
    (dict(dropout=1.0), ValueError, r"dropout: expected a finite number in \[0, 1\), got 1.0"),
    (dict(dropout=-0.1), ValueError, r"dropout: expected a finite number in \[0, 1\)"),
    (dict(l2=-1.0), ValueError, r"l2: expected a finite number >= 0"),
    (dict(early_stopping=3), ValueError, r"early_stopping: needs validation_data or validation_split"),
    (dict(validation_split=1.5), ValueError, r"validation_split: expected a finite number in \[0, 1\)"),
    (dict(clip_norm=0), ValueError, r"clip_norm: expected a finite number > 0"),
])
def test_bad_fit_arguments(cancer, kwargs, exc, pattern):
    model = MLP([cancer.n_x, 4, 1], backend="numpy")
    before = {k: v.copy() for k, v in model.parameters.items()}
    with pytest.raises(exc, match=pattern):
        model.fit(cancer.X_train, cancer.Y_train, **kwargs)
    for k in before:  # nothing was trained
        np.testing.assert_array_equal(model.parameters[k], before[k])
    assert model.epoch == 0


@pytest.mark.parametrize("make, exc, pattern", [
    (lambda X, Y: (X.T, Y), ValueError, r"X: expected shape \(30, m\).*transposed"),
    (lambda X, Y: (X, Y * 2), ValueError, r"Y: expected labels 0 or 1, got 1 other value such as 2"),
    (lambda X, Y: (X, Y[:, :10]), ValueError, r"Y: expected shape \(1, \d+\)"),
    (lambda X, Y: (np.where(X > 2, np.nan, X), Y), ValueError, r"X: expected finite values, got \d+ NaN"),
    (lambda X, Y: (X.astype(np.complex128), Y), TypeError, r"X: expected real numbers \(a floating or integer dtype\)"),
    (lambda X, Y: (X[:, :0], Y[:, :0]), ValueError, r"X: expected a non-empty array"),
])
def test_bad_data(cancer, make, exc, pattern):
    X, Y = make(cancer.X_train, cancer.Y_train)
    with pytest.raises(exc, match=pattern):
        MLP([cancer.n_x, 4, 1], backend="numpy").fit(X, Y, epochs=1)


def test_bad_softmax_labels(digits):
    model = MLP([digits.n_x, 4, 10], backend="numpy")
    with pytest.raises(ValueError, match=r"Y: class indices must be in \[0, 9\].*from 0 to 10"):
        model.fit(digits.X_train, np.where(digits.y_train == 9, 10, digits.y_train), epochs=1)
    with pytest.raises(ValueError, match=r"Y: expected shape \(10, \d+\).*one-hot"):
        model.fit(digits.X_train, digits.Y_train[:9], epochs=1)


@pytest.mark.parametrize("kwargs, pattern", [
    (dict(layer_dims=[4, 0, 1]), r"layer_dims: expected positive integers"),
    (dict(layer_dims=[4, 3, 1], hidden_activation="softmax"), r"hidden_activation: softmax"),
    (dict(layer_dims=[4, 3, 1], loss="hinge"), r"loss: unknown loss 'hinge'"),
    (dict(layer_dims=[4, 3, 1], loss="categorical_crossentropy"), r"a softmax output needs >= 2 units"),
    (dict(layer_dims=[4, 3, 2], init="zeros"), r"init: unknown initialisation 'zeros'"),
    (dict(layer_dims=[4, 3, 2], backend="tpu"), r"unknown backend 'tpu'"),
])
def test_bad_model_arguments(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        MLP(**kwargs)


def test_out_of_memory_becomes_a_clear_error(monkeypatch, cancer):
    class OutOfMemoryError(Exception):  # what cupy raises, matched by name
        pass

    def boom(*args, **kwargs):
        raise OutOfMemoryError("Out of memory allocating 8,589,934,592 bytes")

    model = MLP([cancer.n_x, 4, 1], backend="numpy")
    monkeypatch.setattr(bpnet.train.loop.LocalBatches, "run_epoch", boom)
    with pytest.raises(MemoryError, match=r"out of memory on numpy .* batch_size=64.*try a smaller batch_size"):
        model.fit(cancer.X_train, cancer.Y_train, epochs=1)
    assert model.epoch == 0


def test_the_parameters_setter_checks_architecture_dtype_and_backend(bk, tmp_path):
    """Parameters of another architecture, dtype or backend are refused when assigned, not when saved."""
    model = MLP([4, 6, 1], dtype="float64", backend=bk, seed=0)
    other = bpnet.initialize_parameters_deep([4, 5, 1], dtype="float64", backend=bk)
    with pytest.raises(ValueError, match=r"parameters: expected W1, b1, \.\.\., W2, b2 of a 4-6-1 network, got 4-5-1"):
        model.parameters = other
    with pytest.raises(TypeError, match=r"parameters: expected dtype float64 like the model, got float32"):
        model.parameters = bpnet.initialize_parameters_deep([4, 6, 1], dtype="float32", backend=bk)
    elsewhere = "array_api_strict:device1" if bk.name == "numpy" else "numpy"
    with pytest.raises(ValueError, match=r"parameters: expected arrays on .*move them with model\.backend\.asarray"):
        model.parameters = bpnet.initialize_parameters_deep([4, 6, 1], dtype="float64", backend=elsewhere)
    with pytest.raises(ValueError, match=r"keys \['W1', 'W2', 'b1', 'b2', 'extra'\]"):
        model.parameters = {**model.parameters, "extra": model.parameters["b1"]}
    same = bpnet.initialize_parameters_deep([4, 6, 1], init="xavier", dtype="float64", backend=bk)
    model.parameters = same  # what is accepted saves and loads
    model.save(tmp_path / "m.npz")
    back = MLP.load(tmp_path / "m.npz", backend=bk)
    for k in same:
        np.testing.assert_array_equal(to_np(back.parameters[k]), to_np(same[k]))


@pytest.mark.parametrize("hidden", [a for a, e in bpnet.ACTIVATIONS.items() if e.hidden])
def test_every_registry_activation_trains_and_is_offered_everywhere(hidden, cancer):
    """An activation is one registry entry: MLP.fit, the CLI and the estimators take it with no other edit."""
    from sklearn.exceptions import ConvergenceWarning

    from bpnet.cli import build_parser
    from bpnet.sklearn import MLPClassifier

    model = MLP([cancer.n_x, 8, 1], hidden_activation=hidden, dtype="float64", backend="numpy", seed=0)
    model.fit(cancer.X_train, cancer.Y_train, epochs=30, batch_size=128, learning_rate=0.01)
    assert model.history.cost[-1] < model.history.cost[0]
    assert build_parser().parse_args(["train", "--hidden-activation", hidden]).hidden_activation == hidden
    clf = MLPClassifier((4,), activation=hidden, solver="lbfgs", max_iter=2, random_state=0, backend="numpy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # 2 iterations, on purpose
        clf.fit(cancer.X_train.T, cancer.y_train)
    assert clf.model_.hidden_activation == hidden


def test_pickle_and_checkpoint_are_one_serialisation(tmp_path, cancer):
    """MLP pickles (the estimators rely on it) and saves the same state: parameters, optimiser, history."""
    import pickle

    model = MLP([cancer.n_x, 6, 1], backend="numpy", seed=3)
    model.fit(cancer.X_train, cancer.Y_train, epochs=2, batch_size=128)
    model.metadata["note"] = "kept"
    model.save(tmp_path / "m.npz")
    for back in (pickle.loads(pickle.dumps(model)), MLP.load(tmp_path / "m.npz")):
        assert back.config() == model.config() and back.epoch == 2 and back.metadata == {"note": "kept"}
        assert back.history.cost == model.history.cost and back.optimizer_config == model.optimizer_config
        for k in model.parameters:
            np.testing.assert_array_equal(to_np(back.parameters[k]), to_np(model.parameters[k]))
        np.testing.assert_array_equal(to_np(back.optimizer_state["v"]["dW1"]), to_np(model.optimizer_state["v"]["dW1"]))


# --------------------------------------------------------------------------- #
# a huge learning rate, out of memory


def test_huge_learning_rate_saturates_but_never_nans_mlp(bk, dtype, cancer):
    """gd at lr = 1e5 drives the sigmoid output into saturation; the cost stays finite, no NaN anywhere."""
    model = MLP([cancer.n_x, 16, 1], hidden_activation="tanh", dtype=dtype, seed=3, backend=bk)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        hist = model.fit(cancer.X_train, cancer.Y_train, epochs=12, batch_size=64, optimizer="gd",
                         learning_rate=1e5)
        AL = model.predict_proba(cancer.X_train)
    assert all(math.isfinite(c) for c in hist.cost), hist.cost
    assert all(all_finite(v) for v in model.parameters.values())
    assert all_finite(AL) and saturated_fraction(AL) > 0.9, saturated_fraction(AL)


@pytest.mark.gpu
@pytest.mark.skipif("cupy" in backends.unavailable_reasons(),
                    reason=f"needs a usable cupy GPU: {backends.unavailable_reasons().get('cupy')}")
def test_real_gpu_out_of_memory_is_a_clear_error():
    """A batch whose first activation needs ~128 GiB: cupy's OutOfMemoryError becomes a MemoryError."""
    model = MLP([8, 2**20, 1], dtype="float32", backend="cupy")
    X = np.random.default_rng(0).normal(size=(8, 2**15)).astype(np.float32)
    Y = (X[:1] > 0).astype(np.float32)
    with pytest.raises(MemoryError, match=r"out of memory on cupy .*batch_size=32768.*try a smaller batch_size"):
        model.fit(X, Y, epochs=1, batch_size=2**15, optimizer="gd")
    assert model.epoch == 0
    assert math.isfinite(float(np.asarray(backends.to_numpy(model.parameters["W2"])).sum()))


# --------------------------------------------------------------------------- #
# bad inputs (badinput.py)


#: each case: (function of the numpy context c of badinput.api_context, exception type, regex on the message)
BAD_INPUTS = [
    pytest.param(lambda c: MLP([3, 4, 1], backend="numpy").fit(c.X20.T, c.Y20, epochs=1), ValueError,
                 r"^X: expected shape \(3, m\) for layer_dims\[0\] = 3, got \(20, 3\); it looks transposed",
                 id="mlp-fit-X-transposed"),
    pytest.param(lambda c: MLP([3, 4, 1], backend="numpy").fit(c.X20, c.Y20[:, :5], epochs=1), ValueError,
                 r"^Y: expected shape \(1, 20\) = \(layer_dims\[-1\], m of X\), got \(1, 5\)$",
                 id="mlp-fit-Y-m-mismatch"),
    pytest.param(lambda c: MLP([3, 4, 1], backend="numpy").fit(c.X20[:, :0], c.Y20[:, :0], epochs=1),
                 ValueError, r"^X: expected a non-empty array, got shape \(3, 0\) \(m \(examples, columns\) is 0\)$",
                 id="mlp-fit-X-empty"),
    pytest.param(lambda c: MLP([3, 4, 1], backend="numpy").fit(c.X20.astype(object), c.Y20, epochs=1),
                 TypeError, r"^X: expected real numbers \(a floating or integer dtype\), got object",
                 id="mlp-fit-X-object"),
    pytest.param(lambda c: MLP([3, 4, 1], backend="numpy").fit([[1.0, 2.0], [3.0]], c.Y20, epochs=1),
                 TypeError, r"^X: expected an array of real numbers, got a list that is not one",
                 id="mlp-fit-X-ragged-list"),
    pytest.param(lambda c: MLP([3, 4, 1], backend="numpy").fit(c.X20, c.Y20 + 0j, epochs=1), TypeError,
                 r"^Y: expected real numbers or booleans, got complex128", id="mlp-fit-Y-complex"),
    pytest.param(lambda c: MLP([3, 4, 1], backend="numpy").fit(c.X20, with_entry(c.Y20, (0, 3), math.nan),
                                                               epochs=1),
                 ValueError, r"^Y: expected finite values, got 1 NaN and 0 inf", id="mlp-fit-Y-nan"),
    pytest.param(lambda c: MLP([3, 4, 1], backend="numpy").fit(with_entry(c.X20, (2, 7), math.inf), c.Y20,
                                                               epochs=1),
                 ValueError, r"^X: expected finite values, got 0 NaN and 1 inf", id="mlp-fit-X-inf"),
    pytest.param(lambda c: MLP([3, 4, 1], backend="numpy").fit(c.X20, 2 * c.Y20, epochs=1), ValueError,
                 r"^Y: expected labels 0 or 1, got 1 other value such as 2$", id="mlp-fit-labels-outside-0-1"),
    pytest.param(lambda c: MLP([3, 4, 3], backend="numpy").fit(c.X20, np.arange(20) % 6, epochs=1),
                 ValueError, r"^Y: class indices must be in \[0, 2\] for 3 output units, got values from 0 to 5$",
                 id="mlp-fit-softmax-class-index-out-of-range"),
    pytest.param(lambda c: MLP([3, 4, 3], backend="numpy").fit(c.X20, np.eye(2)[:, np.arange(20) % 2],
                                                               epochs=1),
                 ValueError, r"^Y: expected shape \(3, 20\) = \(layer_dims\[-1\], m of X\) \(one-hot",
                 id="mlp-fit-softmax-class-count-mismatch"),
    pytest.param(lambda c: MLP([3, 4, 1], backend="numpy", dtype="float32").fit(c.X20 * 1e300, c.Y20,
                                                                                epochs=1),
                 ValueError, r"^X: expected values that fit in float32 .*got values up to \d\.\d+e\+300",
                 id="mlp-fit-X-overflows-float32"),
    pytest.param(lambda c: MLP([3, 4, 1], backend="numpy").predict(c.X20.T), ValueError,
                 r"^X: expected shape \(3, m\) for layer_dims\[0\] = 3, got \(20, 3\); it looks transposed",
                 id="mlp-predict-X-transposed"),
    pytest.param(lambda c: MLP([3, 4, 1], hidden_activation="gelu", backend="numpy"), ValueError,
                 r"^hidden_activation: unknown activation 'gelu'; expected one of", id="mlp-unknown-hidden-activation"),
    pytest.param(lambda c: MLP([3, 4, 1], output_activation="swish", backend="numpy"), ValueError,
                 r"^output_activation: unknown activation 'swish'; expected one of",
                 id="mlp-unknown-output-activation"),
    pytest.param(lambda c: MLP([3, 4, 1], loss="hinge", backend="numpy"), ValueError,
                 r"^loss: unknown loss 'hinge'; expected one of", id="mlp-unknown-loss"),
    pytest.param(lambda c: MLP([3, 4, 1], backend="tensorflow"), ValueError,
                 r"^backend: unknown backend 'tensorflow'; expected one of", id="mlp-unknown-backend"),
    pytest.param(lambda c: MLP([3, -4, 1], backend="numpy"), ValueError,
                 r"^layer_dims: expected positive integers, got -4 at position 1", id="mlp-layer-size-negative"),
    pytest.param(lambda c: MLP([3, 4, 1], backend="numpy").fit(c.X20, c.Y20, optimizer="nadam"), ValueError,
                 r"^optimizer: unknown optimizer 'nadam'; expected one of 'gd', 'momentum', 'rmsprop', 'adam', 'sgd'$",
                 id="mlp-fit-unknown-optimizer"),
    pytest.param(lambda c: MLP([3, 4, 1], backend="numpy").fit(c.X20, c.Y20, learning_rate=0.0), ValueError,
                 r"^learning_rate: expected a finite number > 0, got 0\.0$", id="mlp-fit-lr-zero"),
    pytest.param(lambda c: MLP([3, 4, 1], backend="numpy").fit(c.X20, c.Y20, learning_rate=-1e-3),
                 ValueError, r"^learning_rate: expected a finite number > 0, got -0\.001$", id="mlp-fit-lr-negative"),
    pytest.param(lambda c: MLP([3, 4, 1], backend="numpy").fit(c.X20, c.Y20, batch_size=0), ValueError,
                 r"^batch_size: expected an integer > 0, got 0$", id="mlp-fit-batch-size-zero"),
    pytest.param(lambda c: MLP([3, 4, 1], backend="numpy").fit(c.X20, c.Y20, batch_size=-8), ValueError,
                 r"^batch_size: expected an integer > 0, got -8$", id="mlp-fit-batch-size-negative"),
    pytest.param(lambda c: MLP([3, 4, 1], backend="numpy").fit(c.X20, c.Y20, epochs=0), ValueError,
                 r"^epochs: expected an integer > 0, got 0$", id="mlp-fit-epochs-zero"),
    pytest.param(lambda c: MLP([3, 4, 1], backend="numpy").fit(c.X20, c.Y20, dropout=1.0), ValueError,
                 r"^dropout: expected a finite number in \[0, 1\), got 1\.0$", id="mlp-fit-dropout-one"),
    pytest.param(lambda c: MLP([3, 4, 1], backend="numpy").fit(c.X20, c.Y20, dropout=-0.2), ValueError,
                 r"^dropout: expected a finite number in \[0, 1\), got -0\.2$", id="mlp-fit-dropout-negative"),
    pytest.param(lambda c: MLP([3, 4, 1], output_activation="softmax", backend="numpy"), ValueError,
                 r"^(output_activation|layer_dims): .*softmax.*(2|two)", id="mlp-softmax-over-one-unit"),
    # a missing file raises FileNotFoundError (an OSError, the standard type for it), naming the path
    pytest.param(lambda c: MLP.load("missing.npz"), FileNotFoundError,
                 r"checkpoint file not found: 'missing\.npz'", id="ckpt-load-missing-file"),
    pytest.param(lambda c: MLP.load("good.npz"), CheckpointError,
                 r"^checkpoint 'good\.npz': not an MLP checkpoint \(no 'model' entry in its metadata\)$",
                 id="ckpt-load-not-an-MLP-checkpoint"),
]


@pytest.mark.parametrize(("call", "exc", "pattern"), BAD_INPUTS)
def test_bad_input_once(call, exc, pattern, harness):
    c = api_context()
    harness.refuses(lambda: call(c), exc, pattern)


def test_the_bad_input_tables_are_distinct():
    check_table(BAD_INPUTS, minimum=29)


def test_history_reports_the_exact_cost_of_a_confidently_wrong_network(bk):
    """The cost in history comes from the logits: a sigmoid output at z = -800 for a positive label costs 800,
    where A[L] has rounded to 0 (from A[L] the cost would be -log(smallest normal) = 708)."""
    X = bk.asarray(np.array([[1.0, -1.0]]))  # z = -800 (wrong: label 1) and z = 800 (right: label 1)
    Y = bk.asarray(np.array([[1.0, 1.0]]))
    params = {"W1": bk.asarray(np.array([[-800.0]])), "b1": bk.asarray(np.array([[0.0]]))}
    model = MLP([1, 1], dtype="float64", backend=bk, parameters=params)
    assert float(to_np(model.predict_proba(X))[0, 0]) == 0.0  # saturated for real
    model.fit(X, Y, epochs=1, batch_size=2, optimizer="gd", learning_rate=1e-12)
    assert model.history.cost[0] == pytest.approx((800.0 + 0.0) / 2, rel=1e-12)  # (800 + log(1 + e^-800)) / 2
    assert model.evaluate(X, Y)["cost"] == pytest.approx(400.0, rel=1e-9)


# --------------------------------------------------------------------------- #
# loading: the metadata's schema, one source for the architecture; inference over column batches, no silent NaN


def _mlp_checkpoint(tmp_path):
    """An Adam-trained 3-4-2 softmax MLP with a preprocessor, saved: ``(path, bpnet header, tensors)``."""
    import json

    import safetensors.numpy
    from safetensors import safe_open

    from bpnet.io import Preprocessor

    rng = np.random.default_rng(0)
    model = MLP([3, 4, 2], output_activation="softmax", backend="numpy", seed=1)
    model.fit(rng.normal(size=(3, 20)), rng.integers(0, 2, size=20), epochs=2, batch_size=10)
    model.preprocessor = Preprocessor(["a", "b", "c"], [0.0, 0.0, 0.0], [1.0, 1.0, 1.0], "multiclass",
                                      ["u", "v"], "label")
    path = model.save(tmp_path / "mlp.st")
    with safe_open(str(path), framework="numpy") as f:
        header = json.loads(f.metadata()["bpnet"])
    return path, header, safetensors.numpy.load_file(str(path))


def _rewrite(path, header, tensors, text=None):
    import hashlib
    import json

    import safetensors.numpy

    h = hashlib.sha256()
    for name in sorted(tensors):
        a = tensors[name]
        h.update(json.dumps([name, a.dtype.name, list(a.shape)]).encode() + b"\n" + a.astype(a.dtype.newbyteorder("<")).tobytes())
    text = text if text is not None else json.dumps({**header, "sha256": h.hexdigest()})
    path.write_bytes(safetensors.numpy.save(tensors, metadata={"bpnet": text}))
    return path


def _set(keys, value):
    """A change of the header: ``keys`` the path of the entry to set (or delete, with value ``...``)."""
    def change(h):
        d = h
        for k in keys[:-1]:
            d = d[k]
        if value is ...:
            del d[keys[-1]]
        else:
            d[keys[-1]] = value
    return change


def _nested(depth):
    v = 1
    for _ in range(depth):
        v = [v]
    return v


#: the malformed-metadata family: (change of a valid MLP checkpoint's header, regex on the CheckpointError)
MALFORMED = [
    pytest.param(_set(["metadata"], []), r"metadata: expected an object \(dict\), got list", id="metadata-a-list"),
    pytest.param(_set(["metadata", "model"], [3, 4, 2]), r"metadata\['model'\]: expected an object \(dict\), got list",
                 id="model-a-list"),
    pytest.param(_set(["metadata", "model"], ...), r"not an MLP checkpoint \(no 'model' entry", id="model-missing"),
    pytest.param(_set(["metadata", "surprise"], 1), r"metadata: unknown field\(s\) \['surprise'\]", id="unknown-entry"),
    pytest.param(_set(["metadata", "model", "layer_dims"], [20000, 20000, 2]),
                 r"metadata\['model'\]\['layer_dims'\]: \[20000, 20000, 2\] does not match the saved tensors, which "
                 r"give \[3, 4, 2\]", id="model-layer-dims-bomb"),
    pytest.param(_set(["metadata", "model", "layer_dims"], [3, 0, 2]),
                 r"metadata\['model'\]\['layer_dims'\]: expected positive integers", id="model-layer-dims-zero"),
    pytest.param(_set(["metadata", "model", "hidden_activation"], "gelu"),
                 r"metadata\['model'\]\['hidden_activation'\]: unknown activation 'gelu'", id="model-unknown-activation"),
    pytest.param(_set(["metadata", "model", "hidden_activation"], "softmax"),
                 r"metadata\['model'\]\['hidden_activation'\]: softmax normalises over the class axis",
                 id="model-softmax-hidden"),
    pytest.param(_set(["metadata", "model", "loss"], "hinge"), r"metadata\['model'\]\['loss'\]: unknown loss 'hinge'",
                 id="model-unknown-loss"),
    pytest.param(_set(["metadata", "model", "output_activation"], "linear"),
                 r"metadata\['model'\]\['output_activation'\]: categorical_crossentropy trains softmax outputs",
                 id="model-output-loss-mismatch"),
    pytest.param(_set(["metadata", "model", "init"], "zeros"),
                 r"metadata\['model'\]\['init'\]: unknown initialisation 'zeros'", id="model-unknown-init"),
    pytest.param(_set(["metadata", "model", "seed"], -1), r"metadata\['model'\]\['seed'\]: expected an integer >= 0",
                 id="model-negative-seed"),
    pytest.param(_set(["metadata", "model", "dtype"], "float16"),
                 r"metadata\['model'\]\['dtype'\]: 'float16' does not match the saved tensors' 'float32'",
                 id="model-dtype"),
    pytest.param(_set(["metadata", "model", "dropout"], 0.5), r"metadata\['model'\]: unknown field\(s\) \['dropout'\]",
                 id="model-unknown-field"),
    pytest.param(_set(["metadata", "epoch"], -1), r"metadata\['epoch'\]: expected an integer >= 0, got -1",
                 id="epoch-negative"),
    pytest.param(_set(["metadata", "epoch"], "3"), r"metadata\['epoch'\]: expected an integer, got str '3'",
                 id="epoch-text"),
    pytest.param(_set(["metadata", "history"], [1.0]), r"metadata\['history'\]: expected an object \(dict\), got list",
                 id="history-a-list"),
    pytest.param(_set(["metadata", "history", "cost"], [0.7]),
                 r"metadata\['history'\]: expected lists of one length .*'cost': 1", id="history-unequal-lengths"),
    pytest.param(_set(["metadata", "history", "cost"], ["x", 0.5]),
                 r"metadata\['history'\]\['cost'\]\[0\]: expected a real number, got str 'x'", id="history-text"),
    pytest.param(_set(["metadata", "history", "cost"], [0.6, float("nan")]),
                 r"metadata\['history'\]\['cost'\]\[1\]: expected a finite number, got nan", id="history-nan"),
    pytest.param(_set(["metadata", "history", "loss"], []), r"metadata\['history'\]: unknown field\(s\) \['loss'\]",
                 id="history-unknown-field"),
    pytest.param(_set(["metadata", "history", "epoch"], [0, 1]),
                 r"metadata\['history'\]\['epoch'\]\[0\]: expected an integer > 0, got 0", id="history-epoch-zero"),
    pytest.param(_set(["metadata", "optimizer", "name"], "adamw"),
                 r"metadata\['optimizer'\]: name: unknown optimizer 'adamw'", id="optimizer-unknown"),
    pytest.param(_set(["metadata", "optimizer", "hyper", "beta1"], 1.5),
                 r"metadata\['optimizer'\]: beta1: expected a finite number in \[0, 1\), got 1\.5",
                 id="optimizer-hyper-out-of-range"),
    pytest.param(_set(["metadata", "optimizer", "hyper", "lr"], 0.1),
                 r"metadata\['optimizer'\]: lr: not a hyper-parameter of optimizer 'adam'", id="optimizer-unknown-hyper"),
    pytest.param(_set(["metadata", "optimizer"], [1]), r"metadata\['optimizer'\]: expected an object \(dict\), got list",
                 id="optimizer-a-list"),
    pytest.param(_set(["optimizer", "scalars", "t"], -3), r"optimizer_state\['t'\]: expected an integer >= 0, got -3",
                 id="t-negative"),
    pytest.param(_set(["optimizer", "scalars", "t"], float("nan")),
                 r"optimizer_state\['t'\]: expected a finite number, got nan", id="t-nan"),
    pytest.param(_set(["optimizer", "scalars", "t"], "abc"), r"optimizer_state\['t'\]: expected an integer, got str",
                 id="t-text"),
    pytest.param(_set(["optimizer", "scalars", "t"], 1.5),
                 r"optimizer_state\['t'\]: expected an integer, got float 1\.5", id="t-fraction"),
    pytest.param(_set(["optimizer", "scalars", "lr"], 0.1),
                 r"optimizer_state: expected the step count 't' and no other value for adam", id="t-and-more"),
    pytest.param("no-moments", r"metadata\['optimizer'\]: adam keeps the moments \['s', 'v'\], the checkpoint holds none",
                 id="adam-without-its-moments"),
    pytest.param(_set(["metadata", "preprocessor", "mean"], ...),
                 r"metadata\['preprocessor'\]: missing field\(s\) \['mean'\]", id="preprocessor-missing-mean"),
    pytest.param(_set(["metadata", "preprocessor", "task"], "clustering"),
                 r"metadata\['preprocessor'\]: task: unknown task 'clustering'", id="preprocessor-unknown-task"),
    pytest.param(_set(["metadata", "preprocessor"], [1]), r"metadata\['preprocessor'\]: expected a dict, got list",
                 id="preprocessor-a-list"),
    pytest.param(_set(["metadata", "user"], [1]), r"metadata\['user'\]: expected an object \(dict\), got list",
                 id="user-a-list"),
    pytest.param(_set(["metadata", "user", "deep"], _nested(40)), r"metadata: JSON nested deeper than 32 levels",
                 id="nested-40-deep"),
    pytest.param("deep", r"header: JSON nested too deeply", id="nested-200000-deep"),
    pytest.param(_set(["format_version"], "2"), r"header 'format_version': expected an integer >= 1, got '2'",
                 id="format-version-text"),
    pytest.param(_set(["dtype"], "float64"), r"header\['dtype'\]: 'float64' does not match the tensors",
                 id="header-dtype"),
    pytest.param(_set(["created"], 20250101), r"header 'created': expected a str, got int", id="header-created"),
    pytest.param(_set(["extra"], {}), r"header: unknown field\(s\) \['extra'\]", id="header-unknown-field"),
]


@pytest.mark.parametrize("change, pattern", MALFORMED)
def test_malformed_metadata_is_refused_naming_the_file_and_field(tmp_path, monkeypatch, change, pattern):
    """Before any tensor data is read and before any model is built."""
    import bpnet.io.checkpoint as ckmod

    path, header, tensors = _mlp_checkpoint(tmp_path)
    text = None
    if change == "no-moments":
        tensors = {k: a for k, a in tensors.items() if not k.startswith("opt.")}
    elif change == "deep":
        text = '{"format": "bpnet-checkpoint", "metadata": ' + "[" * 200_000 + "]" * 200_000 + "}"
    else:
        change(header)
    bad = _rewrite(tmp_path / "bad.st", header, tensors, text)
    monkeypatch.setattr(ckmod, "_read", lambda *a: pytest.fail("read tensor data of a bad checkpoint"))
    monkeypatch.setattr(bpnet.model, "initialize_parameters_deep", lambda *a, **k: pytest.fail("built a model"))
    with pytest.raises(CheckpointError, match=pattern) as info:
        MLP.load(bad, backend="numpy")
    assert str(info.value).startswith(f"checkpoint {str(bad)!r}: "), str(info.value)


def test_the_malformed_table_is_distinct():
    check_table(MALFORMED, minimum=40)


def test_load_builds_the_model_from_the_tensors_and_never_a_random_one(tmp_path, monkeypatch):
    path, header, tensors = _mlp_checkpoint(tmp_path)
    monkeypatch.setattr(bpnet.model, "initialize_parameters_deep", lambda *a, **k: pytest.fail("built a model"))
    model = MLP.load(path, backend="numpy")
    for k in ("W1", "b1", "W2", "b2"):
        np.testing.assert_array_equal(model.parameters[k], tensors[k], strict=True)
    assert model.preprocessor.class_names == ("u", "v") and model.optimizer_state["t"] == 4


def test_a_tiny_checkpoint_declaring_huge_layers_is_refused_fast(tmp_path, monkeypatch):
    """A 6 KB file whose metadata declared layer_dims [20000, 20000, 3] took 21 s and 4.7 GB; now < 2 s, nothing
    allocated (the architecture is the tensors' shapes)."""
    import time

    path, header, tensors = _mlp_checkpoint(tmp_path)
    header["metadata"]["model"]["layer_dims"] = [20000, 20000, 2]
    bad = _rewrite(tmp_path / "bomb.st", header, tensors)
    assert bad.stat().st_size < 8000
    monkeypatch.setattr(bpnet.model, "initialize_parameters_deep", lambda *a, **k: pytest.fail("built a model"))
    t0 = time.perf_counter()
    with pytest.raises(CheckpointError, match=r"\[20000, 20000, 2\] does not match the saved tensors"):
        MLP.load(bad, backend="numpy")
    assert time.perf_counter() - t0 < 2.0


def test_pickles_go_through_the_same_schema(tmp_path):
    import pickle

    model = MLP([3, 4, 1], backend="numpy")
    state = model.__getstate__()
    state["meta"]["history"]["cost"] = [0.5]  # one cost, no epoch: lists of unequal length
    with pytest.raises(ValueError, match=r"metadata\['history'\]: expected lists of one length"):
        pickle.loads(pickle.dumps(model)).__setstate__(state)


@pytest.mark.parametrize("task", ["multiclass", "binary", "regression"])
def test_inference_over_column_batches_equals_one_whole_pass(bk, monkeypatch, task):
    """predict, predict_proba and evaluate in batches of 7 columns give what one pass over all 50 gives."""
    import bpnet.train.inference as inference
    from bpnet.nn._kernels import forward

    dims, kw = {"multiclass": ([5, 9, 4], {}), "binary": ([5, 9, 1], {}), "regression": ([5, 9, 2], {"loss": "mse"})}[task]
    model = MLP(dims, dtype="float64", backend=bk, seed=2, **kw)
    rng = np.random.default_rng(3)
    X = rng.normal(size=(5, 50))
    Y = {"multiclass": np.eye(4)[:, rng.integers(0, 4, 50)], "binary": (rng.random((1, 50)) > 0.5) * 1.0,
         "regression": rng.normal(size=(2, 50))}[task]
    whole_AL = to_np(forward(bk.xp, bk.asarray(X), model.parameters, 2, model.net.hidden, model.net.output)[0])
    whole = (to_np(model.predict_proba(X)), to_np(model.predict(X)), model.evaluate(X, Y))
    monkeypatch.setattr(inference, "batch_columns", lambda xp, X, p: 7)
    calls = []
    real = inference.step.forward_train
    monkeypatch.setattr(inference.step, "forward_train", lambda xp, Xb, *a, **k: (calls.append(Xb.shape[1]),
                                                                                  real(xp, Xb, *a, **k))[1])
    proba, pred, ev = model.predict_proba(X), model.predict(X), model.evaluate(X, Y)
    assert calls == ([7] * 7 + [1]) * 3  # 50 columns: 7 batches of 7 and one of 1, for each of the three calls
    assert_on(bk, proba, "float64", (dims[-1], 50))
    np.testing.assert_allclose(to_np(proba), whole_AL, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(to_np(proba), whole[0], rtol=1e-13, atol=1e-15)
    if task == "regression":  # predictions are the outputs: a BLAS (torch's) may round them per batch shape
        np.testing.assert_allclose(to_np(pred), whole[1], rtol=1e-13, atol=1e-15)
    else:
        np.testing.assert_array_equal(to_np(pred), whole[1])
    assert ev["m"] == 50 and ev["cost"] == pytest.approx(whole[2]["cost"], rel=1e-12)
    assert ev["accuracy"] == whole[2]["accuracy"]


def test_the_batch_size_comes_from_a_byte_budget():
    from bpnet.train.inference import INFER_BYTES, MIN_INFER_BYTES, batch_columns

    xp = np
    params = bpnet.initialize_parameters_deep([784, 256, 128, 10], dtype="float32", backend="numpy")
    per_column = 4 * (256 + 128 + 10 + 256)
    big = np.empty((784, 1_000_000), np.float32)  # never touched: only its shape counts
    assert batch_columns(xp, big, params) == INFER_BYTES // per_column
    assert batch_columns(xp, np.empty((784, 10_000), np.float32), params) == 784 * 10_000 * 4 // 8 // per_column
    assert batch_columns(xp, np.empty((784, 100), np.float32), params) == 100  # all columns: one batch
    assert MIN_INFER_BYTES // per_column >= 256


def _overflowing_model(bk):
    """Finite float32 weights whose forward pass overflows: Z[2] = +-1e30 * 1e30 = +-inf, and A[3] is NaN."""
    W1 = np.full((2, 2), 1e30)
    W2 = np.array([[1e30, 1e30], [1e30, 1e30]])
    W3 = np.array([[1.0, -1.0], [-1.0, 1.0]])
    params = {"W1": W1, "b1": np.zeros((2, 1)), "W2": W2, "b2": np.zeros((2, 1)), "W3": W3, "b3": np.zeros((2, 1))}
    params = {k: bk.asarray(a, dtype="float32") for k, a in params.items()}
    return MLP([2, 2, 2, 2], output_activation="softmax", dtype="float32", backend=bk, parameters=params)


def test_an_overflowing_forward_pass_raises_naming_the_layer(bk):
    from bpnet.train.inference import NonFiniteOutputError

    model = _overflowing_model(bk)
    X = np.array([[1.0, 0.0, 1e-30], [1.0, 0.0, 0.0]])
    for call in (lambda: model.predict_proba(X), lambda: model.predict(X),
                 lambda: model.evaluate(X, np.array([0, 1, 0]))):
        with pytest.raises(NonFiniteOutputError, match=r"^X: the forward pass overflowed in Z\[2\] = W\[2\] A\[1\] "
                                                        r"\+ b\[2\] \(layer 2 of 3: 0 NaN, 2 inf\), examples 0 to 2"):
            call()
    assert issubclass(NonFiniteOutputError, FloatingPointError)
    fine = X[:, 1:2]  # the second example alone stays finite
    np.testing.assert_allclose(to_np(model.predict_proba(fine)), [[0.5], [0.5]])


def test_the_cli_refuses_nan_weights_and_an_overflowing_model(tmp_path, capsys):
    """Today `bpnet evaluate` printed `cost: nan` and exited 0: now one error line and exit status 2."""
    from bpnet.cli import main
    from bpnet.io import Preprocessor, save_checkpoint

    (tmp_path / "d.csv").write_text("a,b,label\n" + "".join(f"{i % 3},{i % 5},{'xy'[i % 2]}\n" for i in range(20)))
    model = _overflowing_model(backends.get("numpy"))
    model.preprocessor = Preprocessor(["a", "b"], [0.0, 0.0], [1.0, 1.0], "multiclass", ["x", "y"], "label")
    model.save(tmp_path / "overflow.st")
    args = ["--data", str(tmp_path / "d.csv"), "--split", "all"]
    assert main(["evaluate", "--model", str(tmp_path / "overflow.st"), *args]) == 2
    err = capsys.readouterr().err
    assert "error: X: the forward pass overflowed in Z[2]" in err and "Traceback" not in err
    meta = model._meta()
    params = {k: to_np(a).copy() for k, a in model.parameters.items()}
    save_checkpoint(tmp_path / "nan.st", params, metadata=meta)
    import safetensors.numpy
    from safetensors import safe_open

    with safe_open(str(tmp_path / "nan.st"), framework="numpy") as f:
        import json

        header = json.loads(f.metadata()["bpnet"])
    tensors = safetensors.numpy.load_file(str(tmp_path / "nan.st"))
    tensors["W3"][0, 0] = np.nan
    _rewrite(tmp_path / "nan.st", header, tensors)
    assert main(["evaluate", "--model", str(tmp_path / "nan.st"), *args]) == 2
    assert "tensor 'W3': expected finite values, got 1 NaN and 0 inf" in capsys.readouterr().err
