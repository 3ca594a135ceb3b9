"""Rollouts: strategies, canary promotion and rollback, manual rollback, history, the pipeline's steps."""

from __future__ import annotations

import pytest

from mlops.contracts.deployment import CanaryCheck, CheckCanary, Deploy, FinishCanary, Prepare, RecordFailure
from mlops.deployment import steps
from mlops.deployment.approval import decide, request_approval
from mlops.deployment.canary import canary_alarms, check_canary, create_canary_alarms
from mlops.deployment.handoff import handoff_step
from mlops.deployment.history import deployment_history
from mlops.deployment.plan import plan_rollout
from mlops.deployment.rollback import rollback
from mlops.deployment.rollout import deploy_version, finish_canary
from mlops.deployment.services import DeploymentServices
from mlops.errors import ConflictError, NotFoundError, TransitionError
from mlops.registry.rollouts import get_rollout
from mlops.registry.tables import Update
from mlops.registry.versions import Registry, Status
from mlops.settings import Platform

from .conftest import FakeCloudWatch, FakeStepFunctions, candidate, store_spec

OPS = "arn:aws:iam::123456789012:user/ops"


def approved(registry: Registry, auc: float = 0.9) -> int:
    version = candidate(registry, auc=auc)
    registry.approve("churn", version, actor="carol")
    return version


def assert_aliases_approved(registry: Registry, model: str = "churn") -> None:
    summary = registry.get_model(model)
    for alias in ("champion", "challenger"):
        version = summary.alias(alias)
        if version is not None:
            assert registry.get_version(model, version).status == Status.APPROVED, alias


def test_all_at_once_moves_the_champion_and_records_the_rollout(registry: Registry) -> None:
    # GIVEN two approved versions
    first, second = approved(registry), approved(registry)
    # WHEN each is deployed all at once
    deploy_version(registry, "churn", first, "all_at_once", actor=OPS)
    result = deploy_version(registry, "churn", second, "all_at_once", actor=OPS)
    # THEN the champion is the second, the history says from which, and the audit verifies
    assert result["champion"] == second and result["previous_champion"] == first and not result["bake"]
    rollout = get_rollout(registry, "churn")
    assert rollout.mode == "single" and [h["version"] for h in rollout.history] == [first, second]
    assert registry.get_version("churn", second).deployments[-1]["strategy"] == "all_at_once"
    assert registry.audit.verify("churn").ok
    assert_aliases_approved(registry)


def test_a_version_that_is_not_approved_is_never_deployed(registry: Registry) -> None:
    pending = candidate(registry)
    with pytest.raises(TransitionError, match="PENDING_APPROVAL"):
        deploy_version(registry, "churn", pending, "all_at_once", actor=OPS)
    registry.reject("churn", pending, actor="carol", reason="no")
    with pytest.raises(TransitionError, match="REJECTED"):
        deploy_version(registry, "churn", pending, "canary", actor=OPS)
    assert registry.get_model("churn").champion is None


def test_canary_without_a_champion_is_deployed_all_at_once(registry: Registry) -> None:
    version = approved(registry)
    result = deploy_version(registry, "churn", version, "canary", actor=OPS)
    assert (
        result["strategy"] == "all_at_once" and result["champion"] == version and "no other champion" in result["note"]
    )


def test_canary_is_promoted_after_a_clean_bake(registry: Registry, cloudwatch: FakeCloudWatch) -> None:
    # GIVEN a champion and a canary with its alarms
    champion, canary = approved(registry), approved(registry)
    deploy_version(registry, "churn", champion, "all_at_once", actor=OPS)
    result = deploy_version(registry, "churn", canary, "canary", actor=OPS, canary_percent=20)
    names = create_canary_alarms(cloudwatch, "dev", "churn", canary)
    assert result["bake"] and result["challenger"] == canary and result["share"] == 0.2
    rollout = get_rollout(registry, "churn")
    assert (rollout.mode, rollout.challenger, rollout.share) == ("canary", canary, 0.2)
    # WHEN no alarm fired during the bake
    check = check_canary(cloudwatch, "dev", "churn", canary)
    finished = finish_canary(registry, "churn", canary, healthy=check["healthy"], reason=check["reason"], actor=OPS)
    # THEN the canary is the champion and the challenger is clear
    assert check["healthy"] and sorted(check["alarms"]) == sorted(names)
    assert finished["outcome"] == "promoted"
    summary = registry.get_model("churn")
    assert (summary.champion, summary.challenger) == (canary, None)
    assert get_rollout(registry, "churn").mode == "single"
    assert_aliases_approved(registry)


def test_canary_is_rolled_back_when_its_alarm_fires(registry: Registry, cloudwatch: FakeCloudWatch) -> None:
    # GIVEN a canary whose error alarm is in ALARM
    champion, canary = approved(registry), approved(registry)
    deploy_version(registry, "churn", champion, "all_at_once", actor=OPS)
    deploy_version(registry, "churn", canary, "canary", actor=OPS)
    create_canary_alarms(cloudwatch, "dev", "churn", canary)
    errors = next(n for n in canary_alarms("dev", "churn", canary) if n.endswith("-errors"))
    cloudwatch.set_state(errors, "ALARM")
    # WHEN the bake ends
    check = check_canary(cloudwatch, "dev", "churn", canary)
    finished = finish_canary(registry, "churn", canary, healthy=check["healthy"], reason=check["reason"], actor=OPS)
    # THEN the champion is unchanged, the canary is cleared and archived with the reason, audited
    assert not check["healthy"] and check["firing"] == [errors]
    assert finished["outcome"] == "rolled_back"
    summary = registry.get_model("churn")
    assert (summary.champion, summary.challenger) == (champion, None)
    stored = registry.get_version("churn", canary)
    assert stored.status == Status.ARCHIVED and errors in stored.status_history[-1]["reason"]
    assert "rollout.rolled_back" in [i["action"] for i in registry.audit.items("churn")]
    assert registry.audit.verify("churn").ok


def test_a_superseded_canary_is_left_alone(registry: Registry) -> None:
    champion, canary = approved(registry), approved(registry)
    deploy_version(registry, "churn", champion, "all_at_once", actor=OPS)
    deploy_version(registry, "churn", canary, "canary", actor=OPS)
    # GIVEN someone cleared the challenger during the bake
    registry.set_alias("churn", "challenger", None, actor=OPS)
    # WHEN the bake ends THEN nothing changes
    assert finish_canary(registry, "churn", canary, healthy=True, reason="", actor=OPS)["outcome"] == "superseded"
    assert registry.get_model("churn").champion == champion


def test_shadow_moves_the_challenger_with_no_share(registry: Registry) -> None:
    champion, shadow = approved(registry), approved(registry)
    deploy_version(registry, "churn", champion, "all_at_once", actor=OPS)
    result = deploy_version(registry, "churn", shadow, "shadow", actor=OPS)
    assert (result["challenger"], result["share"], result["bake"]) == (shadow, 0.0, False)
    assert get_rollout(registry, "churn").mode == "shadow"


def test_rollback_goes_to_the_previous_champion_in_one_step(registry: Registry) -> None:
    # GIVEN three champions in turn and a challenger
    v1, v2, v3, v4 = (approved(registry) for _ in range(4))
    for version in (v1, v2, v3):
        deploy_version(registry, "churn", version, "all_at_once", actor=OPS)
    deploy_version(registry, "churn", v4, "shadow", actor=OPS)
    # WHEN rolling back without a target
    result = rollback(registry, "churn", actor=OPS)
    # THEN the previous champion serves, the challenger is cleared, the history says so
    assert result == {"model": "churn", "champion": v2, "previous_champion": v3, "cleared_challenger": v4}
    assert registry.get_model("churn").challenger is None
    # AND rolling back again goes further back, not forth
    assert rollback(registry, "churn", actor=OPS)["champion"] == v1
    # AND an explicit target works, a rejected one is refused
    assert rollback(registry, "churn", to=v3, actor=OPS)["champion"] == v3
    rejected = candidate(registry)
    registry.reject("churn", rejected, actor="carol", reason="no")
    with pytest.raises(TransitionError, match="REJECTED"):
        rollback(registry, "churn", to=rejected, actor=OPS)
    with pytest.raises(ConflictError, match="already the champion"):
        rollback(registry, "churn", to=v3, actor=OPS)
    assert registry.audit.verify("churn").ok
    assert_aliases_approved(registry)


def test_rollback_restores_an_archived_version_and_needs_a_champion(registry: Registry) -> None:
    with pytest.raises(NotFoundError, match="no champion"):
        rollback(registry, "churn", actor=OPS)
    v1, v2 = approved(registry), approved(registry)
    deploy_version(registry, "churn", v1, "all_at_once", actor=OPS)
    with pytest.raises(NotFoundError, match="no earlier champion"):
        rollback(registry, "churn", actor=OPS)
    deploy_version(registry, "churn", v2, "all_at_once", actor=OPS)
    # GIVEN v1 was archived after being replaced
    registry.archive("churn", v1, actor=OPS)
    # WHEN rolling back THEN v1 is restored to APPROVED and serves
    assert rollback(registry, "churn", actor=OPS)["champion"] == v1
    assert registry.get_version("churn", v1).status == Status.APPROVED


def test_an_archived_model_plans_deploys_and_rolls_back_nothing(registry: Registry) -> None:
    # GIVEN a model with a champion, an earlier champion and a pending candidate, then archived
    v1, v2 = approved(registry), approved(registry)
    deploy_version(registry, "churn", v1, "all_at_once", actor=OPS)
    deploy_version(registry, "churn", v2, "all_at_once", actor=OPS)
    pending = candidate(registry, auc=0.95)
    registry.archive_model("churn", actor=OPS, reason="replaced")
    before = registry.get_model("churn")
    # WHEN the pipeline plans or deploys, or someone rolls back THEN each is refused saying how to restore it
    for attempt in (
        lambda: plan_rollout(registry, "churn", pending, environment="dev", execution="e-1"),
        lambda: deploy_version(registry, "churn", v1, "all_at_once", actor=OPS, execution="e-2"),
        lambda: rollback(registry, "churn", actor=OPS),
    ):
        with pytest.raises(TransitionError, match=r"is archived \(replaced\).*mlops models unarchive churn"):
            attempt()
    # AND nothing moved
    after = registry.get_model("churn")
    assert (after.champion, after.challenger) == (before.champion, before.challenger) == (v2, None)
    # WHEN unarchived THEN rollback works again
    registry.unarchive_model("churn", actor=OPS)
    assert rollback(registry, "churn", actor=OPS)["champion"] == v1


def test_plan_says_what_the_pipeline_does(registry: Registry) -> None:
    # GIVEN a champion and a pending candidate
    champion = approved(registry, auc=0.8)
    deploy_version(registry, "churn", champion, "all_at_once", actor=OPS)
    pending = candidate(registry, auc=0.85)
    evaluation = {"champion": {"version": champion, "metrics": {"roc_auc": 0.8}}}
    validation = {"valid": True, "rows": 100, "checks": [{"check": "column.min", "column": "a", "status": "passed"}]}
    documents = {"s3://x/evaluation.json": evaluation, "s3://x/validation.json": validation}
    registry.store.write(
        Update(
            registry.table,
            {"pk": "MODEL#churn", "sk": f"VERSION#{pending:010d}"},
            set={"tags": {"evaluation_uri": "s3://x/evaluation.json", "validation_report": "s3://x/validation.json"}},
        )
    )
    # WHEN planning
    plan = plan_rollout(
        registry,
        "churn",
        pending,
        environment="dev",
        execution="arn:aws:states:us-east-1:1:execution:sm:x",
        read_json=documents.__getitem__,
    )
    # THEN approval is required, the summary compares with the champion, the commands are exact
    assert plan["approval"] == "required" and plan["approval_timeout_seconds"] == 48 * 3600
    row = plan["candidate"]["metrics"][0]
    assert row == {"metric": "roc_auc", "candidate": 0.85, "champion": 0.8, "delta": 0.05}
    assert plan["candidate"]["validation"]["valid"] is True
    assert plan["commands"]["approve"].startswith(f"mlops approve churn {pending}")
    assert "0.85 vs 0.8" in plan["summary_text"]
    assert plan["console_url"].endswith("execution:sm:x")
    # AND an approved version needs no approval, a spec without approval skips it
    assert plan_rollout(registry, "churn", champion, environment="dev", execution="e")["approval"] == "not_needed"
    store_spec(registry, approval={"required": False}, deployment={"strategy": "shadow"})
    later = candidate(registry)
    registry.store.write(
        Update(registry.table, {"pk": "MODEL#churn", "sk": f"VERSION#{later:010d}"}, set={"spec_revision": 2})
    )
    skipped = plan_rollout(registry, "churn", later, environment="dev", execution="e")
    assert (skipped["approval"], skipped["strategy"]) == ("skip", "shadow")


def test_the_steps_run_a_whole_canary(registry: Registry, cloudwatch: FakeCloudWatch, sfn: FakeStepFunctions) -> None:
    # GIVEN the pipeline's services on in-memory fakes and a champion
    platform = Platform(environment="dev", data_bucket="data", registry_table="registry", audit_table="audit")
    services = DeploymentServices(platform=platform, registry=registry, cloudwatch=cloudwatch, sfn=sfn)
    champion = approved(registry)
    deploy_version(registry, "churn", champion, "all_at_once", actor=OPS)
    version = candidate(registry)
    base = {"model": "churn", "version": version, "execution": "arn:e", "execution_name": "churn-v2-x"}
    # WHEN the steps run as the state machine runs them
    plan = steps.prepare(Prepare(**base, input={"model": "churn", "version": version, "strategy": None}), services)
    request_approval(registry, "churn", version, token="t", execution="arn:e", timeout_seconds=60)
    decide(registry, "churn", version, "approve", actor="carol", callbacks=sfn, four_eyes=True)
    deployed = steps.deploy(Deploy(**base, strategy=plan["strategy"], canary_percent=10), services)
    check = steps.check(CheckCanary(**base), services)
    finished = steps.finish(FinishCanary(**base, check=CanaryCheck(**check)), services)
    # THEN the canary baked, passed and was promoted by the pipeline's actor
    assert plan["strategy"] == "canary" and deployed["bake"] and len(deployed["alarms"]) == 2
    assert finished["outcome"] == "promoted" and registry.get_model("churn").champion == version
    history = deployment_history(registry, "churn")
    assert [a["by"] for a in history["approvals"]] == ["carol"]
    assert history["deployments"][-1]["outcome"] == "promoted"
    assert history["deployments"][-1]["by"] == "pipeline:deployment:churn-v2-x"
    failure = steps.record_failure(RecordFailure(**base, error={"Error": "E", "Cause": "c"}), services)
    assert failure["recorded"] and registry.audit.verify("churn").ok


def test_handoff_starts_one_execution_per_candidate(monkeypatch: pytest.MonkeyPatch) -> None:
    class AlreadyExistsError(Exception):
        def __init__(self) -> None:
            super().__init__("exists")
            self.response = {"Error": {"Code": "ExecutionAlreadyExists"}}

    class FakeSfn:
        def __init__(self) -> None:
            self.names: list[str] = []

        def start_execution(self, **kwargs: str) -> dict[str, str]:
            if kwargs["name"] in self.names:
                raise AlreadyExistsError()
            self.names.append(kwargs["name"])
            return {"executionArn": f"arn:aws:states:us-east-1:1:execution:sm:{kwargs['name']}"}

    # GIVEN the deployment state machine  WHEN the same candidate is handed over twice
    monkeypatch.setenv("DEPLOYMENT_STATE_MACHINE_ARN", "arn:aws:states:us-east-1:1:stateMachine:sm")
    sfn = FakeSfn()
    event = {"model": "churn", "version": 3, "training_execution_name": "churn-abc"}
    first, second = handoff_step(event, sfn=sfn), handoff_step(event, sfn=sfn)
    # THEN one execution named <model>-v<version> exists and both answers point at it
    assert sfn.names == ["churn-v3"]
    assert (
        first
        == second
        == {"deployment_execution": "arn:aws:states:us-east-1:1:execution:sm:churn-v3", "name": "churn-v3"}
    )
