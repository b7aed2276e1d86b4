"""The training step: forward, backward from ``dZ[L]`` and an in-place update, for every output/loss pair.

This is the kernel every training path runs (``MLP.fit``, ``L_layer_model``,
the Dask workers, ``bpnet explain``) and the one ``benchmarks/bench.py``
times.  It computes the numbers of the course's path to rounding, on any
Array API namespace, but

* **updates the parameters and optimiser moments in place** (``W -= dW``)
  with each rule's ``update_`` (:mod:`bpnet.optim.rules`): the caller owns them.
  Every write is an augmented assignment to a name, a list item or a dict
  item (``Ws[l] -= dW``, ``mo["v"] *= beta``), so on a namespace whose arrays
  are immutable (JAX) the same code rebinds them to new arrays: one
  implementation of the math for both.  There :class:`TrainState` keeps the
  new arrays, blocks are never cut (they write slices), and :func:`train_step`
  runs the whole step as one compiled call (``jax.jit``, see
  :func:`bpnet.backends.compiler`);
* keeps only the activations ``A[0..L]``, no ``Z`` (every derivative is
  written through ``A``), and adds the bias in place (``Z = W A; Z += b``);
* starts from ``dZ[L] = A[L] - Y`` for a loss's canonical output, else from
  ``dZ[L] = dL/dA[L] * g'(A[L])``, computed in ``A[L]``'s memory, and scales it
  once by ``1/m`` (times the learning rate for plain gradient descent): every
  later quantity (``dW``, ``db``, ``dZ[l-1]``) is linear in ``dZ[L]``;
  ``dA[0]`` is never computed;
* updates layer l as soon as its gradients exist (after ``dZ[l-1]`` used the
  old ``W[l]``); with clipping, which needs the global norm first, all
  gradients are computed, clipped, then applied (:func:`apply_gradients`).

The standard has no ``out=``, so large arrays are processed in blocks
(slices and ``__setitem__``): a hidden activation over 1/10 of the step's
working set gets ``A = g(Z)`` written over ``Z`` row block by row block and
``dZ[l-1]`` written over ``A[l-1]`` column block by column block, in blocks of
about 1/20 of that set (at least :data:`BLOCK_BYTES`), so the peak stays
within ~1.1x of the working set; plain gradient descent updates a large ``W``
row block by row block (``W[s] -= c dZ[s] A^T``, no full ``dW``).

Nothing is brought to the host: ``t`` is a Python int, the learning rate a
Python float (or a 0-d array of the parameters' device); a compiled step
takes both as weakly typed 0-d device arrays, kept between its calls.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple

import array_api_compat

from .._validate import n_layers, n_parameters
from ..backends import compiler, fast, numpy_backed
from ..nn import Activation, Loss, predictions
from ..optim.rules import clip_scale

__all__ = ["Net", "TrainState", "Snapshot", "Pack", "Blocks", "forward_train", "backward_update", "apply_gradients",
           "train_step", "batch_metrics", "cut", "split", "BLOCK_BYTES", "W_BLOCK_BYTES", "PACK_BYTES"]

#: smallest block (bytes) of the in-place passes on a CPU: below ~256 KiB the
#: per-block call overhead costs more than the memory saved
BLOCK_BYTES = 256 << 10
#: on a GPU only very large arrays are cut: small kernels leave the device idle
GPU_BLOCK_BYTES = 32 << 20
#: a block is about 1/20 of the working set (parameters + gradients + activations); only an array
#: over twice that is cut; a block's temporaries are about twice its size, so the peak stays ~1.1x
BLOCK_FRACTION = 20
#: an owning :class:`TrainState` (``own=True``) packs every parameter of at most this many bytes, with its
#: optimiser moments, into flat buffers: the step updates all of them with one call of the rule per step
#: (per-call overhead dominates arrays this small; larger ones are updated alone, as soon as their gradient exists)
PACK_BYTES = 256 << 10
#: row blocks of ``W -= c dZ A^T`` (plain gradient descent) for a ``W`` of at least two of them:
#: each block of ``dW`` is subtracted while in cache (16 MiB measured fastest: 32 MiB of L3)
W_BLOCK_BYTES = 16 << 20
GPU_W_BLOCK_BYTES = 1 << 40  # cuBLAS: one GEMM per layer
#: numpy's BLAS (OpenBLAS) computes a float32 ``dW = dZ A^T`` of a layer of at most this many units from at
#: least :data:`DW_T_MIN_INPUTS` inputs over a batch of at least :data:`DW_T_MIN_BATCH` examples faster as
#: ``(A dZ^T)^T``: 0.55-0.9x the time of the direct product and its update ``W -= dW`` together (10-32 units,
#: 128-784 inputs, batches 64-512).  Below those sizes the column-major ``dW`` costs more in the update than the
#: product saves (1.05-1.4x over 32-64 inputs or 32 examples); wider layers, float64 and torch's BLAS: the
#: direct product
DW_T_MAX_UNITS, DW_T_MIN_INPUTS, DW_T_MIN_BATCH = 32, 128, 64


@dataclass(frozen=True)
class Net:
    """What the step computes with: hidden and output activations and the loss (registry entries).

    ``fused``: ``dZ[L] = A[L] - Y`` exactly (the output is the loss's canonical one).
    ``weighted``: the last row of every ``Y`` holds the examples' weights (``MLP.fit(sample_weight=)``).
    """

    hidden: Activation
    output: Activation
    loss: Loss
    weighted: bool = False
    fused: bool = field(init=False)

    def __post_init__(self):
        object.__setattr__(self, "fused", self.output.name == self.loss.output)


class Blocks(NamedTuple):
    """How an ``(n, m)`` hidden activation is cut: ``rows`` for the forward, ``cols`` for the backward.

    ``W^T dZ[:, s]`` keeps the GEMM's two large dimensions, so it runs at full speed.
    """

    rows: list
    cols: list


def split(n, k):
    """``k`` nearly equal consecutive slices of ``range(n)``."""
    return [slice((i * n) // k, ((i + 1) * n) // k) for i in range(k)]


def cut(n, m, item, budget):
    """:class:`Blocks` of about ``budget`` bytes for an ``(n, m)`` array over twice that, else None."""
    k = -(-(n * m * item) // max(1, budget))  # ceil
    if k <= 2 or min(n, m) <= 1:
        return None
    return Blocks(split(n, min(k, n)), split(m, min(k, m)))


def _cut_rows(n, row_bytes, block_bytes):
    """Row slices of about ``block_bytes`` for an ``(n, .)`` array of at least two such blocks, else None."""
    k = (n * row_bytes) // max(1, block_bytes)  # floor: blocks of at least block_bytes
    return split(n, min(k, n)) if k >= 2 else None


class Pack(NamedTuple):
    """The small parameters of an owning :class:`TrainState` in flat buffers (1-D, the parameters' dtype).

    ``at[(p, l)]`` is the slice of parameter p (``"W"`` or ``"b"``) of layer l + 1 (0-based l) in ``P``;
    the state's arrays for it are views ``reshape(P[at], shape)`` (and ``reshape(M[slot][at], shape)``
    for its moments).  ``G`` receives their gradients during the step, written through ``grads[(p, l)]``,
    the same view of ``G`` (one ``__setitem__`` a gradient); the rule then updates ``P`` and ``M`` whole
    (every rule is elementwise: the numbers of one update per parameter).
    """

    P: object
    G: object
    M: dict
    at: dict
    grads: dict


class Snapshot:
    """A :class:`TrainState`'s arrays copied at one moment; :meth:`tree` lays them out as dicts when asked.

    Copying is a few calls (a packed state's flat buffers whole, the other arrays alone); the dicts,
    views of the copies, are built by the first :meth:`tree` (per-epoch copies that nobody reads cost
    only the copies).  Immutable arrays (JAX) are shared, not copied.
    """

    __slots__ = ("_ts", "_t", "_flat", "_alone", "_tree")

    def __init__(self, ts):
        self._tree = None
        if not ts.mutable:  # immutable arrays: the dicts are new, the arrays shared
            self._tree = (ts.parameters, ts.optimizer_state)
            return
        xp = array_api_compat.array_namespace(ts.Ws[0])
        pk, slots = ts.pack, ts.rule.slots
        self._ts, self._t = ts, ts.state["t"]
        #: the pack's buffers: {None: P, slot: M[slot]}
        self._flat = {} if pk is None else {k: xp.asarray(a, copy=True) for k, a in ((None, pk.P), *pk.M.items())}
        at = {} if pk is None else pk.at
        #: the unpacked arrays: {(p, l): {None: parameter, slot: moment}}
        self._alone = {(p, l): {None: xp.asarray(arrs[l], copy=True),
                                **{s: xp.asarray(ts.moments[p][l][s], copy=True) for s in slots}}
                       for p, arrs in (("W", ts.Ws), ("b", ts.bs)) for l in range(len(arrs)) if (p, l) not in at}

    def tree(self) -> tuple[dict, dict]:
        """``(parameters, optimizer_state)`` in :attr:`TrainState.parameters` / :attr:`TrainState.optimizer_state`'s
        layout: the copies (a packed array as a view of its copied buffer); the same dicts at every call."""
        if self._tree is None:
            ts, xp = self._ts, array_api_compat.array_namespace(self._ts.Ws[0])
            at = {} if ts.pack is None else ts.pack.at
            params, state = {}, {"t": self._t, **{s: {} for s in ts.rule.slots}}
            for l in range(len(ts.Ws)):
                for p, live in (("W", ts.Ws[l]), ("b", ts.bs[l])):
                    i = at.get((p, l))
                    for s in (None, *ts.rule.slots):
                        a = (self._alone[(p, l)][s] if i is None
                             else xp.reshape(self._flat[s][i], tuple(live.shape)))
                        if s is None:
                            params[f"{p}{l + 1}"] = a
                        else:
                            state[s][f"d{p}{l + 1}"] = a
            self._tree, self._ts, self._flat, self._alone = (params, state), None, None, None
        return self._tree


class TrainState:
    """What the step updates: the parameters (as lists) and the optimiser state.

    Parameters
    ----------
    parameters : dict ``W1, b1, ..., WL, bL``
        Arrays the caller owns; updated in place where the namespace allows it
        (the dict keeps pointing at them).  Read the current ones from
        :attr:`parameters` and :attr:`optimizer_state`: with immutable arrays
        (JAX) every step makes new ones.
    optimizer : :class:`bpnet.optim.Optimizer`
    state : dict from ``optimizer.init``: ``t`` and the moments the caller owns
        (updated in place; ``state["t"]`` is incremented).
    own : bool
        Work on copies instead (``parameters`` and ``state`` are only read): every
        parameter of at most :data:`PACK_BYTES`, with its moments, is copied into
        the flat buffers of a :class:`Pack`, which the step updates with one call
        of the rule (for writable arrays; immutable ones need no copy).
    """

    __slots__ = ("Ws", "bs", "rule", "hyper", "state", "moments", "mutable", "_block_bytes", "_batch",
                 "_w_block_bytes", "w_rows", "_compiled", "pack", "dW_T")

    def __init__(self, parameters, optimizer, state, *, own=False):
        L = n_layers(parameters)
        self.rule, self.hyper = optimizer.rule, optimizer.hyper
        #: False for immutable arrays (JAX): the step rebinds instead of writing, and is compiled
        self.mutable = array_api_compat.is_writeable_array(parameters["W1"])
        self.pack = None
        if own and self.mutable:
            parameters, state = self._owned(parameters, state, L)
        elif own:  # immutable arrays are shared; the dicts (and t) are the state's own
            state = {k: (dict(a) if isinstance(a, dict) else a) for k, a in state.items()}
        self.state = state
        self.Ws = [parameters[f"W{l}"] for l in range(1, L + 1)]
        self.bs = [parameters[f"b{l}"] for l in range(1, L + 1)]
        state["t"] = int(state["t"])  # a Python int: beta^t stays a Python float (numpy ints would promote)
        #: moments[p][l]: {slot: the moment array of parameter p ("W" or "b") of layer l + 1}
        self.moments = {p: [{s: state[s][f"d{p}{l}"] for s in self.rule.slots} for l in range(1, L + 1)]
                        for p in "Wb"}
        self._compiled = {}
        xp = array_api_compat.array_namespace(self.Ws[0])
        gpu = array_api_compat.is_cupy_namespace(xp)
        self.block_bytes = GPU_BLOCK_BYTES if gpu else BLOCK_BYTES
        #: dW_T[l]: layer l + 1's dW may be computed as (A dZ^T)^T (:data:`DW_T_MAX_UNITS`); :meth:`batch` says
        #: for which batch sizes
        blas = numpy_backed(xp)  # numpy's BLAS
        self.dW_T = [blas and W.dtype == xp.float32 and W.shape[0] <= DW_T_MAX_UNITS and W.shape[1] >= DW_T_MIN_INPUTS
                     for W in self.Ws]
        self.w_block_bytes = GPU_W_BLOCK_BYTES if gpu else W_BLOCK_BYTES

    def _owned(self, parameters, state, L):
        """Copies of ``parameters`` and ``state``: the small arrays packed (:attr:`pack`), the others alone."""
        W1 = parameters["W1"]
        xp, dev = array_api_compat.array_namespace(W1), array_api_compat.device(W1)
        item = xp.finfo(W1.dtype).bits // 8
        names = {(p, l): f"{p}{l + 1}" for l in range(L) for p in "Wb"}  # (p, 0-based l) -> "W1", "b1", ...
        at, n = {}, 0  # the small ones' slices of the flat buffers
        for pl, k in names.items():
            size = math.prod(parameters[k].shape)
            if size * item <= PACK_BYTES:
                at[pl], n = slice(n, n + size), n + size

        def flat(get):  # one buffer holding get(k) for every packed k, in its slice
            buf = xp.empty((n,), dtype=W1.dtype, device=dev)
            for pl, i in at.items():
                buf[i] = xp.reshape(get(names[pl]), (-1,))
            return buf

        def own(a, buf, pl):  # a packed array as a view of ``buf`` (the step writes through it), else a copy
            i = at.get(pl)
            return xp.asarray(a, copy=True) if i is None else xp.reshape(buf[i], tuple(a.shape))

        P = flat(lambda k: parameters[k]) if at else None
        M = {s: flat(lambda k, s=s: state[s][f"d{k}"]) if at else None for s in self.rule.slots}
        if at:
            G = xp.empty((n,), dtype=W1.dtype, device=dev)
            self.pack = Pack(P, G, M, at, {pl: xp.reshape(G[i], tuple(parameters[names[pl]].shape))
                                           for pl, i in at.items()})
        params = {k: own(parameters[k], P, pl) for pl, k in names.items()}
        own_state = {"t": state["t"]}
        for s in self.rule.slots:
            own_state[s] = {f"d{k}": own(state[s][f"d{k}"], M[s], pl) for pl, k in names.items()}
        return params, own_state

    def snapshot(self) -> tuple[dict, dict]:
        """``(parameters, optimizer_state)``: copies of the live arrays, in :attr:`parameters` /
        :attr:`optimizer_state`'s layout (``Snapshot(self).tree()``)."""
        return Snapshot(self).tree()

    @property
    def buffers(self) -> list:
        """Arrays holding every parameter between them (the pack's flat buffer and the unpacked ones)."""
        pk = self.pack
        if pk is None:
            return self.Ws + self.bs
        return [pk.P] + [a for p, arrs in (("W", self.Ws), ("b", self.bs))
                         for l, a in enumerate(arrs) if (p, l) not in pk.at]

    @property
    def parameters(self) -> dict:
        """``W1, b1, ...``: the live arrays (not copies)."""
        return {f"{p}{l + 1}": a for l in range(len(self.Ws)) for p, a in (("W", self.Ws[l]), ("b", self.bs[l]))}

    @property
    def optimizer_state(self) -> dict:
        """``{"t": ..., slot: {"dW1": ..., ...}}``, the :meth:`bpnet.optim.Optimizer.init` layout: the live arrays."""
        out = {"t": self.state["t"]}
        for s in self.rule.slots:
            out[s] = {f"d{p}{l + 1}": self.moments[p][l][s] for l in range(len(self.Ws)) for p in "Wb"}
        return out

    def assign(self, parameters, state) -> None:
        """Take the values of ``parameters`` and ``state`` (the :attr:`parameters` / :attr:`optimizer_state`
        layout, arrays of this state's namespace, device and dtype): written into the live arrays where they
        are writable (whoever holds them sees the new values), else rebound (JAX)."""

        def put(old, new):
            if not self.mutable:
                return new
            old[...] = new
            return old

        for l in range(len(self.Ws)):
            self.Ws[l] = put(self.Ws[l], parameters[f"W{l + 1}"])
            self.bs[l] = put(self.bs[l], parameters[f"b{l + 1}"])
            for p in "Wb":
                mo = self.moments[p][l]
                for s in self.rule.slots:
                    mo[s] = put(mo[s], state[s][f"d{p}{l + 1}"])
        self.state["t"] = int(state["t"])

    @property
    def layer_dims(self) -> list[int]:
        """``[n_0, n_1, ..., n_L]``, from the weights' shapes."""
        return [self.Ws[0].shape[1]] + [W.shape[0] for W in self.Ws]

    @property
    def itemsize(self) -> int:
        """Bytes of one parameter (float32: 4, float64: 8)."""
        return array_api_compat.array_namespace(self.Ws[0]).finfo(self.Ws[0].dtype).bits // 8

    @property
    def n_params(self) -> int:
        """Parameters of the network (:func:`bpnet._validate.n_parameters`)."""
        return n_parameters(self.layer_dims)

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
        item = self.itemsize
        #: row slices of each W for the blocked update, or None: updated whole (always, for immutable arrays)
        self.w_rows = [_cut_rows(W.shape[0], W.shape[1] * item, self._w_block_bytes) if self.mutable else None
                       for W in self.Ws]

    def blocks(self, m):
        """How each hidden activation ``A[1..L-1]`` ``(n_l, m)`` is cut (a list of Blocks or None), or None
        (always for immutable arrays: a block is written with ``__setitem__``)."""
        if not self.mutable:
            return None
        item, dims = self.itemsize, self.layer_dims
        n_acts = sum(dims) * m  # A[0..L]
        budget = max(self._block_bytes, (2 * self.n_params + n_acts) * item // BLOCK_FRACTION)
        out = [cut(W.shape[0], m, item, budget) for W in self.Ws[:-1]]
        return out if any(b is not None for b in out) else None

    def batch(self, xp, m):
        """``(ones (m, 1), ones (1, n_L), blocks(m), dW_T)`` for a batch of ``m``, cached: one lookup a step.

        The ones turn sums into GEMVs, faster than ``xp.sum`` for small arrays:
        ``db = dZ @ ones``, and ``ones @ E``, a softmax output's denominator.
        ``dW_T[l]``: layer l + 1's ``dW`` is computed as ``(A dZ^T)^T`` in a batch of ``m``
        (:attr:`dW_T`, and ``m >=`` :data:`DW_T_MIN_BATCH`).
        """
        got = self._batch.get(m)
        if got is None:
            W = self.Ws[0]
            dev = array_api_compat.device(W)
            got = self._batch[m] = (xp.ones((m, 1), dtype=W.dtype, device=dev),
                                    xp.ones((1, self.Ws[-1].shape[0]), dtype=W.dtype, device=dev),
                                    self.blocks(m), [t and m >= DW_T_MIN_BATCH for t in self.dW_T])
        return got


def forward_train(xp, X, Ws, bs, net, masks=None, ones_row=None, blocks=None):
    """``(acts, gs, ZL)``: the activations ``[A0 = X, A1, ..., AL]``, with dropout the unmasked
    ``g(Z[l])`` (else None), and the output layer's pre-activation ``Z[L]`` (shifted by its column
    max for a softmax output: the same logits for the cost; for a linear output, ``A[L]`` itself).

    ``Z[l] = W[l] A[l-1]; Z[l] += b[l]; A[l] = g(Z[l])`` (over ``Z[l]`` block by
    block where ``blocks`` cuts it), times ``masks[l-1]`` with dropout.
    ``ones_row`` (``(1, n_L)``, :meth:`TrainState.batch`) lets a softmax output
    sum its columns as a GEMV.
    """
    acts = [X]
    gs = None if masks is None else []
    A = X
    L = len(Ws)
    for l in range(L):
        Z = Ws[l] @ A
        Z += bs[l]
        if l < L - 1:
            rows = None if blocks is None or blocks[l] is None else blocks[l].rows
            if rows is None:
                A = net.hidden.forward(xp, Z)
            else:
                for s in rows:
                    Z[s, :] = net.hidden.forward(xp, Z[s, :])  # A = g(Z) over Z, block by block
                A = Z
            if masks is not None:
                gs.append(A)
                A = A * masks[l]
        elif net.output.forward_inplace is not None:
            A = net.output.forward_inplace(xp, Z, ones_row)
        else:
            A = net.output.forward(xp, Z)
        acts.append(A)
    return acts, gs, Z


def batch_metrics(xp, AL, Y, net, ZL=None, labels=None):
    """``(m J, hits)`` of a batch: its cost times its size, and correct predictions (None for regression).

    The cost comes from the logits ``ZL`` when given and the output is the loss's canonical one (exact
    where ``A[L]`` has saturated), else from ``AL``; the predictions from ``AL``
    (:func:`bpnet.nn.losses.predictions`, as :meth:`bpnet.MLP.predict` makes them).  Both 0-d device
    arrays (no host sync); call before the backward pass overwrites ``AL``.  With ``net.weighted``
    (weights ``w``, the last row of ``Y``) ``J = sum(w l) / sum(w)``, scikit-learn's weighted mean; hits
    are not weighted.  ``labels``, ``argmax(Y, axis=0)`` of a multiclass batch, saves computing it.
    """
    loss = net.loss
    logits = ZL is not None and net.fused
    if net.weighted:
        Y, w = Y[:-1, :], Y[-1:, :]
        w = w * (AL.shape[1] / xp.sum(w))  # mean 1: sum(w l) / m is then sum(w l) / sum(w)
        cost = (loss.logit_cost(xp, ZL, Y, w) if logits else loss.cost(xp, AL, Y, w)) * AL.shape[1]
    else:
        cost = (loss.logit_cost(xp, ZL, Y) if logits else loss.cost(xp, AL, Y)) * AL.shape[1]
    if loss.task == "regression":
        return cost, None
    pred = predictions(xp, AL, loss.task)
    if loss.task == "multiclass":
        right = pred == (xp.argmax(Y, axis=0) if labels is None else labels)
    else:
        right = pred == (Y > 0.5)
        if AL.shape[0] > 1:  # multi-label: a column is right when all its units are
            right = xp.all(right, axis=0)
    return cost, xp.sum(xp.astype(right, AL.dtype))


def _delta_prev(xp, W, dZ, A_prev, hidden, mask, g, cols):
    """``dZ[l-1] = (W^T dZ) * g'(Z[l-1])`` (times the dropout mask), over ``A_prev`` when cut.

    W : (n_l, n_prev), the weights before the update; dZ : (n_l, m); A_prev :
    (n_prev, m), the cached ``A[l-1]`` (overwritten block by block when ``cols``,
    column slices, is given); mask, g : (n_prev, m), the dropout mask and the
    unmasked ``g(Z[l-1])``, or None.
    """
    gA = A_prev if g is None else g  # g'(Z[l-1]) from the unmasked activation
    if cols is None:
        dA = W.T @ dZ  # dA[l-1] = W^T dZ
        if mask is not None:
            dA *= mask  # dropout backward
        return hidden.backward_(xp, dA, gA)
    for s in cols:
        dA = W.T @ dZ[:, s]  # columns s of dA[l-1] = W^T dZ
        if mask is not None:
            dA *= mask[:, s]
        A_prev[:, s] = hidden.backward_(xp, dA, gA[:, s])  # read before written
    return A_prev


def _seed(xp, acts, Y, net):
    """``dZ[L]`` in ``A[L]``'s memory: ``A[L] - Y``, or ``dL/dA[L] * g'(A[L])`` without a fused form."""
    AL = acts[-1]
    if net.fused:
        AL -= Y  # dZ[L] = A[L] - Y
        return AL
    return net.output.backward_(xp, net.loss.grad(xp, AL, Y), AL)


def backward_update(xp, acts, Y, ts, net, lr, *, gs=None, masks=None, l2=0.0, clip_norm=None, batch=None,
                    collect=False, scale=None):
    """Backward pass from ``dZ[L]`` and the in-place update of ``ts``.

    ``acts`` from :func:`forward_train` (overwritten: ``A[L]`` with ``c dZ[L]``,
    a cut ``A[l]`` with ``c dZ[l]``; ``A[0]`` never); ``lr`` a Python float (or
    0-d array); ``l2`` adds ``(l2 / m) W`` to ``dW``; ``clip_norm`` rescales all
    gradients to that global norm before any update; ``batch`` is
    :meth:`TrainState.batch` (looked up when not given).  ``collect=True``
    updates nothing and returns ``[(l, dW, db), ...]`` (l 0-based, from the
    top), the gradients times ``scale`` (default ``1/m``) instead of ``1/m``.
    With ``net.weighted`` (weights ``w``, the last row of ``Y``) column i of
    ``dZ[L]`` is scaled by ``w_i m / sum(w)`` and the L2 term by ``m / sum(w)``,
    scikit-learn's normalisation (all weights 1: the unweighted numbers); with
    ``scale`` by ``w_i`` alone (``scale`` then normalises).
    """
    Ws, bs = ts.Ws, ts.bs
    w = r = None
    if net.weighted:
        Y, w = Y[:-1, :], Y[-1:, :]
        if scale is None:
            r = Y.shape[1] / xp.sum(w)  # m / sum(w): 1/m times it divides by the sum of the weights
            w = w * r
    L, m = len(Ws), Y.shape[1]
    t = ts.state["t"] + (0 if collect else 1)
    ts.state["t"] = t
    # a rule linear in lr * g (plain gradient descent) folds lr into the 1/m factor: one pass fewer
    folded = ts.rule.folds_lr and clip_norm is None and not collect and isinstance(lr, float)
    c = (1.0 / m if scale is None else scale) * (lr if folded else 1.0)
    l2c = (l2 / m) * (lr if folded else 1.0)
    if r is not None:
        l2c = l2c * r  # lambda / sum(w)
    pending = [] if (clip_norm is not None or collect) else None
    w_rows = ts.w_rows if folded else None
    ones, _, blocks, dW_T = ts.batch(xp, m) if batch is None else batch
    dZ = _seed(xp, acts, Y, net)
    if w is not None:
        dZ *= w  # each example's weight
    dZ *= c  # c dZ[L]: dW, db and every dZ[l-1] below are linear in it, so they carry c
    for l in range(L - 1, -1, -1):
        W, A_prev = Ws[l], acts[l]
        cols = None if (blocks is None or l == 0 or blocks[l - 1] is None) else blocks[l - 1].cols
        # W -= c dZ A^T block by block, each block of dW used from cache, when no dZ[l-1] overwrites A[l-1]
        wrows = None if (w_rows is None or cols is not None) else w_rows[l]
        if wrows is None:
            dW = (A_prev @ dZ.T).T if dW_T[l] else dZ @ A_prev.T  # dW = dZ A[l-1]^T (times c)
            if l2:
                dW += l2c * W  # dW += (lambda / m) W
        # db = sum of dZ over the m columns (times c): a GEMV where that is faster (numpy, cupy, torch)
        db = dZ @ ones if ones is not None else xp.sum(dZ, axis=1, keepdims=True)
        dZ_prev = None
        if l > 0:  # with the old W; A[l-1] is free once dW has it
            if cols is None and masks is None:
                dZ_prev = net.hidden.backward_(xp, W.T @ dZ, A_prev)  # (W^T dZ) * g'(Z[l-1])
            else:
                dZ_prev = _delta_prev(xp, W, dZ, A_prev, net.hidden, None if masks is None else masks[l - 1],
                                      None if gs is None else gs[l - 1], cols)
        if wrows is not None:
            for s in wrows:
                G = dZ[s, :] @ A_prev.T  # rows s of dW
                if l2:
                    G += l2c * W[s, :]
                W[s, :] -= G  # gd with lr folded: theta -= g
            bs[l] -= db
        elif folded:  # a rule that folds lr (Rule.folds_lr) updates theta -= g
            Ws[l] -= dW
            bs[l] -= db
        elif pending is None:
            _update(xp, ts, l, dW, db, t, lr)
        else:
            pending.append((l, dW, db))
        dZ = dZ_prev
    if collect:
        return pending
    if pending is not None:
        apply_gradients(xp, ts, pending, lr, clip_norm=clip_norm, t=t)
    elif not folded:
        _flush(xp, ts, t, lr)
    return None


def _update(xp, ts, l, dW, db, t, lr):
    """Layer l's update: now, or (a packed parameter) its gradient into the pack, for :func:`_flush`."""
    pk = ts.pack
    if pk is None:
        # update_ returns theta: the same array where it was written in place, a new one for immutable arrays
        ts.Ws[l] = ts.rule.update_(xp, ts.Ws[l], dW, ts.moments["W"][l], t, lr, ts.hyper)
        ts.bs[l] = ts.rule.update_(xp, ts.bs[l], db, ts.moments["b"][l], t, lr, ts.hyper)
        return
    for p, g, arrs in (("W", dW, ts.Ws), ("b", db, ts.bs)):
        into = pk.grads.get((p, l))
        if into is None:
            arrs[l] = ts.rule.update_(xp, arrs[l], g, ts.moments[p][l], t, lr, ts.hyper)
        else:
            into[...] = g


def _flush(xp, ts, t, lr):
    """The packed parameters' update, all at once, from the gradients :func:`_update` put in the pack."""
    pk = ts.pack
    if pk is not None:
        ts.rule.update_(xp, pk.P, pk.G, pk.M, t, lr, ts.hyper)  # in place: the views see the new values


def apply_gradients(xp, ts, grads, lr, *, l2=0.0, m=1, clip_norm=None, t=None):
    """Apply ``grads = [(l, dW, db), ...]`` (owned: overwritten) to ``ts``.

    ``l2`` adds ``(l2 / m) W`` to each ``dW``; ``clip_norm`` rescales all of them
    to that global norm first.  ``t`` is the step number; when None the
    state's ``t`` is incremented and used.
    """
    if t is None:
        t = ts.state["t"] = ts.state["t"] + 1
    grads = [list(g) for g in grads]  # [l, dW, db]: written back below (rebound for immutable arrays)
    if l2:
        for g in grads:
            g[1] += (l2 / m) * ts.Ws[g[0]]  # dW += (lambda / m) W
    if clip_norm is not None:
        factor, _ = clip_scale(xp, [a for g in grads for a in g[1:]], clip_norm)
        for g in grads:
            g[1] *= factor
            g[2] *= factor
    for l, dW, db in grads:
        _update(xp, ts, l, dW, db, t, lr)
    _flush(xp, ts, t, lr)


def train_step(xp, X, Y, ts, net, lr, masks=None, *, metrics=False, l2=0.0, clip_norm=None, outputs=None):
    """One step on ``ts``: :func:`forward_train`, :func:`batch_metrics` when ``metrics``, :func:`backward_update`.

    X : (n_x, m); Y : (n_L, m) (plus a weights row with ``net.weighted``); masks : the dropout masks
    ``(n_l, m)`` of the hidden layers, or None.  Returns ``(m J, hits)`` (0-d device arrays; hits None
    for regression), ``(None, None)`` without ``metrics``.  ``outputs``, ``(A_out, Z_out)`` (writable
    ``(n_L, m)`` arrays, ``Z_out`` may be None), receives the step's ``A[L]`` and logits ``Z[L]`` before
    the backward pass overwrites them, for :func:`batch_metrics` over many steps at once (an epoch's
    columns of two buffers).  With immutable arrays the step runs as one compiled call
    (:func:`bpnet.backends.compiler`), compiled once per batch size and option set; otherwise it computes
    with :func:`bpnet.backends.fast` of ``xp`` (numpy: the same functions, ``max``, ``min`` and ``astype``
    without numpy's Python-level dispatch).
    """
    if not ts.mutable:
        return _compiled_step(xp, ts, net, X.shape[1], masks is not None, metrics, l2, clip_norm)(X, Y, lr, masks)
    xp = fast(xp)  # numpy: max and astype without numpy's Python-level dispatch (a small step's largest overhead)
    batch = ts.batch(xp, X.shape[1])
    acts, gs, ZL = forward_train(xp, X, ts.Ws, ts.bs, net, masks, ones_row=batch[1], blocks=batch[2])
    out = batch_metrics(xp, acts[-1], Y, net, ZL) if metrics else (None, None)
    if outputs is not None:  # before the backward pass overwrites A[L] (and Z[L], where it is A[L])
        outputs[0][...] = acts[-1]
        if outputs[1] is not None:
            outputs[1][...] = ZL
    backward_update(xp, acts, Y, ts, net, lr, gs=gs, masks=masks, l2=l2, clip_norm=clip_norm, batch=batch)
    return out


#: the compiled pure steps, shared by every :class:`TrainState` (a new fit of the same network and options
#: reuses the compiled code): ``(options, rule, hyper-parameters) -> compiled function``, at most
#: :data:`COMPILED_STEPS` of them (the oldest is dropped)
_STEPS: dict = {}
COMPILED_STEPS = 64


def _pure_step(xp, net, m, rule, hyper, metrics, l2, clip_norm):
    """:func:`train_step` as one compiled pure function ``(Ws, bs, moments, t, X, Y, lr, masks) -> (Ws, bs,
    moments, t + 1, m J, hits)``: the same code, on a shell state holding the traced arrays."""
    key = (m, metrics, net.hidden.name, net.output.name, net.loss.name, net.weighted, float(l2), clip_norm,
           rule.name, tuple(sorted(hyper.items())), xp.__name__)
    step = _STEPS.get(key)
    if step is not None:
        return step

    def pure(Ws, bs, moments, t, X, Y, lr, masks):
        shell = TrainState.__new__(TrainState)
        shell.Ws, shell.bs, shell.moments, shell.state = list(Ws), list(bs), moments, {"t": t}
        # compiled: plain sums, which XLA fuses with their producers, instead of GEMVs with ones; no blocks
        shell.rule, shell.hyper, shell.mutable, shell.pack = rule, hyper, False, None
        shell._batch = {m: (None, None, None, [False] * len(Ws))}
        shell._block_bytes, shell.w_rows = BLOCK_BYTES, [None] * len(Ws)
        acts, gs, ZL = forward_train(xp, X, shell.Ws, shell.bs, net, masks)
        out = batch_metrics(xp, acts[-1], Y, net, ZL) if metrics else (None, None)
        backward_update(xp, acts, Y, shell, net, lr, gs=gs, masks=masks, l2=l2, clip_norm=clip_norm)
        return shell.Ws, shell.bs, shell.moments, shell.state["t"], *out

    if len(_STEPS) >= COMPILED_STEPS:
        del _STEPS[next(iter(_STEPS))]
    step = _STEPS[key] = compiler(xp)(pure)
    return step


def _compiled_step(xp, ts, net, m, dropout, metrics, l2, clip_norm):
    """``run(X, Y, lr, masks) -> (m J, hits)``: the compiled :func:`_pure_step`, bound to ``ts`` (cached on it);
    ``run`` stores the new arrays in ``ts``.

    ``t`` counts on the host (``ts.state["t"]``, a Python int) and is an argument of the compiled step, so
    it never recompiles for it.  ``t`` and a Python-float ``lr`` go in as weakly typed 0-d device arrays
    (they promote as the Python numbers do), kept between calls: the step returns ``t + 1`` on the
    device, and ``lr`` is converted only when it changes (a Python scalar argument costs a conversion
    per call, a large part of a small network's step).
    """
    key = (m, dropout, metrics, net.hidden.name, net.output.name, net.loss.name, net.weighted, float(l2), clip_norm)
    run = ts._compiled.get(key)
    if run is not None:
        return run
    step = _pure_step(xp, net, m, ts.rule, ts.hyper, metrics, l2, clip_norm)
    dev = array_api_compat.device(ts.Ws[0])
    held = {"t": (None, None), "lr": (None, None)}  # host value -> its device scalar

    def scalar(name, value):
        if held[name][0] != value or type(held[name][0]) is not type(value):
            held[name] = (value, xp.asarray(value, device=dev))  # weakly typed, as the Python number
        return held[name][1]

    def run(X, Y, lr, masks):
        t = ts.state["t"]
        lr_in = scalar("lr", lr) if isinstance(lr, float) else lr
        ts.Ws[:], ts.bs[:], ts.moments, t_next, cost, hits = step(ts.Ws, ts.bs, ts.moments, scalar("t", t), X, Y,
                                                                  lr_in, masks)
        ts.state["t"] = t + 1
        held["t"] = (t + 1, t_next)
        return cost, hits

    ts._compiled[key] = run
    return run
