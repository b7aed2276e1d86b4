"""Each optimiser defined once: defaults, state slots, and its update in two forms side by side.

A :class:`Rule` is the per-array update of one optimiser.  ``update`` is
pure, in the course's expressions (the course functions and
:meth:`Optimizer.step` use it); ``update_`` does the same in place (the
training step of :mod:`bpnet.train.step` uses it); ``tests/train/test_step.py``
checks that the two agree to rounding.  For each parameter theta with
gradient g (``v``/``s`` shaped like theta)::

    gd        theta <- theta - lr g
    momentum  v <- beta v + (1 - beta) g;                   theta <- theta - lr v
    rmsprop   s <- beta2 s + (1 - beta2) g^2;               theta <- theta - lr g / (sqrt(s) + epsilon)
    adam      v <- beta1 v + (1 - beta1) g;  s <- beta2 s + (1 - beta2) g^2   (step t >= 1)
              theta <- theta - lr v_hat / (sqrt(s_hat) + epsilon),  v_hat = v / (1 - beta1^t), s_hat = s / (1 - beta2^t)
    sgd       v <- momentum v - lr g;  theta <- theta + v        (scikit-learn's SGD; v carries the learning rate)
              nesterov: theta <- theta + momentum v - lr g

Adding an optimiser is one :class:`Rule` in :data:`OPTIMIZERS` plus its tests.
Also here, once each: the global-norm clipping scale, the learning-rate
schedules (:data:`SCHEDULES`: constant, the course's staircase, scikit-learn's
invscaling; adaptive is constant between the plateaus the epoch loop detects)
and the L2 penalty.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import array_api_compat

from .. import _validate as v

__all__ = ["Rule", "OPTIMIZERS", "Optimizer", "get_optimizer", "CLIP_EPS", "clip_scale", "staircase", "invscaling",
           "SCHEDULES", "scheduled_lr",
           "ADAPTIVE_DIVISOR", "ADAPTIVE_MIN_LR", "l2_penalty", "zeros_like_parameters"]

#: added to the global norm before dividing, so a zero gradient gives scale 1
CLIP_EPS = 1e-6


@dataclass(frozen=True)
class Rule:
    """One optimiser's per-array update.

    Attributes
    ----------
    name : str
    defaults : dict
        Its hyper-parameters and their defaults (the learning rate is given to each step).
    slots : tuple of str
        The moment arrays it keeps per parameter (``"v"``, ``"s"``).
    update : callable
        ``update(xp, theta, g, moments, t, lr, h) -> (theta, moments)``, pure;
        ``moments`` maps each slot to its array, ``t >= 1`` is this step's number.
    update_ : callable
        ``update_(xp, theta, g, moments, t, lr, h) -> theta``: the same in place
        (may overwrite g), returning theta.  Every write is an augmented
        assignment to a name or to a ``moments`` item (``mo["v"] *= beta``), so
        for immutable arrays (JAX) it rebinds them instead: the caller keeps the
        returned theta and the dict's items.  ``lr=None`` means g already
        carries the learning rate (only where ``folds_lr``).
    default_lr : float
        The learning rate :class:`bpnet.MLP` uses when none is given.
    folds_lr : bool
        The update is linear in ``lr * g``, so the step may fold lr into ``dZ[L]``.
    """

    name: str
    defaults: dict
    slots: tuple
    update: Callable
    update_: Callable
    default_lr: float
    folds_lr: bool = False


def _gd(xp, theta, g, mo, t, lr, h):
    return theta - lr * g, {}


def _gd_(xp, theta, g, mo, t, lr, h):
    if lr is not None:
        g *= lr
    theta -= g
    return theta


def _momentum(xp, theta, g, mo, t, lr, h):
    vk = h["beta"] * mo["v"] + (1 - h["beta"]) * g  # v = beta v + (1 - beta) g
    return theta - lr * vk, {"v": vk}


def _momentum_(xp, theta, g, mo, t, lr, h):
    mo["v"] *= h["beta"]
    g *= 1 - h["beta"]
    mo["v"] += g
    theta -= lr * mo["v"]
    return theta


def _rmsprop(xp, theta, g, mo, t, lr, h):
    sk = h["beta2"] * mo["s"] + (1 - h["beta2"]) * (g * g)  # s = beta2 s + (1 - beta2) g^2
    return theta - lr * g / (xp.sqrt(sk) + h["epsilon"]), {"s": sk}


def _rmsprop_(xp, theta, g, mo, t, lr, h):
    mo["s"] *= h["beta2"]
    mo["s"] += (1 - h["beta2"]) * (g * g)
    D = xp.sqrt(mo["s"])
    D += h["epsilon"]
    g *= lr
    g /= D
    theta -= g
    return theta


def _adam(xp, theta, g, mo, t, lr, h):
    # the course's expressions, in the course's order (t a Python int: beta^t stays a Python float)
    b1, b2 = h["beta1"], h["beta2"]
    vk = b1 * mo["v"] + (1 - b1) * g
    vc = vk / (1 - b1**t)  # v_hat = v / (1 - beta1^t)
    sk = b2 * mo["s"] + (1 - b2) * (g * g)
    sc = sk / (1 - b2**t)  # s_hat = s / (1 - beta2^t)
    return theta - lr * vc / (xp.sqrt(sc) + h["epsilon"]), {"v": vk, "s": sk, "v_corrected": vc, "s_corrected": sc}


def _adam_(xp, theta, g, mo, t, lr, h):
    b1, b2 = h["beta1"], h["beta2"]
    mo["v"] *= b1
    mo["v"] += (1 - b1) * g
    g *= g
    g *= 1 - b2
    mo["s"] *= b2
    mo["s"] += g
    D = xp.sqrt(mo["s"] / (1 - b2**t))  # sqrt(s_hat)
    D += h["epsilon"]
    U = mo["v"] * (lr / (1 - b1**t))  # lr v_hat
    U /= D
    theta -= U
    return theta


def _sgd(xp, theta, g, mo, t, lr, h):
    mu = h["momentum"]
    vk = mu * mo["v"] - lr * g  # v = momentum v - lr g
    if h["nesterov"]:
        return theta + (mu * vk - lr * g), {"v": vk}  # theta += momentum v - lr g
    return theta + vk, {"v": vk}


def _sgd_(xp, theta, g, mo, t, lr, h):
    mu = h["momentum"]
    mo["v"] *= mu
    g *= lr  # lr g
    mo["v"] -= g
    if h["nesterov"]:
        theta += mu * mo["v"]
        theta -= g
    else:
        theta += mo["v"]
    return theta


#: the optimisers, by name (RMSprop's decay is called ``beta2``, Adam's second moment, which it is)
OPTIMIZERS: dict[str, Rule] = {r.name: r for r in (
    Rule("gd", {}, (), _gd, _gd_, 0.01, folds_lr=True),
    Rule("momentum", {"beta": 0.9}, ("v",), _momentum, _momentum_, 0.01),
    Rule("rmsprop", {"beta2": 0.9, "epsilon": 1e-8}, ("s",), _rmsprop, _rmsprop_, 0.001),
    Rule("adam", {"beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8}, ("v", "s"), _adam, _adam_, 0.001),
    Rule("sgd", {"momentum": 0.9, "nesterov": True}, ("v",), _sgd, _sgd_, 0.01),
)}


def check_hyper(value, key: str):
    """One hyper-parameter: epsilon > 0, nesterov a bool, momentum in [0, 1], a decay (beta, beta1, beta2) in [0, 1)."""
    if key == "epsilon":
        return v.real(value, key, low=0.0, low_open=True)
    if key == "nesterov":
        return v.flag(value, key)
    if key == "momentum":
        return v.real(value, key, low=0.0, high=1.0)
    return v.real(value, key, low=0.0, high=1.0, high_open=True)


# --------------------------------------------------------------------------- #
# the optimiser object: a rule with its hyper-parameters, over dicts of parameters


def zeros_like_parameters(parameters, L: int) -> dict:
    """``{"dW1": 0, "db1": 0, ...}`` of each parameter's shape, dtype and device."""
    xp = array_api_compat.array_namespace(parameters["W1"])
    return {f"d{k}": xp.zeros(tuple(parameters[k].shape), dtype=parameters[k].dtype,
                              device=array_api_compat.device(parameters[k])) for k in v.param_keys(L)}


def apply(rule, parameters, grads, moments, t, lr, hyper, L):
    """The pure update of every parameter: ``(new parameters, new moments, extras)`` (inputs untouched).

    ``moments`` maps each slot to its dict ``{"dW1": ..., ...}``; ``extras``
    holds what an update reports besides its slots (Adam's ``v_corrected``, ``s_corrected``).
    """
    xp = array_api_compat.array_namespace(parameters["W1"])
    new, new_mo, extras = dict(parameters), {s: dict(moments[s]) for s in rule.slots}, {}
    for key in v.param_keys(L):
        d = "d" + key
        new[key], out = rule.update(xp, parameters[key], grads[d], {s: moments[s][d] for s in rule.slots}, t, lr,
                                    hyper)
        for name, arr in out.items():
            (new_mo[name] if name in rule.slots else extras.setdefault(name, {}))[d] = arr
    return new, new_mo, extras


@dataclass(frozen=True)
class Optimizer:
    """A parameter-update rule with its hyper-parameters (build it with :func:`get_optimizer`).

    State: :meth:`init` returns, and :meth:`step` takes and returns,
    ``{"t": steps taken, "v": {"dW1": ..., ...}, "s": {...}}`` with only the
    slots the optimiser keeps.
    """

    name: str
    hyper: dict = field(default_factory=dict)

    def __post_init__(self):
        if not isinstance(self.name, str):
            raise TypeError(f"name: expected an optimizer name (str), got {type(self.name).__name__} {self.name!r}")
        name = self.name.strip().lower()
        v.choice(name, "name", OPTIMIZERS, what="optimizer")
        if not isinstance(self.hyper, dict):
            raise TypeError(f"hyper: expected a dict of hyper-parameters, got {type(self.hyper).__name__}")
        defaults = OPTIMIZERS[name].defaults
        for key in self.hyper:
            if key not in defaults:
                raise ValueError(f"{key}: not a hyper-parameter of optimizer {name!r} (it takes: "
                                 f"{', '.join(defaults) or 'none'}; the learning rate is given to step)")
        full = {k: check_hyper(self.hyper.get(k, d), k) for k, d in defaults.items()}
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "hyper", full)

    @property
    def rule(self) -> Rule:
        return OPTIMIZERS[self.name]

    def init(self, parameters) -> dict:
        """The initial state for ``parameters`` (``W1, b1, ..., WL, bL``): t = 0, zero moments."""
        L = v.check_parameters(parameters, chain=False)  # each moment matches its own parameter: no more
        return {"t": 0, **{s: zeros_like_parameters(parameters, L) for s in self.rule.slots}}

    def step(self, parameters, grads, state, learning_rate) -> tuple[dict, dict]:
        """One update: ``(new parameters, new state)``, inputs untouched; ``t`` is incremented first.

        The numbers are those of the course's functions called with ``t = t + 1``.
        ``learning_rate``: a float > 0, or a 0-d array of the parameters' device (unchecked).
        """
        lr = v.real(learning_rate, "learning_rate", low=0.0, low_open=True) \
            if not v.is_array(learning_rate) else learning_rate
        L = self._check_keys(parameters, grads, state)
        t = int(state["t"]) + 1
        new, moments, _ = apply(self.rule, parameters, grads, state, t, lr, self.hyper, L)
        return new, {"t": t, **moments}

    def _check_keys(self, parameters, grads, state) -> int:
        """L, after checking that every key :meth:`step` reads exists (no array checks: it runs every batch)."""
        if not isinstance(parameters, dict):
            raise TypeError(f"parameters: expected a dict with keys W1, b1, ..., WL, bL, "
                            f"got {type(parameters).__name__}")
        L = v.n_layers(parameters)
        if L == 0:
            raise ValueError(f"parameters: expected keys W1, b1, ..., WL, bL, got keys {sorted(map(str, parameters))}")
        if not isinstance(grads, dict):
            raise TypeError(f"grads: expected a dict with keys dW1, db1, ..., got {type(grads).__name__}")
        if not isinstance(state, dict):
            raise TypeError(f"state: expected the dict from Optimizer.init(parameters), got {type(state).__name__}")
        wanted = ["t", *self.rule.slots]
        hint = "create the state with Optimizer.init(parameters)"
        for entry in wanted:
            if entry not in state:
                raise ValueError(f"state: missing entry {entry!r} (the {self.name!r} optimizer keeps "
                                 f"{', '.join(map(repr, wanted))}; {hint})")
        keys = v.param_keys(L)
        for where, d, prefix, note in [("parameters", parameters, "", f"found W1..W{L}"),
                                       ("grads", grads, "d", f"parameters has L = {L} layers"),
                                       *[(f"state[{s!r}]", state[s], "d", f"parameters has L = {L} layers; {hint}")
                                         for s in self.rule.slots]]:
            if not isinstance(d, dict):
                raise TypeError(f"{where}: expected a dict with keys dW1, db1, ..., got {type(d).__name__}")
            missing = next((prefix + k for k in keys if prefix + k not in d), None)
            if missing is not None:
                raise ValueError(f"{where}: missing key {missing!r} ({note})")
        return L


def get_optimizer(name, **hyper) -> Optimizer:
    """The optimiser ``name`` (a key of :data:`OPTIMIZERS`) with ``hyper`` (defaults for the others).

    momentum: ``beta`` in [0, 1) (0.9); rmsprop: ``beta2`` in [0, 1) (0.9) and
    ``epsilon`` > 0 (1e-8); adam: ``beta1`` (0.9), ``beta2`` (0.999) in [0, 1)
    and ``epsilon`` > 0 (1e-8); sgd: ``momentum`` in [0, 1] (0.9) and
    ``nesterov`` (True); gd: none.  An unknown name, a hyper-parameter
    the optimiser does not take, or one out of range raise ``ValueError``.

    >>> opt = get_optimizer("adam", beta2=0.99)
    >>> state = opt.init(parameters)                                  # doctest: +SKIP
    >>> parameters, state = opt.step(parameters, grads, state, 0.01)  # doctest: +SKIP
    """
    return Optimizer(name, dict(hyper))


# --------------------------------------------------------------------------- #
# clipping, schedule, L2: one definition each


def clip_scale(xp, arrays, max_norm):
    """``(scale, norm)``: ``norm = sqrt(sum_k sum(g_k^2))`` and ``scale = min(1, max_norm / (norm + 1e-6))``.

    Both are 0-d arrays on the gradients' device: no host sync.
    """
    total_sq = None
    for g in arrays:
        sq = xp.sum(g * g)
        total_sq = sq if total_sq is None else total_sq + sq
    total = xp.sqrt(total_sq)
    return xp.minimum(xp.ones_like(total), max_norm / (total + CLIP_EPS)), total


def staircase(lr0: float, epoch: int, decay_rate: float, interval: int = 1) -> float:
    """``lr0 / (1 + decay_rate * floor(epoch / interval))``, in the course's expression."""
    return 1 / (1 + decay_rate * math.floor(epoch / interval)) * lr0


def invscaling(lr0: float, t: int, power_t: float) -> float:
    """``lr0 / (t + 1) ** power_t``, t the examples trained on before this epoch (scikit-learn's ``invscaling``)."""
    return float(lr0) / (t + 1) ** power_t


#: the learning-rate schedules (adaptive: constant here; the epoch loop divides it on each plateau)
SCHEDULES = ("constant", "staircase", "invscaling", "adaptive")
#: the adaptive schedule divides the learning rate by this on each plateau, and stops below ADAPTIVE_MIN_LR
ADAPTIVE_DIVISOR = 5.0
ADAPTIVE_MIN_LR = 1e-6


def scheduled_lr(schedule: str, lr0: float, epoch: int, seen: int, *, decay_rate=0.0, interval=1,
                 power_t=0.5) -> float:
    """The learning rate of the 0-based ``epoch`` (``seen`` examples trained on before it) under ``schedule``."""
    if schedule == "staircase":
        return staircase(lr0, epoch, decay_rate, interval)
    if schedule == "invscaling":
        return invscaling(lr0, seen, power_t)
    return lr0


def l2_penalty(xp, parameters, L: int, lambd: float, m: int):
    """``(1/m) (lambd/2) sum_l sum(W[l]^2)`` (biases are not penalised), a 0-d array; the course's order."""
    total = None
    for l in range(1, L + 1):
        W = parameters[f"W{l}"]
        sq = xp.sum(W * W)
        total = sq if total is None else total + sq
    return (1 / m) * (lambd / 2) * total
