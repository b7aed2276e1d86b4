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
  (:attr:`bpnet.activations.Activation.bwd_a`), and ``Z = W A`` gets its
  bias in place (``Z += b``);
* starts from the fused ``dZ[L] = A[L] - Y`` computed in place in ``A[L]``
  and scales it once by ``1/m`` (times the learning rate, for plain gradient
  descent): every later quantity (``dW``, ``db``, ``dZ[l-1]``) is linear in
  ``dZ[L]``, so it carries the factor with no further pass; ``dA[0]`` is
  never computed;
* updates layer ``l`` as soon as its gradients exist (after
  ``dZ[l-1] = (W[l]^T dZ[l]) * g'(Z[l-1])`` has used the old ``W[l]``), so
  at most one layer's gradients are alive at a time; with gradient clipping,
  which needs the global norm first, all gradients are computed, clipped,
  then applied.

The standard has no ``out=``, so large arrays are processed in blocks
(slices and ``__setitem__``, both in the standard) to keep the temporaries
small.  A hidden activation larger than 1/10 of the step's working set
(parameters + gradients + activations) gets ``A = g(Z)`` written over ``Z``
row block by row block, and ``dZ[l-1]`` written over the cached ``A[l-1]``
(once ``dW[l] = dZ[l] A[l-1]^T`` has used it) column block by column block,
``W^T dZ[:, s]``, in blocks of about 1/20 of that set (at least
:data:`BLOCK_BYTES`); so the step's peak memory stays within ~1.1x of the
working set at any batch size.  Plain gradient descent updates a ``W`` of at
least two :data:`W_BLOCK_BYTES` blocks row block by row block,
``W[s] -= c dZ[s] A^T``: each block of ``dW`` is subtracted while in cache
and no full ``dW`` exists.  Smaller arrays are processed whole, which is
faster.

Nothing is brought to the host: the step count ``t`` is a Python int and the
learning rate a Python float (or a 0-d array of the parameters' device).
"""

from __future__ import annotations

from typing import NamedTuple

import array_api_compat

from .optim import _CLIP_EPS, _n_layers

__all__ = ["TrainState", "forward_train", "backward_update", "train_step", "BLOCK_BYTES", "W_BLOCK_BYTES"]

#: smallest block (bytes) of the in-place passes on a CPU: below ~256 KiB the
#: per-block call overhead costs more than the memory saved.
BLOCK_BYTES = 256 << 10
#: on a GPU only very large arrays are cut: small kernels leave the device idle
GPU_BLOCK_BYTES = 32 << 20
#: a block is about 1/20 of the step's working set (parameters + gradients +
#: activations), and only an array over twice that (1/10 of the set: one such
#: temporary would take the peak past 1.1x) is cut; a block's temporaries
#: (W^T dZ, the 0/1 factor of relu, ...) are about twice its size, so the
#: step's peak stays within ~1.1x of that set
_BLOCK_FRACTION = 20
#: row blocks of ``W -= c dZ A^T`` (plain gradient descent) for a ``W`` of at
#: least two of them: each block of ``dW`` is subtracted while in cache (a
#: 16 MiB block measured fastest here: 32 MiB of L3), and no full ``dW`` exists
W_BLOCK_BYTES = 16 << 20
GPU_W_BLOCK_BYTES = 1 << 40  # cuBLAS: one GEMM per layer


def _block_budget(xp, Ws, m, min_bytes):
    """Bytes per block for a step on ``m`` examples (see :data:`BLOCK_BYTES`)."""
    item = xp.finfo(Ws[0].dtype).bits // 8
    n_params = sum(W.shape[0] * (W.shape[1] + 1) for W in Ws)
    n_acts = (Ws[0].shape[1] + sum(W.shape[0] for W in Ws)) * m  # A[0..L]
    return max(min_bytes, (2 * n_params + n_acts) * item // _BLOCK_FRACTION)


class Blocks(NamedTuple):
    """How an ``(n, m)`` hidden activation is cut: nearly equal row and column slices.

    The forward's ``A = g(Z)`` runs over ``rows`` (contiguous); the backward's
    ``dZ[l-1] = (W^T dZ) * g'`` over ``cols`` (``W^T dZ[:, s]`` keeps the
    GEMM's two large dimensions, so it runs at full speed).
    """

    rows: list
    cols: list


def _cut_rows(n, row_bytes, block_bytes):
    """Row slices of about ``block_bytes`` for an ``(n, .)`` array of at least two such blocks, else None."""
    k = (n * row_bytes) // max(1, block_bytes)  # floor: blocks of at least block_bytes
    return _split(n, min(k, n)) if k >= 2 else None


def _split(n, k):
    """``k`` nearly equal consecutive slices of ``range(n)``."""
    return [slice((i * n) // k, ((i + 1) * n) // k) for i in range(k)]


def _cut(n, m, item, budget):
    """:class:`Blocks` of about ``budget`` bytes for an ``(n, m)`` array over twice that, else None."""
    k = -(-(n * m * item) // max(1, budget))  # ceil
    if k <= 2 or min(n, m) <= 1:
        return None
    return Blocks(_split(n, min(k, n)), _split(m, min(k, m)))


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

    __slots__ = ("Ws", "bs", "name", "hyper", "state", "vW", "vb", "sW", "sb",
                 "_block_bytes", "_batch", "_w_block_bytes", "w_rows")

    def __init__(self, parameters, optimizer, state):
        L = _n_layers(parameters)
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
        xp = array_api_compat.array_namespace(self.Ws[0])
        gpu = array_api_compat.is_cupy_namespace(xp)
        self.block_bytes = GPU_BLOCK_BYTES if gpu else BLOCK_BYTES
        self.w_block_bytes = GPU_W_BLOCK_BYTES if gpu else W_BLOCK_BYTES

    @property
    def block_bytes(self):
        """Smallest block in bytes (:data:`BLOCK_BYTES`, :data:`GPU_BLOCK_BYTES` on cupy)."""
        return self._block_bytes

    @block_bytes.setter
    def block_bytes(self, value):
        self._block_bytes = int(value)
        self._batch = {}  # m -> TrainState.batch

    @property
    def w_block_bytes(self):
        """Row-block size of the blocked gradient-descent update (:data:`W_BLOCK_BYTES`)."""
        return self._w_block_bytes

    @w_block_bytes.setter
    def w_block_bytes(self, value):
        self._w_block_bytes = int(value)
        item = array_api_compat.array_namespace(self.Ws[0]).finfo(self.Ws[0].dtype).bits // 8
        #: row slices of each W for the blocked update, or None: updated whole
        self.w_rows = [_cut_rows(W.shape[0], W.shape[1] * item, self._w_block_bytes) for W in self.Ws]

    def blocks(self, xp, m):
        """How each hidden activation ``A[1..L-1]`` ``(n_l, m)`` is cut, or None if none is.

        A list of (:class:`Blocks` or None) per hidden layer (cached in :meth:`batch`).
        """
        budget = _block_budget(xp, self.Ws, m, self._block_bytes)
        item = xp.finfo(self.Ws[0].dtype).bits // 8
        out = [_cut(W.shape[0], m, item, budget) for W in self.Ws[:-1]]
        return out if any(b is not None for b in out) else None

    def batch(self, xp, m):
        """``(ones (m, 1), ones (1, n_L), blocks(m))`` for a batch of ``m``, cached: one lookup a step.

        The ones turn sums into GEMVs (faster than ``xp.sum`` for small arrays):
        ``db = dZ @ ones`` over the m columns, and ``ones @ E`` over the n_L rows
        of a softmax output (its denominator).
        """
        got = self._batch.get(m)
        if got is None:
            W = self.Ws[0]
            dev = array_api_compat.device(W)
            got = self._batch[m] = (xp.ones((m, 1), dtype=W.dtype, device=dev),
                                    xp.ones((1, self.Ws[-1].shape[0]), dtype=W.dtype, device=dev),
                                    self.blocks(xp, m))
        return got


def forward_train(xp, X, Ws, bs, hidden, output, masks=None, ones_row=None, blocks=None):
    """Activations ``[A0 = X, A1, ..., AL]`` and, with dropout, the unmasked ``g(Z[l])``.

    ``Z[l] = W[l] A[l-1]`` then ``Z[l] += b[l]`` and ``A[l] = g(Z[l])`` (written
    over ``Z[l]`` row block by row block when ``blocks`` cuts it, see
    :data:`BLOCK_BYTES`), times ``masks[l-1]`` with dropout.  ``ones_row``
    (ones of shape ``(1, n_L)``, from :meth:`TrainState.batch`) lets a softmax
    output sum its column as a GEMV; ``blocks`` (:meth:`TrainState.blocks`)
    says how each hidden activation is cut (None: each in one piece).
    """
    acts = [X]
    gs = None if masks is None else []
    A = X
    L = len(Ws)
    for l in range(L):
        Z = Ws[l] @ A
        Z += bs[l]
        if l < L - 1:
            cut = None if blocks is None else blocks[l]
            if cut is None:
                A = hidden.fwd(xp, Z)
            else:
                for s in cut.rows:
                    Z[s, :] = hidden.fwd(xp, Z[s, :])  # A = g(Z) over Z, block by block
                A = Z
            if masks is not None:
                gs.append(A)
                A = A * masks[l]
        else:
            A = output.fwd(xp, Z) if output.fwd_ip is None else output.fwd_ip(xp, Z, ones_row)
        acts.append(A)
    return acts, gs


def _delta_prev(xp, W, dZ, A_prev, hidden, mask, g, cols):
    """``dZ[l-1] = (W^T dZ) * g'(Z[l-1])`` (times the dropout mask), over ``A_prev`` when cut.

    W : (n_l, n_prev) the layer's weights before the update; dZ : (n_l, m);
    A_prev : (n_prev, m) the cached ``A[l-1]`` (overwritten block by block
    when ``cols``, column slices, is given); mask, g : (n_prev, m) the dropout
    mask and the unmasked ``g(Z[l-1])``, or None.
    """
    gA = A_prev if g is None else g  # g'(Z[l-1]) from the unmasked activation
    if cols is None:
        dA = W.T @ dZ  # dA[l-1] = W^T dZ
        if mask is not None:
            dA *= mask  # dropout backward
        return hidden.bwd_a(xp, dA, gA)
    for s in cols:
        dA = W.T @ dZ[:, s]  # columns s of dA[l-1] = W^T dZ
        if mask is not None:
            dA *= mask[:, s]
        A_prev[:, s] = hidden.bwd_a(xp, dA, gA[:, s])  # dZ = dA * g'(Z), read before written
    return A_prev


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


def backward_update(xp, acts, Y, ts, hidden, lr, *, gs=None, masks=None, l2=0.0, clip_norm=None, batch=None):
    """Fused backward from ``dZ[L] = A[L] - Y`` and the in-place update of ``ts``.

    ``acts`` from :func:`forward_train` (overwritten: ``A[L]`` with ``c dZ[L]``,
    an ``A[l]`` cut in blocks with ``c dZ[l]``; ``A[0]`` is never written);
    ``lr`` a Python float (or 0-d array); ``l2`` adds ``(l2 / m) W`` to
    ``dW``; ``clip_norm`` rescales all gradients to that global L2 norm before
    any update; ``batch`` is :meth:`TrainState.batch` for this batch size
    (looked up when not given).
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
    gd = folded and pending is None  # W -= dW right away, lr already applied
    w_rows = ts.w_rows if gd else None
    ones, _, blocks = ts.batch(xp, m) if batch is None else batch
    dZ = acts[L]
    dZ -= Y  # dZ[L] = A[L] - Y, in place in A[L]
    dZ *= c  # c dZ[L]: dW, db and every dZ[l-1] below are linear in it, so they carry c
    for l in range(L - 1, -1, -1):
        W, A_prev = Ws[l], acts[l]
        cut = None if (blocks is None or l == 0) else blocks[l - 1]
        # plain gradient descent on a large W: W -= c dZ A^T block by block, each
        # block of dW used from cache and no full dW (not when dZ[l-1] overwrites A[l-1])
        wrows = None if (w_rows is None or cut is not None) else w_rows[l]
        if wrows is None:
            dW = dZ @ A_prev.T  # dW = dZ A[l-1]^T (times c)
            if l2:
                dW += l2c * W  # dW += (lambda / m) W
        db = dZ @ ones  # db = sum of dZ over the m columns (times c), a GEMV
        dZ_prev = None
        if l > 0:  # with the old W; A[l-1] is free once dW has it
            if cut is None and masks is None:
                dZ_prev = hidden.bwd_a(xp, W.T @ dZ, A_prev)  # dZ[l-1] = (W^T dZ) * g'(Z[l-1])
            else:
                dZ_prev = _delta_prev(xp, W, dZ, A_prev, hidden, None if masks is None else masks[l - 1],
                                      None if gs is None else gs[l - 1], None if cut is None else cut.cols)
        if wrows is not None:
            for s in wrows:
                G = dZ[s, :] @ A_prev.T  # rows s of dW
                if l2:
                    G += l2c * W[s, :]
                W[s, :] -= G
            bs[l] -= db
        elif gd:
            W -= dW
            bs[l] -= db
        elif pending is None:
            _update(xp, ts, l, W, dW, "W", t, lr, folded)
            _update(xp, ts, l, bs[l], db, "b", t, lr, folded)
        else:
            pending.append((l, dW, db))
        dZ = dZ_prev
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


def train_step(xp, X, Y, ts, hidden, output, lr, masks=None, **kw):
    """One step: :func:`forward_train` then :func:`backward_update` (returns None).

    For the fused pairs only (sigmoid + binary cross-entropy, softmax +
    categorical cross-entropy, linear + mse).  ``ts`` (:class:`TrainState`) is
    updated in place.
    """
    batch = ts.batch(xp, X.shape[1])
    acts, gs = forward_train(xp, X, ts.Ws, ts.bs, hidden, output, masks, ones_row=batch[1], blocks=batch[2])
    backward_update(xp, acts, Y, ts, hidden, lr, gs=gs, masks=masks, batch=batch, **kw)
