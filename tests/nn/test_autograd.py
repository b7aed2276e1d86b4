"""bpnet's gradients and costs against PyTorch autograd (float64), with output probabilities down to 1e-300."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import to_np

import bpnet

pytestmark = pytest.mark.every_backend  # torch and jax run every case here (tests/conftest.py)

torch = pytest.importorskip("torch")

HIDDEN = [a for a, e in bpnet.ACTIVATIONS.items() if e.hidden]
HEADS = [("sigmoid", "binary_crossentropy", 1), ("softmax", "categorical_crossentropy", 3)]


def _net(hidden, n_out, seed=0):
    """A 3-6-n_out net on 4 examples whose output logits are chosen: probabilities from 1e-300 to ~1.

    The hidden layer is random; W2, b2 map its activations exactly onto target logits (4 equations per
    output in 7 unknowns, of rank 4 even for a linear hidden layer), so every hidden activation reaches
    the extremes.
    """
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(3, 4))
    W1, b1 = rng.normal(size=(6, 3)), rng.normal(size=(6, 1))
    A1 = _g(hidden, W1 @ X + b1)
    if n_out == 1:  # sigmoid: p from 1e-300 to 1 - e^-20 (never rounded to 1)
        T = np.array([[-690.0, -230.0, -1.0, 20.0]])
        Y = np.array([[1.0, 1.0, 0.0, 0.0]])  # the first two and the last confidently wrong
    else:  # softmax: the true class at probability ~1e-300, ~1e-100, ~0.3, ~1
        T = np.array([[0.0, 0.0, 0.0, 30.0], [-690.0, -230.0, -1.0, 0.0], [10.0, 5.0, 0.0, 0.0]])
        Y = np.eye(3)[:, [1, 1, 0, 0]]
    H = np.vstack([A1, np.ones((1, 4))])
    Wb = T @ np.linalg.pinv(H)
    assert np.allclose(Wb @ H, T, rtol=0, atol=1e-6), "the logits are not reached"
    params = {"W1": W1, "b1": b1, "W2": Wb[:, :-1], "b2": Wb[:, -1:]}
    return X, Y, params


def _g(name, Z):
    import array_api_compat.numpy as xp

    return bpnet.get_activation(name).forward(xp, Z)


def _torch_reference(X, Y, params, hidden, loss):
    """Autograd of the exact cost from the logits: (J, {dW1, db1, dW2, db2}, dA0 = m dJ/dX)."""
    t = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in params.items()}
    Xt = torch.tensor(X, dtype=torch.float64, requires_grad=True)
    Yt = torch.tensor(Y, dtype=torch.float64)
    act = {"relu": torch.relu, "leaky_relu": lambda z: torch.nn.functional.leaky_relu(z, 0.01), "tanh": torch.tanh,
           "sigmoid": torch.sigmoid, "softplus": torch.nn.functional.softplus, "linear": lambda z: z}[hidden]
    Z2 = t["W2"] @ act(t["W1"] @ Xt + t["b1"]) + t["b2"]
    m = X.shape[1]
    if loss == "binary_crossentropy":
        J = torch.nn.functional.binary_cross_entropy_with_logits(Z2, Yt, reduction="sum") / m
    else:
        J = -(Yt * torch.log_softmax(Z2, dim=0)).sum() / m
    J.backward()
    grads = {f"d{k}": t[k].grad.numpy() for k in t}
    return float(J.detach()), grads, Xt.grad.numpy() * m


def _close(got, want, what):
    scale = max(float(np.max(np.abs(want))), 1e-300)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12 * scale, err_msg=what)


@pytest.mark.parametrize("output, loss, n_out", HEADS, ids=[h[0] for h in HEADS])
@pytest.mark.parametrize("hidden", HIDDEN)
def test_gradients_and_costs_match_pytorch_autograd(bk, hidden, output, loss, n_out):
    X, Y, params = _net(hidden, n_out)
    J_ref, g_ref, dA0_ref = _torch_reference(X, Y, params, hidden, loss)
    Xb, Yb = bk.asarray(X), bk.asarray(Y)
    pb = {k: bk.asarray(v) for k, v in params.items()}
    kw = dict(hidden_activation=hidden, output_activation=output)
    AL, caches = bpnet.L_model_forward(Xb, pb, **kw)
    probs = to_np(AL)
    assert probs.min() < 1e-290 and probs.min() > 0  # the extreme is really reached, and not rounded to 0
    for fused in (False, True):  # the course's start dA[L] = -(Y/A - ...) and the fused dZ[L] = A - Y
        grads = bpnet.L_model_backward(AL, Yb, caches, loss=loss, fused=fused, **kw)
        for k in ("dW1", "db1", "dW2", "db2"):
            _close(to_np(grads[k]), g_ref[k], f"{k}, fused={fused}")
        _close(to_np(grads["dA0"]), dA0_ref, f"dA0, fused={fused}")
    # the cost from A[L] (the course's compute_cost) and from the logits (what training reports)
    assert float(bpnet.compute_cost(AL, Yb, loss=loss)) == pytest.approx(J_ref, rel=1e-9)
    model = bpnet.MLP([3, 6, n_out], hidden_activation=hidden, dtype="float64", backend=bk, parameters=pb)
    assert model.evaluate(Xb, Yb)["cost"] == pytest.approx(J_ref, rel=1e-9)
