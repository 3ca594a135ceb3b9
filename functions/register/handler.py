"""Training pipeline: Register the candidate (PENDING_APPROVAL or REJECTED) with lineage, card and profile."""

from mlops.observability import step_handler
from mlops.training.steps import register_candidate

handler = step_handler(register_candidate)
