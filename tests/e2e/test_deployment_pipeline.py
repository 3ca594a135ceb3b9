"""The approval and deployment pipeline on the local cloud: the real state machine, functions, API and CLI.

The first candidate comes from the training pipeline; the others are registered with the same
lineage straight into the registry (training each would add ~5 s per scenario and test nothing new).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops.registry.versions import Registry, Status
from mlops_local.testing import LocalCloudProcess, signed_as

from .churn import churn_spec

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "examples"))
from generate import generate  # noqa: E402  (examples/ is scripts, not a package)

MLOPS = str(Path(sys.executable).parent / "mlops")
LOCAL_CALLER = "arn:aws:iam::123456789012:user/testing"  # who the local API says signed a request

# Until stacks/platform.py calls add_deployment_pipeline itself, synthesize the app with it wired in
# the same place (inside PlatformStack, before the stage's cdk-nag pass). Once wired, this is a no-op.


@pytest.fixture(scope="module")
def cloud(local_cloud: LocalCloudProcess) -> LocalCloudProcess:
    return local_cloud


@pytest.fixture(scope="module")
def env(cloud: LocalCloudProcess) -> dict[str, str]:
    return cloud.environ()


@pytest.fixture(scope="module")
def registry(cloud: LocalCloudProcess) -> Registry:
    ssm = cloud.client("ssm")

    def parameter(leaf: str) -> str:
        return str(ssm.get_parameter(Name=f"/mlops/dev/{leaf}")["Parameter"]["Value"])

    return Registry.for_dynamodb(
        cloud.client("dynamodb"), registry_table=parameter("registry-table"), audit_table=parameter("audit-table")
    )


def mlops(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MLOPS, "--json", *args], env={**os.environ, **env}, capture_output=True, text=True, check=False, timeout=300
    )


def ok(env: dict[str, str], *args: str) -> Any:
    result = mlops(env, *args)
    assert result.returncode == 0, (args, result.stdout, result.stderr)
    return json.loads(result.stdout) if result.stdout.strip() else None


def put_spec(env: dict[str, str], tmp: Path, name: str, **changes: Any) -> None:
    spec = churn_spec(name, **changes)
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec))
    ok(env, "spec", "put", str(path), "--actor", "alice")


@pytest.fixture(scope="module")
def trained(env: dict[str, str], registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Model ``dep`` with version 1 registered by the training pipeline (data uploaded by the scientist)."""
    tmp = tmp_path_factory.mktemp("deploy")
    put_spec(env, tmp, "dep", deployment={"strategy": "all_at_once"})
    path = tmp / "train.csv"
    generate("churn", 1200, 7).to_csv(path, index=False)
    uploaded = ok(signed_as(env, "scientist"), "data", "upload", str(path), "--model", "dep", "--wait")
    assert uploaded["run"]["output"]["outcome"] == "registered", uploaded
    return {"tmp": tmp, "version": uploaded["run"]["output"]["version"]}


def register_like(registry: Registry, model: str, source: int) -> int:
    """A new PENDING_APPROVAL version of ``model`` with ``dep`` version ``source``'s lineage (its
    dataset, uploaded by the scientist through the upload API, is the recorded one)."""
    original = registry.get_version("dep", source)
    spec_revision = registry.get_model(model).latest_spec_revision
    return registry.register_version(
        model,
        actor="pipeline:training:e2e",
        metrics=original.metrics,
        params=original.params,
        spec_revision=spec_revision,
        dataset_version=dict(original.dataset_version or {}),
        code_revision=original.code_revision,
        pipeline_execution=f"{original.pipeline_execution}-copy",
        artifact_uri=original.artifact_uri,
        artifact_sha256=original.artifact_sha256,
        tags=original.tags,
    ).version


def execution(cloud: LocalCloudProcess, started: dict[str, Any]) -> str:
    return str(started["execution"])


def wait_for(predicate: Callable[[], Any], timeout: float = 30, what: str = "condition") -> Any:
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def waiting_input(cloud: LocalCloudProcess, arn: str) -> dict[str, Any] | None:
    """The WaitForApproval state's input once its task waits (what the console shows approvers)."""
    events = cloud.client("stepfunctions").get_execution_history(executionArn=arn, maxResults=1000)["events"]
    submitted = any(e["type"] == "TaskSubmitted" for e in events)
    for event in events:
        details = event.get("stateEnteredEventDetails") or {}
        if details.get("name") == "WaitForApproval" and submitted:
            return dict(json.loads(details["input"]))
    return None


def finished(cloud: LocalCloudProcess, arn: str, timeout: float = 30) -> dict[str, Any]:
    sfn = cloud.client("stepfunctions")

    def done() -> dict[str, Any] | None:
        found = sfn.describe_execution(executionArn=arn)
        return dict(found) if found["status"] != "RUNNING" else None

    result = wait_for(done, timeout, f"execution {arn} to finish")
    result["output_json"] = json.loads(result.get("output") or "null")
    return dict(result)


def assert_consistent(env: dict[str, str], registry: Registry, *models: str) -> None:
    """After every scenario: the audit verifies and no alias points at a version that is not APPROVED."""
    assert mlops(env, "audit", "verify").returncode == 0
    for model in models:
        summary = registry.get_model(model)
        for alias in ("champion", "challenger"):
            version = summary.alias(alias)
            if version is not None:
                assert registry.get_version(model, version).status == Status.APPROVED, (model, alias, version)


def test_approve_makes_the_candidate_champion(
    cloud: LocalCloudProcess, env: dict[str, str], registry: Registry, trained: dict[str, Any]
) -> None:
    # GIVEN the trained candidate's deployment pipeline waits for approval
    version = trained["version"]
    arn = execution(cloud, ok(env, "deploy", "dep", str(version)))
    shown = wait_for(lambda: waiting_input(cloud, arn), what="the approval task")
    # THEN what approvers see holds the candidate's summary and the exact commands
    plan = shown["plan"]["result"]
    assert plan["commands"]["approve"].startswith(f"mlops approve dep {version}")
    assert plan["commands"]["reject"].startswith(f"mlops reject dep {version} --reason")
    assert plan["candidate"]["validation"]["valid"] is True
    assert {row["metric"] for row in plan["candidate"]["metrics"]} >= {"roc_auc", "accuracy"}
    assert plan["console_url"].endswith(arn)
    # WHEN someone other than the uploader approves through the CLI (signed API call)
    approved_at = time.time()
    result = ok(env, "approve", "dep", str(version), "--comment", "metrics and checks reviewed")
    # THEN the approver is the caller's identity, the pipeline deploys it as champion
    assert (result["decision"], result["by"], result["resumed"]) == ("approved", LOCAL_CALLER, True)
    ended = finished(cloud, arn)
    serving_after = time.time() - approved_at
    assert ended["status"] == "SUCCEEDED" and ended["output_json"]["outcome"] == "deployed", ended
    assert registry.get_model("dep").champion == version
    stored = registry.get_version("dep", version)
    assert stored.status == Status.APPROVED and stored.approvals[-1]["by"] == LOCAL_CALLER
    assert stored.deployments[-1]["strategy"] == "all_at_once"
    print(f"approval to serving: {serving_after:.2f} s")
    assert serving_after < 15
    # AND a second approval or a rejection of the same version is refused with who decided
    again = mlops(env, "approve", "dep", str(version))
    assert again.returncode == 3 and "already approved by" in again.stderr
    late = mlops(env, "reject", "dep", str(version), "--reason", "changed my mind")
    assert late.returncode == 3 and "already approved" in late.stderr
    # AND `mlops rollouts` says who approved what and when
    history = ok(env, "rollouts", "dep")
    assert history["approvals"][-1]["by"] == LOCAL_CALLER and history["champion"] == version
    assert_consistent(env, registry, "dep")


def test_reject_ends_the_pipeline_and_the_version_never_serves(
    cloud: LocalCloudProcess, env: dict[str, str], registry: Registry, trained: dict[str, Any]
) -> None:
    # GIVEN a waiting candidate
    version = register_like(registry, "dep", trained["version"])
    arn = execution(cloud, ok(env, "deploy", "dep", str(version)))
    wait_for(lambda: waiting_input(cloud, arn), what="the approval task")
    champion = registry.get_model("dep").champion
    # WHEN it is rejected with a reason
    result = ok(env, "reject", "dep", str(version), "--reason", "recall too low on new customers")
    # THEN it is REJECTED, the run ends with outcome rejected, the champion is unchanged
    assert result["decision"] == "rejected"
    ended = finished(cloud, arn)
    assert ended["status"] == "SUCCEEDED" and ended["output_json"]["outcome"] == "rejected"
    stored = registry.get_version("dep", version)
    assert stored.status == Status.REJECTED
    assert stored.status_history[-1]["reason"] == "recall too low on new customers"
    assert registry.get_model("dep").champion == champion
    # AND it can never be deployed
    refused = mlops(env, "deploy", "dep", str(version))
    assert refused.returncode == 3 and "REJECTED" in refused.stderr
    assert_consistent(env, registry, "dep")


def test_the_uploader_may_not_approve_their_own_candidate(
    cloud: LocalCloudProcess, env: dict[str, str], registry: Registry, trained: dict[str, Any]
) -> None:
    # GIVEN a waiting candidate trained on data the scientist uploaded (four-eyes on)
    version = register_like(registry, "dep", trained["version"])
    arn = execution(cloud, ok(env, "deploy", "dep", str(version)))
    wait_for(lambda: waiting_input(cloud, arn), what="the approval task")
    # WHEN the uploader approves it
    refused = mlops(signed_as(env, "scientist"), "approve", "dep", str(version))
    # THEN it is refused (a check failed: exit 1) and the candidate still waits
    assert refused.returncode == 1, refused.stderr
    assert "four-eyes" in refused.stderr
    assert registry.get_version("dep", version).status == Status.PENDING_APPROVAL
    assert cloud.client("stepfunctions").describe_execution(executionArn=arn)["status"] == "RUNNING"
    # AND the uploader may still reject it, which ends the run
    ok(signed_as(env, "scientist"), "reject", "dep", str(version), "--reason", "withdrawn by its author")
    assert finished(cloud, arn)["output_json"]["outcome"] == "rejected"
    assert_consistent(env, registry, "dep")


def test_approval_timeout_rejects_the_candidate(
    cloud: LocalCloudProcess, env: dict[str, str], registry: Registry, trained: dict[str, Any]
) -> None:
    # GIVEN a model whose spec gives approvers about two seconds
    put_spec(env, trained["tmp"], "dep-timeout", approval={"required": True, "timeout_hours": 0.0005})
    version = register_like(registry, "dep-timeout", trained["version"])
    # WHEN nobody decides in time
    arn = execution(cloud, ok(env, "deploy", "dep-timeout", str(version)))
    ended = finished(cloud, arn, timeout=30)
    # THEN the run ends with outcome rejected and the version is REJECTED because of the timeout
    assert ended["status"] == "SUCCEEDED", ended
    output = dict(ended["output_json"])
    # (the outcome also says whether the topic was told: a failed notification never changes it)
    assert output.pop("notification")["sent"] is True, ended
    assert output == {"outcome": "rejected", "reason": "approval timed out", "model": "dep-timeout", "version": version}
    stored = registry.get_version("dep-timeout", version)
    assert stored.status == Status.REJECTED and stored.status_history[-1]["reason"] == "approval timed out"
    late = mlops(env, "approve", "dep-timeout", str(version))
    assert late.returncode == 3 and "timed out" in late.stderr
    assert_consistent(env, registry, "dep-timeout")


def _canary_alarm_names(cloud: LocalCloudProcess, model: str, version: int) -> list[str]:
    found = cloud.client("cloudwatch").describe_alarms(AlarmNamePrefix=f"mlops-dev-canary-{model}-v{version}-")
    return [a["AlarmName"] for a in found["MetricAlarms"]]


def test_canary_promotion_rollback_manual_rollback_and_old_version(
    cloud: LocalCloudProcess, env: dict[str, str], registry: Registry, trained: dict[str, Any]
) -> None:
    # GIVEN a model deployed by canary with approval switched off in its spec
    put_spec(
        env,
        trained["tmp"],
        "dep-canary",
        approval={"required": False},
        deployment={"strategy": "canary", "canary_percent": 25, "bake_minutes": 10},
    )
    first = register_like(registry, "dep-canary", trained["version"])
    # WHEN the first version is deployed THEN it skips approval (audited) and, with no champion, goes all at once
    ok(env, "deploy", "dep-canary", str(first), "--wait")
    assert registry.get_model("dep-canary").champion == first
    assert registry.get_version("dep-canary", first).approvals[-1]["decision"] == "skipped"
    actions = ok(env, "audit", "list", "--model", "dep-canary", "--limit", "100")
    assert "approval.skipped" in json.dumps(actions)

    # WHEN a second version bakes as a canary and no alarm fires THEN it is promoted
    second = register_like(registry, "dep-canary", trained["version"])
    # (the local cloud compresses the ten-minute bake to two seconds; the check after it is held
    # until the rollout has been looked at, however slow the machine)
    cloud.add_faults(
        {"kind": "function.hold", "target": "DeploymentCheckCanary", "match": ["dep-canary"], "delay_s": 120}
    )
    arn = execution(cloud, ok(env, "deploy", "dep-canary", str(second)))
    wait_for(lambda: registry.get_model("dep-canary").challenger == second, what="the canary")
    rollout = ok(env, "rollouts", "dep-canary")["rollout"]
    assert (rollout["mode"], rollout["challenger"], rollout["share"]) == ("canary", second, 0.25)
    assert registry.get_model("dep-canary").champion == first
    cloud.clear_faults()
    ended = finished(cloud, arn)
    assert ended["output_json"]["outcome"] == "deployed", ended
    summary = registry.get_model("dep-canary")
    assert (summary.champion, summary.challenger) == (second, None)
    assert registry.get_version("dep-canary", second).deployments[-1]["outcome"] == "promoted"
    assert_consistent(env, registry, "dep-canary")

    # WHEN a third version's error alarm fires during its bake THEN it is rolled back automatically
    third = register_like(registry, "dep-canary", trained["version"])
    cloud.add_faults(
        {"kind": "function.hold", "target": "DeploymentCheckCanary", "match": ["dep-canary"], "delay_s": 120}
    )
    arn = execution(cloud, ok(env, "deploy", "dep-canary", str(third)))
    names = wait_for(lambda: _canary_alarm_names(cloud, "dep-canary", third), what="the canary's alarms")
    errors = next(n for n in names if n.endswith("-errors"))
    cloud.client("cloudwatch").set_alarm_state(AlarmName=errors, StateValue="ALARM", StateReason="e2e: 5xx burst")
    cloud.clear_faults()
    ended = finished(cloud, arn)
    assert ended["output_json"]["outcome"] == "rolled_back", ended
    assert errors in ended["output_json"]["reason"]
    summary = registry.get_model("dep-canary")
    assert (summary.champion, summary.challenger) == (second, None)
    assert registry.get_version("dep-canary", third).status == Status.ARCHIVED
    assert_consistent(env, registry, "dep-canary")

    # WHEN the champion is rolled back by hand THEN the previous champion serves again, audited
    rolled = ok(env, "rollback", "dep-canary", "--actor", "ops@example.com")
    assert (rolled["champion"], rolled["previous_champion"]) == (first, second)
    assert registry.get_model("dep-canary").champion == first
    assert registry.get_version("dep-canary", first).deployments[-1]["by"] == "ops@example.com"
    assert_consistent(env, registry, "dep-canary")

    # WHEN an old approved version is deployed again (no approval needed) THEN it is champion
    ok(env, "deploy", "dep-canary", str(second), "--strategy", "all_at_once", "--wait")
    assert registry.get_model("dep-canary").champion == second
    assert_consistent(env, registry, "dep-canary")
