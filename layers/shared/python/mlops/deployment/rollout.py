"""Rollouts: which approved version serves, how it got there, and how to undo it.

The aliases live on the model (:meth:`mlops.registry.versions.Registry.set_alias`, conditional and
audited): ``champion`` answers requests; ``challenger`` is a canary (answers ``share`` of the
requests) or a shadow (gets copies, never answers). How the challenger serves is this module's
rollout item, ``MODEL#<name>`` / ``ROLLOUT#current``, which the inference function reads:

=============  ==========================================================================
attribute      meaning
=============  ==========================================================================
``mode``       ``single`` (champion only), ``canary`` or ``shadow``
``champion``   the champion when the rollout item was written
``challenger`` the challenger (None in ``single``)
``share``      fraction of requests the canary answers (0 for shadow and single)
``history``    every champion change, oldest first: ``{"version", "at", "by", "how"}``
=============  ==========================================================================

Every change writes the rollout item in one transaction with its audit event, and appends to the
version's ``deployments`` history.

Canary health: each canary gets two CloudWatch alarms (:func:`canary_alarms`) on the metrics the
inference function emits per model version (namespace ``MLOps``, dimensions ``model`` and
``version``): ``PredictionErrors`` (Sum) and ``PredictionLatency`` (p99, ms). At the end of the
bake, an alarm in ``ALARM`` rolls the canary back; ``OK`` or ``INSUFFICIENT_DATA`` (no traffic,
no errors) promotes it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal, Protocol

from mlops.contracts.names import alarm_prefix
from mlops.deployment.approval import (
    PIPELINE_ACTOR,
    approval_commands,
    console_url,
    expire_approval,
    request_approval,
    skip_approval,
    timeout_seconds,
)
from mlops.errors import ConflictError, InputError, NotFoundError, TransitionError
from mlops.registry.rollouts import Rollout, get_rollout, rollout_key
from mlops.registry.specs import SpecStore
from mlops.registry.tables import ABSENT, Condition, ConditionFailedError, Put
from mlops.registry.versions import ModelVersion, Registry, Status
from mlops.settings import Platform, service_name
from mlops.spec.model import ModelSpec
from mlops.storage import read_uri

Strategy = Literal["all_at_once", "canary", "shadow"]
STRATEGIES: tuple[str, ...] = ("all_at_once", "canary", "shadow")
METRIC_NAMESPACE = "MLOps"
ERROR_METRIC = "PredictionErrors"
LATENCY_METRIC = "PredictionLatency"


def _serve_champion_alone(
    registry: Registry,
    model: str,
    *,
    actor: str,
    action: str,
    execution: str | None,
    champion_change: Mapping[str, Any] | None = None,
    request_id: str | None = None,
) -> Rollout:
    """Record that the champion answers alone again (no canary, no shadow)."""
    return _write_rollout(
        registry,
        model,
        mode="single",
        challenger=None,
        share=0.0,
        actor=actor,
        action=action,
        execution=execution,
        champion_change=champion_change,
        request_id=request_id,
    )


def _write_rollout(
    registry: Registry,
    model: str,
    *,
    mode: str,
    challenger: int | None,
    share: float,
    actor: str,
    action: str,
    execution: str | None,
    champion_change: Mapping[str, Any] | None = None,
    request_id: str | None = None,
) -> Rollout:
    """Write the rollout item (conditional on the revision read) with its audit event."""
    for _attempt in range(5):
        current = get_rollout(registry, model)
        champion = registry.get_model(model).champion
        now = registry.clock()
        history = list(current.history)
        if champion_change is not None:
            history.append({"at": now, "by": actor, **dict(champion_change)})
        after = Rollout(
            model=model,
            mode=mode,
            champion=champion,
            challenger=challenger,
            share=share,
            execution=execution,
            updated_at=now,
            updated_by=actor,
            revision=current.revision + 1,
            history=history[-100:],
        )
        item = {k: v for k, v in asdict(after).items() if v is not None}
        item.update(rollout_key(model))
        item["kind"] = "rollout"
        guard = Condition(equals={"revision": current.revision if current.revision else ABSENT})
        summary = {k: v for k, v in after.to_dict().items() if k != "history"}
        try:
            registry.audit.append(
                model,
                actor=actor,
                action=action,
                subject=f"model/{model}/rollout",
                before={k: v for k, v in current.to_dict().items() if k != "history"},
                after=summary,
                request_id=request_id,
                with_ops=[Put(registry.table, item, guard)],
            )
        except ConditionFailedError:
            continue
        return after
    raise ConflictError(f"model {model!r}: the rollout changed repeatedly while this request ran; retry")


def _move(
    registry: Registry, model: str, alias: str, version: int | None, *, actor: str, request_id: str | None
) -> bool:
    """Point an alias; False if it already pointed there (a re-run), ConflictError on a race."""
    if registry.get_model(model).alias(alias) == version:
        return False
    registry.set_alias(model, alias, version, actor=actor, request_id=request_id)
    return True


# ---------------------------------------------------------------------------------------------- plan
def _metric_table(candidate: Mapping[str, float], champion: Mapping[str, float] | None) -> list[dict[str, Any]]:
    rows = []
    for name in sorted(candidate):
        value = candidate[name]
        base = (champion or {}).get(name)
        rows.append(
            {
                "metric": name,
                "candidate": value,
                "champion": base,
                "delta": None if base is None else round(value - base, 6),
            }
        )
    return rows


def candidate_summary(
    version: ModelVersion,
    *,
    evaluation: Mapping[str, Any] | None,
    validation: Mapping[str, Any] | None,
    uploader: str | None,
) -> dict[str, Any]:
    """What approvers review: metrics against the champion (same holdout) and the data checks.

    Parameters
    ----------
    evaluation
        The training run's evaluation document (``evaluation_uri``), with ``champion.metrics``.
    validation
        The dataset's validation report (``validation_report``).
    """
    champion = (evaluation or {}).get("champion") or {}
    dataset = version.dataset_version or {}
    checks = list((validation or {}).get("checks") or [])

    def named(check: Mapping[str, Any]) -> str:
        return str(check.get("check")) + (f"[{check['column']}]" if check.get("column") else "")

    failed = [named(c) for c in checks if c.get("status") == "failed"]
    warned = [named(c) for c in checks if c.get("status") == "warning"]
    return {
        "model": version.model,
        "version": version.version,
        "status": version.status.value,
        # Side by side on the same rows: the holdout less any the champion trained on.
        "metrics": _metric_table(champion.get("candidate_metrics") or version.metrics, champion.get("metrics")),
        "champion_version": champion.get("version"),
        "validation": {
            "valid": (validation or {}).get("valid"),
            "rows": (validation or {}).get("rows", dataset.get("rows")),
            "checks": len(checks),
            "failed": failed[:20],
            "warnings": warned[:20],
            "report": version.tags.get("validation_report"),
        },
        "dataset": {
            "key": dataset.get("key"),
            "version_id": dataset.get("version_id"),
            "sha256": dataset.get("sha256"),
            "uploaded_by": uploader,
        },
        "lineage": {
            "spec_revision": version.spec_revision,
            "code_revision": version.code_revision,
            "artifact_sha256": version.artifact_sha256,
            "training_execution": version.pipeline_execution,
            "model_card": f"mlops models card {version.model} {version.version}",
        },
    }


def summary_text(summary: Mapping[str, Any]) -> str:
    """The candidate summary as a few lines of text (notification body, CLI)."""
    lines = [f"Model {summary['model']} version {summary['version']} ({summary['status']})"]
    champion = summary.get("champion_version")
    lines.append("Metrics (candidate vs champion" + (f" v{champion}" if champion else ": none yet") + "):")
    for row in summary.get("metrics", []):
        base = "-" if row["champion"] is None else f"{row['champion']:.4g}"
        delta = "" if row["delta"] is None else f" ({row['delta']:+.4g})"
        lines.append(f"  {row['metric']:<14} {row['candidate']:.4g} vs {base}{delta}")
    validation = summary.get("validation") or {}
    lines.append(
        f"Data checks: {'passed' if validation.get('valid') else 'see report'}, {validation.get('rows')} rows, "
        f"{validation.get('checks')} checks, failed: {', '.join(validation.get('failed') or []) or 'none'}"
    )
    dataset = summary.get("dataset") or {}
    lines.append(
        f"Dataset {dataset.get('key')} version {dataset.get('version_id')} uploaded by {dataset.get('uploaded_by')}"
    )
    return "\n".join(lines)


def plan_rollout(
    registry: Registry,
    model: str,
    version: int,
    *,
    environment: str,
    execution: str,
    strategy: str | None = None,
    read_json: Callable[[str], Any] | None = None,
    four_eyes_default: bool = True,
) -> dict[str, Any]:
    """Decide what the deployment pipeline does with ``version``: ask, skip, or deploy directly.

    ``approval`` is ``required`` (a PENDING_APPROVAL version whose spec wants approval),
    ``skip`` (approval switched off in the spec) or ``not_needed`` (already APPROVED, or
    ARCHIVED and being restored, e.g. ``mlops deploy`` of an old version).

    Raises
    ------
    TransitionError
        The version is REJECTED: it can never serve; or the model is archived.
    """
    from mlops.deployment.approval import uploader_of

    registry.ensure_active(model)  # an archived model deploys nothing until it is unarchived
    candidate = registry.get_version(model, version)
    if candidate.status == Status.REJECTED:
        reason = next((c.get("reason") for c in reversed(candidate.status_history) if c.get("reason")), None)
        raise TransitionError(
            f"model {model!r} version {version} is REJECTED"
            + (f" ({reason})" if reason else "")
            + "; it can never serve"
        )
    spec = _spec_of(registry, candidate)
    chosen = strategy or spec.deployment.strategy
    if chosen not in STRATEGIES:
        raise InputError(f"strategy {chosen!r}: must be one of {', '.join(STRATEGIES)}")
    if candidate.status == Status.PENDING_APPROVAL:
        approval = "required" if spec.approval.required else "skip"
    else:
        approval = "not_needed"

    def load(uri: str | None) -> Any:
        if not uri or read_json is None:
            return None
        try:
            return read_json(uri)
        except Exception:  # a missing report must not block the decision; the summary says so
            return None

    evaluation = load(candidate.tags.get("evaluation_uri"))
    summary = candidate_summary(
        candidate,
        evaluation=evaluation,
        validation=load(candidate.tags.get("validation_report")),
        uploader=uploader_of(registry, candidate),
    )
    bake_seconds = int(spec.deployment.bake_minutes) * 60
    return {
        "model": model,
        "version": int(version),
        "status": candidate.status.value,
        "approval": approval,
        "approval_timeout_seconds": timeout_seconds(spec.approval.timeout_hours),
        "four_eyes": bool(spec.approval.four_eyes or four_eyes_default),
        "strategy": chosen,
        "canary_percent": int(spec.deployment.canary_percent),
        "bake_seconds": bake_seconds,
        "candidate": summary,
        "summary_text": summary_text(summary),
        "commands": approval_commands(model, int(version), environment),
        "console_url": console_url(execution),
    }


def _spec_of(registry: Registry, version: ModelVersion) -> ModelSpec:
    store = SpecStore(registry)
    try:
        return store.get(version.model, version.spec_revision).spec()
    except NotFoundError:
        return store.get(version.model).spec()


# ---------------------------------------------------------------------------------------------- alarms
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


# ---------------------------------------------------------------------------------------------- deploy
def deploy_version(
    registry: Registry,
    model: str,
    version: int,
    strategy: str,
    *,
    actor: str,
    canary_percent: int = 10,
    execution: str | None = None,
    request_id: str | None = None,
) -> dict[str, Any]:
    """Move the aliases for ``strategy``; the version must be APPROVED (ARCHIVED is restored).

    ``all_at_once`` makes it champion (clearing it as challenger); ``canary`` and ``shadow`` make
    it challenger. A canary with no champion to compare with is deployed all at once.

    Returns
    -------
    dict
        ``strategy`` (as applied), ``bake`` (a canary waits, then is checked), ``champion``,
        ``challenger``, ``previous_champion``.
    """
    if strategy not in STRATEGIES:
        raise InputError(f"strategy {strategy!r}: must be one of {', '.join(STRATEGIES)}")
    target = registry.get_version(model, version)
    done = _own_entry(target.deployments, execution, finished=False)
    if done is not None:  # a retried step (its answer was lost): the same answer, nothing moved twice
        return _deployed(registry, model, version, strategy, done)
    registry.ensure_active(model)  # archived while it waited for approval: nothing moves
    if target.status == Status.ARCHIVED:
        registry.approve(model, version, actor=actor, reason="restored for deployment", request_id=request_id)
    elif target.status != Status.APPROVED:
        raise TransitionError(
            f"model {model!r} version {version} is {target.status.value}; only APPROVED versions are deployed"
        )
    summary = registry.get_model(model)
    previous = summary.champion
    rollout = get_rollout(registry, model)
    # a retry after the aliases moved but before the history was written: this execution's change
    # is the rollout's last one, and the champion it replaced is recorded there
    redo = bool(execution) and rollout.execution == execution and previous == version and bool(rollout.history)
    if redo and rollout.history[-1].get("version") == version:
        previous = rollout.history[-1].get("from")
    applied = strategy
    note = None
    if strategy == "canary" and (previous is None or previous == version):
        applied, note = "all_at_once", "no other champion to compare a canary with: deployed all at once"
    if applied == "all_at_once":
        if summary.challenger == version:
            _move(registry, model, "challenger", None, actor=actor, request_id=request_id)
        _move(registry, model, "champion", version, actor=actor, request_id=request_id)
        if not (redo and rollout.mode == "single"):
            _serve_champion_alone(
                registry,
                model,
                actor=actor,
                action="rollout.all_at_once",
                execution=execution,
                champion_change={"version": version, "from": previous, "how": "all_at_once"},
                request_id=request_id,
            )
        share = 1.0
    else:
        if previous == version:
            raise ConflictError(f"model {model!r} version {version} is already the champion; nothing to {applied}")
        _move(registry, model, "challenger", version, actor=actor, request_id=request_id)
        share = canary_percent / 100 if applied == "canary" else 0.0
        _write_rollout(
            registry,
            model,
            mode=applied,
            challenger=version,
            share=share,
            actor=actor,
            action=f"rollout.{applied}",
            execution=execution,
            request_id=request_id,
        )
    entry = {"strategy": applied, "share": share, "previous_champion": previous, "execution": execution}
    if note:
        entry["note"] = note
    registry.append_history(
        model, version, "deployments", entry, actor=actor, action=f"deployment.{applied}", request_id=request_id
    )
    return _deployed(registry, model, version, strategy, entry)


def _own_entry(entries: list[dict[str, Any]], execution: str | None, *, finished: bool) -> dict[str, Any] | None:
    """The ``deployments`` entry that ``execution`` already wrote: its deploy (``finished=False``)
    or its canary's end (``finished=True``). The idempotency key of a retried deployment step."""
    if not execution:
        return None
    return next(
        (e for e in reversed(entries) if e.get("execution") == execution and ("outcome" in e) == finished), None
    )


def _deployed(registry: Registry, model: str, version: int, requested: str, entry: Mapping[str, Any]) -> dict[str, Any]:
    """The deploy step's answer, from the ``deployments`` entry it wrote."""
    after = registry.get_model(model)
    applied = str(entry["strategy"])
    return {
        "model": model,
        "version": int(version),
        "strategy": applied,
        "requested_strategy": requested,
        "bake": applied == "canary",
        "share": float(entry["share"]),
        "champion": after.champion,
        "challenger": after.challenger,
        "previous_champion": None if entry.get("previous_champion") is None else int(entry["previous_champion"]),
        "note": entry.get("note"),
    }


def finish_canary(
    registry: Registry,
    model: str,
    version: int,
    *,
    healthy: bool,
    reason: str,
    actor: str,
    execution: str | None = None,
    request_id: str | None = None,
) -> dict[str, Any]:
    """End a canary's bake: promote it (champion := challenger) or roll it back (clear, archive).

    If the challenger is no longer ``version`` (someone rolled back or deployed meanwhile), nothing
    changes and the outcome is ``superseded``.
    """
    summary = registry.get_model(model)
    done = _own_entry(registry.get_version(model, version).deployments, execution, finished=True)
    if done is not None:  # a retried step: this execution already promoted or rolled back
        return {
            "model": model,
            "version": int(version),
            "outcome": done["outcome"],
            "reason": done.get("reason"),
            "champion": summary.champion,
            "challenger": summary.challenger,
        }
    if summary.challenger != version:
        return {"model": model, "version": int(version), "outcome": "superseded", "champion": summary.champion}
    previous = summary.champion
    if healthy:
        registry.set_alias(model, "challenger", None, actor=actor, expected=version, request_id=request_id)
        registry.set_alias(model, "champion", version, actor=actor, expected=previous, request_id=request_id)
        _serve_champion_alone(
            registry,
            model,
            actor=actor,
            action="rollout.promoted",
            execution=execution,
            champion_change={"version": version, "from": previous, "how": "canary promoted"},
            request_id=request_id,
        )
        outcome = "promoted"
    else:
        registry.set_alias(model, "challenger", None, actor=actor, expected=version, request_id=request_id)
        _serve_champion_alone(
            registry,
            model,
            actor=actor,
            action="rollout.rolled_back",
            execution=execution,
            request_id=request_id,
        )
        registry.archive(model, version, actor=actor, reason=f"canary rolled back: {reason}", request_id=request_id)
        outcome = "rolled_back"
    registry.append_history(
        model,
        version,
        "deployments",
        {
            "strategy": "canary",
            "outcome": outcome,
            "reason": reason,
            "previous_champion": previous,
            "execution": execution,
        },
        actor=actor,
        action=f"deployment.{outcome}",
        request_id=request_id,
    )
    after = registry.get_model(model)
    return {
        "model": model,
        "version": int(version),
        "outcome": outcome,
        "reason": reason,
        "champion": after.champion,
        "challenger": after.challenger,
    }


def champion_stack(history: list[dict[str, Any]]) -> list[int]:
    """Champions as an undo stack: a rollback pops back to its target, so rolling back twice goes
    two steps back, never forth again."""
    stack: list[int] = []
    for entry in history:
        version = entry.get("version")
        if version is None:
            continue
        if entry.get("how") == "rollback" and int(version) in stack:
            while stack[-1] != int(version):
                stack.pop()
        else:
            stack.append(int(version))
    return stack


def rollback(
    registry: Registry, model: str, *, to: int | None = None, actor: str, request_id: str | None = None
) -> dict[str, Any]:
    """Move the champion back to a previous approved version in one audited alias move.

    Parameters
    ----------
    to
        The version to serve; default: the champion before the current one (rollout history),
        skipping versions that are no longer APPROVED or ARCHIVED.

    Raises
    ------
    NotFoundError
        There is no champion, or no earlier version to go back to.
    TransitionError
        ``to`` is REJECTED or still PENDING_APPROVAL.
    """
    summary = registry.ensure_active(model) or registry.get_model(model)
    current = summary.champion
    if current is None:
        raise NotFoundError(f"model {model!r} has no champion; there is nothing to roll back")
    if to is None:
        earlier = champion_stack(get_rollout(registry, model).history)
        while earlier and earlier[-1] == current:
            earlier.pop()
        to = next(
            (
                v
                for v in reversed(earlier)
                if v != current and registry.get_version(model, v).status in (Status.APPROVED, Status.ARCHIVED)
            ),
            None,
        )
        if to is None:
            raise NotFoundError(
                f"model {model!r}: no earlier champion to roll back to (champion is version {current}); "
                "name one with --to V"
            )
    if to == current:
        raise ConflictError(f"model {model!r}: version {to} is already the champion; nothing was changed")
    target = registry.get_version(model, to)
    if target.status == Status.ARCHIVED:
        registry.approve(
            model, to, actor=actor, reason=f"restored by rollback from version {current}", request_id=request_id
        )
    elif target.status != Status.APPROVED:
        raise TransitionError(
            f"model {model!r} version {to} is {target.status.value}; a rollback goes to an approved version only"
        )
    if summary.challenger is not None:
        registry.set_alias(model, "challenger", None, actor=actor, expected=summary.challenger, request_id=request_id)
    registry.set_alias(model, "champion", to, actor=actor, expected=current, request_id=request_id)
    _serve_champion_alone(
        registry,
        model,
        actor=actor,
        action="rollout.rollback",
        execution=None,
        champion_change={"version": to, "from": current, "how": "rollback"},
        request_id=request_id,
    )
    registry.append_history(
        model,
        to,
        "deployments",
        {"strategy": "rollback", "previous_champion": current, "cleared_challenger": summary.challenger},
        actor=actor,
        action="deployment.rollback",
        request_id=request_id,
    )
    return {"model": model, "champion": to, "previous_champion": current, "cleared_challenger": summary.challenger}


def deployment_history(registry: Registry, model: str) -> dict[str, Any]:
    """Who approved what, when, and every rollout: for ``mlops models show`` and ``mlops deployments``."""
    summary = registry.get_model(model)
    rollout = get_rollout(registry, model)
    approvals: list[dict[str, Any]] = []
    deployments: list[dict[str, Any]] = []
    for version in registry.iter_versions(model):
        approvals += [{"version": version.version, **a} for a in version.approvals]
        deployments += [{"version": version.version, **d} for d in version.deployments]
    return {
        "model": model,
        "champion": summary.champion,
        "challenger": summary.challenger,
        "rollout": {k: v for k, v in rollout.to_dict().items() if k != "history"},
        "champion_history": rollout.history,
        "approvals": sorted(approvals, key=lambda a: str(a.get("at"))),
        "deployments": sorted(deployments, key=lambda d: str(d.get("at"))),
    }


def execution_name(model: str, version: int, suffix: str) -> str:
    """A deployment execution's name: ``<model>-v<version>-<suffix>`` within Step Functions' 80 characters."""
    base = f"{model}-v{version}"
    return f"{base}-{suffix}"[:80] if suffix else base


# ---------------------------------------------------------------------------------------------- steps
@dataclass(frozen=True)
class DeploymentServices:
    """The clients and names the deployment steps use (from the function's environment by default)."""

    platform: Platform
    registry: Registry
    s3: Any = None
    sfn: Any = None
    sns: Any = None
    cloudwatch: Any = None
    four_eyes: bool = True

    @classmethod
    def from_env(cls) -> DeploymentServices:
        import boto3

        platform = Platform.from_env()
        registry = Registry.for_platform(boto3.client("dynamodb"), platform)
        return cls(
            platform=platform,
            registry=registry,
            s3=boto3.client("s3"),
            sfn=boto3.client("stepfunctions"),
            sns=boto3.client("sns"),
            cloudwatch=boto3.client("cloudwatch"),
            four_eyes=os.environ.get("APPROVAL_FOUR_EYES", "true").lower() != "false",
        )

    def read_json(self, uri: str) -> Any:
        return json.loads(read_uri(self.s3, uri))


def _actor(event: Mapping[str, Any]) -> str:
    name = event.get("execution_name")
    return f"{PIPELINE_ACTOR}:{name}" if name else PIPELINE_ACTOR


def _sync_monitoring(registry: Registry, model: str) -> dict[str, Any]:
    """The new champion's drift-check schedule (see mlops.monitoring.monitor; never fails the deployment)."""
    from mlops.monitoring.monitor import sync_schedule_from_env

    return sync_schedule_from_env(registry, model)


def _skipped_by(
    registry: Registry, model: str, version: int, *, actor: str, request_id: str | None
) -> dict[str, Any] | None:
    """skip_approval's answer if this execution (``actor`` names it) already skipped the approval."""
    candidate = registry.get_version(model, version)
    if not any(a.get("decision") == "skipped" and a.get("by") == actor for a in candidate.approvals):
        return None
    if candidate.status == Status.PENDING_APPROVAL:  # the step stopped between its two writes
        candidate = registry.approve(
            model, version, actor=actor, reason="approval not required by the model spec", request_id=request_id
        )
    return {"model": model, "version": int(version), "decision": "skipped", "status": candidate.status.value}


def _audit_once(
    registry: Registry,
    model: str,
    action: str,
    record: dict[str, Any],
    *,
    actor: str,
    version: int,
    request_id: str | None,
) -> None:
    """Append ``action`` unless this execution already did (a retried step writes its event once)."""
    chain = model if model and model != "None" else "_platform"
    events, _ = registry.audit.list_events(chain, limit=50)
    if any(e.action == action and e.after == record for e in events):
        return
    subject = f"model/{model}/version/{version}"
    registry.audit.append(chain, actor=actor, action=action, subject=subject, after=record, request_id=request_id)


def deployment_step(
    event: dict[str, Any], *, request_id: str | None = None, services: DeploymentServices | None = None
) -> dict[str, Any]:
    """The deployment pipeline's steps, by ``event["step"]``.

    ``prepare`` (plan), ``skip_approval``, ``expire_approval``, ``deploy``, ``check`` (canary
    alarms), ``finish`` (promote or roll back), ``record_failure``, ``notification_failed``.

    Every step is idempotent per execution: Step Functions retries a step whose answer was lost
    (the function ran, then failed or timed out on return), and the retry finds its own effect
    (the version's ``approvals``/``deployments`` entry or audit event naming this execution) and
    answers the same instead of failing or writing it twice.
    """
    services = services or DeploymentServices.from_env()
    registry = services.registry
    step = event.get("step")
    model, version = str(event.get("model")), int(event.get("version") or 0)
    actor = _actor(event)
    environment = services.platform.environment
    if step == "prepare":
        return plan_rollout(
            registry,
            model,
            version,
            environment=environment,
            execution=str(event.get("execution") or ""),
            strategy=(event.get("input") or {}).get("strategy") or None,
            read_json=services.read_json if services.s3 is not None else None,
            four_eyes_default=services.four_eyes,
        )
    if step == "skip_approval":
        skipped = _skipped_by(registry, model, version, actor=actor, request_id=request_id)
        if skipped is not None:
            return skipped
        return skip_approval(
            registry,
            model,
            version,
            reason="approval not required by the model spec",
            actor=actor,
            request_id=request_id,
        )
    if step == "expire_approval":
        return expire_approval(registry, model, version, actor=actor, request_id=request_id)
    if step == "deploy":
        result = deploy_version(
            registry,
            model,
            version,
            str(event["strategy"]),
            actor=actor,
            canary_percent=int(event.get("canary_percent") or 10),
            execution=event.get("execution"),
            request_id=request_id,
        )
        if result["bake"] and services.cloudwatch is not None:
            result["alarms"] = create_canary_alarms(services.cloudwatch, environment, model, version)
        if result["champion"] == version:
            result["monitoring_schedule"] = _sync_monitoring(registry, model)
        return result
    if step == "check":
        return check_canary(services.cloudwatch, environment, model, version)
    if step == "finish":
        check = event.get("check") or {}
        finished = finish_canary(
            registry,
            model,
            version,
            healthy=bool(check.get("healthy")),
            reason=str(check.get("reason") or ""),
            actor=actor,
            execution=event.get("execution"),
            request_id=request_id,
        )
        if finished.get("champion") == version:
            finished["monitoring_schedule"] = _sync_monitoring(registry, model)
        return finished
    if step == "record_failure":
        error = event.get("error") or {}
        record = {
            "error": error.get("Error"),
            "cause": str(error.get("Cause"))[:2000],
            "execution": event.get("execution"),
            "version": version,
        }
        _audit_once(registry, model, "deployment.failed", record, actor=actor, version=version, request_id=request_id)
        return {"recorded": True, **record}
    if step == "notification_failed":
        # the outcome stands (a deployed model is deployed); that nobody was told is audited
        error = event.get("error") or {}
        record = {
            "event": event.get("event"),
            "error": error.get("Error"),
            "cause": str(error.get("Cause"))[:2000],
            "execution": event.get("execution"),
            "version": version,
        }
        _audit_once(registry, model, "notification.failed", record, actor=actor, version=version, request_id=request_id)
        return {"recorded": True, **record}
    raise InputError(f"step {step!r}: not a deployment pipeline step")


def approval_request_step(
    event: dict[str, Any], *, request_id: str | None = None, services: DeploymentServices | None = None
) -> dict[str, Any]:
    """The waiting task: store its token with the candidate, then notify approvers (SNS)."""
    services = services or DeploymentServices.from_env()
    plan = event["plan"]
    model, version = str(event["model"]), int(event["version"])
    request = request_approval(
        services.registry,
        model,
        version,
        token=str(event["task_token"]),
        execution=event.get("execution"),
        timeout_seconds=int(plan["approval_timeout_seconds"]),
        summary=plan.get("candidate"),
        request_id=request_id,
    )
    message = {
        "event": "approval.requested",
        "model": model,
        "version": version,
        "expires_at": request.expires_at,
        "approve": plan["commands"]["approve"],
        "reject": plan["commands"]["reject"],
        "execution": event.get("execution"),
        "console_url": plan.get("console_url"),
        "summary": plan.get("summary_text"),
        "candidate": plan.get("candidate"),
    }
    topic = services.platform.notifications_topic_arn
    if topic and services.sns is not None:
        services.sns.publish(
            TopicArn=topic,
            Subject=f"MLOps: {model} v{version} awaits approval"[:100],
            Message=json.dumps(message, indent=2, default=str),
        )
    return {"requested": True, "expires_at": request.expires_at}


def approve_from_api(
    model: str,
    version: str | int,
    decision: str,
    *,
    caller: str | None,
    body: Mapping[str, Any] | None,
    request_id: str | None = None,
    services: DeploymentServices | None = None,
) -> dict[str, Any]:
    """An approval API request: the approver is ``caller`` (from the request's credentials).

    ``body`` may hold ``comment`` (approve) or ``reason`` (reject); an ``actor`` or ``approver``
    field in it is refused rather than silently ignored, so nobody believes it was used.
    """
    from mlops.deployment.approval import decide

    if not caller:
        raise InputError("the request carries no IAM identity (the route must use IAM authorization)")
    body = dict(body or {})
    for forbidden in ("actor", "approver", "by", "user"):
        if forbidden in body:
            raise InputError(f"body field {forbidden!r}: the approver is taken from your credentials, not the body")
    try:
        number = int(version)
    except ValueError:
        raise InputError(f"version {version!r}: must be a whole number") from None
    services = services or DeploymentServices.from_env()
    text = body.get("reason") if decision == "reject" else body.get("comment")
    if text is not None and not isinstance(text, str):
        raise InputError("comment/reason: must be text")
    return decide(
        services.registry,
        model,
        number,
        "approve" if decision == "approve" else "reject",
        actor=caller,
        callbacks=services.sfn,
        four_eyes=_four_eyes(services, model, number),
        comment=text,
        request_id=request_id,
    )


def _four_eyes(services: DeploymentServices, model: str, version: int) -> bool:
    """The platform's rule (config ``approval_four_eyes``) is a floor; a spec can only add it."""
    if services.four_eyes:
        return True
    return bool(_spec_of(services.registry, services.registry.get_version(model, version)).approval.four_eyes)


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
        import boto3

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


def render_history(history: dict[str, Any]) -> list[str]:
    """Readable lines of :func:`deployment_history`: serving state, approvals, rollouts."""
    model = history["model"]
    rollout = history["rollout"]
    lines = [
        f"{model}: champion {history['champion'] or '-'}, challenger {history['challenger'] or '-'} "
        f"(mode {rollout['mode']}, share {rollout['share']:.0%})",
        "approvals:",
    ]
    lines += [
        f"  {a.get('at')}  v{a['version']:<5} {a.get('decision'):<10} by {a.get('by')}"
        + (f": {a['comment']}" if a.get("comment") else "")
        for a in history["approvals"]
    ] or ["  (none)"]
    lines.append("rollouts:")
    lines += [
        f"  {d.get('at')}  v{d['version']:<5} {d.get('outcome') or d.get('strategy'):<12} by {d.get('by')}"
        + (f" (was v{d['previous_champion']})" if d.get("previous_champion") else "")
        + (f": {d['reason']}" if d.get("reason") else "")
        for d in history["deployments"]
    ] or ["  (none)"]
    return lines
