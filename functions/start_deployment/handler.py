"""Training pipeline hand-off: start the deployment pipeline for a registered candidate, once."""

from mlops.deployment import handoff_step
from mlops.handlers import step_handler

handler = step_handler(handoff_step)
