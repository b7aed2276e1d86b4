"""Losses: one registry entry each, and the one set of rules pairing an output with a loss.

Convention of the course: the cost averages over the m examples (columns),
``J = (1/m) sum_i L(a_i, y_i)``, while ``dAL`` is the gradient of the
per-example loss and carries **no** ``1/m`` (it enters once, in ``dW`` and ``db``).

A :class:`Loss` carries its cost, its ``dAL``, its canonical output (the
activation g for which ``dAL * g'(Z[L])`` simplifies exactly to
``dZ[L] = A[L] - Y``), the kind of target it takes, the task it serves, and
the text ``bpnet explain`` prints.  :data:`FUSED_PAIRS`, the default output
of a loss and the default loss of an output are derived from the entries;
:func:`resolve_head` is the one place that decides which (output, loss)
pairs a model may train.

Both log-losses clip ``AL`` to ``[eps, 1 - eps]`` (``eps`` the machine
epsilon of its dtype) before the log and the division, so a saturated output
gives a large finite cost, never ``inf``/``NaN``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .activations import ACTIVATIONS, Activation, get_activation

__all__ = ["LOSSES", "Loss", "FUSED_PAIRS", "DEFAULT_OUTPUT", "get_loss", "default_loss", "resolve_head",
           "loss_for_task"]


def _clip01(xp, AL):
    # P = min(max(AL, eps), 1 - eps).  Not xp.clip: array-api-compat's clip assigns through
    # boolean masks, which on cupy waits for the GPU (a host sync per call)
    eps = float(xp.finfo(AL.dtype).eps)
    return xp.minimum(xp.maximum(AL, eps), 1.0 - eps)


def _bce_cost(xp, AL, Y):
    P = _clip01(xp, AL)  # J = -(1/m) sum(Y log AL + (1-Y) log(1-AL))
    return -xp.sum(Y * xp.log(P) + (1.0 - Y) * xp.log(1.0 - P)) / AL.shape[1]


def _bce_grad(xp, AL, Y):
    P = _clip01(xp, AL)
    return -(Y / P - (1.0 - Y) / (1.0 - P))  # dAL = -(Y/AL - (1-Y)/(1-AL))


def _cce_cost(xp, AL, Y):
    return -xp.sum(Y * xp.log(_clip01(xp, AL))) / AL.shape[1]  # J = -(1/m) sum Y log AL


def _cce_grad(xp, AL, Y):
    return -Y / _clip01(xp, AL)  # dAL = -Y / AL


def _mse_cost(xp, AL, Y):
    D = AL - Y  # J = (1/(2m)) sum (AL - Y)^2; the 1/2 makes dAL = AL - Y
    return xp.sum(D * D) / (2 * AL.shape[1])


def _mse_grad(xp, AL, Y):
    return AL - Y


@dataclass(frozen=True)
class Loss:
    """A registry entry.

    Attributes
    ----------
    name : str
    cost : callable
        ``cost(xp, AL, Y) -> J``, a 0-d array.
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
    cost_text, grad_text : str
        ``J = ...`` and ``dA{L} = ...`` for ``bpnet explain`` (``{L}`` is the layer).
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


LOSSES: dict[str, Loss] = {l.name: l for l in (
    Loss("binary_crossentropy", _bce_cost, _bce_grad, "sigmoid", "binary", "binary", True,
         "J = -(1/m) sum(Y log A{L} + (1 - Y) log(1 - A{L}))", "dA{L} = -(Y / A{L} - (1 - Y) / (1 - A{L}))", (8, 6)),
    Loss("categorical_crossentropy", _cce_cost, _cce_grad, "softmax", "onehot", "multiclass", True,
         "J = -(1/m) sum(Y log A{L})", "dA{L} = -Y / A{L}", (3, 2)),
    Loss("mse", _mse_cost, _mse_grad, "linear", "real", "regression", False,
         "J = (1/(2m)) sum((A{L} - Y)^2)", "dA{L} = A{L} - Y", (3, 1)),
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
