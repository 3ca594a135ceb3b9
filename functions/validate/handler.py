"""Training pipeline: validate the uploaded dataset version against its model spec (streamed)."""

from mlops.handlers import step_handler
from mlops.pipeline_steps import validate_step

handler = step_handler(validate_step)
