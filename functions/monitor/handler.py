"""The monitoring state machine's Lambda states, one handler each: parse the Payload, one call, dump.

``plan``, ``sketch``, ``analyze`` and ``record_failure`` are deployed as four functions from this one
code asset (stacks/monitoring.py), each with its own role.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit, single_metric

from mlops.contracts.monitoring import AnalyzeRequest, PlanRequest, RecordFailureRequest, SketchRequest
from mlops.monitoring import steps
from mlops.monitoring.services import MetricPoint, MonitorServices
from mlops.observability import logger, step_handler

NAMESPACE = "MLOps"


@functools.cache
def services() -> MonitorServices:
    """The clients, made once per execution environment (warm invocations reuse them)."""
    return MonitorServices.from_env()


def emit(points: Sequence[MetricPoint]) -> None:
    """One EMF document per point: each has its own dimensions (plus this function's ``service``)."""
    for point in points:
        unit = MetricUnit.Count if point.unit == "Count" else MetricUnit.NoUnit
        with single_metric(name=point.name, unit=unit, value=point.value, namespace=NAMESPACE) as metric:
            for name, value in point.dimensions.items():
                metric.add_dimension(name=name, value=value)


@step_handler
def plan(event: dict[str, Any], *, request_id: str) -> dict[str, Any]:
    return steps.plan(PlanRequest.model_validate(event), services()).model_dump(mode="json")


@step_handler
def sketch(event: dict[str, Any], *, request_id: str) -> dict[str, Any]:
    return steps.sketch(SketchRequest.model_validate(event), services()).model_dump(mode="json")


@step_handler
def analyze(event: dict[str, Any], *, request_id: str) -> dict[str, Any]:
    result = steps.analyze(AnalyzeRequest.model_validate(event), services(), request_id=request_id, emit=emit)
    logger.info("drift check", extra={k: getattr(result, k) for k in ("model", "version", "verdict", "report_key")})
    return result.model_dump(mode="json")


@step_handler
def record_failure(event: dict[str, Any], *, request_id: str) -> dict[str, Any]:
    request = RecordFailureRequest.model_validate(event)
    return steps.record_failure(request, services(), request_id=request_id).model_dump(mode="json")
