"""The saved preprocessor: how raw rows and labels become a network's inputs and targets.

A :class:`Preprocessor` is fitted once on the training data (by
:func:`bpnet.io.datasets.load_dataset`) and saved with the model
(``MLP.preprocessor``), so new data go through exactly the training
treatment: feature columns by name in the training order, the training
standardisation, the training label codec.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, fields

import numpy as np

from .. import _validate as v
from ..nn.losses import LOSSES, loss_for_task
from .files import check_finite_matrix, class_name, names_preview, read_columns

__all__ = ["TASKS", "Preprocessor"]

#: the tasks a data set can pose (one per loss of :data:`bpnet.nn.LOSSES`)
TASKS = tuple(loss.task for loss in LOSSES.values())


def mean_std(A: np.ndarray):
    """Column mean and population std of ``A`` (n, d), as numpy computes them, without overflow.

    Values near the float64 limit (|x| ~ 1e308) overflow ``sum(x)`` or ``x**2``;
    such columns are recomputed on ``A / max|A|`` and scaled back, so their
    statistics stay finite (other columns keep numpy's exact results).
    """
    with np.errstate(over="ignore", invalid="ignore"):
        mean = A.mean(axis=0, keepdims=True)
        std = A.std(axis=0, keepdims=True)
    bad = ~(np.isfinite(mean) & np.isfinite(std))
    if bad.any():
        scale = np.abs(A).max(axis=0, keepdims=True)
        scale[scale == 0] = 1.0
        S = A / scale
        mean = np.where(bad, S.mean(axis=0, keepdims=True) * scale, mean)
        std = np.where(bad, S.std(axis=0, keepdims=True) * scale, std)
    return mean, std


def _scale(std, mean):
    """A std of 0 (a constant column) or of round-off size becomes 1: the column stays centred, not blown up."""
    return np.where(std <= 1e-12 * np.maximum(np.abs(mean), 1.0), 1.0, std)


def _standardised(A, mean, std, what, names):
    """``(A - mean) / std``; a ValueError when a column spans more than float64 holds."""
    with np.errstate(over="ignore", invalid="ignore"):
        Z = (A - mean) / std
    bad = ~np.isfinite(Z)
    if bad.any():
        i, j = (int(k) for k in np.argwhere(bad)[0])
        col = repr(names[j]) if j < len(names) else str(j)
        raise ValueError(f"{what}: column {col} cannot be standardised in float64 (row {i}: values span more "
                         f"than float64 holds around mean {float(mean.ravel()[j]):.4g}, std "
                         f"{float(std.ravel()[j]):.4g}); rescale the column")
    return Z


@dataclass(frozen=True)
class Preprocessor:
    """Feature names and standardisation, task and label codec of a training set (immutable).

    Attributes
    ----------
    feature_names : tuple of str
        The network's inputs, in order: row ``j`` of ``X`` is column ``feature_names[j]``.
    mean, std : tuple of float
        Training statistics: ``x_j -> (x_j - mean[j]) / std[j]``; ``std > 0``.
    task : {"binary", "multiclass", "regression"}
    class_names : tuple of str
        The label codec: class ``i`` is ``class_names[i]`` (training order); empty for regression.
    label : str
        The label column (CSV), array (NPZ) or ``"target"``.
    y_mean, y_std : float
        Regression targets are fitted as ``(y - y_mean) / y_std``; 0 and 1 otherwise.
    """

    feature_names: tuple
    mean: tuple
    std: tuple
    task: str
    class_names: tuple = ()
    label: str = "target"
    y_mean: float = 0.0
    y_std: float = 1.0

    def __post_init__(self):
        names = _strings(self.feature_names, "feature_names")
        if not names:
            raise ValueError("feature_names: expected at least one feature, got none")
        _unique(names, "feature_names")
        set_ = object.__setattr__
        set_(self, "feature_names", names)
        set_(self, "task", v.choice(self.task, "task", TASKS))
        for key, low in (("mean", None), ("std", 0.0)):
            values = _numbers(getattr(self, key), key, low)
            if len(values) != len(names):
                raise ValueError(f"{key}: expected {len(names)} values (one per feature), got {len(values)}")
            set_(self, key, values)
        classes = _strings(self.class_names, "class_names")
        _unique(classes, "class_names")
        if self.task == "regression" and classes:
            raise ValueError(f"class_names: a regression task has no classes, got {len(classes)}")
        if self.task != "regression" and (len(classes) < 2 or (self.task == "binary" and len(classes) != 2)):
            how = "exactly" if self.task == "binary" else "at least"
            raise ValueError(f"class_names: a {self.task} task needs {how} 2 classes, got {list(classes)}")
        set_(self, "class_names", classes)
        if not isinstance(self.label, str):
            raise ValueError(f"label: expected a column name (str), got {type(self.label).__name__} {self.label!r}")
        set_(self, "y_mean", _number(self.y_mean, "y_mean"))
        set_(self, "y_std", _number(self.y_std, "y_std", 0.0))

    # ----------------------------------------------------------------- build
    @classmethod
    def fit(cls, X, y=None, *, task: str, class_names=None, feature_names=None, label: str = "target",
            standardize: bool = True) -> "Preprocessor":
        """Fit on training data.

        Parameters
        ----------
        X : array_like, shape (n_samples, n_features)
            Raw training rows.
        y : array_like, shape (n_samples,), optional
            Regression: the raw training targets (their mean and std are
            kept).  Classification: the training labels, from which the class
            names are taken (sorted) when ``class_names`` is not given.
        task : {"binary", "multiclass", "regression"}
        class_names : sequence of str, optional
            The codec: class ``i`` is ``class_names[i]``.
        feature_names : sequence of str, optional
            Default ``x0, x1, ...``.
        standardize : bool
            False: mean 0 and std 1 (raw features and targets).
        """
        A = np.asarray(X, dtype=np.float64)
        if A.ndim != 2 or A.shape[0] == 0:
            raise ValueError(f"X: expected raw training rows of shape (n_samples, n_features), got {A.shape}")
        check_finite_matrix(A, "X", feature_names)
        names = [f"x{j}" for j in range(A.shape[1])] if feature_names is None else feature_names
        ones, zeros = np.ones((1, A.shape[1])), np.zeros((1, A.shape[1]))
        mean, std = zeros, ones
        if v.flag(standardize, "standardize"):
            mean, std = mean_std(A)
            std = _scale(std, mean)
        y_mean, y_std, classes = 0.0, 1.0, ()
        if v.choice(task, "task", TASKS) == "regression":
            t = np.asarray(y, dtype=np.float64).reshape(-1, 1)
            if standardize:
                m_, s_ = mean_std(t)
                y_mean = float(m_[0, 0])
                y_std = float(_scale(s_, m_)[0, 0])
        elif class_names is None:
            classes = sorted({class_name(lab) for lab in np.asarray(y, dtype=object).ravel()})
        else:
            classes = class_names
        return cls(names, mean.ravel().tolist(), std.ravel().tolist(), task, classes, label, y_mean, y_std)

    # ------------------------------------------------------------- properties
    @property
    def n_x(self) -> int:
        return len(self.feature_names)

    @property
    def n_y(self) -> int:
        """Output units: one for binary and regression, one per class for multiclass."""
        return len(self.class_names) if self.task == "multiclass" else 1

    @property
    def loss(self) -> str:
        return loss_for_task(self.task).name

    @property
    def output_activation(self) -> str:
        return loss_for_task(self.task).output

    def _column(self, key) -> np.ndarray:
        return np.asarray(getattr(self, key), dtype=np.float64)[np.newaxis, :]

    # ------------------------------------------------------------ features
    def transform(self, X, *, name: str = "X") -> np.ndarray:
        """Raw rows ``(n_samples, n_x)`` (or one ``(n_x,)`` row), in :attr:`feature_names` order ->
        standardised network input ``(n_x, n_samples)``, float64, one example per column."""
        try:
            A = np.asarray(X)
        except Exception as exc:  # e.g. a cupy array refuses implicit conversion
            raise TypeError(f"{name}: expected host (numpy) data of shape (n_samples, {self.n_x}), "
                            f"got {type(X).__module__}.{type(X).__name__} ({exc})") from None
        if A.dtype.kind not in "biuf":
            raise TypeError(f"{name}: expected numeric data, got dtype {A.dtype}")
        if A.ndim == 1:
            A = A[np.newaxis, :]
        if A.ndim != 2 or A.shape[1] != self.n_x:
            hint = ""
            if A.ndim == 2 and A.shape[0] == self.n_x:
                hint = "; examples are ROWS here (samples x features), the transpose of the network's layout"
            raise ValueError(f"{name}: expected shape (n_samples, {self.n_x}) (one example per row, features "
                             f"{names_preview(self.feature_names)}), got {A.shape}{hint}")
        A = A.astype(np.float64)
        check_finite_matrix(A, name, self.feature_names)
        Z = _standardised(A, self._column("mean"), self._column("std"), name, self.feature_names)
        return np.ascontiguousarray(Z.T)

    # -------------------------------------------------------------- labels
    def encode(self, labels) -> np.ndarray:
        """Class labels (names, or values such as 0/1 or 3.0) -> int64 class indices of the training codec,
        same shape; a ValueError names every unknown class.  Regression: raw targets -> the standardised
        values the network is fitted to."""
        if self.task == "regression":
            return (_targets(labels) - self.y_mean) / self.y_std
        arr = np.asarray(labels, dtype=object)
        flat = arr.ravel()
        try:
            uniq, inverse = np.unique(np.asarray(labels).ravel(), return_inverse=True)
            keys = [class_name(u) for u in uniq]
        except TypeError:  # labels of mixed types do not sort
            keys, inverse = [class_name(lab) for lab in flat], np.arange(flat.size)
        lookup = {c: i for i, c in enumerate(self.class_names)}
        unknown = sorted({k for k in keys if k not in lookup})
        if unknown:
            what = f"class label {unknown[0]!r}" if len(unknown) == 1 else \
                f"class labels {', '.join(map(repr, unknown[:10]))}{' ...' if len(unknown) > 10 else ''}"
            raise ValueError(f"unknown {what}; the model's classes are {list(self.class_names)}")
        codes = np.array([lookup[k] for k in keys], dtype=np.int64)
        return codes[np.asarray(inverse, dtype=np.int64).ravel()].reshape(arr.shape)

    def targets(self, labels, *, indices: bool = False, name: str = "targets") -> np.ndarray:
        """What the network fits: a ``(1, m)`` row of 0/1 (binary), one-hot ``(n_classes, m)`` with
        the training classes (multiclass), or standardised ``(1, m)`` targets (regression).

        ``indices=True``: classification labels are already class indices (as
        :meth:`encode` returns them and ``Dataset.y_*`` hold them).
        """
        if self.task == "regression":
            t = _targets(labels).reshape(-1)
            y = _standardised(t[:, np.newaxis], np.array([[self.y_mean]]), np.array([[self.y_std]]), name,
                              [self.label])
            return np.ascontiguousarray(y.T)
        idx = self._indices(labels) if indices else self.encode(labels).reshape(-1)
        if self.task == "binary":
            return idx[np.newaxis, :].astype(np.float64)
        return np.ascontiguousarray(np.eye(len(self.class_names))[:, idx])

    def _indices(self, y) -> np.ndarray:
        idx = np.asarray(y).reshape(-1)
        if idx.dtype.kind not in "biu" or (idx.size and (idx.min() < 0 or idx.max() >= len(self.class_names))):
            raise ValueError(f"class indices: expected integers in [0, {len(self.class_names) - 1}], got "
                             f"{idx.dtype} {idx[:5].tolist()}")
        return idx.astype(np.int64)

    def decode(self, outputs) -> np.ndarray:
        """Network outputs back in the user's terms: class indices (any shape, integral values) -> class
        names (str array, same shape); regression outputs (standardised) -> targets in their units."""
        a = np.asarray(outputs)
        if self.task == "regression":
            if a.dtype.kind not in "biuf":
                raise TypeError(f"values: expected numbers, got dtype {a.dtype}")
            return a.astype(np.float64) * self.y_std + self.y_mean
        if a.dtype.kind not in "biuf":
            raise TypeError(f"class indices: expected integers, got dtype {a.dtype}")
        if a.dtype.kind == "f" and not np.all(a == np.round(a)):
            raise ValueError("class indices: expected integral values, got fractions")
        idx = a.astype(np.int64)
        k = len(self.class_names)
        if idx.size and (idx.min() < 0 or idx.max() >= k):
            raise ValueError(f"class indices: expected values in [0, {k - 1}], got {int(idx.min())}..{int(idx.max())}")
        return np.asarray(self.class_names, dtype=str)[idx]

    # --------------------------------------------------------------- files
    def read(self, path, *, label=None, delimiter: str = ",", x_key: str = "X"):
        """Read a CSV/NPZ file (or an embedded data set) the way the training data were read.

        The feature columns are taken **by name**, in :attr:`feature_names`
        order (other columns are ignored; missing ones are named in the
        error); the labels are encoded with the training codec.

        Parameters
        ----------
        label : str, None or False
            None: the training label column, read when present; a name: that
            column (CSV) or array (NPZ), which must be present; False: no labels.

        Returns
        -------
        X : ndarray of float64, shape (n_samples, n_x)
            Raw rows; :meth:`transform` makes them network input.
        y : ndarray, shape (n_samples,), or None
            Ground truth as ``Dataset.y_*`` holds it: class indices (int64) or
            raw regression targets (float64); None without labels.
        """
        if label is not None and label is not False and not isinstance(label, str):
            raise TypeError(f"label: expected a column name (str), None or False, got {label!r}")
        column = None if label is False else (label or self.label)
        table = read_columns(path, self.feature_names, label=column, need_label=isinstance(label, str),
                             task=self.task, delimiter=delimiter, x_key=x_key)
        if table.labels is None:
            return table.X, None
        labels = table.labels
        if self.task == "regression":
            if not labels.numeric:
                raise ValueError(f"{table.source}: label {column!r} holds text such as {str(labels.values[0])!r}; "
                                 "the model predicts a numeric target")
            return table.X, labels.values.astype(np.float64)
        try:
            return table.X, self.encode(labels.named())
        except ValueError as exc:
            raise ValueError(f"{table.source}: label {column!r}: {exc}") from None

    # ------------------------------------------------------------- storage
    def to_dict(self) -> dict:
        """JSON-ready: lists, str and float only (what a checkpoint's metadata holds)."""
        return {f.name: list(getattr(self, f.name)) if isinstance(getattr(self, f.name), tuple)
                else getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, d) -> "Preprocessor":
        """Rebuild from :meth:`to_dict`, validating untrusted input: a ValueError names the bad field."""
        if not isinstance(d, dict):
            raise ValueError(f"preprocessor: expected a dict, got {type(d).__name__}")
        known = [f.name for f in fields(cls)]
        unknown = sorted(map(str, set(d) - set(known)))
        missing = [k for k in ("feature_names", "mean", "std", "task") if k not in d]
        if unknown or missing:
            raise ValueError(f"preprocessor: {'unknown' if unknown else 'missing'} field(s) "
                             f"{unknown or missing}; expected {known}")
        try:
            return cls(**d)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"preprocessor: {exc}") from None


def _strings(values, name) -> tuple:
    if isinstance(values, (str, bytes)) or not isinstance(values, (list, tuple)):
        raise ValueError(f"{name}: expected a list of str, got {type(values).__name__}")
    for i, s in enumerate(values):
        if not isinstance(s, str):
            raise ValueError(f"{name}[{i}]: expected a str, got {type(s).__name__} {s!r}")
    return tuple(values)


def _unique(names, name) -> None:
    dup = sorted({s for s in names if names.count(s) > 1}) if len(set(names)) != len(names) else []
    if dup:
        raise ValueError(f"{name}: duplicate names {dup[:5]}")


def _number(x, name, positive_from=None) -> float:
    if isinstance(x, bool) or not isinstance(x, numbers.Real):
        raise ValueError(f"{name}: expected a real number, got {type(x).__name__} {x!r}")
    low = {} if positive_from is None else {"low": positive_from, "low_open": True}
    return v.real(x, name, **low)


def _numbers(values, name, positive_from=None) -> tuple:
    if isinstance(values, (str, bytes)) or not isinstance(values, (list, tuple)):
        raise ValueError(f"{name}: expected a list of numbers, got {type(values).__name__}")
    return tuple(_number(x, f"{name}[{j}]", positive_from) for j, x in enumerate(values))


def _targets(labels) -> np.ndarray:
    t = np.asarray(labels)
    if t.dtype.kind not in "biuf":
        raise TypeError(f"targets: expected numbers, got dtype {t.dtype}")
    return t.astype(np.float64)
