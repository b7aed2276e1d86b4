"""Inference over column batches: a network's output for any number of examples in little extra memory.

:func:`forward_batches` runs the training step's own forward
(:func:`bpnet.train.step.forward_train`, which keeps only ``A[0..L]``; no
dropout) on consecutive column slices of ``X`` and yields each batch's output
``A[L]`` and its last pre-activation ``Z[L]`` (the logits a cost is computed
from); the caller writes what it keeps into an array it allocated once (slices
and ``__setitem__`` are in the standard).  A batch's activations take about
``min(X bytes / 8, 64 MiB)`` (at least 1 MiB; 512 MiB on a GPU), so the memory
beyond ``X`` and the output stays a small fraction of ``X`` at the speed of one
whole-array pass (``benchmarks/bench.py --inference`` measures both).

No silent NaN: each batch's output is checked for NaN and inf, one host sync
per batch; only when that fails, a second pass over the batch finds the first
layer whose values became non-finite, and :class:`NonFiniteOutputError` names it.
"""

from __future__ import annotations

import array_api_compat
import numpy as np

from .._validate import n_layers
from ..nn import _kernels
from . import step

__all__ = ["NonFiniteOutputError", "batch_columns", "forward_batches", "INFER_BYTES", "GPU_INFER_BYTES",
           "MIN_INFER_BYTES"]

#: most bytes of one batch's activations on a CPU (large enough for full-speed matrix products)
INFER_BYTES = 64 << 20
#: the same on a GPU, where small kernels would leave the device idle
GPU_INFER_BYTES = 512 << 20
#: fewest bytes of a batch: below this, per-batch overheads cost more than the memory saved
MIN_INFER_BYTES = 1 << 20
#: a batch's activations take at most 1/X_FRACTION of X's bytes (when above MIN_INFER_BYTES)
X_FRACTION = 8


class NonFiniteOutputError(FloatingPointError):
    """The forward pass overflowed: finite weights and inputs gave NaN or inf (names the layer)."""


def batch_columns(xp, X, parameters) -> int:
    """Columns of ``X`` per batch: the activations of all layers within the byte budget (see the module)."""
    L = n_layers(parameters)
    rows = [parameters[f"W{l}"].shape[0] for l in range(1, L + 1)]
    item = xp.finfo(parameters["W1"].dtype).bits // 8
    per_column = item * (sum(rows) + max(rows))  # A[1..L], plus the Z being turned into the next A
    n_x, m = X.shape
    cap = GPU_INFER_BYTES if array_api_compat.is_cupy_namespace(xp) else INFER_BYTES
    budget = min(cap, max(MIN_INFER_BYTES, n_x * m * item // X_FRACTION))
    return max(1, min(m, budget // per_column))


def forward_batches(xp, X, parameters, net, *, name: str = "X"):
    """Yield ``(columns, A[L], Z[L])`` for consecutive column slices of ``X``, each output checked finite.

    ``X`` ``(n_x, m)`` and ``parameters`` are checked arrays of one backend and
    dtype; ``net`` a :class:`bpnet.train.step.Net`.  ``Z[L]`` is what
    :func:`~bpnet.train.step.forward_train` returns for the output layer (for
    a softmax output the logits shifted by their column max; for a linear one
    ``A[L]`` itself).

    Raises
    ------
    NonFiniteOutputError
        (a ``FloatingPointError``) naming the first layer, and the examples,
        where values became NaN or inf.
    """
    L = n_layers(parameters)
    Ws = [parameters[f"W{l}"] for l in range(1, L + 1)]
    bs = [parameters[f"b{l}"] for l in range(1, L + 1)]
    m = X.shape[1]
    size = batch_columns(xp, X, parameters)
    for start in range(0, m, size):
        cols = slice(start, min(start + size, m))
        Xb = X[:, cols]
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # refused below, in one clear error
            acts, _, ZL = step.forward_train(xp, Xb, Ws, bs, net)
        AL = acts[-1]
        del acts  # the hidden activations go now, before the caller keeps anything
        if not bool(xp.all(xp.isfinite(AL))):
            raise _diagnosis(xp, Xb, parameters, L, net, cols, name)
        yield cols, AL, ZL


def _count(xp, a) -> tuple[int, int]:
    return int(xp.sum(xp.astype(xp.isnan(a), xp.int64))), int(xp.sum(xp.astype(xp.isinf(a), xp.int64)))


def _diagnosis(xp, Xb, parameters, L, net, cols, name) -> NonFiniteOutputError:
    """The second pass over one batch (all its ``Z`` kept): the first non-finite ``Z[l]`` or ``A[l]``, named."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        AL, caches = _kernels.forward(xp, Xb, parameters, L, net.hidden, net.output)
    where = f"the output A[{L}]"
    for l, (_, Z) in enumerate(caches, start=1):
        g = net.hidden if l < L else net.output
        A = caches[l][0][0] if l < L else AL
        if not bool(xp.all(xp.isfinite(Z))):
            n_nan, n_inf = _count(xp, Z)
            where = f"Z[{l}] = W[{l}] A[{l - 1}] + b[{l}] (layer {l} of {L}: {n_nan} NaN, {n_inf} inf)"
            break
        if not bool(xp.all(xp.isfinite(A))):
            n_nan, n_inf = _count(xp, A)
            where = f"A[{l}] = {g.name}(Z[{l}]) (layer {l} of {L}: {n_nan} NaN, {n_inf} inf)"
            break
    return NonFiniteOutputError(
        f"{name}: the forward pass overflowed in {where}, examples {cols.start} to {cols.stop - 1}: finite "
        "weights and inputs gave NaN or inf, so the output would be meaningless; the weights are too large for "
        "these inputs (check that the inputs are scaled as in training, or use float64)")
