"""The approval and deployment pipeline's step contracts (``statemachines/deployment.asl.json``).

Prepare -> (WaitForApproval | SkipApproval) -> Deploy -> [Bake -> CheckCanary -> FinishCanary]
-> Notify*; an approval timeout -> ExpireApproval; a notification failing after its retries ->
Notify*Failed (NotificationFailed); any failure -> Failed (RecordFailure). Documents that only
people or the next domain step read (the candidate's summary, the approval commands, the monitor
schedule's sync result) stay ``dict[str, Any]``: the contract names what the state machine and
the handlers pass, not every key a report carries.
"""

from __future__ import annotations

from typing import Any

from mlops.contracts.base import Contract, Document, Machine, Step

HANDLER = "functions/deployment_steps/handler"

# ------------------------------------------------------------------------------------------ shared


class StepError(Document):
    """A failure as Step Functions' ``Catch`` writes it (``Error``, ``Cause``; other keys kept)."""

    Error: str | None = None
    Cause: str | None = None


class StepInput(Contract):
    """What every deployment step is sent: the candidate and the execution running it."""

    model: str
    version: int
    execution: str | None = None  # the execution's ARN
    execution_name: str | None = None  # names the pipeline's actor: pipeline:deployment:<name>


class DeploymentInput(Document):
    """The execution's input (``mlops deploy`` or the training pipeline's hand-off)."""

    model: str
    version: int
    strategy: str | None = None  # overrides the spec's deployment strategy
    requested_by: str | None = None


# ------------------------------------------------------------------------------------------ Prepare


class Prepare(StepInput):
    input: DeploymentInput


class Plan(Contract):
    """What the pipeline does with the candidate (:func:`mlops.deployment.plan.plan_rollout`)."""

    model: str
    version: int
    status: str
    approval: str  # required | skip | not_needed
    approval_timeout_seconds: int
    four_eyes: bool
    strategy: str
    canary_percent: int
    bake_seconds: int
    candidate: dict[str, Any]  # the summary approvers review
    summary_text: str
    commands: dict[str, str]  # approve / reject
    console_url: str


class Planned(Contract):
    result: Plan


# -------------------------------------------------------------------------------- WaitForApproval


class RequestApproval(StepInput):
    task_token: str
    plan: Plan


class ApprovalRequested(Contract):
    requested: bool
    expires_at: str


class ApprovalDecision(Document):
    """What ``SendTaskSuccess`` resumes WaitForApproval with (:func:`mlops.deployment.approval.decide`)."""

    decision: str  # approved | rejected
    by: str
    at: str | None = None
    comment: str | None = None


# -------------------------------------------------------------------------- SkipApproval / Expire


class SkipApproval(StepInput):
    pass


class Skipped(Contract):
    model: str
    version: int
    decision: str  # skipped
    status: str


class SkippedResult(Contract):
    result: Skipped


class ExpireApproval(StepInput):
    pass


class Expired(Contract):
    """The approval timed out (``timed_out``), or a decision made just before stands (``late``)."""

    model: str
    version: int
    decision: str
    late: bool
    reason: str | None = None


class ExpiredResult(Contract):
    result: Expired


# ------------------------------------------------------------------------------------------- Deploy


class Deploy(StepInput):
    strategy: str
    canary_percent: int = 10


class Deployed(Contract):
    """The aliases after the deploy (:func:`mlops.deployment.deploy.deploy_version`)."""

    model: str
    version: int
    strategy: str  # as applied (a canary without a champion is deployed all at once)
    requested_strategy: str
    bake: bool  # a canary: wait, check its alarms, then promote or roll back
    share: float
    champion: int | None = None
    challenger: int | None = None
    previous_champion: int | None = None
    note: str | None = None
    alarms: list[str] | None = None  # a canary's alarm names
    monitoring_schedule: dict[str, Any] | None = None  # the new champion's drift-check schedule


class DeployedResult(Contract):
    result: Deployed


# ---------------------------------------------------------------------------- CheckCanary / Finish


class CheckCanary(StepInput):
    pass


class CanaryCheck(Contract):
    """The canary's alarm states at the end of its bake: ``healthy`` unless one is in ALARM."""

    healthy: bool
    alarms: dict[str, str]
    firing: list[str]
    missing: list[str]
    reason: str


class CanaryCheckResult(Contract):
    result: CanaryCheck


class FinishCanary(StepInput):
    check: CanaryCheck


class Finished(Contract):
    """The canary promoted, rolled back, or ``superseded`` (someone moved the challenger meanwhile)."""

    model: str
    version: int
    outcome: str
    reason: str | None = None
    champion: int | None = None
    challenger: int | None = None
    monitoring_schedule: dict[str, Any] | None = None


class FinishedResult(Contract):
    result: Finished


# ------------------------------------------------------------------------- failures, notifications


class RecordFailure(StepInput):
    error: StepError


class FailureRecorded(Contract):
    """The audited ``deployment.failed`` record (written once per execution)."""

    recorded: bool
    error: str | None = None
    cause: str | None = None
    execution: str | None = None
    version: int


class NotificationFailed(RecordFailure):
    event: str  # the notification's event, e.g. deployment.deployed


class NotificationFailureRecorded(FailureRecorded):
    """The audited ``notification.failed`` record: the outcome stands, nobody was told."""

    event: str | None = None


# ------------------------------------------------------------------------------------------ machine


class DeploymentRun(DeploymentInput):
    """``$`` between states: the execution's input plus each state's result at its ``ResultPath``."""

    plan: Planned | None = None
    approval: ApprovalDecision | SkippedResult | None = None
    timeout: StepError | None = None
    expired: ExpiredResult | None = None
    deployment: DeployedResult | None = None
    check: CanaryCheckResult | None = None
    finish: FinishedResult | None = None
    notification: dict[str, Any] | None = None  # the SNS answer, or that it failed (and was audited)
    notification_error: StepError | None = None
    error: StepError | None = None
    record_error: StepError | None = None


_NOTIFICATION_FAILED = Step(NotificationFailed, NotificationFailureRecorded, f"{HANDLER}.notification_failed")

MACHINE = Machine(
    asl="deployment.asl.json",
    document=DeploymentRun,
    steps={
        "Prepare": Step(Prepare, Plan, f"{HANDLER}.prepare"),
        "SkipApproval": Step(SkipApproval, Skipped, f"{HANDLER}.skip_approval"),
        "WaitForApproval": Step(RequestApproval, ApprovalRequested, "functions/approval_request/handler.handler"),
        "ExpireApproval": Step(ExpireApproval, Expired, f"{HANDLER}.expire_approval"),
        "Deploy": Step(Deploy, Deployed, f"{HANDLER}.deploy"),
        "CheckCanary": Step(CheckCanary, CanaryCheck, f"{HANDLER}.check_canary"),
        "FinishCanary": Step(FinishCanary, Finished, f"{HANDLER}.finish_canary"),
        "Failed": Step(RecordFailure, FailureRecorded, f"{HANDLER}.record_failure"),
        "NotifyRejectedFailed": _NOTIFICATION_FAILED,
        "NotifyTimedOutFailed": _NOTIFICATION_FAILED,
        "NotifyRolledBackFailed": _NOTIFICATION_FAILED,
        "NotifyDeployedFailed": _NOTIFICATION_FAILED,
    },
)
