"""Starting a retrain on drift: at most once per cooldown (a conditional claim on the monitor item),
on data the champion has not learnt from (chosen by :mod:`mlops.monitoring.retraining`), audited.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from mlops.data.trigger import execution_name
from mlops.monitoring.capture_dataset import (
    CAPTURES_SOURCE,
    capture_dataset_key,
    lineage_summary,
    record_capture_dataset,
    write_capture_dataset,
    written_dataset,
)
from mlops.monitoring.captures import as_int, iso, parse_time
from mlops.monitoring.champion import list_datasets, training_upload
from mlops.monitoring.retraining import choose_retrain_data
from mlops.monitoring.services import MONITOR_ACTOR, MonitorServices, get_monitor_state
from mlops.registry.keys import monitor_key
from mlops.registry.tables import ABSENT, Condition, ConditionFailedError, Update
from mlops.registry.versions import Registry
from mlops.spec.model import ModelSpec


def latest_dataset(registry: Registry, model: str) -> dict[str, Any] | None:
    """The newest recorded dataset version of ``model`` as a training ``upload`` (or None).

    A retrain does not simply take it: :func:`mlops.monitoring.retraining.choose_retrain_data` decides.
    """

    datasets = [d for d in list_datasets(registry, model) if d.bucket and d.version_id]
    if not datasets:
        return None
    return training_upload(max(datasets, key=lambda d: d.uploaded_at or ""), model)


def retrain_execution_name(model: str, moment: datetime) -> str:
    """``<model>-retrain-<timestamp>``: unique, and listed with the model's runs (``<model>-`` prefix)."""
    return f"{model[:50]}-retrain-{moment.astimezone(UTC):%Y%m%dT%H%M%S%f}"[:80]


def cooldown_until(state: Mapping[str, Any], cooldown_hours: float) -> datetime | None:
    """When the cooldown after the last retraining ends (None: no retraining yet)."""
    last = state.get("last_retrain_at")
    if not last:
        return None
    return parse_time(str(last)) + timedelta(hours=cooldown_hours)


# What a claim writes on the monitor item, and a released claim removes.
_CLAIM_FIELDS = ("last_retrain_run", "last_retrain_execution", "last_retrain_upload", "last_retrain_build")


def _release(registry: Registry, model: str, previous: Any) -> Update:
    """Undo a claim whole: the cooldown (back to ``previous``) and this run's marks."""
    return Update(
        registry.table,
        monitor_key(model),
        set={"last_retrain_at": previous} if previous else {},
        remove=_CLAIM_FIELDS + (() if previous else ("last_retrain_at",)),
    )


def maybe_retrain(
    services: MonitorServices,
    model: str,
    *,
    now: datetime,
    cooldown_hours: float,
    run: Mapping[str, Any],
    request_id: str | None = None,
    spec: ModelSpec | None = None,
) -> dict[str, Any]:
    """Start retraining when it can change something, at most once per cooldown.

    What it trains on is :func:`mlops.monitoring.retraining.choose_retrain_data`'s choice: the newest dataset
    version newer than the champion's that nothing was trained on, else a new dataset built from
    labelled captures (written under ``datasets/<model>/`` and recorded with its lineage). With
    neither, nothing starts and no version number is spent: ``monitor.retrain_skipped`` says why.

    The claim is a conditional write on the model's monitor item (``last_retrain_at`` must still
    be what this run read); of two concurrent runs only one can win it. For a newer dataset the
    claim commits with the audit event ``monitor.retrain_started``; for a built dataset the claim
    comes first (so no second run writes one), then the object, its record, the execution (named
    as the upload's own run, so the bucket's event for the object cannot start a second one), and
    the audit event. A run inside the cooldown appends ``monitor.retrain_skipped`` naming when the
    cooldown ends.

    Returns
    -------
    dict
        ``{"action": "started" | "skipped" | "failed", ...}``: the execution name and ``data``
        (what it trains on), or ``reason`` (and ``code``: ``cooldown``, ``no_new_data``,
        ``no_pipeline``) or the error.
    """

    registry = services.registry
    subject = f"model/{model}/retrain"
    evidence = {
        "run_id": run.get("run_id"),
        "version": run.get("version"),
        "drifted_features": list(run.get("drifted_features") or []),
        "report_key": run.get("report_key"),
    }
    for _ in range(3):
        state = get_monitor_state(registry, model)
        if state.get("last_retrain_run") == run.get("run_id"):
            # This run claimed the retraining before (a retried Analyze): make sure it was started.
            if state.get("last_retrain_execution"):
                return _ensure_started(services, model, str(state["last_retrain_execution"]), evidence, state)
            if state.get("last_retrain_build"):
                return _resume_capture_retrain(services, model, state, evidence, request_id=request_id)
        until = cooldown_until(state, cooldown_hours)
        if until is not None and now < until:
            registry.audit.append(
                model,
                actor=MONITOR_ACTOR,
                action="monitor.retrain_skipped",
                subject=subject,
                after={**evidence, "reason": "cooldown", "cooldown_until": iso(until)},
                request_id=request_id,
            )
            return {"action": "skipped", "reason": "cooldown", "cooldown_until": iso(until)}
        arn = services.settings.training_state_machine_arn
        if not arn or services.sfn is None:
            reason = "no training pipeline configured"
            registry.audit.append(
                model,
                actor=MONITOR_ACTOR,
                action="monitor.retrain_skipped",
                subject=subject,
                after={**evidence, "reason": reason, "code": "no_pipeline"},
                request_id=request_id,
            )
            return {"action": "skipped", "reason": reason, "code": "no_pipeline"}
        choice = choose_retrain_data(
            services, model, champion_version=as_int(run.get("version")), state=state, now=now, spec=spec
        )
        if choice.kind is None:
            registry.audit.append(
                model,
                actor=MONITOR_ACTOR,
                action="monitor.retrain_skipped",
                subject=subject,
                after={**evidence, "reason": choice.reason, "code": "no_new_data"},
                request_id=request_id,
            )
            return {"action": "skipped", "reason": choice.reason, "code": "no_new_data"}
        previous = state.get("last_retrain_at")
        condition = Condition(equals={"last_retrain_at": previous if previous else ABSENT})
        data = choice.summary()
        if choice.kind == CAPTURES_SOURCE and choice.build is not None:
            build = choice.build
            key = capture_dataset_key(model, now, build.sha256)
            claim = Update(
                registry.table,
                monitor_key(model),
                set={
                    "last_retrain_at": iso(now),
                    "last_retrain_run": run.get("run_id"),
                    "last_retrain_build": {"key": key, "sha256": build.sha256, "lineage": build.lineage},
                },
                remove=("last_retrain_execution", "last_retrain_upload"),
                condition=condition,
            )
            try:
                registry.store.write(claim)
            except ConditionFailedError:
                continue  # another run claimed it in between: read again (it is now in its cooldown)
            return _start_capture_retrain(
                services,
                model,
                key,
                build.body,
                build.sha256,
                build.lineage,
                {**evidence, "data": data},
                previous,
                request_id,
            )
        assert choice.dataset is not None
        upload = training_upload(choice.dataset, model)
        name = retrain_execution_name(model, now)
        claim = Update(
            registry.table,
            monitor_key(model),
            set={
                "last_retrain_at": iso(now),
                "last_retrain_run": run.get("run_id"),
                "last_retrain_execution": name,
                "last_retrain_upload": upload,
            },
            remove=("last_retrain_build",),
            condition=condition,
        )
        try:
            registry.audit.append(
                model,
                actor=MONITOR_ACTOR,
                action="monitor.retrain_started",
                subject=subject,
                after={
                    **evidence,
                    "execution_name": name,
                    "dataset": upload,
                    "data": data,
                    "cooldown_hours": cooldown_hours,
                },
                request_id=request_id,
                with_ops=[claim],
            )
        except ConditionFailedError:
            continue  # another run claimed it in between: read again (it is now in its cooldown)
        try:
            response = services.sfn.start_execution(
                stateMachineArn=arn, name=name, input=_retrain_input(upload, {**evidence, "data": data})
            )
        except Exception as exc:
            return _retrain_failed(registry, model, evidence, previous, request_id, exc, execution_name=name)
        return {"action": "started", "execution_name": name, "execution_arn": response["executionArn"], "data": data}
    return {"action": "skipped", "reason": "concurrent runs kept claiming the retraining"}


def _retrain_failed(
    registry: Registry,
    model: str,
    evidence: Mapping[str, Any],
    previous: Any,
    request_id: str | None,
    exc: Exception,
    **where: Any,
) -> dict[str, Any]:
    """Audit a retrain that could not start and release its claim (the cooldown and the run's mark)."""
    registry.audit.append(
        model,
        actor=MONITOR_ACTOR,
        action="monitor.retrain_failed",
        subject=f"model/{model}/retrain",
        after={**evidence, **where, "error": f"{type(exc).__name__}: {exc}"[:1000]},
        request_id=request_id,
        with_ops=[_release(registry, model, previous)],
    )
    return {"action": "failed", "error": str(exc)[:500], **where}


def _retrain_input(upload: Mapping[str, Any], evidence: Mapping[str, Any]) -> str:
    return json.dumps({"upload": upload, "trigger": {"kind": "drift", **evidence}}, default=str)


def _training_execution_arn(services: MonitorServices, name: str) -> str:
    arn = str(services.settings.training_state_machine_arn)
    return arn.replace(":stateMachine:", ":execution:", 1) + f":{name}"


def _already_exists(exc: Exception) -> bool:
    return "ExecutionAlreadyExists" in type(exc).__name__ or "ExecutionAlreadyExists" in str(exc)


def _start_capture_retrain(
    services: MonitorServices,
    model: str,
    key: str,
    body: bytes,
    sha256: str,
    lineage: Mapping[str, Any],
    evidence: Mapping[str, Any],
    previous: Any,
    request_id: str | None,
    *,
    version_id: str | None = None,
) -> dict[str, Any]:
    """Write the claimed dataset (unless ``version_id`` says it is written), record it, start its run, audit.

    The execution is named as the object's own upload run (:func:`mlops.data.trigger.execution_name`):
    whichever starts first, this call or the bucket's event, the other is refused by name, so the
    dataset trains exactly once.
    """

    registry = services.registry
    subject = f"model/{model}/retrain"
    name = None
    try:
        if version_id is None:
            version_id = write_capture_dataset(services, key, body, sha256)
        dataset = record_capture_dataset(services, model, key, version_id, body, lineage)
        upload = training_upload(dataset, model)
        name = execution_name(services.bucket, key, version_id, model)
        try:
            response = services.sfn.start_execution(
                stateMachineArn=services.settings.training_state_machine_arn,
                name=name,
                input=_retrain_input(upload, evidence),
            )
            execution_arn = str(response["executionArn"])
        except Exception as exc:
            if not _already_exists(exc):
                raise
            execution_arn = _training_execution_arn(services, name)  # the bucket's event started it first
    except Exception as exc:
        return _retrain_failed(
            registry, model, evidence, previous, request_id, exc, dataset_key=key, execution_name=name
        )
    data = {**(evidence.get("data") or {}), "key": key, "version_id": version_id}
    registry.audit.append(
        model,
        actor=MONITOR_ACTOR,
        action="monitor.retrain_started",
        subject=subject,
        after={
            **evidence,
            "execution_name": name,
            "dataset": upload,
            "data": data,
            "lineage": lineage_summary(lineage),
        },
        request_id=request_id,
        with_ops=[
            Update(
                registry.table,
                monitor_key(model),
                set={"last_retrain_execution": name, "last_retrain_upload": upload},
                remove=("last_retrain_build",),
            )
        ],
    )
    return {"action": "started", "execution_name": name, "execution_arn": execution_arn, "data": data}


def _resume_capture_retrain(
    services: MonitorServices,
    model: str,
    state: Mapping[str, Any],
    evidence: Mapping[str, Any],
    *,
    request_id: str | None,
) -> dict[str, Any]:
    """A retried Analyze whose first attempt claimed a built dataset but did not finish starting it.

    The object written already (same sha256) is recorded and started by its name; a claim that
    died before writing is released (the next drifted run builds again).
    """

    build = state["last_retrain_build"]
    key, sha256 = str(build["key"]), str(build["sha256"])
    previous = None  # the cooldown this claim replaced is unknown now: a release ends it
    written = written_dataset(services, key, sha256)
    if written is None:
        services.registry.audit.append(
            model,
            actor=MONITOR_ACTOR,
            action="monitor.retrain_failed",
            subject=f"model/{model}/retrain",
            after={**evidence, "dataset_key": key, "error": "the run stopped before writing its dataset"},
            request_id=request_id,
            with_ops=[_release(services.registry, model, previous)],
        )
        return {"action": "failed", "error": "the run stopped before writing its dataset", "dataset_key": key}
    version_id, body = written
    result = _start_capture_retrain(
        services,
        model,
        key,
        body,
        sha256,
        dict(build.get("lineage") or {}),
        {**evidence, "data": {"source": CAPTURES_SOURCE, "sha256": sha256}},
        previous,
        request_id,
        version_id=version_id,
    )
    return {**result, "repeat": True}


def _ensure_started(
    services: MonitorServices,
    model: str,
    name: str,
    evidence: Mapping[str, Any],
    state: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Start the claimed execution ``name`` if it does not exist yet (StartExecution by name is idempotent).

    A retried Analyze whose first attempt claimed the retraining and then failed before (or after)
    starting it lands here: an execution of that name already running or done means started. It
    trains on the dataset the claim names (``last_retrain_upload``).
    """
    arn = services.settings.training_state_machine_arn
    upload = (state or {}).get("last_retrain_upload") or latest_dataset(services.registry, model)
    if services.sfn is None or not arn or upload is None:
        return {"action": "started", "execution_name": name, "repeat": True}
    try:
        response = services.sfn.start_execution(stateMachineArn=arn, name=name, input=_retrain_input(upload, evidence))
    except Exception as exc:
        if _already_exists(exc):
            return {"action": "started", "execution_name": name, "repeat": True}
        return {"action": "failed", "error": str(exc)[:500], "execution_name": name}
    return {"action": "started", "execution_name": name, "execution_arn": response["executionArn"], "repeat": True}
