"""One table of bad inputs across bpnet's three surfaces: the Python API, the estimator, the CLI.

``BAD_INPUTS`` holds one row per distinct bad input; its id says the surface
(``api-`` functional API and L_layer_model, ``mlp-`` the MLP class, ``ckpt-``
checkpoints, ``skl-`` the scikit-learn estimators, ``cli-`` the command line)
and what is wrong.  The categories of the hardening issue are all present:
wrong shapes and transposed data, m mismatch, empty arrays, wrong dtypes (int,
complex, object, ragged), NaN/inf in X or Y, labels outside {0, 1} for a binary
loss, class-count mismatch for softmax, arrays of two backends or two devices,
unknown activation/loss/optimiser/backend names, learning rate, batch size,
epochs or layer sizes <= 0, dropout outside [0, 1), missing or corrupt
checkpoints, a checkpoint of another architecture, CSV files with a missing
label column or text in a feature.

Every row asserts, in one test:

* Python surfaces: the exception is a ``ValueError`` or ``TypeError`` (a
  missing file is a ``FileNotFoundError``, the standard type for it; those rows
  say so) and its message matches a regex that names the argument, what was
  expected and what came;
* CLI rows (``bpnet.cli.main`` in process; a few also as a real subprocess
  below): exit status 2, exactly one line with ``error`` on stderr matching the
  regex, no traceback;
* none reaches the math: every forward/backward/update kernel and every
  activation and loss of the registries is replaced by a function that fails
  the test if called, so validation must come first;
* nothing on disk changes: the test runs in a fresh directory holding the
  fixture files (CSVs, good and corrupt checkpoints, an existing predictions
  file); after the call every file is byte-identical and no file or directory
  (temporary or half-written) was added.
"""

from __future__ import annotations

import copy
import hashlib
import math
import os
import pathlib
import re
import shutil
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest

import bpnet
from bpnet import backends
from bpnet.checkpoint import check_architecture, load_checkpoint, read_header, save_checkpoint
from bpnet.cli import main
from bpnet.model import MLP
from bpnet.sklearn import MLPClassifier, MLPRegressor

ROOT = pathlib.Path(__file__).resolve().parents[1]
DIMS = [3, 4, 1]
M = 5

# --------------------------------------------------------------------------- #
# fixture files, made once and copied into each case's own directory

GOOD_CSV = "a,b,label\n" + "".join(f"{i % 7},{(3 * i) % 5},{i % 2}\n" for i in range(20))
XY_CSV = "a,b,label\n" + "".join(f"{i % 7},{(3 * i) % 5},{'xy'[i % 2]}\n" for i in range(20))
FILES = {
    "good.csv": GOOD_CSV,
    "xy.csv": XY_CSV,  # the features of good.csv, but classes 'x'/'y' instead of 0/1
    "text.csv": "a,b,label\n1,2,0\n3,x,1\n5,6,0\n7,8,1\n",
    "nan.csv": "a,b,label\n1,nan,0\n3,4,1\n5,6,0\n",
    "empty.csv": "",
    "other.csv": "x,y\n1,2\n3,4\n",  # not the features a model of good.csv was trained on
    "features.csv": "a,b\n1,2\n3,4\n",
    "preds.csv": "prediction,p_0,p_1\nkeep,me,intact\n",  # an existing output that must survive
    "afile": "not a directory\n",
    "corrupt.npz": "this is not a checkpoint\n",
}


@pytest.fixture(scope="module")
def fixture_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad-inputs-fixtures")
    for name, text in FILES.items():
        (d / name).write_text(text)
    bk = backends.get("numpy")
    params = bpnet.initialize_parameters_deep(DIMS, init="he", seed=1, backend=bk)
    save_checkpoint(d / "good.npz", params, metadata={"layer_dims": DIMS})  # a checkpoint, but not an MLP's
    data = (d / "good.npz").read_bytes()
    (d / "truncated.npz").write_bytes(data[: len(data) // 2])
    cwd = os.getcwd()
    os.chdir(d)
    try:  # a run of `bpnet train` on good.csv (2-3-1), as --resume and evaluate/predict need
        assert main(["train", "--data", "good.csv", "--layers", "3", "--epochs", "2", "--out", "run",
                     "--no-plots", "--quiet"]) == 0
    finally:
        os.chdir(cwd)
    (d / "corrupt_run").mkdir()
    (d / "corrupt_run" / "model.npz").write_text("half a checkpoint\n")
    return d


@pytest.fixture(scope="module")
def fitted():
    """Estimators fitted once (fitting is math); each case gets a deep copy."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 3))
    y = (X[:, 0] > 0).astype(int)
    clf = MLPClassifier((4,), max_iter=2, backend="numpy", random_state=0).fit(X, y)
    inc = MLPClassifier((4,), max_iter=2, backend="numpy", random_state=0).partial_fit(X, y, classes=[0, 1])
    reg = MLPRegressor((4,), max_iter=2, backend="numpy", random_state=0).fit(X, X[:, 0])
    return SimpleNamespace(X=X, y=y, clf=clf, inc=inc, reg=reg)


def _ctx(fitted):
    """Arrays for the API rows: a valid 3-4-1 network on numpy, its pass, and variations."""
    bk = backends.get("numpy")
    rng = np.random.default_rng(0)
    params = bpnet.initialize_parameters_deep(DIMS, init="xavier", seed=1, backend=bk)
    X = rng.standard_normal((DIMS[0], M))
    Y = np.array([[0.0, 1.0, 1.0, 0.0, 1.0]])
    AL, caches = bpnet.L_model_forward(X, params)
    grads = bpnet.L_model_backward(AL, Y, caches)
    X20 = rng.standard_normal((3, 20))
    Y20 = (X20[:1] > 0).astype(float)
    AL3 = np.full((3, M), 1 / 3)
    return SimpleNamespace(bk=bk, params=params, X=X, Y=Y, AL=AL, caches=caches, grads=grads, X20=X20,
                           Y20=Y20, AL3=AL3, skl=copy.deepcopy(fitted))


def _with_entry(a, idx, value):
    a = np.array(a, dtype=np.float64)
    a[idx] = value
    return a


def _strict_params():
    return bpnet.initialize_parameters_deep(DIMS, backend="array_api_strict")


def _nan_params(c):
    p = dict(c.params)
    p["W1"] = _with_entry(p["W1"], (0, 0), math.nan)
    return p


def _save_nan_over_good(c):
    # the existing good.npz must survive a refused save of diverged (NaN) parameters
    return save_checkpoint("good.npz", _nan_params(c))


# --------------------------------------------------------------------------- #
# the table: (surface, call or argv, exception type or None for the CLI, regex)

BAD_INPUTS = [
    # ===== functional API: shapes, m, emptiness ================================================
    pytest.param("api", lambda c: bpnet.L_model_forward(c.X.T.copy(), c.params), ValueError,
                 r"^X: expected shape \(3, m\) to match W1 of shape \(4, 3\), got \(5, 3\); it looks transposed",
                 id="api-forward-X-transposed"),
    pytest.param("api", lambda c: bpnet.L_model_forward(c.X[:2], c.params), ValueError,
                 r"^X: expected shape \(3, m\) to match W1 of shape \(4, 3\), got \(2, 5\)$",
                 id="api-forward-X-wrong-rows"),
    pytest.param("api", lambda c: bpnet.L_model_forward(c.X[:, :0], c.params), ValueError,
                 r"^X: expected a non-empty array, got shape \(3, 0\)", id="api-forward-X-empty"),
    pytest.param("api", lambda c: bpnet.compute_cost(c.AL, c.Y[:, :4]), ValueError,
                 r"^Y: expected 5 examples \(columns\) like AL of shape \(1, 5\), got shape \(1, 4\)$",
                 id="api-cost-Y-m-mismatch"),
    pytest.param("api", lambda c: bpnet.L_model_backward(c.AL, c.Y[:, :3], c.caches), ValueError,
                 r"^Y: expected 5 examples \(columns\) like AL of shape \(1, 5\), got shape \(1, 3\)$",
                 id="api-backward-Y-m-mismatch"),
    pytest.param("api", lambda c: bpnet.compute_cost(c.AL3, np.eye(2)[:, [0, 1, 0, 1, 0]],
                                                     loss="categorical_crossentropy"), ValueError,
                 r"^Y: expected 3 rows \(output units\) like AL of shape \(3, 5\), got shape \(2, 5\).*one-hot",
                 id="api-cost-softmax-class-count-mismatch"),
    # ===== functional API: dtypes and values ===================================================
    pytest.param("api", lambda c: bpnet.L_model_forward(c.X + 0j, c.params), TypeError,
                 r"^X: expected real numbers \(a floating or integer dtype\), got complex128",
                 id="api-forward-X-complex"),
    pytest.param("api", lambda c: bpnet.L_model_forward(c.X.astype(object), c.params), TypeError,
                 r"^X: expected real numbers \(a floating or integer dtype\), got object", id="api-forward-X-object"),
    pytest.param("api", lambda c: bpnet.L_model_forward(_with_entry(c.X, (1, 2), math.nan), c.params), ValueError,
                 r"^X: expected finite values, got 1 NaN and 0 inf in an array of shape \(3, 5\)$",
                 id="api-forward-X-nan"),
    pytest.param("api", lambda c: bpnet.L_model_forward(_with_entry(c.X, (0, 0), -math.inf), c.params), ValueError,
                 r"^X: expected finite values, got 0 NaN and 1 inf", id="api-forward-X-inf"),
    pytest.param("api", lambda c: bpnet.compute_cost(c.AL, c.Y.astype(object)), TypeError,
                 r"^Y: expected real labels \(floating, integer or bool dtype\), got dtype object",
                 id="api-cost-Y-object"),
    pytest.param("api", lambda c: bpnet.compute_cost(c.AL, c.Y + 0j), TypeError,
                 r"^Y: expected real labels, got dtype complex128", id="api-cost-Y-complex"),
    # ===== functional API: two backends, two devices ===========================================
    # ===== functional API: names and hyper-parameters ===========================================
    pytest.param("api", lambda c: bpnet.L_model_forward(c.X, c.params, hidden_activation="gelu"), ValueError,
                 r"^hidden_activation: unknown activation 'gelu'; expected one of 'relu', ",
                 id="api-forward-unknown-hidden-activation"),
    pytest.param("api", lambda c: bpnet.L_model_backward(c.AL, c.Y, c.caches, loss="hinge"), ValueError,
                 r"^loss: unknown loss 'hinge'; expected one of 'binary_crossentropy'", id="api-backward-unknown-loss"),
    pytest.param("api", lambda c: bpnet.initialize_parameters_deep(DIMS, backend="tensorflow"), ValueError,
                 r"^backend: unknown backend 'tensorflow'; expected one of 'numpy'", id="api-init-unknown-backend"),
    pytest.param("api", lambda c: bpnet.initialize_parameters_deep([3, 0, 1]), ValueError,
                 r"^layer_dims: expected positive integers, got 0 at position 1 of \[3, 0, 1\]$",
                 id="api-init-layer-size-zero"),
    pytest.param("api", lambda c: bpnet.update_parameters(c.params, c.grads, 0), ValueError,
                 r"^learning_rate: expected a finite number > 0, got 0$", id="api-update-lr-zero"),
    pytest.param("api", lambda c: bpnet.update_parameters(c.params, c.grads, -0.5), ValueError,
                 r"^learning_rate: expected a finite number > 0, got -0\.5$", id="api-update-lr-negative"),
    # ===== L_layer_model ========================================================================
    pytest.param("api", lambda c: bpnet.L_layer_model(c.X20, 2 * c.Y20, DIMS, num_iterations=1, backend="numpy"),
                 ValueError, r"^Y: expected labels 0 or 1, got 1 other value such as 2$",
                 id="api-train-labels-outside-0-1"),
    pytest.param("api", lambda c: bpnet.L_layer_model(c.X20, c.Y20, DIMS, num_iterations=1,
                                                      loss="categorical_crossentropy", backend="numpy"),
                 ValueError, r"^layers_dims: a softmax output needs >= 2 units \(one per class; over one unit it is constantly 1\), "
                 r"got 1", id="api-train-categorical-one-output-unit"),
    pytest.param("api", lambda c: bpnet.L_layer_model(c.X20, np.ones((2, 20)), [3, 4, 2], num_iterations=1,
                                                      loss="categorical_crossentropy", backend="numpy"),
                 ValueError, r"^Y: expected one-hot columns .*got 2 ones in column 0$",
                 id="api-train-categorical-labels-not-one-hot"),
    pytest.param("api", lambda c: bpnet.L_layer_model(c.X20, np.eye(2)[:, np.arange(20) % 2], [3, 4, 3],
                                                      num_iterations=1, loss="categorical_crossentropy",
                                                      backend="numpy"),
                 ValueError, r"^Y: expected shape \(3, 20\) = \(layers_dims\[-1\], m of X\).*got \(2, 20\)",
                 id="api-train-softmax-class-count-mismatch"),
    pytest.param("api", lambda c: bpnet.L_layer_model(c.X20 * 1e300, c.Y20, DIMS, num_iterations=1,
                                                      dtype="float32", backend="numpy"),
                 ValueError, r"^X: expected values that fit in float32 \(\|x\| <= 3\.403e\+38\), got values up to "
                 r"\d\.\d+e\+300", id="api-train-X-overflows-float32"),
    pytest.param("api", lambda c: bpnet.L_layer_model(c.X20, c.Y20, DIMS, num_iterations=0, backend="numpy"),
                 ValueError, r"^num_iterations: expected an integer > 0, got 0$", id="api-train-iterations-zero"),
    pytest.param("api", lambda c: bpnet.L_layer_model(c.X20, c.Y20, DIMS, dtype="int64", backend="numpy"),
                 TypeError, r"^dtype: expected 'float32' or 'float64', got 'int64'$",
                 id="api-train-dtype-int"),
    # ===== MLP ==================================================================================
    pytest.param("api", lambda c: MLP([3, 4, 1], backend="numpy").fit(c.X20.T, c.Y20, epochs=1), ValueError,
                 r"^X: expected shape \(3, m\) for layer_dims\[0\] = 3, got \(20, 3\); it looks transposed",
                 id="mlp-fit-X-transposed"),
    pytest.param("api", lambda c: MLP([3, 4, 1], backend="numpy").fit(c.X20, c.Y20[:, :5], epochs=1), ValueError,
                 r"^Y: expected shape \(1, 20\) = \(layer_dims\[-1\], m of X\), got \(1, 5\)$",
                 id="mlp-fit-Y-m-mismatch"),
    pytest.param("api", lambda c: MLP([3, 4, 1], backend="numpy").fit(c.X20[:, :0], c.Y20[:, :0], epochs=1),
                 ValueError, r"^X: expected a non-empty array, got shape \(3, 0\) \(m \(examples, columns\) is 0\)$",
                 id="mlp-fit-X-empty"),
    pytest.param("api", lambda c: MLP([3, 4, 1], backend="numpy").fit(c.X20.astype(object), c.Y20, epochs=1),
                 TypeError, r"^X: expected real numbers \(a floating or integer dtype\), got object",
                 id="mlp-fit-X-object"),
    pytest.param("api", lambda c: MLP([3, 4, 1], backend="numpy").fit([[1.0, 2.0], [3.0]], c.Y20, epochs=1),
                 TypeError, r"^X: expected an array of real numbers, got a list that is not one",
                 id="mlp-fit-X-ragged-list"),
    pytest.param("api", lambda c: MLP([3, 4, 1], backend="numpy").fit(c.X20, c.Y20 + 0j, epochs=1), TypeError,
                 r"^Y: expected real numbers or booleans, got complex128", id="mlp-fit-Y-complex"),
    pytest.param("api", lambda c: MLP([3, 4, 1], backend="numpy").fit(c.X20, _with_entry(c.Y20, (0, 3), math.nan),
                                                                      epochs=1),
                 ValueError, r"^Y: expected finite values, got 1 NaN and 0 inf", id="mlp-fit-Y-nan"),
    pytest.param("api", lambda c: MLP([3, 4, 1], backend="numpy").fit(_with_entry(c.X20, (2, 7), math.inf), c.Y20,
                                                                      epochs=1),
                 ValueError, r"^X: expected finite values, got 0 NaN and 1 inf", id="mlp-fit-X-inf"),
    pytest.param("api", lambda c: MLP([3, 4, 1], backend="numpy").fit(c.X20, 2 * c.Y20, epochs=1), ValueError,
                 r"^Y: expected labels 0 or 1, got 1 other value such as 2$", id="mlp-fit-labels-outside-0-1"),
    pytest.param("api", lambda c: MLP([3, 4, 3], backend="numpy").fit(c.X20, np.arange(20) % 6, epochs=1),
                 ValueError, r"^Y: class indices must be in \[0, 2\] for 3 output units, got values from 0 to 5$",
                 id="mlp-fit-softmax-class-index-out-of-range"),
    pytest.param("api", lambda c: MLP([3, 4, 3], backend="numpy").fit(c.X20, np.eye(2)[:, np.arange(20) % 2],
                                                                      epochs=1),
                 ValueError, r"^Y: expected shape \(3, 20\) = \(layer_dims\[-1\], m of X\) \(one-hot",
                 id="mlp-fit-softmax-class-count-mismatch"),
    pytest.param("api", lambda c: MLP([3, 4, 1], backend="numpy", dtype="float32").fit(c.X20 * 1e300, c.Y20,
                                                                                       epochs=1),
                 ValueError, r"^X: expected values that fit in float32 .*got values up to \d\.\d+e\+300",
                 id="mlp-fit-X-overflows-float32"),
    pytest.param("api", lambda c: MLP([3, 4, 1], backend="numpy").predict(c.X20.T), ValueError,
                 r"^X: expected shape \(3, m\) for layer_dims\[0\] = 3, got \(20, 3\); it looks transposed",
                 id="mlp-predict-X-transposed"),
    pytest.param("api", lambda c: MLP([3, 4, 1], hidden_activation="gelu", backend="numpy"), ValueError,
                 r"^hidden_activation: unknown activation 'gelu'; expected one of", id="mlp-unknown-hidden-activation"),
    pytest.param("api", lambda c: MLP([3, 4, 1], output_activation="swish", backend="numpy"), ValueError,
                 r"^output_activation: unknown activation 'swish'; expected one of",
                 id="mlp-unknown-output-activation"),
    pytest.param("api", lambda c: MLP([3, 4, 1], loss="hinge", backend="numpy"), ValueError,
                 r"^loss: unknown loss 'hinge'; expected one of", id="mlp-unknown-loss"),
    pytest.param("api", lambda c: MLP([3, 4, 1], backend="torch"), ValueError,
                 r"^backend: unknown backend 'torch'; expected one of", id="mlp-unknown-backend"),
    pytest.param("api", lambda c: MLP([3, -4, 1], backend="numpy"), ValueError,
                 r"^layer_dims: expected positive integers, got -4 at position 1", id="mlp-layer-size-negative"),
    pytest.param("api", lambda c: MLP([3, 4, 1], backend="numpy").fit(c.X20, c.Y20, optimizer="sgd"), ValueError,
                 r"^optimizer: unknown optimizer 'sgd'; expected one of 'gd', 'momentum', 'rmsprop', 'adam'$",
                 id="mlp-fit-unknown-optimizer"),
    pytest.param("api", lambda c: MLP([3, 4, 1], backend="numpy").fit(c.X20, c.Y20, learning_rate=0.0), ValueError,
                 r"^learning_rate: expected a finite number > 0, got 0\.0$", id="mlp-fit-lr-zero"),
    pytest.param("api", lambda c: MLP([3, 4, 1], backend="numpy").fit(c.X20, c.Y20, learning_rate=-1e-3),
                 ValueError, r"^learning_rate: expected a finite number > 0, got -0\.001$", id="mlp-fit-lr-negative"),
    pytest.param("api", lambda c: MLP([3, 4, 1], backend="numpy").fit(c.X20, c.Y20, batch_size=0), ValueError,
                 r"^batch_size: expected an integer > 0, got 0$", id="mlp-fit-batch-size-zero"),
    pytest.param("api", lambda c: MLP([3, 4, 1], backend="numpy").fit(c.X20, c.Y20, batch_size=-8), ValueError,
                 r"^batch_size: expected an integer > 0, got -8$", id="mlp-fit-batch-size-negative"),
    pytest.param("api", lambda c: MLP([3, 4, 1], backend="numpy").fit(c.X20, c.Y20, epochs=0), ValueError,
                 r"^epochs: expected an integer > 0, got 0$", id="mlp-fit-epochs-zero"),
    pytest.param("api", lambda c: MLP([3, 4, 1], backend="numpy").fit(c.X20, c.Y20, dropout=1.0), ValueError,
                 r"^dropout: expected a finite number in \[0, 1\), got 1\.0$", id="mlp-fit-dropout-one"),
    pytest.param("api", lambda c: MLP([3, 4, 1], backend="numpy").fit(c.X20, c.Y20, dropout=-0.2), ValueError,
                 r"^dropout: expected a finite number in \[0, 1\), got -0\.2$", id="mlp-fit-dropout-negative"),
    pytest.param("api", lambda c: MLP([3, 4, 1], output_activation="softmax", backend="numpy"), ValueError,
                 r"^(output_activation|layer_dims): .*softmax.*(2|two)", id="mlp-softmax-over-one-unit"),
    # ===== checkpoints ==========================================================================
    # a missing file raises FileNotFoundError (an OSError, the standard type for it), naming the path
    pytest.param("api", lambda c: MLP.load("missing.npz"), FileNotFoundError,
                 r"checkpoint file not found: 'missing\.npz'", id="ckpt-load-missing-file"),
    pytest.param("api", lambda c: load_checkpoint("corrupt.npz"), ValueError,
                 r"^checkpoint 'corrupt\.npz': not a bpnet checkpoint: not an \.npz archive \(it starts with "
                 r"b'this', expected b'PK\\x03\\x04'\)$", id="ckpt-load-corrupt"),
    pytest.param("api", lambda c: load_checkpoint("truncated.npz"), ValueError,
                 r"^checkpoint 'truncated\.npz': unreadable archive, truncated or corrupt", id="ckpt-load-truncated"),
    pytest.param("api", lambda c: check_architecture(read_header("good.npz"), [3, 5, 1]), ValueError,
                 r"^checkpoint: saved for layer_dims \[3, 4, 1\], expected \[3, 5, 1\]$",
                 id="ckpt-other-architecture"),
    pytest.param("api", lambda c: MLP.load("good.npz"), ValueError,
                 r"^checkpoint good\.npz: not an MLP checkpoint \(no 'model' entry in its metadata\)$",
                 id="ckpt-load-not-an-MLP-checkpoint"),
    pytest.param("api", lambda c: save_checkpoint(pathlib.Path("nodir") / "m.npz", c.params), FileNotFoundError,
                 r"path: the directory 'nodir' does not exist", id="ckpt-save-into-missing-directory"),
    pytest.param("api", _save_nan_over_good, ValueError,
                 r"^parameters\['W1'\]: expected finite values, got 1 NaN and 0 inf .*existing checkpoint is "
                 r"left as it was$", id="ckpt-save-nan-parameters-over-a-good-one"),
    # ===== scikit-learn estimators ==============================================================
    pytest.param("skl", lambda c: MLPClassifier(activation="gelu", backend="numpy").fit(c.skl.X, c.skl.y),
                 ValueError, r"^activation: unknown activation 'gelu'; expected one of 'relu'",
                 id="skl-clf-unknown-activation"),
    pytest.param("skl", lambda c: MLPClassifier(optimizer="sgd", backend="numpy").fit(c.skl.X, c.skl.y),
                 ValueError, r"^optimizer: unknown optimizer 'sgd'; expected one of 'gd'",
                 id="skl-clf-unknown-optimizer"),
    pytest.param("skl", lambda c: MLPRegressor(backend="tpu").fit(c.skl.X, c.skl.X[:, 0]), ValueError,
                 r"^backend: unknown backend 'tpu'; expected one of", id="skl-reg-unknown-backend"),
    pytest.param("skl", lambda c: MLPClassifier(learning_rate=0.0, backend="numpy").fit(c.skl.X, c.skl.y),
                 ValueError, r"^learning_rate: expected a finite number > 0, got 0\.0$",
                 id="skl-clf-lr-zero"),
    pytest.param("skl", lambda c: MLPClassifier(batch_size=0, backend="numpy").fit(c.skl.X, c.skl.y), ValueError,
                 r"^batch_size: expected an integer > 0 or 'auto', got 0$", id="skl-clf-batch-size-zero"),
    pytest.param("skl", lambda c: MLPClassifier(max_iter=0, backend="numpy").fit(c.skl.X, c.skl.y), ValueError,
                 r"^max_iter: expected an integer > 0, got 0$", id="skl-clf-epochs-zero"),
    pytest.param("skl", lambda c: MLPRegressor((4, 0), backend="numpy").fit(c.skl.X, c.skl.X[:, 0]), ValueError,
                 r"^hidden_layer_sizes: expected a sequence of positive integers \(or one integer\), got \(4, 0\)$",
                 id="skl-reg-layer-size-zero"),
    pytest.param("skl", lambda c: MLPClassifier(dropout=1.0, backend="numpy").fit(c.skl.X, c.skl.y), ValueError,
                 r"^dropout: expected a finite number in \[0, 1\), got 1\.0$", id="skl-clf-dropout-one"),
    pytest.param("skl", lambda c: MLPClassifier(backend="numpy").fit(_with_entry(c.skl.X, (3, 1), math.nan),
                                                                     c.skl.y),
                 ValueError, r"^Input X contains NaN", id="skl-clf-X-nan"),
    pytest.param("skl", lambda c: MLPRegressor(backend="numpy").fit(c.skl.X, _with_entry(c.skl.X[:, 0], 4, math.inf)),
                 ValueError, r"^Input y contains infinity", id="skl-reg-y-inf"),
    pytest.param("skl", lambda c: MLPClassifier(backend="numpy").fit(c.skl.X + 1j, c.skl.y), ValueError,
                 r"^X: expected real numbers, got complex data of dtype complex128 \(Complex data not supported\)$",
                 id="skl-clf-X-complex"),
    pytest.param("skl", lambda c: MLPClassifier(backend="numpy").fit(c.skl.X, c.skl.y[:10]), ValueError,
                 r"^y: expected one target per row of X .*inconsistent numbers of samples \[20, 10\]",
                 id="skl-clf-m-mismatch"),
    pytest.param("skl", lambda c: MLPClassifier(backend="numpy").fit(c.skl.X[:, 0], c.skl.y), ValueError,
                 r"^X: Expected 2D array, got 1D array instead", id="skl-clf-X-1d"),
    pytest.param("skl", lambda c: MLPClassifier(backend="numpy").fit(c.skl.X[:0], c.skl.y[:0]), ValueError,
                 r"^X: Found array with 0 sample\(s\) \(shape=\(0, 3\)\) while a minimum of 1 is required",
                 id="skl-clf-X-empty"),
    pytest.param("skl", lambda c: c.skl.clf.predict(c.skl.X.T), ValueError,
                 r"^X has 20 features, but MLPClassifier is expecting 3 features as input\.$",
                 id="skl-clf-predict-X-transposed"),
    pytest.param("skl", lambda c: c.skl.inc.partial_fit(c.skl.X, np.where(c.skl.y == 1, 5, 0)), ValueError,
                 r"^y: labels \[5\] are not in classes \[0, 1\]$", id="skl-clf-partial-fit-unknown-class"),
    pytest.param("skl", lambda c: c.skl.reg.partial_fit(c.skl.X, np.ones((20, 2))), ValueError,
                 r"^y: 2 targets, but the estimator was fitted with 1$", id="skl-reg-partial-fit-target-count"),
    # ===== command line =========================================================================
    pytest.param("cli", ["train", "--lr", "0"], None, r"--lr: expected a finite number > 0, got 0\.0$", id="cli-lr-zero"),
    pytest.param("cli", ["train", "--lr", "-0.1"], None, r"--lr: expected a finite number > 0, got -0\.1$",
                 id="cli-lr-negative"),
    pytest.param("cli", ["train", "--batch-size", "-5"], None,
                 r"--batch-size: expected an integer >= 0, got -5$", id="cli-batch-size-negative"),
    pytest.param("cli", ["train", "--epochs", "0"], None, r"--epochs: expected an integer > 0, got 0$",
                 id="cli-epochs-zero"),
    pytest.param("cli", ["train", "--layers", "8,0"], None, r"--layers: expected positive layer sizes, got '8,0'$",
                 id="cli-layer-size-zero"),
    pytest.param("cli", ["train", "--dropout", "1"], None, r"--dropout: expected a finite number in \[0, 1\), got 1\.0$",
                 id="cli-dropout-one"),
    pytest.param("cli", ["train", "--optimizer", "sgd"], None, r"--optimizer: invalid choice: 'sgd'",
                 id="cli-unknown-optimizer"),
    pytest.param("cli", ["train", "--hidden-activation", "swish"], None, r"--hidden-activation: invalid choice: 'swish'",
                 id="cli-unknown-activation"),
    pytest.param("cli", ["train", "--loss", "hinge"], None, r"--loss: invalid choice: 'hinge'", id="cli-unknown-loss"),
    pytest.param("cli", ["train", "--dtype", "float16"], None, r"--dtype: invalid choice: 'float16'",
                 id="cli-unknown-dtype"),
    pytest.param("cli", ["train", "--backend", "tpu"], None,
                 r"bpnet train: error: backend: unknown backend 'tpu'; expected one of .*\(available here: numpy",
                 id="cli-unknown-backend"),
    pytest.param("cli", ["train", "--data", "good.csv", "--label", "species"], None,
                 r"good\.csv: label column 'species' not found; the columns are: 'a', 'b', 'label'$",
                 id="cli-csv-missing-label-column"),
    pytest.param("cli", ["train", "--data", "text.csv"], None,
                 r"text\.csv: line 3 \(data row 2\), column 'b': non-numeric value 'x'; features must be numbers",
                 id="cli-csv-text-in-a-feature"),
    pytest.param("cli", ["train", "--data", "nan.csv"], None,
                 r"nan\.csv: line 2 \(data row 1\), column 'b': NaN 'nan'; missing or infinite values are not "
                 r"supported", id="cli-csv-nan"),
    pytest.param("cli", ["train", "--data", "empty.csv"], None,
                 r"empty\.csv: the file is empty; expected a header row", id="cli-csv-empty"),
    pytest.param("cli", ["train", "--data", "missing.csv"], None, r"data: no such file: 'missing\.csv'$",
                 id="cli-data-missing-file"),
    pytest.param("cli", ["train", "--data", "good.csv", "--out", "afile"], None,
                 r"--out: expected a directory .*got the existing file 'afile'$", id="cli-out-is-a-file"),
    pytest.param("cli", ["train", "--data", "good.csv", "--output", "softmax", "--out", "new"], None,
                 r"--output: binary_crossentropy trains sigmoid outputs .*got 'softmax'; use 'sigmoid'", id="cli-softmax-over-binary-labels"),
    pytest.param("cli", ["train", "--data", "good.csv", "--loss", "categorical_crossentropy", "--out", "new"], None,
                 r"--loss: categorical_crossentropy trains multiclass labels, got good\.csv, a binary task "
                 r"\(1 output unit\); use binary_crossentropy or auto", id="cli-categorical-loss-on-binary-labels"),
    pytest.param("cli", ["train", "--data", "diabetes", "--loss", "binary_crossentropy", "--out", "new"], None,
                 r"--loss: binary_crossentropy trains binary labels, got diabetes, a regression task",
                 id="cli-binary-loss-on-regression-targets"),
    pytest.param("cli", ["train", "--data", "good.csv", "--output", "linear", "--out", "new"], None,
                 r"--output: binary_crossentropy trains sigmoid outputs .*got 'linear'; use 'sigmoid' \(or loss 'mse'",
                 id="cli-binary-loss-with-linear-output"),
    pytest.param("cli", ["train", "--data", "iris", "--loss", "binary_crossentropy", "--output", "softmax", "--out",
                         "new"], None,
                 r"--output: binary_crossentropy trains sigmoid outputs .*got 'softmax'",
                 id="cli-binary-loss-with-softmax-output"),
    pytest.param("cli", ["train", "--resume", "--out", "nowhere"], None,
                 r"--resume: no checkpoint at nowhere/model\.npz", id="cli-resume-without-checkpoint"),
    pytest.param("cli", ["train", "--data", "good.csv", "--resume", "--out", "corrupt_run"], None,
                 r"checkpoint 'corrupt_run/model\.npz': not a bpnet checkpoint", id="cli-resume-corrupt-checkpoint"),
    pytest.param("cli", ["train", "--data", "good.csv", "--layers", "5", "--resume", "--out", "run"], None,
                 r"--resume: run/model\.npz holds a 2-3-1 network, but --layers and the data give 2-5-1$",
                 id="cli-resume-other-architecture"),
    pytest.param("cli", ["evaluate", "--model", "corrupt.npz"], None,
                 r"bpnet evaluate: error: checkpoint 'corrupt\.npz': not a bpnet checkpoint", id="cli-evaluate-corrupt"),
    pytest.param("cli", ["evaluate", "--model", "missing.npz"], None,
                 r"bpnet evaluate: error: checkpoint file not found: missing\.npz$", id="cli-evaluate-missing-model"),
    pytest.param("cli", ["evaluate", "--model", "run/model.npz", "--data", "xy.csv"], None,
                 r"xy\.csv: label 'label': unknown class labels 'x', 'y'; the model's classes are \['0', '1'\]",
                 id="cli-evaluate-unknown-class"),
    pytest.param("cli", ["predict", "--model", "run/model.npz", "--input", "features.csv", "--output",
                         "nodir/p.csv"], None,
                 r"--output: the directory 'nodir' does not exist", id="cli-predict-output-into-missing-dir"),
    pytest.param("cli", ["predict", "--model", "run/model.npz", "--input", "other.csv", "--output", "preds.csv"],
                 None, r"other\.csv: missing feature column\(s\) \['a', 'b'\]; the columns are: 'x', 'y'$",
                 id="cli-predict-missing-feature-columns"),
    pytest.param("cli", ["predict", "--model", "run/model.npz", "--input", "text.csv", "--output", "preds.csv"],
                 None, r"text\.csv: line 3 \(data row 2\), column 'b': non-numeric value 'x'",
                 id="cli-predict-text-keeps-existing-output"),
    pytest.param("cli", ["gradcheck", "--dims", "5"], None,
                 r"--dims: expected at least two sizes n_x,\.\.\.,n_L .*got '5'$", id="cli-gradcheck-one-layer"),
    pytest.param("cli", ["gradcheck", "--layers", "4,5,1"], None,
                 r"--layers: means the hidden sizes \(as in bpnet train\).*--dims", id="cli-gradcheck-layers-is-not-dims"),
]


# --------------------------------------------------------------------------- #
# the harness


def _snapshot(root: pathlib.Path) -> dict:
    """Every file and directory under root: relative path -> sha256 (None for directories)."""
    snap = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        snap[rel] = None if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
    return snap


def _forbid_math(monkeypatch):
    """Make every computing kernel fail the test if it is called."""
    import dataclasses
    import importlib

    from bpnet.nn.activations import ACTIVATIONS
    from bpnet.nn.losses import LOSSES
    from bpnet.optim.rules import OPTIMIZERS

    def reached(*args, **kwargs):
        raise AssertionError("a bad input reached the math: validation must come first")

    for modname in ("bpnet.nn._kernels", "bpnet.nn.course", "bpnet.model", "bpnet.train.step", "bpnet.train.loop",
                    "bpnet.tools.gradcheck"):
        mod = importlib.import_module(modname)
        for fn in ("forward", "backward", "forward_train", "backward_update", "apply_gradients", "train_step"):
            if callable(getattr(mod, fn, None)):
                monkeypatch.setattr(mod, fn, reached)
    for registry in (ACTIVATIONS, LOSSES, OPTIMIZERS):
        for name, entry in list(registry.items()):
            kernels = {f.name: reached for f in dataclasses.fields(entry)
                       if callable(getattr(entry, f.name)) and f.name != "name"}
            monkeypatch.setitem(registry, name, dataclasses.replace(entry, **kernels))


def _run_cli(argv, capsys):
    try:
        rc = main(list(argv))
    except SystemExit as exc:  # argparse errors
        rc = exc.code
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.mark.parametrize(("surface", "call", "exc", "pattern"), BAD_INPUTS)
def test_bad_input(surface, call, exc, pattern, fixture_dir, fitted, tmp_path, monkeypatch, capsys):
    for item in fixture_dir.iterdir():
        (shutil.copytree if item.is_dir() else shutil.copy2)(item, tmp_path / item.name)
    monkeypatch.chdir(tmp_path)
    c = _ctx(fitted)
    before = _snapshot(tmp_path)
    _forbid_math(monkeypatch)
    if surface == "cli":
        rc, out, err = _run_cli(call, capsys)
        assert rc == 2, (rc, out, err)
        assert "Traceback" not in err, err
        lines = [line for line in err.splitlines() if "error" in line]
        assert len(lines) == 1, err
        assert re.search(pattern, lines[0]), (pattern, lines[0])
    else:
        assert exc in (ValueError, TypeError, FileNotFoundError)
        with pytest.raises(exc) as info:
            call(c)
        assert re.search(pattern, str(info.value)), (pattern, str(info.value))
    monkeypatch.undo()
    assert _snapshot(tmp_path) == before, "a failed call changed, added or left files on disk"


def test_the_table_is_big_distinct_and_spans_the_surfaces():
    ids = [p.id for p in BAD_INPUTS]
    assert len(ids) == len(set(ids))
    calls = [p.values[1] for p in BAD_INPUTS]
    assert len({id(c) if callable(c) else tuple(c) for c in calls}) == len(calls)  # no row repeats another
    counted = [p for p in BAD_INPUTS if not p.marks]
    by_surface = {s: sum(1 for p in counted if p.id.split("-")[0] in prefixes)
                  for s, prefixes in {"python": ("api", "mlp", "ckpt"), "sklearn": ("skl",), "cli": ("cli",)}.items()}
    assert len(counted) >= 40 and all(n >= 10 for n in by_surface.values()), by_surface


# --------------------------------------------------------------------------- #
# a few CLI rows as a real process: the exit status and stderr a shell sees


@pytest.mark.parametrize("case_id", ["cli-out-is-a-file", "cli-csv-text-in-a-feature", "cli-lr-zero",
                                     "cli-resume-other-architecture"])
def test_bad_input_cli_subprocess(case_id, fixture_dir, tmp_path):
    (param,) = [p for p in BAD_INPUTS if p.id == case_id]
    _, argv, _, pattern = param.values
    for item in fixture_dir.iterdir():
        (shutil.copytree if item.is_dir() else shutil.copy2)(item, tmp_path / item.name)
    before = _snapshot(tmp_path)
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    r = subprocess.run([sys.executable, "-m", "bpnet", *argv], cwd=tmp_path, capture_output=True, text=True,
                       env=env, timeout=120)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    lines = [line for line in r.stderr.splitlines() if "error" in line]
    assert len(lines) == 1 and re.search(pattern, lines[0]), r.stderr
    assert _snapshot(tmp_path) == before


def test_the_harness_has_teeth(monkeypatch, tmp_path, capsys):
    """With the math forbidden, valid calls of every surface do fail: the guard covers the code paths."""
    rng = np.random.default_rng(1)
    X, Y = rng.normal(size=(3, 8)), (rng.random((1, 8)) > 0.5).astype(float)
    params = bpnet.initialize_parameters_deep(DIMS, backend="numpy")
    AL, caches = bpnet.L_model_forward(X, params)
    grads = bpnet.L_model_backward(AL, Y, caches)
    monkeypatch.chdir(tmp_path)
    _forbid_math(monkeypatch)
    for call in (lambda: bpnet.L_model_forward(X, params),
                 lambda: bpnet.compute_cost(AL, Y),
                 lambda: bpnet.L_model_backward(AL, Y, caches),
                 lambda: bpnet.update_parameters(params, grads, 0.1),
                 lambda: bpnet.L_layer_model(X, Y, DIMS, num_iterations=1, backend="numpy"),
                 lambda: MLP(DIMS, backend="numpy").fit(X, Y, epochs=1),
                 lambda: MLP(DIMS, backend="numpy").predict(X),
                 lambda: MLPClassifier((3,), max_iter=1, backend="numpy").fit(X.T, Y[0]),
                 lambda: main(["train", "--epochs", "1", "--no-plots", "--quiet"])):
        with pytest.raises(AssertionError, match="reached the math"):
            call()


# --------------------------------------------------------------------------- #
# inputs that look unusual but are fine, and must stay fine


def test_estimator_takes_arrays_of_any_bpnet_backend(fitted):
    """array-api-strict arrays on any device are brought to the host (scikit-learn alone fails on device1)."""
    dev1 = backends.get("array_api_strict:device1")
    X, y = fitted.X, fitted.y
    a = MLPClassifier((4,), max_iter=2, backend="numpy", random_state=0).fit(dev1.asarray(X), dev1.asarray(y))
    b = MLPClassifier((4,), max_iter=2, backend="numpy", random_state=0).fit(X, y)
    np.testing.assert_array_equal(a.predict_proba(dev1.asarray(X)), b.predict_proba(X))


def test_huge_but_finite_csv_values_are_standardised(tmp_path):
    """|x| ~ 1.7e308 overflows x**2 in the standard deviation: the statistics are still computed, finitely."""
    from bpnet.datasets import load_dataset

    rows = ["a,b,label"] + [f"{s * 0.85e308 * (i % 3)!r},{i},{i % 2}" for i, s in
                            zip(range(12), [1, -1] * 6)]
    (tmp_path / "huge.csv").write_text("\n".join(rows) + "\n")
    ds = load_dataset(str(tmp_path / "huge.csv"), test_size=0.25)
    for A in (ds.X_train, ds.X_test, ds.mean, ds.std):
        assert np.all(np.isfinite(A))
    assert abs(ds.X_train[0].mean()) < 1e-12 and ds.X_train[0].std() == pytest.approx(1.0)
