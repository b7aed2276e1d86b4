"""The one epoch loop (bpnet.train.loop): determinism and cross-backend parity, the dropout masks of an epoch,
divergence stopped with a clear error, no host sync per batch on a GPU."""

from __future__ import annotations

import os
import time
import warnings

import numpy as np
import pytest
from conftest import assert_on, to_np

import bpnet
import bpnet.train.loop
from bpnet import backends, dropout_masks
from bpnet.checkpoint import load_checkpoint
from bpnet.model import MLP

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


@pytest.mark.parametrize("group_bytes", [1, 3 * (8 + 5) * 4 * 4, 2**30])  # 1 batch, 3 batches, all at once
def test_epoch_masks_are_the_per_batch_draws_moved_in_groups(bk, monkeypatch, group_bytes):
    """The training loop's masks equal dropout_masks called batch after batch on one generator."""
    monkeypatch.setattr(bpnet.train.loop, "MASK_GROUP_BYTES", group_bytes)
    dims, m, batch, kp = [3, 8, 5, 1], 30, 4, 0.7  # 7 full batches and one of 2
    got = list(bpnet.train.loop.epoch_masks(dims[1:-1], m, batch, kp, np.random.default_rng(4), bk.dtype("float32"), bk))
    rng = np.random.default_rng(4)
    want = [dropout_masks(dims, min(batch, m - b), kp, rng=rng, dtype="float32", backend="numpy")
            for b in range(0, m, batch)]
    assert len(got) == len(want) == 8
    for g, w in zip(got, want):
        assert len(g) == 2
        for G, W in zip(g, w):
            assert_on(bk, G, "float32", W.shape)
            np.testing.assert_array_equal(to_np(G), W)


def test_dropout_training_does_not_depend_on_the_mask_group_size(bk, cancer, monkeypatch):
    runs = []
    for group_bytes in (1, 2**30):
        monkeypatch.setattr(bpnet.train.loop, "MASK_GROUP_BYTES", group_bytes)
        model = MLP([cancer.n_x, 16, 8, 1], backend=bk, dtype="float64", seed=2)
        model.fit(cancer.X_train, cancer.Y_train, epochs=2, batch_size=64, dropout=0.2, seed=5)
        runs.append(model)
    for k in runs[0].parameters:
        np.testing.assert_array_equal(to_np(runs[0].parameters[k]), to_np(runs[1].parameters[k]), err_msg=k)


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
