"""A small model object over the course's functions: :class:`MLP`.

``MLP`` keeps the architecture, the parameters, the optimiser state and the
training history, and trains by mini-batch epochs with any optimiser of
:mod:`bpnet.optim`, L2 regularisation, inverted dropout, gradient clipping,
learning-rate decay and early stopping.  Examples are columns, as everywhere
in bpnet: ``X`` is ``(n_x, m)``.  (:mod:`bpnet.sklearn` wraps it for
scikit-learn's ``(n_samples, n_features)`` convention.)

Speed and transfers: the data are moved to the backend once per
:meth:`MLP.fit`; each epoch permutes them with one ``take`` on the device and
slices mini-batches from it; the step is :mod:`bpnet.step` (forward, fused
backward, in-place update; the unchecked kernels of :mod:`bpnet.core` for an
output/loss pair that does not fuse); cost and accuracy are accumulated on the
device and brought to the host once per epoch.

In-place updates: each :meth:`MLP.fit` call copies ``model.parameters`` and
``model.optimizer_state`` once at its start and updates those copies in place
every mini-batch, so arrays you hold from before the call (the dict you
assigned to ``model.parameters``, a checkpoint's arrays, a previous
``model.parameters``) are never modified, and the arrays you pass as ``X``/``Y``
are only read.  During the call ``model.parameters`` (as seen by a callback)
holds the live arrays, which the next mini-batch overwrites: copy them to keep
a snapshot.  After a :class:`TrainingDivergedError` the model holds the
diverged epoch's (non-finite) parameters; the last checkpoint is intact.

Reproducibility: the shuffle and the dropout masks of epoch ``e`` come from
``numpy.random.default_rng([seed, e])``, so an interrupted run resumed from a
checkpoint draws exactly what the uninterrupted run would have.
"""

from __future__ import annotations

import math
import numbers
import os
import time
from dataclasses import asdict, dataclass, field

import array_api_compat
import numpy as np

from . import backends as _backends
from ._checks import check_finite, check_positive_int, check_positive_real
from .activations import get_activation
from .core import _backward, _check_layer_dims, _forward, INITS, initialize_parameters_deep
from .losses import DEFAULT_OUTPUT, FUSED_PAIRS, get_loss
from .optim import OPTIMIZERS, _add_l2_gradients, _clip, _l2_cost, get_optimizer
from .step import TrainState, backward_update, forward_train
from .train import TrainingDivergedError, _all_finite, _to_backend

__all__ = ["MLP", "Model", "History", "dropout_masks"]

#: default learning rate of each optimiser (as Keras/PyTorch users expect)
DEFAULT_LR = {"gd": 0.01, "momentum": 0.01, "rmsprop": 0.001, "adam": 0.001}


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
        Wall-clock seconds since the start of the :meth:`MLP.fit` call.
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
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in d.items() if k in known})

    def __len__(self) -> int:
        return len(self.epoch)


def dropout_masks(layer_dims, m, keep_prob, *, rng=0, dtype="float64", backend=None):
    """Inverted-dropout masks for the hidden layers, drawn on the host.

    Parameters
    ----------
    layer_dims : list of int
        ``[n_x, n_1, ..., n_L]``; masks are made for layers 1 .. L-1.
    m : int
        Examples in the batch.
    keep_prob : float in (0, 1]
    rng : int seed or numpy.random.Generator
        The host generator the Bernoulli draws come from (reproducible, and the
        same masks on every backend).
    dtype, backend : where the masks are created.

    Returns
    -------
    list of L-1 arrays, shape (n_l, m)
        ``D / keep_prob`` with ``D ~ Bernoulli(keep_prob)``: 0 or ``1/keep_prob``,
        so the expected activation is unchanged and inference needs no mask.
    """
    dims = _check_layer_dims(layer_dims)
    m = check_positive_int(m, "m")
    if isinstance(keep_prob, bool) or not isinstance(keep_prob, numbers.Real) or not 0.0 < keep_prob <= 1.0:
        raise ValueError(f"keep_prob: expected a probability in (0, 1], got {keep_prob!r}")
    if not isinstance(rng, np.random.Generator):
        rng = np.random.default_rng(rng)
    bk = _backends.get(backend)
    return [bk.asarray(D / keep_prob, dtype=dtype) for D in _draw_masks(rng, dims[1:-1], m, keep_prob)]


def _draw_masks(rng, hidden, m, keep_prob):
    """Host 0/1 masks ``D[l] ~ Bernoulli(keep_prob)`` of one batch, shape (n_l, m), layer by layer."""
    return [rng.random((n, m)) < keep_prob for n in hidden]


#: Host bytes of dropout masks moved to the device at once by :func:`_epoch_masks`.
MASK_GROUP_BYTES = 64 * 2**20


def _epoch_masks(layer_dims, m, batch_size, keep_prob, rng, dtype, bk):
    """The dropout masks of an epoch's mini-batches, one list (as :func:`dropout_masks`) per batch.

    Drawn on the host batch after batch, layer after layer -- the very draws of
    calling :func:`dropout_masks` once per batch with ``rng`` -- but moved to the
    device for a group of consecutive batches at once (up to :data:`MASK_GROUP_BYTES`,
    at least one batch) and sliced per batch there: a copy from pageable host
    memory waits for the device's queue to drain, so one copy per layer per group
    instead of per batch keeps the training loop from waiting on the GPU.
    """
    hidden = list(layer_dims[1:-1])
    col_bytes = max(1, sum(hidden) * np.dtype(dtype).itemsize)
    group = max(1, MASK_GROUP_BYTES // (col_bytes * batch_size)) * batch_size  # columns, whole batches
    for g0 in range(0, m, group):
        g1 = min(g0 + group, m)
        drawn = [_draw_masks(rng, hidden, min(b + batch_size, g1) - b, keep_prob) for b in range(g0, g1, batch_size)]
        dev = [bk.asarray(np.concatenate([d[i] for d in drawn], axis=1) / keep_prob, dtype=dtype)
               for i in range(len(hidden))]
        for b in range(g0, g1, batch_size):
            cols = slice(b - g0, min(b + batch_size, g1) - g0)
            yield [D[:, cols] for D in dev]


def _owned_copy(xp, d):
    """A copy of a dict of arrays (nested dicts and the optimiser's ``t`` kept), or None."""
    if d is None:
        return None
    return {k: (_owned_copy(xp, v) if isinstance(v, dict) else
                xp.asarray(v, copy=True) if array_api_compat.is_array_api_obj(v) else v)
            for k, v in d.items()}


class _FitOptions:
    """The validated options of one :meth:`MLP.fit` (or ``fit_distributed``) call."""

    def __init__(self, model, *, epochs, batch_size, optimizer, learning_rate, lr_decay, decay_interval, l2,
                 dropout, clip_norm, early_stopping, restore_best, seed, callbacks, checkpoint, checkpoint_every,
                 optimizer_options):
        self.epochs = check_positive_int(epochs, "epochs")
        self.batch_size = check_positive_int(batch_size, "batch_size")
        _check_choice(optimizer, "optimizer", OPTIMIZERS)
        self.lr0 = check_positive_real(DEFAULT_LR[optimizer] if learning_rate is None else learning_rate,
                                       "learning_rate")
        self.lr_decay = check_positive_real(lr_decay, "lr_decay", allow_zero=True)
        self.decay_interval = check_positive_int(decay_interval, "decay_interval")
        self.l2 = check_positive_real(l2, "l2", allow_zero=True)
        if isinstance(dropout, bool) or not isinstance(dropout, numbers.Real):
            raise TypeError(f"dropout: expected a probability in [0, 1), got {dropout!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout: expected a probability in [0, 1), got {dropout!r}")
        #: keep probability of inverted dropout, None without dropout
        self.keep_prob = (1.0 - dropout) if dropout else None
        self.clip_norm = None if clip_norm is None else check_positive_real(clip_norm, "clip_norm")
        self.early_stopping = (None if early_stopping is None
                               else check_positive_int(early_stopping, "early_stopping"))
        self.restore_best = restore_best
        seed = model.seed if seed is None else seed
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
            raise ValueError(f"seed: expected a non-negative integer, got {seed!r}")
        self.seed = int(seed)
        self.checkpoint = checkpoint
        self.checkpoint_every = check_positive_int(checkpoint_every, "checkpoint_every")
        self.callbacks = list(callbacks)
        for i, cb in enumerate(self.callbacks):
            if not callable(cb):
                raise TypeError(f"callbacks[{i}]: expected a callable callback(model, epoch, logs), "
                                f"got {type(cb).__name__} {cb!r}")
        self.opt = get_optimizer(optimizer, **optimizer_options)
        # early-stopping state: (best validation cost, its epoch, its parameters), epochs since
        self.best = (math.inf, None, None)
        self.waited = 0
        self.t0 = time.perf_counter()

    def learning_rate(self, e: int) -> float:
        """lr = lr0 / (1 + decay * floor(e / interval)) for the 0-based epoch e."""
        return self.lr0 / (1.0 + self.lr_decay * (e // self.decay_interval))

    def checkpoint_note(self) -> str:
        if self.checkpoint is not None and os.path.exists(self.checkpoint):
            return f"; the last checkpoint ({self.checkpoint}) is intact"
        return ""


def _is_out_of_memory(exc) -> bool:
    """numpy's MemoryError or cupy's OutOfMemoryError (matched by name: cupy is optional)."""
    return isinstance(exc, MemoryError) or type(exc).__name__ in ("OutOfMemoryError", "CUDARuntimeError") \
        and "memory" in str(exc).lower()


def _check_choice(value, name, choices):
    if value not in choices:
        raise ValueError(f"{name}: unknown {name} {value!r}; expected one of {', '.join(map(repr, choices))}")
    return value



def _hits(xp, AL, Y, task):
    """Number of correct predictions in a batch, as a 0-d device array (also run on Dask workers)."""
    if task == "multiclass":
        right = xp.argmax(AL, axis=0) == xp.argmax(Y, axis=0)
    else:
        right = (AL > 0.5) == (Y > 0.5)
        if AL.shape[0] > 1:  # multi-label: a column is right when all its units are
            right = xp.all(right, axis=0)
    return xp.sum(xp.astype(right, AL.dtype))

class MLP:
    """An L-layer perceptron trained with the course's backpropagation.

    Parameters
    ----------
    layer_dims : list of int
        ``[n_x, n_1, ..., n_L]``.
    hidden_activation : str
        ``"relu"``, ``"leaky_relu"``, ``"tanh"``, ``"sigmoid"`` or ``"linear"``.
    output_activation : str, optional
        Default: the loss's natural output (sigmoid, softmax, linear).
    loss : str, optional
        ``"binary_crossentropy"``, ``"categorical_crossentropy"`` or ``"mse"``.
        Default: binary for one output unit, categorical for more.
    init : {"he", "xavier", "course"}
    seed : int
        Seed of the initial weights, and the default seed of :meth:`fit`.
    dtype : {"float32", "float64"}
        float32 by default, for speed; float64 on request.
    backend : str or Backend, optional
        See :func:`bpnet.backends.get` (explicit > ``BPNET_BACKEND`` > auto).

    Attributes
    ----------
    parameters : dict
        ``W1, b1, ..., WL, bL`` on the backend.
    optimizer_state : dict or None
        State of the optimiser of the last :meth:`fit` (``{"t", "v", "s"}``).
    epoch : int
        Epochs trained so far.
    history : History
    metadata : dict
        Free JSON-serialisable notes saved with the checkpoint (the CLI keeps the data
        set's standardisation statistics and class names there).
    """

    def __init__(self, layer_dims, *, hidden_activation="relu", output_activation=None, loss=None,
                 init="he", seed=0, dtype="float32", backend=None):
        self.layer_dims = _check_layer_dims(layer_dims)
        if len(self.layer_dims) < 2:  # pragma: no cover - _check_layer_dims refuses it
            raise ValueError("layer_dims: expected at least 2 sizes")
        self.hidden_activation = get_activation(hidden_activation, "hidden_activation").name
        if self.hidden_activation == "softmax":
            raise ValueError("hidden_activation: softmax normalises over the class axis; use it as output_activation")
        if loss is None:
            loss = "binary_crossentropy" if self.layer_dims[-1] == 1 else "categorical_crossentropy"
        self.loss = get_loss(loss).name
        self.output_activation = get_activation(output_activation or DEFAULT_OUTPUT[self.loss],
                                                "output_activation").name
        if self.loss == "categorical_crossentropy" and self.output_activation != "softmax":
            raise ValueError(f"output_activation: categorical_crossentropy needs 'softmax', got {self.output_activation!r}")
        if self.output_activation == "softmax" and self.layer_dims[-1] < 2:
            raise ValueError(f"layer_dims: a softmax output needs >= 2 output units, got {self.layer_dims[-1]} "
                             "(use a sigmoid unit for two classes)")
        if self.loss == "binary_crossentropy" and self.output_activation != "sigmoid":
            raise ValueError(f"output_activation: binary_crossentropy needs 'sigmoid' (outputs in (0, 1)), "
                             f"got {self.output_activation!r}")
        if self.loss == "categorical_crossentropy" and self.layer_dims[-1] < 2:
            raise ValueError(f"layer_dims: categorical_crossentropy needs >= 2 output units, got {self.layer_dims[-1]}")
        _check_choice(init, "init", tuple(INITS))
        self.init = init
        self.seed = seed
        self.dtype = dtype
        self.backend = _backends.get(backend)
        self.parameters = initialize_parameters_deep(self.layer_dims, init=init, seed=seed, dtype=dtype,
                                                     backend=self.backend)
        self.optimizer_state = None
        self.optimizer_config = None
        self.epoch = 0
        self.history = History()
        self.metadata = {}

    # ------------------------------------------------------------------ #
    @property
    def L(self) -> int:
        return len(self.layer_dims) - 1

    @property
    def task(self) -> str:
        """``"binary"``, ``"multiclass"`` or ``"regression"``."""
        if self.loss == "categorical_crossentropy":
            return "multiclass"
        if self.loss == "binary_crossentropy":
            return "binary"
        return "regression"

    def config(self) -> dict:
        """The constructor arguments (JSON-serialisable), as saved in checkpoints."""
        return {"layer_dims": self.layer_dims, "hidden_activation": self.hidden_activation,
                "output_activation": self.output_activation, "loss": self.loss, "init": self.init,
                "seed": self.seed, "dtype": self.dtype}

    def __repr__(self) -> str:
        dims = "-".join(map(str, self.layer_dims))
        return (f"MLP({dims}, hidden={self.hidden_activation}, output={self.output_activation}, "
                f"loss={self.loss}, dtype={self.dtype}, backend={self.backend.name}, epoch={self.epoch})")

    # ------------------------------------------------------------------ #
    # data

    def _prepare_X(self, X, name="X"):
        X = _to_backend(self.backend, X, name, self.dtype)
        xp = self.backend.xp
        if X.ndim != 2 or X.shape[0] != self.layer_dims[0]:
            hint = ""
            if X.ndim == 2 and X.shape[1] == self.layer_dims[0]:
                hint = "; it looks transposed: MLP takes examples as columns, pass X.T"
            raise ValueError(f"{name}: expected shape ({self.layer_dims[0]}, m) for layer_dims[0] = "
                             f"{self.layer_dims[0]}, got {tuple(X.shape)}{hint}")
        if X.shape[1] == 0:
            raise ValueError(f"{name}: expected at least one example (column), got shape {tuple(X.shape)}")
        check_finite(xp, X, name)
        return X

    def _prepare_Y(self, Y, m, name="Y"):
        """Labels on the backend, shape (n_L, m), dtype of the model; checked once."""
        bk, xp, n_out = self.backend, self.backend.xp, self.layer_dims[-1]
        Y = _to_backend(bk, Y, name, labels=True)
        if Y.ndim == 1:
            if Y.shape[0] != m:
                raise ValueError(f"{name}: expected {m} labels like the columns of X, got shape {tuple(Y.shape)}")
            if self.task == "multiclass":
                if not xp.isdtype(Y.dtype, "integral"):
                    raise TypeError(f"{name}: 1-D labels for softmax must be class indices (integers), "
                                    f"got {_backends._dtype_str(Y.dtype)}")
                lo, hi = int(xp.min(Y)), int(xp.max(Y))
                if lo < 0 or hi >= n_out:
                    raise ValueError(f"{name}: class indices must be in [0, {n_out - 1}] for {n_out} output units, "
                                     f"got values from {lo} to {hi}")
                classes = xp.arange(n_out, dtype=Y.dtype, device=bk.device)  # Y's integer dtype: no promotion
                Y = xp.astype(xp.reshape(classes, (n_out, 1)) == xp.reshape(Y, (1, m)), bk.dtype(self.dtype))
            else:
                Y = xp.reshape(Y, (1, m))
        if Y.ndim != 2 or tuple(Y.shape) != (n_out, m):
            hint = ""
            if self.task == "multiclass":
                hint = " (one-hot of shape (n_classes, m), or 1-D class indices of length m)"
            raise ValueError(f"{name}: expected shape ({n_out}, {m}) = (layer_dims[-1], m of X){hint}, "
                             f"got {tuple(Y.shape)}")
        Y = xp.astype(Y, bk.dtype(self.dtype))
        check_finite(xp, Y, name)
        if self.task != "regression":
            if not bool(xp.all((Y == 0.0) | (Y == 1.0))):
                raise ValueError(f"{name}: labels for {self.loss} must be 0 or 1"
                                 + (" (one-hot)" if self.task == "multiclass" else "")
                                 + f", got values from {float(xp.min(Y)):g} to {float(xp.max(Y)):g}")
            if self.task == "multiclass" and not bool(xp.all(xp.sum(Y, axis=0) == 1.0)):
                raise ValueError(f"{name}: one-hot labels must have exactly one 1 per column")
        return Y

    # ------------------------------------------------------------------ #
    # training

    def fit(self, X, Y, *, epochs=100, batch_size=64, optimizer="adam", learning_rate=None, lr_decay=0.0,
            decay_interval=1, l2=0.0, dropout=0.0, clip_norm=None, validation_data=None, validation_split=0.0,
            early_stopping=None, restore_best=True, shuffle=True, seed=None, callbacks=(), checkpoint=None,
            checkpoint_every=1, client=None, chunk_size=None, **optimizer_options) -> History:
        """Train for ``epochs`` more epochs of mini-batch optimisation.

        Parameters
        ----------
        X : array, shape (n_x, m)
            Host numpy or any backend; moved to the model's backend once.
        Y : array, shape (n_L, m), or (m,)
            0/1 labels (binary), one-hot or 1-D class indices (categorical), targets (mse).
        epochs : int > 0
            Epochs to train in this call (``self.epoch`` continues counting).
        batch_size : int > 0
            Mini-batch size; the last batch of an epoch may be smaller.
        optimizer : {"gd", "momentum", "rmsprop", "adam"}
        learning_rate : float > 0, optional
            Default 0.01 (gd, momentum) or 0.001 (rmsprop, adam).
        lr_decay : float >= 0
            ``lr = learning_rate / (1 + lr_decay * floor(epoch / decay_interval))`` (the course's
            ``schedule_lr_decay``; ``decay_interval=1`` is ``update_lr``).
        decay_interval : int > 0
        l2 : float >= 0
            L2 strength lambda: cost ``+ lambda/(2m) sum ||W||^2``, ``dW += lambda/m W``.
        dropout : float in [0, 1)
            Probability of dropping a hidden unit (inverted dropout, keep_prob = 1 - dropout);
            never applied by predict/evaluate.
        clip_norm : float > 0, optional
            Clip the gradients to this global L2 norm.
        validation_data : tuple (X_val, Y_val), optional
        validation_split : float in [0, 1)
            Otherwise hold out this fraction of the columns (seeded) for validation.
        early_stopping : int, optional
            Stop when the validation cost has not improved for this many epochs
            (needs validation data); ``restore_best`` restores the best parameters.
        shuffle : bool
        seed : int, optional
            Seed of the shuffles, dropout masks and validation split (default: the model's).
        callbacks : sequence of callables
            ``callback(model, epoch, logs)`` after every epoch, ``logs`` a dict of host floats.
        checkpoint : path, optional
            Save an atomic checkpoint there every ``checkpoint_every`` epochs and at the end.
        client : distributed.Client or str, optional
            Train data-parallel on a Dask cluster instead (:func:`bpnet.distributed.fit_distributed`):
            a ``distributed.Client``, ``"local:N"`` or a scheduler address ``"tcp://host:8786"``;
            ``X``/``Y`` may then be dask arrays chunked along the examples axis.  Needs
            ``pip install 'bpnet[dask]'``.  ``None`` (default): train in this process.
        chunk_size : int, optional
            With ``client``: examples per chunk (see ``fit_distributed``).
        **optimizer_options
            ``beta`` (momentum), ``beta1``, ``beta2``, ``epsilon`` (adam, rmsprop).

        Returns
        -------
        History
            ``self.history``, extended by this call.

        Raises
        ------
        TrainingDivergedError
            When the cost becomes NaN or inf; names the epoch, suggests a smaller
            learning rate; the last checkpoint written stays on disk.
        """
        if client is not None or chunk_size is not None:
            if client is None:
                raise ValueError("chunk_size: only used with client= (data-parallel training on Dask)")
            if validation_split:
                raise ValueError("validation_split: not supported with client=; pass validation_data")
            from .distributed import fit_distributed

            return fit_distributed(
                self, X, Y, client=client, chunk_size=chunk_size, epochs=epochs, batch_size=batch_size,
                optimizer=optimizer, learning_rate=learning_rate, lr_decay=lr_decay, decay_interval=decay_interval,
                l2=l2, dropout=dropout, clip_norm=clip_norm, validation_data=validation_data,
                early_stopping=early_stopping, restore_best=restore_best, shuffle=shuffle, seed=seed,
                callbacks=callbacks, checkpoint=checkpoint, checkpoint_every=checkpoint_every, **optimizer_options)
        o = _FitOptions(self, epochs=epochs, batch_size=batch_size, optimizer=optimizer,
                        learning_rate=learning_rate, lr_decay=lr_decay, decay_interval=decay_interval, l2=l2,
                        dropout=dropout, clip_norm=clip_norm, early_stopping=early_stopping,
                        restore_best=restore_best, seed=seed, callbacks=callbacks, checkpoint=checkpoint,
                        checkpoint_every=checkpoint_every, optimizer_options=optimizer_options)
        if isinstance(validation_split, bool) or not isinstance(validation_split, numbers.Real) \
                or not 0.0 <= validation_split < 1.0:
            raise ValueError(f"validation_split: expected a fraction in [0, 1), got {validation_split!r}")
        bk, xp = self.backend, self.backend.xp
        X = self._prepare_X(X)
        m_all = X.shape[1]
        Y = self._prepare_Y(Y, m_all)
        if validation_data is not None:
            if validation_split:
                raise ValueError("validation_split: give validation_data or validation_split, not both")
            X_val, Y_val = self._prepare_validation(validation_data)
        elif validation_split:
            n_val = int(round(validation_split * m_all))
            if n_val < 1 or n_val >= m_all:
                raise ValueError(f"validation_split: {validation_split} of m = {m_all} leaves "
                                 f"{n_val} validation and {m_all - n_val} training examples")
            perm = np.random.default_rng([o.seed, 2**31]).permutation(m_all)
            val_idx = bk.asarray(np.sort(perm[:n_val]), dtype="int64")
            tr_idx = bk.asarray(np.sort(perm[n_val:]), dtype="int64")
            X_val, Y_val = xp.take(X, val_idx, axis=1), xp.take(Y, val_idx, axis=1)
            X, Y = xp.take(X, tr_idx, axis=1), xp.take(Y, tr_idx, axis=1)
        else:
            X_val = Y_val = None
        if o.early_stopping is not None and X_val is None:
            raise ValueError("early_stopping: needs validation_data or validation_split > 0")
        m = X.shape[1]
        self._init_optimizer(o.opt)
        fused = (self.output_activation, self.loss) in FUSED_PAIRS
        # the step updates in place: work on copies made once per fit call, so arrays
        # held from before the call (the user's, a previous model.parameters) never change
        params, state = _owned_copy(xp, self.parameters), _owned_copy(xp, self.optimizer_state)
        ts = TrainState(params, o.opt, state) if fused else None  # the in-place step's view of them
        o.t0 = time.perf_counter()
        for _ in range(o.epochs):
            e = self.epoch  # 0-based index of this epoch
            lr = o.learning_rate(e)
            rng = np.random.default_rng([o.seed, e])
            if shuffle:
                perm = bk.asarray(rng.permutation(m), dtype="int64")
                Xs, Ys = xp.take(X, perm, axis=1), xp.take(Y, perm, axis=1)
            else:
                Xs, Ys = X, Y
            try:
                params, state, cost_sum, hits = self._run_epoch(
                    xp, Xs, Ys, params, state, o.opt, lr, o.batch_size, o.keep_prob, rng, o.l2, o.clip_norm, ts)
            except Exception as exc:
                if _is_out_of_memory(exc):
                    raise MemoryError(
                        f"out of memory on {bk} in epoch {e + 1} with batch_size={o.batch_size} "
                        f"({'-'.join(map(str, self.layer_dims))} network, {self.dtype}): try a smaller "
                        "batch_size (--batch-size), float32, or a smaller network"
                    ) from exc
                raise
            # the host syncs of an epoch: its cost and accuracy (and, in _end_epoch, finiteness)
            # publish copies: the step keeps updating params/state in place, so an interrupt
            # (Ctrl-C, out of memory) in a later epoch leaves the model at this completed epoch
            if self._end_epoch(o, e, lr, float(cost_sum), None if hits is None else float(hits), m, params, state,
                               X_val, Y_val, copy=True):
                break
        self._end_fit(o)
        return self.history

    def _init_optimizer(self, opt):
        """Fresh optimiser state unless the model's belongs to the same optimiser and hyper-parameters."""
        config = {"name": opt.name, "hyper": dict(opt.hyper)}
        if self.optimizer_state is None or self.optimizer_config != config:
            self.optimizer_state = opt.init(self.parameters)
            self.optimizer_config = config

    def _prepare_validation(self, validation_data):
        """``(X_val, Y_val)`` on the backend, checked like the training data."""
        if not (isinstance(validation_data, (tuple, list)) and len(validation_data) == 2):
            raise TypeError("validation_data: expected a tuple (X_val, Y_val)")
        X_val = self._prepare_X(validation_data[0], "validation_data[0]")
        return X_val, self._prepare_Y(validation_data[1], X_val.shape[1], "validation_data[1]")

    def _end_epoch(self, o, e, lr, cost_sum, hits, m, params, state, X_val, Y_val, *, copy) -> bool:
        """Book-keeping after epoch ``e`` (0-based); True when early stopping ends training.

        ``cost_sum`` (sum over batches of batch cost * batch size) and ``hits``
        (correct predictions, None for regression) are host floats.  Raises
        :class:`TrainingDivergedError` before anything is published when the cost
        or the parameters are not finite.  ``copy`` publishes copies of
        ``params``/``state`` (needed when the caller keeps updating them in place).
        """
        xp = self.backend.xp
        cost = cost_sum / m + (float(_l2_cost(xp, params, self.L, o.l2, m)) if o.l2 else 0.0)
        if not math.isfinite(cost) or not _all_finite(xp, params.values()):
            what = f"the cost is {cost}" if not math.isfinite(cost) else \
                "its updates made the parameters NaN or infinite"
            raise TrainingDivergedError(
                f"training diverged in epoch {e + 1}: {what}; try a smaller learning_rate (now {lr:g})"
                + o.checkpoint_note())
        if copy:
            params, state = _owned_copy(xp, params), _owned_copy(xp, state)
        self.parameters, self.optimizer_state = params, state
        self.epoch = e + 1
        h = self.history
        h.epoch.append(self.epoch)
        h.cost.append(cost)
        h.accuracy.append(hits / m if hits is not None else None)
        h.learning_rate.append(lr)
        vc, va = self._evaluate(X_val, Y_val) if X_val is not None else (None, None)
        h.val_cost.append(vc)
        h.val_accuracy.append(va)
        h.time_s.append(time.perf_counter() - o.t0)
        logs = {k: getattr(h, k)[-1] for k in ("cost", "accuracy", "val_cost", "val_accuracy", "learning_rate",
                                                "time_s")}
        stop = False
        if o.early_stopping is not None:
            if vc < o.best[0]:
                o.best, o.waited = (vc, self.epoch, self.parameters), 0  # published arrays: not updated again
            else:
                o.waited += 1
                stop = o.waited >= o.early_stopping
        for cb in o.callbacks:
            cb(self, self.epoch, logs)
        if stop:
            h.stopped_early = True
            if o.restore_best and o.best[2] is not None:
                self.parameters = o.best[2]
                h.best_epoch = o.best[1]
        if o.checkpoint is not None and (stop or self.epoch % o.checkpoint_every == 0):
            self.save(o.checkpoint)
        return stop

    def _end_fit(self, o):
        """The final checkpoint, unless the last epoch (or early stopping) already wrote it."""
        if o.checkpoint is not None and self.epoch % o.checkpoint_every != 0 and not self.history.stopped_early:
            self.save(o.checkpoint)

    def _run_epoch(self, xp, Xs, Ys, params, state, opt, lr, batch_size, keep_prob, rng, l2, clip_norm, ts):
        """One pass over the (shuffled) columns of ``Xs`` in mini-batches.

        ``ts``: the :class:`bpnet.step.TrainState` over ``params`` and ``state``
        for the fused (output, loss) pairs, which the step updates in place
        (built once per fit); None for the others (the course's backward and
        ``opt.step``).  Returns the new parameters and optimiser state and two
        0-d device accumulators: the sum over batches of ``batch cost * batch
        size`` and the number of correct predictions (``None`` for regression).
        No host sync.
        """
        bk, L, m = self.backend, self.L, Xs.shape[1]
        hidden = get_activation(self.hidden_activation)
        output = get_activation(self.output_activation)
        spec = get_loss(self.loss)
        grad_keys = [f"d{p}{l}" for l in range(1, L + 1) for p in "Wb"]
        cost_sum = hits = None
        batch_masks = (_epoch_masks(self.layer_dims, m, batch_size, keep_prob, rng, self.dtype, bk)
                       if keep_prob is not None else None)
        for start in range(0, m, batch_size):
            stop = min(start + batch_size, m)
            Xb = Xs[:, start:stop]
            Yb = Ys[:, start:stop]
            mb = stop - start
            masks = next(batch_masks) if batch_masks is not None else None
            if ts is not None:
                batch = ts.batch(xp, mb)  # (ones column, ones row, blocks), cached per batch size
                acts, gs = forward_train(xp, Xb, ts.Ws, ts.bs, hidden, output, masks, ones_row=batch[1],
                                         blocks=batch[2])
                AL = acts[-1]
            else:
                AL, caches = _forward(xp, Xb, params, L, hidden, output, masks)
            c = spec.cost(xp, AL, Yb) * mb
            cost_sum = c if cost_sum is None else cost_sum + c
            if self.task != "regression":
                h = self._hits(xp, AL, Yb)
                hits = h if hits is None else hits + h
            if ts is not None:  # fused backward + in-place update (bpnet.step); AL is overwritten
                backward_update(xp, acts, Yb, ts, hidden, lr, gs=gs, masks=masks, l2=l2, clip_norm=clip_norm,
                                batch=batch)
                continue
            grads = _backward(xp, AL, Yb, caches, hidden, output, spec, fused=False, need_dA0=False, masks=masks)
            if l2:
                grads = _add_l2_gradients(grads, params, L, l2, mb)  # dW += (lambda / m) W
            if clip_norm is not None:
                grads, _ = _clip(xp, grads, grad_keys, clip_norm)  # g *= min(1, c / ||g||)
            params, state = opt.step(params, grads, state, lr)
        return params, state, cost_sum, hits

    def _hits(self, xp, AL, Y):
        return _hits(xp, AL, Y, self.task)

    def _evaluate(self, X, Y):
        xp = self.backend.xp
        AL, _ = _forward(xp, X, self.parameters, self.L, get_activation(self.hidden_activation),
                         get_activation(self.output_activation))
        cost = float(get_loss(self.loss).cost(xp, AL, Y))
        acc = float(self._hits(xp, AL, Y)) / X.shape[1] if self.task != "regression" else None
        return cost, acc

    # ------------------------------------------------------------------ #
    # inference

    def predict_proba(self, X):
        """Network output ``AL``, shape ``(n_L, m)``, on the backend (no dropout)."""
        X = self._prepare_X(X)
        AL, _ = _forward(self.backend.xp, X, self.parameters, self.L, get_activation(self.hidden_activation),
                         get_activation(self.output_activation))
        return AL

    def predict(self, X):
        """Predictions on the backend.

        Returns
        -------
        array
            Classification: class indices of shape ``(m,)`` (int64) — for one sigmoid
            unit 1 where ``AL > 0.5``; several sigmoid units (multi-label): 0/1 of shape
            ``(n_L, m)``.  Regression: ``AL`` of shape ``(n_L, m)``.
        """
        xp = self.backend.xp
        AL = self.predict_proba(X)
        if self.task == "multiclass":
            return xp.argmax(AL, axis=0)
        if self.task == "binary":
            pred = xp.astype(AL > 0.5, xp.int64)
            return pred[0, :] if AL.shape[0] == 1 else pred
        return AL

    def evaluate(self, X, Y) -> dict:
        """``{"cost": float, "accuracy": float or None, "m": int}`` on ``(X, Y)`` (no dropout, no L2 term)."""
        X = self._prepare_X(X)
        Y = self._prepare_Y(Y, X.shape[1])
        cost, acc = self._evaluate(X, Y)
        return {"cost": cost, "accuracy": acc, "m": int(X.shape[1])}

    # ------------------------------------------------------------------ #
    # checkpoints

    def save(self, path):
        """Write an atomic, pickle-free checkpoint (parameters, optimiser state, architecture, history)."""
        from .checkpoint import save_checkpoint

        metadata = {"model": self.config(), "epoch": self.epoch, "history": self.history.to_dict(),
                    "optimizer": self.optimizer_config, "user": self.metadata}
        return save_checkpoint(path, self.parameters, optimizer_state=self.optimizer_state, metadata=metadata)

    @classmethod
    def load(cls, path, *, backend=None) -> "MLP":
        """Rebuild a model from :meth:`save`'s checkpoint on ``backend`` (any backend)."""
        from .checkpoint import check_architecture, load_checkpoint

        ck = load_checkpoint(path, backend=backend)
        meta = ck.metadata
        if not isinstance(meta, dict) or "model" not in meta:
            raise ValueError(f"checkpoint {path}: not an MLP checkpoint (no 'model' entry in its metadata)")
        cfg = dict(meta["model"])
        W1 = ck.parameters["W1"]
        bk = _backends.get(_backends._name_of_namespace(array_api_compat.array_namespace(W1)),
                           device=array_api_compat.device(W1))
        model = cls(**cfg, backend=bk)
        check_architecture(ck.header, model.layer_dims, hidden_activation=None, output_activation=None, loss=None)
        model.parameters = ck.parameters
        model.optimizer_state = ck.optimizer_state
        model.optimizer_config = meta.get("optimizer")
        model.epoch = int(meta.get("epoch", 0))
        model.history = History.from_dict(meta.get("history", {}))
        model.metadata = dict(meta.get("user") or {})
        return model


#: alias: ``bpnet.Model`` is ``bpnet.MLP``
Model = MLP
