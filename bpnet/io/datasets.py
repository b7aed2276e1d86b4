"""Data sets: a source read, split, standardised and encoded for the network.

:func:`load_dataset` returns a :class:`Dataset` of host numpy arrays in the
course's column layout (``X`` is ``(n_x, m)``, ``Y`` is ``(n_y, m)``), split
into train / validation / test sets.  The standardisation and the label codec
are one :class:`~bpnet.io.preprocess.Preprocessor` (``ds.preprocessor``),
fitted on the training split, which a model saves to treat new data the same.

========== ================================ ======================== =================
task       ``Y_*`` (what the network fits)   ``loss``                 output activation
========== ================================ ======================== =================
binary     ``(1, m)`` row of 0/1             binary_crossentropy      sigmoid
multiclass one-hot ``(n_classes, m)``        categorical_crossentropy softmax
regression ``(1, m)`` standardised targets   mse                      linear
========== ================================ ======================== =================

``y_*`` holds the ground truth in the user's terms: class indices (``int64``,
names by :meth:`Dataset.decode`) or raw regression targets.

The task of a file is inferred from its labels unless ``task=`` says it: text
labels are classes (sorted unique strings); integer labels with at most
:data:`MAX_INFERRED_CLASSES` distinct values are classes (``"0"``, ``"1"``, ...
sorted numerically); other numbers are a regression target.  Two classes make a
binary task, more a multiclass one.

Splits: ``ceil(test_size * n)`` test and ``ceil(val_size * n)`` validation
examples, stratified for classification unless ``stratify=False``.  The
scikit-learn data sets keep their historical ``train_test_split`` split (test
first, then validation, ``random_state=seed``); the others use bpnet's seeded
numpy split (largest remainders per class, every class keeps a training
example).  Standardisation uses the training mean and population std (a
constant feature gets std 1); regression targets are standardised too.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .. import _validate as v
from ..nn.losses import loss_for_task
from .files import (
    DATASETS,
    FILE_SUFFIXES,
    LABEL_COLUMNS,
    Labels,
    class_name,
    make_flower,
    names_preview,
    read_features,
    read_table,
    source_kind,
)
from .preprocess import TASKS as _TASK_NAMES
from .preprocess import Preprocessor

__all__ = [
    "DATASETS",
    "FILE_SUFFIXES",
    "LABEL_COLUMNS",
    "MAX_INFERRED_CLASSES",
    "TASKS",
    "Dataset",
    "Preprocessor",
    "load_dataset",
    "make_flower",
    "read_features",
]

#: tasks and the loss each one is trained with
TASKS = {task: loss_for_task(task).name for task in _TASK_NAMES}

#: integer labels with at most this many distinct values are classes; more make a regression target
MAX_INFERRED_CLASSES = 20

#: the split arguments, as messages name them for Python and for the command line (which has no stratify
#: or task option: hints about those say "from Python")
_SPLIT_ARGS = "test_size/val_size (bpnet train: --test-size/--val-size)"


class Dataset:
    """A split, standardised, column-major data set (host numpy arrays).

    Attributes
    ----------
    name : str
        Embedded name, or the file's name.
    X_train, X_val, X_test : ndarray of float64, shape (n_x, m)
        Standardised features, one example per column.  ``X_val`` is
        ``(n_x, 0)`` when there is no validation split.
    Y_train, Y_val, Y_test : ndarray of float64, shape (n_y, m)
        What the network fits (see the module docstring).
    y_train, y_val, y_test : ndarray, shape (m,)
        Ground truth: class indices (int64) or raw regression targets (float64).
    preprocessor : Preprocessor
        The training standardisation and label codec; :meth:`transform`,
        :meth:`encode` and :meth:`decode` are its, and so are ``task``,
        ``class_names``, ``feature_names``, ``label_name``, ``mean`` and ``std``
        (``(n_x, 1)`` arrays), ``y_mean`` and ``y_std``.
    loss : str
        ``"binary_crossentropy"``, ``"categorical_crossentropy"`` or ``"mse"``.
    source : str
        The embedded name or the file path.
    index_train, index_val, index_test : ndarray of int64, shape (m,)
        Row of the source each example came from (0-based; for a CSV file, the
        n-th data line after the header).
    description : str
        One line for humans.

    The positional constructor of earlier versions (``class_names, loss, mean,
    std, ...``) still works; ``preprocessor=`` replaces those statistics.
    """

    def __init__(self, name, X_train, Y_train, y_train, X_test, Y_test, y_test, class_names=(), loss=None,
                 mean=None, std=None, X_val=None, Y_val=None, y_val=None, task=None, feature_names=None,
                 source="", label_name="target", y_mean=0.0, y_std=1.0, index_train=None, index_val=None,
                 index_test=None, description="", *, preprocessor=None):
        self.name = name
        self.X_train, self.Y_train, self.y_train = X_train, Y_train, y_train
        self.X_test, self.Y_test, self.y_test = X_test, Y_test, y_test
        n_x, n_y = X_train.shape[0], Y_train.shape[0]
        self.X_val = np.zeros((n_x, 0)) if X_val is None else X_val
        self.Y_val = np.zeros((n_y, 0)) if Y_val is None else Y_val
        self.y_val = np.zeros(0, dtype=y_train.dtype) if y_val is None else y_val
        if preprocessor is None:
            if task is None:
                task = {loss_: t for t, loss_ in TASKS.items()}.get(loss, "multiclass")
            preprocessor = Preprocessor(
                list(feature_names) if feature_names else [f"x{j}" for j in range(n_x)],
                _flat(mean, 0.0, n_x), _flat(std, 1.0, n_x), task, list(class_names), label_name,
                y_mean, y_std)
        self.preprocessor = preprocessor
        self.loss = loss or preprocessor.loss
        self.source = source or name
        self.index_train, self.index_val, self.index_test = index_train, index_val, index_test
        self.description = description or self.source

    # ------------------------------------------------- the preprocessor's, read only
    task = property(lambda self: self.preprocessor.task, doc="``binary``, ``multiclass`` or ``regression``.")
    class_names = property(lambda self: list(self.preprocessor.class_names),
                           doc="Class ``i`` is ``class_names[i]``; empty for regression.")
    feature_names = property(lambda self: list(self.preprocessor.feature_names), doc="One per row of ``X``.")
    label_name = property(lambda self: self.preprocessor.label, doc="The label column, array or ``target``.")
    mean = property(lambda self: np.array(self.preprocessor.mean)[:, np.newaxis],
                    doc="Training means, shape ``(n_x, 1)``.")
    std = property(lambda self: np.array(self.preprocessor.std)[:, np.newaxis],
                   doc="Training standard deviations, shape ``(n_x, 1)``.")
    y_mean = property(lambda self: self.preprocessor.y_mean, doc="Regression target mean (0 otherwise).")
    y_std = property(lambda self: self.preprocessor.y_std, doc="Regression target std (1 otherwise).")

    # ------------------------------------------------------------------ sizes
    @property
    def n_x(self) -> int:
        """Number of features (rows of ``X``)."""
        return self.X_train.shape[0]

    @property
    def n_y(self) -> int:
        """Number of output units (rows of ``Y``)."""
        return self.Y_train.shape[0]

    @property
    def n_classes(self) -> int:
        """Number of classes; 0 for regression."""
        return len(self.preprocessor.class_names)

    @property
    def m_train(self) -> int:
        return self.X_train.shape[1]

    @property
    def m_val(self) -> int:
        return self.X_val.shape[1]

    @property
    def m_test(self) -> int:
        return self.X_test.shape[1]

    @property
    def output_activation(self) -> str:
        """``"sigmoid"``, ``"softmax"`` or ``"linear"``: the output layer this task calls for."""
        return self.preprocessor.output_activation

    def __repr__(self) -> str:
        return (f"Dataset(name={self.name!r}, task={self.task!r}, n_x={self.n_x}, n_y={self.n_y}, "
                f"m_train={self.m_train}, m_val={self.m_val}, m_test={self.m_test}, loss={self.loss!r})")

    # ------------------------------------------------------------- new data
    def transform(self, X) -> np.ndarray:
        """Raw rows ``(n_samples, n_x)`` -> standardised ``(n_x, n_samples)``: :meth:`Preprocessor.transform`."""
        return self.preprocessor.transform(X)

    def decode(self, values) -> np.ndarray:
        """Class indices -> class names; regression outputs -> target units: :meth:`Preprocessor.decode`."""
        return self.preprocessor.decode(values)

    def encode(self, labels) -> np.ndarray:
        """Class labels -> class indices; regression targets -> standardised: :meth:`Preprocessor.encode`."""
        return self.preprocessor.encode(labels)


def _flat(values, fill: float, n: int) -> list:
    return [fill] * n if values is None else np.asarray(values, dtype=np.float64).ravel().tolist()


# --------------------------------------------------------------------------- #
# labels -> task, class indices


def _ceil_count(fraction: float, n: int) -> int:
    # round first so that 0.3 * 10 = 3.0000000000000004 counts 3 examples, not 4
    return int(math.ceil(round(fraction * n, 9)))


def _resolve_task(labels: Labels, task, source: str, label_name: str):
    """-> task, y (int64 class indices or float64 targets), class_names."""
    if task is not None and task not in TASKS:
        raise ValueError(f"task: expected one of {', '.join(map(repr, TASKS))} or None, got {task!r}")
    v = labels.values
    if task == "regression":
        if not labels.numeric:
            raise ValueError(f"{source}: task='regression' needs numeric labels, but label {label_name!r} "
                             f"holds text such as {str(v[0])!r}")
        return "regression", v.astype(np.float64), []
    if labels.class_names is not None:  # embedded: values are indices into known names
        y = v.astype(np.int64)
        names = list(labels.class_names)
    elif labels.numeric:
        uniq = np.unique(v)
        integral = bool(np.all(uniq == np.round(uniq)))
        if task is None and not (integral and len(uniq) <= MAX_INFERRED_CLASSES):
            return "regression", v.astype(np.float64), []
        y = np.searchsorted(uniq, v).astype(np.int64)
        names = [class_name(u) for u in uniq]
    else:
        uniq = np.unique(v)  # sorted unique strings
        y = np.searchsorted(uniq, v).astype(np.int64)
        names = [str(u) for u in uniq]
    k = len(names)
    if k < 2:
        raise ValueError(f"{source}: label {label_name!r} has a single class ({names[0]!r}); classification "
                         "needs at least 2: add examples of another class (from Python, "
                         "load_dataset(..., task='regression') fits a numeric target instead)")
    inferred = "binary" if k == 2 else "multiclass"
    if task == "binary" and k != 2:
        raise ValueError(f"{source}: task='binary' needs exactly 2 classes, label {label_name!r} has {k}: "
                         f"{names_preview(names, 10)}")
    return (task or inferred), y, names




# --------------------------------------------------------------------------- #
# splitting


def _split_sizes(n: int, test_size: float, val_size: float):
    n_test = _ceil_count(test_size, n)
    n_val = _ceil_count(val_size, n) if val_size > 0 else 0
    n_train = n - n_test - n_val
    if n_train < 1:
        raise ValueError(f"split: too few examples ({n}) for test_size={test_size} and val_size={val_size}: "
                         f"{n_test} test + {n_val} validation examples leave none for training; lower "
                         f"{_SPLIT_ARGS} or add examples")
    return n_train, n_val, n_test


def _allocate(counts: np.ndarray, total: int, caps: np.ndarray) -> np.ndarray:
    """Split ``total`` across groups in proportion to ``counts`` (largest remainders), each <= its cap."""
    quota = counts * (total / counts.sum())
    k = np.minimum(np.floor(quota).astype(np.int64), caps)
    short = total - int(k.sum())
    if short > int((caps - k).sum()):
        return None
    frac = quota - np.floor(quota)
    order = np.lexsort((np.arange(len(counts)), -counts, -frac))  # largest remainder, then larger group
    while short > 0:
        for g in order:
            if short and k[g] < caps[g]:
                k[g] += 1
                short -= 1
    return k


def _numpy_split(y, n_val: int, n_test: int, seed, stratify: bool, class_names, source: str):
    """bpnet's own seeded split -> (train, val, test) row indices, each in shuffled order."""
    n = len(y)
    rng = np.random.RandomState(seed)
    perm = rng.permutation(n)
    groups = y[perm] if stratify else np.zeros(n, dtype=np.int64)
    ids, counts = np.unique(groups, return_counts=True)
    if stratify and counts.min() < 2:
        c = int(ids[np.argmin(counts)])
        raise ValueError(f"{source}: class {class_names[c]!r} has a single example; a stratified split needs "
                         "at least 2 per class: add another example of it or remove it (from Python, "
                         "load_dataset(..., stratify=False) splits without stratifying)")
    k_test = _allocate(counts, n_test, counts - 1)
    k_val = None if k_test is None else _allocate(counts - k_test, n_val, counts - k_test - 1)
    if k_test is None or k_val is None:
        raise ValueError(f"{source}: too few examples per class ({dict(zip(map(int, ids), map(int, counts)))}) "
                         f"for a stratified split into {n_test} test and {n_val} validation examples while "
                         f"keeping every class in training; lower {_SPLIT_ARGS}, add examples, or (from Python) "
                         "pass stratify=False")
    part = np.zeros(n, dtype=np.int8)  # 0 train, 1 val, 2 test; by position in perm
    for g, kt, kv in zip(ids, k_test, k_val):
        pos = np.flatnonzero(groups == g)
        part[pos[:kt]] = 2
        part[pos[kt:kt + kv]] = 1
    return perm[part == 0], perm[part == 1], perm[part == 2]


def _stratified_counts(y, sizes: dict, n_val: int):
    """Refuse, naming the argument, a stratified split with fewer test, validation or training examples than
    classes (scikit-learn's ``train_test_split`` puts at least one of each class in every part)."""
    n, k = len(y), len(np.unique(y))
    n_test = int(math.ceil(sizes["test_size"] * n))  # train_test_split's count of a fraction
    for arg, count in (("test_size", n_test), ("val_size", n_val)):
        if 0 < sizes[arg] and count < k:
            least = math.ceil(k / n * 1e4) / 1e4  # a fraction that counts >= k examples, rounded up
            raise ValueError(f"{arg}: a stratified split puts an example of each of the {k} classes in the "
                             f"{'test' if arg == 'test_size' else 'validation'} set, so it needs at least {k} "
                             f"examples; {arg}={sizes[arg]} of {n} gives {count}: use {arg} >= {least:g} "
                             f"(bpnet train: --{arg.replace('_', '-')}), or (from Python) pass stratify=False")
    if n - n_test - n_val < k:
        raise ValueError(f"test_size + val_size: a stratified split needs a training example of each of the {k} "
                         f"classes; test_size={sizes['test_size']} and val_size={sizes['val_size']} leave "
                         f"{n - n_test - n_val} of {n}: lower {_SPLIT_ARGS}, or (from Python) pass stratify=False")


def _sklearn_split(y, n_val: int, test_size: float, seed, stratify: bool, val_size: float = 0.0):
    """The historical split of the embedded data sets: train_test_split, test first, then validation."""
    from sklearn.model_selection import train_test_split  # present: the data set came from scikit-learn

    if stratify:
        _stratified_counts(y, {"test_size": test_size, "val_size": val_size}, n_val)
    idx = np.arange(len(y))
    try:
        rest, test = train_test_split(idx, test_size=test_size, random_state=seed,
                                      stratify=y if stratify else None)
        val = idx[:0]
        if n_val:
            rest, val = train_test_split(rest, test_size=n_val, random_state=seed,
                                         stratify=y[rest] if stratify else None)
    except ValueError as exc:
        raise ValueError(f"split: {exc}") from None
    return rest, val, test


# --------------------------------------------------------------------------- #
# the entry point


def load_dataset(
    name="breast_cancer",
    *,
    test_size: float = 0.2,
    val_size: float = 0.0,
    seed: int | None = 0,
    standardize: bool = True,
    task: str | None = None,
    stratify: bool | None = None,
    label: str | None = None,
    delimiter: str = ",",
    x_key: str = "X",
    y_key: str = "y",
    preprocessor: Preprocessor | None = None,
) -> Dataset:
    """Load an embedded data set or a CSV/NPZ file, split, standardise and encode it.

    Parameters
    ----------
    name : str or path-like
        One of :data:`DATASETS`, or the path of a ``.csv`` or ``.npz`` file.
    test_size, val_size : float
        Fractions of the whole set held out for testing (in (0, 1)) and for
        validation (in [0, 1)); ``test_size + val_size < 1``.
    seed : int
        Seed of the split.
    standardize : bool
        Centre and scale features (and regression targets) with the training
        statistics.
    task : {"binary", "multiclass", "regression"} or None
        Override the task inferred from the labels (see the module docstring).
    stratify : bool or None
        Keep class proportions in every split; default: yes for classification.
    label : str or None
        CSV: the label column (default: ``label``/``target``/``y``/``class``, else the last column).
    delimiter : str
        CSV field separator.
    x_key, y_key : str
        NPZ: the names of the feature and label arrays.
    preprocessor : Preprocessor, optional
        A saved one (e.g. ``model.preprocessor``): the source is read through
        it (feature columns by name, labels with its codec, its label column
        by default) and standardised with its statistics; ``standardize`` is
        then ignored and ``task`` must be its task or None.  The split is the
        one the same source and arguments give without it.
    """
    kind, source = source_kind(name)
    if label is not None and kind != "csv":
        what = ("an embedded data set" if kind == "embedded" else
                "an NPZ file, whose labels are the array named by y_key= (default 'y', the one bpnet train reads)")
        raise ValueError(f"label: names the label column of a CSV file; {source!r} is {what}")
    test_size = v.real(test_size, "test_size", low=0.0, high=1.0, low_open=True, high_open=True)
    val_size = v.real(val_size, "val_size", low=0.0, high=1.0, high_open=True)
    if test_size + val_size >= 1.0:
        raise ValueError(f"test_size + val_size: expected a sum below 1 to leave training examples, got "
                         f"test_size={test_size} + val_size={val_size} = {test_size + val_size} "
                         "(bpnet train: --test-size + --val-size)")
    seed = None if seed is None else v.seed(seed)
    stratify = None if stratify is None else v.flag(stratify, "stratify")
    if task is not None and task not in TASKS:
        raise ValueError(f"task: expected one of {', '.join(map(repr, TASKS))} or None, got {task!r}")

    X, y, task, class_names, features, label_name = _read(kind, source, preprocessor, task, label, delimiter,
                                                          x_key, y_key)
    if stratify and task == "regression":
        raise ValueError("stratify: a regression target cannot be stratified; leave stratify=None")
    strat = task != "regression" and stratify is not False

    n = X.shape[0]
    n_train, n_val, n_test = _split_sizes(n, test_size, val_size)
    if kind == "embedded" and DATASETS[source][0] is not None:
        i_tr, i_va, i_te = _sklearn_split(y, n_val, test_size, seed, strat, val_size)
    else:
        i_tr, i_va, i_te = _numpy_split(y, n_val, n_test, seed, strat, class_names, source)

    pre = preprocessor or Preprocessor.fit(X[i_tr], y[i_tr], task=task, class_names=class_names,
                                           feature_names=features, label=label_name, standardize=standardize)
    if kind == "embedded":
        description = DATASETS[source][1]
    else:
        what = "regression" if task == "regression" else f"{len(class_names)} classes"
        description = f"{source}: {n} x {X.shape[1]}, {what} (label {label_name!r})"
    return _assemble(pre, X, y, (i_tr, i_va, i_te), source if kind == "embedded" else Path(source).name, source,
                     description)


def _read(kind, source, preprocessor, task, label, delimiter, x_key, y_key):
    """-> raw X (n, d), y, task, class names, feature names, label name: inferred, or through ``preprocessor``."""
    if preprocessor is None:
        table = read_table(source, label=label, task=task, delimiter=delimiter, x_key=x_key, y_key=y_key)
        task, y, class_names = _resolve_task(table.labels, task, source, table.label_name)
        return table.X, y, task, class_names, table.feature_names, table.label_name
    if not isinstance(preprocessor, Preprocessor):
        raise TypeError(f"preprocessor: expected a bpnet.io.Preprocessor, got {type(preprocessor).__name__}")
    if task not in (None, preprocessor.task):
        raise ValueError(f"task: the preprocessor's task is {preprocessor.task!r}, got {task!r}")
    label_name = label or (y_key if kind == "npz" else preprocessor.label)
    X, y = preprocessor.read(source, label=label_name, delimiter=delimiter, x_key=x_key)
    return X, y, preprocessor.task, list(preprocessor.class_names), preprocessor.feature_names, label_name


def _assemble(pre, X, y, indices, name, source, description) -> Dataset:
    """The parts (training, validation, test) of the raw rows, through ``pre``, as a Dataset."""
    parts = []
    for part, idx in zip(("training", "validation", "test"), indices):
        parts.append((pre.transform(X[idx], name=f"{source}: {part} features"),
                      pre.targets(y[idx], indices=True, name=f"{source}: {part} targets"), y[idx],
                      np.asarray(idx, dtype=np.int64)))
    (X_tr, Y_tr, y_tr, ix_tr), (X_va, Y_va, y_va, ix_va), (X_te, Y_te, y_te, ix_te) = parts
    return Dataset(name, X_tr, Y_tr, y_tr, X_te, Y_te, y_te, X_val=X_va, Y_val=Y_va, y_val=y_va, source=source,
                   index_train=ix_tr, index_val=ix_va, index_test=ix_te, description=description, preprocessor=pre)
