"""Data: dataset versions, validation, the reference profile, ground-truth labels, and the trigger
that starts a training run when a dataset is uploaded."""
