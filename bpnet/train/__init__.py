"""Training: the one in-place step, the fit options, the one epoch loop and its gradient sources."""

from .config import FitConfig
from .course import L_layer_model
from .inference import NonFiniteOutputError
from .loop import EpochResult, History, LocalBatches, TrainingDivergedError, epochs
from .step import Net, Snapshot, TrainState, backward_update, forward_train, train_step

__all__ = ["FitConfig", "L_layer_model", "NonFiniteOutputError", "History", "LocalBatches", "TrainingDivergedError",
           "EpochResult", "epochs", "Net", "Snapshot", "TrainState", "forward_train", "backward_update", "train_step"]
