"""The monitoring state machine's step contracts (``statemachines/monitoring.asl.json``).

One drift check of one model: ``Plan`` (:class:`PlanRequest` -> :class:`Plan`), then either
nothing (``mode`` ``disabled``), ``Analyze`` directly (``inline``), or a Distributed Map
``SketchShards`` whose items (:class:`ShardItem`, read from the ``shards.json`` Plan wrote) each run
``Sketch`` (:class:`SketchRequest` -> :class:`Sketched`) before ``Analyze``
(:class:`AnalyzeRequest` -> :class:`Analysis`). A failed step goes to ``RecordFailure``
(:class:`RecordFailureRequest` -> :class:`FailureRecorded`). :class:`MonitorRun` is the state
document between states. Standard library and pydantic only.
"""

from __future__ import annotations

from typing import Any, Literal

from mlops.contracts.base import Contract, Document, Machine, Step

Mode = Literal["disabled", "inline", "distributed"]


class MonitorInput(Contract):
    """The execution input: a schedule sends ``{"model", "trigger": "schedule"}``; ``mlops monitor
    run`` may force the Distributed Map path (``distributed``, ``shard_objects``)."""

    model: str
    trigger: str | None = None
    run_id: str | None = None
    distributed: bool | None = None
    shard_objects: int | None = None


class TimeWindow(Contract):
    """The capture window checked, ISO-8601 UTC bounds (start inclusive, end exclusive)."""

    start: str
    end: str


class PlanRequest(Contract):
    """The ``Plan`` state's Payload: the execution input and the execution's id and name."""

    input: MonitorInput
    execution: str | None = None
    execution_name: str | None = None


class Plan(Contract):
    """What ``Plan`` decided (``$.plan``): champion, window, capture objects, inline or distributed."""

    model: str
    version: int
    spec_revision: int | None = None
    run_id: str
    trigger: str
    schedule: dict[str, Any]  # what healing the model's schedule did: {"action": ..., ...}
    mode: Mode
    shards: int
    objects: int
    bytes: int
    window: TimeWindow | None = None  # the rest: absent when ``mode`` is ``disabled``
    planned_at: str | None = None
    previous_window_end: str | None = None  # the run advances the window end only if it is still this
    prefix: str | None = None  # reports/<model>/v<version>/drift/<stamp>
    shards_key: str | None = None  # <prefix>/shards.json: the list of ShardItem


class ShardItem(Contract):
    """One item of ``SketchShards``: a shard of the window's capture objects."""

    index: int
    keys: list[str]
    sketch_key: str  # <prefix>/sketches/<index>.json
    model: str
    version: int
    spec_revision: int | None = None
    window: TimeWindow


class SketchRequest(Contract):
    """The ``Sketch`` state's Payload (inside the Map)."""

    item: ShardItem


class Sketched(Contract):
    """A shard's sketch, written to its ``sketch_key``."""

    index: int
    rows: int
    sketch_key: str


class AnalyzeRequest(Contract):
    """The ``Analyze`` state's Payload."""

    plan: Plan


class Analysis(Contract):
    """The drift check's summary (``$.analysis.result``); the report is at ``report_key``/``html_key``."""

    model: str
    version: int
    run_id: str
    trigger: str
    verdict: str  # no_drift | drifted | too_small
    drifted: bool
    drifted_features: list[str]
    missing_rate_alerts: list[str]
    prediction_drifted: bool
    performance: str | None = None  # ok | degraded | too_small ... when labels were joined
    rows: int
    score: float
    mode: Mode
    objects: int | None = None
    shards: int | None = None
    window: TimeWindow
    report_key: str
    html_key: str
    bucket: str
    retrain: dict[str, Any]  # what the retraining rule did: {"action": ..., ...}


class AnalysisResult(Contract):
    """``$.analysis``: the Analyze state's ResultSelector."""

    result: Analysis


class Failure(Contract):
    """``$.failure``: which state failed and its Step Functions error (``Error``, ``Cause``)."""

    step: str
    error: dict[str, Any]


class MonitorRun(Document):
    """The state document: the execution input, then ``{"plan"}`` from Plan onwards."""

    model: str | None = None  # the execution input, until Plan replaces the document with {"plan"}
    trigger: str | None = None
    run_id: str | None = None
    distributed: bool | None = None
    shard_objects: int | None = None
    plan: Plan | None = None
    analysis: AnalysisResult | None = None
    error: dict[str, Any] | None = None  # a Catch's error output
    failure: Failure | None = None
    record_error: dict[str, Any] | None = None
    notification_error: dict[str, Any] | None = None


class RecordFailureRequest(Contract):
    """The ``RecordFailure`` state's Payload: the whole state document of the failed run."""

    state: MonitorRun
    execution: str | None = None
    execution_name: str | None = None


class FailureRecorded(Contract):
    """What ``RecordFailure`` wrote (a FAILED run item and its audit event)."""

    recorded: bool
    step: str | None = None
    error: str | None = None
    cause: str | None = None
    execution: str | None = None


MACHINE = Machine(
    asl="monitoring.asl.json",
    document=MonitorRun,
    steps={
        "Plan": Step(PlanRequest, Plan, handler="functions/monitor/handler.plan"),
        "Sketch": Step(SketchRequest, Sketched, handler="functions/monitor/handler.sketch"),
        "Analyze": Step(AnalyzeRequest, Analysis, handler="functions/monitor/handler.analyze"),
        "RecordFailure": Step(
            RecordFailureRequest, FailureRecorded, handler="functions/monitor/handler.record_failure"
        ),
    },
    items={"SketchShards": ShardItem},
)
