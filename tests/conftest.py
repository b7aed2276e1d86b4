"""Shared fixtures and helpers: every backend-parametrised test runs once per backend.

The tests mirror the package (``tests/nn`` tests ``bpnet/nn`` ...); helpers shared across
directories live here (``from conftest import ...``) and in ``badinput.py``, the bad-input harness.

Backends: numpy and array-api-strict always (strict on its default device and
on ``device1``, which catches forgotten ``device=`` arguments); torch (cpu) and
jax (cpu) when installed; cupy, torch on CUDA and jax on a GPU when a usable
NVIDIA GPU is present (otherwise skipped, with the reason).  Narrow the list
with ``BPNET_TEST_BACKENDS``, e.g. ``BPNET_TEST_BACKENDS=cupy,torch-cuda pytest``.
"""

from __future__ import annotations

import os
import pathlib
import re

# XLA (JAX) compiles every new operation and shape, and the tests make thousands of small ones: without
# its backend optimiser they compile faster (the jax tests take ~30 % less time; they compare to
# tolerances).  Set before jax is first imported; a user's XLA_FLAGS is kept.
os.environ.setdefault("XLA_FLAGS", "--xla_backend_optimization_level=0")

import array_api_compat  # noqa: E402
import badinput  # noqa: E402
import numpy as np
import pytest

from bpnet import backends

#: the repository root (found upwards from here: tests may sit at any depth)
ROOT = next(p for p in pathlib.Path(__file__).resolve().parents if (p / "pyproject.toml").is_file())

# (test id, backend name, device)
_ALL = [
    ("numpy", "numpy", None),
    ("array_api_strict", "array_api_strict", None),
    ("array_api_strict-device1", "array_api_strict", "device1"),
    ("torch", "torch", "cpu"),
    ("jax", "jax", "cpu"),
    ("cupy", "cupy", None),
    ("torch-cuda", "torch", "cuda"),
    ("jax-gpu", "jax", "gpu"),
]

#: the test ids that need a GPU
_GPU_IDS = {"cupy", "torch-cuda", "jax-gpu"}

#: test ids that run one case of each test function unless BPNET_TEST_BACKENDS names them or the test is
#: marked ``every_backend``: torch and jax on the CPU run the same code as the other backends, and their
#: per-call overhead (and JAX's compilation of every new shape) would double the suite's time for little
#: more coverage
_SAMPLED_IDS = {"torch", "jax"}


def _selected():
    wanted = os.environ.get("BPNET_TEST_BACKENDS")
    if not wanted:
        return _ALL
    names = {w.strip() for w in wanted.split(",") if w.strip()}
    known = {i for i, _, _ in _ALL} | {n for _, n, _ in _ALL}
    unknown = names - known
    if unknown:
        raise pytest.UsageError(f"BPNET_TEST_BACKENDS: unknown {sorted(unknown)}; expected some of {sorted(known)}")
    return [b for b in _ALL if b[0] in names or b[1] in names]


def _params():
    reasons = backends.unavailable_reasons()
    out = []
    for test_id, name, device in _selected():
        marks = [pytest.mark.gpu] if test_id in _GPU_IDS else []
        reason = reasons.get(name) or (_no_device(name, device) if test_id in _GPU_IDS else None)
        if reason:
            marks.append(pytest.mark.skip(reason=f"backend {test_id!r} not available: {reason}"))
        out.append(pytest.param((name, device), id=test_id, marks=marks))
    return out


def _no_device(name, device):
    """Why backend ``name`` has no ``device`` here (None when it has one)."""
    try:
        backends.get(name, device=device)
    except ValueError as e:  # BackendUnavailableError too
        return str(e)
    return None


def _sampled_ids():
    """The ids of _SAMPLED_IDS that BPNET_TEST_BACKENDS does not name."""
    named = {w.strip() for w in os.environ.get("BPNET_TEST_BACKENDS", "").split(",") if w.strip()}
    return {i for i in _SAMPLED_IDS if i not in named}


def pytest_collection_modifyitems(config, items):
    """On torch and jax (CPU), run the first case of each test function only (the others are skipped with
    the reason), unless BPNET_TEST_BACKENDS names them or the test is marked ``every_backend``."""
    sampled = _sampled_ids()
    ids = {(name, device): test_id for test_id, name, device in _ALL}
    seen = set()
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is None or "bk" not in callspec.params or item.get_closest_marker("every_backend"):
            continue
        bk_id = ids.get(tuple(callspec.params["bk"]))
        if bk_id not in sampled:
            continue
        key = (item.path, item.originalname, bk_id)
        if key in seen:
            item.add_marker(pytest.mark.skip(reason=f"{bk_id}: one case per test here (BPNET_TEST_BACKENDS={bk_id} "
                                                    "runs them all)"))
        seen.add(key)


def finishes(call, timeout=20.0):
    """What ``call()`` raised (None if nothing), run in a thread; a test failure when it is still blocked after
    ``timeout`` s (e.g. a read from a FIFO)."""
    import threading

    out = {}

    def run():
        try:
            call()
            out["exc"] = None
        except BaseException as exc:  # noqa: B036 - handed to the test
            out["exc"] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout)
    assert not t.is_alive(), f"still blocked after {timeout} s"
    return out["exc"]


def cli_in_time(main, argv, timeout=60.0):
    """``main(argv)`` (the bpnet CLI) in a thread: its exit status; a test failure when still blocked."""
    status = {}
    exc = finishes(lambda: status.update(rc=main(argv)), timeout)
    if exc is not None:
        raise exc
    return status["rc"]


def usable_backends(*, sampled=True):
    """``[(name, device), ...]``: the backends under test (``BPNET_TEST_BACKENDS``) that run here;
    ``sampled=False`` leaves out torch and jax unless BPNET_TEST_BACKENDS names them (for tests that draw
    many cases, e.g. hypothesis', where they would run every case)."""
    reasons = backends.unavailable_reasons()
    skip = set() if sampled else _sampled_ids()
    return [(name, device) for test_id, name, device in _selected()
            if name not in reasons and test_id not in skip and not _no_device(name, device)]


@pytest.fixture(params=_params())
def bk(request):
    """The :class:`bpnet.backends.Backend` under test."""
    name, device = request.param
    return backends.get(name, device=device)


@pytest.fixture(params=["float64", "float32"])
def dtype(request):
    return request.param


def to_np(x):
    return backends.to_numpy(x)


def assert_on(bk, x, dtype=None, shape=None):
    """``x`` is an array of backend ``bk``, on its device, of ``dtype`` and ``shape``."""
    xp = array_api_compat.array_namespace(x)
    assert xp is bk.xp, f"expected a {bk.name} array, got namespace {xp.__name__}"
    assert array_api_compat.device(x) == bk.device, f"expected device {bk.device}, got {array_api_compat.device(x)}"
    if dtype is not None:
        assert x.dtype == bk.dtype(dtype), f"expected dtype {dtype}, got {x.dtype}"
    if shape is not None:
        assert tuple(x.shape) == tuple(shape), f"expected shape {shape}, got {tuple(x.shape)}"


#: hidden activations under test
HIDDEN = ["relu", "leaky_relu", "tanh", "sigmoid", "linear"]

#: (output activation, loss): the three fused pairs, then non-fused ones (course path only)
OUTPUT_LOSS_PAIRS = [
    ("sigmoid", "binary_crossentropy"),
    ("softmax", "categorical_crossentropy"),
    ("linear", "mse"),
    ("sigmoid", "mse"),
    ("tanh", "mse"),
    ("softmax", "mse"),
    ("sigmoid", "categorical_crossentropy"),
    ("softmax", "binary_crossentropy"),
]


#: the backends whose arithmetic is numpy's own (bit-identical results)
_NUMPY_BLAS = ("numpy", "array_api_strict")


def rtol_for(dtype):
    return 1e-12 if dtype == "float64" else 1e-5


def assert_same_result(bk_a, bk_b, got, want, err_msg=""):
    """``got`` (computed on ``bk_a``) equals ``want`` (on ``bk_b``): bit for bit when both ran on
    numpy's BLAS (numpy, array-api-strict), else to rounding (cuBLAS, torch's and XLA's kernels sum in
    other orders)."""
    got, want = to_np(got), to_np(want)
    if bk_a.name in _NUMPY_BLAS and bk_b.name in _NUMPY_BLAS:
        np.testing.assert_array_equal(got, want, err_msg=err_msg, strict=True)
    else:
        assert got.dtype == want.dtype and got.shape == want.shape, (got.dtype, want.dtype, got.shape, want.shape)
        np.testing.assert_allclose(got, want, rtol=rtol_for(str(want.dtype)), atol=rtol_for(str(want.dtype)),
                                   err_msg=err_msg)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


# --------------------------------------------------------------------------- #
# data sets, once per test module


@pytest.fixture(scope="module")
def cancer():
    """The embedded breast-cancer data set (30 features, binary), the default split."""
    from bpnet.io import load_dataset

    return load_dataset("breast_cancer")


@pytest.fixture(scope="module")
def digits():
    """The embedded digits data set (64 features, 10 classes), the default split."""
    from bpnet.io import load_dataset

    return load_dataset("digits")


# --------------------------------------------------------------------------- #
# numbers


def all_finite(a) -> bool:
    return bool(np.all(np.isfinite(to_np(a))))


def saturated_fraction(AL) -> float:
    """The share of outputs where a sigmoid's derivative A (1 - A) has vanished (< 1e-6)."""
    A = to_np(AL).astype(np.float64)
    return float(np.mean(A * (1 - A) < 1e-6))


# --------------------------------------------------------------------------- #
# the bad-input harness (badinput.py)


@pytest.fixture(scope="session")
def bad_input_files(tmp_path_factory):
    """The files every bad-input case starts from (badinput.FILES, checkpoints, a trained run)."""
    return badinput.make_files(tmp_path_factory.mktemp("bad-input-files"))


@pytest.fixture
def harness(bad_input_files, tmp_path, capsys):
    """A :class:`badinput.Harness`: ``harness.refuses(call, exc, pattern)``, ``harness.cli_refuses(argv, pattern)``."""
    return badinput.Harness(bad_input_files, tmp_path, capsys)


# --------------------------------------------------------------------------- #
# the command line


def run_bpnet(*args, env=None, cwd=None, timeout=300):
    """``python -m bpnet ARGS`` in a subprocess, output captured."""
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "bpnet", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, cwd=cwd, timeout=timeout)


def accuracy(text, which="test"):
    """The ``WHICH accuracy: NN.NN%`` a command printed, as a number."""
    return float(re.search(rf"{which} accuracy: ([\d.]+)%", text).group(1))


def backend_arg(bk) -> str:
    """The ``--backend`` string of a fixture backend (``array_api_strict:device1``)."""
    default = backends.get(bk.name).device
    return bk.name if bk.device == default else f"{bk.name}:{backends.device_str(bk.device)}"


def iris_csv(path, *, label="species", rows=slice(None)):
    """iris as a CSV file with a header row: the four feature columns and, unless ``label`` is None, the species
    names in a column of that name (``my.csv``/``new.csv`` of the README's command lines)."""
    import csv

    from sklearn.datasets import load_iris

    d = load_iris()
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(list(d.feature_names) + ([label] if label else []))
        for x, t in list(zip(d.data, d.target))[rows]:
            w.writerow(list(x) + ([d.target_names[t]] if label else []))
    return path


def umask() -> int:
    """The process umask (set and restored: no call reads it alone)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
