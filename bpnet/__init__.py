"""bpnet: the course's L-layer backpropagation, written once on the Array API.

The same forward and backward code runs on numpy (CPU), cupy (NVIDIA GPU) and
array-api-strict; :mod:`bpnet.backends` picks where new arrays are created.
The layers of the package, each importing only those below it::

    cli, sklearn          front ends
    model, tools, planar  MLP; gradcheck, explain, plots; the week-3 one-hidden-layer network
    train                 the in-place step, FitConfig, the one epoch loop (local, Dask)
    optim, io             optimisers; checkpoints, data sets, the saved preprocessor
    nn                    activations, losses, init, the course's Step-by-Step API
    backends, _validate   where arrays live; the one validation vocabulary

>>> import bpnet
>>> parameters = bpnet.initialize_parameters_deep([5, 4, 3])
>>> parameters["W1"].shape, parameters["b1"].shape
((4, 5), (4, 1))
"""

from . import backends, optim, planar
from ._validate import CourseInputWarning
from ._version import __version__
from .io.checkpoint import (
    Checkpoint,
    CheckpointError,
    check_architecture,
    load_checkpoint,
    read_header,
    save_checkpoint,
)
from .model import MLP, Model
from .nn import (
    ACTIVATIONS,
    DEFAULT_OUTPUT,
    FUSED_PAIRS,
    INITS,
    LOSSES,
    L_model_backward,
    L_model_forward,
    compute_cost,
    dropout_masks,
    get_activation,
    get_loss,
    identity_backward,
    initialize_parameters,
    initialize_parameters_deep,
    leaky_relu,
    leaky_relu_backward,
    linear,
    linear_activation_backward,
    linear_activation_forward,
    linear_backward,
    linear_forward,
    model_backward,
    model_forward,
    predict,
    relu,
    relu_backward,
    sigmoid,
    sigmoid_backward,
    softmax,
    softmax_backward,
    softplus,
    softplus_backward,
    tanh,
    tanh_backward,
)
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
    update_parameters,
    update_parameters_with_adam,
    update_parameters_with_momentum,
    update_parameters_with_rmsprop,
)
from .tools.gradcheck import gradient_check, numerical_gradients
from .train import FitConfig, History, L_layer_model, NonFiniteOutputError, TrainingDivergedError
from .train.course import two_layer_model

__all__ = [
    "__version__", "backends", "optim", "CourseInputWarning",
    # registries
    "ACTIVATIONS", "LOSSES", "FUSED_PAIRS", "DEFAULT_OUTPUT", "INITS", "OPTIMIZERS", "get_activation", "get_loss",
    "get_optimizer", "Optimizer",
    # the course's Step-by-Step API
    "relu", "relu_backward", "leaky_relu", "leaky_relu_backward", "tanh", "tanh_backward", "sigmoid",
    "sigmoid_backward", "softplus", "softplus_backward", "linear", "identity_backward", "softmax", "softmax_backward",
    "initialize_parameters", "initialize_parameters_deep", "linear_forward", "linear_activation_forward",
    "L_model_forward", "model_forward", "compute_cost", "linear_backward", "linear_activation_backward",
    "L_model_backward", "model_backward", "update_parameters", "predict", "gradient_check", "numerical_gradients",
    # the Application notebook's models; the week-3 one-hidden-layer network is bpnet.planar
    "L_layer_model", "two_layer_model", "TrainingDivergedError", "NonFiniteOutputError", "planar",
    # the course's optimisation and regularisation functions
    "random_mini_batches", "initialize_velocity", "update_parameters_with_momentum", "initialize_adam",
    "update_parameters_with_adam", "initialize_rmsprop", "update_parameters_with_rmsprop", "update_lr",
    "schedule_lr_decay", "l2_cost", "compute_cost_with_regularization", "add_l2_gradients", "clip_gradients",
    "dropout_masks",
    # the model and its files
    "MLP", "Model", "History", "FitConfig", "Checkpoint", "CheckpointError", "save_checkpoint", "load_checkpoint",
    "read_header", "check_architecture",
]
