"""Training pipeline hand-off: start the deployment pipeline for a registered candidate, once."""

from mlops.deployment.rollout import handoff_step
from mlops.observability import step_handler

handler = step_handler(handoff_step)
