"""scikit-learn's MLP estimators on bpnet: :class:`MLPClassifier`, :class:`MLPRegressor`, on any backend.

Drop-in replacements for ``sklearn.neural_network.MLPClassifier`` and
``MLPRegressor``: the same constructor parameters with the same meanings and
defaults, the same fitted attributes, ``fit(X, y, sample_weight=None)``,
``partial_fit`` (stochastic solvers only), multi-label and multi-output
targets, sparse ``X`` (densified one mini-batch at a time), the same
``ConvergenceWarning``\\s, ``verbose`` lines and exception types -- plus bpnet's
``backend`` and ``dtype`` and the extras ``dropout``, ``init`` and the
registry's other hidden activations.

The math is bpnet's: ``sgd`` and ``adam`` are the registry's optimisers
(:mod:`bpnet.optim.rules`), trained by bpnet's one epoch loop (``MLP.fit``)
with its schedules and convergence check (``FitConfig``'s ``schedule``,
``tol``, ``n_iter_no_change``, ``monitor``); ``lbfgs`` runs
``scipy.optimize`` on the host around bpnet's forward and backward pass on the
backend, as scikit-learn does.  ``X`` is ``(n_samples, n_features)`` here;
results are host numpy float64 arrays.  The initial weights are
scikit-learn's draws from ``random_state``.  Where the numbers differ from
scikit-learn's: the shuffles (bpnet's counter-based per-epoch permutations,
:mod:`bpnet.nn.random`), Adam's epsilon (added to ``sqrt(s_hat)``, the course's
form; scikit-learn adds it before the bias correction) and the L2 term of the
reported loss (scikit-learn's once-per-mini-batch sum, computed with the
epoch's last weights).  With full batches and no shuffle, ``sgd`` takes
scikit-learn's steps and ``lbfgs`` its iterates (``tests/test_sklearn.py``).
Stricter than scikit-learn: negative ``sample_weight``, and negative ``y`` with
``loss="poisson"``, raise ``ValueError``.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import sys
import warnings

import array_api_compat
import numpy as np
import scipy.optimize
import scipy.sparse

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, is_classifier
except ImportError as _exc:  # pragma: no cover - scikit-learn is an optional extra
    raise ImportError("bpnet.sklearn needs scikit-learn: pip install 'bpnet[sklearn]'") from _exc
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import check_random_state, column_or_1d
from sklearn.utils._param_validation import Interval, InvalidParameterError, Options, StrOptions
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import _check_partial_fit_first_call, type_of_target, unique_labels
from sklearn.utils.optimize import _check_optimize_result
from sklearn.utils.validation import _check_sample_weight, check_is_fitted

from . import backends as _backends
from .model import MLP
from .nn import ACTIVATIONS, INITS, random
from .optim import get_optimizer
from .optim.rules import l2_penalty
from .train import TrainingDivergedError, TrainState, backward_update, forward_train, train_step
from .train.step import batch_metrics

try:  # scikit-learn >= 1.6
    from sklearn.utils.validation import validate_data as _sk_validate_data
except ImportError:  # pragma: no cover - older scikit-learn
    _sk_validate_data = None

__all__ = ["MLPClassifier", "MLPRegressor", "InvalidParameterError"]

#: scikit-learn's hidden activations, as bpnet's registry names them
_SK_ACTIVATIONS = {"identity": "linear", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu"}
#: every hidden activation of the registry is offered too (bpnet's names)
_HIDDEN = tuple(a for a, e in ACTIVATIONS.items() if e.hidden)
#: bpnet's output activation -> scikit-learn's ``out_activation_``
_OUT_ACTIVATION = {"sigmoid": "logistic", "linear": "identity", "softmax": "softmax", "exp": "exp"}
#: the regressor's losses -> bpnet's registry
_REGRESSION_LOSSES = {"squared_error": "mse", "poisson": "poisson"}
#: bytes of sparse rows densified at a time for prediction and lbfgs
_SPARSE_BLOCK_BYTES = 16 << 20
_NO = "no_validation"
_NON_FINITE = ("Solver produced non-finite parameter weights. The input data may contain large values and need to "
               "be preprocessed.")


def _warn(message, category=UserWarning):
    """``warnings.warn`` attributed to the first caller outside bpnet (the user's ``fit``), as scikit-learn's are."""
    frame, level = sys._getframe(0), 1
    while frame is not None and frame.f_globals.get("__name__", "").startswith("bpnet."):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)


def _validate_data(estimator, X=_NO, y=_NO, **kwargs):
    """scikit-learn's validation, after moving bpnet-backend arrays to the host, with messages naming X / y."""
    X, y = _to_host(X), _to_host(y)
    _refuse_complex(X, "X")
    _refuse_complex(y, "y")
    try:
        if _sk_validate_data is not None:
            return _sk_validate_data(estimator, X, y, **kwargs)
        return estimator._validate_data(X, y, **kwargs)  # pragma: no cover - scikit-learn < 1.6
    except ValueError as exc:
        msg = str(exc)
        if type(exc) is not ValueError:
            raise
        if msg.startswith("Found input variables with inconsistent numbers of samples"):
            raise ValueError("y: expected one target per row of X (as many samples as X), found inconsistent "
                             f"numbers of samples {msg.rsplit(':', 1)[-1].strip()} for X, y") from None
        if msg.startswith(("Found array with", "Expected 2D array")):
            raise ValueError(f"X: {msg}") from None
        raise


def _to_host(a):
    """An array of a bpnet backend other than numpy (cupy, array_api_strict on any device) -> numpy.

    scikit-learn converts with ``numpy.asarray``, which cupy refuses and array-api-strict allows
    only on its default device; the estimators compute on their own ``backend`` anyway.
    """
    if isinstance(a, str) or a is None or not array_api_compat.is_array_api_obj(a):
        return a
    if array_api_compat.is_cupy_array(a) or array_api_compat.is_array_api_strict_namespace(
            array_api_compat.array_namespace(a)):
        return _backends.to_numpy(a)
    return a  # numpy, and anything else scikit-learn knows how to take


def _refuse_complex(a, name):
    """A short error for complex data (scikit-learn's would print the whole array)."""
    dtype = getattr(a, "dtype", None)
    try:
        kind = np.dtype(dtype).kind if dtype is not None else None
    except TypeError:  # e.g. a pandas extension dtype
        return
    if kind == "c":
        raise ValueError(f"{name}: expected real numbers, got complex data of dtype {np.dtype(dtype).name} "
                         "(Complex data not supported)")


def _row_blocks(X):
    """Row slices of a sparse ``X`` of about :data:`_SPARSE_BLOCK_BYTES` once dense."""
    rows = max(1, _SPARSE_BLOCK_BYTES // (max(1, X.shape[1]) * 8))
    return [slice(i, min(i + rows, X.shape[0])) for i in range(0, X.shape[0], rows)]


class _SparseRows:
    """A gradient source over sparse ``X`` (n_samples, n_features) for :meth:`bpnet.MLP.fit_source`.

    :class:`~bpnet.train.LocalBatches`' epoch -- the permutation of ``(seed, e)``
    and the dropout masks of ``(seed, e, b)`` (:mod:`bpnet.nn.random`), one
    :func:`~bpnet.train.train_step` per mini-batch -- except that each
    mini-batch of rows is densified alone on the host and moved to the backend,
    so no dense copy of the whole ``X`` exists: the same numbers as the dense
    ``X``.  ``Y`` ``(n_out[+1], n_samples)`` is on the backend.
    """

    def __init__(self, X, Y, bk, dtype):
        self.X, self.Y, self.bk, self.dtype = X.tocsr(), Y, bk, dtype
        self.m = X.shape[0]

    def run_epoch(self, ts, net, cfg, e, lr, metrics=True):
        """All steps of 0-based epoch ``e``: ``(sum of m_b J_b, hits)`` on the device (None unless ``metrics``)."""
        xp, dev, size, m = self.bk.xp, self.bk.device, cfg.batch_size, self.m
        perm = random.shuffle(xp, m, (cfg.seed, e), dev) if cfg.shuffle else None
        order = _backends.to_numpy(perm) if perm is not None else np.arange(m)
        sizes = [W.shape[0] for W in ts.Ws[:-1]]
        cost = hits = None
        for b, start in enumerate(range(0, m, size)):
            stop = min(start + size, m)
            rows = order[start:stop]
            Xb = self.bk.asarray(self.X[rows].toarray().T, dtype=self.dtype)
            Yb = xp.take(self.Y, perm[start:stop], axis=1) if perm is not None else self.Y[:, start:stop]
            mk = (None if cfg.keep_prob is None else
                  random.dropout(xp, sizes, stop - start, cfg.keep_prob, (cfg.seed, e, b), dev, Xb.dtype))
            c, h = train_step(xp, Xb, Yb, ts, net, lr, mk, metrics=metrics, l2=cfg.l2, clip_norm=cfg.clip_norm)
            if metrics:
                cost = c if cost is None else cost + c
                hits = h if hits is None or h is None else hits + h
        return cost, hits


class _Record:
    """The estimator's callback for one call of ``MLP.fit``: iterations, verbose lines, validation scores, stops."""

    def __init__(self, est, scale):
        self.est, self.scale, self.n, self.stopped, self.scores, self.losses = est, scale, 0, False, [], []
        self.m = self.n_batches = 1  # set by _options

    def loss(self, model, cost):
        """scikit-learn's loss of the epoch from bpnet's cost: its squared error averages over the outputs, and
        it adds the L2 term once per mini-batch (each batch's ``alpha/2 ||W||^2 / m``), bpnet once per epoch."""
        if not self.est.alpha:
            return cost / self.scale
        pen = float(l2_penalty(model.backend.xp, model.parameters, model.L, self.est.alpha, self.m))
        return (cost - pen) / self.scale + self.n_batches * pen

    def __call__(self, model, epoch, logs):
        est = self.est
        self.n += 1
        self.losses.append(self.loss(model, logs["cost"]))
        if est.verbose:
            print("Iteration %d, loss = %.8f" % (self.n, self.losses[-1]))
        if est.early_stopping:
            self.scores.append(logs["monitor"])
            if est.verbose:
                print("Validation score: %f" % logs["monitor"])
        event = logs["plateau"]
        self.stopped = self.stopped or event == "stop"
        if event is None or not est.verbose:
            return
        what = "Validation score" if est.early_stopping else "Training loss"
        msg = f"{what} did not improve more than tol={est.tol:f} for {est.n_iter_no_change} consecutive epochs."
        if event == "decay":
            print(msg + " Setting learning rate to %f" % (est.learning_rate_init * model.plateau.factor))
        elif est.solver == "sgd" and est.learning_rate == "adaptive":
            print(msg + " Learning rate too small. Stopping.")
        else:
            print(msg + " Stopping.")


class _BaseMLP(BaseEstimator):
    """What both estimators share: parameters, initialisation, the stochastic and lbfgs solvers, prediction."""

    _parameter_constraints: dict = {
        "hidden_layer_sizes": ["array-like", Interval(numbers.Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(_SK_ACTIVATIONS) | set(_HIDDEN))],
        "solver": [StrOptions({"lbfgs", "sgd", "adam"})],
        "alpha": [Interval(numbers.Real, 0, None, closed="left")],
        "batch_size": [StrOptions({"auto"}), Interval(numbers.Integral, 1, None, closed="left")],
        "learning_rate": [StrOptions({"constant", "invscaling", "adaptive"})],
        "learning_rate_init": [Interval(numbers.Real, 0, None, closed="neither")],
        "power_t": [Interval(numbers.Real, 0, None, closed="left")],
        "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "tol": [Interval(numbers.Real, 0, None, closed="left")],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "momentum": [Interval(numbers.Real, 0, 1, closed="both")],
        "nesterovs_momentum": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(numbers.Real, 0, 1, closed="left")],
        "beta_1": [Interval(numbers.Real, 0, 1, closed="left")],
        "beta_2": [Interval(numbers.Real, 0, 1, closed="left")],
        "epsilon": [Interval(numbers.Real, 0, None, closed="neither")],
        "n_iter_no_change": [Interval(numbers.Integral, 1, None, closed="left"), Options(numbers.Real, {np.inf})],
        "max_fun": [Interval(numbers.Integral, 1, None, closed="left")],
        "dropout": [Interval(numbers.Real, 0, 1, closed="left")],
        "init": [StrOptions({"glorot_uniform", *INITS})],
        "dtype": _NO,
        "backend": _NO,
    }

    def __init__(self, hidden_layer_sizes, activation, solver, alpha, batch_size, learning_rate, learning_rate_init,
                 power_t, max_iter, loss, shuffle, random_state, tol, verbose, warm_start, momentum,
                 nesterovs_momentum, early_stopping, validation_fraction, beta_1, beta_2, epsilon, n_iter_no_change,
                 max_fun, dropout, init, dtype, backend):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.loss = loss
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.dropout = dropout
        self.init = init
        self.dtype = dtype
        self.backend = backend

    # ------------------------------------------------------------------ #
    # parameters: scikit-learn's constraints, then bpnet's backend and dtype

    def _checked(self):
        """``(hidden sizes, backend, dtype or None)`` after validating every parameter (fit, never __init__)."""
        self._validate_params()
        hls = self.hidden_layer_sizes
        hls = list(hls) if hasattr(hls, "__iter__") else [hls]
        if any(isinstance(n, bool) or not isinstance(n, numbers.Integral) for n in hls):
            raise InvalidParameterError(f"hidden_layer_sizes: expected positive integers, got {hls!r}")
        if any(n <= 0 for n in hls):
            raise ValueError("hidden_layer_sizes must be > 0, got %s." % hls)
        dtype = None
        if self.dtype is not None:
            try:
                dtype = _backends.float_dtype(self.dtype)
            except (TypeError, ValueError) as exc:
                raise InvalidParameterError(f"dtype (None: X's): {str(exc).split(': ', 1)[-1]}") from None
        return [int(n) for n in hls], self._backend(), dtype

    def _backend(self):
        if self.backend is not None and not isinstance(self.backend, str):
            hint = ""
            if isinstance(self.backend, _backends.Backend):
                hint = f" (pass the name, e.g. {_backends.spec(self.backend)!r}, so that the estimator can be cloned)"
            raise InvalidParameterError(f"backend: expected a backend name (str) or None{hint}, got {self.backend!r}")
        try:
            return _backends.get(self.backend)
        except _backends.BackendUnavailableError:
            raise
        except ValueError as exc:
            msg = str(exc)
            raise InvalidParameterError(msg if msg.startswith("backend") else f"backend: {msg}") from None

    def _check_solver(self):
        if self.solver not in ("sgd", "adam"):
            raise AttributeError(f"partial_fit is only available for stochastic optimizers. {self.solver} is not "
                                 "stochastic.")
        return True

    # ------------------------------------------------------------------ #
    # fit

    def _fit(self, X, y, sample_weight=None, incremental=False):
        hidden, bk, dtype = self._checked()
        first = not hasattr(self, "model_") or (not self.warm_start and not incremental)
        want = np.dtype(self.model_.dtype) if not first else np.dtype(dtype) if dtype else (np.float64, np.float32)
        X, Y = self._validate_input(X, y, incremental, reset=first, dtype=want)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X)
            if np.any(sample_weight < 0):
                raise ValueError("sample_weight: expected weights >= 0, got a minimum of "
                                 f"{float(sample_weight.min()):g}")
        self._random_state = check_random_state(self.random_state)
        if first:
            self._initialize(X, Y, hidden, bk)
        elif Y.shape[1] != self.n_outputs_:
            raise ValueError(f"y: {Y.shape[1]} targets, but the estimator was fitted with {self.n_outputs_}")
        if self.solver == "lbfgs":
            self._fit_lbfgs(X, Y, sample_weight)
        else:
            self._fit_stochastic(X, Y, sample_weight, incremental)
        return self

    def _initialize(self, X, Y, hidden, bk):
        """A new network for ``X``/``Y`` (first fit): scikit-learn's Glorot-uniform draws, or a bpnet init."""
        self.n_iter_, self.t_, self.n_outputs_ = 0, 0, Y.shape[1]
        dims = [X.shape[1], *hidden, self.n_outputs_]
        act = _SK_ACTIVATIONS.get(self.activation, self.activation)
        kw = dict(hidden_activation=act, loss=self._bpnet_loss(), dtype=X.dtype.name, backend=bk)
        if self.init == "glorot_uniform":
            factor = 2.0 if act == "sigmoid" else 6.0  # scikit-learn's bound sqrt(factor / (fan_in + fan_out))
            params = {}
            for l, (fan_in, fan_out) in enumerate(zip(dims[:-1], dims[1:]), start=1):
                bound = np.sqrt(factor / (fan_in + fan_out))
                W = self._random_state.uniform(-bound, bound, (fan_in, fan_out)).astype(X.dtype, copy=False)
                b = self._random_state.uniform(-bound, bound, fan_out).astype(X.dtype, copy=False)
                params[f"W{l}"], params[f"b{l}"] = bk.asarray(W.T), bk.asarray(b.reshape(-1, 1))
            self.model_ = MLP(dims, init="xavier", parameters=params, **kw)
        else:
            self.model_ = MLP(dims, init=self.init, seed=int(self._random_state.randint(np.iinfo(np.int32).max)), **kw)
        self.out_activation_ = _OUT_ACTIVATION[self.model_.output_activation]
        #: the seed of the shuffles and dropout masks of every later fit call (epochs continue, so draws never repeat)
        self._seed = int(self._random_state.randint(np.iinfo(np.int32).max))
        self._plateau = None
        if self.solver != "lbfgs":
            self.loss_curve_ = []
            self.validation_scores_ = [] if self.early_stopping else None
            self.best_validation_score_ = -np.inf if self.early_stopping else None
            self.best_loss_ = None if self.early_stopping else np.inf

    def _split(self, X, Y, sample_weight):
        """``(X_train, Y_train, w_train, (X_val, y_val, w_val) or None)``: scikit-learn's early-stopping split."""
        if not self.early_stopping:
            return X, Y, sample_weight, None
        stratify = Y if is_classifier(self) and self.n_outputs_ == 1 else None
        arrays = [X, Y] if sample_weight is None else [X, Y, sample_weight]
        parts = train_test_split(*arrays, random_state=self._random_state, test_size=self.validation_fraction,
                                 stratify=stratify)
        X_tr, X_val, Y_tr, Y_val = parts[:4]
        w_tr, w_val = (None, None) if sample_weight is None else parts[4:]
        if X_val.shape[0] < 2:
            raise ValueError("The validation set is too small. Increase 'validation_fraction' or the size of your "
                             "dataset.")
        return X_tr, Y_tr, w_tr, (X_val, self._targets(Y_val), w_val)

    def _options(self, n, incremental, record, val):
        """The options of ``MLP.fit`` that are this estimator's parameters."""
        if self.batch_size == "auto":
            batch_size = min(200, n)
        else:
            if self.batch_size > n:
                _warn("Got `batch_size` less than 1 or larger than sample size. It is going to be clipped")
            batch_size = int(np.clip(self.batch_size, 1, n))
        record.m, record.n_batches = n, -(-n // batch_size)
        if self.solver == "sgd":
            opt = dict(optimizer="sgd", momentum=self.momentum, nesterov=self.nesterovs_momentum)
        else:
            opt = dict(optimizer="adam", beta1=self.beta_1, beta2=self.beta_2, epsilon=self.epsilon)
        patience = None if math.isinf(self.n_iter_no_change) else int(self.n_iter_no_change)
        monitor = (lambda model: self._score(*val)) if val is not None else "cost"
        return dict(epochs=1 if incremental else self.max_iter, batch_size=batch_size,
                    learning_rate=self.learning_rate_init, schedule=self.learning_rate if self.solver == "sgd" else
                    "constant", power_t=self.power_t, tol=self.tol * record.scale, n_iter_no_change=patience,
                    monitor=monitor, restore_best=True, l2=self.alpha, dropout=self.dropout, shuffle=self.shuffle,
                    seed=self._seed, callbacks=(record,), **opt)

    def _fit_stochastic(self, X, Y, sample_weight, incremental):
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        X, Y, w, val = self._split(X, Y, sample_weight)
        model = self.model_
        if not incremental:  # every fit starts a new optimiser (partial_fit continues it), as in scikit-learn
            model.optimizer_state = None
            if self._plateau is not None:
                self._plateau.factor = 1.0
        model.plateau = self._plateau
        record = _Record(self, self._loss_scale())
        options = self._options(X.shape[0], incremental, record, val)
        try:
            if scipy.sparse.issparse(X):
                source = _SparseRows(X, self._device_targets(Y, w), model.backend, model.dtype)
                model.fit_source(source, weighted=w is not None, **options)
            else:
                # examples as rows of X (scikit-learn's) are columns here: one C-ordered copy, so that each
                # epoch's shuffle gathers contiguous rows of the transposed copy (3x faster than from X.T's view)
                model.fit(np.ascontiguousarray(X.T), Y.T, sample_weight=w, **options)
        except TrainingDivergedError as exc:
            raise ValueError(f"{_NON_FINITE} ({exc})") from exc
        except KeyboardInterrupt:
            _warn("Training interrupted by user.")
        finally:
            self._plateau = model.plateau
        self._record_epochs(record, X.shape[0], incremental)

    def _record_epochs(self, record, n, incremental):
        """The fitted attributes after a stochastic fit call, and scikit-learn's ConvergenceWarning."""
        losses = record.losses
        self.n_iter_ = len(losses)
        self.t_ += n * len(losses)
        self.loss_curve_.extend(losses)
        if losses:
            self.loss_ = losses[-1]
        if self.early_stopping:
            self.validation_scores_.extend(record.scores)
            self.best_validation_score_ = max(self.validation_scores_, default=-np.inf)
        elif self.loss_curve_:
            self.best_loss_ = min(self.loss_curve_)
        if not incremental and not record.stopped and self.n_iter_ == self.max_iter:
            _warn("Stochastic Optimizer: Maximum iterations (%d) reached and the optimization hasn't converged yet."
                  % self.max_iter, ConvergenceWarning)

    def _device_targets(self, Y, w):
        """``Y.T`` on the model's backend, with the weights as a last row when given."""
        model = self.model_
        rows = Y.T.astype(model.dtype) if w is None else np.vstack([Y.T, w[None, :]]).astype(model.dtype)
        return model.backend.asarray(np.ascontiguousarray(rows))

    # ------------------------------------------------------------------ #
    # lbfgs: scipy on the host, bpnet's forward and backward on the backend

    def _chunks(self, X, Y, w):
        """A function giving ``[(X_c, Y_c, sum(w_c) / m_c), ...]`` on the backend: the whole data at once, or
        blocks of sparse rows densified anew at each call."""
        model = self.model_
        bk = model.backend
        if not scipy.sparse.issparse(X):
            one = [(bk.asarray(X.T, dtype=model.dtype), self._device_targets(Y, w), 1.0 if w is None else w.mean())]
            return lambda: one
        X = X.tocsr()
        Yd = self._device_targets(Y, w)

        def blocks():
            for s in _row_blocks(X):
                f = 1.0 if w is None else float(w[s].mean())
                yield bk.asarray(X[s].toarray().T, dtype=model.dtype), Yd[:, s], f
        return blocks

    def _fit_lbfgs(self, X, Y, w):
        model = self.model_
        xp = model.backend.xp
        net = dataclasses.replace(model.net, weighted=True) if w is not None else model.net
        chunks, total = self._chunks(X, Y, w), float(X.shape[0] if w is None else w.sum())
        keys = list(model.parameters)
        shapes = [tuple(model.parameters[k].shape) for k in keys]
        ends = np.cumsum([int(np.prod(s)) for s in shapes])

        def unpack(x):
            parts = np.split(x, ends[:-1])
            return {k: model.backend.asarray(p.reshape(s), dtype=model.dtype) for k, p, s in zip(keys, parts, shapes)}

        def loss_grad(x):
            ts = TrainState(unpack(x), get_optimizer("gd"), {"t": 0})
            cost, grads = 0.0, None
            for Xc, Yc, f in chunks():
                acts, _, ZL = forward_train(xp, Xc, ts.Ws, ts.bs, net)
                cost += f * float(batch_metrics(xp, acts[-1], Yc, net, ZL)[0])
                g = backward_update(xp, acts, Yc, ts, net, 1.0, collect=True, scale=1.0 / total)
                grads = g if grads is None else [(l, a + dW, b + db) for (l, a, b), (_, dW, db) in zip(grads, g)]
            by = {f"W{l + 1}": dW + (self.alpha / total) * ts.Ws[l] for l, dW, _ in grads}
            by.update({f"b{l + 1}": db for l, _, db in grads})
            l2 = sum(float(xp.sum(W * W)) for W in ts.Ws)
            flat = np.concatenate([np.asarray(_backends.to_numpy(by[k]), dtype=np.float64).ravel() for k in keys])
            # scikit-learn's objective: the loss as it reports it (squared error averaged over the outputs too),
            # with the gradient of the loss summed over the outputs (its own, for the same iterates)
            return cost / (total * self._loss_scale()) + 0.5 * self.alpha * l2 / total, flat

        x0 = np.concatenate([np.asarray(_backends.to_numpy(model.parameters[k]), np.float64).ravel() for k in keys])
        res = scipy.optimize.minimize(loss_grad, x0, method="L-BFGS-B", jac=True,
                                      options={"maxfun": self.max_fun, "maxiter": self.max_iter, "gtol": self.tol})
        if not np.all(np.isfinite(res.x)):  # the stochastic solvers' epoch loop checks this itself
            raise ValueError(_NON_FINITE)
        self.n_iter_ = _check_optimize_result("lbfgs", res, self.max_iter)
        self.loss_ = float(res.fun)
        model.parameters = unpack(res.x)

    # ------------------------------------------------------------------ #
    # prediction

    def _forward(self, X, check_input=True):
        """The network output for ``X`` as host float64 ``(n_samples, n_outputs)``; sparse ``X`` a block at a time."""
        model = self.model_
        if check_input:
            X = _validate_data(self, X, accept_sparse=["csr", "csc"], reset=False, dtype=np.dtype(model.dtype))
        if not scipy.sparse.issparse(X):
            return np.array(_backends.to_numpy(model.predict_proba(X.T)), dtype=np.float64).T  # a writable copy
        X = X.tocsr()
        out = np.empty((X.shape[0], self.n_outputs_))
        for s in _row_blocks(X):
            out[s] = np.asarray(_backends.to_numpy(model.predict_proba(X[s].toarray().T)), dtype=np.float64).T
        return out

    def _score(self, X, y, sample_weight):
        """The validation score of early stopping (no input validation); NaN where the network overflows."""
        try:
            y_pred = self._predict(X, check_input=False)
        except FloatingPointError:
            return np.nan
        return self._score_function(y, y_pred, sample_weight=sample_weight)

    # ------------------------------------------------------------------ #
    # the weights, in scikit-learn's layout

    @property
    def coefs_(self):
        """Host copies of the weights, ``coefs_[i]`` of shape (n_units[i], n_units[i+1]) (scikit-learn's layout);
        assigning a list of such arrays sets the network's weights."""
        model = self._fitted_model("coefs_")
        return [np.asarray(_backends.to_numpy(model.parameters[f"W{l}"])).T.copy() for l in range(1, model.L + 1)]

    @coefs_.setter
    def coefs_(self, coefs):
        model = self._fitted_model("coefs_")
        model.parameters = {**model.parameters, **{f"W{l}": model.backend.asarray(np.asarray(c).T, dtype=model.dtype)
                                                   for l, c in enumerate(coefs, start=1)}}

    @property
    def intercepts_(self):
        """Host copies of the biases, ``intercepts_[i]`` of shape (n_units[i+1],); assignable like ``coefs_``."""
        model = self._fitted_model("intercepts_")
        return [np.asarray(_backends.to_numpy(model.parameters[f"b{l}"])).ravel().copy()
                for l in range(1, model.L + 1)]

    @intercepts_.setter
    def intercepts_(self, intercepts):
        model = self._fitted_model("intercepts_")
        model.parameters = {**model.parameters, **{
            f"b{l}": model.backend.asarray(np.asarray(b).reshape(-1, 1), dtype=model.dtype)
            for l, b in enumerate(intercepts, start=1)}}

    @property
    def history_(self):
        """The model's per-epoch record (:class:`bpnet.History`)."""
        return self._fitted_model("history_").history

    @property
    def n_layers_(self):
        """Number of layers, input and output included (scikit-learn's count)."""
        return len(self._fitted_model("n_layers_").layer_dims)

    def _fitted_model(self, name):
        model = self.__dict__.get("model_")
        if model is None:
            raise AttributeError(f"{name}: the estimator is not fitted yet")
        return model

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags


_DOC_PARAMETERS = """
    Parameters
    ----------
    hidden_layer_sizes, activation, solver, alpha, batch_size, learning_rate, learning_rate_init, power_t,
    max_iter, shuffle, random_state, tol, verbose, warm_start, momentum, nesterovs_momentum, early_stopping,
    validation_fraction, beta_1, beta_2, epsilon, n_iter_no_change, max_fun
        scikit-learn's, with its meanings and defaults.  ``activation`` also
        takes the registry's other hidden activations (``"leaky_relu"``,
        ``"softplus"``, ``"sigmoid"``, ``"linear"``).
    dropout : float in [0, 1), default 0
        bpnet's: probability of dropping a hidden unit in training (inverted dropout).
    init : {"glorot_uniform", "he", "xavier", "course"}, default "glorot_uniform"
        scikit-learn's initialisation (the same draws from ``random_state``), or a bpnet one.
    dtype : {None, "float32", "float64"}, default None
        Precision of the weights and the computation; None follows ``X`` as
        scikit-learn does (float32 for float32 ``X``, else float64).
    backend : str or None, default None
        A bpnet backend name with an optional device (``"numpy"``, ``"cupy:0"``,
        ``"array_api_strict:device1"``); None: ``BPNET_BACKEND``, else auto.
"""


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """scikit-learn's ``MLPClassifier`` trained by bpnet's backprop, on any backend.

    Two classes and multi-label targets: sigmoid outputs with binary
    cross-entropy; more classes: a softmax layer with categorical
    cross-entropy.
    {params}
    Attributes
    ----------
    classes_, loss_, best_loss_, loss_curve_, validation_scores_, best_validation_score_, t_, coefs_,
    intercepts_, n_features_in_, feature_names_in_, n_iter_, n_layers_, n_outputs_, out_activation_
        scikit-learn's (``coefs_``/``intercepts_`` are host copies).
    model_ : bpnet.MLP
        The trained network, on the backend.
    history_ : bpnet.History
        bpnet's per-epoch record (stochastic solvers).
    """

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam", alpha=0.0001,
                 batch_size="auto", learning_rate="constant", learning_rate_init=0.001, power_t=0.5, max_iter=200,
                 shuffle=True, random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-8, n_iter_no_change=10, max_fun=15000, dropout=0.0, init="glorot_uniform", dtype=None,
                 backend=None):
        super().__init__(hidden_layer_sizes=hidden_layer_sizes, activation=activation, solver=solver, alpha=alpha,
                         batch_size=batch_size, learning_rate=learning_rate, learning_rate_init=learning_rate_init,
                         power_t=power_t, max_iter=max_iter, loss="log_loss", shuffle=shuffle,
                         random_state=random_state, tol=tol, verbose=verbose, warm_start=warm_start,
                         momentum=momentum, nesterovs_momentum=nesterovs_momentum, early_stopping=early_stopping,
                         validation_fraction=validation_fraction, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon,
                         n_iter_no_change=n_iter_no_change, max_fun=max_fun, dropout=dropout, init=init, dtype=dtype,
                         backend=backend)

    def fit(self, X, y, sample_weight=None):
        """Fit the network to ``X`` (n_samples, n_features) and labels ``y``; returns ``self``."""
        return self._fit(X, y, sample_weight=sample_weight, incremental=False)

    @available_if(lambda est: est._check_solver())
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """One epoch over ``(X, y)``, continuing the weights and the optimiser; ``classes`` on the first call."""
        self._validate_params()
        if _check_partial_fit_first_call(self, classes):
            self._label_binarizer = LabelBinarizer()
            if type_of_target(y).startswith("multilabel"):
                self._label_binarizer.fit(y)
            else:
                self._label_binarizer.fit(classes)
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    def _bpnet_loss(self):
        return "categorical_crossentropy" if self._label_binarizer.y_type_ == "multiclass" else "binary_crossentropy"

    def _loss_scale(self):
        return 1

    def _validate_input(self, X, y, incremental, reset, dtype):
        X, y = _validate_data(self, X, y, accept_sparse=["csr", "csc"], multi_output=True, dtype=dtype, reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if not hasattr(self, "classes_") or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = unique_labels(y)
            if self.warm_start:
                if set(classes) != set(self.classes_):
                    raise ValueError("warm_start can only be used where `y` has the same classes as in the previous "
                                     f"call to fit. Previously got {self.classes_}, `y` has {classes}")
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError(f"`y` has classes not in `self.classes_`. `self.classes_` has {self.classes_}. "
                                 f"'y' has {classes}.")
        return X, self._label_binarizer.transform(y).astype(bool)

    def _targets(self, Y):
        return self._label_binarizer.inverse_transform(Y)

    def _score_function(self, y, y_pred, sample_weight=None):
        return accuracy_score(y, y_pred, sample_weight=sample_weight)

    def predict(self, X):
        """Labels of shape (n_samples,) (an indicator matrix for multi-label targets)."""
        check_is_fitted(self)
        return self._predict(X)

    def _predict(self, X, check_input=True):
        y_pred = self._forward(X, check_input)
        if self.n_outputs_ == 1:
            y_pred = y_pred.ravel()
        return self._label_binarizer.inverse_transform(y_pred)

    def predict_proba(self, X):
        """Probabilities, float64 of shape (n_samples, n_classes) in ``classes_`` order (multi-label: per label)."""
        check_is_fitted(self)
        y_pred = self._forward(X)
        if self.n_outputs_ == 1:
            p = y_pred.ravel()
            return np.vstack([1 - p, p]).T
        if self.out_activation_ == "softmax":
            y_pred /= y_pred.sum(axis=1, keepdims=True)  # exact sums for a float32 network's output
        return y_pred

    def predict_log_proba(self, X):
        """``log(predict_proba(X))`` (``-inf`` where a probability is 0)."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class MLPRegressor(RegressorMixin, _BaseMLP):
    """scikit-learn's ``MLPRegressor`` trained by bpnet's backprop, on any backend.

    ``loss="squared_error"``: a linear output with half the squared error;
    ``"poisson"``: an ``exp`` output with half the Poisson deviance (``y >= 0``).
    ``y`` of shape (n_samples,) or (n_samples, n_outputs).
    {params}
    Attributes
    ----------
    loss_, best_loss_, loss_curve_, validation_scores_, best_validation_score_, t_, coefs_, intercepts_,
    n_features_in_, feature_names_in_, n_iter_, n_layers_, n_outputs_, out_activation_, model_, history_
        As for :class:`MLPClassifier`.
    """

    _parameter_constraints: dict = {**_BaseMLP._parameter_constraints,
                                    "loss": [StrOptions(set(_REGRESSION_LOSSES))]}

    def __init__(self, loss="squared_error", hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant", learning_rate_init=0.001, power_t=0.5,
                 max_iter=200, shuffle=True, random_state=None, tol=1e-4, verbose=False, warm_start=False,
                 momentum=0.9, nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1, beta_1=0.9,
                 beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000, dropout=0.0, init="glorot_uniform",
                 dtype=None, backend=None):
        super().__init__(hidden_layer_sizes=hidden_layer_sizes, activation=activation, solver=solver, alpha=alpha,
                         batch_size=batch_size, learning_rate=learning_rate, learning_rate_init=learning_rate_init,
                         power_t=power_t, max_iter=max_iter, loss=loss, shuffle=shuffle, random_state=random_state,
                         tol=tol, verbose=verbose, warm_start=warm_start, momentum=momentum,
                         nesterovs_momentum=nesterovs_momentum, early_stopping=early_stopping,
                         validation_fraction=validation_fraction, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon,
                         n_iter_no_change=n_iter_no_change, max_fun=max_fun, dropout=dropout, init=init, dtype=dtype,
                         backend=backend)

    def fit(self, X, y, sample_weight=None):
        """Fit the network to ``X`` (n_samples, n_features) and targets ``y``; returns ``self``."""
        return self._fit(X, y, sample_weight=sample_weight, incremental=False)

    @available_if(lambda est: est._check_solver())
    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over ``(X, y)``, continuing the weights and the optimiser."""
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    def _bpnet_loss(self):
        return _REGRESSION_LOSSES[self.loss]

    def _loss_scale(self):
        """scikit-learn's squared error averages over the outputs, bpnet's (and its gradient) sums over them."""
        return self.n_outputs_ if self.loss == "squared_error" else 1

    def _validate_input(self, X, y, incremental, reset, dtype):
        X, y = _validate_data(self, X, y, accept_sparse=["csr", "csc"], multi_output=True, y_numeric=True,
                              dtype=dtype, reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if self.loss == "poisson" and np.any(y < 0):
            raise ValueError("Some value(s) of y are negative which is not allowed for Poisson regression.")
        return X, (y.reshape(-1, 1) if y.ndim == 1 else y)

    def _targets(self, Y):
        return Y[:, 0] if Y.shape[1] == 1 else Y

    def _score_function(self, y, y_pred, sample_weight=None):
        return r2_score(y, y_pred, sample_weight=sample_weight)

    def predict(self, X):
        """Predictions, float64 of shape (n_samples,) or (n_samples, n_outputs)."""
        check_is_fitted(self)
        return self._predict(X)

    def _predict(self, X, check_input=True):
        y_pred = self._forward(X, check_input)
        return y_pred.ravel() if y_pred.shape[1] == 1 else y_pred

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


MLPClassifier.__doc__ = MLPClassifier.__doc__.replace("{params}", _DOC_PARAMETERS)
MLPRegressor.__doc__ = MLPRegressor.__doc__.replace("{params}", _DOC_PARAMETERS)
