"""Canary health: each canary's CloudWatch alarms, created at its deploy and read at the end of its bake.

Each canary gets two alarms (:func:`canary_alarms`) on the metrics the inference function emits
per model version (namespace ``MLOps``, dimensions ``model`` and ``version``):
``PredictionErrors`` (Sum) and ``PredictionLatency`` (p99, ms). At the end of the bake, an alarm
in ``ALARM`` rolls the canary back; ``OK`` or ``INSUFFICIENT_DATA`` (no traffic, no errors)
promotes it.
"""

from __future__ import annotations

from typing import Any, Protocol

from mlops.contracts.names import alarm_prefix, service_name

METRIC_NAMESPACE = "MLOps"
ERROR_METRIC = "PredictionErrors"
LATENCY_METRIC = "PredictionLatency"


class Alarms(Protocol):
    """The CloudWatch calls a canary needs (a boto3 ``cloudwatch`` client fits)."""

    def put_metric_alarm(self, **kwargs: Any) -> Any: ...

    def describe_alarms(self, **kwargs: Any) -> Any: ...


def canary_alarms(environment: str, model: str, version: int) -> dict[str, dict[str, Any]]:
    """The canary's alarms by name, as ``PutMetricAlarm`` arguments.

    The dimensions are exactly the inference function's per-version metrics': ``model``,
    ``version`` and the ``service`` Powertools adds (CloudWatch matches dimension sets exactly).
    """
    dimensions = [
        {"Name": "model", "Value": model},
        {"Name": "service", "Value": service_name(environment, "inference")},
        {"Name": "version", "Value": str(version)},
    ]
    base = f"{alarm_prefix(environment)}{model}-v{version}"
    common = {"Namespace": METRIC_NAMESPACE, "Dimensions": dimensions, "Period": 60, "EvaluationPeriods": 5}
    return {
        f"{base}-errors": {
            **common,
            "AlarmDescription": f"Canary {model} v{version}: prediction errors",
            "MetricName": ERROR_METRIC,
            "Statistic": "Sum",
            "DatapointsToAlarm": 2,
            "Threshold": 5.0,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "TreatMissingData": "notBreaching",
        },
        f"{base}-latency": {
            **common,
            "AlarmDescription": f"Canary {model} v{version}: p99 prediction latency",
            "MetricName": LATENCY_METRIC,
            "ExtendedStatistic": "p99",
            "DatapointsToAlarm": 3,
            "Threshold": 1000.0,
            "ComparisonOperator": "GreaterThanThreshold",
            "TreatMissingData": "notBreaching",
        },
    }


def create_canary_alarms(alarms: Alarms, environment: str, model: str, version: int) -> list[str]:
    """Create (or reset) the canary's alarms; returns their names."""
    names = []
    for name, arguments in canary_alarms(environment, model, version).items():
        alarms.put_metric_alarm(AlarmName=name, **arguments)
        names.append(name)
    return names


def check_canary(alarms: Alarms, environment: str, model: str, version: int) -> dict[str, Any]:
    """The canary's alarm states: ``healthy`` unless one is in ``ALARM``."""
    names = list(canary_alarms(environment, model, version))
    found = alarms.describe_alarms(AlarmNames=names).get("MetricAlarms", [])
    states = {a["AlarmName"]: a.get("StateValue", "INSUFFICIENT_DATA") for a in found}
    firing = sorted(n for n, s in states.items() if s == "ALARM")
    missing = sorted(set(names) - set(states))
    return {
        "healthy": not firing,
        "alarms": states,
        "firing": firing,
        "missing": missing,
        "reason": f"alarm {', '.join(firing)} fired" if firing else "no alarm fired during the bake",
    }
