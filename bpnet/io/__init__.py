"""Files: checkpoints, data sets and file readers, atomic writes, and the saved preprocessor."""
