"""The monitor steps on moto: schedules, plan -> (sketch) -> analyze, reports, run items, SNS, retraining."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pandas as pd
import pytest

from mlops.contracts.monitoring import AnalyzeRequest, PlanRequest, RecordFailureRequest, SketchRequest
from mlops.data.catalog import DatasetCatalog
from mlops.data.datasets import DatasetVersion
from mlops.data.labels import label_key
from mlops.data.profile import profile_frame
from mlops.monitoring import steps
from mlops.monitoring.schedules import ScheduleTarget, sync_champion_schedule, sync_schedule
from mlops.monitoring.services import MonitorServices, MonitorSettings, get_monitor_state, list_monitor_runs
from mlops.registry.specs import SpecStore
from mlops.registry.versions import Registry
from mlops.serving.capture import capture_key
from mlops.spec.model import ModelSpec, load_spec, parse_spec
from tests.integration.registry.conftest import AUDIT_TABLE, DATA_BUCKET, REGISTRY_TABLE, aws, dynamodb

__all__ = ["aws", "dynamodb"]  # moto fixtures, tables as the stacks declare them

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "examples"))
from generate import generate  # noqa: E402  (examples/ is scripts, not a package)

GROUP = "mlops-test-monitoring"
# The real time: capture objects carry S3's real LastModified, which the window planning reads.
NOW = datetime.now(UTC).replace(microsecond=0)


class Clock:
    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def __call__(self) -> datetime:
        return self.moment


@pytest.fixture
def spec() -> ModelSpec:
    document = load_spec(ROOT / "examples" / "specs" / "churn.yaml").model_dump(mode="json")
    document["monitoring"].update(schedule="rate(1 hour)", retrain_on_drift=True, cooldown_hours=24, min_rows=50)
    return parse_spec(document)


@pytest.fixture
def world(dynamodb: Any, spec: ModelSpec) -> dict[str, Any]:
    """A champion (v1) of ``churn`` with its profile and holdout predictions, a topic and a queue on it."""
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=DATA_BUCKET)
    registry = Registry.for_dynamodb(dynamodb, registry_table=REGISTRY_TABLE, audit_table=AUDIT_TABLE)
    revision = SpecStore(registry).put(spec, actor="alice").revision
    train = generate("churn", 3000, 1)
    s3.put_object(
        Bucket=DATA_BUCKET,
        Key="artifacts/churn/runs/r1/profile.json",
        Body=profile_frame(train, spec).to_json().encode(),
    )
    s3.put_object(
        Bucket=DATA_BUCKET,
        Key="artifacts/churn/runs/r1/predictions.json",
        Body=json.dumps({"predictions": train["churned"].astype(int).tolist()[:1000]}).encode(),
    )
    version = registry.register_version(
        "churn",
        actor="pipeline:training:r1",
        metrics={"accuracy": 0.8, "f1": 0.7},
        spec_revision=revision,
        tags={
            "profile_uri": f"s3://{DATA_BUCKET}/artifacts/churn/runs/r1/profile.json",
            "predictions_uri": f"s3://{DATA_BUCKET}/artifacts/churn/runs/r1/predictions.json",
        },
    ).version
    registry.approve("churn", version, actor="carol")
    registry.set_alias("churn", "champion", version, actor="carol")
    DatasetCatalog(registry).record(
        "churn",
        DatasetVersion(
            bucket=DATA_BUCKET,
            key="datasets/churn/train.csv",
            version_id="v-1",
            sha256="a" * 64,
            size=10,
            rows=3000,
            columns=["a"],
            column_types={},
            schema_fingerprint="f",
            uploaded_by="bob",
            uploaded_at="2026-11-20T00:00:00+00:00",
        ),
        actor="bob",
    )
    sns = boto3.client("sns", region_name="us-east-1")
    sqs = boto3.client("sqs", region_name="us-east-1")
    topic = sns.create_topic(Name="notifications")["TopicArn"]
    queue = sqs.create_queue(QueueName="inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"})
    sfn = boto3.client("stepfunctions", region_name="us-east-1")
    training = sfn.create_state_machine(
        name="training",
        definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
        roleArn="arn:aws:iam::123456789012:role/sfn",
    )["stateMachineArn"]
    scheduler = boto3.client("scheduler", region_name="us-east-1")
    scheduler.create_schedule_group(Name=GROUP)
    target = ScheduleTarget(
        GROUP, "arn:aws:states:us-east-1:123456789012:stateMachine:monitor", "arn:aws:iam::123456789012:role/sched"
    )
    clock = Clock(NOW)
    services = MonitorServices(
        bucket=DATA_BUCKET,
        registry=registry,
        s3=s3,
        settings=MonitorSettings(schedule=target, training_state_machine_arn=training, notifications_topic_arn=topic),
        sfn=sfn,
        sns=sns,
        scheduler=scheduler,
        clock=clock,
    )
    return {
        "services": services,
        "s3": s3,
        "sqs": sqs,
        "queue": queue,
        "sfn": sfn,
        "training": training,
        "clock": clock,
        "registry": registry,
        "scheduler": scheduler,
        "target": target,
    }


def capture(
    s3: Any, frame: pd.DataFrame, spec: ModelSpec, at: datetime, *, version: int = 1, prefix: str = "r"
) -> list[str]:
    """Write one capture object per row, as serving does; returns the request ids."""
    ids = []
    for index, row in enumerate(frame.to_dict(orient="records")):
        request_id = f"{prefix}-{index}"
        line = {
            "request_id": request_id,
            "at": at.isoformat(),
            "model": spec.name,
            "version": version,
            "role": "champion",
            "index": 0,
            "input": {
                k: (None if isinstance(row[k], float) and row[k] != row[k] else row[k]) for k in spec.feature_names
            },
            "prediction": int(row["churned"]),
        }
        s3.put_object(
            Bucket=DATA_BUCKET,
            Key=capture_key(spec.name, request_id, at),
            Body=(json.dumps(line, default=str) + "\n").encode(),
        )
        ids.append(request_id)
    return ids


def run(services: MonitorServices, name: str, metrics: list[Any] | None = None) -> dict[str, Any]:
    """Plan -> (Sketch per shard) -> Analyze, as the state machine sequences them."""
    plan = plan_step({"input": {"model": "churn", "trigger": "manual"}, "execution_name": name}, services)
    if plan["mode"] == "distributed":
        shards = json.loads(services.s3.get_object(Bucket=DATA_BUCKET, Key=plan["shards_key"])["Body"].read())
        for item in shards:
            steps.sketch(SketchRequest.model_validate({"item": item}), services)
    emit = metrics.extend if metrics is not None else None
    return analyze_step(plan, services, emit=emit)


def plan_step(event: dict[str, Any], services: MonitorServices) -> dict[str, Any]:
    """The Plan state: its Payload parsed, the step, its result dumped (as the handler does)."""
    return steps.plan(PlanRequest.model_validate(event), services).model_dump(mode="json")


def analyze_step(plan: dict[str, Any], services: MonitorServices, emit: Any = None) -> dict[str, Any]:
    """The Analyze state, as the handler runs it."""
    return steps.analyze(AnalyzeRequest.model_validate({"plan": plan}), services, emit=emit).model_dump(mode="json")


def messages(world: dict[str, Any]) -> list[dict[str, Any]]:
    got = world["sqs"].receive_message(QueueUrl=world["queue"], MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in got]


def audit_actions(registry: Registry) -> list[str]:
    events, _ = registry.audit.list_events("churn", limit=200)
    return [e.action for e in reversed(events) if e.action.startswith("monitor.")]


# ------------------------------------------------------------------------------------------------ schedules
def test_schedule_is_created_updated_and_deleted_with_the_spec(world: dict[str, Any], spec: ModelSpec) -> None:
    scheduler, target = world["scheduler"], world["target"]
    # WHEN the champion's schedule is synced THEN it is created with the spec's expression and input
    assert sync_champion_schedule(world["registry"], "churn", scheduler=scheduler, target=target)["action"] == "created"
    created = scheduler.get_schedule(Name="churn", GroupName=GROUP)
    assert created["ScheduleExpression"] == "rate(1 hour)" and created["State"] == "ENABLED"
    assert json.loads(created["Target"]["Input"]) == {"model": "churn", "trigger": "schedule"}
    assert created["Target"]["Arn"] == target.state_machine_arn and created["Target"]["RoleArn"] == target.role_arn
    # AND syncing again changes nothing
    assert (
        sync_schedule(scheduler, GROUP, "churn", spec, target.state_machine_arn, target.role_arn)["action"]
        == "unchanged"
    )
    # WHEN the spec's schedule changes THEN the schedule is updated
    daily = spec.model_copy(update={"monitoring": spec.monitoring.model_copy(update={"schedule": "rate(1 day)"})})
    assert (
        sync_schedule(scheduler, GROUP, "churn", daily, target.state_machine_arn, target.role_arn)["action"]
        == "updated"
    )
    assert scheduler.get_schedule(Name="churn", GroupName=GROUP)["ScheduleExpression"] == "rate(1 day)"
    # WHEN monitoring is disabled THEN the schedule is deleted, and deleting twice is fine
    off = spec.model_copy(update={"monitoring": spec.monitoring.model_copy(update={"enabled": False})})
    assert (
        sync_schedule(scheduler, GROUP, "churn", off, target.state_machine_arn, target.role_arn)["action"] == "deleted"
    )
    assert (
        sync_schedule(scheduler, GROUP, "churn", off, target.state_machine_arn, target.role_arn)["action"] == "absent"
    )
    assert scheduler.list_schedules(GroupName=GROUP)["Schedules"] == []


def test_a_monitor_run_heals_a_missing_schedule(world: dict[str, Any], spec: ModelSpec) -> None:
    # GIVEN a champion without a schedule (deleted by hand)
    capture(world["s3"], generate("churn", 60, 2), spec, NOW - timedelta(minutes=10))
    # WHEN a run plans THEN it recreates the schedule
    plan = plan_step({"input": {"model": "churn"}, "execution_name": "m-0"}, world["services"])
    assert plan["schedule"]["action"] == "created"
    assert world["scheduler"].get_schedule(Name="churn", GroupName=GROUP)["State"] == "ENABLED"


# ------------------------------------------------------------------------------------------------- analysis
def test_clean_window_reports_no_drift_with_reports_metrics_and_run_item(
    world: dict[str, Any], spec: ModelSpec
) -> None:
    services = world["services"]
    # GIVEN 400 captured requests like the training data, in the last hour
    capture(world["s3"], generate("churn", 400, 3), spec, NOW - timedelta(minutes=20))
    # WHEN the monitor runs
    metrics: list[Any] = []
    result = run(services, "m-1", metrics)
    # THEN the verdict is no drift over the 400 rows, the reports sit next to the version
    assert result["verdict"] == "no_drift" and result["rows"] == 400 and result["mode"] == "inline"
    assert result["report_key"].startswith("reports/churn/v1/drift/") and result["report_key"].endswith(".json")
    report = json.loads(world["s3"].get_object(Bucket=DATA_BUCKET, Key=result["report_key"])["Body"].read())
    html = world["s3"].get_object(Bucket=DATA_BUCKET, Key=result["html_key"])["Body"].read().decode()
    assert report["verdict"] == "no_drift" and report["current"]["rows"] == 400
    assert report["prediction"] is not None  # against the registered holdout predictions
    assert "<html" in html.lower() and 'src="http' not in html and "<link" not in html  # self-contained
    # AND a run item, the monitor item and an audit event
    runs = list_monitor_runs(world["registry"], "churn")
    assert (
        runs[0]["status"] == "SUCCEEDED"
        and runs[0]["verdict"] == "no_drift"
        and runs[0]["report_key"] == result["report_key"]
    )
    state = get_monitor_state(world["registry"], "churn")
    assert state["last_window_end"] == result["window"]["end"] and state["last_verdict"] == "no_drift"
    assert audit_actions(world["registry"]) == ["monitor.run"]
    # AND the metrics the dashboard and the alarm read
    names = {(m.name, tuple(sorted(m.dimensions))) for m in metrics}
    assert ("DriftScore", ("model",)) in names and ("ChampionVersion", ("model",)) in names
    assert ("DriftedFeatures", ("model",)) in names and ("ModelsDrifted", ()) in names
    assert ("FeatureDriftScore", ("feature", "model")) in names
    assert next(m.value for m in metrics if m.name == "ModelsDrifted") == 0.0
    # AND nothing is notified, nothing retrains
    assert messages(world) == [] and result["retrain"] == {"action": "not_requested"}


def test_shifted_window_drifts_notifies_and_retrains_once_per_cooldown(world: dict[str, Any], spec: ModelSpec) -> None:
    services, clock = world["services"], world["clock"]
    # GIVEN a dataset version recorded after the champion was (so a retrain can learn from it)
    DatasetCatalog(world["registry"]).record(
        "churn",
        DatasetVersion(
            bucket=DATA_BUCKET,
            key="datasets/churn/more.csv",
            version_id="v-2",
            sha256="b" * 64,
            size=10,
            rows=3400,
            columns=["a"],
            column_types={},
            schema_fingerprint="f",
            uploaded_by="bob",
            uploaded_at=world["registry"].get_version("churn", 1).created_at,
        ),
        actor="bob",
    )
    # AND shifted traffic in the last hour
    capture(world["s3"], generate("churn", 400, 4, drift=True), spec, NOW - timedelta(minutes=30))
    # WHEN the monitor runs
    metrics: list[Any] = []
    first = run(services, "m-1", metrics)
    # THEN it drifts, names the features, notifies, and starts training on the newer dataset
    assert first["verdict"] == "drifted" and first["drifted_features"]
    assert next(m.value for m in metrics if m.name == "ModelsDrifted") == 1.0
    note = messages(world)
    assert len(note) == 1 and note[0]["event"] == "model.drifted" and note[0]["report_key"] == first["report_key"]
    assert note[0]["drifted_features"] == first["drifted_features"] and note[0]["version"] == 1
    assert first["retrain"]["action"] == "started"
    executions = world["sfn"].list_executions(stateMachineArn=world["training"])["executions"]
    assert len(executions) == 1 and executions[0]["name"].startswith("churn-retrain-")
    started = world["sfn"].describe_execution(executionArn=executions[0]["executionArn"])
    assert json.loads(started["input"])["upload"]["version_id"] == "v-2"
    # WHEN more shifted traffic drifts two hours later (inside the 24-hour cooldown)
    clock.moment = NOW + timedelta(hours=2)
    capture(world["s3"], generate("churn", 400, 5, drift=True), spec, NOW + timedelta(hours=1, minutes=30), prefix="s")
    second = run(services, "m-2")
    # THEN it drifts again but retraining is skipped until the cooldown ends, and both are audited
    assert second["verdict"] == "drifted" and second["rows"] == 400
    assert second["retrain"]["action"] == "skipped"
    assert datetime.fromisoformat(second["retrain"]["cooldown_until"]) == NOW + timedelta(hours=24)
    assert len(world["sfn"].list_executions(stateMachineArn=world["training"])["executions"]) == 1
    assert audit_actions(world["registry"]) == [
        "monitor.retrain_started",
        "monitor.run",
        "monitor.retrain_skipped",
        "monitor.run",
    ]


def test_too_small_window_is_not_drift_and_is_not_consumed(world: dict[str, Any], spec: ModelSpec) -> None:
    # GIVEN only 20 shifted requests (min_rows is 50)
    capture(world["s3"], generate("churn", 20, 6, drift=True), spec, NOW - timedelta(minutes=5))
    # WHEN the monitor runs
    metrics: list[Any] = []
    result = run(world["services"], "m-1", metrics)
    # THEN too small: no drift, no retraining, metrics still emitted, the window starts there next time
    assert result["verdict"] == "too_small" and not result["drifted"]
    assert result["retrain"] == {"action": "not_requested"} and messages(world) == []
    assert {m.name for m in metrics} >= {"DriftScore", "ModelsDrifted", "ChampionVersion"}
    assert "last_window_end" not in get_monitor_state(world["registry"], "churn")


def test_distributed_path_agrees_with_the_inline_path(world: dict[str, Any], spec: ModelSpec) -> None:
    services = world["services"]
    # GIVEN 300 shifted captured requests
    capture(world["s3"], generate("churn", 300, 7, drift=True), spec, NOW - timedelta(minutes=40))
    inline = run(services, "m-inline")
    # WHEN the same window is checked with a zero-byte inline limit (forced through shards of 50 objects)
    forced = MonitorServices(
        **{
            **services.__dict__,
            "settings": MonitorSettings(**{**services.settings.__dict__, "inline_max_bytes": 0, "shard_objects": 50}),
        }
    )
    world["registry"].store.write(
        __import__("mlops.registry.tables", fromlist=["Update"]).Update(
            world["registry"].table, {"pk": "MODEL#churn", "sk": "MONITOR"}, remove=("last_window_end",)
        )
    )
    distributed = run(forced, "m-distributed")
    # THEN it went through 6 sketches, and the verdict, drifted features and rows are the same
    assert distributed["mode"] == "distributed"
    assert (
        world["s3"].list_objects_v2(Bucket=DATA_BUCKET, Prefix=distributed["report_key"][:-5] + "/sketches/")[
            "KeyCount"
        ]
        == 6
    )
    assert distributed["verdict"] == inline["verdict"] == "drifted"
    assert distributed["drifted_features"] == inline["drifted_features"]
    assert distributed["rows"] == inline["rows"] == 300


def test_labels_join_by_request_id_for_performance_drift(world: dict[str, Any], spec: ModelSpec) -> None:
    # GIVEN 200 captured predictions and labels for them that disagree with most predictions
    frame = generate("churn", 200, 8)
    ids = capture(world["s3"], frame, spec, NOW - timedelta(minutes=15))
    wrong = 1 - frame["churned"].astype(int)
    body = "request_id,churned\n" + "\n".join(f"{rid},{int(v)}" for rid, v in zip(ids, wrong, strict=True))
    world["s3"].put_object(
        Bucket=DATA_BUCKET, Key=label_key("churn", "csv", NOW - timedelta(minutes=5)), Body=body.encode()
    )
    # WHEN the monitor runs
    result = run(world["services"], "m-1")
    # THEN performance is degraded against the registered metrics, which makes the run drifted
    assert result["performance"] == "degraded"
    report = json.loads(world["s3"].get_object(Bucket=DATA_BUCKET, Key=result["report_key"])["Body"].read())
    assert report["performance"]["rows"] == 200
    assert result["verdict"] == "drifted"


def test_record_failure_writes_a_failed_run_and_audits(world: dict[str, Any]) -> None:
    # GIVEN a failed Analyze as the state machine reports it (the document holds Plan's result)
    plan = plan_step({"input": {"model": "churn", "trigger": "schedule"}, "execution_name": "m-9"}, world["services"])
    state = {
        "plan": plan,
        "failure": {"step": "Analyze", "error": {"Error": "States.TaskFailed", "Cause": "boom"}},
    }
    # WHEN recorded
    request = RecordFailureRequest.model_validate({"state": state, "execution_name": "m-9"})
    steps.record_failure(request, world["services"])
    # THEN a FAILED run item and a monitor.failed event exist
    runs = list_monitor_runs(world["registry"], "churn")
    assert runs[0]["status"] == "FAILED" and runs[0]["step"] == "Analyze" and runs[0]["cause"] == "boom"
    assert audit_actions(world["registry"]) == ["monitor.failed"]


def test_empty_window_is_too_small(world: dict[str, Any]) -> None:
    # GIVEN no captured request at all WHEN the monitor runs (even forced distributed)
    plan = plan_step({"input": {"model": "churn", "distributed": True}, "execution_name": "m-0"}, world["services"])
    result = analyze_step(plan, world["services"])
    # THEN nothing is sharded and the verdict is too small over 0 rows
    assert plan["mode"] == "inline" and plan["shards"] == 0
    assert result["verdict"] == "too_small" and result["rows"] == 0
