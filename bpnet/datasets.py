"""Real data sets that ship inside scikit-learn (nothing is downloaded).

:func:`load_dataset` returns host numpy arrays already laid out for the
course's column convention, split into train and test sets, standardised with
the *training* mean and standard deviation, and with labels encoded for the
loss the data set calls for (0/1 rows for two classes, one-hot for more).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["DATASETS", "Dataset", "load_dataset"]

#: name -> (scikit-learn loader, description)
DATASETS = {
    "breast_cancer": ("load_breast_cancer", "Wisconsin diagnostic breast cancer, 569 x 30, 2 classes"),
    "digits": ("load_digits", "handwritten digits 8x8, 1797 x 64, 10 classes"),
    "iris": ("load_iris", "Fisher's iris, 150 x 4, 3 classes"),
    "wine": ("load_wine", "wine recognition, 178 x 13, 3 classes"),
}


@dataclass
class Dataset:
    """A split, standardised, column-major data set.

    Attributes
    ----------
    X_train, X_test : ndarray, shape (n_x, m_train), (n_x, m_test)
    Y_train, Y_test : ndarray, shape (n_y, m)
        ``n_y = 1`` with 0/1 labels for two classes, one-hot ``(n_classes, m)`` otherwise.
    y_train, y_test : ndarray of int, shape (m,)
        Class indices.
    class_names : list of str
    loss : str
        ``"binary_crossentropy"`` or ``"categorical_crossentropy"``.
    mean, std : ndarray, shape (n_x, 1)
        Training-set statistics used for standardisation.
    """

    name: str
    X_train: np.ndarray
    Y_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    Y_test: np.ndarray
    y_test: np.ndarray
    class_names: list
    loss: str
    mean: np.ndarray
    std: np.ndarray

    @property
    def n_x(self) -> int:
        return self.X_train.shape[0]

    @property
    def n_y(self) -> int:
        return self.Y_train.shape[0]


def _encode(y: np.ndarray, n_classes: int) -> np.ndarray:
    if n_classes == 2:
        return y[np.newaxis, :].astype(np.float64)  # (1, m) of 0/1
    return np.eye(n_classes)[:, y]  # one-hot, (C, m)


def load_dataset(name: str = "breast_cancer", *, test_size: float = 0.2, seed: int = 0) -> Dataset:
    """Load an embedded data set, split it (stratified) and standardise it.

    Parameters
    ----------
    name : str
        One of :data:`DATASETS`.
    test_size : float in (0, 1)
        Fraction of examples held out for testing.
    seed : int
        Seed of the split.
    """
    if name not in DATASETS:
        raise ValueError(f"data: unknown data set {name!r}; expected one of {', '.join(map(repr, DATASETS))}")
    if not (isinstance(test_size, float) and 0.0 < test_size < 1.0):
        raise ValueError(f"test_size: expected a float in (0, 1), got {test_size!r}")
    try:
        import sklearn.datasets
        from sklearn.model_selection import train_test_split
    except ImportError:
        raise ImportError(
            "the embedded data sets come from scikit-learn, which is not installed: "
            "pip install 'bpnet[sklearn]'"
        ) from None
    bunch = getattr(sklearn.datasets, DATASETS[name][0])()
    X = np.asarray(bunch.data, dtype=np.float64)
    y = np.asarray(bunch.target, dtype=np.int64)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=test_size, random_state=seed, stratify=y)
    mean = X_tr.mean(axis=0, keepdims=True)
    std = X_tr.std(axis=0, keepdims=True)
    std[std == 0] = 1.0  # constant features (e.g. digits' blank corners) stay 0
    X_tr = (X_tr - mean) / std
    X_te = (X_te - mean) / std
    n_classes = len(bunch.target_names)
    return Dataset(
        name=name,
        X_train=np.ascontiguousarray(X_tr.T),
        Y_train=_encode(y_tr, n_classes),
        y_train=y_tr,
        X_test=np.ascontiguousarray(X_te.T),
        Y_test=_encode(y_te, n_classes),
        y_test=y_te,
        class_names=[str(c) for c in bunch.target_names],
        loss="binary_crossentropy" if n_classes == 2 else "categorical_crossentropy",
        mean=mean.T,
        std=std.T,
    )
