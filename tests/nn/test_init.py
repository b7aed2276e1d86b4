"""initialize_parameters_deep (bpnet.nn.init): the course's numbers, the scales, the same draws on every
backend, the global random state untouched; its bad inputs."""

from __future__ import annotations

import numpy as np
import pytest
from badinput import DIMS, api_context, check_table, small_net
from conftest import assert_on, to_np

import bpnet


def test_initialize_parameters_deep_course_numbers():
    # the course's test: initialize_parameters_deep([5, 4, 3]) with np.random.seed(3)
    p = bpnet.initialize_parameters_deep([5, 4, 3], backend="numpy")
    expected_W1 = [[0.01788628, 0.0043651, 0.00096497, -0.01863493, -0.00277388],
                   [-0.00354759, -0.00082741, -0.00627001, -0.00043818, -0.00477218],
                   [-0.01313865, 0.00884622, 0.00881318, 0.01709573, 0.00050034],
                   [-0.00404677, -0.0054536, -0.01546477, 0.00982367, -0.01101068]]
    expected_W2 = [[-0.01185047, -0.0020565, 0.01486148, 0.00236716],
                   [-0.01023785, -0.00712993, 0.00625245, -0.00160513],
                   [-0.00768836, -0.00230031, 0.00745056, 0.01976111]]
    np.testing.assert_allclose(p["W1"], expected_W1, atol=5e-9)
    np.testing.assert_allclose(p["W2"], expected_W2, atol=5e-9)
    np.testing.assert_array_equal(p["b1"], np.zeros((4, 1)))
    np.testing.assert_array_equal(p["b2"], np.zeros((3, 1)))
    assert p["W1"].dtype == np.float64
    assert list(p) == ["W1", "b1", "W2", "b2"]


def test_initialize_does_not_touch_global_random_state():
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    bpnet.initialize_parameters_deep([3, 2, 1], backend="numpy")
    np.testing.assert_array_equal(np.random.get_state()[1], before)


def test_initialize_identical_on_every_backend(bk, dtype):
    p = bpnet.initialize_parameters_deep([6, 5, 2], init="he", seed=7, dtype=dtype, backend=bk)
    ref = bpnet.initialize_parameters_deep([6, 5, 2], init="he", seed=7, dtype=dtype, backend="numpy")
    for key in ref:
        assert_on(bk, p[key], dtype, ref[key].shape)
        np.testing.assert_array_equal(to_np(p[key]), ref[key])  # bit-identical: drawn on the host


@pytest.mark.parametrize("init, scale", [("course", lambda n: 0.01), ("he", lambda n: np.sqrt(2 / n)),
                                         ("xavier", lambda n: np.sqrt(1 / n))])
def test_initialize_scales(init, scale):
    p = bpnet.initialize_parameters_deep([400, 300, 1], init=init, seed=0, backend="numpy")
    raw = np.random.RandomState(0).randn(300, 400)
    np.testing.assert_allclose(p["W1"], raw * scale(400), rtol=1e-12)
    assert abs(p["W1"].std() / scale(400) - 1) < 0.01  # 120000 draws: std within 1%


def test_initialize_respects_backend_env_var(monkeypatch):
    monkeypatch.setenv("BPNET_BACKEND", "array_api_strict")
    p = bpnet.initialize_parameters_deep([2, 1])
    assert type(p["W1"]).__module__.startswith("array_api_strict")


# --------------------------------------------------------------------------- #
# bad inputs (badinput.py)


#: each case: (function of a small network n on the backend under test, exception type, regex on the message)
PER_BACKEND = [
    # ---- initialize_parameters_deep on this backend --------------------------------------
    pytest.param(
        lambda n: bpnet.initialize_parameters_deep(DIMS, init="glorot", backend=n.bk),
        ValueError, r"^init: unknown initialisation 'glorot'; expected one of 'course', 'he', 'xavier'$",
        id="init-unknown-init",
    ),
    pytest.param(
        lambda n: bpnet.initialize_parameters_deep(DIMS, dtype="int32", backend=n.bk),
        TypeError, r"^dtype: expected 'float32' or 'float64', got 'int32'$",
        id="init-dtype-int32",
    ),
    pytest.param(
        lambda n: bpnet.initialize_parameters_deep(DIMS, dtype="float16", backend=n.bk),
        TypeError, r"^dtype: expected 'float32' or 'float64', got 'float16'$",
        id="init-dtype-float16",
    ),
    pytest.param(
        lambda n: bpnet.initialize_parameters_deep(DIMS, seed=-1, backend=n.bk),
        ValueError, r"^seed: expected an integer >= 0, got -1$",
        id="init-seed-negative",
    ),
    pytest.param(
        lambda n: bpnet.initialize_parameters_deep(DIMS, seed=1.5, backend=n.bk),
        TypeError, r"^seed: expected an integer, got float 1\.5$",
        id="init-seed-float",
    ),
]


@pytest.mark.parametrize(("call", "exc", "pattern"), PER_BACKEND)
def test_bad_input(bk, call, exc, pattern, harness):
    n = small_net(bk)
    harness.refuses(lambda: call(n), exc, pattern)


#: each case: (function of the numpy context c of badinput.api_context, exception type, regex on the message)
BAD_INPUTS = [
    # ---- initialize_parameters_deep: layer_dims, backend -----------------------------
    pytest.param(
        lambda c: bpnet.initialize_parameters_deep([5]),
        ValueError, r"^layer_dims: expected at least 2 sizes \(input and output\), got \[5\]$",
        id="init-layer_dims-single",
    ),
    pytest.param(
        lambda c: bpnet.initialize_parameters_deep([]),
        ValueError, r"^layer_dims: expected at least 2 sizes \(input and output\), got \[\]$",
        id="init-layer_dims-empty",
    ),
    pytest.param(
        lambda c: bpnet.initialize_parameters_deep([5, 0, 1]),
        ValueError, r"^layer_dims: expected positive integers, got 0 at position 1 of \[5, 0, 1\]$",
        id="init-layer_dims-zero",
    ),
    pytest.param(
        lambda c: bpnet.initialize_parameters_deep([5, -2]),
        ValueError, r"^layer_dims: expected positive integers, got -2 at position 1 of \[5, -2\]$",
        id="init-layer_dims-negative",
    ),
    pytest.param(
        lambda c: bpnet.initialize_parameters_deep("5,3"),
        TypeError, r"^layer_dims: expected a list of layer sizes like \[n_x, n_1, \.\.\., n_L\], got '5,3'$",
        id="init-layer_dims-string",
    ),
    pytest.param(
        lambda c: bpnet.initialize_parameters_deep(5),
        TypeError, r"^layer_dims: expected a list of layer sizes .*got 5$",
        id="init-layer_dims-int",
    ),
    pytest.param(
        lambda c: bpnet.initialize_parameters_deep([5, 2.5]),
        TypeError, r"^layer_dims: expected positive integers, got 2\.5 at position 1 of \[5, 2\.5\]$",
        id="init-layer_dims-float",
    ),
    pytest.param(
        lambda c: bpnet.initialize_parameters_deep(DIMS, backend="tensorflow"),
        ValueError, r"^backend: unknown backend 'tensorflow'; expected one of .*'numpy'.*\(available here: .*numpy",
        id="init-unknown-backend",
    ),
    pytest.param(
        lambda c: bpnet.initialize_parameters_deep(DIMS, backend="array_api_strict:device7"),
        ValueError, r"^device: array_api_strict has devices .*got 'device7'$",
        id="init-unknown-device",
    ),
    # ---- on the numpy context c ------------------------------------------------------
    pytest.param(lambda c: bpnet.initialize_parameters_deep(DIMS, backend="tensorflow"), ValueError,
                 r"^backend: unknown backend 'tensorflow'; expected one of 'numpy'", id="api-init-unknown-backend"),
    pytest.param(lambda c: bpnet.initialize_parameters_deep([3, 0, 1]), ValueError,
                 r"^layer_dims: expected positive integers, got 0 at position 1 of \[3, 0, 1\]$",
                 id="api-init-layer-size-zero"),
]


@pytest.mark.parametrize(("call", "exc", "pattern"), BAD_INPUTS)
def test_bad_input_once(call, exc, pattern, harness):
    c = api_context()
    harness.refuses(lambda: call(c), exc, pattern)


def test_the_bad_input_tables_are_distinct():
    check_table(PER_BACKEND, minimum=5)
    check_table(BAD_INPUTS, minimum=11)


def test_failed_init_leaves_global_random_state(bk):
    state = np.random.get_state()
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    try:
        for bad in ({"init": "glorot"}, {"dtype": "int32"}, {"seed": -1}):
            with pytest.raises((ValueError, TypeError)):
                bpnet.initialize_parameters_deep(DIMS, backend=bk, **bad)
        bpnet.initialize_parameters_deep(DIMS, backend=bk)  # a valid call does not touch it either
        np.testing.assert_array_equal(np.random.get_state()[1], before)
    finally:
        np.random.set_state(state)


def test_a_network_beyond_the_machine_s_memory_is_refused_before_drawing(monkeypatch):
    """Drawn, it could only end killed by the system's out-of-memory killer, without a word (exit 137): the
    parameters and the float64 draw of the largest layer are checked against memory and swap first."""
    from bpnet import _validate

    monkeypatch.setattr(_validate, "host_memory", lambda: 1 << 20)  # a 1 MiB machine
    pattern = (r"^layer_dims: the 784-512-10 network has 407,050 parameters, 1\.6 MiB as float32 \(and 3\.1 MiB more "
               r"to draw its largest layer\), more than this machine's 1\.0 MiB of memory and swap: use fewer or "
               r"smaller layers$")
    with pytest.raises(MemoryError, match=pattern):
        bpnet.initialize_parameters_deep([784, 512, 10], dtype="float32")
    with pytest.raises(MemoryError, match=r"^layer_dims: the 784-512-10 network"):
        bpnet.MLP([784, 512, 10])
    assert set(bpnet.initialize_parameters_deep([5, 4, 3])) == {"W1", "b1", "W2", "b2"}  # 41 parameters fit
    monkeypatch.setattr(_validate, "host_memory", lambda: None)  # a system that does not say: no check
    assert bpnet.initialize_parameters_deep([784, 512, 10])["W1"].shape == (512, 784)


def test_host_memory_is_this_machine_s():
    from bpnet import _validate

    have = _validate.host_memory()
    assert have is None or have >= 1 << 28  # at least 256 MiB where the system says
