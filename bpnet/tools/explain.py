"""Explain one architecture: every equation of the training step ``MLP.fit`` runs, with its shapes.

:func:`build_plan` lists one step of :mod:`bpnet.train.step` (``forward_train``, then
``backward_update`` with plain gradient descent) in execution order, each equation with its
operands' shapes and its FLOPs; :func:`render_plan` prints it.  Activation and loss text,
derivatives and FLOPs come from the registry entries, the output/loss pair (defaults,
refusals) from :func:`bpnet.nn.resolve_head`.  The shapes are claims: :func:`trace_shapes`
runs the real step with recording stand-ins for the activations and the optimiser, and
:func:`check_plan` compares them and checks the step's gradients against central differences.

Names are bpnet's dict keys (``W1`` is W[1], ``A0`` is X); in the code ``i`` is the layer l.
"""

from __future__ import annotations

import dataclasses
import math
import textwrap
import time
from dataclasses import dataclass, field
from types import SimpleNamespace

import array_api_compat
import numpy as np

from .. import _validate as v
from .. import backends as _backends
from .._validate import human_bytes
from ..nn import Activation, get_activation, get_loss, initialize_parameters_deep, resolve_head
from ..nn._kernels import backward as course_backward
from ..nn._kernels import forward as course_forward
from ..optim import OPTIMIZERS, get_optimizer
from ..train.step import Net, TrainState, backward_update, batch_metrics, forward_train
from .gradcheck import central_differences, relative_difference

__all__ = ["FLOP_CONVENTION", "Operand", "Step", "LayerCache", "Plan", "GradCheckRow", "CheckResult", "build_plan",
           "render_plan", "trace_shapes", "compare_shapes", "check_plan", "render_check", "human_bytes",
           "human_flops"]

FLOP_CONVENTION = ("a matmul (n,k)@(k,m) counts 2nkm FLOPs; every elementwise operation counts 1 per element "
                   "(exp, tanh, log, comparisons and max included); a sum of k numbers counts k")

_ITEMSIZE = {"float32": 4, "float64": 8}
#: relative-error threshold of the gradient check, and the base step eps, per dtype
_CHECK_TOL = {"float64": 1e-6, "float32": 5e-2}
_CHECK_EPS = {"float64": 1e-6, "float32": 1e-3}
#: a step in a parameter of layer l moves Z[l..L] only; where none of those layers has a kink, a 10x
#: larger step is safe and divides the rounding error of J(+eps) - J(-eps) by 10
_SMOOTH_FACTOR = 10.0
#: above this much activation memory the shape trace runs on the (small) gradient-check batch
_SHAPE_TRACE_LIMIT = 256 * 1024**2
_FOLD = (";\nthen scaled once by 1/m (alpha/m for plain gradient descent): dW, db and every dZ below\n"
         "are linear in dZ{L}, so they carry the 1/m that the equations show")


def _qualname(fn) -> str:
    return f"{fn.__module__}.{fn.__qualname__}"


def _derivative_name(g: Activation) -> str:
    return _qualname(g.vjp or g.derivative or Activation.backward)


def _kinked(g: Activation) -> bool:
    """g' jumps at z = 0 (relu, leaky_relu): read from the entry's own forward and derivative."""
    if g.vjp is not None or g.derivative is None:  # softmax, the identity
        return False
    Z = np.array([[-1e-9, 1e-9]])
    xp = array_api_compat.array_namespace(Z)
    d = np.asarray(g.derivative(xp, g.forward(xp, Z)))
    return abs(float(d[0, 1] - d[0, 0])) > 1e-3


@dataclass(frozen=True)
class Operand:
    """A named array; ``shape`` is the array's own, ``transposed`` prints it as ``name^T (m, n)``."""

    name: str
    shape: tuple
    transposed: bool = False

    def label(self) -> str:
        return f"{self.name}^T {tuple(reversed(self.shape))}" if self.transposed else f"{self.name} {self.shape}"


@dataclass(frozen=True)
class Step:
    """One equation of the step.

    ``expr`` combines the operand labels (``"{0} @ {1}"``; ``""``: elementwise); ``layer`` is
    the l whose loop iteration computes it; ``in_training`` is False for the cost (see its note).
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
        else:
            lhs = ", ".join(labels) + (" summed over all entries" if self.phase == "cost" else " elementwise")
        return f"{lhs} -> {self.result.shape}"


@dataclass(frozen=True)
class LayerCache:
    """``A[l]`` ``(n_l, m)``, which the step keeps from the forward to the backward pass (no ``Z`` is kept)."""

    layer: int
    A: Operand
    kept_bytes: int


@dataclass(frozen=True)
class Plan:
    """One training step of ``layer_dims`` on ``batch`` (m) examples; ``fused``: it starts from ``dZ[L] = A[L] - Y``."""

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
        return v.n_parameters(self.layer_dims)

    def flops(self, phase: str | None = None, *, training_only: bool = True) -> int:
        """Total FLOPs of one phase (or of all), by default only what every training step does."""
        return sum(s.flops for s in self.steps
                   if (phase is None or s.phase == phase) and (s.in_training or not training_only))

    @property
    def step_flops(self) -> int:
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
        return next(s for s in self.steps if s.result.name == result and phase in (None, s.phase))


def _operands(d, m):
    """The operand makers of a plan: ``W(i)``, ``b(i)``, ``a("dZ", i)`` (any ``(n_i, m)`` array), and ``Y``."""
    return (lambda i, t=False: Operand(f"W{i}", (d[i], d[i - 1]), t), lambda i: Operand(f"b{i}", (d[i], 1)),
            lambda p, i, t=False: Operand(f"{p}{i}", (d[i], m), t), Operand("Y", (d[-1], m)))


def build_plan(layer_dims, batch=64, *, hidden_activation="relu", output_activation=None, loss=None,
               dtype="float64") -> Plan:
    """The equations of one training step of ``layer_dims`` ``[n_x, ..., n_L]`` on ``batch`` examples.

    ``output_activation`` and ``loss`` default, and are refused, as
    :func:`bpnet.nn.resolve_head` decides (one output unit: sigmoid and binary
    cross-entropy; more: softmax and categorical cross-entropy).  ``dtype``
    ("float64" or "float32") sizes the memory figures and the ``--check`` pass.
    """
    dims = tuple(v.layer_dims(layer_dims))
    m = v.integer(batch, "batch", low=1)
    hidden = get_activation(hidden_activation, "hidden_activation", hidden=True)
    out, spec = resolve_head(dims[-1], output_activation, loss)
    dtype = v.choice(dtype, "dtype", tuple(_ITEMSIZE))
    net, L, (_, _, a, Y) = Net(hidden, out, spec), len(dims) - 1, _operands(dims, m)
    # the step reports the cost from the logits Z[L] for the loss's canonical output (exact where A[L] saturates)
    text, fn, Zop = ((spec.logit_text, spec.logit_cost, a("Z", L)) if net.fused
                     else (spec.cost_text, spec.cost, a("A", L)))
    cost = Step("cost", L, text.format(L=L), Operand("J", ()), (Zop, Y), "", spec.flops[0] * dims[L] * m, _qualname(fn),
                in_training=False, note=f"batch_metrics computes it on the epochs the loop reports, before the "
                f"backward pass overwrites A{L};\nnot in the step total")
    steps = (*_forward_steps(dims, m, net), cost, *_backward_steps(dims, m, net))
    caches = tuple(LayerCache(i, a("A", i), dims[i] * m * _ITEMSIZE[dtype]) for i in range(1, L + 1))
    return Plan(dims, m, hidden.name, out.name, spec.name, net.fused, dtype, steps, caches)


def _forward_steps(d, m, net: Net):
    (W, b, a, _), L, fwd = _operands(d, m), len(d) - 1, _qualname(forward_train)
    for i in range(1, L + 1):
        g, n, k = (net.hidden if i < L else net.output), d[i], d[i - 1]
        yield Step("forward", i, f"Z{i} = W{i} A{i - 1} + b{i}", a("Z", i), (W(i), a("A", i - 1), b(i)),
                   "{0} @ {1} + {2}", 2 * n * k * m + n * m, fwd,
                   note=f"Z{i} = W{i} @ A{i - 1}, then Z{i} += b{i} in place, broadcast over the {m} columns")
        inplace = i == L and g.forward_inplace is not None
        yield Step("forward", i, f"A{i} = {g.name}(Z{i})", a("A", i), (a("Z", i),), "{0} per column" if g.vjp else "",
                   g.flops[0] * n * m,
                   _qualname(g.forward_inplace if inplace else g.forward),
                   note=f"{g.name}(Z) = {g.formula}" + (f", computed over Z{i}" if inplace else ""))


def _backward_steps(d, m, net: Net) -> list:
    (W, _, a, Y), L = _operands(d, m), len(d) - 1
    bwd, upd = _qualname(backward_update), _qualname(OPTIMIZERS["gd"].update_)
    out, spec, h, nL = net.output, net.loss, net.hidden, d[-1]
    if net.fused:
        steps = [Step("backward", L, f"dZ{L} = A{L} - Y", a("dZ", L), (a("A", L), Y), "", 2 * nL * m, bwd,
                      note=f"for {out.name} + {spec.name}, {spec.grad_text.format(L=L)} times {out.name}'(Z{L})\n"
                      f"simplifies to A{L} - Y, computed over A{L}" + _FOLD.format(L=L))]
    else:
        steps = [Step("backward", L, spec.grad_text.format(L=L), a("dA", L), (a("A", L), Y), "",
                      spec.flops[1] * nL * m, _qualname(spec.grad), note="the per-example loss's gradient: no 1/m"),
                 Step("backward", L, f"dZ{L} = " + out.dz.format(dA=f"dA{L}", A=f"A{L}"), a("dZ", L),
                      (a("dA", L), a("A", L)), "{0}, {1} per column" if out.vjp else "", (out.flops[1] + 1) * nL * m,
                      _derivative_name(out),
                      note=out.derivative_text + ("" if out.vjp else f", computed over dA{L}") + _FOLD.format(L=L))]
    for i in range(L, 0, -1):
        n, k, top = d[i], d[i - 1], i == L
        steps += [Step("backward", i, f"dW{i} = (1/m) dZ{i} A{i - 1}^T", Operand(f"dW{i}", (n, k)),
                       (a("dZ", i), a("A", i - 1, True)), "(1/m) {0} @ {1}", 2 * n * m * k, bwd,
                       note=f"dZ{i} carries the 1/m: one GEMM" if top else ""),
                  Step("backward", i, f"db{i} = (1/m) sum(dZ{i}, axis=1)", Operand(f"db{i}", (n, 1)),
                       (a("dZ", i),), "(1/m) {0} summed over its columns", n * m, bwd,
                       note=f"a GEMV, dZ{i} @ ones (m, 1)" if top else "")]
        if i > 1:
            steps += [Step("backward", i, f"dA{i - 1} = W{i}^T dZ{i}", a("dA", i - 1), (W(i, True), a("dZ", i)),
                           "{0} @ {1}", 2 * k * n * m, bwd,
                           note=f"with W{i} before its update; layer 1 computes no dA0" if top else ""),
                      Step("backward", i, f"dZ{i - 1} = " + h.dz.format(dA=f"dA{i - 1}", A=f"A{i - 1}"),
                           a("dZ", i - 1), (a("dA", i - 1), a("A", i - 1)), "", h.flops[1] * k * m,
                           _derivative_name(h), note=f"{h.derivative_text}; computed over dA{i - 1}" if top else "")]
        for p, shape in (("W", (n, k)), ("b", (n, 1))):
            note = (f"in place{f', after dA{i - 1} used the old W{i}' if i > 1 else ''}; alpha is in dZ{L}'s "
                    "scaling, so one subtraction per entry") if top and p == "W" else ""
            steps.append(Step("update", i, f"{p}{i} -= alpha d{p}{i}", Operand(f"{p}{i}", shape),
                              (Operand(f"{p}{i}", shape), Operand(f"d{p}{i}", shape)), "", shape[0] * shape[1], upd,
                              note=note))
    return steps


def human_flops(n: int) -> str:
    """``2_500_000 -> "2.5 MFLOP"`` (decimal units)."""
    for div, unit in ((1e12, "TFLOP"), (1e9, "GFLOP"), (1e6, "MFLOP"), (1e3, "kFLOP")):
        if n >= div:
            return f"{n / div:.1f} {unit}"
    return f"{n} FLOP"


_SECTION = {
    "forward": "forward, layer 1..L (bpnet.train.step.forward_train; g from bpnet.nn.activations)",
    "cost": "cost (bpnet.nn.losses, via bpnet.train.step.batch_metrics)",
    "backward": "backward and in-place update, layer L..1 (bpnet.train.step.backward_update; g' from\n"
                "bpnet.nn.activations; the update is the gd rule of bpnet.optim.rules)",
}


def _header(plan: Plan, backend) -> list:
    dims, L = plan.layer_dims, plan.L
    start = f"dZ{L} = A{L} - Y (fused)" if plan.fused else f"dA{L} from the loss, then dZ{L} = dA{L} * g'(Z{L})"
    rows = [(f"W{i} {(dims[i], dims[i - 1])}", f"b{i} {(dims[i], 1)}", f"{dims[i] * (dims[i - 1] + 1):,}")
            for i in range(1, L + 1)]
    c0, c1 = max(len(r[0]) for r in rows), max(len(r[1]) for r in rows)
    c2 = max(max(len(r[2]) for r in rows), len(f"{plan.n_params:,}"))
    derivatives = {a: get_activation(a).derivative_text for a in (plan.hidden, plan.output)}
    return [
        f"bpnet explain: {'-'.join(map(str, dims))}, L = {L} layers, batch m = {plan.batch} (examples are columns)",
        f"hidden {plan.hidden}, output {plan.output}, loss {plan.loss}; backward starts from {start}",
        f"{plan.dtype} ({plan.itemsize} bytes per number)" + (f"; backend {backend}" if backend is not None else ""),
        "the training step of MLP.fit (bpnet.train.step) with plain gradient descent, learning rate alpha",
        "names are bpnet's dict keys: W1 is W[1], dZ3 is dZ[3], A0 is the input X",
        textwrap.fill("FLOPs: " + FLOP_CONVENTION, width=100, subsequent_indent="       "),
        "derivations of every equation below: docs/backprop.md", "",
        "parameters: W[l] (n_l, n_{l-1}), b[l] (n_l, 1)",
        *(f"  {a:<{c0}}  {b:<{c1}}  {c:>{c2}}" for a, b, c in rows),
        f"  {'total':<{c0 + c1 + 2}}  {plan.n_params:>{c2},} parameters = {human_bytes(plan.n_params * plan.itemsize)}",
        "", "derivatives used: " + "; ".join(derivatives.values()),
    ]


def render_plan(plan: Plan, *, backend=None) -> str:
    """The plan as text: header, parameters, numbered equations with shapes and FLOPs, kept arrays, totals."""
    out = _header(plan, backend)
    w = out.append
    flop_w = max(len(f"{s.flops:,}") for s in plan.steps)
    section = None
    for num, s in enumerate(plan.steps, start=1):
        if {"update": "backward"}.get(s.phase, s.phase) != section:
            section = s.phase
            w("\n" + _SECTION[section])
        w(f"{num:>3}  {s.equation:<48} {f'{s.flops:,} FLOP':>{flop_w + 5}}")
        w(f"       {s.shapes_text()}")
        if s.note:
            w("       (" + s.note.replace("\n", "\n        ") + ")")
        if s.phase == "forward" and s.result.name == f"A{s.layer}":
            c = plan.caches[s.layer - 1]
            why = f" (dW{c.layer + 1} and g'(A{c.layer}) read it)" if c.layer < plan.L else ", which starts from it"
            w(f"       keeps A{c.layer} {c.A.shape} {human_bytes(c.kept_bytes)} for the backward pass{why}; "
              f"Z{c.layer} is not kept")
    fw, bw, up = plan.flops("forward"), plan.flops("backward"), plan.flops("update")
    tw = len(f"{plan.step_flops:,}")
    w("\nper training step (as MLP.fit runs it: no cost, no dA0):")
    for name, n in (("forward", fw), ("backward", bw), ("update", up), ("total", plan.step_flops)):
        w(f"  {name:<9} {n:>{tw},} FLOP" + (f"  ({human_flops(n)})" if n >= 1000 else ""))
    w(f"  backward / forward = {bw / fw if fw else float('nan'):.2f} (one matmul per layer forward; two backward, "
      "dW and dA_prev,\n  except in layer 1, which computes no dA0)")
    x_bytes = plan.layer_dims[0] * plan.batch * plan.itemsize
    w(f"memory: parameters {human_bytes(plan.n_params * plan.itemsize)}, activations A1..A{plan.L} "
      f"{human_bytes(plan.cache_bytes)} (plus the input X, {human_bytes(x_bytes)}, read in place);\n"
      "        each layer is updated as soon as its dW, db exist, so gradients live about a layer at a time")
    return "\n".join(out)


class _Recorder:
    """Stand-ins for the step's activations and optimiser, recording the shape of every array they see."""

    def __init__(self, params):
        self.shapes, self.layer, self.acts = {}, 0, []
        self.keys = {id(a): k for k, a in params.items()}

    def activation(self, g: Activation):
        def seen(fn):
            def forward(xp, Z, *rest):
                self.layer += 1
                self.shapes[f"Z{self.layer}"] = tuple(Z.shape)  # before an in-place forward overwrites Z
                return fn(xp, Z, *rest)
            return forward

        def backward(xp, dA, A, *, inplace=False):
            i = next(i for i, a in enumerate(self.acts) if a is A)
            self.shapes[f"dA{i}"] = tuple(dA.shape)
            dZ = g.backward(xp, dA, A, inplace=inplace)
            self.shapes[f"dZ{i}"] = tuple(dZ.shape)
            return dZ

        return SimpleNamespace(name=g.name, forward=seen(g.forward), backward=backward,
                               backward_=lambda xp, dA, A: backward(xp, dA, A, inplace=True),
                               forward_inplace=g.forward_inplace and seen(g.forward_inplace))

    def optimizer(self):
        gd = OPTIMIZERS["gd"]

        def update_(xp, theta, g, moments, t, lr, hyper):
            self.shapes["d" + self.keys[id(theta)]] = tuple(g.shape)
            return gd.update_(xp, theta, g, moments, t, lr, hyper)

        return SimpleNamespace(rule=dataclasses.replace(gd, update_=update_), hyper={})


def _trace(plan: Plan, bk, X, Y, params) -> dict:
    """One real training step (forward_train, batch_metrics, backward_update) on copies of ``params``."""
    xp = bk.xp
    params = {k: xp.asarray(a, copy=True) for k, a in params.items()}
    rec = _Recorder(params)
    net = Net(rec.activation(get_activation(plan.hidden)), rec.activation(get_activation(plan.output)),
              get_loss(plan.loss))
    ts = TrainState(params, rec.optimizer(), {"t": 0})
    ts.block_bytes = ts.w_block_bytes = 1 << 62  # whole arrays: a block would be recorded as a slice
    batch = ts.batch(xp, X.shape[1])
    acts, _, ZL = forward_train(xp, X, ts.Ws, ts.bs, net, ones_row=batch[1], blocks=batch[2])
    rec.acts = acts
    shapes = rec.shapes
    shapes.update({f"A{i}": tuple(a.shape) for i, a in enumerate(acts)})
    shapes.update({k: tuple(a.shape) for k, a in params.items()})
    shapes["Y"] = tuple(Y.shape)
    shapes["J"] = tuple(batch_metrics(xp, acts[-1], Y, net, ZL)[0].shape)
    # a 0-d learning rate: the update goes through the rule's update_ (recorded) instead of the folded W -= dW
    backward_update(xp, acts, Y, ts, net, xp.asarray(0.01, dtype=X.dtype, device=bk.device), batch=batch)
    if plan.fused:
        shapes[f"dZ{plan.L}"] = tuple(acts[-1].shape)  # A[L] - Y is computed over A[L]
    return shapes


def _random_problem(plan: Plan, bk, m: int, seed: int):
    """Host-drawn X ~ N(0, 1) (n_x, m), labels Y (n_L, m) of the loss's target, Xavier W, b ~ N(0, 0.1^2)."""
    seed = v.seed(seed)
    rng = np.random.default_rng(seed)
    dims = plan.layer_dims
    X = rng.standard_normal((dims[0], m))
    target, n = get_loss(plan.loss).target, dims[-1]
    Y = (np.eye(n)[:, rng.integers(0, n, size=m)] if target == "onehot" else
         rng.integers(0, 2, size=(n, m)).astype(np.float64) if target == "binary" else rng.standard_normal((n, m)))
    params = initialize_parameters_deep(list(dims), init="xavier", seed=seed, dtype=plan.dtype, backend=bk)
    # b != 0: with b = 0 an example whose A[l-1] column is all zero has Z[l] exactly 0, on relu's kink
    for i in range(1, plan.L + 1):
        params[f"b{i}"] = bk.asarray(0.1 * rng.standard_normal((dims[i], 1)), dtype=plan.dtype)
    return bk.asarray(X, dtype=plan.dtype), bk.asarray(Y, dtype=plan.dtype), params


def trace_shapes(plan: Plan, backend=None, *, batch=None, seed=0) -> dict:
    """``{name: shape}`` of every array one real, unblocked training step makes on random data of m = ``batch``."""
    bk = _backends.get(backend)
    m = plan.batch if batch is None else v.integer(batch, "batch", low=1)
    return _trace(plan, bk, *_random_problem(plan, bk, m, seed))


def compare_shapes(plan: Plan, traced: dict) -> list:
    """``[(name, planned, traced), ...]`` for every name whose shapes differ (or that the step lacks)."""
    return [(name, shape, traced.get(name)) for name, shape in plan.shapes().items() if traced.get(name) != shape]


@dataclass(frozen=True)
class GradCheckRow:
    """The relative error of one gradient against central differences on ``entries`` of its entries."""

    layer: int
    name: str  # "dW1", "db1" or "dA0"
    equation: str
    shape: tuple
    entries: int
    epsilon: float
    rel_error: float


@dataclass(frozen=True)
class CheckResult:
    """What :func:`check_plan` found; ``step_vs_course``: max |step's - course's gradient| (``fused=False``)."""

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
    step_vs_course: float
    seconds: float

    @property
    def max_rel_error(self) -> float:
        return max((r.rel_error for r in self.rows), default=0.0)

    @property
    def ok(self) -> bool:
        return not self.shape_mismatches and self.max_rel_error < self.tolerance


def _pick(shape, k: int, rng) -> list:
    """k distinct (row, column) entries of a matrix of ``shape`` (all of them when it has <= k)."""
    n = shape[0] * shape[1]
    flat = range(n) if n <= k else np.sort(rng.choice(n, size=k, replace=False))
    return [divmod(int(f), shape[1]) for f in flat]


def _at(a, pairs) -> np.ndarray:
    h = _backends.to_numpy(a)
    return np.array([h[r, c] for r, c in pairs], dtype=np.float64)


def _gradient_rows(plan: Plan, bk, X, Y, params, k: int, seed: int):
    """The rows of the gradient check, and the step's largest |difference| from the course's gradients."""
    xp, L, m = bk.xp, plan.L, plan.batch
    hidden, output, spec = get_activation(plan.hidden), get_activation(plan.output), get_loss(plan.loss)
    net, ts = Net(hidden, output, spec), TrainState(params, get_optimizer("gd"), {"t": 0})
    batch = ts.batch(xp, m)
    acts, _, _ = forward_train(xp, X, ts.Ws, ts.bs, net, ones_row=batch[1], blocks=batch[2])
    grads = {f"d{p}{i + 1}": a  # the step's (1/m) dZ A^T etc., nothing updated
             for i, dW, db in backward_update(xp, acts, Y, ts, net, 0.0, batch=batch, collect=True)
             for p, a in (("W", dW), ("b", db))}
    AL, caches = course_forward(xp, X, params, L, hidden, output)
    course = course_backward(xp, AL, Y, caches, hidden, output, spec, fused=False)
    kinked = [i for i in range(1, L + 1) if _kinked(hidden if i < L else output)]

    def cost(parameters, X):  # J, and which side of 0 every z of a kinked layer is on
        AL, caches = course_forward(xp, X, parameters, L, hidden, output)
        return float(spec.cost(xp, AL, Y)), tuple(_backends.to_numpy(caches[i - 1][1] > 0).tobytes() for i in kinked)

    def numeric(i, theta, pairs, J, scale=1.0):  # eps: larger where no layer i..L has a kink
        eps = scale * _CHECK_EPS[plan.dtype] * (1.0 if any(q >= i for q in kinked) else _SMOOTH_FACTOR)
        return eps, central_differences(J, theta, pairs, eps, retries=2 if kinked else 0)

    rng = np.random.default_rng(seed)
    rows = []
    for i in range(L, 0, -1):
        for key in (f"W{i}", f"b{i}"):
            pairs = _pick(tuple(params[key].shape), k, rng)
            eps, approx = numeric(i, params[key], pairs, lambda th, key=key: cost({**params, key: th}, X))
            rows.append(GradCheckRow(i, "d" + key, plan.step("d" + key).equation, tuple(params[key].shape),
                                     len(pairs), eps, relative_difference(_at(grads["d" + key], pairs), approx)))
    # dA0 (the course's backward; training skips it) is m dJ/dX.  Xavier weights are ~1/sqrt(n_x): a step
    # eps sqrt(n_x) in x moves Z[1] as much as eps in a weight, and keeps rounding small next to dJ/dx
    pairs = _pick(tuple(X.shape), k, rng)
    eps, approx = numeric(1, X, pairs, lambda Xs: cost(params, Xs), math.sqrt(plan.layer_dims[0]))
    rows.append(GradCheckRow(1, "dA0", "dA0 = W1^T dZ1", tuple(X.shape), len(pairs), eps,
                             relative_difference(_at(course["dA0"], pairs), m * approx)))
    diff = max(float(np.max(np.abs(_backends.to_numpy(g) - _backends.to_numpy(course[key]))))
               for key, g in grads.items())
    return rows, diff


def check_plan(plan: Plan, *, backend=None, entries=20, seed=0, max_batch=16) -> CheckResult:
    """Verify a plan against the real training step and gradient-check every layer.

    1. One real step on random data of ``plan.batch`` columns (``min(plan.batch, max_batch)``
       when its activations exceed 256 MiB) must produce every shape of the plan.
    2. On ``mc = min(plan.batch, max_batch)`` columns, ``entries`` seeded random entries of each
       ``dW[l]``, ``db[l]`` of the step (``backward_update(collect=True)``) against central
       differences of J (the eps :func:`render_check` states), and the course's ``dA0`` against
       ``mc`` times those in X.  Data: X ~ N(0, 1), labels for the loss, Xavier W, b ~ N(0, 0.1^2).
    3. The step's gradients against the course's (``fused=False``).
    """
    t0 = time.perf_counter()
    bk = _backends.get(backend)
    k = v.integer(entries, "check_entries", low=1)
    mb = v.integer(max_batch, "max_batch", low=1)
    seed = v.seed(seed)
    shape_m = plan.batch if plan.cache_bytes <= _SHAPE_TRACE_LIMIT else min(plan.batch, mb)

    def rebuilt(m):
        return plan if m == plan.batch else build_plan(list(plan.layer_dims), m, hidden_activation=plan.hidden,
                                                        output_activation=plan.output, loss=plan.loss, dtype=plan.dtype)

    shape_plan = rebuilt(shape_m)
    mismatches = compare_shapes(shape_plan, _trace(shape_plan, bk, *_random_problem(plan, bk, shape_m, seed)))
    mc = min(plan.batch, mb)
    small = rebuilt(mc)
    X, Y, params = _random_problem(plan, bk, mc, seed)
    if mc != shape_m:
        mismatches += compare_shapes(small, _trace(small, bk, X, Y, params))
    rows, diff = _gradient_rows(small, bk, X, Y, params, k, seed)
    bk.synchronize()
    return CheckResult(backend=str(bk), dtype=plan.dtype, seed=seed, shape_batch=shape_m,
                       shape_mismatches=tuple(mismatches), n_shapes=len(shape_plan.shapes()), check_batch=mc,
                       batch=plan.batch, entries=k, tolerance=_CHECK_TOL[plan.dtype], rows=tuple(rows),
                       step_vs_course=diff, seconds=time.perf_counter() - t0)


def render_check(result: CheckResult) -> str:
    """The check as text: shape agreement, then per layer the relative error beside its equation."""
    out = ["", f"check: the real training step on {result.backend}, {result.dtype}, seed {result.seed}"]
    w = out.append
    trace_m = f"m = {result.shape_batch}"
    if result.shape_batch != result.batch:
        trace_m += f" (the activations of m = {result.batch} exceed {human_bytes(_SHAPE_TRACE_LIMIT)})"
    if not result.shape_mismatches:
        w(f"  shapes: all {result.n_shapes} shapes above agree with the arrays the step produced on {trace_m}")
    else:
        w(f"  shapes: {len(result.shape_mismatches)} DISAGREE with the real step on {trace_m}:")
        out += [f"    {name}: explained {planned}, the step produced {got}"
                for name, planned, got in result.shape_mismatches]
    cap = "" if result.check_batch == result.batch else f" (the batch of {result.batch} capped at {result.check_batch})"
    w(f"  gradient check of the step's gradients on m = {result.check_batch} random columns{cap},\n"
      f"  {result.entries} seeded random entries per array (all when it has fewer), central differences\n"
      f"  (J(theta + eps) - J(theta - eps)) / (2 eps) with eps = {_CHECK_EPS[result.dtype]:g}, x10 where no layer "
      "from l up has a\n  kink, x sqrt(n_x) for X, /10 while a step straddles a kink; relative error\n"
      "  ||g - g_num|| / (||g|| + ||g_num||), beside the equation it verifies:")
    eq_w = max(len(r.equation) for r in result.rows)
    for r in result.rows:
        extra = "  (the course's backward, not in training; vs m dJ/dX)" if r.name == "dA0" else ""
        w(f"  layer {r.layer}  {r.equation:<{eq_w}}  {r.entries:>4} of {r.shape[0] * r.shape[1]:<9,} "
          f"eps {r.epsilon:<7.1e} rel. error {r.rel_error:.1e}  {'ok' if r.rel_error < result.tolerance else 'FAIL'}"
          + extra)
    w("  the step's gradients vs the course's (bpnet.nn._kernels.backward: dA[L] from the loss, then g'):\n"
      f"  max |difference| {result.step_vs_course:.1e}")
    if result.dtype == "float32":
        w("  (float32: the differences are limited by rounding, ~1e-3 is as good as it gets; "
          "--dtype float64 checks to ~1e-8)")
    w(f"  {'PASSED' if result.ok else 'FAILED'}: max relative error {result.max_rel_error:.1e} (threshold "
      f"{result.tolerance:g} in {result.dtype}); {result.seconds:.2f} s")
    return "\n".join(out)
