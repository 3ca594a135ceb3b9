"""The deployed drift check: schedules, capture windows, mergeable sketches, reports, metrics, retraining.

One monitor run is one execution of the monitoring state machine for one model:

``plan``
    The champion, its monitoring spec and the window (since the last completed run, else one
    schedule period; at most :data:`MAX_WINDOW`); lists the capture objects in it and writes
    them, cut into shards, to ``<run prefix>shards.json``. Small windows are analyzed in one
    function (``inline``); windows above ``inline_max_bytes`` / ``inline_max_objects`` go through
    a Distributed Map over that file (``distributed``).
``sketch``
    One shard: its capture records as a :class:`WindowSketch` (exact counts, missing values,
    categories and moments; a uniform bottom-k sample of each numeric column), written to
    ``<run prefix>sketches/<index>.json``.
``analyze``
    The window (all records, or the merged sketches) against the champion's registered reference
    profile with :func:`mlops.drift.drift_report`; prediction drift against the champion's
    holdout predictions; performance drift when labels were uploaded. Writes
    ``reports/<model>/v<version>/drift/<timestamp>.json`` and ``.html``, a run item and the
    per-model monitor item (audited together), publishes to SNS on drift, and starts retraining
    when the spec asks for it, at most once per cooldown (a conditional write on the monitor item)
    and only on data the champion has not learnt from (:mod:`mlops.monitoring.retraining`).
``record_failure``
    A failed run: a FAILED run item and an audit event.

Per-model schedules are EventBridge Scheduler schedules named after the model in the group
``mlops-<environment>-monitoring``; :func:`mlops.monitoring.schedules.sync_schedule` creates,
updates or deletes one from the spec. Details: docs/monitoring.md.

This module holds ``plan``, ``sketch`` and ``record_failure`` and starting a run by hand; the rest
of the run lives by responsibility: :mod:`~mlops.monitoring.schedules`,
:mod:`~mlops.monitoring.captures` (windows, capture objects, records),
:mod:`~mlops.monitoring.sketch` (mergeable sketches), :mod:`~mlops.monitoring.services` (settings,
clients, monitor items), :mod:`~mlops.monitoring.analysis` (``analyze``),
:mod:`~mlops.monitoring.retrain_start` (the cooldown claim and the start of a retrain) and
:mod:`~mlops.monitoring.retraining` (which data a retrain uses); :mod:`~mlops.monitoring.steps`
types each state's call with :mod:`mlops.contracts.monitoring`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from mlops.errors import InputError
from mlops.monitoring.captures import iso, list_captures, make_shards, parse_time, plan_window, read_records, utc_now
from mlops.monitoring.schedules import monitoring_spec, schedule_period, sync_schedule
from mlops.monitoring.services import MONITOR_ACTOR, MonitorServices, get_monitor_state, report_prefix, stamp
from mlops.monitoring.sketch import sketch_records
from mlops.registry import failures
from mlops.registry.keys import monitor_run_key
from mlops.registry.specs import SpecStore
from mlops.spec.model import ModelSpec


def plan_run(event: Mapping[str, Any], services: MonitorServices) -> dict[str, Any]:
    """The Plan state: champion, spec, window, capture objects and the inline/distributed choice.

    ``event`` is the execution input (``{"model", "trigger"}``), or ``{"input": <that>,
    "execution_name": ...}`` as the state machine passes it.
    """
    event = {**(event.get("input") or {}), **{k: v for k, v in event.items() if k != "input"}}
    model = str(event.get("model") or "")
    if not model:
        raise InputError("the monitor needs {'model': <name>} as input")
    registry = services.registry
    registry.ensure_active(model)  # an archived model is not monitored (its schedule is disabled)
    champion = registry.get_by_alias(model, "champion")
    spec = monitoring_spec(registry, model, champion.spec_revision)
    now = services.clock()
    run_id = str(event.get("run_id") or event.get("execution_name") or f"run-{stamp(now)}")
    schedule = _heal_schedule(services, model, spec)
    base = {
        "model": model,
        "version": champion.version,
        "spec_revision": champion.spec_revision,
        "run_id": run_id,
        "trigger": str(event.get("trigger") or "manual"),
        "schedule": schedule,
    }
    if not spec.monitoring.enabled:
        return {**base, "mode": "disabled", "shards": 0, "objects": 0, "bytes": 0}
    state = get_monitor_state(registry, model)
    last_end = parse_time(state["last_window_end"]) if state.get("last_window_end") else None
    start, end = plan_window(now, last_end, schedule_period(spec.monitoring.schedule))
    objects = list_captures(services.s3, services.bucket, model, start, end)
    total = sum(size for _, size in objects)
    settings = services.settings
    # The input may force the Distributed Map path (``mlops monitor run --distributed``, tests).
    forced = bool(event.get("distributed"))
    large = forced or total > settings.inline_max_bytes or len(objects) > settings.inline_max_objects
    shard_objects = max(1, int(event.get("shard_objects") or settings.shard_objects))
    shards = make_shards(
        objects,
        max_bytes=settings.shard_bytes if large else max(total, 1),
        max_objects=shard_objects if large else max(len(objects), 1),
    )
    prefix = report_prefix(model, champion.version, stamp(now))
    shards_key = f"{prefix}/shards.json"
    items = [
        {
            "index": index,
            "keys": keys,
            "sketch_key": f"{prefix}/sketches/{index:05d}.json",
            "model": model,
            "version": champion.version,
            "spec_revision": champion.spec_revision,
            "window": {"start": iso(start), "end": iso(end)},
        }
        for index, keys in enumerate(shards)
    ]
    services.s3.put_object(
        Bucket=services.bucket, Key=shards_key, Body=json.dumps(items).encode(), ContentType="application/json"
    )
    return {
        **base,
        "mode": "distributed" if large and items else "inline",
        "window": {"start": iso(start), "end": iso(end)},
        "planned_at": iso(now),
        # What the window started from: the run advances the window end only if it is still this.
        "previous_window_end": state.get("last_window_end"),
        "prefix": prefix,
        "shards_key": shards_key,
        "shards": len(items),
        "objects": len(objects),
        "bytes": total,
    }


def _heal_schedule(services: MonitorServices, model: str, spec: ModelSpec) -> dict[str, Any]:
    target = services.settings.schedule
    if target is None or services.scheduler is None:
        return {"action": "not_configured"}
    try:
        return sync_schedule(services.scheduler, target.group, model, spec, target.state_machine_arn, target.role_arn)
    except Exception as exc:  # the drift check still runs; the next run tries again
        return {"action": "failed", "error": f"{type(exc).__name__}: {exc}"[:500]}


def sketch_shard(event: Mapping[str, Any], services: MonitorServices) -> dict[str, Any]:
    """The Sketch state (one Distributed Map item): a shard's records -> its sketch in S3."""

    item = event.get("item") or event
    model = str(item["model"])
    revision = item.get("spec_revision")
    spec = SpecStore(services.registry).get(model, int(revision) if revision is not None else None).spec()
    window = item["window"]
    records = read_records(
        services.s3, services.bucket, item["keys"], parse_time(window["start"]), parse_time(window["end"])
    )
    sketch = sketch_records(records, spec, int(item["version"]), seed=int(item["index"]))
    services.s3.put_object(
        Bucket=services.bucket,
        Key=item["sketch_key"],
        Body=sketch.to_json().encode(),
        ContentType="application/json",
    )
    return {"index": item["index"], "rows": sketch.rows, "sketch_key": item["sketch_key"]}


def record_monitor_failure(
    event: Mapping[str, Any], services: MonitorServices, *, request_id: str | None = None
) -> dict[str, Any]:
    """A failed run: a FAILED run item and a ``monitor.failed`` audit event, written together, once."""
    registry = services.registry
    state = event.get("state") or event
    plan = state.get("plan") or {}
    model = str(plan.get("model") or state.get("model") or "") or "_platform"
    failure = state.get("failure") or {}
    now = services.clock()
    run_id = str(event.get("execution_name") or plan.get("run_id") or request_id or "unknown")
    record = {
        "step": failure.get("step"),
        **failures.failure_fields(failure.get("error"), cause_limit=4000),
        "execution": event.get("execution"),
    }
    item = {
        **monitor_run_key(model, iso(now), run_id),
        "kind": "monitor_run",
        "status": "FAILED",
        "run_id": run_id,
        "model": model,
        "trigger": plan.get("trigger") or state.get("trigger"),
        **{k: v for k, v in record.items() if v is not None},
    }
    return failures.record_failure(
        registry,
        model,
        actor=MONITOR_ACTOR,
        action="monitor.failed",
        subject=f"model/{model}/monitor/{run_id}",
        record=record,
        item=item,
        request_id=request_id,
    )


def monitor_execution_name(model: str, moment: datetime | None = None) -> str:
    """A unique name for a manual run: ``<model>-manual-<timestamp>``."""
    moment = moment or utc_now()
    return f"{model[:50]}-manual-{moment.astimezone(UTC):%Y%m%dT%H%M%S%f}"[:80]


def start_monitor_run(
    sfn: Any,
    state_machine_arn: str,
    model: str,
    *,
    trigger: str = "manual",
    distributed: bool = False,
    shard_objects: int | None = None,
) -> dict[str, Any]:
    """Start the monitor state machine for ``model`` now; ``{"execution_name", "execution_arn"}``.

    ``distributed`` forces the Distributed Map path whatever the window's size (with shards of
    at most ``shard_objects`` capture objects when given).
    """
    name = monitor_execution_name(model)
    document: dict[str, Any] = {"model": model, "trigger": trigger}
    if distributed:
        document["distributed"] = True
    if shard_objects:
        document["shard_objects"] = int(shard_objects)
    response = sfn.start_execution(stateMachineArn=state_machine_arn, name=name, input=json.dumps(document))
    return {"execution_name": name, "execution_arn": response["executionArn"]}
