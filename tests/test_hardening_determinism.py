"""Determinism and cross-backend parity of training, after N = 20 mini-batch Adam steps with dropout.

* Same seed, same backend: bit-identical parameters and optimiser state (numpy,
  array-api-strict on its default device and on ``device1``).  On cupy, where
  cuBLAS may pick another reduction order between runs, the check is
  ``PARITY_TOL`` instead.
* numpy vs every other backend from the same seed: agreement within
  ``PARITY_TOL``, ``|x - x_numpy| <= atol + rtol * |x_numpy|`` for every parameter.
  array-api-strict computes with numpy underneath and agrees bit for bit; the
  tolerance is for backends with their own BLAS (cupy).  It was sized by
  perturbing the inputs of a numpy run by 1 ulp (what a different summation order
  does): after the 20 steps the parameters moved by at most 1.2e-7 (float32) and
  4.4e-16 (float64) -- the table keeps a margin of ~100x (float32) and ~2000x
  (float64) over that.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import assert_on, to_np

from bpnet.datasets import load_dataset
from bpnet.model import MLP

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
def data():
    ds = load_dataset("breast_cancer")
    return ds.n_x, ds.X_train[:, :M_TRAIN], ds.Y_train[:, :M_TRAIN]


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
