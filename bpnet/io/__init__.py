"""Files: checkpoints, data sets and file readers, atomic writes, and the saved preprocessor."""

from .atomic import atomic_write, check_parent
from .checkpoint import Checkpoint, CheckpointError, check_architecture, load_checkpoint, read_header, save_checkpoint
from .datasets import DATASETS, MAX_INFERRED_CLASSES, TASKS, Dataset, load_dataset
from .files import make_flower, read_columns, read_features, read_table
from .preprocess import Preprocessor

__all__ = [
    "DATASETS", "MAX_INFERRED_CLASSES", "TASKS", "Checkpoint", "CheckpointError", "Dataset", "Preprocessor",
    "atomic_write", "check_architecture", "check_parent", "load_checkpoint", "load_dataset", "make_flower",
    "read_columns", "read_features", "read_header", "read_table", "save_checkpoint",
]
