"""Deployment pipeline: the waiting approval task stores its token with the candidate and notifies approvers."""

from mlops.deployment.rollout import approval_request_step
from mlops.observability import step_handler

handler = step_handler(approval_request_step)
