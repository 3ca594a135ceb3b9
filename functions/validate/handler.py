"""Training pipeline: validate the uploaded dataset version against its model spec (streamed)."""

from mlops.observability import step_handler
from mlops.training.steps import validate_step

handler = step_handler(validate_step)
