"""bpnet: the course's L-layer backpropagation, written once on the Array API.

The same forward and backward code runs on numpy (CPU), cupy (NVIDIA GPU) and
array-api-strict; :mod:`bpnet.backends` picks where new arrays are created.

>>> import bpnet
>>> parameters = bpnet.initialize_parameters_deep([5, 4, 3])
>>> parameters["W1"].shape, parameters["b1"].shape
((4, 5), (4, 1))
"""

__version__ = "0.1.0"

from . import backends
from .activations import (
    ACTIVATIONS,
    get_activation,
    identity_backward,
    leaky_relu,
    leaky_relu_backward,
    linear,
    relu,
    relu_backward,
    sigmoid,
    sigmoid_backward,
    softmax,
    softmax_backward,
    tanh,
    tanh_backward,
)
from .core import (
    INITS,
    L_model_backward,
    L_model_forward,
    compute_cost,
    initialize_parameters_deep,
    linear_activation_backward,
    linear_activation_forward,
    linear_backward,
    linear_forward,
    model_backward,
    model_forward,
    predict,
    update_parameters,
)
from .gradcheck import gradient_check, numerical_gradients
from .losses import FUSED_PAIRS, LOSSES
from .train import L_layer_model, TrainingDivergedError
from . import optim
from .optim import (
    OPTIMIZERS,
    Optimizer,
    add_l2_gradients,
    clip_gradients,
    compute_cost_with_regularization,
    get_optimizer,
    initialize_adam,
    initialize_rmsprop,
    initialize_velocity,
    l2_cost,
    random_mini_batches,
    schedule_lr_decay,
    update_lr,
    update_parameters_with_adam,
    update_parameters_with_momentum,
    update_parameters_with_rmsprop,
)
from .model import MLP, History, Model, dropout_masks
from .checkpoint import Checkpoint, CheckpointError, check_architecture, load_checkpoint, read_header, save_checkpoint

__all__ = [
    "__version__",
    "backends",
    "ACTIVATIONS",
    "LOSSES",
    "FUSED_PAIRS",
    "INITS",
    "get_activation",
    "relu",
    "relu_backward",
    "leaky_relu",
    "leaky_relu_backward",
    "tanh",
    "tanh_backward",
    "sigmoid",
    "sigmoid_backward",
    "linear",
    "identity_backward",
    "softmax",
    "softmax_backward",
    "initialize_parameters_deep",
    "linear_forward",
    "linear_activation_forward",
    "L_model_forward",
    "model_forward",
    "compute_cost",
    "linear_backward",
    "linear_activation_backward",
    "L_model_backward",
    "model_backward",
    "update_parameters",
    "predict",
    "gradient_check",
    "numerical_gradients",
    "L_layer_model",
    "TrainingDivergedError",
    "optim",
    "OPTIMIZERS",
    "Optimizer",
    "get_optimizer",
    "random_mini_batches",
    "initialize_velocity",
    "update_parameters_with_momentum",
    "initialize_adam",
    "update_parameters_with_adam",
    "initialize_rmsprop",
    "update_parameters_with_rmsprop",
    "update_lr",
    "schedule_lr_decay",
    "l2_cost",
    "compute_cost_with_regularization",
    "add_l2_gradients",
    "clip_gradients",
    "MLP",
    "Model",
    "History",
    "dropout_masks",
    "Checkpoint",
    "CheckpointError",
    "save_checkpoint",
    "load_checkpoint",
    "read_header",
    "check_architecture",
]
