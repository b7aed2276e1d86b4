"""Central-difference gradient checks of the whole backward pass, in float64."""

import re

import numpy as np
import pytest
from conftest import to_np

import bpnet

HIDDEN = [a for a, e in bpnet.ACTIVATIONS.items() if e.hidden]  # every hidden activation of the registry
OUTPUTS = [("sigmoid", "binary_crossentropy"), ("softmax", "categorical_crossentropy"),
           ("linear", "mse"), ("tanh", "mse"), ("sigmoid", "mse")]


def _problem(bk, dims, m, output, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(dims[0], m))
    n_out = dims[-1]
    if output == "softmax":
        Y = np.eye(n_out)[:, rng.integers(0, n_out, size=m)]
    elif output == "sigmoid":
        Y = rng.integers(0, 2, size=(n_out, m)).astype(float)
    else:
        Y = rng.normal(size=(n_out, m))
    p = bpnet.initialize_parameters_deep(dims, init="xavier", seed=seed, backend=bk)
    return bk.asarray(X), bk.asarray(Y), p


@pytest.mark.parametrize("hidden", HIDDEN)
@pytest.mark.parametrize("output, loss", OUTPUTS, ids=[f"{o}-{l}" for o, l in OUTPUTS])
def test_backward_matches_central_differences(bk, hidden, output, loss):
    n_out = 3 if output == "softmax" else 2
    X, Y, p = _problem(bk, [3, 4, n_out], 5, output)
    kw = dict(hidden_activation=hidden, output_activation=output)
    AL, caches = bpnet.L_model_forward(X, p, **kw)
    grads = bpnet.L_model_backward(AL, Y, caches, loss=loss, **kw)
    diff = bpnet.gradient_check(p, grads, X, Y, loss=loss, **kw)
    assert diff < 1e-7


@pytest.mark.parametrize("dims, m", [
    ([2, 1], 1),                 # logistic regression, a single example
    ([5, 3, 1], 1),
    ([4, 6, 5, 3, 1], 8),        # the course's 4-layer shape, small
    ([3, 8, 8, 8, 8, 2], 3),     # deep and narrow
    ([10, 1, 4, 1], 6),          # bottleneck of width 1
    ([1, 7, 3], 16),
])
def test_depths_widths_batches(bk, dims, m):
    output, loss = ("sigmoid", "binary_crossentropy") if dims[-1] == 1 else ("softmax", "categorical_crossentropy")
    X, Y, p = _problem(bk, dims, m, output, seed=len(dims) + m)
    kw = dict(hidden_activation="tanh", output_activation=output)
    AL, caches = bpnet.L_model_forward(X, p, **kw)
    grads = bpnet.L_model_backward(AL, Y, caches, loss=loss, fused=True, **kw)
    assert bpnet.gradient_check(p, grads, X, Y, loss=loss, **kw) < 1e-7


def test_dA0_is_the_gradient_with_respect_to_X(bk):
    # dA0 carries no 1/m: it is m * dJ/dX
    X, Y, p = _problem(bk, [3, 4, 1], 4, "sigmoid", seed=3)
    kw = dict(hidden_activation="tanh")
    AL, caches = bpnet.L_model_forward(X, p, **kw)
    dA0 = to_np(bpnet.L_model_backward(AL, Y, caches, **kw)["dA0"])
    X_h, eps = to_np(X), 1e-6
    num = np.zeros_like(X_h)
    for idx in np.ndindex(*X_h.shape):
        E = np.zeros_like(X_h)
        E[idx] = eps
        Jp = float(bpnet.compute_cost(bpnet.L_model_forward(bk.asarray(X_h + E), p, **kw)[0], Y))
        Jm = float(bpnet.compute_cost(bpnet.L_model_forward(bk.asarray(X_h - E), p, **kw)[0], Y))
        num[idx] = (Jp - Jm) / (2 * eps)
    np.testing.assert_allclose(dA0 / X_h.shape[1], num, rtol=1e-6, atol=1e-9)


def test_gradient_check_detects_a_wrong_gradient(bk, capsys):
    X, Y, p = _problem(bk, [3, 4, 1], 5, "sigmoid")
    AL, caches = bpnet.L_model_forward(X, p)
    grads = bpnet.L_model_backward(AL, Y, caches)
    assert bpnet.gradient_check(p, grads, X, Y, print_msg=True) < 1e-7
    assert "works perfectly fine" in capsys.readouterr().out
    bad = dict(grads, dW1=grads["dW1"] * 1.5)
    assert bpnet.gradient_check(p, bad, X, Y, print_msg=True) > 1e-3
    assert "mistake in the backward propagation" in capsys.readouterr().out


def test_numerical_gradients_shapes(bk):
    X, Y, p = _problem(bk, [2, 3, 1], 4, "sigmoid")
    approx = bpnet.numerical_gradients(p, X, Y)
    assert set(approx) == {"dW1", "db1", "dW2", "db2"}
    for k, v in approx.items():
        assert isinstance(v, np.ndarray) and v.shape == tuple(p[k[1:]].shape)


# --------------------------------------------------------------------------- #
# bpnet gradcheck: all sizes as --dims, the head from resolve_head, labels from the loss's target


def _allowed_heads(n_out):
    """Every (output, loss) pair of the registries that resolve_head allows for n_out units."""
    out = []
    for g in bpnet.ACTIVATIONS:
        for loss in bpnet.LOSSES:
            try:
                bpnet.nn.resolve_head(n_out, g, loss)
            except ValueError:
                continue
            out.append((g, loss))
    return out


@pytest.mark.parametrize("output, loss", _allowed_heads(3), ids=[f"{o}-{s}" for o, s in _allowed_heads(3)])
def test_gradcheck_command_every_registry_head(output, loss, capsys):
    from bpnet.cli import main

    assert main(["gradcheck", "--dims", "3,4,3", "--hidden-activation", "softplus", "--output", output,
                 "--loss", loss, "--backend", "numpy"]) == 0
    out = capsys.readouterr().out
    assert f"{output} output, {loss}," in out and re.search(r"difference = [\d.e-]+ .*: OK", out)


def test_gradcheck_command_defaults(capsys):
    from bpnet.cli import main

    assert main(["gradcheck", "--backend", "numpy"]) == 0  # --dims 4,5,3,1
    out = capsys.readouterr().out
    assert "network: 4-5-3-1, relu hidden, sigmoid output, binary_crossentropy," in out
    assert main(["gradcheck", "--dims", "3,4", "--loss", "mse", "--backend", "numpy"]) == 0
    assert "linear output, mse," in capsys.readouterr().out  # a loss alone brings its canonical output
    assert main(["gradcheck", "--dims", "3,4", "--output", "tanh", "--backend", "numpy"]) == 0
    assert "tanh output, mse," in capsys.readouterr().out  # an output without a canonical loss: mse


@pytest.mark.parametrize("argv, message", [
    (["--dims", "3,2", "--output", "relu", "--loss", "categorical_crossentropy"],
     "--output: categorical_crossentropy trains softmax outputs"),
    (["--dims", "3,1", "--output", "softmax"], "--dims: a softmax output needs >= 2 units"),
    (["--dims", "784,512,10"], "--dims: 407050 parameters need 814100 forward passes"),
    (["--dims", "3,2", "--output", "sigmoid", "--loss", "mse", "--fused"], "fused"),
])
def test_gradcheck_command_refusals_give_one_line(argv, message, capsys):
    from bpnet.cli import main

    assert main(["gradcheck", *argv]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bpnet gradcheck: error: ") and message in lines[0], lines
    assert captured.out == ""
