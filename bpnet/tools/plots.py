"""PNG plots of a training run: cost/accuracy curves and the 2-D decision boundary.

matplotlib is an optional dependency (``pip install 'bpnet[plot]'``); it is
imported when a plot is drawn.  The figures are matplotlib ``Figure`` objects
drawn straight to PNG (no pyplot: no window, no global figure or backend
changed in the caller's session), and every file is written atomically.
"""

from __future__ import annotations

import io

import numpy as np

from ..io.atomic import atomic_write

__all__ = ["plot_history", "plot_decision_boundary"]


def _figure(**kw):
    """A ``matplotlib.figure.Figure`` of its own (pyplot never sees it: nothing to close, no backend to set)."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError("plots need matplotlib, which is not installed: pip install 'bpnet[plot]'") from None
    return Figure(**kw)


def _save(fig, path):
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")  # Agg, matplotlib's own PNG canvas
    return atomic_write(path, lambda f: f.write(buf.getvalue()))


def _panel(ax, epochs, train, val, ylabel, title):
    """One curve per split against the epoch (validation only where measured)."""
    ax.plot(epochs, train, label="train")
    if any(v is not None for v in val):
        ax.plot(epochs, [np.nan if v is None else v for v in val], label="validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3)


def plot_history(history, path, *, title=None):
    """Cost (and accuracy, when measured) per epoch, training and validation.

    Parameters
    ----------
    history : bpnet.History or dict
        With lists ``epoch``, ``cost``, ``accuracy``, ``val_cost``, ``val_accuracy``.
    path : str or PathLike
        The PNG to write.
    """
    h = history.to_dict() if hasattr(history, "to_dict") else dict(history)
    epochs = h["epoch"]
    has_acc = any(a is not None for a in h.get("accuracy", []))
    fig = _figure(figsize=(10 if has_acc else 5.5, 4))
    axes = fig.subplots(1, 2 if has_acc else 1, squeeze=False)
    _panel(axes[0, 0], epochs, h["cost"], h.get("val_cost", []), "cost J", "cost")
    if has_acc:
        _panel(axes[0, 1], epochs, h["accuracy"], h.get("val_accuracy", []), "accuracy", "accuracy")
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def plot_decision_boundary(predict, X, y, path, *, title=None, h=None):
    """The course's decision-boundary plot for 2-D data.

    Parameters
    ----------
    predict : callable
        Maps host points of shape ``(2, k)`` (columns) to host class labels of shape ``(k,)``.
    X : ndarray, shape (2, m)
    y : ndarray, shape (m,)
    path : str or PathLike
    h : float, optional
        Grid step (default: 1/200 of the larger range).
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y).reshape(-1)
    if X.ndim != 2 or X.shape[0] != 2:
        raise ValueError(f"X: the decision boundary needs 2-D data of shape (2, m), got {X.shape}")
    if y.shape[0] != X.shape[1]:
        raise ValueError(f"y: expected {X.shape[1]} labels, got {y.shape[0]}")
    x_min, x_max = X[0].min() - 1, X[0].max() + 1
    y_min, y_max = X[1].min() - 1, X[1].max() + 1
    step = h or max(x_max - x_min, y_max - y_min) / 200
    xx, yy = np.meshgrid(np.arange(x_min, x_max, step), np.arange(y_min, y_max, step))
    Z = np.asarray(predict(np.stack([xx.ravel(), yy.ravel()]))).reshape(xx.shape)
    fig = _figure(figsize=(5.5, 4.5))
    ax = fig.subplots()
    ax.contourf(xx, yy, Z, cmap="Spectral", alpha=0.8)
    ax.scatter(X[0], X[1], c=y, cmap="Spectral", s=12, edgecolors="k", linewidths=0.3)
    ax.set_xlabel("x1")
    ax.set_ylabel("x2")
    ax.set_title(title or "decision boundary")
    return _save(fig, path)
