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
:class:`Plateau` is the convergence check of its book-keeping (scikit-learn's
``tol``/``n_iter_no_change``) and the adaptive schedule's controller.

Reproducibility: the shuffle and the dropout masks of epoch ``e`` are the
counter-based draws of ``(seed, e)`` and ``(seed, e, batch)``
(:mod:`bpnet.nn.random`), made on the device: the same on every backend, and a
run resumed from a checkpoint draws exactly what the uninterrupted run would have.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import NamedTuple

import array_api_compat

from .._validate import all_finite, host_memory, human_bytes
from ..backends import numpy_backed
from ..nn import random
from ..optim.rules import ADAPTIVE_DIVISOR, ADAPTIVE_MIN_LR, l2_penalty
from . import _heap
from .step import batch_metrics, train_step

__all__ = ["History", "TrainingDivergedError", "EpochResult", "LocalBatches", "Plateau", "epochs", "steps_fit_memory",
           "EPOCH_OUTPUTS", "SHUFFLED_COPY_BYTES", "example_major", "columns", "shuffled", "heap_for"]

#: an ``X`` of at most this many bytes is shuffled with one ``take`` an epoch (a shuffled copy, sliced into
#: batches: fewer, larger calls), a larger one with a ``take`` a batch (no copy of all of ``X``): :func:`shuffled`,
#: for :class:`LocalBatches` and the Dask replicas
SHUFFLED_COPY_BYTES = 4 << 20

#: :class:`LocalBatches` keeps an epoch's outputs and logits (two ``(n_L, m)`` buffers, written by the steps)
#: for its metrics in one pass when they have at most this many elements each; else each batch's metrics are summed
EPOCH_OUTPUTS = 1 << 24


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


@dataclass
class Plateau:
    """The convergence check and the adaptive schedule, scikit-learn's: its state is kept between fits.

    After each epoch :meth:`update` takes the monitored value: an epoch that
    does not improve on the best by ``cfg.tol`` counts; once more than
    ``cfg.n_iter_no_change`` count in a row, the adaptive schedule divides the
    learning rate by :data:`~bpnet.optim.rules.ADAPTIVE_DIVISOR` (``factor``)
    and starts counting again, every other schedule stops.

    Attributes
    ----------
    monitor : str
        What is watched (``"cost"``, ``"val_cost"`` or ``"score"``, a callable's).
    best : float or None
        The best value so far (lowest cost, highest score).
    wait : int
        Epochs in a row without an improvement by ``tol``.
    factor : float
        The adaptive schedule's multiplier of the learning rate.
    """

    monitor: str = "cost"
    best: float | None = None
    wait: int = 0
    factor: float = 1.0

    def update(self, value: float, cfg) -> tuple[bool, str | None]:
        """``(new best, event)`` after an epoch whose monitored value is ``value``; event is None,
        ``"decay"`` (the learning rate was divided) or ``"stop"``."""
        higher = self.monitor == "score"
        best = self.best if self.best is not None else (-math.inf if higher else math.inf)
        flat = value < best + cfg.tol if higher else value > best - cfg.tol
        self.wait = self.wait + 1 if flat else 0
        improved = value > best if higher else value < best
        if improved:
            self.best = value
        if cfg.n_iter_no_change is None or self.wait <= cfg.n_iter_no_change:
            return improved, None
        if cfg.schedule == "adaptive" and cfg.learning_rate * self.factor > ADAPTIVE_MIN_LR:
            self.factor /= ADAPTIVE_DIVISOR
            self.wait = 0
            return improved, "decay"
        return improved, "stop"


def epochs(source, ts, net, cfg, *, first_epoch=0, report=None, where=None, note=None, plateau=None,
           batches=True):
    """Run ``cfg.epochs`` epochs of ``source`` on ``ts``, yielding an :class:`EpochResult` per reported epoch.

    ``report(i)`` (i the 0-based index in this call; default: every epoch)
    says which epochs bring their cost to the host; the last always does.
    ``where(e)`` words the epoch in the divergence message (default ``"in epoch
    e + 1"``); ``note()`` is appended to it (e.g. that the last checkpoint is intact).
    The learning rate of epoch ``e`` is ``cfg.lr(e, e * source.m)``, times
    ``plateau.factor`` when a :class:`Plateau` is given (read every epoch: the
    caller's book-keeping updates it between epochs).  ``batches=False``: the
    caller has no batch size for :func:`steps_fit_memory`'s message to name (full batches).

    Raises
    ------
    MemoryError
        At the call (before the first step): the steps cannot fit in this machine's memory (:func:`steps_fit_memory`).
    TrainingDivergedError
        When a reported cost, or the parameters, are NaN or infinite.
    """
    steps_fit_memory(source, ts, cfg, batches)
    return _epochs(source, ts, net, cfg, first_epoch, report, where, note, plateau)


def _epochs(source, ts, net, cfg, first_epoch, report, where, note, plateau):
    xp = array_api_compat.array_namespace(ts.Ws[0])
    L = len(ts.Ws)
    t0 = time.perf_counter()
    with heap_for(source, ts, cfg):  # set back when the loop ends, or its consumer stops (the generator closed)
        for i in range(cfg.epochs):
            e = first_epoch + i
            lr = cfg.lr(e, e * source.m)
            if plateau is not None:
                lr *= plateau.factor
            wanted = report is None or report(i) or i == cfg.epochs - 1
            cost_sum, hits = source.run_epoch(ts, net, cfg, e, lr, wanted)
            if not wanted:
                continue
            m = source.m
            cost = data_cost = float(cost_sum) / m  # the host syncs of an epoch: its cost, accuracy and finiteness
            if cfg.l2:
                cost += float(l2_penalty(xp, ts.parameters, L, cfg.l2, m))
            if not math.isfinite(cost) or not all_finite(xp, ts.buffers):
                what = ("its updates made the parameters NaN or infinite" if math.isfinite(cost)
                        else f"the L2 penalty is {cost}" if math.isfinite(data_cost) else f"the cost is {cost}")
                at = where(e) if where is not None else f"in epoch {e + 1}"
                # weight decay scales each step's W by (1 - lr l2 / m): a large l2 diverges as a large lr does
                also = f" or l2 (now {cfg.l2:g})" if cfg.l2 else ""
                raise TrainingDivergedError(f"training diverged {at}: {what}; try a smaller learning_rate (now {lr:g})"
                                            + also + (note() if note is not None else ""))
            acc = None if hits is None else float(hits) / m
            yield EpochResult(e + 1, cost, acc, lr, time.perf_counter() - t0)


def steps_fit_memory(source, ts, cfg, batches=True) -> None:
    """Refuse (``MemoryError`` naming ``batch_size``; ``X`` when the caller has no batches, ``batches=False``) a
    fit whose steps cannot fit in this machine's memory and swap (:func:`bpnet._validate.host_memory`), before
    its first step: it could only end killed by the system (a step's arrays are allocated one by one, and each
    may fit).

    What is counted is what must exist at once, a lower bound: a batch's activations ``A[1..L]``
    ``(n_l, batch)``, the parameters with the optimiser's moments, and the data.  Host arrays only (numpy,
    array-api-strict) whose steps run in this process; a GPU's allocator raises its own error.
    """
    have = host_memory()
    if have is None or not getattr(source, "steps_here", True) or not numpy_backed(
            array_api_compat.array_namespace(ts.Ws[0])):
        return
    item, dims = ts.itemsize, ts.layer_dims
    batch = min(cfg.batch_size, source.m)
    acts = batch * sum(dims[1:]) * item
    params = ts.n_params * item * (1 + len(ts.rule.slots))
    data = sum(math.prod(A.shape) * item for A in (getattr(source, "X", None), getattr(source, "Y", None))
               if A is not None)
    if acts + params + data <= have:
        return
    fit = (have - params - data) // (sum(dims[1:]) * item)
    if fit < 1:
        hint = "use less data or fewer or smaller layers"
    elif batches:  # the bound: a step needs more than that, and swap is slow
        hint = f"use a smaller batch_size, well under {fit:,}, which would fill it (bpnet train: --batch-size)"
    else:
        hint = f"train on fewer examples (X's columns), well under {fit:,}, or on fewer or smaller layers"
    total = acts + params + data
    raise MemoryError(f"{'batch_size' if batches else 'X'}: a step of the {'-'.join(map(str, dims))} network on "
                      f"{batch:,} examples holds {human_bytes(acts)} of activations, {human_bytes(total)} with the "
                      f"parameters, optimiser state and data, more than this machine's {human_bytes(have)} of memory "
                      f"and swap: {hint}")


def heap_for(source, ts, cfg):
    """While ``source``'s steps of ``ts`` on ``cfg``'s batches run: glibc keeps their large freed temporaries for
    the next step (:func:`bpnet.train._heap.kept`); nothing for a source whose steps run in other processes
    (``source.steps_here`` False: a Dask cluster's)."""
    here = getattr(source, "steps_here", True)
    return _heap.kept(_heap.step_bytes(ts, min(cfg.batch_size, source.m)) if here else (0, 0))


def example_major(xp, A):
    """``A^T`` ``(m, n)`` of an ``(n, m)`` array, each example's row contiguous: a copy, unless ``A`` is already
    laid out so (e.g. ``X_rows.T``).  A ``take`` of its rows gathers whole examples (several times faster
    than gathering columns of ``A``)."""
    # flattening A^T lays it out row after row (a copy unless it already is); reshaping back is a view
    return xp.reshape(xp.reshape(xp.permute_dims(A, (1, 0)), (-1,)), (A.shape[1], A.shape[0]))


def columns(xp, rows, idx):
    """The examples ``idx`` of an example-major ``rows`` ``(m, n)`` as columns: an ``(n, len(idx))`` view of
    their copy (one ``take`` of whole rows; the step reads the view, BLAS takes it as it is)."""
    return xp.permute_dims(xp.take(rows, idx, axis=0), (1, 0))


def shuffled(xp, rows, order):
    """An epoch's examples in ``order`` (an index array into the rows of ``rows``, :func:`example_major`'s),
    as the steps take them: ``(X_e, None)``, all of them as columns ``(n, len(order))`` taken now, for a
    ``rows`` of at most :data:`SHUFFLED_COPY_BYTES`; else ``(None, order)``: each batch takes its own
    (``columns(xp, rows, order[batch])``), and no copy of all of them is made."""
    if math.prod(rows.shape) * xp.finfo(rows.dtype).bits // 8 <= SHUFFLED_COPY_BYTES:
        return columns(xp, rows, order), None
    return None, order


class LocalBatches:
    """The gradient source of one process: ``(X, Y)`` on the backend, in mini-batches.

    Each epoch (when ``cfg.shuffle``) draws a permutation on the device and
    takes each mini-batch's examples with one ``take`` (of the rows of an
    example-major copy of ``X``, made once; all the epoch's at once for an ``X``
    of at most :data:`SHUFFLED_COPY_BYTES`; JAX: of the permuted columns),
    else slices them in order, and runs the step
    (:func:`bpnet.train.step.train_step`) on each.

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
        self._rows = self._labels = self._perms = self._first = self._kept = None

    def _permutation(self, cfg, e):
        """Epoch ``e``'s permutation: :func:`bpnet.nn.random.shuffle` of ``(seed, e)``.  For a small m it is
        drawn with the next epochs' of this fit (:func:`bpnet.nn.random.shuffles`, up to
        :data:`bpnet.nn.random.CHUNK` draws in one pass) and kept until they are used."""
        xp, dev, m = self.bk.xp, self.bk.device, self.m
        got = self._perms
        if got is not None and got[0] == cfg.seed and got[1] <= e < got[1] + got[2].shape[0]:
            return got[2][e - got[1], :]
        if self._first is None:
            self._first = e
        k = min(random.CHUNK // m, self._first + cfg.epochs - e)
        if k <= 1:
            return random.shuffle(xp, m, (cfg.seed, e), dev)
        self._perms = (cfg.seed, e, random.shuffles(xp, m, cfg.seed, range(e, e + k), dev))
        return self._perms[2][0, :]

    def _examples(self):
        """``(X^T, Y^T)``, ``(m, n)`` with each example's row contiguous, made once (at the first shuffle; no
        copy of an ``X`` laid out so already, such as ``X_rows.T``).

        Each batch of a shuffled epoch is then a ``take`` of whole rows
        (several times faster than gathering columns of an ``(n, m)`` array, and
        no shuffled copy of all of ``X``: the copy made here is the only one),
        which the step reads through its transposed view; BLAS takes it as it is.
        """
        if self._rows is None:
            self._rows = tuple(example_major(self.bk.xp, A) for A in (self.X, self.Y))
        return self._rows

    def run_epoch(self, ts, net, cfg, e, lr, metrics=True):
        """All steps of 0-based epoch ``e``; ``(sum of m_b J_b, hits)`` on the device (None unless ``metrics``).

        The permutation is :func:`bpnet.nn.random.shuffle` of ``(seed, e)``, the masks of mini-batch b
        :func:`bpnet.nn.random.dropout` of ``(seed, e, b)``: drawn on the device, the same on every backend.
        """
        xp, dev, m, size = self.bk.xp, self.bk.device, self.m, cfg.batch_size
        X, Y = self.X, self.Y
        # the epoch's outputs and logits (the cost's, for a fused output), written by the steps into the
        # columns of two buffers: its metrics in one pass at the end (unweighted: a weighted mean is per
        # batch), for outputs up to EPOCH_OUTPUTS elements
        kept = metrics and ts.mutable and not net.weighted and ts.Ws[-1].shape[0] * m <= EPOCH_OUTPUTS
        if kept and (self._kept is None or (self._kept[1] is None) == net.fused):
            # A[L] example-major, (m, n_L) seen as its (n_L, m) transpose: the prediction's argmax over the units
            # then reads each example's outputs contiguously (numpy's argmax over axis 0 of an (n_L, m) array
            # copies it first); the logits unit-major, as the cost's column reductions read them best
            n_L = ts.Ws[-1].shape[0]
            self._kept = (xp.permute_dims(xp.empty((m, n_L), dtype=X.dtype, device=dev), (1, 0)),
                          xp.empty((n_L, m), dtype=X.dtype, device=dev) if net.fused else None)
            if net.loss.task == "multiclass":
                self._labels = xp.argmax(Y, axis=0)  # argmax(Y) once: an epoch's hits need only the outputs'
        labels = self._labels if kept else None
        rows = None  # X^T and the epoch's permutation: each batch taken as rows
        if cfg.shuffle:
            perm = self._permutation(cfg, e)
            if ts.mutable:  # strided arrays: whole examples copied
                XT, YT = self._examples()
                Y = columns(xp, YT, perm)
                Xe, order = shuffled(xp, XT, perm)  # all the epoch's examples at once (sliced), or each batch's
                X, rows = (X, (XT, order)) if Xe is None else (Xe, None)
            else:  # immutable arrays (JAX): the compiled step takes what it gets, its layout is XLA's
                X, Y = xp.take(X, perm, axis=1), xp.take(Y, perm, axis=1)
            if labels is not None:
                labels = xp.take(labels, perm)
        sizes = [W.shape[0] for W in ts.Ws[:-1]]
        cost_sum = hits = None
        for b, start in enumerate(range(0, m, size)):
            stop = min(start + size, m)
            mk = (None if cfg.keep_prob is None else
                  random.dropout(xp, sizes, stop - start, cfg.keep_prob, (cfg.seed, e, b), dev, X.dtype))
            Xb = X[:, start:stop] if rows is None else columns(xp, rows[0], rows[1][start:stop])
            outputs = None if not kept else tuple(None if o is None else o[:, start:stop] for o in self._kept)
            c, h = train_step(xp, Xb, Y[:, start:stop], ts, net, lr, mk, metrics=metrics and not kept,
                              l2=cfg.l2, clip_norm=cfg.clip_norm, outputs=outputs)
            if metrics and not kept:
                cost_sum = c if cost_sum is None else cost_sum + c
                hits = h if hits is None or h is None else hits + h
        if kept:
            return batch_metrics(xp, self._kept[0], Y, net, self._kept[1], labels=labels)
        return cost_sum, hits
