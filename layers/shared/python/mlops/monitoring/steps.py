"""The monitoring state machine's states as typed calls: one function per Lambda state.

Each takes the state's input contract (:mod:`mlops.contracts.monitoring`) and returns its output
contract; the monitor function's handlers parse the event, make this one call and dump the result.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from mlops.contracts.monitoring import (
    Analysis,
    AnalyzeRequest,
    FailureRecorded,
    Plan,
    PlanRequest,
    RecordFailureRequest,
    Sketched,
    SketchRequest,
)
from mlops.monitoring.analysis import analyze_run
from mlops.monitoring.monitor import plan_run, record_monitor_failure, sketch_shard
from mlops.monitoring.services import MetricPoint, MonitorServices

Emit = Callable[[Sequence[MetricPoint]], None]


def plan(request: PlanRequest, services: MonitorServices) -> Plan:
    """Plan: champion, spec, window, capture objects and the inline/distributed choice."""
    event = {"input": request.input.model_dump(exclude_none=True), "execution_name": request.execution_name}
    return Plan.model_validate(plan_run(event, services))


def sketch(request: SketchRequest, services: MonitorServices) -> Sketched:
    """Sketch (one Distributed Map item): a shard's capture records -> its sketch in S3."""
    return Sketched.model_validate(sketch_shard({"item": request.item.model_dump(mode="json")}, services))


def analyze(
    request: AnalyzeRequest, services: MonitorServices, *, request_id: str | None = None, emit: Emit | None = None
) -> Analysis:
    """Analyze: report, run item, notification, maybe retraining; ``emit`` receives the metric points."""
    summary = analyze_run({"plan": request.plan.model_dump(mode="json")}, services, request_id=request_id)
    points = [MetricPoint(**p) for p in summary.pop("metrics")]
    if emit is not None:
        emit(points)
    return Analysis.model_validate(summary)


def record_failure(
    request: RecordFailureRequest, services: MonitorServices, *, request_id: str | None = None
) -> FailureRecorded:
    """RecordFailure: a FAILED run item and its audit event."""
    event = {
        "state": request.state.model_dump(mode="json", exclude_none=True),
        "execution": request.execution,
        "execution_name": request.execution_name,
    }
    return FailureRecorded.model_validate(record_monitor_failure(event, services, request_id=request_id))
