"""Property-based tests (hypothesis) of the course's forward and backward pass over random networks, data,
dtypes and backends: gradients match central differences, shapes/dtype/device kept, no NaN up to |x| = 1e4."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pytest
from conftest import HIDDEN, OUTPUT_LOSS_PAIRS, assert_on, to_np, usable_backends
from hypothesis import HealthCheck, assume, event, example, given, settings
from hypothesis import strategies as st

import bpnet
from bpnet import backends

# Drawn: depth L = 1..4 layers, input and hidden widths 1..6, the hidden activation
# (relu, leaky_relu, tanh, sigmoid, linear), the (output activation, loss) pair --
# the three fused pairs and non-fused ones, with ``fused`` drawn where it applies --,
# the output width, m = 1..7 examples (m = 1 is always among them: an explicit
# ``@example``), the dtype, the backend (numpy, array-api-strict on its default
# device and on ``device1``, cupy, torch CUDA and jax GPU when usable, torch and jax on the CPU when
# ``BPNET_TEST_BACKENDS`` names them; narrowed by ``BPNET_TEST_BACKENDS``)
# and the seed of the weights, biases and data.
#
# Properties:
#
# 1. ``L_model_backward`` (course path and fused path) matches central differences
#    (``bpnet.numerical_gradients``), float64.  Biases are drawn nonzero and examples
#    whose relu/leaky_relu pre-activations come within 1e-3 of the kink are
#    rejected (``assume``), and so are binary cross-entropy examples with an output
#    within 1e-3 of 0 or 1, where ``log(1 - AL)`` loses its digits to cancellation and
#    the central difference measures rounding noise (found by the thorough profile);
#    linear + binary cross-entropy is left out here because its clipped log has zero
#    slope where the clip is active (the course's dAL does not, by design).
# 2. Forward and backward keep shapes, dtype and device: ``AL`` is ``(n_L, m)``,
#    every cache and gradient has its layer's shape, the cost is 0-d; float32 and
#    float64.
# 3. No NaN or inf for finite inputs of any magnitude up to 1e4: cost, ``AL`` and
#    every gradient of both paths are finite; float32 and float64.  The suite turns
#    warnings into errors, so an overflow warning fails it too.
#
# Budget: the ``ci`` profile (the default) runs ``max_examples=200`` per property,
# derandomised (CI is reproducible), no deadline, no example database; a few seconds
# for the three on two cores.  ``BPNET_HYPOTHESIS_PROFILE=thorough`` runs 1000 per
# property with fresh randomness.  ``pytest --hypothesis-show-statistics`` prints
# the number of examples each property ran and the ``m=...`` events.

_HEALTH = [HealthCheck.too_slow, HealthCheck.filter_too_much]
settings.register_profile("ci", max_examples=200, deadline=None, derandomize=True, database=None,
                          print_blob=True, suppress_health_check=_HEALTH)
settings.register_profile("thorough", max_examples=1000, deadline=None, derandomize=False, database=None,
                          print_blob=True, suppress_health_check=_HEALTH)
PROFILE = os.environ.get("BPNET_HYPOTHESIS_PROFILE", "ci")
if PROFILE not in ("ci", "thorough"):
    raise ValueError(f"BPNET_HYPOTHESIS_PROFILE: expected 'ci' or 'thorough', got {PROFILE!r}")
settings.load_profile(PROFILE)

_REASONS = backends.unavailable_reasons()
#: (name, device) of every backend under test here
BACKENDS = usable_backends(sampled=False)  # torch and jax only where BPNET_TEST_BACKENDS names them
if not BACKENDS:  # e.g. BPNET_TEST_BACKENDS=cupy on a machine without a GPU
    pytest.skip(f"no backend under test is usable here: {_REASONS}", allow_module_level=True)
PAIRS = OUTPUT_LOSS_PAIRS
FD_PAIRS = [p for p in PAIRS if p != ("linear", "binary_crossentropy")]


@dataclass(frozen=True)
class Net:
    """One drawn case; the arrays are built from it (so an explicit @example can name one)."""

    dims: tuple
    hidden: str
    output: str
    loss: str
    fused: bool
    dtype: str
    backend: tuple
    seed: int
    scale: float = 1.0  # largest |x| of the inputs

    def build(self, m):
        bk = backends.get(self.backend[0], device=self.backend[1])
        rng = np.random.default_rng(self.seed)
        dims = list(self.dims)
        params = {}
        for l in range(1, len(dims)):
            params[f"W{l}"] = rng.normal(size=(dims[l], dims[l - 1])) * np.sqrt(2.0 / dims[l - 1])
            b = rng.normal(scale=0.3, size=(dims[l], 1))
            params[f"b{l}"] = np.where(np.abs(b) < 0.05, 0.05, b)  # nonzero biases
        X = rng.uniform(-1.0, 1.0, size=(dims[0], m))
        X = X / max(np.abs(X).max(), 1e-300) * self.scale
        n_out = dims[-1]
        if self.loss == "binary_crossentropy":
            Y = rng.integers(0, 2, size=(n_out, m)).astype(float)
        elif self.loss == "categorical_crossentropy":
            Y = np.eye(n_out)[:, rng.integers(0, n_out, size=m)]
        else:
            Y = rng.normal(size=(n_out, m))
        to = lambda a: bk.asarray(a, dtype=self.dtype)  # noqa: E731
        return bk, to(X), to(Y), {k: to(v) for k, v in params.items()}

    @property
    def kw(self):
        return dict(hidden_activation=self.hidden, output_activation=self.output)


@st.composite
def nets(draw, *, dtypes=("float32", "float64"), pairs=PAIRS, scales=(1.0,)):
    L = draw(st.integers(1, 4))
    output, loss = draw(st.sampled_from(pairs))
    needs_classes = output == "softmax" or loss == "categorical_crossentropy"
    n_out = draw(st.integers(2 if needs_classes else 1, 6))
    dims = (draw(st.integers(1, 6)), *(draw(st.integers(1, 6)) for _ in range(L - 1)), n_out)
    fused = draw(st.sampled_from([True, False])) if (output, loss) in bpnet.FUSED_PAIRS else False
    return Net(dims=dims, hidden=draw(st.sampled_from(HIDDEN)), output=output, loss=loss, fused=fused,
               dtype=draw(st.sampled_from(dtypes)), backend=draw(st.sampled_from(BACKENDS)),
               seed=draw(st.integers(0, 2**16)), scale=draw(st.sampled_from(scales)))


_M1 = Net(dims=(3, 4, 1), hidden="relu", output="sigmoid", loss="binary_crossentropy", fused=False,
          dtype="float64", backend=BACKENDS[0], seed=1)
_M1_SOFTMAX = Net(dims=(2, 3), hidden="tanh", output="softmax", loss="categorical_crossentropy", fused=True,
                  dtype="float32", backend=BACKENDS[-1], seed=2, scale=1e4)


def _events(net, m):
    """What was drawn, for ``--hypothesis-show-statistics``."""
    event(f"m={m}")
    event(f"L={len(net.dims) - 1}")
    event(f"backend={net.backend[0]}{':' + net.backend[1] if net.backend[1] else ''}")
    event(f"dtype={net.dtype}")
    event(f"{net.output}+{net.loss}{' fused' if net.fused else ''}")


def _hidden_Z(caches):
    return [to_np(Z) for (_, Z) in caches[:-1]]


# --------------------------------------------------------------------------- #
# 1. gradients match central differences


@given(net=nets(dtypes=("float64",), pairs=FD_PAIRS), m=st.integers(1, 7))
@example(net=_M1, m=1)
def test_backward_matches_finite_differences(net, m):
    _events(net, m)
    bk, X, Y, params = net.build(m)
    AL, caches = bpnet.L_model_forward(X, params, **net.kw)
    if net.hidden in ("relu", "leaky_relu"):
        assume(all(np.abs(Z).min() > 1e-3 for Z in _hidden_Z(caches)))  # off the kink
    if net.loss == "binary_crossentropy":
        # log(1 - AL) at AL = 1 - 1e-9 has lost 7 digits to the cancellation in 1 - AL: its central
        # difference is noise, not a test of the (exact) analytic gradient
        A = to_np(AL)
        assume(A.min() > 1e-3 and A.max() < 1 - 1e-3)
    grads = bpnet.L_model_backward(AL, Y, caches, loss=net.loss, fused=net.fused, **net.kw)
    approx = bpnet.numerical_gradients(params, X, Y, 1e-6, loss=net.loss, **net.kw)
    for key, num in approx.items():
        np.testing.assert_allclose(to_np(grads[key]), num, rtol=1e-5, atol=1e-7, err_msg=f"{key} of {net}")


# --------------------------------------------------------------------------- #
# 2. shapes, dtype and device


@given(net=nets(), m=st.integers(1, 7))
@example(net=_M1, m=1)
@example(net=_M1_SOFTMAX, m=1)
def test_forward_and_backward_shapes_and_dtypes(net, m):
    _events(net, m)
    bk, X, Y, params = net.build(m)
    dims, L = list(net.dims), len(net.dims) - 1
    AL, caches = bpnet.L_model_forward(X, params, **net.kw)
    assert_on(bk, AL, net.dtype, (dims[-1], m))
    assert len(caches) == L
    for l, ((A_prev, W, b), Z) in enumerate(caches, start=1):
        assert_on(bk, A_prev, net.dtype, (dims[l - 1], m))
        assert_on(bk, W, net.dtype, (dims[l], dims[l - 1]))
        assert_on(bk, b, net.dtype, (dims[l], 1))
        assert_on(bk, Z, net.dtype, (dims[l], m))
    assert_on(bk, bpnet.compute_cost(AL, Y, loss=net.loss), net.dtype, ())
    grads = bpnet.L_model_backward(AL, Y, caches, loss=net.loss, fused=net.fused, **net.kw)
    assert set(grads) == {f"d{p}{l}" for l in range(1, L + 1) for p in "Wb"} | {f"dA{l}" for l in range(L)}
    for l in range(1, L + 1):
        assert_on(bk, grads[f"dW{l}"], net.dtype, (dims[l], dims[l - 1]))
        assert_on(bk, grads[f"db{l}"], net.dtype, (dims[l], 1))
        assert_on(bk, grads[f"dA{l - 1}"], net.dtype, (dims[l - 1], m))
    pred = bpnet.predict(X, params, **net.kw)
    assert tuple(pred.shape) == ((1, m) if net.output == "softmax" else (dims[-1], m))


# --------------------------------------------------------------------------- #
# 3. no NaN for finite inputs up to 1e4


@given(net=nets(scales=(1e4, 1e3, 1e2, 1.0, 1e-2, 1e-6)), m=st.integers(1, 7))
@example(net=_M1_SOFTMAX, m=1)
def test_no_nan_for_finite_inputs_up_to_1e4(net, m):
    _events(net, m)
    event(f"|x| <= {net.scale:g}")
    bk, X, Y, params = net.build(m)
    AL, caches = bpnet.L_model_forward(X, params, **net.kw)
    cost = bpnet.compute_cost(AL, Y, loss=net.loss)
    assert np.isfinite(float(cost)), net
    assert np.all(np.isfinite(to_np(AL))), net
    paths = [False] + ([True] if (net.output, net.loss) in bpnet.FUSED_PAIRS else [])
    for fused in paths:
        grads = bpnet.L_model_backward(AL, Y, caches, loss=net.loss, fused=fused, **net.kw)
        for k, g in grads.items():
            assert np.all(np.isfinite(to_np(g))), (k, fused, net)


def test_profiles_are_registered():
    assert settings.get_profile("ci").max_examples == 200
    assert settings.get_profile("ci").derandomize
    assert settings.get_profile("thorough").max_examples == 1000
    assert settings.default.max_examples == settings.get_profile(PROFILE).max_examples
    assert len(BACKENDS) >= 1
