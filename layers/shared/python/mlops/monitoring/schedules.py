"""Per-model monitor schedules: EventBridge Scheduler schedules created, updated or deleted from the spec."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import boto3
from botocore.exceptions import ClientError

from mlops.errors import InputError, NotFoundError
from mlops.registry.specs import SpecStore
from mlops.registry.versions import Registry
from mlops.spec.model import ModelSpec

_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")


_UNITS = {"minute": 60, "hour": 3600, "day": 86400}


def schedule_input(model: str) -> dict[str, str]:
    """What a scheduled execution of the monitor state machine receives."""
    return {"model": model, "trigger": "schedule"}


def _not_found(exc: Exception) -> bool:
    code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
    return code in ("ResourceNotFoundException", "NotFoundException")


def sync_schedule(
    scheduler: Any, group: str, model: str, spec: ModelSpec, target_arn: str, role_arn: str
) -> dict[str, Any]:
    """Make the model's schedule match its spec: create, update, leave alone or delete it.

    Parameters
    ----------
    scheduler
        A boto3 ``scheduler`` client.
    group
        The schedule group (:func:`schedule_group_name`); it must exist (the stack creates it).
    model, spec
        The model and the spec whose ``monitoring`` section decides (``enabled``, ``schedule``).
    target_arn, role_arn
        The monitor state machine, and the role Scheduler assumes to start it.

    Returns
    -------
    dict
        ``{"model", "group", "action", "expression"}`` with ``action`` one of ``created``,
        ``updated``, ``unchanged``, ``deleted``, ``absent``.

    Examples
    --------
    >>> sync_schedule(boto3.client("scheduler"), "mlops-dev-monitoring", "churn", spec,
    ...               machine_arn, role_arn)["action"]  # doctest: +SKIP
    'created'
    """

    monitoring = spec.monitoring
    try:
        current: dict[str, Any] | None = scheduler.get_schedule(Name=model, GroupName=group)
    except ClientError as exc:
        if not _not_found(exc):
            raise
        current = None
    result: dict[str, Any] = {"model": model, "group": group, "expression": monitoring.schedule}
    if not monitoring.enabled:
        if current is None:
            return {**result, "action": "absent"}
        try:
            scheduler.delete_schedule(Name=model, GroupName=group)
        except ClientError as exc:
            if not _not_found(exc):
                raise
        return {**result, "action": "deleted"}
    target = {"Arn": target_arn, "RoleArn": role_arn, "Input": json.dumps(schedule_input(model), sort_keys=True)}
    wanted: dict[str, Any] = {
        "Name": model,
        "GroupName": group,
        "ScheduleExpression": monitoring.schedule,
        "ScheduleExpressionTimezone": "UTC",
        "FlexibleTimeWindow": {"Mode": "OFF"},
        "Target": target,
        "State": "ENABLED",
        "Description": f"mlops drift check of {model} ({monitoring.schedule})",
    }
    if current is None:
        scheduler.create_schedule(**wanted)
        return {**result, "action": "created"}
    have = current.get("Target") or {}
    same = (
        current.get("ScheduleExpression") == monitoring.schedule
        and current.get("State") == "ENABLED"
        and have.get("Arn") == target_arn
        and have.get("RoleArn") == role_arn
        and _same_json(have.get("Input"), target["Input"])
    )
    if same:
        return {**result, "action": "unchanged"}
    scheduler.update_schedule(**wanted)
    return {**result, "action": "updated"}


def set_schedule_state(scheduler: Any, group: str, model: str, *, enabled: bool) -> dict[str, Any]:
    """Pause (``enabled=False``) or resume a model's schedule, keeping its expression and target.

    What ``mlops models archive`` and ``unarchive`` do to the drift checks: an archived model's
    schedule stays, disabled, so unarchiving needs nothing the deployment alone knows.

    Returns
    -------
    dict
        ``{"model", "group", "action"}`` with ``action`` one of ``disabled``, ``enabled``,
        ``unchanged`` or ``absent`` (the model has no schedule).
    """

    result: dict[str, Any] = {"model": model, "group": group}
    try:
        current = scheduler.get_schedule(Name=model, GroupName=group)
    except ClientError as exc:
        if not _not_found(exc):
            raise
        return {**result, "action": "absent"}
    state = "ENABLED" if enabled else "DISABLED"
    if current.get("State") == state:
        return {**result, "action": "unchanged"}
    keep = ("ScheduleExpression", "ScheduleExpressionTimezone", "FlexibleTimeWindow", "Target", "Description")
    scheduler.update_schedule(
        Name=model, GroupName=group, State=state, **{k: current[k] for k in keep if current.get(k) is not None}
    )
    return {**result, "action": state.lower()}


def _same_json(a: Any, b: Any) -> bool:
    try:
        return bool(json.loads(a or "null") == json.loads(b or "null"))
    except ValueError:
        return False


@dataclass(frozen=True)
class ScheduleTarget:
    """Where schedules go and what they start (``MONITOR_*`` variables of the functions that sync)."""

    group: str
    state_machine_arn: str
    role_arn: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ScheduleTarget | None:
        """None when the variables are not set (monitoring not deployed with this function)."""
        env = os.environ if environ is None else environ
        values = [env.get(n, "") for n in ("MONITOR_SCHEDULE_GROUP", "MONITOR_STATE_MACHINE_ARN")]
        role = env.get("MONITOR_SCHEDULER_ROLE_ARN", "")
        if not all(values) or not role:
            return None
        return cls(group=values[0], state_machine_arn=values[1], role_arn=role)


def monitoring_spec(registry: Registry, model: str, spec_revision: int | None) -> ModelSpec:
    """The champion's spec (its features) with the latest spec revision's ``monitoring`` section.

    Monitoring settings apply from the next run after ``mlops spec put``, without retraining.
    """

    store = SpecStore(registry)
    latest = store.get(model).spec()
    if spec_revision is None:
        return latest
    try:
        champion_spec = store.get(model, spec_revision).spec()
    except NotFoundError:
        return latest
    return champion_spec.model_copy(update={"monitoring": latest.monitoring})


def sync_champion_schedule(registry: Registry, model: str, *, scheduler: Any, target: ScheduleTarget) -> dict[str, Any]:
    """:func:`sync_schedule` for a model's champion (the deployment calls this when it sets one).

    An archived model's schedule is kept disabled instead (``mlops models unarchive`` resumes it).
    """
    if registry.get_model(model).archived is not None:
        return set_schedule_state(scheduler, target.group, model, enabled=False)
    champion = registry.get_by_alias(model, "champion")
    spec = monitoring_spec(registry, model, champion.spec_revision)
    return sync_schedule(scheduler, target.group, model, spec, target.state_machine_arn, target.role_arn)


def sync_schedule_from_env(registry: Registry, model: str) -> dict[str, Any]:
    """What the deployment functions call after a champion change; never raises.

    Returns ``{"action": "not_configured"}`` without the ``MONITOR_*`` variables, and
    ``{"action": "failed", "error": ...}`` when Scheduler refused (the next monitor run heals it).
    """
    target = ScheduleTarget.from_env()
    if target is None:
        return {"model": model, "action": "not_configured"}
    try:
        return sync_champion_schedule(registry, model, scheduler=boto3.client("scheduler"), target=target)
    except Exception as exc:  # a schedule problem must not undo a deployment
        return {"model": model, "action": "failed", "error": f"{type(exc).__name__}: {exc}"}


def schedule_period(expression: str) -> timedelta:
    """The interval of a ``rate(...)`` expression; for ``cron(...)``, an hour or a day.

    A cron expression whose hour field is ``*`` or a step (``*/2``) counts as hourly; every other
    cron expression as daily.
    """
    match = _RATE.match(expression.strip())
    if match:
        value, unit = int(match.group(1)), match.group(2).rstrip("s")
        return timedelta(seconds=value * _UNITS[unit])
    if expression.startswith("cron(") and expression.endswith(")"):
        fields = expression[5:-1].split()
        if len(fields) >= 2 and (fields[1] == "*" or "/" in fields[1]):
            return timedelta(hours=1)
        return timedelta(days=1)
    raise InputError(f"{expression!r} is not a schedule expression (rate(...) or cron(...))")
