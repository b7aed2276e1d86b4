"""The one epoch loop, and its local gradient source.

:func:`epochs` runs a :class:`~bpnet.train.config.FitConfig`'s epochs over a
*gradient source*: an object with ``m`` (examples per epoch) and
``run_epoch(ts, net, cfg, epoch, lr, metrics) -> (m J summed, hits)`` that
runs every step of one epoch in place on a :class:`~bpnet.train.step.TrainState`.
:class:`LocalBatches` is the source of one process (mini-batches of data on
the backend); :class:`bpnet.train.distributed.DaskBatches` the source of a
Dask cluster.  ``MLP.fit``, ``fit_distributed`` and ``L_layer_model`` all run
this loop; it owns the learning-rate schedule, the epoch's cost and accuracy
(accumulated on the device, read once per reported epoch) and the divergence check.

Reproducibility: the shuffle and the dropout masks of epoch ``e`` come from
``numpy.random.default_rng([seed, e])``, so a run resumed from a checkpoint
draws exactly what the uninterrupted run would have.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import NamedTuple

import array_api_compat
import numpy as np

from .._validate import all_finite
from ..nn.dropout import draw_masks
from ..optim.rules import l2_penalty
from .step import backward_update, batch_metrics, forward_train

__all__ = ["History", "TrainingDivergedError", "EpochResult", "LocalBatches", "epochs", "owned_copy",
           "MASK_GROUP_BYTES"]

#: host bytes of dropout masks moved to the device at once
MASK_GROUP_BYTES = 64 * 2**20


class TrainingDivergedError(FloatingPointError):
    """The cost, or the parameters, became NaN or infinite during training."""


@dataclass
class History:
    """Per-epoch record of a training run (host floats; ``None`` where not measured).

    Attributes
    ----------
    epoch : list of int
        1-based epoch numbers (continuing across resumed runs).
    cost : list of float
        Mean training cost over the epoch's mini-batches (plus the L2 term).
    accuracy : list of float or None
        Training accuracy over the epoch (with dropout active), classification only.
    val_cost, val_accuracy : list of float or None
        On the validation data, at the end of the epoch.
    learning_rate : list of float
    time_s : list of float
        Wall-clock seconds since the start of the fit call.
    stopped_early : bool
    best_epoch : int or None
        The epoch whose parameters early stopping restored.
    """

    epoch: list = field(default_factory=list)
    cost: list = field(default_factory=list)
    accuracy: list = field(default_factory=list)
    val_cost: list = field(default_factory=list)
    val_accuracy: list = field(default_factory=list)
    learning_rate: list = field(default_factory=list)
    time_s: list = field(default_factory=list)
    stopped_early: bool = False
    best_epoch: int | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "History":
        return cls(**{k: val for k, val in d.items() if k in cls.__dataclass_fields__})

    def __len__(self) -> int:
        return len(self.epoch)


class EpochResult(NamedTuple):
    """What :func:`epochs` reports after a (reported) epoch: host numbers."""

    epoch: int  # 1-based
    cost: float  # mean cost over the epoch, with the L2 term
    accuracy: float | None
    lr: float
    seconds: float  # since the loop started


def owned_copy(xp, d):
    """A copy of a dict of arrays (nested dicts and the optimiser's ``t`` kept), or None."""
    if d is None:
        return None
    return {k: (owned_copy(xp, val) if isinstance(val, dict) else
                xp.asarray(val, copy=True) if array_api_compat.is_array_api_obj(val) else val)
            for k, val in d.items()}


def epochs(source, ts, net, cfg, *, first_epoch=0, report=None, where=None, note=None):
    """Run ``cfg.epochs`` epochs of ``source`` on ``ts``, yielding an :class:`EpochResult` per reported epoch.

    ``report(i)`` (i the 0-based index in this call; default: every epoch)
    says which epochs bring their cost to the host; the last always does.
    ``where(e)`` words the epoch in the divergence message (default ``"in epoch
    e + 1"``); ``note()`` is appended to it (e.g. that the last checkpoint is intact).

    Raises
    ------
    TrainingDivergedError
        When a reported cost, or the parameters, are NaN or infinite.
    """
    xp = array_api_compat.array_namespace(ts.Ws[0])
    L = len(ts.Ws)
    t0 = time.perf_counter()
    for i in range(cfg.epochs):
        e = first_epoch + i
        lr = cfg.lr(e)
        wanted = report is None or report(i) or i == cfg.epochs - 1
        cost_sum, hits = source.run_epoch(ts, net, cfg, e, lr, wanted)
        if not wanted:
            continue
        m = source.m
        cost = float(cost_sum) / m  # the host syncs of an epoch: its cost, accuracy and finiteness
        if cfg.l2:
            cost += float(l2_penalty(xp, ts.parameters, L, cfg.l2, m))
        if not math.isfinite(cost) or not all_finite(xp, ts.Ws + ts.bs):
            what = (f"the cost is {cost}" if not math.isfinite(cost)
                    else "its updates made the parameters NaN or infinite")
            at = where(e) if where is not None else f"in epoch {e + 1}"
            raise TrainingDivergedError(f"training diverged {at}: {what}; try a smaller learning_rate (now {lr:g})"
                                        + (note() if note is not None else ""))
        acc = None if hits is None else float(hits) / m
        yield EpochResult(e + 1, cost, acc, lr, time.perf_counter() - t0)


class LocalBatches:
    """The gradient source of one process: ``(X, Y)`` on the backend, in mini-batches.

    Each epoch permutes the columns with one ``take`` on the device (when
    ``cfg.shuffle``), slices the mini-batches, and runs the step on each.

    Parameters
    ----------
    X : array, shape (n_x, m)
    Y : array, shape (n_L, m)
        Checked arrays on the backend ``bk``, in the model's dtype.
    bk : bpnet.backends.Backend
    """

    def __init__(self, X, Y, bk):
        self.X, self.Y, self.bk = X, Y, bk
        self.m = X.shape[1]

    def run_epoch(self, ts, net, cfg, e, lr, metrics=True):
        """All steps of 0-based epoch ``e``; ``(sum of m_b J_b, hits)`` on the device (None unless ``metrics``)."""
        xp, bk, m, size = self.bk.xp, self.bk, self.m, cfg.batch_size
        rng = np.random.default_rng([cfg.seed, e])
        X, Y = self.X, self.Y
        if cfg.shuffle:
            perm = bk.asarray(rng.permutation(m), dtype="int64")
            X, Y = xp.take(X, perm, axis=1), xp.take(Y, perm, axis=1)
        sizes = [W.shape[0] for W in ts.Ws[:-1]]
        masks = (epoch_masks(sizes, m, size, cfg.keep_prob, rng, X.dtype, bk) if cfg.keep_prob is not None
                 else None)
        cost_sum = hits = None
        for start in range(0, m, size):
            stop = min(start + size, m)
            Xb, Yb = X[:, start:stop], Y[:, start:stop]
            mk = next(masks) if masks is not None else None
            batch = ts.batch(xp, stop - start)  # (ones column, ones row, blocks), cached per batch size
            acts, gs, ZL = forward_train(xp, Xb, ts.Ws, ts.bs, net, mk, ones_row=batch[1], blocks=batch[2])
            if metrics:
                c, h = batch_metrics(xp, acts[-1], Yb, net, ZL)
                cost_sum = c if cost_sum is None else cost_sum + c
                hits = h if hits is None or h is None else hits + h
            backward_update(xp, acts, Yb, ts, net, lr, gs=gs, masks=mk, l2=cfg.l2, clip_norm=cfg.clip_norm,
                            batch=batch)
        return cost_sum, hits


def epoch_masks(sizes, m, batch_size, keep_prob, rng, dtype, bk):
    """The dropout masks of an epoch's mini-batches, one list per batch, ``(n_l, m_b)`` each.

    Drawn on the host batch after batch, layer after layer -- the draws of
    :func:`bpnet.dropout_masks` once per batch with ``rng`` -- but moved to the
    device a group of batches at a time (up to :data:`MASK_GROUP_BYTES`) and
    sliced there: a copy from pageable host memory waits for the device, so one
    copy per group keeps the training loop from waiting on a GPU.
    """
    item = bk.xp.finfo(dtype).bits // 8
    group = max(1, MASK_GROUP_BYTES // (max(1, sum(sizes) * item) * batch_size)) * batch_size
    for g0 in range(0, m, group):
        g1 = min(g0 + group, m)
        drawn = [draw_masks(rng, sizes, min(b + batch_size, g1) - b, keep_prob) for b in range(g0, g1, batch_size)]
        dev = [bk.asarray(np.concatenate([d[i] for d in drawn], axis=1) / keep_prob, dtype=dtype)
               for i in range(len(sizes))]
        for b in range(g0, g1, batch_size):
            cols = slice(b - g0, min(b + batch_size, g1) - g0)
            yield [D[:, cols] for D in dev]
