"""Training pipeline: Apply the spec's gates to the evaluated candidate."""

from mlops.observability import step_handler
from mlops.training.steps import gate_candidate

handler = step_handler(gate_candidate)
