"""Monitoring pipeline: plan the window, sketch a shard, analyze (report, metrics, alert, retrain), record failures."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from mlops.monitoring.monitor import MetricPoint, monitor_step

logger = Logger()
NAMESPACE = "MLOps"


def emit(points: Sequence[MetricPoint]) -> None:
    """One EMF document per point: each has its own dimensions (plus this function's ``service``)."""
    for point in points:
        unit = MetricUnit.Count if point.unit == "Count" else MetricUnit.NoUnit
        with single_metric(name=point.name, unit=unit, value=point.value, namespace=NAMESPACE) as metric:
            for name, value in point.dimensions.items():
                metric.add_dimension(name=name, value=value)


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    result = monitor_step(event, request_id=context.aws_request_id, emit=emit)
    if event.get("action") == "analyze":
        logger.info("drift check", extra={k: result.get(k) for k in ("model", "version", "verdict", "report_key")})
        result = {k: v for k, v in result.items() if k != "metrics"}
    return result
