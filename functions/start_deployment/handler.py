"""Training pipeline hand-off: start the deployment pipeline for a registered candidate, once."""

from __future__ import annotations

import functools
from typing import Any

import boto3

from mlops.contracts.training import HandoffInput, HandoffOutput
from mlops.deployment.handoff import handoff_step
from mlops.observability import step_handler


@functools.cache
def stepfunctions() -> Any:
    """This execution environment's Step Functions client: made once, reused by the next invocations."""
    return boto3.client("stepfunctions")


@step_handler
def handler(event: dict[str, Any], *, request_id: str | None = None) -> dict[str, Any]:
    step = HandoffInput.model_validate(event)
    result = handoff_step(step.model_dump(), request_id=request_id, sfn=stepfunctions())
    return HandoffOutput.model_validate(result).model_dump(mode="json")
