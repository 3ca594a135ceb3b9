"""Deployment pipeline: prepare, skip or expire approval, deploy, check the canary, finish, record failures."""

from mlops.deployment import deployment_step
from mlops.handlers import step_handler

handler = step_handler(deployment_step)
