"""Optimisers: each defined once (:mod:`bpnet.optim.rules`), and the course's optimisation functions on top."""

from .course import (
    add_l2_gradients,
    clip_gradients,
    compute_cost_with_regularization,
    initialize_adam,
    initialize_rmsprop,
    initialize_velocity,
    l2_cost,
    random_mini_batches,
    schedule_lr_decay,
    update_lr,
    update_parameters,
    update_parameters_with_adam,
    update_parameters_with_momentum,
    update_parameters_with_rmsprop,
)
from .rules import OPTIMIZERS, Optimizer, Rule, get_optimizer

__all__ = [
    "random_mini_batches", "initialize_velocity", "update_parameters", "update_parameters_with_momentum",
    "initialize_adam", "update_parameters_with_adam", "update_lr", "schedule_lr_decay", "initialize_rmsprop",
    "update_parameters_with_rmsprop", "l2_cost", "compute_cost_with_regularization", "add_l2_gradients",
    "clip_gradients", "Optimizer", "OPTIMIZERS", "Rule", "get_optimizer",
]
