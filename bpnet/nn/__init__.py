"""The math, on the Array API: activations, losses, initialisation and the course's Step-by-Step API."""

from .activations import (
    ACTIVATIONS,
    Activation,
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
    softplus,
    softplus_backward,
    tanh,
    tanh_backward,
)
from .course import (
    L_model_backward,
    L_model_forward,
    compute_cost,
    linear_activation_backward,
    linear_activation_forward,
    linear_backward,
    linear_forward,
    model_backward,
    model_forward,
    predict,
)
from .dropout import dropout_masks
from .init import INITS, initialize_parameters, initialize_parameters_deep
from .losses import DEFAULT_OUTPUT, FUSED_PAIRS, LOSSES, Loss, get_loss, predictions, resolve_head

__all__ = [
    "ACTIVATIONS", "Activation", "get_activation", "LOSSES", "Loss", "get_loss", "FUSED_PAIRS", "DEFAULT_OUTPUT",
    "resolve_head", "predictions", "INITS", "initialize_parameters", "initialize_parameters_deep", "dropout_masks",
    "relu", "relu_backward", "leaky_relu", "leaky_relu_backward", "tanh", "tanh_backward", "sigmoid",
    "sigmoid_backward", "softplus", "softplus_backward", "linear", "identity_backward", "softmax", "softmax_backward",
    "linear_forward", "linear_activation_forward", "L_model_forward", "model_forward", "compute_cost",
    "linear_backward", "linear_activation_backward", "L_model_backward", "model_backward", "predict",
]
