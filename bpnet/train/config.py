"""The options of a training run, declared once: :class:`FitConfig`.

``MLP.fit``, ``fit_distributed``, ``L_layer_model``, the scikit-learn
estimators and ``bpnet train`` all build one; each field's metadata holds its
help text (and the command line's flag), so ``--help`` and the docstrings
read the same declaration.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from .. import _validate as v
from ..optim import OPTIMIZERS, get_optimizer
from ..optim.rules import SCHEDULES, Optimizer, scheduled_lr

#: what ``n_iter_no_change`` watches, besides a callable score
MONITORS = ("cost", "val_cost")

__all__ = ["FitConfig", "MONITORS"]


def _opt(help_text, flag=None):
    return {"help": help_text, "flag": flag}


@dataclass(frozen=True)
class FitConfig:
    """Validated options of one training run (build it with :meth:`from_options`).

    Every field is also a keyword of ``MLP.fit``; the hyper-parameters of the
    optimiser (``beta``; ``beta1``, ``beta2``, ``epsilon``) are keywords too and
    land in :attr:`optimizer` (an :class:`bpnet.optim.Optimizer`).
    """

    epochs: int = field(default=100, metadata=_opt("passes over the training data", "--epochs"))
    batch_size: int = field(default=64, metadata=_opt("examples per mini-batch (the last may be smaller)",
                                                      "--batch-size"))
    optimizer: Optimizer = field(default="adam", metadata=_opt(
        f"the update rule ({', '.join(OPTIMIZERS)}; gd is the course's plain gradient descent)", "--optimizer"))
    learning_rate: float | None = field(default=None, metadata=_opt(
        "step size; default " + ", ".join(f"{r.default_lr:g} for {n}" for n, r in OPTIMIZERS.items()), "--lr"))
    lr_decay: float = field(default=0.0, metadata=_opt(
        "lr = learning_rate / (1 + lr_decay * floor(epoch / decay_interval)), the course's schedule_lr_decay",
        "--lr-decay"))
    decay_interval: int = field(default=1, metadata=_opt("epochs between learning-rate decays", "--decay-interval"))
    schedule: str = field(default="staircase", metadata=_opt(
        "the learning-rate schedule: staircase (lr_decay; constant while it is 0), constant, invscaling "
        "(learning_rate / (t + 1) ** power_t, t the examples trained on before the epoch) or adaptive "
        "(divided by 5 whenever n_iter_no_change epochs did not improve the monitored value by tol)"))
    power_t: float = field(default=0.5, metadata=_opt("the exponent of the invscaling schedule"))
    tol: float = field(default=1e-4, metadata=_opt("the improvement of the monitored value that counts"))
    n_iter_no_change: int | None = field(default=None, metadata=_opt(
        "stop (adaptive schedule: divide the learning rate by 5) once more than this many epochs in a row did not "
        "improve the monitored value by tol; None: never"))
    monitor: object = field(default="cost", metadata=_opt(
        "what n_iter_no_change watches: 'cost' (training), 'val_cost', or score(model) -> float, higher is better "
        "(the best epoch's weights are then restored at the end with restore_best, as with 'val_cost')"))
    l2: float = field(default=0.0, metadata=_opt(
        "L2 strength lambda: cost + lambda/(2m) sum ||W||^2, dW += lambda/m W", "--l2"))
    dropout: float = field(default=0.0, metadata=_opt(
        "probability of dropping a hidden unit (inverted dropout; never at inference)", "--dropout"))
    clip_norm: float | None = field(default=None, metadata=_opt("clip the gradients to this global L2 norm",
                                                                "--clip-norm"))
    early_stopping: int | None = field(default=None, metadata=_opt(
        "stop after this many epochs without a better validation cost (needs validation data)", "--early-stopping"))
    restore_best: bool = field(default=True, metadata=_opt("with early stopping, restore the best epoch's weights"))
    shuffle: bool = field(default=True, metadata=_opt("reshuffle the examples every epoch"))
    seed: int | None = field(default=None, metadata=_opt(
        "seed of the shuffles, dropout masks and validation split (default: the model's)"))
    callbacks: tuple = field(default=(), metadata=_opt("callback(model, epoch, logs) after every epoch"))
    checkpoint: str | None = field(default=None, metadata=_opt(
        "save an atomic checkpoint there every checkpoint_every epochs and at the end"))
    checkpoint_every: int = field(default=1, metadata=_opt("epochs between checkpoints"))

    @classmethod
    def from_options(cls, **options) -> "FitConfig":
        """Options as ``MLP.fit`` takes them: fields, plus the optimiser's hyper-parameters."""
        names = {f.name for f in dataclasses.fields(cls)}
        fields = {k: val for k, val in options.items() if k in names}
        hyper = {k: val for k, val in options.items() if k not in names}
        name = fields.get("optimizer", cls.optimizer)
        if isinstance(name, Optimizer):
            if hyper:
                raise ValueError(f"{next(iter(hyper))}: give hyper-parameters to get_optimizer, not beside an "
                                 "Optimizer")
            return cls(**fields)
        v.choice(name, "optimizer", OPTIMIZERS)
        unknown = [k for k in hyper if k not in OPTIMIZERS[name].defaults]
        if unknown:
            takes = ", ".join(OPTIMIZERS[name].defaults) or "none"
            raise TypeError(f"{unknown[0]}: not an option of fit (options: {', '.join(sorted(names))}) nor a "
                            f"hyper-parameter of optimizer {name!r} (it takes: {takes})")
        return cls(**{**fields, "optimizer": get_optimizer(name, **hyper)})

    def __post_init__(self):
        s = self._set
        s("epochs", v.integer(self.epochs, "epochs", low=1))
        s("batch_size", v.integer(self.batch_size, "batch_size", low=1))
        if not isinstance(self.optimizer, Optimizer):
            s("optimizer", get_optimizer(v.choice(self.optimizer, "optimizer", OPTIMIZERS)))
        lr = self.optimizer.rule.default_lr if self.learning_rate is None else self.learning_rate
        s("learning_rate", v.real(lr, "learning_rate", low=0.0, low_open=True))
        s("lr_decay", v.real(self.lr_decay, "lr_decay", low=0.0))
        s("decay_interval", v.integer(self.decay_interval, "decay_interval", low=1))
        s("schedule", v.choice(self.schedule, "schedule", SCHEDULES, what="learning-rate schedule"))
        if self.lr_decay and self.schedule != "staircase":
            raise ValueError(f"lr_decay: only used by schedule='staircase', got schedule={self.schedule!r}")
        s("power_t", v.real(self.power_t, "power_t", low=0.0))
        s("tol", v.real(self.tol, "tol", low=0.0))
        if self.n_iter_no_change is not None:
            s("n_iter_no_change", v.integer(self.n_iter_no_change, "n_iter_no_change", low=1))
        if not callable(self.monitor):
            s("monitor", v.choice(self.monitor, "monitor", MONITORS))
        s("l2", v.real(self.l2, "l2", low=0.0))
        s("dropout", v.real(self.dropout, "dropout", low=0.0, high=1.0, high_open=True))
        if self.clip_norm is not None:
            s("clip_norm", v.real(self.clip_norm, "clip_norm", low=0.0, low_open=True))
        if self.early_stopping is not None:
            s("early_stopping", v.integer(self.early_stopping, "early_stopping", low=1))
        s("restore_best", v.flag(self.restore_best, "restore_best"))
        s("shuffle", v.flag(self.shuffle, "shuffle"))
        if self.seed is not None:
            s("seed", v.seed(self.seed))
        s("callbacks", tuple(self.callbacks))
        for i, cb in enumerate(self.callbacks):
            if not callable(cb):
                raise TypeError(f"callbacks[{i}]: expected a callable callback(model, epoch, logs), "
                                f"got {type(cb).__name__} {cb!r}")
        s("checkpoint_every", v.integer(self.checkpoint_every, "checkpoint_every", low=1))

    def _set(self, name, value):
        object.__setattr__(self, name, value)

    @property
    def keep_prob(self) -> float | None:
        """Keep probability of inverted dropout; None without dropout."""
        return 1.0 - self.dropout if self.dropout else None

    def lr(self, epoch: int, seen: int = 0) -> float:
        """The learning rate of the 0-based ``epoch``, ``seen`` examples trained on before it
        (:func:`bpnet.optim.rules.scheduled_lr`; the adaptive schedule's plateaus are the epoch loop's)."""
        return scheduled_lr(self.schedule, self.learning_rate, epoch, seen, decay_rate=self.lr_decay,
                            interval=self.decay_interval, power_t=self.power_t)
