"""Explain one architecture: every equation of a training step with its shapes.

:func:`build_plan` turns ``[n_x, n_1, ..., n_L]`` and a batch size ``m`` into a
:class:`Plan`: the forward, cost, backward and update equations in the order
bpnet executes them (:func:`bpnet.core._forward`, :func:`bpnet.core._backward`,
:func:`bpnet.core._update`), each with the concrete shape of every operand and
of the result, its FLOPs, and the memory each layer's cache keeps alive.
:func:`render_plan` prints it.

The shapes of a plan are *claims*; :func:`trace_shapes` runs the real
``_forward``/``_backward``/``_update`` on random data on any backend and
records the shape of every array they produce (activation kernels and the loss
gradient are wrapped to observe ``Z``, ``A``, ``dA`` and ``dZ`` as they pass),
and :func:`check_plan` compares the two and gradient-checks ``dW[l]``,
``db[l]`` and ``dA[0]`` of every layer against central differences of the
cost.  ``bpnet explain --check`` prints both.

Conventions
-----------
* Names are the keys of bpnet's dicts: ``W1`` is W^[1], ``dZ3`` is dZ^[3],
  ``A0`` is the input X (examples are columns).
* FLOPs: a matmul ``(n, k) @ (k, m)`` counts ``2 n k m``; every elementwise
  operation counts 1 per element (``exp``, ``tanh``, ``log``, comparisons and
  ``max`` included, a select ``where`` free); a sum of k numbers counts k;
  scalar O(1) work is not counted.
* Memory in binary units (1 KiB = 1024 bytes).
"""

from __future__ import annotations

import math
import numbers
import textwrap
import time
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from .. import backends as _backends
from .._validate import integer, layer_dims as _check_layer_dims
from ..nn import FUSED_PAIRS, DEFAULT_OUTPUT, get_activation, get_loss, initialize_parameters_deep
from ..nn._kernels import backward as _backward, forward as _forward
from ..nn.activations import LEAKY_RELU_SLOPE


def check_positive_int(value, name):
    return integer(value, name, low=1)


def _update(parameters, grads, lr, L):
    return {k: parameters[k] - lr * grads["d" + k] for k in parameters}

__all__ = [
    "FLOP_CONVENTION",
    "Operand",
    "Step",
    "LayerCache",
    "Plan",
    "GradCheckRow",
    "CheckResult",
    "build_plan",
    "render_plan",
    "trace_shapes",
    "compare_shapes",
    "check_plan",
    "render_check",
    "human_bytes",
    "human_flops",
]

FLOP_CONVENTION = (
    "a matmul (n,k)@(k,m) counts 2nkm FLOPs; every elementwise operation counts 1 per element "
    "(exp, tanh, log, comparisons and max included); a sum of k numbers counts k"
)

_ITEMSIZE = {"float32": 4, "float64": 8}

#: the loss each output activation is paired with when no loss is given
_DEFAULT_LOSS = {out: loss for loss, out in DEFAULT_OUTPUT.items()}

#: losses whose dA[L] divides by A[L]: they need an output in (0, 1)
_PROBABILITY_OUTPUTS = ("sigmoid", "softmax")

#: relative-error threshold of the gradient check, and the base step eps, per dtype
_CHECK_TOL = {"float64": 1e-6, "float32": 5e-2}
_CHECK_EPS = {"float64": 1e-6, "float32": 1e-3}
#: activations with a kink, where a central difference straddling z = 0 measures neither slope
_KINKED = ("relu", "leaky_relu")
# a step in a parameter of layer l moves Z[l], ..., Z[L] only; when none of those layers has a
# kink, a 10x larger step is safe and divides the rounding error of J(+eps) - J(-eps) by 10
# (sigmoid layers shrink the gradients of the layers below them 4x each)
_SMOOTH_FACTOR = 10.0


class _ActInfo(NamedTuple):
    fwd_flops: int  # FLOPs per element of A = g(Z)
    bwd_flops: int  # FLOPs per element of dZ = dA * g'(Z)
    derivative: str  # g' in words
    dz: str  # right-hand side of dZ[l] = ..., formatted with l
    dz_uses: str  # which cached array the backward kernel reads besides dA: "Z", "A" or ""


_ACT = {
    # max(0, z) ; where(z > 0, dA, 0): one comparison, the select is free
    "relu": _ActInfo(1, 1, "relu'(z) = 1 if z > 0 else 0", "dA{l} * relu'(Z{l})", "Z"),
    # where(z > 0, z, 0.01 z): compare + multiply ; the same for dA
    "leaky_relu": _ActInfo(
        2, 2, f"leaky_relu'(z) = 1 if z > 0 else {LEAKY_RELU_SLOPE:g}", "dA{l} * leaky_relu'(Z{l})", "Z"
    ),
    # tanh(z) ; dA * (1 - A*A): multiply, subtract, multiply
    "tanh": _ActInfo(1, 3, "tanh'(z) = 1 - tanh(z)^2 = 1 - A^2", "dA{l} * (1 - A{l}^2)", "A"),
    # 1 / (1 + exp(-z)): exp, add, divide ; dA * A * (1 - A): subtract, multiply, multiply
    "sigmoid": _ActInfo(3, 3, "sigmoid'(z) = s(z) (1 - s(z)) = A (1 - A)", "dA{l} * A{l} (1 - A{l})", "A"),
    # identity: nothing to compute
    "linear": _ActInfo(0, 0, "linear'(z) = 1", "dA{l}", ""),
    # column max, subtract, exp, column sum, divide ; dA*A, column sum, subtract, multiply
    "softmax": _ActInfo(
        5,
        4,
        "softmax: dZ = A * (dA - sum_k(dA * A)) per column, the Jacobian-vector product of diag(a) - a a^T",
        "A{l} * (dA{l} - sum_k(dA{l} * A{l}))",
        "A",
    ),
}


class _LossInfo(NamedTuple):
    cost: str  # J = ..., formatted with L
    cost_flops: int  # FLOPs per element of A[L]
    grad: str  # dA[L] = ..., formatted with L
    grad_flops: int  # FLOPs per element of dA[L]


_LOSS = {
    # Y log A + (1-Y) log(1-A): log, multiply, 1-Y, 1-A, log, multiply, add ; + the sum
    "binary_crossentropy": _LossInfo(
        "J = -(1/m) sum(Y log A{L} + (1 - Y) log(1 - A{L}))", 8,
        "dA{L} = -(Y / A{L} - (1 - Y) / (1 - A{L}))", 6,
    ),
    # Y log A: log, multiply ; + the sum
    "categorical_crossentropy": _LossInfo("J = -(1/m) sum(Y log A{L})", 3, "dA{L} = -Y / A{L}", 2),
    # (A - Y)^2: subtract, square ; + the sum
    "mse": _LossInfo("J = (1/(2m)) sum((A{L} - Y)^2)", 3, "dA{L} = A{L} - Y", 1),
}


# --------------------------------------------------------------------------- #
# the plan


@dataclass(frozen=True)
class Operand:
    """A named array in an equation; ``transposed`` renders it as ``name^T``.

    ``shape`` is always the shape of the array itself (``A0``: ``(n_x, m)``),
    the transpose only changes how it is printed (``A0^T (m, n_x)``).
    """

    name: str
    shape: tuple
    transposed: bool = False

    def label(self) -> str:
        if self.transposed:
            return f"{self.name}^T {tuple(reversed(self.shape))}"
        return f"{self.name} {self.shape}"


@dataclass(frozen=True)
class Step:
    """One equation of a training step.

    Attributes
    ----------
    phase : {"forward", "cost", "backward", "update"}
    layer : int
        l in 1..L (the cost belongs to layer L).
    equation : str
        e.g. ``"dW1 = (1/m) dZ1 A0^T"``.
    result : Operand
        The array the equation produces, with its shape.
    operands : tuple of Operand
        The arrays it reads, with their shapes.
    expr : str
        How the operands combine, ``{0}``, ``{1}``, ... standing for their
        labels (``"{0} @ {1} + {2}"``); ``""`` for elementwise equations.
    flops : int
        Under :data:`FLOP_CONVENTION`.
    implemented_by : str
        Dotted name of the function that computes it.
    in_training : bool
        False for work :func:`bpnet.L_layer_model` does not do every
        iteration: the cost (only on logging iterations) and ``dA0``.
    note : str
    """

    phase: str
    layer: int
    equation: str
    result: Operand
    operands: tuple
    expr: str
    flops: int
    implemented_by: str
    in_training: bool = True
    note: str = ""

    def shapes_text(self) -> str:
        """``"W1 (20, 12288) @ A0 (12288, 209) + b1 (20, 1) -> (20, 209)"``."""
        labels = [op.label() for op in self.operands]
        if self.expr:
            lhs = self.expr.format(*labels)
        elif self.phase == "cost":
            lhs = ", ".join(labels) + " summed over all entries"
        else:
            lhs = ", ".join(labels) + " elementwise"
        return f"{lhs} -> {self.result.shape}"


@dataclass(frozen=True)
class LayerCache:
    """The cache ``((A_prev, W, b), Z)`` that layer l keeps for the backward pass.

    ``kept_bytes`` counts the arrays only the cache keeps alive, ``A[l-1]``
    (``(n_{l-1}, m)``; for l = 1 the input X itself) and ``Z[l]``
    (``(n_l, m)``); ``W[l]`` and ``b[l]`` are references to the parameters.
    """

    layer: int
    A_prev: Operand
    W: Operand
    b: Operand
    Z: Operand
    A_prev_bytes: int
    Z_bytes: int

    @property
    def kept_bytes(self) -> int:
        return self.A_prev_bytes + self.Z_bytes


@dataclass(frozen=True)
class Plan:
    """Everything one training step of an architecture does, with shapes.

    Attributes
    ----------
    layer_dims : tuple of int
        ``(n_x, n_1, ..., n_L)``.
    batch : int
        m, the number of examples (columns).
    hidden, output, loss : str
        Names in :data:`bpnet.ACTIVATIONS` / :data:`bpnet.LOSSES`.
    fused : bool
        True when the backward pass starts from ``dZ[L] = A[L] - Y`` (the
        output/loss pair is in :data:`bpnet.FUSED_PAIRS`, as in training).
    dtype : {"float32", "float64"}
    steps : tuple of Step
        In execution order: forward layer 1..L, cost, backward layer L..1, update.
    caches : tuple of LayerCache
        One per layer.
    """

    layer_dims: tuple
    batch: int
    hidden: str
    output: str
    loss: str
    fused: bool
    dtype: str
    steps: tuple
    caches: tuple = field(repr=False)

    @property
    def L(self) -> int:
        return len(self.layer_dims) - 1

    @property
    def itemsize(self) -> int:
        return _ITEMSIZE[self.dtype]

    @property
    def n_params(self) -> int:
        """sum_l n_l n_{l-1} + n_l."""
        d = self.layer_dims
        return sum(d[l] * d[l - 1] + d[l] for l in range(1, len(d)))

    def flops(self, phase: str | None = None, *, training_only: bool = True) -> int:
        """Total FLOPs of one phase (or of all), by default only what training does."""
        return sum(
            s.flops for s in self.steps
            if (phase is None or s.phase == phase) and (s.in_training or not training_only)
        )

    @property
    def step_flops(self) -> int:
        """FLOPs of one training step: forward + backward (without dA0) + update."""
        return self.flops()

    @property
    def cache_bytes(self) -> int:
        return sum(c.kept_bytes for c in self.caches)

    def shapes(self) -> dict:
        """``{name: shape}`` of every operand and result, e.g. ``{"W1": (20, 12288), ...}``."""
        out = {}
        for s in self.steps:
            for op in (*s.operands, s.result):
                out.setdefault(op.name, tuple(op.shape))
        return out

    def step(self, result: str, phase: str | None = None) -> Step:
        """The (first) step producing ``result``, e.g. ``plan.step("dW1")``."""
        for s in self.steps:
            if s.result.name == result and (phase is None or s.phase == phase):
                return s
        raise KeyError(result)


def _qualname(fn) -> str:
    return f"{fn.__module__}.{fn.__qualname__}"


def _check_dtype(dtype) -> str:
    if not isinstance(dtype, str) or dtype not in _ITEMSIZE:
        raise ValueError(f"dtype: expected 'float32' or 'float64', got {dtype!r}")
    return dtype


def _resolve(output_activation, loss):
    """(output Activation, Loss) with the defaults of the CLI: sigmoid / binary cross-entropy."""
    if output_activation is None and loss is None:
        output_activation = "sigmoid"
    if output_activation is None:
        spec = get_loss(loss)
        output_activation = DEFAULT_OUTPUT[spec.name]
    out = get_activation(output_activation, "output_activation")
    if loss is None:
        if out.name not in _DEFAULT_LOSS:
            raise ValueError(
                f"loss: output_activation {out.name!r} has no default loss; pass one of "
                f"{', '.join(map(repr, _LOSS))}"
            )
        loss = _DEFAULT_LOSS[out.name]
    spec = get_loss(loss)
    return out, spec


def build_plan(layer_dims, batch=64, *, hidden_activation="relu", output_activation=None, loss=None,
               dtype="float64", fused=None) -> Plan:
    """The equations of one training step of ``layer_dims`` on ``batch`` examples, with shapes.

    Parameters
    ----------
    layer_dims : sequence of int
        ``[n_x, n_1, ..., n_L]``; ``W[l]`` has shape ``(n_l, n_{l-1})``.
    batch : int > 0
        m; ``X = A[0]`` has shape ``(n_x, m)``.
    hidden_activation : str
    output_activation : {"sigmoid", "softmax", "linear", ...}, optional
        Default: the natural output of ``loss`` (sigmoid when neither is given).
    loss : {"binary_crossentropy", "categorical_crossentropy", "mse"}, optional
        Default: the loss whose natural output is ``output_activation``
        (:data:`bpnet.losses.DEFAULT_OUTPUT` read backwards).
    dtype : {"float64", "float32"}
        For the memory figures (and the ``--check`` pass).
    fused : bool, optional
        Start the backward pass from ``dZ[L] = A[L] - Y``.  Default: when the
        output/loss pair allows it, as :func:`bpnet.L_layer_model` does.

    Returns
    -------
    Plan
    """
    dims = tuple(_check_layer_dims(layer_dims))
    m = check_positive_int(batch, "batch")
    hidden = get_activation(hidden_activation, "hidden_activation")
    out, spec = _resolve(output_activation, loss)
    dtype = _check_dtype(dtype)
    for g, argname in ((hidden, "hidden_activation"), (out, "output_activation")):
        if g.name not in _ACT:
            raise ValueError(f"{argname}: explain has no equations for activation {g.name!r}")
    if spec.name in ("binary_crossentropy", "categorical_crossentropy") and out.name not in _PROBABILITY_OUTPUTS:
        raise ValueError(
            f"loss: {spec.name} takes probabilities, so output_activation must be sigmoid or softmax, "
            f"got {out.name!r} (use loss 'mse' for a {out.name} output)"
        )
    if out.name == "softmax" and dims[-1] < 2:
        raise ValueError(
            f"output_activation: softmax over n_L = {dims[-1]} unit is the constant 1; "
            "use at least 2 output units (one per class) or a sigmoid output"
        )
    can_fuse = (out.name, spec.name) in FUSED_PAIRS
    if fused is None:
        fused = can_fuse
    elif fused and not can_fuse:
        pairs = ", ".join(f"{a}+{b}" for a, b in sorted(FUSED_PAIRS))
        raise ValueError(f"fused: dZ[L] = A[L] - Y holds only for {pairs}; got {out.name}+{spec.name}")
    fused = bool(fused)

    L = len(dims) - 1
    size = _ITEMSIZE[dtype]
    fwd_name, bwd_name, upd_name = _qualname(_forward), _qualname(_backward), _qualname(_update)

    def W(l, t=False):
        return Operand(f"W{l}", (dims[l], dims[l - 1]), t)

    def b(l):
        return Operand(f"b{l}", (dims[l], 1))

    def act(prefix, l, t=False):  # Z, A, dZ, dA of layer l: (n_l, m)
        return Operand(f"{prefix}{l}", (dims[l], m), t)

    Y = Operand("Y", (dims[L], m))
    steps, caches = [], []

    # forward: Z[l] = W[l] A[l-1] + b[l] ; A[l] = g(Z[l])
    for l in range(1, L + 1):
        g = hidden if l < L else out
        n, k = dims[l], dims[l - 1]
        steps.append(Step(
            "forward", l, f"Z{l} = W{l} A{l - 1} + b{l}", act("Z", l), (W(l), act("A", l - 1), b(l)),
            "{0} @ {1} + {2}", 2 * n * k * m + n * m, fwd_name,
            note=f"b{l} is broadcast over the {m} columns",
        ))
        steps.append(Step(
            "forward", l, f"A{l} = {g.name}(Z{l})", act("A", l), (act("Z", l),), "",
            _ACT[g.name].fwd_flops * n * m, _qualname(g.fwd),
        ))
        caches.append(LayerCache(l, act("A", l - 1), W(l), b(l), act("Z", l), k * m * size, n * m * size))

    info = _LOSS[spec.name]
    nL = dims[L]
    steps.append(Step(
        "cost", L, info.cost.format(L=L), Operand("J", ()), (act("A", L), Y), "",
        info.cost_flops * nL * m, _qualname(spec.cost), in_training=False,
        note="bpnet.L_layer_model evaluates it only on logging iterations, so it is not in the step total",
    ))

    # backward, layer L..1
    for l in range(L, 0, -1):
        n, k = dims[l], dims[l - 1]
        if l == L and fused:
            steps.append(Step(
                "backward", l, f"dZ{l} = A{l} - Y", act("dZ", l), (act("A", l), Y), "", n * m, bwd_name,
                note=f"fused: for {out.name} + {spec.name}, dA{l} * {out.name}'(Z{l}) simplifies to A{l} - Y;\n"
                f"the course first computes {info.grad.format(L=l)}",
            ))
        else:
            g = hidden if l < L else out
            gi = _ACT[g.name]
            if l == L:
                steps.append(Step(
                    "backward", l, info.grad.format(L=l), act("dA", l), (act("A", l), Y), "",
                    info.grad_flops * n * m, _qualname(spec.grad),
                    note="the course's start; A is clipped to [eps, 1 - eps] first"
                    if spec.name != "mse" else "the course's start",
                ))
            used = (act("dA", l),) + ((act(gi.dz_uses, l),) if gi.dz_uses else ())
            steps.append(Step(
                "backward", l, f"dZ{l} = " + gi.dz.format(l=l), act("dZ", l), used, "",
                gi.bwd_flops * n * m, _qualname(g.bwd), note=gi.derivative,
            ))
        # dW[l] = (1/m) dZ[l] A[l-1]^T : (n, m) @ (m, k) -> (n, k), then the 1/m scaling
        steps.append(Step(
            "backward", l, f"dW{l} = (1/m) dZ{l} A{l - 1}^T", Operand(f"dW{l}", (n, k)),
            (act("dZ", l), act("A", l - 1, True)), "(1/m) {0} @ {1}", 2 * n * m * k + n * k, bwd_name,
        ))
        # db[l] = (1/m) sum_i dZ[l][:, i] : m additions per row, then the 1/m scaling
        steps.append(Step(
            "backward", l, f"db{l} = (1/m) sum(dZ{l}, axis=1)", Operand(f"db{l}", (n, 1)),
            (act("dZ", l),), "(1/m) {0} summed over its columns", n * m + n, bwd_name,
        ))
        # dA[l-1] = W[l]^T dZ[l] : (k, n) @ (n, m) -> (k, m)
        steps.append(Step(
            "backward", l, f"dA{l - 1} = W{l}^T dZ{l}", act("dA", l - 1), (W(l, True), act("dZ", l)),
            "{0} @ {1}", 2 * k * n * m, bwd_name, in_training=l > 1,
            note="" if l > 1 else "the gradient w.r.t. the input X: L_model_backward returns it, "
            "training skips it",
        ))

    # update: theta = theta - alpha d theta (a multiply and a subtract per entry)
    for l in range(1, L + 1):
        for p, shape in (("W", (dims[l], dims[l - 1])), ("b", (dims[l], 1))):
            steps.append(Step(
                "update", l, f"{p}{l} = {p}{l} - alpha d{p}{l}", Operand(f"{p}{l}", shape),
                (Operand(f"{p}{l}", shape), Operand(f"d{p}{l}", shape)), "", 2 * shape[0] * shape[1], upd_name,
            ))

    return Plan(dims, m, hidden.name, out.name, spec.name, fused, dtype, tuple(steps), tuple(caches))


# --------------------------------------------------------------------------- #
# text


def human_bytes(n: int) -> str:
    """``1536 -> "1.5 KiB"`` (binary units)."""
    if n < 1024:
        return f"{n} B"
    x = float(n)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        x /= 1024.0
        if x < 1024.0 or unit == "TiB":
            return f"{x:.1f} {unit}"
    raise AssertionError("unreachable")  # pragma: no cover


def human_flops(n: int) -> str:
    """``2_500_000 -> "2.5 MFLOP"`` (decimal units)."""
    for div, unit in ((1e12, "TFLOP"), (1e9, "GFLOP"), (1e6, "MFLOP"), (1e3, "kFLOP")):
        if n >= div:
            return f"{n / div:.1f} {unit}"
    return f"{n} FLOP"


_PHASE_TITLE = {
    "forward": "forward, layer 1..L (bpnet.core._forward; g from bpnet.activations)",
    "cost": "cost (bpnet.losses)",
    "backward": "backward, layer L..1 (bpnet.core._backward; g' from bpnet.activations)",
    "update": "update, learning rate alpha (bpnet.core._update)",
}


def render_plan(plan: Plan, *, backend=None) -> str:
    """The plan as text: header, parameters, numbered equations with shapes and FLOPs, caches, totals."""
    dims, L, m = plan.layer_dims, plan.L, plan.batch
    out = []
    w = out.append
    w(f"bpnet explain: {'-'.join(map(str, dims))}, L = {L} layers, batch m = {m} (examples are columns)")
    start = "dZ{L} = A{L} - Y (fused)" if plan.fused else "dA{L} from the loss, then dZ{L} = dA{L} * g'(Z{L})"
    w(f"hidden {plan.hidden}, output {plan.output}, loss {plan.loss}; backward starts from "
      + start.format(L=L))
    where = f"; backend {backend}" if backend is not None else ""
    w(f"{plan.dtype} ({plan.itemsize} bytes per number){where}")
    w("names are bpnet's dict keys: W1 is W[1], dZ3 is dZ[3], A0 is the input X")
    w(textwrap.fill("FLOPs: " + FLOP_CONVENTION, width=100, subsequent_indent="       "))
    w("derivations of every equation below: docs/backprop.md")
    w("")

    w("parameters: W[l] (n_l, n_{l-1}), b[l] (n_l, 1)")
    rows = []
    for l in range(1, L + 1):
        n, k = dims[l], dims[l - 1]
        rows.append((f"W{l} {(n, k)}", f"b{l} {(n, 1)}", f"{n * k + n:,}"))
    c0 = max(len(r[0]) for r in rows)
    c1 = max(len(r[1]) for r in rows)
    c2 = max(max(len(r[2]) for r in rows), len(f"{plan.n_params:,}"))
    for a, bb, c in rows:
        w(f"  {a:<{c0}}  {bb:<{c1}}  {c:>{c2}}")
    pbytes = plan.n_params * plan.itemsize
    w(f"  {'total':<{c0 + c1 + 2}}  {plan.n_params:>{c2},} parameters = {human_bytes(pbytes)} "
      f"(the gradients dW, db as much again)")

    legend = {plan.hidden: _ACT[plan.hidden].derivative, plan.output: _ACT[plan.output].derivative}
    w("")
    w("derivatives used: " + "; ".join(legend.values()))

    flop_w = max(len(f"{s.flops:,}") for s in plan.steps)
    num = 0
    phase = None
    for s in plan.steps:
        if s.phase != phase:
            phase = s.phase
            w("")
            w(_PHASE_TITLE[phase])
        num += 1
        flops = f"{s.flops:,} FLOP"
        w(f"{num:>3}  {s.equation:<48} {flops:>{flop_w + 5}}")
        w(f"       {s.shapes_text()}")
        if s.note:
            w("       (" + s.note.replace("\n", "\n        ") + ")")
        if s.phase == "forward" and s.result.name == f"A{s.layer}":
            c = plan.caches[s.layer - 1]
            what = " = X" if c.layer == 1 else ""
            w(f"       cache {c.layer} = ((A{c.layer - 1}, W{c.layer}, b{c.layer}), Z{c.layer}) keeps "
              f"{human_bytes(c.kept_bytes)}: A{c.layer - 1}{what} {c.A_prev.shape} {human_bytes(c.A_prev_bytes)}"
              f" + Z{c.layer} {c.Z.shape} {human_bytes(c.Z_bytes)}")

    w("")
    w("per training step (as bpnet.L_layer_model runs it: no cost, no dA0):")
    fw, bw, up = plan.flops("forward"), plan.flops("backward"), plan.flops("update")
    tw = len(f"{plan.step_flops:,}")
    for name, v in (("forward", fw), ("backward", bw), ("update", up), ("total", plan.step_flops)):
        w(f"  {name:<9} {v:>{tw},} FLOP" + (f"  ({human_flops(v)})" if v >= 1000 else ""))
    ratio = bw / fw if fw else float("nan")
    w(f"  backward / forward = {ratio:.2f} (one matmul per layer forward; two backward, dW and dA_prev,")
    w("  except in layer 1, whose dA0 training skips)")
    x_bytes = plan.caches[0].A_prev_bytes
    w(f"memory: parameters {human_bytes(pbytes)}, gradients {human_bytes(pbytes)}, "
      f"caches {human_bytes(plan.cache_bytes)} (of which X {human_bytes(x_bytes)}, "
      f"the rest {human_bytes(plan.cache_bytes - x_bytes)});")
    w("        the W, b in the caches are references to the parameters, not copies")
    return "\n".join(out)


# --------------------------------------------------------------------------- #
# running the real pass


class _Recorder:
    """Wraps activation kernels and the loss gradient to record the shapes they see.

    The forward kernels are called in layer order 1..L by ``_forward``; the
    backward kernels are matched to their layer by the identity of the cached
    ``Z`` they are given.
    """

    def __init__(self):
        self.shapes = {}
        self.layer = 0
        self.caches = None
        self.L = None

    def activation(self, act):
        def fwd(xp, Z):
            self.layer += 1
            A = act.fwd(xp, Z)
            self.shapes[f"A{self.layer}"] = tuple(A.shape)
            return A

        def bwd(xp, dA, Z, A):
            l = next(i + 1 for i, c in enumerate(self.caches) if c[1] is Z)
            self.shapes[f"dA{l}"] = tuple(dA.shape)
            dZ = act.bwd(xp, dA, Z, A)
            self.shapes[f"dZ{l}"] = tuple(dZ.shape)
            return dZ

        return act._replace(fwd=fwd, bwd=bwd)

    def loss(self, spec):
        def grad(xp, AL, Y):
            dA = spec.grad(xp, AL, Y)
            self.shapes[f"dA{self.L}"] = tuple(dA.shape)
            return dA

        return spec._replace(grad=grad)


def _random_problem(plan: Plan, bk, m: int, seed: int):
    """Host-drawn X ~ N(0, 1) of shape (n_x, m), labels Y (n_L, m) for the loss, Xavier weights, small biases."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed: expected a non-negative integer, got {seed!r}")
    rng = np.random.default_rng(int(seed))
    n_x, n_L = plan.layer_dims[0], plan.layer_dims[-1]
    X = rng.standard_normal((n_x, m))
    if plan.loss == "binary_crossentropy":
        Y = rng.integers(0, 2, size=(n_L, m)).astype(np.float64)
    elif plan.loss == "categorical_crossentropy":
        Y = np.eye(n_L)[:, rng.integers(0, n_L, size=m)]  # one-hot columns
    else:
        Y = rng.standard_normal((n_L, m))
    params = initialize_parameters_deep(list(plan.layer_dims), init="xavier", seed=int(seed),
                                        dtype=plan.dtype, backend=bk)
    # b ~ N(0, 0.1^2) instead of 0: with b = 0 an example whose A[l-1] column is all zero has
    # Z[l] exactly 0, on relu's kink, where a central difference measures neither slope
    for l in range(1, plan.L + 1):
        params[f"b{l}"] = bk.asarray(0.1 * rng.standard_normal((plan.layer_dims[l], 1)), dtype=plan.dtype)
    return bk.asarray(X, dtype=plan.dtype), bk.asarray(Y, dtype=plan.dtype), params


class _Pass(NamedTuple):
    shapes: dict
    X: object
    Y: object
    parameters: dict
    AL: object
    grads: dict


def _run_pass(plan: Plan, bk, X, Y, parameters) -> _Pass:
    """The real forward, cost, backward and update on backend arrays, recording every shape."""
    xp = bk.xp
    L = plan.L
    rec = _Recorder()
    rec.L = L
    hidden = rec.activation(get_activation(plan.hidden))
    output = rec.activation(get_activation(plan.output))
    spec = get_loss(plan.loss)
    AL, caches = _forward(xp, X, parameters, L, hidden, output)
    rec.caches = caches
    shapes = rec.shapes
    for l, ((A_prev, W, b), Z) in enumerate(caches, start=1):
        shapes[f"A{l - 1}"] = tuple(A_prev.shape)
        shapes[f"W{l}"] = tuple(W.shape)
        shapes[f"b{l}"] = tuple(b.shape)
        shapes[f"Z{l}"] = tuple(Z.shape)
    shapes["Y"] = tuple(Y.shape)
    shapes["J"] = tuple(spec.cost(xp, AL, Y).shape)
    grads = _backward(xp, AL, Y, caches, hidden, output, rec.loss(spec), fused=plan.fused)
    if plan.fused:
        # _backward computes dZ[L] = AL - Y inline: the same expression, on the same arrays
        shapes[f"dZ{L}"] = tuple((AL - Y).shape)
    for key, g in grads.items():
        shapes[key] = tuple(g.shape)
    new = _update(parameters, grads, 0.01, L)
    for key, p in new.items():
        if tuple(p.shape) != tuple(parameters[key].shape):
            shapes[key] = tuple(p.shape)  # would show up as a mismatch with the plan
    return _Pass(shapes, X, Y, parameters, AL, grads)


def trace_shapes(plan: Plan, backend=None, *, batch=None, seed=0) -> dict:
    """Shapes of every array the real ``_forward``/``_backward``/``_update`` produce.

    Parameters
    ----------
    plan : Plan
        Only its architecture (dims, activations, loss, fused, dtype) is used.
    backend : str or Backend, optional
        :func:`bpnet.backends.get` resolves it.
    batch : int, optional
        m of the random data; default ``plan.batch``.
    seed : int

    Returns
    -------
    dict
        ``{name: shape}`` with the names of :meth:`Plan.shapes`.
    """
    bk = _backends.get(backend)
    m = plan.batch if batch is None else check_positive_int(batch, "batch")
    X, Y, params = _random_problem(plan, bk, m, seed)
    return _run_pass(plan, bk, X, Y, params).shapes


def compare_shapes(plan: Plan, traced: dict) -> list:
    """``[(name, planned, traced), ...]`` for every name whose shapes differ (or that the pass lacks)."""
    bad = []
    for name, shape in plan.shapes().items():
        got = traced.get(name)
        if got != tuple(shape):
            bad.append((name, tuple(shape), got))
    return bad


# --------------------------------------------------------------------------- #
# --check


@dataclass(frozen=True)
class GradCheckRow:
    """The relative error of one gradient against central differences on a subset of its entries."""

    layer: int
    name: str  # "dW1", "db1" or "dA0"
    equation: str
    shape: tuple
    entries: int  # how many entries were compared
    epsilon: float  # the step of the central difference
    rel_error: float


@dataclass(frozen=True)
class CheckResult:
    """What :func:`check_plan` found; ``ok`` is True when shapes agree and errors are below ``tolerance``."""

    backend: str
    dtype: str
    seed: int
    shape_batch: int
    shape_mismatches: tuple
    n_shapes: int
    check_batch: int
    batch: int
    entries: int
    tolerance: float
    rows: tuple
    fused_vs_course: float | None
    seconds: float

    @property
    def max_rel_error(self) -> float:
        return max((r.rel_error for r in self.rows), default=0.0)

    @property
    def ok(self) -> bool:
        return not self.shape_mismatches and self.max_rel_error < self.tolerance


def _rel_error(g: np.ndarray, ga: np.ndarray) -> float:
    # ||g - g_num|| / (||g|| + ||g_num||), 0 when both vanish
    den = np.linalg.norm(g) + np.linalg.norm(ga)
    return float(np.linalg.norm(g - ga) / den) if den > 0 else 0.0


def _pick(shape, k: int, rng) -> list:
    """k distinct (i, j) entries of a matrix of ``shape`` (all of them when it has <= k)."""
    n = shape[0] * shape[1]
    flat = range(n) if n <= k else np.sort(rng.choice(n, size=k, replace=False))
    return [divmod(int(f), shape[1]) for f in flat]


# one forward/backward on the full batch is cheap; above this much cache memory the
# shape trace runs on the (small) gradient-check batch instead
_SHAPE_TRACE_LIMIT = 256 * 1024**2


def check_plan(plan: Plan, *, backend=None, entries=20, seed=0, max_batch=16) -> CheckResult:
    """Verify a plan against the real pass and gradient-check every layer.

    1. Shapes: the real ``_forward``/``_backward``/``_update`` on random data
       with ``m = plan.batch`` (or ``m = min(plan.batch, max_batch)`` when the
       caches would exceed 256 MiB) must produce every shape of the plan.
    2. Gradients: on ``m = min(plan.batch, max_batch)`` random columns, for
       each layer, ``entries`` seeded random entries of ``dW[l]`` and
       ``db[l]`` (all when fewer) are compared with central differences
       ``(J(theta + eps) - J(theta - eps)) / (2 eps)``, and entries of ``dA0``
       with ``m`` times the central difference of J in X (``dA`` carries no 1/m).
       eps is 1e-6 in float64 (1e-3 in float32); 10 times that for the
       parameters of layer l when no layer l..L has a (leaky) relu kink;
       ``sqrt(n_x)`` times that for X (Xavier weights are ~ 1/sqrt(n_x)); and
       it shrinks 10-fold (twice at most) while ``theta +- eps`` leaves some
       z of a kinked layer on two sides of 0.  The data are random: X ~ N(0, 1),
       labels drawn for the loss, Xavier weights, biases ~ N(0, 0.1^2).
    3. For a fused output/loss pair, the fused start ``dZ[L] = A[L] - Y`` is
       compared with the course's ``dA[L] * g'(Z[L])``.

    Parameters
    ----------
    plan : Plan
    backend : str or Backend, optional
    entries : int > 0
        Entries per parameter to difference (each costs two forward passes).
    seed : int >= 0
        Seeds the data, the weights and the choice of entries.
    max_batch : int > 0
        Cap on the columns of the gradient-check batch.

    Returns
    -------
    CheckResult
    """
    t0 = time.perf_counter()
    bk = _backends.get(backend)
    xp = bk.xp
    k = check_positive_int(entries, "check_entries")
    mb = check_positive_int(max_batch, "max_batch")

    # 1. shapes of the real pass
    shape_m = plan.batch if plan.cache_bytes <= _SHAPE_TRACE_LIMIT else min(plan.batch, mb)
    shape_plan = plan if shape_m == plan.batch else _with_batch(plan, shape_m)
    X, Y, params = _random_problem(plan, bk, shape_m, seed)
    traced = _run_pass(shape_plan, bk, X, Y, params).shapes
    mismatches = compare_shapes(shape_plan, traced)
    n_shapes = len(shape_plan.shapes())

    # 2. gradient check on a small batch
    mc = min(plan.batch, mb)
    small = plan if mc == plan.batch else _with_batch(plan, mc)
    X, Y, params = _random_problem(plan, bk, mc, seed)
    ps = _run_pass(small, bk, X, Y, params)
    if mc != shape_m:
        mismatches += compare_shapes(small, ps.shapes)
    L = plan.L
    hidden, output, spec = get_activation(plan.hidden), get_activation(plan.output), get_loss(plan.loss)

    def eps_of(l):
        # the step for the parameters of layer l: larger when layers l..L have no kink
        kinked = plan.output in _KINKED or (l < L and plan.hidden in _KINKED)
        return _CHECK_EPS[plan.dtype] * (1.0 if kinked else _SMOOTH_FACTOR)

    # for dA0 the perturbed entry is an input x; with Xavier weights ~ 1/sqrt(n_x), a step
    # eps sqrt(n_x) in x moves Z[1] about as much as a step eps in a weight does, and keeps the
    # rounding error of the difference small next to dJ/dx ~ 1/sqrt(n_x)
    eps_x = eps_of(1) * math.sqrt(plan.layer_dims[0])

    # the layers whose activation has a kink at z = 0
    kinked_layers = [l for l in range(1, L + 1) if (plan.hidden if l < L else plan.output) in _KINKED]

    def J(parameters, X):
        # the cost, and which side of the kink every z of a kinked layer is on
        AL, caches = _forward(xp, X, parameters, L, hidden, output)
        sides = tuple(_backends.to_numpy(caches[l - 1][1] > 0).tobytes() for l in kinked_layers)
        return float(spec.cost(xp, AL, Y)), sides

    def shifted(theta, i, j, h):
        out = xp.asarray(theta, copy=True)
        out[i, j] = theta[i, j] + h
        return out

    def numeric(theta, pairs, cost, eps):
        # central difference of the cost in each chosen entry of theta; when theta +- eps puts
        # some z on two sides of a kink, the difference measures neither slope: shrink the step
        out = np.empty(len(pairs))
        for t, (i, j) in enumerate(pairs):
            h = eps
            for _ in range(3):
                (J_plus, s_plus), (J_minus, s_minus) = cost(shifted(theta, i, j, h)), cost(shifted(theta, i, j, -h))
                if s_plus == s_minus:
                    break
                h /= 10.0
            out[t] = (J_plus - J_minus) / (2 * h)
        return out

    rng = np.random.default_rng(seed)
    rows = []
    for l in range(L, 0, -1):
        for p in "Wb":
            key = f"{p}{l}"
            theta = params[key]
            pairs = _pick(tuple(theta.shape), k, rng)
            analytic = _backends.to_numpy(ps.grads["d" + key])
            g = np.array([analytic[i, j] for i, j in pairs], dtype=np.float64)
            ga = numeric(theta, pairs, lambda th, key=key: J({**params, key: th}, X), eps_of(l))
            rows.append(GradCheckRow(l, "d" + key, small.step("d" + key).equation, tuple(theta.shape),
                                     len(pairs), eps_of(l), _rel_error(g, ga)))
    # dA0 = W1^T dZ1 is the gradient of the per-example losses: m dJ/dX
    pairs = _pick(tuple(X.shape), k, rng)
    analytic = _backends.to_numpy(ps.grads["dA0"])
    g = np.array([analytic[i, j] for i, j in pairs], dtype=np.float64)
    ga = mc * numeric(X, pairs, lambda Xp: J(params, Xp), eps_x)
    rows.append(GradCheckRow(1, "dA0", small.step("dA0").equation, tuple(X.shape), len(pairs), eps_x,
                             _rel_error(g, ga)))

    # 3. fused start vs the course's start through the output derivative
    fused_diff = None
    if plan.fused:
        _, caches = _forward(xp, X, params, L, hidden, output)
        course = _backward(xp, ps.AL, Y, caches, hidden, output, spec, fused=False)
        fused_diff = 0.0
        for key, gf in ps.grads.items():
            a, c = _backends.to_numpy(gf), _backends.to_numpy(course[key])
            fused_diff = max(fused_diff, float(np.max(np.abs(a - c))) if a.size else 0.0)

    bk.synchronize()
    return CheckResult(
        backend=str(bk), dtype=plan.dtype, seed=int(seed), shape_batch=shape_m,
        shape_mismatches=tuple(mismatches), n_shapes=n_shapes, check_batch=mc, batch=plan.batch,
        entries=k, tolerance=_CHECK_TOL[plan.dtype], rows=tuple(rows),
        fused_vs_course=fused_diff, seconds=time.perf_counter() - t0,
    )


def _with_batch(plan: Plan, m: int) -> Plan:
    return build_plan(list(plan.layer_dims), m, hidden_activation=plan.hidden, output_activation=plan.output,
                      loss=plan.loss, dtype=plan.dtype, fused=plan.fused)


def render_check(result: CheckResult) -> str:
    """The check as text: shape agreement, then per layer the relative error beside its equation."""
    out = []
    w = out.append
    w("")
    w(f"check: the real forward/backward pass on {result.backend}, {result.dtype}, seed {result.seed}")
    n_bad = len(result.shape_mismatches)
    trace_m = f"m = {result.shape_batch}"
    if result.shape_batch != result.batch:
        trace_m += f" (the caches of m = {result.batch} exceed {human_bytes(_SHAPE_TRACE_LIMIT)})"
    if n_bad == 0:
        w(f"  shapes: all {result.n_shapes} shapes above agree with the arrays the pass produced on {trace_m}")
    else:
        w(f"  shapes: {n_bad} DISAGREE with the real pass on {trace_m}:")
        for name, planned, got in result.shape_mismatches:
            w(f"    {name}: explained {planned}, the pass produced {got}")
    cap = "" if result.check_batch == result.batch else f" (the batch of {result.batch} capped at {result.check_batch})"
    w(f"  gradient check on m = {result.check_batch} random columns{cap},")
    w(f"  {result.entries} seeded random entries per array (all when it has fewer), central differences")
    w(f"  (J(theta + eps) - J(theta - eps)) / (2 eps) with eps = {_CHECK_EPS[result.dtype]:g}, x10 where no layer "
      "from l up has a")
    w("  (leaky) relu kink, x sqrt(n_x) for X, /10 while a step straddles a kink; relative error")
    w("  ||g - g_num|| / (||g|| + ||g_num||), beside the equation it verifies:")
    eq_w = max(len(r.equation) for r in result.rows)
    for r in result.rows:
        total = r.shape[0] * r.shape[1]
        mark = "ok" if r.rel_error < result.tolerance else "FAIL"
        extra = "  (vs m dJ/dX: no 1/m)" if r.name == "dA0" else ""
        w(f"  layer {r.layer}  {r.equation:<{eq_w}}  {r.entries:>4} of {total:<9,} eps {r.epsilon:<7.1e} "
          f"rel. error {r.rel_error:.1e}  {mark}{extra}")
    if result.fused_vs_course is not None:
        w(f"  fused dZ[L] = A[L] - Y vs the course's dA[L] * g'(Z[L]): max |difference| of the gradients "
          f"{result.fused_vs_course:.1e}")
    if result.dtype == "float32":
        w("  (float32: the differences are limited by rounding, ~1e-3 is as good as it gets; "
          "--dtype float64 checks to ~1e-8)")
    verdict = "PASSED" if result.ok else "FAILED"
    w(f"  {verdict}: max relative error {result.max_rel_error:.1e} (threshold {result.tolerance:g} in "
      f"{result.dtype}); {result.seconds:.2f} s")
    return "\n".join(out)
