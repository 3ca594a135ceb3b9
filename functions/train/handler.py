"""Training pipeline: Plan the candidates (mode plan) or train one candidate (mode train)."""

from mlops.observability import step_handler
from mlops.training.steps import train_step

handler = step_handler(train_step)
