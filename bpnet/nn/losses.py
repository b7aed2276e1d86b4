"""Losses: one registry entry each, and the one set of rules pairing an output with a loss.

Convention of the course: the cost averages over the m examples (columns),
``J = (1/m) sum_i L(a_i, y_i)``, while ``dAL`` is the gradient of the
per-example loss and carries **no** ``1/m`` (it enters once, in ``dW`` and ``db``).

A :class:`Loss` carries its cost and ``dAL`` from the output ``A[L]`` (the
course's functions), its cost from the logits ``Z[L]`` (what training
reports), its canonical output (for which ``dAL * g'(Z[L])`` is exactly
``dZ[L] = A[L] - Y``), the kind of target it takes, the task it serves, and
the text ``bpnet explain`` prints.  :data:`FUSED_PAIRS` and the defaults are
derived from the entries; :func:`resolve_head` is the one place that decides
which (output, loss) pairs a model may train.

Exactness: from ``A[L]`` the log-losses give the course's numbers for every
finite input; only an exact 0 in ``log``, or a denominator below the smallest
normal number (whose reciprocal would overflow), is replaced by that number
(so a saturated output gives a large finite cost and gradient, not inf/NaN).
``A[L]`` rounds a confident output to 0 or 1, so where bpnet has the logits
(the training step, ``MLP``, the estimators, ``explain``) it uses the
from-logits form, ``softplus`` / ``logsumexp``, which is exact and never
overflows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .activations import ACTIVATIONS, Activation, get_activation

__all__ = ["LOSSES", "Loss", "FUSED_PAIRS", "DEFAULT_OUTPUT", "get_loss", "default_loss", "resolve_head",
           "loss_for_task", "predictions"]


def _nonzero(xp, x):
    """A denominator with ``|x|`` below the smallest normal number (0, or a subnormal whose reciprocal
    overflows) replaced by that number: the one guard of a division.  Every other value is kept."""
    tiny = float(xp.finfo(x.dtype).smallest_normal)
    return xp.where(xp.abs(x) < tiny, tiny, x)


def _log(xp, x):
    # log x with an exact 0 guarded (log(0) = -inf); a negative x (AL outside [0, 1]) gives the course's
    # NaN, without a floating-point warning (compute_cost warns about such AL by name)
    tiny = float(xp.finfo(x.dtype).smallest_normal)
    return xp.log(xp.where(x < 0, float("nan"), xp.where(x == 0, tiny, x)))


def _sum(xp, E, w):
    """``sum(E)``, or with example weights ``w`` (1, m) ``sum(E * w)``: the one place a cost is weighted."""
    return xp.sum(E) if w is None else xp.sum(E * w)


def _bce_cost(xp, AL, Y, w=None):
    # J = -(1/m) sum(Y log AL + (1-Y) log(1-AL))
    return -_sum(xp, Y * _log(xp, AL) + (1.0 - Y) * _log(xp, 1.0 - AL), w) / AL.shape[1]


def _bce_grad(xp, AL, Y):
    return -(Y / _nonzero(xp, AL) - (1.0 - Y) / _nonzero(xp, 1.0 - AL))  # dAL = -(Y/AL - (1-Y)/(1-AL))


def _bce_logits(xp, Z, Y, w=None):
    # from Z = logit(AL): -(Y log s(z) + (1-Y) log(1-s(z))) = max(z, 0) - Y z + log(1 + e^-|z|), exact, never overflows
    return _sum(xp, xp.maximum(Z, 0.0) - Y * Z + xp.log1p(xp.exp(-xp.abs(Z))), w) / Z.shape[1]


def _cce_cost(xp, AL, Y, w=None):
    return -_sum(xp, Y * _log(xp, AL), w) / AL.shape[1]  # J = -(1/m) sum Y log AL


def _cce_grad(xp, AL, Y):
    return -Y / _nonzero(xp, AL)  # dAL = -Y / AL


def _cce_logits(xp, Z, Y, w=None):
    # from the logits: -log softmax(z)_k = logsumexp(z) - z_k, with z shifted by its column max
    Zs = Z - xp.max(Z, axis=0, keepdims=True)
    lse = xp.log(xp.sum(xp.exp(Zs), axis=0, keepdims=True))
    return _sum(xp, Y * (lse - Zs), w) / Z.shape[1]


def _mse_cost(xp, AL, Y, w=None):
    D = AL - Y  # J = (1/(2m)) sum (AL - Y)^2; the 1/2 makes dAL = AL - Y
    return _sum(xp, D * D, w) / (2 * AL.shape[1])


def _mse_grad(xp, AL, Y):
    return AL - Y


def _ylogy(xp, Y):
    # Y log Y, 0 where Y <= 0 (the limit at 0; a Poisson target is never negative)
    return Y * xp.log(xp.where(Y > 0, Y, 1.0))


def _poisson_cost(xp, AL, Y, w=None):
    # half the Poisson deviance: J = (1/m) sum(Y log(Y / AL) - Y + AL), Y log Y = 0 at Y = 0
    return _sum(xp, _ylogy(xp, Y) - Y * _log(xp, AL) - Y + AL, w) / AL.shape[1]


def _poisson_grad(xp, AL, Y):
    return 1.0 - Y / _nonzero(xp, AL)  # dAL = 1 - Y / AL


def _poisson_logits(xp, Z, Y, w=None):
    # from Z = log(AL): Y log Y - Y Z - Y + exp(Z), exact (no log of a rounded AL); exp as the output computes it
    return _sum(xp, _ylogy(xp, Y) - Y * Z - Y + ACTIVATIONS["exp"].forward(xp, Z), w) / Z.shape[1]


@dataclass(frozen=True)
class Loss:
    """A registry entry.

    Attributes
    ----------
    name : str
    cost : callable
        ``cost(xp, AL, Y, w=None) -> J``, a 0-d array; ``w`` (1, m) weighs each example's term.
    grad : callable
        ``grad(xp, AL, Y) -> dAL`` (no 1/m).
    output : str
        The canonical output activation: with it ``dZ[L] = A[L] - Y`` exactly.
    target : {"binary", "onehot", "real"}
        What Y holds: 0/1 entries, one-hot columns, or any real numbers.
    task : {"binary", "multiclass", "regression"}
        The task it trains.
    strict : bool
        Only the canonical output may be trained with it (the log-losses need its range).
    logit_cost : callable
        ``logit_cost(xp, Z, Y, w=None) -> J`` from the canonical output's pre-activation ``Z[L]``:
        the same cost, exact and never overflowing where ``A[L]`` has saturated.
    cost_text, grad_text, logit_text : str
        ``J = ...``, ``dA{L} = ...`` and ``J`` from ``Z{L}`` for ``bpnet explain`` (``{L}`` is the layer).
    flops : (int, int)
        FLOPs per element of the cost and of ``dAL``.
    """

    name: str
    cost: Callable
    grad: Callable
    output: str
    target: str
    task: str
    strict: bool
    cost_text: str
    grad_text: str
    flops: tuple
    logit_cost: Callable
    logit_text: str


LOSSES: dict[str, Loss] = {l.name: l for l in (
    Loss("binary_crossentropy", _bce_cost, _bce_grad, "sigmoid", "binary", "binary", True,
         "J = -(1/m) sum(Y log A{L} + (1 - Y) log(1 - A{L}))", "dA{L} = -(Y / A{L} - (1 - Y) / (1 - A{L}))", (8, 6),
         _bce_logits, "J = (1/m) sum(max(Z{L}, 0) - Y Z{L} + log(1 + exp(-|Z{L}|)))"),
    Loss("categorical_crossentropy", _cce_cost, _cce_grad, "softmax", "onehot", "multiclass", True,
         "J = -(1/m) sum(Y log A{L})", "dA{L} = -Y / A{L}", (3, 2),
         _cce_logits, "J = (1/m) sum(Y (logsumexp(Z{L}) - Z{L}))"),
    Loss("mse", _mse_cost, _mse_grad, "linear", "real", "regression", False,
         "J = (1/(2m)) sum((A{L} - Y)^2)", "dA{L} = A{L} - Y", (3, 1), _mse_cost, "J = (1/(2m)) sum((Z{L} - Y)^2)"),
    Loss("poisson", _poisson_cost, _poisson_grad, "exp", "real", "regression", True,
         "J = (1/m) sum(Y log(Y / A{L}) - Y + A{L})", "dA{L} = 1 - Y / A{L}", (7, 2),
         _poisson_logits, "J = (1/m) sum(Y log Y - Y Z{L} - Y + exp(Z{L}))"),
)}

#: (output activation, loss) pairs whose output gradient is exactly ``dZ[L] = A[L] - Y``
FUSED_PAIRS = frozenset((l.output, l.name) for l in LOSSES.values())

#: the canonical output activation of each loss
DEFAULT_OUTPUT = {l.name: l.output for l in LOSSES.values()}


def get_loss(name, argname: str = "loss") -> Loss:
    """Registry lookup with a clear error naming ``argname`` and the known names."""
    if isinstance(name, Loss):
        return name
    if not isinstance(name, str) or name not in LOSSES:
        raise ValueError(f"{argname}: unknown loss {name!r}; expected one of {', '.join(map(repr, LOSSES))}")
    return LOSSES[name]


def default_loss(output: str) -> Loss:
    """The loss whose canonical output is ``output`` (mse for any other output)."""
    return next((l for l in LOSSES.values() if l.output == output), LOSSES["mse"])


def predictions(xp, AL, task: str):
    """What the network predicts from its output ``AL`` ``(n_L, m)`` for ``task`` (a loss's ``task``).

    "multiclass": the class indices ``(m,)``, ``argmax`` over the units (the first of equal ones);
    "binary": ``AL > 0.5``, bool ``(n_L, m)`` (one unit, or several for multi-label); "regression":
    ``AL`` itself.  The one decision of :meth:`bpnet.MLP.predict`, the training and evaluation
    accuracy (:func:`bpnet.train.step.batch_metrics`) and ``bpnet predict``.
    """
    if task == "multiclass":
        return xp.argmax(AL, axis=0)
    if task == "binary":
        return AL > 0.5
    return AL


def loss_for_task(task: str) -> Loss:
    """The loss that trains ``task`` ("binary", "multiclass" or "regression")."""
    for l in LOSSES.values():
        if l.task == task:
            return l
    raise ValueError(f"task: expected one of {', '.join(repr(l.task) for l in LOSSES.values())}, got {task!r}")


def resolve_head(n_out: int, output=None, loss=None, *, output_arg="output_activation", loss_arg="loss",
                 units_arg="layer_dims") -> tuple[Activation, Loss]:
    """The output activation and loss a model of ``n_out`` output units trains with.

    Defaults: with neither given, binary cross-entropy for one unit and
    categorical cross-entropy for more; a loss alone brings its canonical
    output; an output alone its canonical loss (mse for any other output).
    Refused (``ValueError`` naming the argument): a log-loss with any but its
    canonical output, and an output over fewer units than it needs.
    """
    if loss is None and output is None:
        loss = "binary_crossentropy" if n_out == 1 else "categorical_crossentropy"
    spec = get_loss(loss, loss_arg) if loss is not None else None
    g = get_activation(output if output is not None else spec.output, output_arg)
    spec = spec or default_loss(g.name)
    if spec.strict and g.name != spec.output:
        probs = [a for a, e in ACTIVATIONS.items() if e.probability]
        raise ValueError(f"{output_arg}: {spec.name} trains {spec.output} outputs (its gradient needs their range and "
                         f"normalisation), got {g.name!r}; use {spec.output!r}"
                         + (f" (or loss 'mse' for a {g.name} output)" if g.name not in probs else ""))
    if n_out < g.min_units:
        raise ValueError(f"{units_arg}: a {g.name} output needs >= {g.min_units} units (one per class; over one unit "
                         f"it is constantly 1), got {n_out}; use a sigmoid unit for two classes")
    return g, spec
