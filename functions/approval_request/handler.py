"""Deployment pipeline: the waiting approval task stores its token with the candidate and notifies approvers."""

from __future__ import annotations

import functools
from typing import Any

from mlops.contracts.deployment import ApprovalRequested, RequestApproval
from mlops.deployment import steps
from mlops.deployment.services import DeploymentServices
from mlops.observability import step_handler


@functools.cache
def services() -> DeploymentServices:
    """This execution environment's clients: made on its first invocation, reused by the next ones."""
    return DeploymentServices.from_env()


@step_handler
def handler(event: dict[str, Any], *, request_id: str | None = None) -> dict[str, Any]:
    result = steps.request(RequestApproval.model_validate(event), services(), request_id=request_id)
    return ApprovalRequested.model_validate(result).model_dump(mode="json", exclude_unset=True)
