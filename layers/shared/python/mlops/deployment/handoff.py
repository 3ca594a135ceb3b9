"""Starting the deployment pipeline: by the CLI, or as the training pipeline's hand-off (once per candidate)."""

from __future__ import annotations

import json
import os
from typing import Any

import boto3

from mlops.deployment.plan import STRATEGIES
from mlops.errors import InputError


def execution_name(model: str, version: int, suffix: str) -> str:
    """A deployment execution's name: ``<model>-v<version>-<suffix>`` within Step Functions' 80 characters."""
    base = f"{model}-v{version}"
    return f"{base}-{suffix}"[:80] if suffix else base


def start_deployment(
    sfn: Any,
    state_machine_arn: str,
    model: str,
    version: int,
    *,
    requested_by: str,
    name: str | None = None,
    strategy: str | None = None,
) -> str:
    """Start the deployment pipeline for ``model`` ``version``; returns the execution ARN.

    ``name`` defaults to ``<model>-v<version>`` (the training pipeline's hand-off: one per
    candidate, so a repeated hand-off is refused by Step Functions itself).
    """
    if strategy is not None and strategy not in STRATEGIES:
        raise InputError(f"strategy {strategy!r}: must be one of {', '.join(STRATEGIES)}")
    document = {"model": model, "version": int(version), "strategy": strategy, "requested_by": requested_by}
    started = sfn.start_execution(
        stateMachineArn=state_machine_arn, name=name or execution_name(model, version, ""), input=json.dumps(document)
    )
    return str(started["executionArn"])


def handoff_step(event: dict[str, Any], *, request_id: str | None = None, sfn: Any = None) -> dict[str, Any]:
    """The training pipeline's hand-off: ``{"model", "version", "training_execution_name"}`` in.

    Starts ``<model>-v<version>`` on ``DEPLOYMENT_STATE_MACHINE_ARN``; a repeated hand-off (a
    retried task) finds the execution already there and returns it instead of failing.
    """
    if sfn is None:
        sfn = boto3.client("stepfunctions")
    arn = os.environ["DEPLOYMENT_STATE_MACHINE_ARN"]
    model, version = str(event["model"]), int(event["version"])
    requested_by = f"pipeline:training:{event.get('training_execution_name') or 'unknown'}"
    name = execution_name(model, version, "")
    try:
        execution = start_deployment(sfn, arn, model, version, requested_by=requested_by, name=name)
    except Exception as exc:
        if getattr(exc, "response", {}).get("Error", {}).get("Code") != "ExecutionAlreadyExists":
            raise
        execution = arn.replace(":stateMachine:", ":execution:") + f":{name}"
    return {"deployment_execution": execution, "name": name}
