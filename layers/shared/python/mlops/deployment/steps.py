"""The deployment pipeline's states: one function per Lambda state, each taking its typed contract.

Every step is idempotent per execution: Step Functions retries a step whose answer was lost (the
function ran, then failed or timed out on return), and the retry finds its own effect (the
version's ``approvals``/``deployments`` entry or audit event naming this execution) and answers
the same instead of failing or writing it twice. The handlers (``functions/deployment_steps``)
parse the state's payload, call one of these, and dump the answer into its output model.
"""

from __future__ import annotations

import json
from typing import Any

from mlops.contracts.deployment import (
    CheckCanary,
    Deploy,
    ExpireApproval,
    FinishCanary,
    NotificationFailed,
    Prepare,
    RecordFailure,
    RequestApproval,
    SkipApproval,
    StepInput,
)
from mlops.deployment.approval import PIPELINE_ACTOR, expire_approval, request_approval, skip_approval
from mlops.deployment.canary import check_canary, create_canary_alarms
from mlops.deployment.plan import plan_rollout
from mlops.deployment.rollout import deploy_version, finish_canary
from mlops.deployment.services import DeploymentServices
from mlops.registry import failures
from mlops.registry.versions import Registry, Status

SKIP_REASON = "approval not required by the model spec"


def actor(step: StepInput) -> str:
    """The pipeline's actor in the audit trail: ``pipeline:deployment:<execution name>``."""
    return f"{PIPELINE_ACTOR}:{step.execution_name}" if step.execution_name else PIPELINE_ACTOR


def prepare(step: Prepare, services: DeploymentServices, *, request_id: str | None = None) -> dict[str, Any]:
    """Plan the execution (:func:`mlops.deployment.plan.plan_rollout`): ask, skip, or deploy directly."""
    return plan_rollout(
        services.registry,
        step.model,
        step.version,
        environment=services.platform.environment,
        execution=step.execution or "",
        strategy=step.input.strategy or None,
        read_json=services.read_json if services.s3 is not None else None,
        four_eyes_default=services.four_eyes,
    )


def skip(step: SkipApproval, services: DeploymentServices, *, request_id: str | None = None) -> dict[str, Any]:
    """Approval is switched off in the spec: approve the candidate, audited ``approval.skipped``."""
    registry, by = services.registry, actor(step)
    skipped = _skipped_by(registry, step.model, step.version, actor=by, request_id=request_id)
    if skipped is not None:
        return skipped
    return skip_approval(registry, step.model, step.version, reason=SKIP_REASON, actor=by, request_id=request_id)


def expire(step: ExpireApproval, services: DeploymentServices, *, request_id: str | None = None) -> dict[str, Any]:
    """The approval wait timed out: reject the candidate (unless a decision just made stands)."""
    return expire_approval(services.registry, step.model, step.version, actor=actor(step), request_id=request_id)


def deploy(step: Deploy, services: DeploymentServices, *, request_id: str | None = None) -> dict[str, Any]:
    """Move the aliases for the strategy; a canary also gets its alarms."""
    result = deploy_version(
        services.registry,
        step.model,
        step.version,
        step.strategy,
        actor=actor(step),
        canary_percent=step.canary_percent or 10,
        execution=step.execution,
        request_id=request_id,
    )
    if result["bake"] and services.cloudwatch is not None:
        environment = services.platform.environment
        result["alarms"] = create_canary_alarms(services.cloudwatch, environment, step.model, step.version)
    return result


def check(step: CheckCanary, services: DeploymentServices, *, request_id: str | None = None) -> dict[str, Any]:
    """The canary's alarm states at the end of its bake."""
    return check_canary(services.cloudwatch, services.platform.environment, step.model, step.version)


def finish(step: FinishCanary, services: DeploymentServices, *, request_id: str | None = None) -> dict[str, Any]:
    """Promote the canary or roll it back, by its check."""
    return finish_canary(
        services.registry,
        step.model,
        step.version,
        healthy=step.check.healthy,
        reason=step.check.reason,
        actor=actor(step),
        execution=step.execution,
        request_id=request_id,
    )


def record_failure(
    step: RecordFailure, services: DeploymentServices, *, request_id: str | None = None
) -> dict[str, Any]:
    """A step failed after its retries: audit ``deployment.failed`` once per execution."""
    record = {
        "error": step.error.Error,
        "cause": str(step.error.Cause)[:2000],
        "execution": step.execution,
        "version": step.version,
    }
    _audit_once(services.registry, step, "deployment.failed", record, request_id=request_id)
    return {"recorded": True, **record}


def notification_failed(
    step: NotificationFailed, services: DeploymentServices, *, request_id: str | None = None
) -> dict[str, Any]:
    """A notification failed after its retries: the outcome stands (a deployed model is deployed);
    that nobody was told is audited ``notification.failed``, once per execution."""
    record = {
        "event": step.event,
        "error": step.error.Error,
        "cause": str(step.error.Cause)[:2000],
        "execution": step.execution,
        "version": step.version,
    }
    _audit_once(services.registry, step, "notification.failed", record, request_id=request_id)
    return {"recorded": True, **record}


def request(step: RequestApproval, services: DeploymentServices, *, request_id: str | None = None) -> dict[str, Any]:
    """The waiting task: store its token with the candidate, then notify approvers (SNS)."""
    plan, model, version = step.plan, step.model, step.version
    requested = request_approval(
        services.registry,
        model,
        version,
        token=step.task_token,
        execution=step.execution,
        timeout_seconds=plan.approval_timeout_seconds,
        summary=plan.candidate,
        request_id=request_id,
    )
    message = {
        "event": "approval.requested",
        "model": model,
        "version": version,
        "expires_at": requested.expires_at,
        "approve": plan.commands["approve"],
        "reject": plan.commands["reject"],
        "execution": step.execution,
        "console_url": plan.console_url,
        "summary": plan.summary_text,
        "candidate": plan.candidate,
    }
    topic = services.platform.notifications_topic_arn
    if topic and services.sns is not None:
        services.sns.publish(
            TopicArn=topic,
            Subject=f"MLOps: {model} v{version} awaits approval"[:100],
            Message=json.dumps(message, indent=2, default=str),
        )
    return {"requested": True, "expires_at": requested.expires_at}


def _skipped_by(
    registry: Registry, model: str, version: int, *, actor: str, request_id: str | None
) -> dict[str, Any] | None:
    """skip's answer if this execution (``actor`` names it) already skipped the approval."""
    candidate = registry.get_version(model, version)
    if not any(a.get("decision") == "skipped" and a.get("by") == actor for a in candidate.approvals):
        return None
    if candidate.status == Status.PENDING_APPROVAL:  # the step stopped between its two writes
        candidate = registry.approve(model, version, actor=actor, reason=SKIP_REASON, request_id=request_id)
    return {"model": model, "version": int(version), "decision": "skipped", "status": candidate.status.value}


def _audit_once(
    registry: Registry, step: StepInput, action: str, record: dict[str, Any], *, request_id: str | None
) -> None:
    """Append ``action`` unless this execution already did (a retried step writes its event once)."""
    model = step.model
    chain = model if model and model != "None" else "_platform"
    subject = f"model/{model}/version/{step.version}"
    failures.record_failure(
        registry, chain, actor=actor(step), action=action, subject=subject, record=record, request_id=request_id
    )
