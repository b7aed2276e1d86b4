"""The one epoch loop (bpnet.train.loop): determinism and cross-backend parity, the counter-based shuffle and
dropout masks of an epoch, the convergence check (Plateau), divergence stopped with a clear error, no host sync
per batch on a GPU."""

from __future__ import annotations

import dataclasses
import os
import time
import warnings

import numpy as np
import pytest
from conftest import assert_on, to_np

import bpnet
import bpnet.train.loop
from bpnet import backends
from bpnet.checkpoint import load_checkpoint
from bpnet.model import MLP
from bpnet.nn import random

# --------------------------------------------------------------------------- #
# determinism: N = 20 mini-batch Adam steps with dropout


# Same seed, same backend: bit-identical parameters and optimiser state (numpy, array-api-strict on its
# default device and on device1); on cupy, where cuBLAS may pick another reduction order between runs, PARITY_TOL
# instead.  numpy vs every other backend from the same seed: |x - x_numpy| <= atol + rtol * |x_numpy| for every
# parameter (array-api-strict computes with numpy underneath and agrees bit for bit).  The tolerance, for backends
# with their own BLAS (cupy), was sized by perturbing the inputs of a numpy run by 1 ulp (what another summation
# order does): after the 20 steps the parameters moved by at most 1.2e-7 (float32) and 4.4e-16 (float64); the
# table keeps a margin of ~100x (float32) and ~2000x (float64) over that.


#: documented agreement of any backend with numpy after N_STEPS steps from the same seed
PARITY_TOL = {
    "float64": {"rtol": 1e-9, "atol": 1e-12},
    "float32": {"rtol": 1e-4, "atol": 1e-5},
}
N_STEPS = 20
M_TRAIN, BATCH = 160, 32  # 5 mini-batches an epoch, 4 epochs = 20 steps
FIT = dict(epochs=N_STEPS * BATCH // M_TRAIN, batch_size=BATCH, optimizer="adam", learning_rate=0.01,
           dropout=0.3, seed=9)


@pytest.fixture(scope="module")
def data(cancer):
    return cancer.n_x, cancer.X_train[:, :M_TRAIN], cancer.Y_train[:, :M_TRAIN]


def _train(backend, dtype, data):
    n_x, X, Y = data
    model = MLP([n_x, 16, 8, 1], dtype=dtype, seed=5, backend=backend)
    model.fit(X, Y, **FIT)
    assert int(model.optimizer_state["t"]) == N_STEPS
    return model


def _flat(model):
    """Parameters and optimiser arrays as host arrays, by name."""
    out = {f"param/{k}": to_np(v) for k, v in model.parameters.items()}
    for group, arrays in model.optimizer_state.items():
        if isinstance(arrays, dict):
            out.update({f"opt/{group}/{k}": to_np(v) for k, v in arrays.items()})
    return out


def test_same_seed_same_backend_is_bit_identical(bk, dtype, data):
    a, b = _flat(_train(bk, dtype, data)), _flat(_train(bk, dtype, data))
    assert a.keys() == b.keys() and any(k.startswith("opt/") for k in a)
    for k in a:
        assert a[k].dtype == np.dtype(dtype), k
        if bk.name == "cupy":
            np.testing.assert_allclose(a[k], b[k], **PARITY_TOL[dtype], err_msg=k)
        else:
            np.testing.assert_array_equal(a[k], b[k], err_msg=k, strict=True)


def test_other_backends_agree_with_numpy_within_the_documented_tolerance(bk, dtype, data):
    ref = _train("numpy", dtype, data)
    got = _train(bk, dtype, data)
    assert_on(bk, got.parameters["W1"], dtype)
    r, g = _flat(ref), _flat(got)
    for k in r:
        if k.startswith("param/"):
            np.testing.assert_allclose(g[k], r[k], **PARITY_TOL[dtype], err_msg=k)
    np.testing.assert_allclose(got.history.cost, ref.history.cost, rtol=PARITY_TOL[dtype]["rtol"] * 10)
    if bk.name == "array_api_strict":  # numpy underneath: not just close, identical
        for k in r:
            np.testing.assert_array_equal(g[k], r[k], err_msg=k)


def test_different_seeds_differ(data):
    """The control: the bit-identity above is not the trivial identity of an untrained model."""
    n_x, X, Y = data
    a = MLP([n_x, 16, 8, 1], dtype="float64", seed=5, backend="numpy")
    b = MLP([n_x, 16, 8, 1], dtype="float64", seed=5, backend="numpy")
    a.fit(X, Y, **FIT)
    b.fit(X, Y, **{**FIT, "seed": 10})  # other shuffles and dropout masks
    assert not np.array_equal(a.parameters["W1"], b.parameters["W1"])


# --------------------------------------------------------------------------- #
# the epoch's dropout masks


@pytest.mark.parametrize("copy_bytes", [1 << 20, 0], ids=["one-take-an-epoch", "a-take-a-batch"])
def test_local_batches_draw_the_counter_based_shuffle_and_masks(bk, monkeypatch, copy_bytes):
    """LocalBatches' epoch e: the columns permuted by ``random.shuffle(xp, m, (seed, e), dev)``, batch b's
    dropout masks ``random.dropout(xp, sizes, m_b, keep_prob, (seed, e, b), dev, dtype)`` (what train_step gets),
    whether X is shuffled by one take an epoch or one a batch (SHUFFLED_COPY_BYTES)."""
    monkeypatch.setattr(bpnet.train.loop, "SHUFFLED_COPY_BYTES", copy_bytes)
    dims, m, batch, kp, seed, e = [3, 8, 5, 1], 30, 4, 0.7, 4, 2  # 7 full batches and one of 2
    X = bk.asarray(np.arange(3 * m, dtype=np.float64).reshape(3, m), dtype="float64")
    Y = bk.asarray((np.arange(m) % 2).reshape(1, m), dtype="float64")
    model = MLP(dims, dtype="float64", seed=1, backend=bk)
    seen = []

    def record(xp, Xb, Yb, ts, net, lr, masks=None, **kw):
        seen.append((to_np(Xb), to_np(Yb), None if masks is None else [to_np(M) for M in masks], lr))
        return None, None

    monkeypatch.setattr(bpnet.train.loop, "train_step", record)
    cfg = bpnet.train.FitConfig(batch_size=batch, dropout=1 - kp, seed=seed, learning_rate=0.5)
    ts = bpnet.train.TrainState(dict(model.parameters), cfg.optimizer, cfg.optimizer.init(model.parameters))
    bpnet.train.LocalBatches(X, Y, bk).run_epoch(ts, model.net, cfg, e, 0.5, metrics=False)
    perm = to_np(random.shuffle(bk.xp, m, (seed, e), bk.device))
    assert sorted(perm.tolist()) == list(range(m)) and perm.tolist() != list(range(m))
    assert len(seen) == 8
    for b, (Xb, Yb, masks, lr) in enumerate(seen):
        cols = perm[b * batch:(b + 1) * batch]
        np.testing.assert_array_equal(Xb, to_np(X)[:, cols])
        np.testing.assert_array_equal(Yb, to_np(Y)[:, cols])
        want = random.dropout(bk.xp, dims[1:-1], len(cols), kp, (seed, e, b), bk.device, bk.dtype("float64"))
        assert lr == 0.5 and len(masks) == len(want) == 2
        for G, W in zip(masks, want):
            assert G.shape == (W.shape[0], len(cols))
            np.testing.assert_array_equal(G, to_np(W))
    # the draws are the same on every backend: numpy's are the reference
    np.testing.assert_array_equal(perm, to_np(random.shuffle(backends.get("numpy").xp, m, (seed, e), "cpu")))


def test_local_batches_without_shuffle_or_dropout_take_the_columns_in_order(bk, monkeypatch):
    X = bk.asarray(np.arange(20, dtype=np.float64).reshape(2, 10), dtype="float64")
    Y = bk.asarray(np.ones((1, 10)), dtype="float64")
    model = MLP([2, 3, 1], dtype="float64", seed=1, backend=bk)
    seen = []
    monkeypatch.setattr(bpnet.train.loop, "train_step",
                        lambda xp, Xb, Yb, ts, net, lr, masks=None, **kw: seen.append((to_np(Xb), masks)) or (None, None))
    cfg = bpnet.train.FitConfig(batch_size=4, shuffle=False, seed=0)
    ts = bpnet.train.TrainState(dict(model.parameters), cfg.optimizer, cfg.optimizer.init(model.parameters))
    bpnet.train.LocalBatches(X, Y, bk).run_epoch(ts, model.net, cfg, 0, 0.1, metrics=False)
    assert [s[0].shape[1] for s in seen] == [4, 4, 2] and all(s[1] is None for s in seen)
    np.testing.assert_array_equal(np.concatenate([s[0] for s in seen], axis=1), to_np(X))


# --------------------------------------------------------------------------- #
# the convergence check and the adaptive schedule (Plateau)


def test_plateau_counts_epochs_without_a_tol_improvement_like_scikit_learn():
    cfg = bpnet.train.FitConfig(tol=0.1, n_iter_no_change=2, schedule="constant")
    p = bpnet.train.loop.Plateau("cost")
    events = [p.update(c, cfg) for c in (1.0, 0.95, 0.93, 0.5, 0.45, 0.44, 0.43)]
    # 0.95, 0.93 improve the best but not by tol (count 1, 2); 0.5 resets; 0.45, 0.44, 0.43: 1, 2, 3 > 2: stop
    assert [e for _, e in events] == [None, None, None, None, None, None, "stop"]
    assert [i for i, _ in events] == [True] * 7 and p.best == 0.43
    adaptive = dataclasses.replace(cfg, schedule="adaptive", learning_rate=1e-5)
    q = bpnet.train.loop.Plateau("cost")
    # scikit-learn's adaptive rule: divide by 5 while the rate is above 1e-6 (1e-5 -> 2e-6 -> 4e-7), then stop
    assert [q.update(1.0, adaptive)[1] for _ in range(10)] == [None, None, None, "decay", None, None, "decay",
                                                                None, None, "stop"]
    assert q.factor == pytest.approx(0.04)
    score = bpnet.train.loop.Plateau("score")  # a score: higher is better
    assert [score.update(v, cfg)[1] for v in (0.5, 0.55, 0.9, 0.95, 0.99, 0.91)] == [None, None, None, None, None,
                                                                                   "stop"]
    never = dataclasses.replace(cfg, n_iter_no_change=None)
    assert all(bpnet.train.loop.Plateau().update(1.0, never)[1] is None for _ in range(5))


def test_fit_stops_on_the_plateau_and_keeps_it_for_the_next_fit(cancer):
    model = MLP([cancer.n_x, 4, 1], dtype="float64", seed=0, backend="numpy")
    model.fit(cancer.X_train, cancer.Y_train, epochs=50, tol=1e3, n_iter_no_change=1)
    assert len(model.history) == 3 and model.history.stopped_early
    assert model.plateau.wait == 2 and model.plateau.best == min(model.history.cost)
    seen = []
    model.fit(cancer.X_train, cancer.Y_train, epochs=50, tol=1e3, n_iter_no_change=1,
              callbacks=[lambda m, e, logs: seen.append((logs["monitor"], logs["plateau"]))])
    assert seen == [(model.history.cost[-1], "stop")]  # the kept count: the first epoch already ends it
    with pytest.raises(ValueError, match="monitor: 'val_cost' needs validation_data"):
        model.fit(cancer.X_train, cancer.Y_train, epochs=1, monitor="val_cost", n_iter_no_change=1)


def test_a_score_monitor_restores_the_best_epoch(cancer):
    scores = iter([0.1, 0.9, 0.2, 0.3, 0.4])
    model = MLP([cancer.n_x, 4, 1], dtype="float64", seed=0, backend="numpy")
    kept = []
    model.fit(cancer.X_train, cancer.Y_train, epochs=5, n_iter_no_change=10, monitor=lambda m: next(scores),
              callbacks=[lambda m, e, logs: kept.append({k: to_np(v).copy() for k, v in m.parameters.items()})])
    assert model.history.best_epoch == 2 and model.epoch == 5
    for k, v in kept[1].items():
        np.testing.assert_array_equal(to_np(model.parameters[k]), v)


# --------------------------------------------------------------------------- #
# divergence: a clear error, never a non-finite checkpoint


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning", "ignore:invalid value:RuntimeWarning")
def test_divergence_stops_with_the_epoch_and_keeps_the_last_checkpoint(cancer, tmp_path):
    model = MLP([cancer.n_x, 64, 1], loss="mse", backend="numpy", dtype="float64")
    path = tmp_path / "good.npz"
    model.fit(cancer.X_train, cancer.Y_train, epochs=1, learning_rate=1e-3, optimizer="gd", checkpoint=path)
    good = path.read_bytes()
    with pytest.raises(bpnet.TrainingDivergedError, match=r"diverged in epoch \d+.*smaller learning_rate"):
        model.fit(cancer.X_train * 1e3, cancer.Y_train, epochs=20, learning_rate=1e3, optimizer="gd",
                  checkpoint=path, checkpoint_every=5)
    assert path.read_bytes() == good


def _nonfinite_update_run(path, cancer, **kw):
    """gd at lr = 1e308 with mse: epoch 1's cost is finite, its update is not."""
    model = MLP([cancer.n_x, 4, 1], loss="mse", dtype="float64", backend="numpy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # numpy's overflow warnings on the way to inf
        with np.errstate(all="ignore"):
            model.fit(cancer.X_train * 3, cancer.Y_train * 10, epochs=3, batch_size=1000, optimizer="gd",
                      learning_rate=1e308, checkpoint=path, **kw)


def test_mlp_divergence_never_writes_a_non_finite_checkpoint(cancer, tmp_path):
    path = tmp_path / "ck.npz"
    MLP([cancer.n_x, 4, 1], loss="mse", dtype="float64", backend="numpy").save(path)
    good = path.read_bytes()
    with pytest.raises((bpnet.TrainingDivergedError, ValueError), match=r"(diverged|finite values)"):
        _nonfinite_update_run(path, cancer)
    assert path.read_bytes() == good  # the refused save left the good file alone
    ck = load_checkpoint(path, backend="numpy")
    assert all(np.all(np.isfinite(v)) for v in ck.parameters.values())
    assert os.listdir(tmp_path) == ["ck.npz"]


def test_mlp_divergence_in_the_last_update_is_a_training_diverged_error(cancer, tmp_path):
    with pytest.raises(bpnet.TrainingDivergedError, match=r"diverged in epoch 1\b.*smaller learning_rate"):
        _nonfinite_update_run(tmp_path / "ck.npz", cancer)


def test_a_divergence_from_the_l2_term_names_l2(cancer):
    """Weight decay scales W by (1 - lr l2 / m) a step: an l2 too large diverges as a learning rate does, and the
    error says so (it used to report the cost as inf and name only the learning rate)."""
    model = MLP([cancer.n_x, 4, 1], dtype="float64", backend="numpy")
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(bpnet.TrainingDivergedError, match=r"^training diverged in epoch 1: the L2 penalty is inf; "
                           r"try a smaller learning_rate \(now 0\.01\) or l2 \(now 1e\+300\)$"):
            model.fit(cancer.X_train, cancer.Y_train, epochs=2, batch_size=1000, optimizer="gd", learning_rate=0.01,
                      l2=1e300)
    assert model.epoch == 0 and all(np.all(np.isfinite(a)) for a in model.parameters.values())


def test_a_model_that_diverged_keeps_its_last_finite_epoch(bk, monkeypatch):
    """Each epoch publishes a Snapshot whose dicts are built when read: after a divergence in epoch 3 the model
    holds epoch 2's parameters and moments, exactly those of a fit of 2 epochs, and reports epoch 2."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(5, 60)), rng.integers(0, 3, size=60)
    kw = dict(batch_size=16, optimizer="adam", learning_rate=0.01, seed=2)
    ref = MLP([5, 6, 3], dtype="float64", seed=1, backend=bk)
    ref.fit(X, y, epochs=2, **kw)
    checks = []

    def finite_until_the_third(xp, arrays):
        checks.append(1)
        return len(checks) < 3

    monkeypatch.setattr(bpnet.train.loop, "all_finite", finite_until_the_third)
    model = MLP([5, 6, 3], dtype="float64", seed=1, backend=bk)
    with pytest.raises(bpnet.TrainingDivergedError, match=r"diverged in epoch 3\b"):
        model.fit(X, y, epochs=4, **kw)
    assert model.epoch == 2 and len(model.history) == 2
    for k, a in ref.parameters.items():
        np.testing.assert_array_equal(to_np(model.parameters[k]), to_np(a), err_msg=k)
    assert model.optimizer_state["t"] == ref.optimizer_state["t"]
    for s in ("v", "s"):
        for k, a in ref.optimizer_state[s].items():
            np.testing.assert_array_equal(to_np(model.optimizer_state[s][k]), to_np(a), err_msg=f"{s} {k}")


# --------------------------------------------------------------------------- #
# on a GPU: no host sync per mini-batch


@pytest.mark.gpu
@pytest.mark.skipif("cupy" in backends.unavailable_reasons(),
                    reason=f"needs a usable cupy GPU: {backends.unavailable_reasons().get('cupy')}")
@pytest.mark.parametrize("optimizer", ["gd", "adam"])
def test_the_training_loop_never_waits_for_the_gpu(monkeypatch, optimizer):
    """An epoch's mini-batches are queued without a host sync: ``LocalBatches.run_epoch`` returns while the GPU
    is still busy with them (cost and accuracy reach the host once, at the end of the epoch).

    Each step is ~0.55 TFLOP of matrix products (~13 ms on an H100) against ~1-2 ms of Python and
    kernel launches, so one sync per batch would make dispatch nearly the whole time (it did:
    45 of 52 ms, when the log-losses used array-api-compat's ``clip``).  Not run with dropout:
    there the host's random draws for the masks (~1 s an epoch here) outlast the GPU's work.
    """
    bk = backends.get("cupy")
    rng = np.random.default_rng(0)
    X = rng.standard_normal((2048, 4 * 4096)).astype(np.float32)
    y = rng.integers(0, 10, size=X.shape[1])
    model = MLP([2048, 4096, 4096, 10], backend=bk, dtype="float32", seed=0)
    kw = dict(epochs=1, batch_size=4096, optimizer=optimizer)
    model.fit(X, y, **kw)  # compiles the kernels
    seen = []
    run_epoch = bpnet.train.loop.LocalBatches.run_epoch

    def timed(self, *args, **kwargs):
        bk.synchronize()
        t0 = time.perf_counter()
        out = run_epoch(self, *args, **kwargs)
        t1 = time.perf_counter()
        bk.synchronize()
        seen.append((t1 - t0, time.perf_counter() - t0))
        return out

    monkeypatch.setattr(bpnet.train.loop.LocalBatches, "run_epoch", timed)
    model.fit(X, y, **kw)
    ((dispatch, total),) = seen
    assert dispatch < 0.5 * total, f"dispatch {dispatch * 1e3:.1f} ms of {total * 1e3:.1f} ms: a host sync per batch"


# --------------------------------------------------------------------------- #
# a fit beyond the machine's memory


def test_a_fit_beyond_the_machine_s_memory_is_refused_before_its_first_step(monkeypatch):
    """A step's arrays are allocated one by one and each may fit: the fit could only end killed by the system.
    What must exist at once (a batch's activations, the parameters and moments, the data) is checked first."""
    monkeypatch.setattr(bpnet.train.loop, "host_memory", lambda: 64 << 20)  # a 64 MiB machine
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(8, 4096)), rng.integers(0, 2, 4096)
    model = MLP([8, 4096, 1], dtype="float64", backend="numpy", seed=0)  # A1 of a full batch: 128 MiB
    before = {k: to_np(a).copy() for k, a in model.parameters.items()}
    pattern = (r"^batch_size: a step of the 8-4096-1 network on 4,096 examples holds 128\.0 MiB of activations, "
               r"129\.3 MiB with the parameters, optimiser state and data, more than this machine's 64\.0 MiB of "
               r"memory and swap: use a smaller batch_size, well under 2,008, which would fill it \(bpnet train: "
               r"--batch-size\)$")
    with pytest.raises(MemoryError, match=pattern):
        model.fit(X, y, epochs=2, batch_size=4096, optimizer="adam")
    assert model.epoch == 0 and all(np.array_equal(to_np(a), before[k]) for k, a in model.parameters.items())
    model.fit(X, y, epochs=1, batch_size=1024, optimizer="adam")  # 32 MiB of activations: trains
    assert model.epoch == 1
    from bpnet.sklearn import MLPClassifier

    with pytest.raises(MemoryError, match=r"^batch_size: a step of the 8-4096-1 network on 4,096 examples"):
        MLPClassifier(hidden_layer_sizes=(4096,), batch_size=4096, max_iter=2).fit(X.T, y)
    # the course's model trains on full batches: it names X
    with pytest.raises(MemoryError, match=r"^X: a step of the 8-4096-1 network on 4,096 examples .* train on fewer "
                                          r"examples \(X's columns\), well under 2,\d{3}, or on fewer or smaller layers$"):
        bpnet.L_layer_model(X, y[None, :].astype(float), [8, 4096, 1], num_iterations=2, print_cost=False)
    monkeypatch.setattr(bpnet.train.loop, "host_memory", lambda: None)  # a system that does not say: no check
    model.fit(X[:, :512], y[:512], epochs=1, batch_size=512)
    assert model.epoch == 2


def test_a_fit_beyond_memory_is_one_line_from_the_command_line(monkeypatch, tmp_path, capsys):
    from bpnet.cli import main

    monkeypatch.setattr(bpnet.train.loop, "host_memory", lambda: 2 << 20)  # a 2 MiB machine
    code = main(["train", "--data", "digits", "--layers", "512", "--batch-size", "0", "--epochs", "1",
                 "--out", str(tmp_path / "run"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith("bpnet train: error: batch_size: a step of the 64-512-10 network on "), err
    assert err.rstrip().endswith("(bpnet train: --batch-size)"), err
    assert not (tmp_path / "run" / "model.npz").exists()


def test_the_memory_check_counts_host_arrays_only(monkeypatch):
    """A GPU's allocator raises its own error, and a Dask cluster's steps run on its workers."""
    monkeypatch.setattr(bpnet.train.loop, "host_memory", lambda: 1 << 10)
    ts_of = {}
    for name in ("numpy", "array_api_strict", "torch"):
        if name not in backends.available():
            continue
        bk = backends.get(name)
        p = {k: bk.asarray(a) for k, a in bpnet.initialize_parameters_deep([8, 64, 1], seed=0, backend="numpy").items()}
        ts_of[name] = (bk, bpnet.train.step.TrainState(p, bpnet.get_optimizer("gd"), {"t": 0}))
    cfg = bpnet.train.FitConfig.from_options(batch_size=64)
    for name, (bk, ts) in ts_of.items():
        source = bpnet.train.loop.LocalBatches(bk.asarray(np.zeros((8, 64))), bk.asarray(np.zeros((1, 64))), bk)
        if name == "torch":
            bpnet.train.loop.steps_fit_memory(source, ts, cfg)  # not host arrays that numpy allocates: not checked
        else:
            with pytest.raises(MemoryError, match="more than this machine's 1.0 KiB"):
                bpnet.train.loop.steps_fit_memory(source, ts, cfg)
        source.steps_here = False  # a Dask cluster's
        bpnet.train.loop.steps_fit_memory(source, ts, cfg)
