"""Human sign-off for a registered candidate: the waiting pipeline's token, four eyes, one decision.

The deployment pipeline's approval task (``waitForTaskToken``) calls :func:`request_approval`,
which stores the task token next to the candidate in the registry table (``MODEL#<name>`` /
``APPROVAL#<version>``) and returns the message approvers are sent. An approver's
``mlops approve`` / ``mlops reject`` reaches :func:`decide` through the IAM-authorized API; the
approver's identity comes from the request's credentials, never from its body.

One decision per candidate: the approval item moves ``waiting -> approved | rejected | timed_out``
under a condition on ``waiting`` and the token it holds, in the same transaction as its audit
event, so a second approval or rejection (or a late one after the timeout) is refused with who
decided and when. Only then does the registry change the version's status (audited too), the
decision join the version's ``approvals`` history, and the pipeline resume.

Examples
--------
>>> from mlops.registry.versions import Registry
>>> registry = Registry.in_memory()
>>> v = registry.register_version("churn", actor="pipeline", metrics={"roc_auc": 0.9})
>>> _ = request_approval(registry, "churn", 1, token="t-1", execution="arn:exec", timeout_seconds=60)
>>> decide(registry, "churn", 1, "approve", actor="alice", callbacks=None, four_eyes=False)["status"]
'APPROVED'
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

from mlops.data.catalog import DatasetCatalog
from mlops.data.datasets import UNVERIFIED, DatasetVersion
from mlops.data.uploads import same_principal
from mlops.errors import CheckFailedError, ConflictError, InputError, NotFoundError
from mlops.registry.keys import approval_key
from mlops.registry.origin import origin_from_tags
from mlops.registry.tables import Condition, ConditionFailedError, Put, Update
from mlops.registry.versions import ModelVersion, Registry, Status, check_actor

WAITING = "waiting"
DECIDED = ("approved", "rejected", "timed_out")
PIPELINE_ACTOR = "pipeline:deployment"
TIMEOUT_REASON = "approval timed out"

Decision = Literal["approve", "reject"]


class SelfApprovalError(CheckFailedError):
    """The four-eyes rule: whoever uploaded the training data may not approve the candidate."""

    http_status = 403


class UnverifiedUploaderError(SelfApprovalError):
    """The four-eyes rule cannot be checked: nobody verified who uploaded the training data."""


def _unverified(registry: Registry, candidate: ModelVersion) -> str:
    found = training_dataset(registry, candidate)
    where = f"{found.key} version {found.version_id}" if found is not None else "no recorded dataset"
    why = (found.extra or {}).get("uploader_note") if found is not None else None
    claimed = (found.extra or {}).get("claimed_uploader") if found is not None else None
    return (
        f"four-eyes rule: the uploader of the data model {candidate.model!r} version {candidate.version} was "
        f"trained on ({where}) is unverified"
        + (f" ({why})" if why else "")
        + (f"; its metadata claims {claimed!r}, which is not evidence" if claimed else "")
        + ", so no approval can be checked against it. Upload the data through `mlops data upload` (the upload "
        "API records who AWS authenticated) and approve the version that run registers; rejecting is allowed"
    )


class TaskCallbacks(Protocol):
    """What :func:`decide` needs of Step Functions (a boto3 ``stepfunctions`` client fits)."""

    def send_task_success(self, *, taskToken: str, output: str) -> Any: ...


@dataclass(frozen=True)
class ApprovalRequest:
    """One candidate's approval: who must decide, what they see, what was decided."""

    model: str
    version: int
    status: str
    token: str
    execution: str | None
    requested_at: str
    expires_at: str | None
    summary: dict[str, Any] = field(default_factory=dict)
    decided_by: str | None = None
    decided_at: str | None = None
    comment: str | None = None

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> ApprovalRequest:
        values: dict[str, Any] = {name: item.get(name) for name in cls.__dataclass_fields__}
        values["summary"] = dict(item.get("summary") or {})
        return cls(**values)

    def to_item(self) -> dict[str, Any]:
        item = {k: v for k, v in asdict(self).items() if v is not None}
        item.update(approval_key(self.model, self.version))
        item["kind"] = "approval"
        return item

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("token")  # a live task token resumes the pipeline: never shown
        return data


def _later(now: str, seconds: int) -> str:
    start = datetime.strptime(now, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    return (start + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def timeout_seconds(hours: float) -> int:
    """The approval task's ``TimeoutSeconds`` for a spec's ``approval.timeout_hours`` (at least 1)."""
    return max(1, round(float(hours) * 3600))


def approval_commands(model: str, version: int, environment: str) -> dict[str, str]:
    """The exact commands approvers run (shown in the console and in the notification)."""
    env = "" if environment == "dev" else f"--env {shlex.quote(environment)} "
    return {
        "approve": f"mlops {env}approve {model} {version} --comment 'reviewed metrics and data checks'",
        "reject": f"mlops {env}reject {model} {version} --reason 'WHY'",
    }


def console_url(execution_arn: str) -> str:
    """The execution's page in the Step Functions console."""
    parts = execution_arn.split(":")
    region = parts[3] if len(parts) > 3 and parts[3] else "us-east-1"
    return f"https://{region}.console.aws.amazon.com/states/home?region={region}#/v2/executions/details/{execution_arn}"


def get_request(registry: Registry, model: str, version: int) -> ApprovalRequest | None:
    """The candidate's approval item (None if approval was never requested)."""
    item = registry.store.get(registry.table, approval_key(model, version))
    return ApprovalRequest.from_item(item) if item is not None else None


def _already(request: ApprovalRequest) -> str:
    what = {"timed_out": "timed out"}.get(request.status, request.status)
    by = f" by {request.decided_by}" if request.decided_by and request.status != "timed_out" else ""
    return (
        f"model {request.model!r} version {request.version} was already {what}{by} at {request.decided_at}; "
        "a candidate gets one decision, nothing was changed"
    )


def request_approval(
    registry: Registry,
    model: str,
    version: int,
    *,
    token: str,
    execution: str | None,
    timeout_seconds: int,
    summary: Mapping[str, Any] | None = None,
    actor: str = PIPELINE_ACTOR,
    request_id: str | None = None,
) -> ApprovalRequest:
    """Store the waiting task's token with the candidate (audited ``approval.requested``).

    A request still ``waiting`` (its execution was stopped, or ``mlops deploy`` re-runs the
    rollout) is replaced, so the newest execution is the one a decision resumes.

    Raises
    ------
    ConflictError
        The candidate was already decided (approved, rejected or timed out).
    TransitionError
        The version is not ``PENDING_APPROVAL``.
    """
    check_actor(actor)
    if not token:
        raise InputError("token: the approval task's token is missing (is the task waitForTaskToken?)")
    current = registry.get_version(model, version)
    if current.status != Status.PENDING_APPROVAL:
        from mlops.errors import TransitionError

        raise TransitionError(
            f"model {model!r} version {version} is {current.status.value}; "
            "only a PENDING_APPROVAL version awaits approval"
        )
    previous = get_request(registry, model, version)
    if previous is not None and previous.status != WAITING:
        raise ConflictError(_already(previous))
    now = registry.clock()
    request = ApprovalRequest(
        model=model,
        version=int(version),
        status=WAITING,
        token=token,
        execution=execution,
        requested_at=now,
        expires_at=_later(now, timeout_seconds),
        summary=dict(summary or {}),
    )
    guard = (
        Condition(item_exists=False)
        if previous is None
        else Condition(equals={"status": WAITING, "token": previous.token})
    )
    try:
        registry.audit.append(
            model,
            actor=actor,
            action="approval.requested",
            subject=f"model/{model}/version/{version}",
            before=None if previous is None else {"execution": previous.execution},
            after={"execution": execution, "expires_at": request.expires_at},
            request_id=request_id,
            with_ops=[Put(registry.table, request.to_item(), guard)],
        )
    except ConditionFailedError:
        latest = get_request(registry, model, version)
        raise ConflictError(
            _already(latest) if latest is not None and latest.status != WAITING else "approval request raced; retry"
        ) from None
    return request


def _claim(
    registry: Registry,
    request: ApprovalRequest,
    status: str,
    *,
    actor: str,
    comment: str | None,
    extra: Mapping[str, Any],
    request_id: str | None,
) -> str:
    """Move the approval item ``waiting -> status`` with its audit event; the loser gets ConflictError."""
    now = registry.clock()
    try:
        registry.audit.append(
            request.model,
            actor=actor,
            action=f"approval.{status}",
            subject=f"model/{request.model}/version/{request.version}",
            before={"status": WAITING},
            after={"status": status, "comment": comment, **extra},
            request_id=request_id,
            with_ops=[
                Update(
                    registry.table,
                    approval_key(request.model, request.version),
                    set={"status": status, "decided_by": actor, "decided_at": now, "comment": comment or ""},
                    condition=Condition(equals={"status": WAITING, "token": request.token}),
                )
            ],
        )
    except ConditionFailedError:
        latest = get_request(registry, request.model, request.version)
        raise ConflictError(_already(latest) if latest else "the approval request disappeared") from None
    return now


def training_dataset(registry: Registry, version: ModelVersion) -> DatasetVersion | None:
    """The recorded dataset version the candidate was trained on (None if none is recorded)."""
    dataset = version.dataset_version or {}
    if not dataset.get("version_id"):
        return None
    return DatasetCatalog(registry).find(version.model, str(dataset["version_id"]))


def verified_uploader_of(registry: Registry, version: ModelVersion) -> str | None:
    """The verified uploader of the candidate's training data (None if it is not verified).

    Only the dataset record the training pipeline wrote counts, and only when its uploader was
    verified (the upload API's caller, or a platform actor); a name in the version's own lineage
    or in the object's metadata is a claim.
    """
    found = training_dataset(registry, version)
    return found.uploaded_by if found is not None and found.uploader_verified else None


def uploader_of(registry: Registry, version: ModelVersion) -> str | None:
    """Who uploaded the candidate's training data, for people to read: the verified identity, or
    ``unverified`` (None when no dataset is recorded)."""
    found = training_dataset(registry, version)
    if found is None:
        return None
    return found.uploaded_by if found.uploader_verified else UNVERIFIED


def same_identity(a: str, b: str) -> bool:
    """Two principals are the same person (see :func:`mlops.data.uploads.same_principal`: exact ARNs,
    except that one session name under two roles of one account is one person)."""
    return same_principal(a, b)


def decide(
    registry: Registry,
    model: str,
    version: int,
    decision: Decision,
    *,
    actor: str,
    callbacks: TaskCallbacks | None,
    four_eyes: bool,
    comment: str | None = None,
    request_id: str | None = None,
) -> dict[str, Any]:
    """Approve or reject a waiting candidate and resume its pipeline.

    Parameters
    ----------
    decision
        ``approve`` or ``reject`` (a rejection needs ``comment``: the reason).
    actor
        The approver, from the caller's credentials (an IAM ARN).
    callbacks
        Step Functions, to resume the waiting task (None: record only, for tests and tools).
    four_eyes
        Refuse an approval by the verified uploader of the candidate's training data, and any
        approval when the uploader is not verified.

    Returns
    -------
    dict
        ``model``, ``version``, ``decision``, ``status`` (the version's), ``by``, ``at``, ``execution``.

    Raises
    ------
    NotFoundError
        No approval was requested for this version.
    ConflictError
        The candidate was already decided (the message says by whom and when).
    SelfApprovalError
        The four-eyes rule refused the approver: they uploaded the training data, or
        (:class:`UnverifiedUploaderError`) nobody verified who did.
    """
    check_actor(actor)
    if decision not in ("approve", "reject"):
        raise InputError(f"decision {decision!r}: must be approve or reject")
    if decision == "reject" and not (comment or "").strip():
        raise InputError("reason: a rejection needs the reason (mlops reject M V --reason '...')")
    request = get_request(registry, model, version)
    if request is None:
        raise NotFoundError(
            f"model {model!r} version {version} has no approval request (is its deployment pipeline waiting? "
            f"`mlops deploy {model} {version}` starts one)"
        )
    if request.status != WAITING:
        raise ConflictError(_already(request))
    candidate = registry.get_version(model, version)
    uploader = verified_uploader_of(registry, candidate)
    if decision == "approve" and four_eyes:
        if uploader is None:
            raise UnverifiedUploaderError(_unverified(registry, candidate))
        if same_identity(uploader, actor):
            raise SelfApprovalError(
                f"four-eyes rule: {actor} uploaded the data model {model!r} version {version} was trained on "
                f"(verified: {uploader}) and may not approve it; another approver must (rejecting is allowed)"
            )
        # an imported model: its importer (the caller the import API verified) is its author too
        importer = (origin_from_tags(candidate.tags or {}) or {}).get("uploader")
        if importer and same_identity(importer, actor):
            raise SelfApprovalError(
                f"four-eyes rule: {actor} imported model {model!r} version {version} (verified: {importer}) and may"
                " not approve it; another approver must (rejecting is allowed)"
            )
    status = "approved" if decision == "approve" else "rejected"
    extra = {"four_eyes": four_eyes, "uploader": uploader or UNVERIFIED, "execution": request.execution}
    at = _claim(registry, request, status, actor=actor, comment=comment, extra=extra, request_id=request_id)
    if decision == "approve":
        updated = registry.approve(model, version, actor=actor, reason=comment or None, request_id=request_id)
    else:
        updated = registry.reject(model, version, actor=actor, reason=str(comment), request_id=request_id)
    registry.append_history(
        model,
        version,
        "approvals",
        {"decision": status, "comment": comment, "execution": request.execution, "four_eyes": four_eyes},
        actor=actor,
        action=f"version.approval.{status}",
        request_id=request_id,
    )
    result = {
        "model": model,
        "version": int(version),
        "decision": status,
        "status": updated.status.value,
        "by": actor,
        "at": at,
        "comment": comment,
        "execution": request.execution,
        "resumed": False,
    }
    if callbacks is not None:
        output = json.dumps({"decision": status, "by": actor, "at": at, "comment": comment})
        try:
            callbacks.send_task_success(taskToken=request.token, output=output)
        except Exception as exc:  # the decision stands; say why the pipeline did not resume
            code = getattr(exc, "response", {}).get("Error", {}).get("Code", type(exc).__name__)
            result["resume_error"] = (
                f"{code}: the pipeline no longer waits for this decision (stopped or timed out)"
                + (f"; `mlops deploy {model} {version}` deploys the approved version" if status == "approved" else "")
            )
        else:
            result["resumed"] = True
    return result


def expire_approval(
    registry: Registry, model: str, version: int, *, actor: str = PIPELINE_ACTOR, request_id: str | None = None
) -> dict[str, Any]:
    """The approval task timed out: the candidate is REJECTED with reason ``approval timed out``.

    If a decision was recorded just before the timeout fired, that decision stands and is returned
    (``late: True``) instead.
    """
    request = get_request(registry, model, version)
    if request is None:
        raise NotFoundError(f"model {model!r} version {version} has no approval request to expire")
    if request.status != WAITING:
        return {"model": model, "version": int(version), "decision": request.status, "late": True}
    try:
        _claim(registry, request, "timed_out", actor=actor, comment=TIMEOUT_REASON, extra={}, request_id=request_id)
    except ConflictError:
        latest = get_request(registry, model, version)
        return {"model": model, "version": int(version), "decision": latest.status if latest else "?", "late": True}
    registry.reject(model, version, actor=actor, reason=TIMEOUT_REASON, request_id=request_id)
    registry.append_history(
        model,
        version,
        "approvals",
        {"decision": "timed_out", "comment": TIMEOUT_REASON, "execution": request.execution},
        actor=actor,
        action="version.approval.timed_out",
        request_id=request_id,
    )
    return {"model": model, "version": int(version), "decision": "timed_out", "late": False, "reason": TIMEOUT_REASON}


def skip_approval(
    registry: Registry,
    model: str,
    version: int,
    *,
    reason: str,
    actor: str = PIPELINE_ACTOR,
    request_id: str | None = None,
) -> dict[str, Any]:
    """Approval is switched off for this model: approve the candidate, audited ``approval.skipped``."""
    registry.append_history(
        model,
        version,
        "approvals",
        {"decision": "skipped", "comment": reason},
        actor=actor,
        action="approval.skipped",
        request_id=request_id,
    )
    updated = registry.approve(model, version, actor=actor, reason=reason, request_id=request_id)
    return {"model": model, "version": int(version), "decision": "skipped", "status": updated.status.value}
