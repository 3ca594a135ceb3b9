"""Deployment pipeline: prepare, skip or expire approval, deploy, check the canary, finish, record failures."""

from mlops.deployment.rollout import deployment_step
from mlops.observability import step_handler

handler = step_handler(deployment_step)
