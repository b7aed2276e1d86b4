"""The Optimization notebook's own tests (course 2, week 2), unchanged, on every backend.

Its update tests pass parameters whose ``W`` shapes do not chain into a network (``W1`` (2, 3),
``W2`` (3, 3)): an update works parameter by parameter, so bpnet takes them.  The inputs are
drawn as the notebook draws them and each printed value is checked against the plain-numpy
transcription of the notebook's code first (``notebook_reference``), then bpnet against both.
``update_parameters_with_momentum`` is the older notebook's test, ``update_parameters_with_adam``
both the older one and the 2021 one (t = 2, learning_rate 0.02, beta1 0.8, beta2 0.888, epsilon 0.01).
"""

from __future__ import annotations

import notebook_reference as ref
import numpy as np
import pytest
from conftest import assert_on, to_np
from notebook_reference import assert_printed

import bpnet
from bpnet import optim

W1_GD = "[[ 1.63535156 -0.62320365 -0.53718766] [-1.07799357  0.85639907 -2.29470142]]"
V_DW1 = "[[-0.11006192  0.11447237  0.09015907] [ 0.05024943  0.09008559 -0.06837279]]"

PRINTED = {
    "update_parameters_with_gd": {
        "W1": W1_GD, "b1": "[[ 1.74604067] [-0.75184921]]",
        "W2": "[[ 0.32171798 -0.25467393  1.46902454] [-2.05617317 -0.31554548 -0.3756023 ]"
              " [ 1.1404819  -1.09976462 -0.1612551 ]]",
        "b2": "[[-0.88020257] [ 0.02561572] [ 0.57539477]]"},
    "update_parameters_with_momentum": {
        "W1": "[[ 1.62544598 -0.61290114 -0.52907334] [-1.07347112  0.86450677 -2.30085497]]",
        "b1": "[[ 1.74493465] [-0.76027113]]",
        "W2": "[[ 0.31930698 -0.24990073  1.4627996 ] [-2.05974396 -0.32173003 -0.38320915]"
              " [ 1.13444069 -1.0998786  -0.1713109 ]]",
        "b2": "[[-0.87809283] [ 0.04055394] [ 0.58207317]]",
        "v_dW1": V_DW1, "v_db1": "[[-0.01228902] [-0.09357694]]",
        "v_dW2": "[[-0.02678881  0.05303555 -0.06916608] [-0.03967535 -0.06871727 -0.08452056]"
                 " [-0.06712461 -0.00126646 -0.11173103]]",
        "v_db2": "[[ 0.02344157] [ 0.16598022] [ 0.07420442]]"},
    "update_parameters_with_adam": {  # the older notebook: t = 2, the defaults
        "W1": "[[ 1.63178673 -0.61919778 -0.53561312] [-1.08040999  0.85796626 -2.29409733]]",
        "b1": "[[ 1.75225313] [-0.75376553]]",
        "W2": "[[ 0.32648046 -0.25681174  1.46954931] [-2.05269934 -0.31497584 -0.37661299]"
              " [ 1.14121081 -1.09244991 -0.16498684]]",
        "b2": "[[-0.88529979] [ 0.03477238] [ 0.57537385]]",
        "v_dW1": V_DW1,
        "s_dW1": "[[ 0.00121136  0.00131039  0.00081287] [ 0.0002525   0.00081154  0.00046748]]",
        "s_db1": "[[  1.51020075e-05] [  8.75664434e-04]]",
        "s_dW2": "[[  7.17640232e-05   2.81276921e-04   4.78394595e-04] [  1.57413361e-04   4.72206320e-04   7.14372576e-04]"
                 " [  4.50571368e-04   1.60392066e-07   1.24838242e-03]]",
        "s_db2": "[[  5.49507194e-05] [  2.75494327e-03] [  5.50629536e-04]]"},
    "update_parameters_with_adam_2021": {  # its test compares row 0 of each array
        "W1": "[[ 1.63942428 -0.6268425  -0.54320974] [-1.08782943  0.85036983 -2.2865723 ]]",
        "b1": "[[ 1.75854357] [-0.74616067]]",
        "W2": "[[ 0.33356139 -0.26425199  1.47707772] [-2.04538458 -0.30744933 -0.36903141]"
              " [ 1.14873036 -1.09256871 -0.15734651]]",
        "b2": "[[-0.89228024] [ 0.02707193] [ 0.56782561]]",
        "v_dW1": "[[-0.22012384  0.22894474  0.18031814] [ 0.10049887  0.18017119 -0.13674557]]",
        "s_dW1": "[[ 0.13567261  0.14676395  0.09104097] [ 0.02828006  0.09089264  0.05235818]]",
        "s_db2": "[[ 0.00615448] [ 0.30855365] [ 0.06167051]]"},
    # the 2021 notebook's gd and momentum tests draw W2 (3, 2), which chains
    "update_parameters_with_gd_2021": {
        "W1": "[[ 1.63312395 -0.61217855 -0.5339999 ] [-1.06196243  0.85396039 -2.3105546 ]]",
        "b2": "[[ 1.13773698] [-1.09301954] [-0.16397615]]"},
    "update_parameters_with_momentum_2021": {
        "W2": "[[ 0.31972282 -0.24924749] [ 1.46304371 -2.05987282] [-0.32294756 -0.38336269]]",
        "v_dW1": "[[-0.08778584  0.00422137  0.05828152] [-0.11006192  0.11447237  0.09015907]]"},
    "random_mini_batches": {  # X (12288, 148): the shapes, and the sanity check mini_batches[0][0][0][0:3]
        "shape_X_0": "[12288 64]", "shape_X_1": "[12288 64]", "shape_X_2": "[12288 20]",
        "shape_Y_0": "[1 64]", "shape_Y_1": "[1 64]", "shape_Y_2": "[1 20]",
        "sanity": "[ 0.90085595 -0.7612069   0.2344157 ]"},
    "random_mini_batches_2021": {  # X (5, 7), mini_batch_size 2
        "X_0": "[[ 1.74481176 -0.52817175] [-0.38405435 -0.24937038] [-1.10061918 -0.17242821]"
               " [-0.93576943  0.50249434] [-0.67124613 -0.69166075]]",
        "Y_0": "[[ True  True]]",
        "X_1": "[[-0.61175641 -1.07296862] [ 0.3190391   1.46210794] [-1.09989127 -0.87785842]"
               " [ 0.90159072  0.90085595] [ 0.53035547 -0.39675353]]",
        "Y_1": "[[ True False]]",
        "X_2": "[[ 1.62434536 -2.3015387 ] [-0.7612069  -0.3224172 ] [ 1.13376944  0.58281521]"
               " [ 1.14472371 -0.12289023] [-0.26788808 -0.84520564]]",
        "Y_2": "[[ True  True]]",
        "X_3": "[[ 0.86540763] [-2.06014071] [ 0.04221375] [-0.68372786] [-0.6871727 ]]",
        "Y_3": "[[False]]"},
}

#: the learning-rate schedules: (arguments, printed value)
LR_PRINTED = {
    "update_lr": [((0.5, 2, 1), "0.16666666666666666")],
    "schedule_lr_decay": [((0.5, 100, 1, 100), "0.25"), ((0.5, 10, 1, 100), "0.5"),
                          # the 2021 test's 0.085714285 is truncated, not rounded (np.isclose takes it): the reference's
                          ((0.3, 1000, 0.25, 100), "0.0857142857142857"), ((0.3, 100, 0.25, 100), "0.24"),
                          ((0.5, 100, 1), "0.5")],
}
_BOOLEAN = {"True": "1", "False": "0"}


def _printed_text(text):
    return " ".join(_BOOLEAN.get(t, t) for t in text.replace("[", " [ ").replace("]", " ] ").split())


def _reference():
    parameters, grads = ref.optimization_case()
    zeros = ref.ref_initialize_velocity(parameters)
    out = {"update_parameters_with_gd": ref.ref_update_parameters(parameters, grads, 0.01)}
    new, v = ref.ref_update_parameters_with_momentum(parameters, grads, zeros, 0.9, 0.01)
    out["update_parameters_with_momentum"] = {**new, **{f"v_{k}": a for k, a in v.items()}}
    for name, kw in (("update_parameters_with_adam", {}),
                     ("update_parameters_with_adam_2021", dict(learning_rate=0.02, beta1=0.8, beta2=0.888,
                                                               epsilon=1e-2))):
        new, v, s, vc, sc = ref.ref_update_parameters_with_adam(parameters, grads, zeros, zeros, 2, **kw)
        out[name] = {**new, **{f"v_{k}": a for k, a in v.items()}, **{f"s_{k}": a for k, a in s.items()},
                     **{f"vc_{k}": a for k, a in vc.items()}, **{f"sc_{k}": a for k, a in sc.items()}}
    parameters, grads = ref.optimization_case((3, 2))
    out["update_parameters_with_gd_2021"] = ref.ref_update_parameters(parameters, grads, 0.01)
    new, v = ref.ref_update_parameters_with_momentum(parameters, grads, ref.ref_initialize_velocity(parameters), 0.9,
                                                     0.01)
    out["update_parameters_with_momentum_2021"] = {**new, **{f"v_{k}": a for k, a in v.items()}}
    batches = ref.ref_random_mini_batches(*ref.random_mini_batches_case(12288, 148), 64)
    out["random_mini_batches"] = {**{f"shape_{w}_{i}": np.array(b[j].shape) for i, b in enumerate(batches)
                                     for j, w in enumerate("XY")}, "sanity": batches[0][0][0][0:3]}
    batches = ref.ref_random_mini_batches(*ref.random_mini_batches_case(5, 7), 2)
    out["random_mini_batches_2021"] = {f"{w}_{i}": b[j] for i, b in enumerate(batches) for j, w in enumerate("XY")}
    return out


REFERENCE = _reference()


@pytest.mark.parametrize(("function", "key"), [(f, k) for f, d in PRINTED.items() for k in d])
def test_printed_values_are_the_reference(function, key):
    assert_printed(REFERENCE[function][key], _printed_text(PRINTED[function][key]), f"{function}: {key}")


@pytest.mark.parametrize(("function", "args", "text"),
                         [(f, a, t) for f, rows in LR_PRINTED.items() for a, t in rows])
def test_printed_learning_rates_are_the_reference(function, args, text):
    assert_printed(getattr(ref, f"ref_{function}")(*args), text, f"{function}{args}")


def _check(got, function, bk, rtol=1e-12):
    for key, value in got.items():
        assert_on(bk, value, "float64")
        np.testing.assert_allclose(to_np(value), REFERENCE[function][key], rtol=rtol, atol=rtol,
                                   err_msg=f"{function}: {key}")
        if key in PRINTED[function]:
            assert_printed(to_np(value), PRINTED[function][key], f"{function}: {key}")


def _case(bk, w2=(3, 3)):
    parameters, grads = ref.optimization_case(w2)
    return ({k: bk.asarray(a) for k, a in parameters.items()}, {k: bk.asarray(a) for k, a in grads.items()})


def test_update_parameters_with_gd(bk):
    """The notebook's update_parameters_with_gd is bpnet.update_parameters; its W do not chain."""
    parameters, grads = _case(bk)
    _check(bpnet.update_parameters(parameters, grads, 0.01), "update_parameters_with_gd", bk)


@pytest.mark.parametrize("init", [optim.initialize_velocity, lambda p: optim.initialize_adam(p)[0],
                                  lambda p: optim.initialize_adam(p)[1], optim.initialize_rmsprop],
                         ids=["initialize_velocity", "initialize_adam-v", "initialize_adam-s", "initialize_rmsprop"])
def test_initialize_moments_on_parameters_that_do_not_chain(bk, init):
    parameters, _ = _case(bk)
    zeros = init(parameters)
    assert sorted(zeros) == ["dW1", "dW2", "db1", "db2"]
    for k, z in zeros.items():
        assert_on(bk, z, "float64", parameters[k[1:]].shape)
        assert not np.any(to_np(z))


def test_update_parameters_with_momentum(bk):
    parameters, grads = _case(bk)
    new, v = optim.update_parameters_with_momentum(parameters, grads, optim.initialize_velocity(parameters), 0.9, 0.01)
    _check({**new, **{f"v_{k}": a for k, a in v.items()}}, "update_parameters_with_momentum", bk)


@pytest.mark.parametrize(("function", "kw"), [
    ("update_parameters_with_adam", {}),
    ("update_parameters_with_adam_2021", dict(learning_rate=0.02, beta1=0.8, beta2=0.888, epsilon=1e-2)),
])
def test_update_parameters_with_adam(bk, function, kw):
    parameters, grads = _case(bk)
    v, s = optim.initialize_adam(parameters)
    new, v, s, vc, sc = optim.update_parameters_with_adam(parameters, grads, v, s, 2, **kw)
    got = {**new, **{f"{n}_{k}": a for n, d in (("v", v), ("s", s), ("vc", vc), ("sc", sc)) for k, a in d.items()}}
    _check(got, function, bk)


def test_updates_on_the_2021_shapes_that_chain(bk):
    """The 2021 notebook's gd and momentum tests use W2 (3, 2), which chains: the same rules, the same numbers."""
    parameters, grads = _case(bk, (3, 2))
    _check(bpnet.update_parameters(parameters, grads, 0.01), "update_parameters_with_gd_2021", bk)
    new, v = optim.update_parameters_with_momentum(parameters, grads, optim.initialize_velocity(parameters), 0.9, 0.01)
    _check({**new, **{f"v_{k}": a for k, a in v.items()}}, "update_parameters_with_momentum_2021", bk)


def test_random_mini_batches(bk):
    X, Y = ref.random_mini_batches_case(12288, 148)
    batches = optim.random_mini_batches(bk.asarray(X), bk.asarray(Y), 64)
    assert [(tuple(bx.shape), tuple(by.shape)) for bx, by in batches] == [((12288, 64), (1, 64))] * 2 + [
        ((12288, 20), (1, 20))]
    assert_printed(to_np(batches[0][0])[0][0:3], PRINTED["random_mini_batches"]["sanity"])
    for (bx, by), (rx, ry) in zip(batches, ref.ref_random_mini_batches(X, Y, 64)):
        np.testing.assert_array_equal(to_np(bx), rx)
        np.testing.assert_array_equal(to_np(by), ry)


def test_random_mini_batches_2021(bk):
    X, Y = ref.random_mini_batches_case(5, 7)
    batches = optim.random_mini_batches(bk.asarray(X), bk.asarray(Y), 2)
    assert len(batches) == 4
    for i, (bx, by) in enumerate(batches):
        assert_on(bk, bx, "float64")
        assert to_np(by).dtype == np.bool_  # the labels keep their dtype (the notebook's are boolean)
        for w, got in (("X", bx), ("Y", by)):
            np.testing.assert_array_equal(to_np(got), REFERENCE["random_mini_batches_2021"][f"{w}_{i}"])
            assert_printed(to_np(got), _printed_text(PRINTED["random_mini_batches_2021"][f"{w}_{i}"]))


@pytest.mark.parametrize(("function", "args", "text"),
                         [(f, a, t) for f, rows in LR_PRINTED.items() for a, t in rows])
def test_learning_rate_schedules(function, args, text):
    got = getattr(optim, function)(*args)
    assert type(got) is float
    assert got == pytest.approx(float(getattr(ref, f"ref_{function}")(*args)), rel=1e-15)
    assert_printed(got, text, f"{function}{args}")
