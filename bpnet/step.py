"""The training step: forward, fused backward and an in-place parameter update.

This is the kernel :meth:`bpnet.MLP.fit` runs every mini-batch and the one
``benchmarks/bench.py`` times.  It computes the same numbers as the course's
path (``_forward`` -> ``_backward(fused=True)`` -> a new-dict update), to
rounding, on any Array API namespace, but

* **updates the parameters and the optimiser moments in place**
  (``W -= dW``): the caller must own them.  :meth:`bpnet.MLP.fit` copies the
  model's parameters and optimiser state once at the start of each call and
  passes the copies; the course functions (``update_parameters``,
  ``update_parameters_with_*``, ``Optimizer.step``) are unchanged and still
  return new dicts;
* keeps only the activations ``A[0..L]`` for the backward pass, no ``Z``:
  each activation's derivative is computed from ``A``
  (:attr:`bpnet.activations.Activation.bwd_a`), and ``Z = W A`` gets its bias
  in place (``Z += b``), so the forward makes one ``(n_l, m)`` array per layer;
* starts from the fused ``dZ[L] = A[L] - Y`` computed in place in ``A[L]``,
  skips ``dA[0]``, and applies ``1/m`` (times the learning rate, for plain
  gradient descent) to the smaller of ``dZ[l]`` ``(n_l, m)`` and ``dW[l]``
  ``(n_l, n_{l-1})``;
* updates layer ``l`` as soon as its gradients exist (after
  ``dA[l-1] = W[l]^T dZ[l]`` has used the old ``W[l]``), so at most one layer's
  gradients are alive at a time; with gradient clipping, which needs the
  global norm first, all gradients are computed, clipped, then applied.

Nothing is brought to the host: the step count ``t`` is a Python int and the
learning rate a Python float (or a 0-d array of the parameters' device).
"""

from __future__ import annotations

import array_api_compat

__all__ = ["TrainState", "forward_train", "backward_update", "train_step"]

#: added to the global norm before dividing (as :func:`bpnet.optim.clip_gradients`)
_CLIP_EPS = 1e-6


class TrainState:
    """What the step mutates: the parameters (as lists, in place) and the optimiser state.

    Parameters
    ----------
    parameters : dict ``W1, b1, ..., WL, bL``
        Arrays the caller owns; they are updated in place (the dict's entries
        keep pointing at the same arrays).
    optimizer : :class:`bpnet.optim.Optimizer`
    state : dict from ``optimizer.init`` (``t``, and ``v``/``s`` moments the
        caller owns; updated in place, ``state["t"]`` is incremented).
    """

    __slots__ = ("parameters", "Ws", "bs", "name", "hyper", "state", "vW", "vb", "sW", "sb", "L", "ones")

    def __init__(self, parameters, optimizer, state):
        L = 0
        while f"W{L + 1}" in parameters:
            L += 1
        self.L = L
        self.parameters = parameters
        self.Ws = [parameters[f"W{l}"] for l in range(1, L + 1)]
        self.bs = [parameters[f"b{l}"] for l in range(1, L + 1)]
        self.name = optimizer.name
        self.hyper = optimizer.hyper
        self.state = state
        v, s = state.get("v"), state.get("s")
        self.vW = None if v is None else [v[f"dW{l}"] for l in range(1, L + 1)]
        self.vb = None if v is None else [v[f"db{l}"] for l in range(1, L + 1)]
        self.sW = None if s is None else [s[f"dW{l}"] for l in range(1, L + 1)]
        self.sb = None if s is None else [s[f"db{l}"] for l in range(1, L + 1)]
        self.ones = {}  # shape -> ones(shape): sums as GEMVs (faster than xp.sum for small arrays)

    def ones_column(self, xp, m):
        """Cached ones of shape ``(m, 1)``: ``db = dZ @ ones`` sums over the m columns."""
        return self._ones(xp, (m, 1))

    def ones_row(self, xp, n):
        """Cached ones of shape ``(1, n)``: ``ones @ E`` sums E's n rows (the softmax denominator)."""
        return self._ones(xp, (1, n))

    def _ones(self, xp, shape):
        o = self.ones.get(shape)
        if o is None:
            W = self.Ws[0]
            o = self.ones[shape] = xp.ones(shape, dtype=W.dtype, device=array_api_compat.device(W))
        return o


def forward_train(xp, X, Ws, bs, hidden, output, masks=None, ones_row=None):
    """Activations ``[A0 = X, A1, ..., AL]`` and, with dropout, the unmasked ``g(Z[l])``.

    ``Z[l] = W[l] A[l-1]`` then ``Z[l] += b[l]`` in place (one ``(n_l, m)``
    array, not two); ``A[l] = g(Z[l])`` (times ``masks[l-1]`` with dropout).
    ``ones_row`` (ones of shape ``(1, n_L)``, :meth:`TrainState.ones_row`) lets a
    softmax output sum its column as a GEMV.
    """
    acts = [X]
    gs = None if masks is None else []
    A = X
    L = len(Ws)
    for l in range(L):
        Z = Ws[l] @ A
        Z += bs[l]
        if l < L - 1:
            A = hidden.fwd(xp, Z)
            if masks is not None:
                gs.append(A)
                A = A * masks[l]
        else:
            A = output.fwd(xp, Z) if output.fwd_ip is None else output.fwd_ip(xp, Z, ones_row)
        acts.append(A)
    return acts, gs


def _update(xp, ts, l, theta, g, p, t, lr, folded):
    """theta -= update(g) in place for the optimiser of ``ts``; g is owned (may be overwritten)."""
    name = ts.name
    if name == "gd":
        if not folded:
            g *= lr
        theta -= g  # theta <- theta - lr d theta
        return
    h = ts.hyper
    if name == "momentum":
        v = (ts.vW if p == "W" else ts.vb)[l]
        beta = h["beta"]
        v *= beta
        g *= 1 - beta
        v += g  # v = beta v + (1 - beta) d theta
        theta -= lr * v
        return
    if name == "rmsprop":
        s = (ts.sW if p == "W" else ts.sb)[l]
        beta2 = h["beta2"]
        s *= beta2
        s += (1 - beta2) * (g * g)  # s = beta2 s + (1 - beta2) d theta^2
        D = xp.sqrt(s)
        D += h["epsilon"]
        g *= lr
        g /= D
        theta -= g
        return
    # adam
    v = (ts.vW if p == "W" else ts.vb)[l]
    s = (ts.sW if p == "W" else ts.sb)[l]
    beta1, beta2 = h["beta1"], h["beta2"]
    v *= beta1
    v += (1 - beta1) * g  # v = beta1 v + (1 - beta1) d theta
    g *= g
    g *= 1 - beta2
    s *= beta2
    s += g  # s = beta2 s + (1 - beta2) d theta^2
    D = xp.sqrt(s / (1 - beta2**t))  # sqrt(s_hat)
    D += h["epsilon"]
    U = v * (lr / (1 - beta1**t))  # lr v_hat
    U /= D
    theta -= U


def backward_update(xp, acts, Y, ts, hidden, lr, *, gs=None, masks=None, l2=0.0, clip_norm=None):
    """Fused backward from ``dZ[L] = A[L] - Y`` and the in-place update of ``ts``.

    ``acts`` from :func:`forward_train` (its last entry is overwritten with
    ``dZ[L]``); ``lr`` a Python float (or 0-d array); ``l2`` adds
    ``(l2 / m) W`` to ``dW``; ``clip_norm`` rescales all gradients to that
    global L2 norm before any update.
    """
    Ws, bs = ts.Ws, ts.bs
    L = len(Ws)
    m = Y.shape[1]
    t = int(ts.state["t"]) + 1
    ts.state["t"] = t
    # plain gradient descent folds lr into the 1/m factor: one pass fewer
    folded = ts.name == "gd" and clip_norm is None and isinstance(lr, float)
    c = lr / m if folded else 1.0 / m
    l2c = (l2 / m) * (lr if folded else 1.0)
    pending = [] if clip_norm is not None else None
    ones = ts.ones_column(xp, m)
    dZ = acts[L]
    dZ -= Y  # dZ[L] = A[L] - Y, in place in A[L]
    for l in range(L - 1, -1, -1):
        W = Ws[l]
        A_prev = acts[l]
        dA = W.T @ dZ if l > 0 else None  # dA[l-1] = W^T dZ with the old W
        if m <= W.shape[1]:  # dZ (n_l, m) no larger than dW (n_l, n_prev): scale dZ
            dZ *= c
            dW = dZ @ A_prev.T
            db = dZ @ ones  # sum over the m columns
        else:
            dW = dZ @ A_prev.T
            dW *= c
            db = dZ @ ones  # sum over the m columns
            db *= c
        if l2:
            dW += l2c * W  # dW += (lambda / m) W
        if folded and pending is None:  # gradient descent, lr already applied
            W -= dW
            bs[l] -= db
        elif pending is None:
            _update(xp, ts, l, W, dW, "W", t, lr, folded)
            _update(xp, ts, l, bs[l], db, "b", t, lr, folded)
        else:
            pending.append((l, dW, db))
        if l > 0:
            if masks is None:
                dZ = hidden.bwd_a(xp, dA, A_prev)  # dZ = dA * g'(Z) from A
            else:
                dA *= masks[l - 1]  # dropout backward
                dZ = hidden.bwd_a(xp, dA, gs[l - 1])
    if pending is not None:
        total_sq = None
        for _, dW, db in pending:
            sq = xp.sum(dW * dW) + xp.sum(db * db)
            total_sq = sq if total_sq is None else total_sq + sq
        total = xp.sqrt(total_sq)
        scale = xp.minimum(xp.ones_like(total), clip_norm / (total + _CLIP_EPS))
        for l, dW, db in pending:
            dW *= scale
            db *= scale
            _update(xp, ts, l, Ws[l], dW, "W", t, lr, folded)
            _update(xp, ts, l, bs[l], db, "b", t, lr, folded)


def train_step(xp, X, Y, ts, hidden, output, lr, **kw):
    """One step: :func:`forward_train` then :func:`backward_update` (returns None).

    For the fused pairs only (sigmoid + binary cross-entropy, softmax +
    categorical cross-entropy, linear + mse).  ``ts`` (:class:`TrainState`) is
    updated in place.
    """
    acts, gs = forward_train(xp, X, ts.Ws, ts.bs, hidden, output, kw.get("masks"),
                             ones_row=ts.ones_row(xp, ts.Ws[-1].shape[0]))
    backward_update(xp, acts, Y, ts, hidden, lr, gs=gs, **kw)
