"""Training pipeline: Plan the candidates (mode plan) or train one candidate (mode train)."""

from mlops.handlers import step_handler
from mlops.pipeline_steps import train_step

handler = step_handler(train_step)
