"""Approval: one decision per candidate, four eyes, timeout, skip, all audited."""

from __future__ import annotations

import json

import pytest

from mlops.deployment.approval import (
    SelfApprovalError,
    approval_commands,
    console_url,
    decide,
    expire_approval,
    get_request,
    request_approval,
    skip_approval,
    timeout_seconds,
)
from mlops.errors import ConflictError, InputError, NotFoundError, TransitionError
from mlops.registry.versions import Registry, Status

from .conftest import UPLOADER, FakeStepFunctions, candidate

APPROVER = "arn:aws:iam::123456789012:user/carol"


def waiting(registry: Registry, token: str = "token-1") -> int:
    version = candidate(registry)
    request_approval(registry, "churn", version, token=token, execution="arn:exec:1", timeout_seconds=60)
    return version


def test_approve_resumes_the_pipeline_and_records_the_approver(registry: Registry, sfn: FakeStepFunctions) -> None:
    # GIVEN a candidate waiting for approval
    version = waiting(registry)
    # WHEN another person approves it
    result = decide(registry, "churn", version, "approve", actor=APPROVER, callbacks=sfn, four_eyes=True, comment="ok")
    # THEN the version is APPROVED, the approver and comment are in its history, the task resumed
    stored = registry.get_version("churn", version)
    assert stored.status == Status.APPROVED
    assert stored.approvals[-1]["by"] == APPROVER and stored.approvals[-1]["comment"] == "ok"
    assert result["resumed"] is True
    assert sfn.calls[0]["token"] == "token-1"
    assert json.loads(sfn.calls[0]["output"])["decision"] == "approved"
    # AND the audit chain holds the request and the decision, and verifies
    actions = [i["action"] for i in registry.audit.items("churn")]
    assert "approval.requested" in actions and "approval.approved" in actions and "version.approved" in actions
    assert registry.audit.verify("churn").ok


def test_a_second_decision_is_refused_with_who_decided(registry: Registry, sfn: FakeStepFunctions) -> None:
    # GIVEN an approved candidate
    version = waiting(registry)
    decide(registry, "churn", version, "approve", actor=APPROVER, callbacks=sfn, four_eyes=True)
    # WHEN someone approves or rejects it again
    for decision in ("approve", "reject"):
        with pytest.raises(ConflictError, match=r"already approved by .*carol"):
            decide(registry, "churn", version, decision, actor=APPROVER, callbacks=sfn, four_eyes=True, comment="x")
    # THEN nothing changed and the pipeline was resumed exactly once
    assert len(sfn.calls) == 1
    assert registry.get_version("churn", version).status == Status.APPROVED


def test_the_uploader_may_not_approve_but_may_reject(registry: Registry, sfn: FakeStepFunctions) -> None:
    # GIVEN a candidate trained on data bob uploaded, four-eyes on
    version = waiting(registry)
    # WHEN bob approves it
    with pytest.raises(SelfApprovalError, match="four-eyes"):
        decide(registry, "churn", version, "approve", actor=UPLOADER.upper(), callbacks=sfn, four_eyes=True)
    # THEN it still waits, and bob may still reject it
    assert get_request(registry, "churn", version).status == "waiting"  # type: ignore[union-attr]
    decide(registry, "churn", version, "reject", actor=UPLOADER, callbacks=sfn, four_eyes=True, comment="bad data")
    assert registry.get_version("churn", version).status == Status.REJECTED


def test_without_four_eyes_the_uploader_may_approve(registry: Registry, sfn: FakeStepFunctions) -> None:
    # GIVEN the rule is off  WHEN the uploader approves  THEN it is approved
    version = waiting(registry)
    result = decide(registry, "churn", version, "approve", actor=UPLOADER, callbacks=sfn, four_eyes=False)
    assert result["status"] == "APPROVED"


def test_reject_needs_a_reason_and_is_final(registry: Registry, sfn: FakeStepFunctions) -> None:
    version = waiting(registry)
    # WHEN rejecting without a reason THEN it is refused
    with pytest.raises(InputError, match="reason"):
        decide(registry, "churn", version, "reject", actor=APPROVER, callbacks=sfn, four_eyes=True, comment=" ")
    # WHEN rejecting with one THEN the version is REJECTED with the reason, and the pipeline is told
    decide(registry, "churn", version, "reject", actor=APPROVER, callbacks=sfn, four_eyes=True, comment="too slow")
    stored = registry.get_version("churn", version)
    assert stored.status == Status.REJECTED
    assert stored.status_history[-1]["reason"] == "too slow"
    assert json.loads(sfn.calls[0]["output"])["decision"] == "rejected"


def test_no_request_no_decision(registry: Registry, sfn: FakeStepFunctions) -> None:
    # GIVEN a candidate whose pipeline never asked  WHEN approving  THEN a clear not-found
    version = candidate(registry)
    with pytest.raises(NotFoundError, match="no approval request"):
        decide(registry, "churn", version, "approve", actor=APPROVER, callbacks=sfn, four_eyes=True)


def test_timeout_rejects_and_a_late_approval_is_refused(registry: Registry, sfn: FakeStepFunctions) -> None:
    # GIVEN a waiting candidate whose approval task timed out
    version = waiting(registry)
    result = expire_approval(registry, "churn", version)
    # THEN it is REJECTED with the reason, and a late approval is refused
    assert result["decision"] == "timed_out"
    stored = registry.get_version("churn", version)
    assert stored.status == Status.REJECTED
    assert stored.status_history[-1]["reason"] == "approval timed out"
    with pytest.raises(ConflictError, match="timed out"):
        decide(registry, "churn", version, "approve", actor=APPROVER, callbacks=sfn, four_eyes=True)


def test_an_approval_just_before_the_timeout_stands(registry: Registry, sfn: FakeStepFunctions) -> None:
    # GIVEN an approval recorded while the task was timing out
    version = waiting(registry)
    decide(registry, "churn", version, "approve", actor=APPROVER, callbacks=sfn, four_eyes=True)
    # WHEN the timeout handler runs THEN the decision stands
    result = expire_approval(registry, "churn", version)
    assert result == {"model": "churn", "version": version, "decision": "approved", "late": True}
    assert registry.get_version("churn", version).status == Status.APPROVED


def test_a_pipeline_that_stopped_waiting_is_reported(registry: Registry) -> None:
    # GIVEN Step Functions answers that the task no longer exists
    version = waiting(registry)

    class TaskTimedOutError(Exception):
        def __init__(self) -> None:
            super().__init__("Task Timed Out")
            self.response = {"Error": {"Code": "TaskTimedOut"}}

    sfn = FakeStepFunctions(fail_with=TaskTimedOutError())
    # WHEN approving THEN the decision is recorded and the answer says the pipeline did not resume
    result = decide(registry, "churn", version, "approve", actor=APPROVER, callbacks=sfn, four_eyes=True)
    assert result["status"] == "APPROVED" and result["resumed"] is False
    assert "TaskTimedOut" in result["resume_error"] and "mlops deploy churn" in result["resume_error"]


def test_a_new_request_replaces_a_waiting_one_but_not_a_decided_one(registry: Registry, sfn: FakeStepFunctions) -> None:
    # GIVEN a waiting request (its execution was stopped)
    version = waiting(registry, token="old")
    # WHEN a re-run asks again THEN its token replaces the old one
    request_approval(registry, "churn", version, token="new", execution="arn:exec:2", timeout_seconds=60)
    decide(registry, "churn", version, "approve", actor=APPROVER, callbacks=sfn, four_eyes=True)
    assert sfn.calls[0]["token"] == "new"
    # AND once decided, the version no longer awaits approval
    with pytest.raises(TransitionError):
        request_approval(registry, "churn", version, token="again", execution="arn:exec:3", timeout_seconds=60)


def test_skip_approves_and_audits_the_skip(registry: Registry) -> None:
    version = candidate(registry)
    skip_approval(registry, "churn", version, reason="approval not required by the model spec")
    stored = registry.get_version("churn", version)
    assert stored.status == Status.APPROVED
    assert stored.approvals[-1]["decision"] == "skipped"
    assert "approval.skipped" in [i["action"] for i in registry.audit.items("churn")]


def test_helpers() -> None:
    assert timeout_seconds(72) == 259200 and timeout_seconds(0.00001) == 1
    commands = approval_commands("churn", 3, "prod")
    assert commands["approve"].startswith("mlops --env prod approve churn 3")
    assert commands["reject"].startswith("mlops --env prod reject churn 3 --reason")
    assert approval_commands("churn", 3, "dev")["approve"].startswith("mlops approve churn 3")
    url = console_url("arn:aws:states:eu-west-1:1:execution:sm:name")
    assert url.startswith("https://eu-west-1.console.aws.amazon.com/states/") and url.endswith(":sm:name")
