"""bpnet._validate, the one validation vocabulary: its scalar checks directly, and that every surface validates
before it computes (the bad-input harness of badinput.py has teeth)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from badinput import DIMS, forbid_math

import bpnet
from bpnet import _validate as v
from bpnet import optim, planar
from bpnet.cli import main
from bpnet.model import MLP
from bpnet.sklearn import MLPClassifier

#: wrong kind: TypeError; wrong value: ValueError; the message names the argument, what was expected, what came
SCALARS = [
    pytest.param(lambda: v.real("0.1", "lr", low=0.0, low_open=True), TypeError,
                 r"^lr: expected a real number > 0, got str '0\.1'$", id="real-string"),
    pytest.param(lambda: v.real(True, "lr"), TypeError, r"^lr: expected a real number, got bool True$", id="real-bool"),
    pytest.param(lambda: v.real(math.nan, "x", low=0.0), ValueError, r"^x: expected a finite number >= 0, got nan$",
                 id="real-nan"),
    pytest.param(lambda: v.real(1.0, "p", low=0.0, high=1.0, high_open=True), ValueError,
                 r"^p: expected a finite number in \[0, 1\), got 1\.0$", id="real-high-bound-open"),
    pytest.param(lambda: v.integer(2.5, "n"), TypeError, r"^n: expected an integer, got float 2\.5$", id="integer-float"),
    pytest.param(lambda: v.integer(True, "n"), TypeError, r"^n: expected an integer, got bool True$", id="integer-bool"),
    pytest.param(lambda: v.integer(0, "n", low=1), ValueError, r"^n: expected an integer > 0, got 0$", id="integer-zero"),
    pytest.param(lambda: v.integer(11, "k", low=0, high=10), ValueError, r"^k: expected an integer in \[0, 10\], got 11$",
                 id="integer-above-high"),
    pytest.param(lambda: v.choice("sgd", "optimizer", ("gd", "adam")), ValueError,
                 r"^optimizer: unknown optimizer 'sgd'; expected one of 'gd', 'adam'$", id="choice-unknown"),
    pytest.param(lambda: v.choice(None, "output_activation", {"relu": 1}, what="activation"), ValueError,
                 r"^output_activation: unknown activation None; expected one of 'relu'$", id="choice-None"),
    pytest.param(lambda: v.flag("yes", "shuffle"), TypeError, r"^shuffle: expected True or False, got str 'yes'$",
                 id="flag-string"),
    pytest.param(lambda: v.seed(-1), ValueError, r"^seed: expected an integer >= 0, got -1$", id="seed-negative"),
    pytest.param(lambda: v.layer_dims("5,3"), TypeError,
                 r"^layer_dims: expected a list of layer sizes like \[n_x, n_1, \.\.\., n_L\], got '5,3'$",
                 id="layer_dims-string"),
    pytest.param(lambda: v.layer_dims([5]), ValueError,
                 r"^layer_dims: expected at least 2 sizes \(input and output\), got \[5\]$", id="layer_dims-one-size"),
    pytest.param(lambda: v.layer_dims([5, True]), TypeError,
                 r"^layer_dims: expected positive integers, got True at position 1 of \[5, True\]$",
                 id="layer_dims-bool"),
]


@pytest.mark.parametrize(("call", "exc", "pattern"), SCALARS)
def test_scalar_checks_refuse_naming_the_argument(call, exc, pattern):
    with pytest.raises(exc, match=pattern) as info:
        call()
    assert type(info.value) is exc, f"{type(info.value).__name__}: {info.value}"


def test_scalar_checks_return_python_numbers():
    assert v.real(np.float32(0.5), "x") == 0.5 and type(v.real(np.float32(0.5), "x")) is float
    assert v.integer(np.int64(3), "n", low=1) == 3 and type(v.integer(np.int64(3), "n")) is int
    assert v.flag(np.bool_(True), "f") is True
    dims = v.layer_dims((3, np.int64(2)))
    assert dims == [3, 2] and all(type(n) is int for n in dims)


def test_the_harness_has_teeth(monkeypatch, tmp_path, capsys):
    """With the math forbidden, valid calls of every surface do fail: the guard covers the code paths."""
    rng = np.random.default_rng(1)
    X, Y = rng.normal(size=(3, 8)), (rng.random((1, 8)) > 0.5).astype(float)
    params = bpnet.initialize_parameters_deep(DIMS, backend="numpy")
    AL, caches = bpnet.L_model_forward(X, params)
    grads = bpnet.L_model_backward(AL, Y, caches)
    planar_params = planar.initialize_parameters(2, 4, 1, backend="numpy")
    _, planar_cache = planar.forward_propagation(X[:2], planar_params)
    planar_grads = planar.backward_propagation(planar_params, planar_cache, X[:2], Y)
    monkeypatch.chdir(tmp_path)
    forbid_math(monkeypatch)
    for call in (lambda: bpnet.L_model_forward(X, params),
                 lambda: bpnet.compute_cost(AL, Y),
                 lambda: bpnet.L_model_backward(AL, Y, caches),
                 lambda: bpnet.update_parameters(params, grads, 0.1),
                 lambda: bpnet.predict(X, params),
                 lambda: bpnet.linear_activation_forward(X, params["W1"], params["b1"], "relu"),
                 lambda: bpnet.linear_activation_backward(caches[0][1], caches[0], "relu"),
                 lambda: optim.update_parameters_with_momentum(params, grads, optim.initialize_velocity(params), 0.9,
                                                               0.1),
                 lambda: optim.update_parameters_with_adam(params, grads, *optim.initialize_adam(params), 1),
                 lambda: optim.update_parameters_with_rmsprop(params, grads, optim.initialize_rmsprop(params)),
                 lambda: optim.get_optimizer("adam").step(params, grads, optim.get_optimizer("adam").init(params), 0.1),
                 lambda: bpnet.gradient_check(params, grads, X, Y),
                 lambda: bpnet.L_layer_model(X, Y, DIMS, num_iterations=1, backend="numpy"),
                 lambda: bpnet.two_layer_model(X, Y, DIMS, num_iterations=1, backend="numpy"),
                 lambda: bpnet.predict(X, Y, params),
                 lambda: planar.forward_propagation(X[:2], planar_params),
                 lambda: planar.backward_propagation(planar_params, planar_cache, X[:2], Y),
                 lambda: planar.compute_cost(planar_cache["A2"], Y),
                 lambda: planar.update_parameters(planar_params, planar_grads),
                 lambda: planar.nn_model(X[:2], Y, 4, num_iterations=1, backend="numpy"),
                 lambda: planar.predict(planar_params, X[:2]),
                 lambda: MLP(DIMS, backend="numpy").fit(X, Y, epochs=1),
                 lambda: MLP(DIMS, backend="numpy").predict(X),
                 lambda: MLPClassifier((3,), max_iter=1, backend="numpy").fit(X.T, Y[0]),
                 lambda: main(["train", "--epochs", "1", "--no-plots", "--quiet"])):
        with pytest.raises(AssertionError, match="reached the math"):
            call()


# --------------------------------------------------------------------------- #
# the course-compatible layer: shapes an update does not need, values the course computes with


def _unchained():
    """The Optimization notebook's parameters: W1 (2, 3) and W2 (3, 3), which do not chain into a network."""
    rng = np.random.RandomState(1)
    return {"W1": rng.randn(2, 3), "b1": rng.randn(2, 1), "W2": rng.randn(3, 3), "b2": rng.randn(3, 1)}


def test_check_parameters_chains_only_when_asked():
    p = _unchained()
    assert v.check_parameters(p, chain=False) == 2
    with pytest.raises(ValueError, match=r"^parameters\['W2'\]: expected 2 columns \(W1 has shape \(2, 3\)\), "
                                         r"got shape \(3, 3\)$"):
        v.check_parameters(p)
    p["b2"] = np.zeros((2, 1))  # a bias unlike its W's rows: inconsistent either way
    for chain in (True, False):
        with pytest.raises(ValueError, match=r"^parameters\['b2'\]: expected shape \(3, 1\) to match W2"):
            v.check_parameters(p, chain=chain)


def test_label_values_warn_instead_of_refusing():
    Y = np.array([[0.0, 1.0, 0.5, 2.0]])
    with pytest.raises(ValueError, match=r"^Y: expected labels 0 or 1, got 2 other values such as 0\.5, 2$"):
        v.check_label_values(np, Y, "binary")
    with pytest.warns(bpnet.CourseInputWarning, match=r"^Y: expected labels 0 or 1, got 2 other values such as "
                                                      r"0\.5, 2; computing with them as the course's code does$"):
        v.check_label_values(np, Y, "binary", warn=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        v.check_label_values(np, np.array([[0.0, 1.0]]), "binary", warn=True)  # 0/1: nothing to say
        v.check_label_values(np, Y, "real", warn=True)


def test_the_course_warning_points_at_the_caller():
    with pytest.warns(bpnet.CourseInputWarning) as record:
        v.warn_course_input("something odd")
    assert record[0].filename == __file__
    assert issubclass(bpnet.CourseInputWarning, UserWarning) and bpnet.CourseInputWarning is v.CourseInputWarning
