"""The course's own tests, unchanged, on every backend: the Step-by-Step and the Application notebooks (week 4).

Each notebook test's inputs are drawn as the notebook draws them (``notebook_reference``); each
value the notebook prints is remembered here as printed.  A remembered value is first checked
against the plain-numpy transcription of the notebook's code (``test_printed_values_are_the_reference``),
then bpnet, on each backend, against the reference (to rounding) and the printout (to its digits).
"""

from __future__ import annotations

import warnings

import notebook_reference as ref
import numpy as np
import pytest
from conftest import assert_on, to_np
from notebook_reference import assert_printed

import bpnet

pytestmark = pytest.mark.every_backend  # torch and jax run every case here (tests/conftest.py)

# --------------------------------------------------------------------------- #
# what the notebooks print (numpy's default printing: 8 decimals)

PRINTED = {
    "initialize_parameters": {
        "W1": "[[ 0.01624345 -0.00611756 -0.00528172] [-0.01072969  0.00865408 -0.02301539]]",
        "b1": "[[0.] [0.]]", "W2": "[[ 0.01744812 -0.00761207]]", "b2": "[[0.]]"},
    "initialize_parameters_deep": {
        "W1": "[[ 0.01788628  0.0043651   0.00096497 -0.01863493 -0.00277388]"
              " [-0.00354759 -0.00082741 -0.00627001 -0.00043818 -0.00477218]"
              " [-0.01313865  0.00884622  0.00881318  0.01709573  0.00050034]"
              " [-0.00404677 -0.0054536  -0.01546477  0.00982367 -0.01101068]]",
        "b1": "[[0.] [0.] [0.] [0.]]",
        "W2": "[[-0.01185047 -0.0020565   0.01486148  0.00236716]"
              " [-0.01023785 -0.00712993  0.00625245 -0.00160513]"
              " [-0.00768836 -0.00230031  0.00745056  0.01976111]]",
        "b2": "[[0.] [0.] [0.]]"},
    "linear_forward": {"Z": "[[ 3.26295337 -1.23429987]]"},
    "linear_activation_forward": {"A_sigmoid": "[[ 0.96890023  0.11013289]]", "A_relu": "[[ 3.43896131  0.        ]]"},
    "L_model_forward": {"AL": "[[ 0.03921668  0.70498921  0.19734387  0.04728177]]"},
    "compute_cost": {"cost": "0.2797765635793422", "cost_older": "0.41493159961539694"},
    "linear_backward": {
        "dA_prev": "[[-1.15171336  0.06718465 -0.3204696   2.09812712] [ 0.60345879 -3.72508701  5.81700741 -3.84326836]"
                   " [-0.4319552  -1.30987417  1.72354705  0.05070578] [-0.38981415  0.60811244 -1.25938424  1.47191593]"
                   " [-2.52214926  2.67882552 -0.67947465  1.48119548]]",
        "dW": "[[ 0.07313866 -0.0976715  -0.87585828  0.73763362  0.00785716]"
              " [ 0.85508818  0.37530413 -0.59912655  0.71278189 -0.58931808]"
              " [ 0.97913304 -0.24376494 -0.08839671  0.55151192 -0.10290907]]",
        "db": "[[-0.14713786] [-0.11313155] [-0.13209101]]"},
    "linear_backward_older": {
        "dA_prev": "[[ 0.51822968 -0.19517421] [-0.40506361  0.15255393] [ 2.37496825 -0.89445391]]",
        "dW": "[[-0.10076895  1.40685096  1.64992505]]", "db": "[[ 0.50629448]]"},
    "linear_activation_backward": {
        "dA_prev_sigmoid": "[[ 0.11017994  0.01105339] [ 0.09466817  0.00949723] [-0.05743092 -0.00576154]]",
        "dW_sigmoid": "[[ 0.10266786  0.09778551 -0.01968084]]", "db_sigmoid": "[[-0.05729622]]",
        "dA_prev_relu": "[[ 0.44090989  0.        ] [ 0.37883606  0.        ] [-0.2298228   0.        ]]",
        "dW_relu": "[[ 0.44513824  0.37371418 -0.10478989]]", "db_relu": "[[-0.20837892]]"},
    "L_model_backward": {
        "dA1": "[[ 0.12913162 -0.44014127] [-0.14175655  0.48317296] [ 0.01663708 -0.05670698]]",
        "dW2": "[[-0.39202432 -0.13325855 -0.04601089]]", "db2": "[[ 0.15187861]]",
        "dA0": "[[ 0.          0.52257901] [ 0.         -0.3269206 ] [ 0.         -0.32070404] [ 0.         -0.74079187]]",
        "dW1": "[[ 0.41010002  0.07807203  0.13798444  0.10502167] [ 0.          0.          0.          0.        ]"
               " [ 0.05283652  0.01005865  0.01777766  0.0135308 ]]",
        "db1": "[[-0.22007063] [ 0.        ] [-0.02835349]]"},
    "update_parameters": {
        "W1": "[[-0.59562069 -0.09991781 -2.14584584  1.82662008] [-1.76569676 -0.80627147  0.51115557 -1.18258802]"
              " [-1.0535704  -0.86128581  0.68284052  2.20374577]]",
        "b1": "[[-0.04659241] [-1.28888275] [ 0.53405496]]", "W2": "[[-0.55569196  0.0354055   1.32964895]]",
        "b2": "[[-0.84610769]]"},
    # the Application notebook's tests (public_tests.py): 2 iterations at its default rate, 3 at another
    "two_layer_model": {
        "W1": "[[ 0.01624965 -0.00610741 -0.00528734 -0.01072836  0.008664   -0.02301103  0.01745639 -0.00760949"
              "   0.0031934  -0.00248971]"
              " [ 0.01462848 -0.02057904 -0.00326745 -0.00383625  0.01138176 -0.01097596 -0.00171974 -0.00877601"
              "   0.00043022  0.00584423]"
              " [-0.01098272  0.01148209  0.00902102  0.00500958  0.00900571 -0.00683188 -0.00123491 -0.00937164"
              "  -0.00267157  0.00532808]"
              " [-0.00693465 -0.00400047 -0.00684685 -0.00844447 -0.00670397 -0.00014731 -0.01113977  0.00238846"
              "   0.0165895   0.00738212]]",
        "b1": "[[ 1.10437111e-05] [ 1.78437869e-05] [ 3.74879549e-05] [-4.42988824e-05]]",
        "W2": "[[-0.00200283 -0.00888593 -0.00751122  0.01688162]]", "b2": "[[-0.00689018]]",
        "costs": "[0.69315968]"},
    "two_layer_model_lr0.1_3": {
        "b1": "[[ 0.00027478] [ 0.00034477] [ 0.00076016] [-0.00084497]]",
        "W2": "[[-0.00358725 -0.00911995 -0.00831979  0.01615845]]", "b2": "[[-0.13451354]]",
        "costs": "[0.69315968]"},
    "L_layer_model": {
        "b1": "[[-2.16491028e-04] [ 1.50999130e-04] [ 8.71516045e-06] [ 5.57557615e-05] [-2.90746349e-05]]",
        "W3": "[[-0.09079199 -0.08117381  0.07667568  0.16665535  0.08029575  0.04805811]]", "b3": "[[0.0013201]]",
        "costs": "[0.70723944]"},
    "L_layer_model_lr0.02_3": {
        "b2": "[[ 1.18811550e-06] [-4.25510194e-04] [ 6.56178455e-04] [-1.42335482e-04] [-2.93618626e-04]"
              " [-1.75573157e-04]]",
        "W3": "[[-0.09087434 -0.07882982  0.07821609  0.16442826  0.0783229   0.04648216]]", "b3": "[[0.00525865]]",
        "costs": "[0.70723944]"},
}


# --------------------------------------------------------------------------- #
# the reference: the notebooks' code on the notebooks' inputs


def _reference():
    out = {"initialize_parameters": ref.ref_initialize_parameters(3, 2, 1),
           "initialize_parameters_deep": ref.ref_initialize_parameters_deep([5, 4, 3])}
    out["linear_forward"] = {"Z": ref.ref_linear_forward(*ref.linear_forward_case())[0]}
    case = ref.linear_activation_forward_case()
    out["linear_activation_forward"] = {f"A_{g}": ref.ref_linear_activation_forward(*case, g)[0]
                                        for g in ("sigmoid", "relu")}
    out["L_model_forward"] = {"AL": ref.ref_L_model_forward(*ref.L_model_forward_case())[0]}
    out["compute_cost"] = {"cost": ref.ref_compute_cost(np.array([[0.8, 0.9, 0.4]]), np.array([[1, 1, 0]])),
                           "cost_older": ref.ref_compute_cost(np.array([[0.8, 0.9, 0.4]]), np.array([[1, 1, 1]]))}
    for name, case in (("linear_backward", ref.linear_backward_case()),
                       ("linear_backward_older", ref.linear_backward_case_older())):
        out[name] = dict(zip(("dA_prev", "dW", "db"), ref.ref_linear_backward(*case)))
    case = ref.linear_activation_backward_case()
    out["linear_activation_backward"] = {f"{k}_{g}": x for g in ("sigmoid", "relu") for k, x in
                                         zip(("dA_prev", "dW", "db"), ref.ref_linear_activation_backward(*case, g))}
    out["L_model_backward"] = ref.ref_L_model_backward(*ref.L_model_backward_case())
    out["update_parameters"] = ref.ref_update_parameters(*ref.update_parameters_case(), 0.1)
    X, Y = ref.application_case(real_labels=True)
    for name, lr, n in (("two_layer_model", 0.0075, 2), ("two_layer_model_lr0.1_3", 0.1, 3)):
        params, costs = ref.ref_train(X, Y, ref.ref_initialize_parameters(10, 4, 1), lr, n)
        out[name] = {**params, "costs": costs}
    X, Y = ref.application_case(real_labels=False)
    for name, lr, n in (("L_layer_model", 0.0075, 2), ("L_layer_model_lr0.02_3", 0.02, 3)):
        start = ref.ref_initialize_parameters_deep([10, 5, 6, 1], seed=1, application=True)
        params, costs = ref.ref_train(X, Y, start, lr, n)
        out[name] = {**params, "costs": costs}
    return out


REFERENCE = _reference()


@pytest.mark.parametrize(("function", "key"), [(f, k) for f, d in PRINTED.items() for k in d])
def test_printed_values_are_the_reference(function, key):
    assert_printed(REFERENCE[function][key], PRINTED[function][key], f"{function}: {key}")


def _check(got, function, bk, rtol=1e-12):
    """bpnet's outputs ``got`` (a dict) on ``bk``: float64 there, the reference to rounding, the printout to its digits."""
    for key, value in got.items():
        if bk is not None and not isinstance(value, (list, float)):
            assert_on(bk, value, "float64")
        host = np.asarray(to_np(value) if not isinstance(value, (list, float)) else value, dtype=np.float64)
        want = np.asarray(REFERENCE[function][key], dtype=np.float64)
        np.testing.assert_allclose(host, want, rtol=rtol, atol=rtol, err_msg=f"{function}: {key}")
        if key in PRINTED[function]:
            assert_printed(host, PRINTED[function][key], f"{function}: {key}")


def _on(bk, arrays):
    return [bk.asarray(a) for a in arrays]


# --------------------------------------------------------------------------- #
# Step-by-Step


def test_initialize_parameters(bk):
    _check(bpnet.initialize_parameters(3, 2, 1, backend=bk), "initialize_parameters", bk, rtol=0)


def test_initialize_parameters_deep(bk):
    _check(bpnet.initialize_parameters_deep([5, 4, 3], backend=bk), "initialize_parameters_deep", bk, rtol=0)


def test_linear_forward(bk):
    A, W, b = _on(bk, ref.linear_forward_case())
    Z, cache = bpnet.linear_forward(A, W, b)
    _check({"Z": Z}, "linear_forward", bk)
    assert cache[0] is A and cache[1] is W and cache[2] is b


def test_linear_activation_forward(bk):
    A_prev, W, b = _on(bk, ref.linear_activation_forward_case())
    _check({f"A_{g}": bpnet.linear_activation_forward(A_prev, W, b, g)[0] for g in ("sigmoid", "relu")},
           "linear_activation_forward", bk)


def test_L_model_forward(bk):
    X, parameters = ref.L_model_forward_case()
    AL, caches = bpnet.L_model_forward(bk.asarray(X), {k: bk.asarray(a) for k, a in parameters.items()})
    _check({"AL": AL}, "L_model_forward", bk)
    assert len(caches) == 3


@pytest.mark.parametrize(("key", "Y"), [("cost", [[1, 1, 0]]), ("cost_older", [[1, 1, 1]])])
def test_compute_cost(bk, key, Y):
    cost = bpnet.compute_cost(bk.asarray(np.array([[0.8, 0.9, 0.4]])), bk.asarray(np.array(Y)))
    _check({key: cost}, "compute_cost", bk)


@pytest.mark.parametrize("function", ["linear_backward", "linear_backward_older"])
def test_linear_backward(bk, function):
    dZ, cache = ref.linear_backward_case() if function == "linear_backward" else ref.linear_backward_case_older()
    dA_prev, dW, db = bpnet.linear_backward(bk.asarray(dZ), tuple(_on(bk, cache)))
    _check({"dA_prev": dA_prev, "dW": dW, "db": db}, function, bk)


def test_linear_activation_backward(bk):
    dA, ((A, W, b), Z) = ref.linear_activation_backward_case()
    cache = (tuple(_on(bk, (A, W, b))), bk.asarray(Z))
    got = {}
    for g in ("sigmoid", "relu"):
        got[f"dA_prev_{g}"], got[f"dW_{g}"], got[f"db_{g}"] = bpnet.linear_activation_backward(bk.asarray(dA), cache, g)
    _check(got, "linear_activation_backward", bk)


def test_L_model_backward(bk):
    # the test feeds AL = 1.79 (randn) and random caches: only exact losses and g' taken at the cached Z give these
    AL, Y, caches = ref.L_model_backward_case()
    on = tuple((tuple(_on(bk, lin)), bk.asarray(Z)) for lin, Z in caches)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bpnet.CourseInputWarning)  # AL outside [0, 1]: computed, as the course does
        grads = bpnet.L_model_backward(bk.asarray(AL), bk.asarray(Y), on)
    _check({k: grads[k] for k in PRINTED["L_model_backward"]}, "L_model_backward", bk)


def test_update_parameters(bk):
    parameters, grads = ref.update_parameters_case()
    new = bpnet.update_parameters({k: bk.asarray(a) for k, a in parameters.items()},
                                  {k: bk.asarray(a) for k, a in grads.items()}, 0.1)
    _check(new, "update_parameters", bk)


# --------------------------------------------------------------------------- #
# the Application notebook


@pytest.mark.parametrize(("function", "lr", "n"), [("two_layer_model", 0.0075, 2), ("two_layer_model_lr0.1_3", 0.1, 3)])
def test_two_layer_model_on_real_valued_labels(bk, function, lr, n):
    """The notebook's test trains on Y = randn(1, 10): computed as the notebook does, with a warning."""
    X, Y = ref.application_case(real_labels=True)
    with pytest.warns(bpnet.CourseInputWarning, match=r"^Y: expected labels 0 or 1, got 10 other values"):
        parameters, costs = bpnet.two_layer_model(bk.asarray(X), bk.asarray(Y), (10, 4, 1), lr, n, backend=bk)
    _check({**parameters, "costs": costs}, function, bk, rtol=1e-9)


@pytest.mark.parametrize(("function", "lr", "n"), [("L_layer_model", 0.0075, 2), ("L_layer_model_lr0.02_3", 0.02, 3)])
def test_L_layer_model(bk, function, lr, n):
    X, Y = ref.application_case(real_labels=False)
    parameters, costs = bpnet.L_layer_model(bk.asarray(X), bk.asarray(Y), (10, 5, 6, 1), lr, n, backend=bk)
    _check({**parameters, "costs": costs}, function, bk, rtol=1e-9)


def test_L_layer_model_records_costs_as_the_notebook(bk, capsys):
    """costs at iterations 0, 100, ... (the notebook's ``if i % 100 == 0``); printing also shows the last."""
    X, Y = ref.application_case(real_labels=False)
    start = ref.ref_initialize_parameters_deep([10, 5, 6, 1], seed=1, application=True)
    want = ref.ref_train(X, Y, start, 0.0075, 250)[1]
    _, costs = bpnet.L_layer_model(bk.asarray(X), bk.asarray(Y), [10, 5, 6, 1], num_iterations=250, print_cost=True,
                                   backend=bk)
    np.testing.assert_allclose(costs, want, rtol=1e-9)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == [f"Cost after iteration {i}" for i in (0, 100, 200, 249)]
    assert [float(line.split(": ")[1]) for line in lines[:3]] == costs


def test_predict_the_notebook_way(bk, capsys):
    """predict(X, y, parameters) prints the accuracy as the notebook computes it and returns its 0/1 row."""
    X, Y = ref.application_case(real_labels=False)
    parameters = ref.ref_initialize_parameters_deep([10, 5, 6, 1], seed=1, application=True)
    want, accuracy = ref.ref_predict(X, Y, parameters)
    on = {k: bk.asarray(a) for k, a in parameters.items()}
    p = bpnet.predict(bk.asarray(X), bk.asarray(Y), on)
    assert_on(bk, p, "float64", (1, 10))
    np.testing.assert_array_equal(to_np(p), want)
    assert capsys.readouterr().out == f"Accuracy: {accuracy}\n"
    np.testing.assert_array_equal(to_np(bpnet.predict(bk.asarray(X), on)), want)  # today's form, nothing printed
    bpnet.predict(bk.asarray(X), bk.asarray(Y[0]), on)  # a 1-D y is the row of labels
    assert capsys.readouterr().out == f"Accuracy: {accuracy}\n"
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize(("call", "pattern"), [
    (lambda X, Y, p: bpnet.predict(p, X), r"^X: expected the features \(n_x, m\), got the parameters dict; the "
                                          r"week-3 notebook's predict\(parameters, X\) is bpnet\.planar\.predict$"),
    (lambda X, Y, p: bpnet.predict(X, Y, Y), r"^predict: expected predict\(X, parameters\) or the notebook's "
                                             r"predict\(X, y, parameters\) \(parameters a dict\), got predict\(X, "
                                             r"ndarray, ndarray\)$"),
    (lambda X, Y, p: bpnet.predict(X, p, Y), r"^predict: expected .*got predict\(X, dict, ndarray\)$"),
])
def test_predict_argument_orders_refused(call, pattern):
    X, Y = ref.application_case(real_labels=False)
    parameters = ref.ref_initialize_parameters_deep([10, 5, 6, 1], seed=1, application=True)
    with pytest.raises(TypeError, match=pattern):
        call(X, Y, parameters)


def test_predict_the_notebook_way_refuses_labels_of_another_shape(harness):
    X, Y = ref.application_case(real_labels=False)
    parameters = ref.ref_initialize_parameters_deep([10, 5, 6, 1], seed=1, application=True)
    harness.refuses(lambda: bpnet.predict(X, Y[:, :9], parameters), ValueError,
                    r"^y: expected shape \(1, 10\) like the predictions \(the labels of the columns of X\), "
                    r"got \(1, 9\)$")


def test_initialize_parameters_is_initialize_parameters_deep_of_three_sizes(bk):
    two = bpnet.initialize_parameters(4, 3, 2, backend=bk)
    deep = bpnet.initialize_parameters_deep([4, 3, 2], seed=1, backend=bk)
    assert two.keys() == deep.keys()
    for k in two:
        np.testing.assert_array_equal(to_np(two[k]), to_np(deep[k]))
    with pytest.raises(ValueError, match=r"^n_h: expected an integer > 0, got 0$"):
        bpnet.initialize_parameters(4, 0, 2)
