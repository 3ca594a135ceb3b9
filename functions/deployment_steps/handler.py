"""Deployment pipeline: one handler per Lambda state (parse its contract, one call, dump the answer).

The stacks deploy this code once per state, each function with its own handler
(``handler.prepare``, ``handler.deploy``, ...) and only the grants its state needs; the contracts
are in :mod:`mlops.contracts.deployment`. The clients are made once per execution environment.
"""

from __future__ import annotations

import functools
from typing import Any

from pydantic import BaseModel

from mlops.contracts.deployment import (
    CanaryCheck,
    CheckCanary,
    Deploy,
    Deployed,
    ExpireApproval,
    Expired,
    FailureRecorded,
    FinishCanary,
    Finished,
    NotificationFailed,
    NotificationFailureRecorded,
    Plan,
    Prepare,
    RecordFailure,
    SkipApproval,
    Skipped,
)
from mlops.deployment import steps
from mlops.deployment.services import DeploymentServices
from mlops.monitoring.schedules import sync_schedule_from_env
from mlops.observability import step_handler


@functools.cache
def services() -> DeploymentServices:
    """This execution environment's clients: made on its first invocation, reused by the next ones."""
    return DeploymentServices.from_env()


def _answer(model: type[BaseModel], result: dict[str, Any]) -> dict[str, Any]:
    """The step's answer, checked against its output contract, with exactly the keys it has."""
    return model.model_validate(result).model_dump(mode="json", exclude_unset=True)


def _monitoring_schedule(model: str) -> dict[str, Any]:
    """The new champion's drift-check schedule; never fails the deployment (it says what failed)."""
    return sync_schedule_from_env(services().registry, model)


@step_handler
def prepare(event: dict[str, Any], *, request_id: str | None = None) -> dict[str, Any]:
    return _answer(Plan, steps.prepare(Prepare.model_validate(event), services(), request_id=request_id))


@step_handler
def skip_approval(event: dict[str, Any], *, request_id: str | None = None) -> dict[str, Any]:
    return _answer(Skipped, steps.skip(SkipApproval.model_validate(event), services(), request_id=request_id))


@step_handler
def expire_approval(event: dict[str, Any], *, request_id: str | None = None) -> dict[str, Any]:
    return _answer(Expired, steps.expire(ExpireApproval.model_validate(event), services(), request_id=request_id))


@step_handler
def deploy(event: dict[str, Any], *, request_id: str | None = None) -> dict[str, Any]:
    step = Deploy.model_validate(event)
    result = steps.deploy(step, services(), request_id=request_id)
    if result["champion"] == step.version:
        result["monitoring_schedule"] = _monitoring_schedule(step.model)
    return _answer(Deployed, result)


@step_handler
def check_canary(event: dict[str, Any], *, request_id: str | None = None) -> dict[str, Any]:
    return _answer(CanaryCheck, steps.check(CheckCanary.model_validate(event), services(), request_id=request_id))


@step_handler
def finish_canary(event: dict[str, Any], *, request_id: str | None = None) -> dict[str, Any]:
    step = FinishCanary.model_validate(event)
    result = steps.finish(step, services(), request_id=request_id)
    if result.get("champion") == step.version:
        result["monitoring_schedule"] = _monitoring_schedule(step.model)
    return _answer(Finished, result)


@step_handler
def record_failure(event: dict[str, Any], *, request_id: str | None = None) -> dict[str, Any]:
    step = RecordFailure.model_validate(event)
    return _answer(FailureRecorded, steps.record_failure(step, services(), request_id=request_id))


@step_handler
def notification_failed(event: dict[str, Any], *, request_id: str | None = None) -> dict[str, Any]:
    step = NotificationFailed.model_validate(event)
    return _answer(NotificationFailureRecorded, steps.notification_failed(step, services(), request_id=request_id))
