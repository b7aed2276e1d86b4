"""The package version (one place; read by pyproject, checkpoints and --version)."""

__version__ = "0.1.0"
