"""The optimisers, each defined once (bpnet.optim.rules): get_optimizer, Optimizer.init and step."""

from __future__ import annotations

import array_api_compat
import numpy as np
import pytest
from badinput import api_context, check_table
from conftest import assert_on, to_np

import bpnet
from bpnet import optim
from bpnet.optim import OPTIMIZERS

pytestmark = pytest.mark.every_backend  # torch and jax run every case here (tests/conftest.py)

# one layer, n_0 = 2 inputs, n_1 = 1 unit: W1 (1, 2), b1 (1, 1)
P0 = {"W1": np.array([[1.0, -2.0]]), "b1": np.array([[0.5]])}

# two gradients: g1 then g2 (dW constant, db flips sign)
G1 = {"dW1": np.array([[1.0, -2.0]]), "db1": np.array([[4.0]])}


def _on(bk, d, dtype):
    return {k: bk.asarray(v, dtype=dtype) for k, v in d.items()}


def _assert_same(a, b):
    assert list(a) == list(b)
    for k in a:
        np.testing.assert_array_equal(to_np(a[k]), to_np(b[k]))


def test_get_optimizer_defaults_and_overrides():
    assert tuple(optim.OPTIMIZERS) == ("gd", "momentum", "rmsprop", "adam", "sgd")
    assert optim.get_optimizer("gd").hyper == {}
    assert optim.get_optimizer("sgd").hyper == {"momentum": 0.9, "nesterov": True}
    assert optim.get_optimizer("sgd", momentum=1, nesterov=np.False_).hyper == {"momentum": 1.0, "nesterov": False}
    assert optim.get_optimizer("momentum").hyper == {"beta": 0.9}
    assert optim.get_optimizer("momentum", beta=0).hyper == {"beta": 0.0}
    opt = optim.get_optimizer("Adam", beta2=0.99)
    assert opt.name == "adam" and opt.hyper == {"beta1": 0.9, "beta2": 0.99, "epsilon": 1e-8}
    assert isinstance(opt, optim.Optimizer)
    with pytest.raises(AttributeError):
        opt.name = "gd"  # frozen


def test_step_keeps_float32_with_numpy_scalars():
    # a numpy float64 learning rate or t from a checkpoint must not up-cast float32 arrays
    p, g = ({k: v.astype(np.float32) for k, v in d.items()} for d in (P0, G1))
    opt = optim.get_optimizer("adam")
    st = opt.init(p)
    st = {**st, "t": np.int64(3)}
    q, st1 = opt.step(p, g, st, np.float64(0.01))
    assert q["W1"].dtype == np.float32 and st1["v"]["dW1"].dtype == np.float32
    assert st1["t"] == 4 and type(st1["t"]) is int


@pytest.mark.parametrize("name, lr", [("gd", 0.1), ("momentum", 0.1), ("rmsprop", 0.01), ("adam", 0.05),
                                      ("sgd", 0.05)])
def test_optimizers_minimise_a_quadratic(bk, name, lr):
    # f(W, b) = 0.5 ||W - W*||^2 + 0.5 ||b - b*||^2, gradient (W - W*, b - b*)
    rng = np.random.default_rng(0)
    target = _on(bk, {"W1": rng.standard_normal((2, 3)), "b1": rng.standard_normal((2, 1))}, "float64")
    p = _on(bk, {"W1": np.zeros((2, 3)), "b1": np.zeros((2, 1))}, "float64")
    opt = optim.get_optimizer(name)
    st = opt.init(p)
    for _ in range(300):
        grads = {"dW1": p["W1"] - target["W1"], "db1": p["b1"] - target["b1"]}
        p, st = opt.step(p, grads, st, lr)
    assert st["t"] == 300
    for k in p:
        assert_on(bk, p[k], "float64")
        np.testing.assert_allclose(to_np(p[k]), to_np(target[k]), atol=1e-3)


def test_step_works_for_several_layers():
    p = bpnet.initialize_parameters_deep([3, 4, 2, 1], backend="numpy")
    X = np.random.RandomState(0).randn(3, 5)
    Y = np.array([[0.0, 1.0, 1.0, 0.0, 1.0]])
    AL, caches = bpnet.L_model_forward(X, p)
    grads = bpnet.L_model_backward(AL, Y, caches)
    v, s = optim.initialize_adam(p)
    ref = optim.update_parameters_with_adam(p, grads, v, s, 1, learning_rate=0.02)
    opt = optim.get_optimizer("adam")
    q, st = opt.step(p, grads, opt.init(p), 0.02)
    _assert_same(q, ref[0])
    _assert_same(st["v"], ref[1])
    assert list(st["v"]) == ["dW1", "db1", "dW2", "db2", "dW3", "db3"]


@pytest.mark.parametrize("name", optim.OPTIMIZERS)
def test_step_reports_missing_keys(name):
    opt = optim.get_optimizer(name)
    st = opt.init(P0)
    with pytest.raises(ValueError, match=r"grads: missing key 'db1'"):
        opt.step(P0, {"dW1": G1["dW1"]}, st, 0.1)
    with pytest.raises(ValueError, match=r"learning_rate: expected a finite number > 0, got -0.1"):
        opt.step(P0, G1, st, -0.1)
    with pytest.raises(ValueError, match=r"state: missing entry 't'"):
        opt.step(P0, G1, {k: v for k, v in st.items() if k != "t"}, 0.1)
    for slot in ("v", "s"):
        if slot in st:
            with pytest.raises(ValueError, match=rf"state: missing entry '{slot}'"):
                opt.step(P0, G1, {k: v for k, v in st.items() if k != slot}, 0.1)
            bad = {**st, slot: {"dW1": st[slot]["dW1"]}}
            with pytest.raises(ValueError, match=rf"state\['{slot}'\]: missing key 'db1'"):
                opt.step(P0, G1, bad, 0.1)


def test_init_validates_parameters():
    with pytest.raises(TypeError, match=r"parameters: expected a dict"):
        optim.get_optimizer("adam").init([P0])


# --------------------------------------------------------------------------- #
# bad inputs (badinput.py)


#: each case: (function of the numpy context c of badinput.api_context, exception type, regex on the message)
BAD_INPUTS = [
    pytest.param(
        lambda c: optim.get_optimizer("nadam"),
        ValueError, r"name: unknown optimizer 'nadam'; expected one of 'gd', 'momentum', 'rmsprop', 'adam', 'sgd'",
        id="get_optimizer-unknown-name",
    ),
    pytest.param(
        lambda c: optim.get_optimizer(3),
        TypeError, r"name: expected an optimizer name",
        id="get_optimizer-name-not-a-string",
    ),
    pytest.param(
        lambda c: optim.get_optimizer("momentum", beta=1.5),
        ValueError, r"beta: expected a finite number in \[0, 1\), got 1.5",
        id="get_optimizer-beta-above-1",
    ),
    pytest.param(
        lambda c: optim.get_optimizer("momentum", beta=1.0),
        ValueError, r"beta: expected a finite number in \[0, 1\)",
        id="get_optimizer-beta-1",
    ),
    pytest.param(
        lambda c: optim.get_optimizer("momentum", beta="0.9"),
        TypeError, r"beta: expected a real number",
        id="get_optimizer-beta-string",
    ),
    pytest.param(
        lambda c: optim.get_optimizer("adam", beta1=-0.1),
        ValueError, r"beta1: expected a finite number in \[0, 1\)",
        id="get_optimizer-beta1-negative",
    ),
    pytest.param(
        lambda c: optim.get_optimizer("adam", epsilon=0),
        ValueError, r"epsilon: expected a finite number > 0",
        id="get_optimizer-epsilon-zero",
    ),
    pytest.param(
        lambda c: optim.get_optimizer("adam", beta=0.9),
        ValueError, r"beta: not a hyper-parameter of optimizer 'adam' \(it takes: beta1, beta2, epsilon",
        id="get_optimizer-adam-takes-no-beta",
    ),
    pytest.param(
        lambda c: optim.get_optimizer("sgd", momentum=1.5),
        ValueError, r"momentum: expected a finite number in \[0, 1\], got 1.5",
        id="get_optimizer-sgd-momentum-above-1",
    ),
    pytest.param(
        lambda c: optim.get_optimizer("sgd", nesterov=1),
        TypeError, r"nesterov: expected True or False, got int 1",
        id="get_optimizer-sgd-nesterov-not-a-bool",
    ),
    pytest.param(
        lambda c: optim.get_optimizer("gd", learning_rate=0.1),
        ValueError, r"learning_rate: not a hyper-parameter of optimizer 'gd' \(it takes: none",
        id="get_optimizer-gd-takes-no-learning_rate",
    ),
]


@pytest.mark.parametrize(("call", "exc", "pattern"), BAD_INPUTS)
def test_bad_input_once(call, exc, pattern, harness):
    c = api_context()
    harness.refuses(lambda: call(c), exc, pattern)


def test_the_bad_input_tables_are_distinct():
    check_table(BAD_INPUTS, minimum=11)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_each_rule_pure_and_in_place_updates_agree(bk, dtype, name):
    """A rule's two forms (the course's pure expressions, the step's in-place ones) give the same numbers; the
    in-place form returns theta (the same array where arrays are writeable) and leaves its moments in the dict."""
    rule, xp = OPTIMIZERS[name], bk.xp
    rng = np.random.default_rng(7)
    hyper = bpnet.get_optimizer(name).hyper
    theta, g = (bk.asarray(rng.normal(size=(4, 3)), dtype=dtype) for _ in range(2))
    moments = {s: bk.asarray(np.abs(rng.normal(size=(4, 3))), dtype=dtype) for s in rule.slots}
    for t in (1, 2, 5):
        want, want_mo = rule.update(xp, theta, g, moments, t, 0.03, hyper)
        got = xp.asarray(theta, copy=True)
        got_mo = {s: xp.asarray(a, copy=True) for s, a in moments.items()}
        got = rule.update_(xp, got, xp.asarray(g, copy=True), got_mo, t, 0.03, hyper)  # in place, or new (JAX)
        tol = 1e-12 if dtype == "float64" else 1e-5
        np.testing.assert_allclose(to_np(got), to_np(want), rtol=tol, atol=tol)
        if array_api_compat.is_writeable_array(theta):
            before = xp.asarray(theta, copy=True)
            same = rule.update_(xp, theta, xp.asarray(g, copy=True), dict(moments), t, 0.03, hyper)
            assert same is theta and not bool(xp.all(theta == before))
        for s in rule.slots:
            np.testing.assert_allclose(to_np(got_mo[s]), to_np(want_mo[s]), rtol=tol, atol=tol)
        theta, moments = want, {s: want_mo[s] for s in rule.slots}


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_is_scikit_learns_sgd_with_momentum(bk, nesterov):
    """v = momentum v - lr g; theta += v, or with Nesterov theta += momentum v - lr g: scikit-learn's SGDOptimizer."""
    pytest.importorskip("sklearn")
    from sklearn.neural_network._stochastic_optimizers import SGDOptimizer

    rng = np.random.default_rng(3)
    theta0 = rng.normal(size=(3, 2))
    grads = [rng.normal(size=(3, 2)) for _ in range(4)]
    ref = [theta0.copy()]
    sk = SGDOptimizer(ref, learning_rate_init=0.1, momentum=0.8, nesterov=nesterov)
    opt = optim.get_optimizer("sgd", momentum=0.8, nesterov=nesterov)
    p = _on(bk, {"W1": theta0, "b1": np.zeros((3, 1))}, "float64")
    st = opt.init(p)
    for g in grads:
        sk.update_params(ref, [g])
        p, st = opt.step(p, {"dW1": bk.asarray(g), "db1": bk.asarray(np.zeros((3, 1)))}, st, 0.1)
        np.testing.assert_allclose(to_np(p["W1"]), ref[0], rtol=1e-13, atol=1e-15)
    # momentum 0 without Nesterov is plain gradient descent
    plain = optim.get_optimizer("sgd", momentum=0.0, nesterov=False)
    q, _ = plain.step(P0, G1, plain.init(P0), 0.5)
    _assert_same(q, optim.get_optimizer("gd").step(P0, G1, {"t": 0}, 0.5)[0])


def test_the_schedules_are_defined_once():
    from bpnet.optim.rules import SCHEDULES, invscaling, scheduled_lr, staircase

    assert SCHEDULES == ("constant", "staircase", "invscaling", "adaptive")
    # scikit-learn's invscaling: learning_rate_init / (t + 1) ** power_t, t the examples seen before the epoch
    assert invscaling(0.1, 0, 0.5) == 0.1 and invscaling(0.1, 99, 0.5) == pytest.approx(0.01)
    assert scheduled_lr("invscaling", 0.1, 3, 300, power_t=0.25) == invscaling(0.1, 300, 0.25)
    assert scheduled_lr("staircase", 0.1, 7, 0, decay_rate=1.0, interval=2) == staircase(0.1, 7, 1.0, 2) == 0.025
    assert scheduled_lr("constant", 0.1, 7, 700) == scheduled_lr("adaptive", 0.1, 7, 700) == 0.1
