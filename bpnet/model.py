"""A model object over bpnet's math: :class:`MLP`.

``MLP`` keeps the architecture, the parameters, the optimiser state and the
training history; :meth:`MLP.fit` runs bpnet's one epoch loop
(:mod:`bpnet.train.loop`) over local mini-batches or, with ``client=``, over
a Dask cluster.  Examples are columns: ``X`` is ``(n_x, m)``.

In-place updates: each fit copies ``model.parameters`` and
``model.optimizer_state`` once and updates the copies in place, publishing a
copy after every epoch; arrays you held before the call are never modified,
and ``X``/``Y`` are only read.  After a :class:`TrainingDivergedError` the
model holds its last finite epoch.
"""

from __future__ import annotations

import dataclasses
import math
import os
import warnings

import numpy as np
from array_api_compat import is_writeable_array

from . import _validate as v
from . import backends
from .io.checkpoint import load_checkpoint, save_checkpoint
from .nn import INITS, get_activation, initialize_parameters_deep, predictions, resolve_head
from .optim import get_optimizer
from .train import FitConfig, History, LocalBatches, Net, Snapshot, TrainingDivergedError, TrainState, epochs
from .train.inference import forward_batches
from .train.loop import Plateau
from .train.step import batch_metrics

__all__ = ["MLP", "Model", "History", "TrainingDivergedError"]


def _settled(name):
    """A property of :class:`MLP` kept in ``name``, read and written after a published snapshot is laid out."""

    def get(self):
        self._settle()
        return getattr(self, name)

    def put(self, value):
        self._settle()
        setattr(self, name, value)

    return property(get, put)


class MLP:
    """An L-layer perceptron trained with the course's backpropagation.

    Parameters
    ----------
    layer_dims : list of int
        ``[n_x, n_1, ..., n_L]``.
    hidden_activation : str
        A hidden activation of :data:`bpnet.ACTIVATIONS` (``"relu"``, ``"tanh"``, ...).
    output_activation, loss : str, optional
        Defaults and allowed pairs: :func:`bpnet.nn.resolve_head` (binary
        cross-entropy for one output unit, categorical for more; a loss brings
        its canonical output).
    init : {"he", "xavier", "course"}
    seed : int
        Seed of the initial weights, and the default seed of :meth:`fit`.
    dtype : {"float32", "float64"}
    backend : str or Backend, optional
        See :func:`bpnet.backends.get` (explicit > ``BPNET_BACKEND`` > auto).
    parameters : dict, optional
        Start from these ``W1, b1, ..., WL, bL`` instead of a random initialisation.

    Attributes
    ----------
    parameters : dict
        ``W1, b1, ..., WL, bL`` on the backend; assigning checks the
        architecture, dtype and backend.
    optimizer_state : dict or None
        State of the optimiser of the last fit (``{"t", "v", "s"}``).
    epoch : int
        Epochs trained so far.
    history : History
    metadata : dict
        JSON-serialisable notes saved with the checkpoint.
    preprocessor : bpnet.io.Preprocessor or None
        How raw data become this model's inputs and labels (saved with the checkpoint).
    """

    def __init__(self, layer_dims, *, hidden_activation="relu", output_activation=None, loss=None, init="he",
                 seed=0, dtype="float32", backend=None, parameters=None):
        self.layer_dims = v.layer_dims(layer_dims)
        self.hidden_activation = get_activation(hidden_activation, "hidden_activation", hidden=True).name
        output, spec = resolve_head(self.layer_dims[-1], output_activation, loss)
        self.output_activation, self.loss = output.name, spec.name
        self.init = v.choice(init, "init", INITS, what="initialisation")
        self.seed = v.seed(seed)
        self.dtype = backends.float_dtype(dtype)
        self.backend = backends.get(backend)
        if parameters is None:
            parameters = initialize_parameters_deep(self.layer_dims, init=init, seed=self.seed, dtype=self.dtype,
                                                    backend=self.backend)
        self._pending = None
        self.parameters = parameters
        self.optimizer_state = None
        self.optimizer_config = None
        self.epoch = 0
        self.history = History()
        self.metadata = {}
        self.preprocessor = None

    # ------------------------------------------------------------------ #
    @property
    def L(self) -> int:
        return len(self.layer_dims) - 1

    @property
    def net(self) -> Net:
        """The activations and loss (registry entries) the math runs with."""
        return Net(get_activation(self.hidden_activation), get_activation(self.output_activation),
                   resolve_head(self.layer_dims[-1], self.output_activation, self.loss)[1])

    @property
    def task(self) -> str:
        """``"binary"``, ``"multiclass"`` or ``"regression"`` (the loss's task)."""
        return self.net.loss.task

    @property
    def parameters(self) -> dict:
        return self._parameters

    @parameters.setter
    def parameters(self, value):
        L = v.check_parameters(value)
        dims = [int(value["W1"].shape[1])] + [int(value[f"W{l}"].shape[0]) for l in range(1, L + 1)]
        if dims != self.layer_dims or set(value) != set(v.param_keys(L)):
            raise ValueError(f"parameters: expected W1, b1, ..., W{self.L}, b{self.L} of a "
                             f"{'-'.join(map(str, self.layer_dims))} network, got {'-'.join(map(str, dims))}"
                             f" (keys {sorted(map(str, value))})")
        W1 = value["W1"]
        if backends.dtype_str(W1.dtype) != self.dtype:
            raise TypeError(f"parameters: expected dtype {self.dtype} like the model, got "
                            f"{backends.dtype_str(W1.dtype)}")
        if backends.backend_of(W1) != self.backend:
            raise ValueError(f"parameters: expected arrays on {self.backend}, got {backends.describe(W1)}; "
                             "move them with model.backend.asarray(...)")
        self._parameters = dict(value)

    # the parameters and optimiser state: set directly, or published by a fit each epoch as a Snapshot (its
    # copies made then, laid out as dicts when first read)
    _parameters = _settled("_params")
    optimizer_state = _settled("_opt_state")

    def _publish(self, snapshot: Snapshot) -> None:
        """Make ``snapshot``'s (a :class:`~bpnet.train.Snapshot`) the parameters and optimiser state."""
        self._pending = snapshot

    def _settle(self) -> None:
        snap, self._pending = self._pending, None
        if snap is not None:
            self._params, self._opt_state = snap.tree()

    def config(self) -> dict:
        """The constructor arguments (JSON-serialisable), as saved in checkpoints."""
        return {"layer_dims": self.layer_dims, "hidden_activation": self.hidden_activation,
                "output_activation": self.output_activation, "loss": self.loss, "init": self.init,
                "seed": self.seed, "dtype": self.dtype}

    def __repr__(self) -> str:
        return (f"MLP({'-'.join(map(str, self.layer_dims))}, hidden={self.hidden_activation}, "
                f"output={self.output_activation}, loss={self.loss}, dtype={self.dtype}, "
                f"backend={self.backend.name}, epoch={self.epoch})")

    # ------------------------------------------------------------------ #
    # data: the one conversion of the validation vocabulary, for fit, predict and evaluate alike

    def _features(self, X, name="X"):
        n_x = self.layer_dims[0]
        return v.as_features(X, name, self.backend, self.dtype, n_x, f"for layer_dims[0] = {n_x}")

    def _labels(self, Y, m, name="Y"):
        return v.as_labels(Y, name, self.backend, self.dtype, self.layer_dims[-1], m, self.net.loss.target,
                           "= (layer_dims[-1], m of X)")

    def _validation(self, validation_data):
        if not (isinstance(validation_data, (tuple, list)) and len(validation_data) == 2):
            raise TypeError("validation_data: expected a tuple (X_val, Y_val)")
        X_val = self._features(validation_data[0], "validation_data[0]")
        return X_val, self._labels(validation_data[1], X_val.shape[1], "validation_data[1]")

    # ------------------------------------------------------------------ #
    # training

    def fit(self, X, Y, *, sample_weight=None, validation_data=None, validation_split=0.0, client=None,
            chunk_size=None, **options) -> History:
        """Train for ``epochs`` more epochs of mini-batch optimisation.

        Parameters
        ----------
        X : array, shape (n_x, m)
            Host data (numpy, a list, a DataFrame, ...) or an array of any
            backend; moved to the model's backend once.
        Y : array, shape (n_L, m), or (m,)
            0/1 labels (binary), one-hot or 1-D class indices (categorical), targets (mse, poisson).
        sample_weight : array, shape (m,), optional
            Weights >= 0 of the training examples: each mini-batch's gradient and
            cost are ``sum(w g) / sum(w)`` (scikit-learn's weighting; all ones: the
            unweighted numbers); the validation cost is not weighted.
        validation_data : tuple (X_val, Y_val), optional
        validation_split : float in [0, 1)
            Otherwise hold out this fraction of the columns (seeded) for validation.
        client : distributed.Client or str, optional
            Train data-parallel on a Dask cluster (:func:`bpnet.train.distributed.fit_distributed`):
            a ``distributed.Client``, ``"local:N"`` or ``"tcp://host:8786"``; X/Y may
            then be dask arrays chunked along the examples axis.
        chunk_size : int, optional
            With ``client``: examples per chunk.
        **options
            The fields of :class:`bpnet.train.FitConfig` -- ``epochs`` (100),
            ``batch_size`` (64), ``optimizer`` ("adam"), ``learning_rate``,
            ``lr_decay``, ``decay_interval``, ``schedule`` ("staircase",
            "constant", "invscaling", "adaptive"), ``power_t``, ``tol``,
            ``n_iter_no_change``, ``monitor``, ``l2``, ``dropout``, ``clip_norm``,
            ``early_stopping``, ``restore_best``, ``shuffle``, ``seed``,
            ``callbacks`` (``callback(model, epoch, logs)``), ``checkpoint``,
            ``checkpoint_every`` -- and the optimiser's hyper-parameters
            (``beta``; ``beta1``, ``beta2``, ``epsilon``; ``momentum``, ``nesterov``).
            ``model.plateau`` (:class:`bpnet.train.loop.Plateau`) keeps the
            convergence check's state (best value, count, adaptive factor) for
            the next fit with the same ``monitor``; it is not saved.

        Returns
        -------
        History
            ``self.history``, extended by this call.

        Raises
        ------
        TrainingDivergedError
            When the cost or the parameters become NaN or inf; names the epoch,
            suggests a smaller learning rate; the model keeps its last finite
            epoch and the last checkpoint stays on disk.
        """
        if client is not None or chunk_size is not None:
            if client is None:
                raise ValueError("chunk_size: only used with client= (data-parallel training on Dask)")
            if validation_split:
                raise ValueError("validation_split: not supported with client=; pass validation_data")
            if sample_weight is not None:
                raise ValueError("sample_weight: not supported with client= (data-parallel training)")
            from .train.distributed import fit_distributed

            return fit_distributed(self, X, Y, client=client, chunk_size=chunk_size,
                                   validation_data=validation_data, **options)
        cfg = self._config(options)
        split = v.real(validation_split, "validation_split", low=0.0, high=1.0, high_open=True)
        X = self._features(X)
        Y = self._labels(Y, X.shape[1])
        if validation_data is not None and split:
            raise ValueError("validation_split: give validation_data or validation_split, not both")
        weighted = sample_weight is not None
        if weighted:  # the weights ride along as the last row of Y: shuffled and sliced with the labels
            Y = self.backend.xp.concat([Y, self._checked_weights(sample_weight, X.shape[1])], axis=0)
        if split:
            X, Y, validation_data = self._split(X, Y, split, cfg.seed)
            if weighted:
                validation_data = (validation_data[0], validation_data[1][:-1, :])
        return self.fit_source(LocalBatches(X, Y, self.backend), validation_data=validation_data, config=cfg,
                               weighted=weighted)

    def _checked_weights(self, sample_weight, m):
        """``sample_weight`` as a ``(1, m)`` row on the backend: finite, >= 0, a positive sum."""
        xp = self.backend.xp
        w = v.to_backend(sample_weight, "sample_weight", self.backend, self.dtype)
        if w.ndim != 1 or w.shape[0] != m:
            raise ValueError(f"sample_weight: expected shape ({m},), one weight per column of X, got {tuple(w.shape)}")
        v.check_finite(xp, w, "sample_weight")
        if not bool(xp.all(w >= 0.0)) or not float(xp.sum(w)) > 0.0:
            raise ValueError("sample_weight: expected weights >= 0 with a positive sum, got "
                             f"min {float(xp.min(w)):g}, sum {float(xp.sum(w)):g}")
        return xp.reshape(w, (1, m))

    def _config(self, options) -> FitConfig:
        cfg = options.pop("config", None) or FitConfig.from_options(**options)
        return cfg if cfg.seed is not None else dataclasses.replace(cfg, seed=self.seed)

    def _split(self, X, Y, fraction, seed):
        """``(X_train, Y_train, (X_val, Y_val))``: a seeded ``fraction`` of the columns held out."""
        m, xp = X.shape[1], self.backend.xp
        n_val = int(round(fraction * m))
        if n_val < 1 or n_val >= m:
            raise ValueError(f"validation_split: {fraction} of m = {m} leaves {n_val} validation and "
                             f"{m - n_val} training examples")
        perm = np.random.default_rng([seed, 2**31]).permutation(m)
        val, tr = (self.backend.asarray(np.sort(p), dtype="int64") for p in (perm[:n_val], perm[n_val:]))
        return xp.take(X, tr, axis=1), xp.take(Y, tr, axis=1), (xp.take(X, val, axis=1), xp.take(Y, val, axis=1))

    def fit_source(self, source, *, validation_data=None, weighted=False, **options) -> History:
        """The epoch loop over any gradient source (local batches, Dask chunks); see :meth:`fit`.

        ``source`` has ``m`` and ``run_epoch(ts, net, cfg, epoch, lr, metrics)`` (:mod:`bpnet.train.loop`), and
        ``steps_here = False`` when its steps run in other processes (a Dask cluster's);
        ``weighted``: the last row of its ``Y`` holds the examples' weights.
        """
        cfg = self._config(options)
        validation = self._validation(validation_data) if validation_data is not None else None
        if cfg.early_stopping is not None and validation is None:
            raise ValueError("early_stopping: needs validation_data or validation_split > 0")
        if cfg.monitor == "val_cost" and validation is None:
            raise ValueError("monitor: 'val_cost' needs validation_data or validation_split > 0")
        config = {"name": cfg.optimizer.name, "hyper": dict(cfg.optimizer.hyper)}
        if self.optimizer_state is None or self.optimizer_config != config:
            self.optimizer_state, self.optimizer_config = cfg.optimizer.init(self._parameters), config
        # the step updates in place: it works on copies (own=True), so arrays held from before the call never change
        ts = TrainState(self._parameters, cfg.optimizer, self.optimizer_state, own=True)
        net = dataclasses.replace(self.net, weighted=True) if weighted else self.net
        track = _Tracker(self, cfg, validation)
        # a fit beyond the machine's memory is refused here, with its own message (loop.steps_fit_memory)
        run = epochs(source, ts, net, cfg, first_epoch=self.epoch, note=track.note, plateau=track.plateau)
        try:
            for result in run:
                if track.end_epoch(result, ts):
                    break
        except Exception as exc:
            if _is_out_of_memory(exc):
                raise MemoryError(f"out of memory on {self.backend} in epoch {self.epoch + 1} with batch_size="
                                  f"{cfg.batch_size} ({'-'.join(map(str, self.layer_dims))} network, {self.dtype}): "
                                  "try a smaller batch_size (--batch-size), float32, or a smaller network") from exc
            raise
        restored = track.finish()
        if cfg.checkpoint is not None and (restored or (self.epoch % cfg.checkpoint_every
                                                        and not self.history.stopped_early)):
            self.save(cfg.checkpoint)  # the final checkpoint, unless the last epoch wrote it
        return self.history

    # ------------------------------------------------------------------ #
    # inference

    # The forward of inference runs over column batches (bpnet.train.inference.forward_batches, the training
    # step's forward_train on each slice of X): each batch yields its output A[L] *and* its last
    # pre-activation Z[L]; _output keeps A[L] (or what ``reduce`` makes of it) in one preallocated array,
    # score_arrays computes each batch's cost from its Z[L] (batch_metrics) and never holds all of A[L].

    def _output(self, X, reduce=None):
        """The network output ``A[L]`` ``(n_L, m)`` of checked ``X``, or ``reduce(A[L])`` of each column batch
        (e.g. class indices ``(m,)``), written into one preallocated array; NaN/inf raise
        :class:`~bpnet.train.inference.NonFiniteOutputError`."""
        xp, m, out, parts = self.backend.xp, X.shape[1], None, []
        for cols, AL, _ in forward_batches(xp, X, self._parameters, self.net):
            part = AL if reduce is None else reduce(AL)
            if cols.start == 0 and cols.stop == m:
                return part  # one batch: nothing to copy
            if not is_writeable_array(part):  # immutable arrays (JAX): joined at the end
                parts.append(part)
                continue
            if out is None:
                out = xp.empty((*part.shape[:-1], m), dtype=part.dtype, device=self.backend.device)
            out[..., cols] = part
        return out if not parts else xp.concat(parts, axis=-1)

    def predict_proba(self, X):
        """Network output ``AL``, shape ``(n_L, m)``, on the backend (no dropout), computed over column batches.

        Raises :class:`~bpnet.train.inference.NonFiniteOutputError` (a ``FloatingPointError``) naming the
        layer where the forward pass overflowed, rather than returning NaN.
        """
        return self._output(self._features(X))

    def predict(self, X):
        """Predictions on the backend (computed over column batches; NaN/inf raise as in :meth:`predict_proba`).

        Returns
        -------
        array
            Classification: class indices of shape ``(m,)`` (int64) -- for one
            sigmoid unit 1 where ``AL > 0.5``; several sigmoid units (multi-label):
            0/1 of shape ``(n_L, m)``.  Regression: ``AL`` of shape ``(n_L, m)``.
        """
        xp = self.backend.xp
        X = self._features(X)
        if self.task == "multiclass":
            return self._output(X, lambda AL: predictions(xp, AL, "multiclass"))
        if self.task == "binary":
            pred = self._output(X, lambda AL: xp.astype(predictions(xp, AL, "binary"), xp.int64))
            return pred[0, :] if pred.shape[0] == 1 else pred
        return self._output(X)

    def evaluate(self, X, Y) -> dict:
        """``{"cost": float, "accuracy": float or None, "m": int}`` on ``(X, Y)`` (no dropout, no L2 term)."""
        X = self._features(X)
        cost, acc = self.score_arrays(X, self._labels(Y, X.shape[1]))
        return {"cost": cost, "accuracy": acc, "m": int(X.shape[1])}

    def score_arrays(self, X, Y):
        """``(cost, accuracy or None)`` on checked arrays of the backend (host floats), over column batches;
        each batch's cost from its logits ``Z[L]`` (:func:`~bpnet.train.step.batch_metrics`)."""
        xp, net = self.backend.xp, self.net
        cost = hits = None
        for cols, AL, ZL in forward_batches(xp, X, self._parameters, net):
            c, h = batch_metrics(xp, AL, Y[:, cols], net, ZL)
            cost = c if cost is None else cost + c
            hits = h if hits is None or h is None else hits + h
        m = X.shape[1]
        return float(cost) / m, (None if hits is None else float(hits) / m)

    # ------------------------------------------------------------------ #
    # checkpoints and pickling

    def _meta(self) -> dict:
        """Everything but the arrays, as JSON data: what a checkpoint and a pickle carry besides them."""
        return {"model": self.config(), "epoch": self.epoch, "history": self.history.to_dict(),
                "optimizer": self.optimizer_config, "user": self.metadata,
                "preprocessor": None if self.preprocessor is None else self.preprocessor.to_dict()}

    def save(self, path):
        """Write an atomic, pickle-free checkpoint (a safetensors file: parameters, optimiser state, architecture,
        history, preprocessor); see :mod:`bpnet.io.checkpoint`."""
        return save_checkpoint(path, self._parameters, optimizer_state=self.optimizer_state, metadata=self._meta())

    @classmethod
    def load(cls, path, *, backend=None) -> "MLP":
        """Rebuild a model from :meth:`save`'s checkpoint (or an earlier bpnet's ``.npz``) on ``backend``.

        The layer sizes are the saved tensors' shapes; every entry of the
        metadata is checked against them and the registries before any tensor
        is read, and the model is built from the checked tensors (no random
        initialisation).  A bad entry raises :class:`~bpnet.io.CheckpointError`
        naming the file and the field, e.g. ``metadata['history']['cost'][3]``.
        """
        def check(header):
            opt = header["optimizer"]
            _checked_entries(header["metadata"], header["layer_dims"], header["dtype"],
                            None if opt is None else (opt["groups"], opt["scalars"]))

        ck = load_checkpoint(path, backend=backend, validate=check)
        cfg = ck.metadata["model"]
        model = cls(**{k: cfg[k] for k in _MODEL_FIELDS if k in cfg},
                    backend=backends.backend_of(ck.parameters["W1"]), parameters=ck.parameters)
        model._restore(ck.optimizer_state, ck.metadata)
        return model

    def _restore(self, optimizer_state, meta):
        """Set the state besides the parameters from ``meta`` (:meth:`_meta`'s), checked by :func:`_checked_entries`."""
        opt = None
        if optimizer_state is not None:
            opt = (sorted(k for k, a in optimizer_state.items() if isinstance(a, dict)),
                   {k: a for k, a in optimizer_state.items() if not isinstance(a, dict)})
        entries = _checked_entries(meta, self.layer_dims, self.dtype, opt)
        self.optimizer_state = optimizer_state
        self.optimizer_config = entries["optimizer"]
        self.epoch = entries["epoch"]
        self.history = entries["history"]
        self.metadata = entries["user"]
        if entries["preprocessor"] is not None:
            self.preprocessor = entries["preprocessor"]

    def __getstate__(self):
        """Host arrays and names only (no module references), so a model pickles from any backend."""
        host = backends.to_numpy
        return {"backend": backends.spec(self.backend), "meta": self._meta(),
                "parameters": {k: host(a).copy() for k, a in self._parameters.items()},
                "optimizer_state": _tree(self.optimizer_state, lambda a: host(a).copy())}

    def __setstate__(self, state):
        try:
            bk = backends.get(state["backend"])
        except backends.BackendUnavailableError as exc:
            warnings.warn(f"bpnet: the model was saved from backend {state['backend']!r}, which is not available "
                          f"here ({exc}); its weights are loaded onto numpy", UserWarning, stacklevel=2)
            bk = backends.get("numpy")
        self.__init__(**state["meta"]["model"], backend=bk,
                      parameters={k: bk.asarray(a) for k, a in state["parameters"].items()})
        self._restore(_tree(state["optimizer_state"], bk.asarray), state["meta"])


#: alias: ``bpnet.Model`` is ``bpnet.MLP``
Model = MLP


class _Tracker:
    """The book-keeping after each epoch of :meth:`MLP.fit_source`: publish, history, early stopping, the
    convergence check and adaptive schedule (:class:`~bpnet.train.loop.Plateau`), checkpoints."""

    def __init__(self, model, cfg, validation):
        self.model, self.cfg, self.validation = model, cfg, validation
        self.best, self.best_epoch, self.best_params, self.waited = math.inf, None, None, 0
        watched = "score" if callable(cfg.monitor) else cfg.monitor
        kept = getattr(model, "plateau", None)
        self.plateau = kept if kept is not None and kept.monitor == watched else Plateau(watched)
        model.plateau = self.plateau
        #: the best epoch of a validation monitor, restored at the end (restore_best)
        self.top = None

    def note(self) -> str:
        ck = self.cfg.checkpoint
        return f"; the last checkpoint ({ck}) is intact" if ck is not None and os.path.exists(ck) else ""

    def end_epoch(self, r, ts) -> bool:
        """Publish copies of the epoch's parameters and state, record it; True when early stopping ends training.

        Reads ``ts.parameters`` and ``ts.optimizer_state``: with immutable arrays (JAX) each step made new ones,
        so the dicts the loop started from are stale.
        """
        model, cfg, h = self.model, self.cfg, self.model.history
        model._publish(Snapshot(ts))  # copies of the epoch's arrays; the dicts are built when read
        model.epoch = r.epoch
        vc, va = model.score_arrays(*self.validation) if self.validation is not None else (None, None)
        for key, value in (("epoch", r.epoch), ("cost", r.cost), ("accuracy", r.accuracy), ("val_cost", vc),
                           ("val_accuracy", va), ("learning_rate", r.lr), ("time_s", r.seconds)):
            getattr(h, key).append(value)
        logs = {"cost": r.cost, "accuracy": r.accuracy, "val_cost": vc, "val_accuracy": va,
                "learning_rate": r.lr, "time_s": r.seconds}
        stop = False
        if cfg.early_stopping is not None:
            if vc < self.best:
                self.best, self.best_epoch, self.best_params, self.waited = vc, r.epoch, model.parameters, 0
            else:
                self.waited += 1
                stop = self.waited >= cfg.early_stopping
        stop = self.watch(r, vc, logs) or stop
        for cb in cfg.callbacks:
            cb(model, r.epoch, logs)
        if stop:
            h.stopped_early = True
            if cfg.restore_best and self.best_params is not None:
                model._parameters, h.best_epoch = self.best_params, self.best_epoch
        if cfg.checkpoint is not None and (stop or r.epoch % cfg.checkpoint_every == 0):
            model.save(cfg.checkpoint)
        return stop

    def watch(self, r, vc, logs) -> bool:
        """The monitored value through :meth:`Plateau.update` (into ``logs["monitor"]``, ``logs["plateau"]``);
        True when the plateau ends training."""
        cfg, model = self.cfg, self.model
        value = r.cost if cfg.monitor == "cost" else vc if cfg.monitor == "val_cost" else float(cfg.monitor(model))
        improved, event = self.plateau.update(value, cfg)
        if improved and cfg.restore_best and self.plateau.monitor != "cost":
            self.top = (r.epoch, model.parameters)
        logs["monitor"], logs["plateau"] = value, event
        return event == "stop"

    def finish(self) -> bool:
        """After the last epoch: a validation monitor's best epoch restored (restore_best); True if it was."""
        if self.top is None or self.top[0] == self.model.epoch:
            return False
        self.model._parameters, self.model.history.best_epoch = self.top[1], self.top[0]
        return True


def _tree(x, fn):
    """``fn`` on every array in a nest of dicts (optimiser state); other leaves unchanged."""
    if isinstance(x, dict):
        return {k: _tree(val, fn) for k, val in x.items()}
    return x if x is None or isinstance(x, (int, float, str)) else fn(x)


def _is_out_of_memory(exc) -> bool:
    """numpy's MemoryError or cupy's OutOfMemoryError (matched by name: cupy is optional)."""
    return isinstance(exc, MemoryError) or (type(exc).__name__ in ("OutOfMemoryError", "CUDARuntimeError")
                                            and "memory" in str(exc).lower())


# --------------------------------------------------------------------------- #
# the schema of the MLP's entries in a checkpoint's metadata (or a pickle's), checked with the validation
# vocabulary: untrusted input, each error naming its field


#: the entries :meth:`MLP._meta` writes, and the fields of its "model" entry (MLP's constructor arguments)
_META_FIELDS = ("model", "epoch", "history", "optimizer", "user", "preprocessor")
_MODEL_FIELDS = ("layer_dims", "hidden_activation", "output_activation", "loss", "init", "seed", "dtype")


def _expect(value, kind, where):
    if not isinstance(value, kind):
        raise TypeError(f"{where}: expected {'an object (dict)' if kind is dict else 'a list'}, got "
                        f"{type(value).__name__} {str(value)[:40]!r}")
    return value


def _known(entry, fields, where):
    unknown = sorted(map(str, set(entry) - set(fields)))
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {unknown[:8]}; expected some of {list(fields)}")


def _checked_entries(meta, layer_dims, dtype, optimizer) -> dict:
    """The MLP's entries of a checkpoint's metadata, checked: a ``ValueError``/``TypeError`` names the field.

    ``layer_dims`` and ``dtype`` are the saved tensors'; ``optimizer`` is
    ``(groups, scalars)`` of the saved optimiser state, or None.  Returns
    ``{"model": constructor arguments, "epoch", "history": History,
    "optimizer": config or None, "user": dict, "preprocessor": Preprocessor or None}``.
    """
    from .io.preprocess import Preprocessor

    if not isinstance(meta, dict) or "model" not in meta:
        raise ValueError("not an MLP checkpoint (no 'model' entry in its metadata)")
    _known(meta, _META_FIELDS, "metadata")
    pre = meta.get("preprocessor")
    if pre is not None:
        try:
            pre = Preprocessor.from_dict(pre)
        except ValueError as exc:
            raise ValueError(f"metadata['preprocessor']: {str(exc).removeprefix('preprocessor: ')}") from None
    return {"model": _model_entry(meta["model"], layer_dims, dtype),
            "epoch": v.integer(meta.get("epoch", 0), "metadata['epoch']", low=0),
            "history": _history_entry(meta.get("history", {})),
            "optimizer": _optimizer_entry(meta.get("optimizer"), optimizer),
            "user": dict(_expect(meta.get("user", {}) if meta.get("user") is not None else {}, dict,
                                 "metadata['user']")), "preprocessor": pre}


def _model_entry(entry, dims, dtype) -> dict:
    """MLP's constructor arguments, the layer sizes and dtype equal to the tensors'."""
    where = "metadata['model']"
    _known(_expect(entry, dict, where), _MODEL_FIELDS, where)
    missing = [k for k in ("layer_dims", "output_activation", "loss", "dtype") if k not in entry]
    if missing:
        raise ValueError(f"{where}: missing field(s) {missing}; expected {list(_MODEL_FIELDS)}")
    got = v.layer_dims(entry["layer_dims"], f"{where}['layer_dims']")
    if got != list(dims):
        raise ValueError(f"{where}['layer_dims']: {got} does not match the saved tensors, which give {list(dims)}")
    if entry["dtype"] != dtype:
        raise ValueError(f"{where}['dtype']: {entry['dtype']!r:.40} does not match the saved tensors' {dtype!r}")
    hidden = get_activation(entry.get("hidden_activation", "relu"), f"{where}['hidden_activation']", hidden=True)
    output, loss = resolve_head(dims[-1], entry["output_activation"], entry["loss"],
                                output_arg=f"{where}['output_activation']", loss_arg=f"{where}['loss']",
                                units_arg=f"{where}['layer_dims']")
    return {"layer_dims": got, "hidden_activation": hidden.name, "output_activation": output.name,
            "loss": loss.name, "init": v.choice(entry.get("init", "he"), f"{where}['init']", INITS,
                                                 what="initialisation"),
            "seed": v.seed(entry.get("seed", 0), f"{where}['seed']"), "dtype": dtype}


def _history_entry(entry) -> History:
    """A :class:`History`: lists of one entry per epoch, all of one length (epochs >= 1, finite floats or None)."""
    where = "metadata['history']"
    fields = [f.name for f in dataclasses.fields(History)]
    _known(_expect(entry, dict, where), fields, where)
    lists = {}
    for key in (f for f in fields if f not in ("stopped_early", "best_epoch")):  # the per-epoch lists
        items = _expect(entry.get(key, []), list, f"{where}[{key!r}]")
        if key == "epoch":
            lists[key] = [v.integer(x, f"{where}['epoch'][{i}]", low=1) for i, x in enumerate(items)]
        else:
            lists[key] = [None if x is None else v.real(x, f"{where}[{key!r}][{i}]") for i, x in enumerate(items)]
    lengths = {k: len(x) for k, x in lists.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"{where}: expected lists of one length (one entry per epoch), got lengths {lengths}")
    best = entry.get("best_epoch")
    return History(**lists, stopped_early=v.flag(entry.get("stopped_early", False), f"{where}['stopped_early']"),
                   best_epoch=None if best is None else v.integer(best, f"{where}['best_epoch']", low=1))


def _optimizer_entry(config, state):
    """``{"name", "hyper"}`` as :meth:`MLP.fit_source` records it, agreeing with the saved state's groups and t."""
    where = "metadata['optimizer']"
    if config is None:
        if state is not None and state[0]:
            raise ValueError(f"{where}: expected the optimizer's name and hyper-parameters, got None, but the "
                             f"checkpoint holds optimizer moments {state[0]}")
        return None
    _known(_expect(config, dict, where), ("name", "hyper"), where)
    hyper = _expect(config.get("hyper", {}), dict, f"{where}['hyper']")
    try:
        opt = get_optimizer(config.get("name"), **hyper)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"{where}: {exc}") from None
    if state is not None:
        groups, scalars = state
        if sorted(groups) != sorted(opt.rule.slots):
            raise ValueError(f"{where}: {opt.name} keeps the moments {sorted(opt.rule.slots) or 'none'}, the "
                             f"checkpoint holds {sorted(groups) or 'none'}")
        if set(scalars) != {"t"}:
            raise ValueError(f"optimizer_state: expected the step count 't' and no other value for {opt.name}, got "
                             f"{sorted(scalars)}")
        v.integer(scalars["t"], "optimizer_state['t']", low=0)
    return {"name": opt.name, "hyper": dict(opt.hyper)}
