"""scikit-learn estimators over :class:`bpnet.MLP`: :class:`MLPClassifier`, :class:`MLPRegressor`.

``X`` is ``(n_samples, n_features)`` here (the transpose to bpnet's columns
happens inside); results are host numpy arrays; ``backend`` is any bpnet
backend name.  Both pass ``check_estimator`` (tests/test_sklearn.py).  Where
they differ from scikit-learn's MLP: ``optimizer`` (bpnet's optimisers)
replaces ``solver``; ``learning_rate`` is the constant step size (None: the
optimiser's default); ``alpha`` is bpnet's ``l2`` with scikit-learn's
scaling; ``dropout``, ``init``, ``dtype`` and ``backend`` are new; there is no
``tol`` (``max_iter`` epochs, or early stopping on the validation cost);
``partial_fit`` trains one epoch.
"""

from __future__ import annotations

import numbers

import array_api_compat
import numpy as np

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
except ImportError as _exc:  # pragma: no cover - scikit-learn is an optional extra
    raise ImportError("bpnet.sklearn needs scikit-learn: pip install 'bpnet[sklearn]'") from _exc
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets, unique_labels
from sklearn.utils.validation import check_is_fitted

from . import _validate as v
from . import backends as _backends
from .model import MLP
from .nn import ACTIVATIONS, INITS
from .optim import OPTIMIZERS
from .optim.rules import check_hyper

try:  # scikit-learn >= 1.6
    from sklearn.utils.validation import validate_data as _sk_validate_data
except ImportError:  # pragma: no cover - older scikit-learn
    _sk_validate_data = None

__all__ = ["MLPClassifier", "MLPRegressor", "InvalidParameterError"]

#: hidden activations accepted, with sklearn's names as aliases
_ACTIVATION_ALIASES = {"logistic": "sigmoid", "identity": "linear"}
_HIDDEN_ACTIVATIONS = tuple(a for a, entry in ACTIVATIONS.items() if entry.hidden)


class InvalidParameterError(ValueError, TypeError):
    """A constructor parameter has a wrong value or type (raised by ``fit``, as in scikit-learn)."""


_NO = "no_validation"


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


def _param(check, value, name, *args, **kw):
    """A constructor parameter through the validation vocabulary, as scikit-learn's InvalidParameterError."""
    try:
        return check(value, name, *args, **kw)
    except (TypeError, ValueError) as exc:
        raise InvalidParameterError(str(exc)) from None


def _hidden_sizes(value):
    hls = (value,) if isinstance(value, numbers.Integral) and not isinstance(value, bool) else value
    try:
        return tuple(_param(v.integer, n, "hidden_layer_sizes", low=1) for n in hls)
    except TypeError:
        raise InvalidParameterError(f"hidden_layer_sizes: expected a sequence of positive integers (or one "
                                    f"integer), got {value!r}") from None


def _batch_size(value):
    if isinstance(value, str) and value == "auto":
        return "auto"
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise InvalidParameterError(f"batch_size: expected an integer > 0 or 'auto', got {value!r}")
    return int(value)


class _BaseMLP(BaseEstimator):
    """Shared parameters, validation, training loop hand-off, pickling and weights of both estimators."""

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, optimizer="adam", learning_rate=None,
                 alpha=0.0001, batch_size="auto", max_iter=200, dropout=0.0, shuffle=True, early_stopping=False,
                 validation_fraction=0.1, n_iter_no_change=10, momentum=0.9, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-8, init="he", dtype=None, backend=None, random_state=None, verbose=False):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.alpha = alpha
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.dropout = dropout
        self.shuffle = shuffle
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.momentum = momentum
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.init = init
        self.dtype = dtype
        self.backend = backend
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ #
    # parameters

    def _checked_params(self) -> dict:
        """All constructor parameters validated (called by fit / partial_fit, never by __init__)."""
        optimizer = _param(v.choice, self.optimizer, "optimizer", OPTIMIZERS)
        hyper = {"momentum": {"beta": self.momentum}, "adam": {"beta1": self.beta_1, "beta2": self.beta_2,
                 "epsilon": self.epsilon}, "rmsprop": {"epsilon": self.epsilon}}.get(optimizer, {})
        names = {"beta": "momentum", "beta1": "beta_1", "beta2": "beta_2", "epsilon": "epsilon"}
        hyper = {k: _param(check_hyper, x, names[k]) for k, x in hyper.items()}
        activation = _ACTIVATION_ALIASES.get(self.activation, self.activation)
        _param(v.choice, activation if activation in _HIDDEN_ACTIVATIONS else self.activation, "activation",
               _HIDDEN_ACTIVATIONS + tuple(_ACTIVATION_ALIASES))
        return {
            "hidden": _hidden_sizes(self.hidden_layer_sizes),
            "activation": activation,
            "optimizer": optimizer,
            "learning_rate": OPTIMIZERS[optimizer].default_lr if self.learning_rate is None else
            _param(v.real, self.learning_rate, "learning_rate", low=0.0, low_open=True),
            "alpha": _param(v.real, self.alpha, "alpha", low=0.0),
            "batch_size": _batch_size(self.batch_size),
            "max_iter": _param(v.integer, self.max_iter, "max_iter", low=1),
            "dropout": _param(v.real, self.dropout, "dropout", low=0.0, high=1.0, high_open=True),
            "shuffle": _param(v.flag, self.shuffle, "shuffle"),
            "early_stopping": _param(v.flag, self.early_stopping, "early_stopping"),
            "validation_fraction": _param(v.real, self.validation_fraction, "validation_fraction", low=0.0,
                                          high=1.0, low_open=True, high_open=True),
            "n_iter_no_change": _param(v.integer, self.n_iter_no_change, "n_iter_no_change", low=1),
            "optimizer_options": hyper,
            "init": _param(v.choice, self.init, "init", INITS, what="initialisation"),
            "dtype": None if self.dtype is None else _param(_backends.float_dtype, self.dtype,
                                                            "dtype (None: X's)"),
            "backend": self._backend(),
            "rng": self._rng(),
            "verbose": _param(v.integer, int(self.verbose) if isinstance(self.verbose, bool) else self.verbose,
                              "verbose", low=0),
        }

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

    def _rng(self):
        try:
            return check_random_state(self.random_state)
        except ValueError as exc:
            raise InvalidParameterError(f"random_state: {exc}") from None

    # ------------------------------------------------------------------ #
    # training

    def _X_dtype(self, p, first):
        """The dtype X is validated to: the model's; on a first fit with ``dtype=None``, X's (float32 or float64)."""
        if not first:
            return np.dtype(self.model_.dtype)
        if p["dtype"] is None:
            return [np.float64, np.float32]
        return np.dtype(p["dtype"])

    def _new_model(self, p, X, n_outputs, loss):
        seed = int(p["rng"].randint(np.iinfo(np.int32).max))
        return MLP([X.shape[1], *p["hidden"], n_outputs], hidden_activation=p["activation"], loss=loss,
                   init=p["init"], seed=seed, dtype=X.dtype.name, backend=p["backend"])

    def _train(self, p, X, Y, *, incremental):
        """``X`` (n_samples, n_features) host; ``Y`` labels in bpnet's layout; one epoch if incremental."""
        model = self.model_
        m = X.shape[0]
        batch_size = min(200, m) if p["batch_size"] == "auto" else p["batch_size"]
        early = p["early_stopping"] and not incremental
        if early:
            n_val = int(round(p["validation_fraction"] * m))
            if n_val < 1 or n_val >= m:
                raise ValueError(f"validation_fraction: {p['validation_fraction']} of {m} samples leaves {n_val} "
                                 f"for validation and {m - n_val} for training (early_stopping=True)")
        callbacks = (self._print_progress,) if p["verbose"] else ()
        model.fit(X.T, Y, epochs=1 if incremental else p["max_iter"], batch_size=batch_size,
                  optimizer=p["optimizer"], learning_rate=p["learning_rate"], l2=p["alpha"], dropout=p["dropout"],
                  shuffle=p["shuffle"], validation_split=p["validation_fraction"] if early else 0.0,
                  early_stopping=p["n_iter_no_change"] if early else None, restore_best=True,
                  callbacks=callbacks, **p["optimizer_options"])
        h = model.history
        self.n_iter_ = model.epoch
        self.loss_ = h.cost[-1]
        self.loss_curve_ = list(h.cost)
        self.validation_loss_curve_ = list(h.val_cost) if early else None
        return self

    @staticmethod
    def _print_progress(model, epoch, logs):
        line = f"Iteration {epoch}, loss = {logs['cost']:.8f}"
        if logs.get("val_cost") is not None:
            line += f", validation loss = {logs['val_cost']:.8f}"
        print(line)

    def _forward(self, X):
        """Validated host ``X`` -> network output as float64 numpy, shape (n_samples, n_outputs)."""
        check_is_fitted(self)
        X = _validate_data(self, X, reset=False, dtype=np.dtype(self.model_.dtype))
        AL = self.model_.predict_proba(X.T)
        return np.asarray(_backends.to_numpy(AL), dtype=np.float64).T

    # ------------------------------------------------------------------ #
    # sklearn's layout of the weights

    @property
    def coefs_(self):
        """Host copies of the weights, ``coefs_[i]`` of shape (n_units[i], n_units[i+1]) (sklearn's layout)."""
        model = self.__dict__.get("model_")
        if model is None:
            raise AttributeError("coefs_: the estimator is not fitted yet")
        return [np.asarray(_backends.to_numpy(model.parameters[f"W{l}"])).T.copy() for l in range(1, model.L + 1)]

    @property
    def intercepts_(self):
        """Host copies of the biases, ``intercepts_[i]`` of shape (n_units[i+1],)."""
        model = self.__dict__.get("model_")
        if model is None:
            raise AttributeError("intercepts_: the estimator is not fitted yet")
        return [np.asarray(_backends.to_numpy(model.parameters[f"b{l}"])).ravel().copy()
                for l in range(1, model.L + 1)]

    @property
    def history_(self):
        """The model's per-epoch record (:class:`bpnet.History`)."""
        model = self.__dict__.get("model_")
        if model is None:
            raise AttributeError("history_: the estimator is not fitted yet")
        return model.history

    @property
    def n_layers_(self):
        """Number of layers, input and output included (sklearn's count)."""
        model = self.__dict__.get("model_")
        if model is None:
            raise AttributeError("n_layers_: the estimator is not fitted yet")
        return len(model.layer_dims)


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """Multi-layer perceptron classifier trained by bpnet's hand-written backprop.

    Two classes: one sigmoid output unit and binary cross-entropy; more: a
    softmax layer and categorical cross-entropy.  ``X`` is
    ``(n_samples, n_features)``; labels may be of any type (strings too).

    Parameters
    ----------
    hidden_layer_sizes : int or tuple of int, default (100,)
        Units of each hidden layer (``()`` is logistic / softmax regression).
    activation : {"relu", "leaky_relu", "tanh", "sigmoid", "linear", "logistic", "identity"}, default "relu"
        Hidden-layer activation.
    optimizer : {"gd", "momentum", "rmsprop", "adam"}, default "adam"
        Mini-batch gradient descent, with momentum, RMSprop or Adam.
    learning_rate : float > 0 or None, default None
        Constant step size; None: 0.01 for gd and momentum, 0.001 for rmsprop and adam.
    alpha : float >= 0, default 1e-4
        L2 strength: cost ``+ alpha/(2 m) sum ||W||^2`` per mini-batch of m examples.
    batch_size : int or "auto", default "auto"
        ``"auto"`` is ``min(200, n_samples)``.
    max_iter : int, default 200
        Epochs (passes over the data) of :meth:`fit`.
    dropout : float in [0, 1), default 0
        Probability of dropping a hidden unit during training (inverted dropout).
    shuffle : bool, default True
        Reshuffle the examples every epoch.
    early_stopping : bool, default False
        Hold out ``validation_fraction`` of the data and stop when the validation
        cost has not improved for ``n_iter_no_change`` epochs; the best epoch's
        weights are restored.
    validation_fraction : float in (0, 1), default 0.1
    n_iter_no_change : int, default 10
    momentum : float in [0, 1), default 0.9
        Decay of the velocity (optimizer "momentum" only).
    beta_1, beta_2 : float in [0, 1), default 0.9, 0.999
        Adam's moment decays (optimizer "adam" only).
    epsilon : float > 0, default 1e-8
        Adam's and RMSprop's stabiliser.
    init : {"he", "xavier", "course"}, default "he"
        Initial weight scale: ``sqrt(2/n_prev)``, ``sqrt(1/n_prev)`` or 0.01.
    dtype : {None, "float32", "float64"}, default None
        Precision of the weights and of the computation; None follows ``X`` as
        scikit-learn does (float32 for float32 ``X``, float64 otherwise).  Pass
        ``"float32"`` for speed on a GPU: predictions are then float32-accurate
        (a sample's result may change in the last bits with its position in the batch).
    backend : str or None, default None
        A bpnet backend name with an optional device, e.g. ``"numpy"``,
        ``"array_api_strict:device1"``, ``"cupy:0"``; None: ``BPNET_BACKEND``, else auto.
    random_state : int, RandomState or None, default None
        Seeds the initial weights, the shuffles, the dropout masks and the
        validation split; an int makes :meth:`fit` reproducible.
    verbose : bool or int, default False
        Print the cost after every epoch.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        When ``X`` had string column names.
    n_outputs_ : int
        Output units (1 for two classes, else n_classes).
    model_ : bpnet.model.MLP
        The trained network (on the backend).
    n_iter_ : int
        Epochs trained (across ``partial_fit`` calls).
    loss_ : float
        Training cost of the last epoch (L2 term included).
    loss_curve_ : list of float
        Training cost of every epoch.
    validation_loss_curve_ : list of float or None
        Validation cost of every epoch when ``early_stopping``.
    history_ : bpnet.model.History
        The full per-epoch record (accuracy, validation, time, best epoch).
    coefs_, intercepts_ : list of ndarray
        Host copies of the weights in sklearn's layout.
    n_layers_ : int
    """

    def fit(self, X, y):
        """Train from scratch for ``max_iter`` epochs; returns ``self``."""
        return self._fit(X, y, incremental=False, classes=None)

    def partial_fit(self, X, y, classes=None):
        """One epoch over ``(X, y)``, continuing the previous weights and optimiser state.

        ``classes`` (all the labels that will ever be seen) is required on the first call.
        """
        return self._fit(X, y, incremental=True, classes=classes)

    def _fit(self, X, y, *, incremental, classes):
        p = self._checked_params()
        first = not (incremental and hasattr(self, "model_"))
        X, y = _validate_data(self, X, y, reset=first, dtype=self._X_dtype(p, first))
        check_classification_targets(y)
        if first:
            if incremental:
                if classes is None:
                    raise ValueError("classes: must be given on the first call to partial_fit "
                                     "(all the labels that y may contain)")
                all_classes = unique_labels(classes)
            else:
                all_classes = np.unique(y)
            if len(all_classes) < 2:
                raise ValueError(f"{type(self).__name__} needs samples of at least 2 classes in the data, but the "
                                 f"data contain only one class: {all_classes.tolist()[0]!r}")
        else:
            all_classes = self.classes_
            if classes is not None and not np.array_equal(unique_labels(classes), all_classes):
                raise ValueError(f"classes: {classes!r} differs from the classes of the first partial_fit call, "
                                 f"{all_classes.tolist()!r}")
        unseen = ~np.isin(y, all_classes)
        if np.any(unseen):
            raise ValueError(f"y: labels {np.unique(y[unseen]).tolist()!r} are not in classes {all_classes.tolist()!r}")
        if first:
            self.classes_ = all_classes
            self.n_outputs_ = 1 if len(all_classes) == 2 else len(all_classes)
            loss = "binary_crossentropy" if self.n_outputs_ == 1 else "categorical_crossentropy"
            self.model_ = self._new_model(p, X, self.n_outputs_, loss)
        y_idx = np.searchsorted(self.classes_, y).astype(np.int64)
        return self._train(p, X, y_idx, incremental=incremental)

    def predict_proba(self, X):
        """Class probabilities, float64 of shape (n_samples, n_classes), columns in ``classes_`` order."""
        out = self._forward(X)
        if out.shape[1] == 1:
            p = out[:, 0]
            return np.column_stack([1.0 - p, p])
        return out / out.sum(axis=1, keepdims=True)

    def predict_log_proba(self, X):
        """``log(predict_proba(X))`` (``-inf`` where a probability is 0)."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X):
        """Labels (elements of ``classes_``) of shape (n_samples,): the most probable class."""
        proba = self.predict_proba(X)  # first: it raises NotFittedError before classes_ is read
        return self.classes_[np.argmax(proba, axis=1)]


class MLPRegressor(RegressorMixin, _BaseMLP):
    """Multi-layer perceptron regressor (linear output, mean squared error) trained by bpnet.

    ``y`` of shape (n_samples,) or (n_samples, n_outputs) (multi-output);
    :meth:`predict` returns the same shape.  The parameters are those of
    :class:`MLPClassifier`; the targets are fitted as given, so scale them
    (e.g. with :class:`~sklearn.compose.TransformedTargetRegressor`) when
    they are far from unit scale.

    Attributes
    ----------
    n_features_in_, feature_names_in_, n_outputs_, model_, n_iter_, loss_, loss_curve_,
    validation_loss_curve_, history_, coefs_, intercepts_, n_layers_
        As for :class:`MLPClassifier`.
    """

    def fit(self, X, y):
        """Train from scratch for ``max_iter`` epochs; returns ``self``."""
        return self._fit(X, y, incremental=False)

    def partial_fit(self, X, y):
        """One epoch over ``(X, y)``, continuing the previous weights and optimiser state."""
        return self._fit(X, y, incremental=True)

    def _fit(self, X, y, *, incremental):
        p = self._checked_params()
        first = not (incremental and hasattr(self, "model_"))
        X, y = _validate_data(self, X, y, reset=first, dtype=self._X_dtype(p, first), multi_output=True,
                              y_numeric=True)
        y = np.asarray(y, dtype=np.float64)
        Y = y.reshape(1, -1) if y.ndim == 1 else y.T
        if first:
            self.n_outputs_ = Y.shape[0]
            self._y_ndim = y.ndim
            self.model_ = self._new_model(p, X, self.n_outputs_, "mse")
        elif Y.shape[0] != self.n_outputs_:
            raise ValueError(f"y: {Y.shape[0]} targets, but the estimator was fitted with {self.n_outputs_}")
        return self._train(p, X, Y, incremental=incremental)

    def predict(self, X):
        """Predictions, float64 of shape (n_samples,) or (n_samples, n_outputs) like the fitted ``y``."""
        out = self._forward(X)
        return out[:, 0] if self._y_ndim == 1 else out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def _more_tags(self):  # pragma: no cover - scikit-learn < 1.6
        return {"multioutput": True}
