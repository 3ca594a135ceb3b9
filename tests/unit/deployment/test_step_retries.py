"""A deployment step retried by Step Functions (its answer lost after it ran) finds its own effect
and answers the same: nothing is moved, approved or audited twice, and nothing fails."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pydantic import BaseModel

from mlops.contracts.deployment import (
    CanaryCheck,
    CheckCanary,
    Deploy,
    FinishCanary,
    NotificationFailed,
    RecordFailure,
    SkipApproval,
)
from mlops.deployment import steps
from mlops.deployment.rollout import deploy_version, serve_champion_alone
from mlops.deployment.services import DeploymentServices
from mlops.registry.rollouts import get_rollout
from mlops.registry.versions import Registry, Status
from mlops.settings import Platform

from .conftest import FakeCloudWatch, candidate, store_spec

OPS = "arn:aws:iam::123456789012:user/ops"


def services(registry: Registry, cloudwatch: FakeCloudWatch) -> DeploymentServices:
    platform = Platform(environment="dev", data_bucket="data", registry_table="registry", audit_table="audit")
    return DeploymentServices(platform=platform, registry=registry, cloudwatch=cloudwatch)


def audit_actions(registry: Registry, model: str = "churn") -> list[str]:
    events, _ = registry.audit.list_events(model, limit=500)
    return [e.action for e in reversed(events)]


def twice(
    step: Callable[..., dict[str, Any]], payload: BaseModel, svc: DeploymentServices
) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """Run a step, then again as its retry would (a new request id), returning both answers and
    the audit actions the retry added."""
    first = step(payload, svc, request_id="r1")
    before = audit_actions(svc.registry)
    again = step(payload, svc, request_id="r2")
    return first, again, audit_actions(svc.registry)[len(before) :]


@pytest.mark.parametrize("strategy", ["all_at_once", "canary", "shadow"])
def test_skip_approval_then_deploy_retried_answer_the_same(
    registry: Registry, cloudwatch: FakeCloudWatch, strategy: str
) -> None:
    # GIVEN a model with a champion, and a new candidate whose spec needs no approval
    store_spec(registry, approval={"required": False, "four_eyes": False})
    svc = services(registry, cloudwatch)
    champion = candidate(registry)
    registry.approve("churn", champion, actor="carol")
    deploy_version(registry, "churn", champion, "all_at_once", actor=OPS)
    version = candidate(registry)
    base = {"model": "churn", "version": version, "execution": "arn:x:churn-v2", "execution_name": "churn-v2"}
    # WHEN skip_approval and deploy each run twice, as retried steps
    skipped, skipped_again, added = twice(steps.skip, SkipApproval(**base), svc)
    # THEN the retry answers the same and writes nothing
    assert skipped == skipped_again and skipped["status"] == "APPROVED" and added == []
    rollout_revision = get_rollout(registry, "churn").revision
    deployed, deployed_again, added = twice(steps.deploy, Deploy(**base, strategy=strategy, canary_percent=10), svc)
    # THEN so does deploy: same aliases, same previous champion, no second rollout or history entry
    assert deployed == deployed_again, (deployed, deployed_again)
    assert deployed["previous_champion"] == champion and added == []
    assert get_rollout(registry, "churn").revision == rollout_revision + 1
    assert len(registry.get_version("churn", version).deployments) == 1
    assert len(registry.get_version("churn", version).approvals) == 1
    if deployed["bake"]:
        # AND a canary's finish, retried, reports its promotion (not "superseded")
        check = steps.check(CheckCanary(**base), svc)
        finished, finished_again, added = twice(steps.finish, FinishCanary(**base, check=CanaryCheck(**check)), svc)
        assert finished == finished_again and finished["outcome"] == "promoted" and added == []
        assert registry.get_model("churn").champion == version
    assert registry.audit.verify("churn").ok


def test_deploy_retried_after_the_aliases_moved_keeps_the_previous_champion(
    registry: Registry, cloudwatch: FakeCloudWatch
) -> None:
    # GIVEN a deploy that moved the champion and wrote the rollout, then stopped before its history
    svc = services(registry, cloudwatch)
    first = candidate(registry)
    registry.approve("churn", first, actor="carol")
    deploy_version(registry, "churn", first, "all_at_once", actor=OPS)
    version = candidate(registry)
    registry.approve("churn", version, actor="carol")
    execution = "arn:x:churn-v2"
    registry.set_alias("churn", "champion", version, actor="pipeline:deployment:churn-v2")
    serve_champion_alone(
        registry,
        "churn",
        actor="pipeline:deployment:churn-v2",
        action="rollout.all_at_once",
        execution=execution,
        champion_change={"version": version, "from": first, "how": "all_at_once"},
    )
    revision = get_rollout(registry, "churn").revision
    # WHEN the step is retried
    base = {"model": "churn", "version": version, "execution": execution, "execution_name": "churn-v2"}
    result = steps.deploy(Deploy(**base, strategy="all_at_once"), svc)
    # THEN it completes what was missing and names the champion it really replaced
    assert result["previous_champion"] == first and result["champion"] == version
    assert get_rollout(registry, "churn").revision == revision
    assert [d["previous_champion"] for d in registry.get_version("churn", version).deployments] == [first]


def test_failure_and_notification_records_are_written_once(registry: Registry, cloudwatch: FakeCloudWatch) -> None:
    # GIVEN a deployed version
    svc = services(registry, cloudwatch)
    version = candidate(registry)
    registry.approve("churn", version, actor="carol")
    base = {"model": "churn", "version": version, "execution": "arn:x:churn-v1", "execution_name": "churn-v1"}
    error = {"Error": "SNS.InternalErrorException", "Cause": "fault injected (Service: AmazonSNS; Status Code: 500)"}
    # WHEN the notification_failed and record_failure steps each run twice
    notified, notified_again, added = twice(
        steps.notification_failed, NotificationFailed(**base, event="deployment.deployed", error=error), svc
    )
    # THEN each audits its event once, and answers the same
    assert notified == notified_again and added == []
    assert notified["event"] == "deployment.deployed" and notified["error"] == "SNS.InternalErrorException"
    failed, failed_again, added = twice(steps.record_failure, RecordFailure(**base, error=error), svc)
    assert failed == failed_again and added == []
    actions = audit_actions(registry)
    assert actions.count("notification.failed") == 1 and actions.count("deployment.failed") == 1
    # AND the version's status is untouched by either
    assert registry.get_version("churn", version).status == Status.APPROVED
