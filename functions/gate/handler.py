"""Training pipeline: Apply the spec's gates to the evaluated candidate."""

from mlops.handlers import step_handler
from mlops.pipeline_steps import gate_candidate

handler = step_handler(gate_candidate)
