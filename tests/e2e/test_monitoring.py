"""The deployed drift check on the local cloud: predictions over HTTP -> captures -> monitor -> report, alert.

Model ``mon`` v1 comes from the training pipeline and becomes champion through the deployment
pipeline (approval not required), which creates its monitor schedule. The tests run in order on one
worker: each drift check's window starts where the previous one ended.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from mlops.monitoring.services import list_monitor_runs
from mlops.registry.versions import Registry
from mlops_local.testing import LocalCloudProcess, signed_as

from .churn import churn_spec

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "examples"))
from generate import generate  # noqa: E402  (examples/ is scripts, not a package)

MLOPS = str(Path(sys.executable).parent / "mlops")
MODEL = "mon"
pytestmark = pytest.mark.xdist_group("monitoring")


def parameter(cloud: LocalCloudProcess, leaf: str) -> str:
    return str(cloud.client("ssm").get_parameter(Name=f"/mlops/dev/{leaf}")["Parameter"]["Value"])


def mlops(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MLOPS, "--json", *args], env={**os.environ, **env}, capture_output=True, text=True, check=False, timeout=600
    )


def wait_for(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Request records as an application sends them (no target; JSON types)."""
    rows = json.loads(frame.drop(columns=["churned"]).to_json(orient="records", date_format="iso"))
    for row in rows:
        row["signup_date"] = str(row["signup_date"])[:10]
        row["senior"] = bool(row["senior"])
    return rows


@pytest.fixture(scope="module")
def monitored(local_cloud: LocalCloudProcess, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``mon`` v1 trained, deployed as champion; a queue on the notifications topic."""
    cloud = local_cloud
    env = cloud.environ()
    tmp = tmp_path_factory.mktemp("monitoring")
    spec = churn_spec(MODEL, approval={"required": False}, deployment={"strategy": "all_at_once"})
    spec["monitoring"].update(schedule="rate(1 hour)", min_rows=50, retrain_on_drift=True, cooldown_hours=24)
    (tmp / "spec.yaml").write_text(yaml.safe_dump(spec))
    assert mlops(env, "spec", "put", str(tmp / "spec.yaml"), "--actor", "alice").returncode == 0
    generate("churn", 1200, 7).to_csv(tmp / "train.csv", index=False)
    uploaded = mlops(signed_as(env, "scientist"), "data", "upload", str(tmp / "train.csv"), "--model", MODEL, "--wait")
    assert uploaded.returncode == 0, uploaded.stderr
    version = json.loads(uploaded.stdout)["run"]["output"]["version"]
    registry = Registry.for_dynamodb(
        cloud.client("dynamodb"),
        registry_table=parameter(cloud, "registry-table"),
        audit_table=parameter(cloud, "audit-table"),
    )
    wait_for(lambda: registry.get_model(MODEL).champion == version, 120, "the deployment to make v1 champion")
    queue = cloud.subscribe_queue(parameter(cloud, "notifications-topic-arn"), "monitoring-e2e")
    return {
        "cloud": cloud,
        "env": env,
        "tmp": tmp,
        "version": version,
        "registry": registry,
        "queue": queue,
        "bucket": parameter(cloud, "data-bucket"),
    }


def send(world: dict[str, Any], frame: pd.DataFrame, batch: int = 20) -> int:
    """Post ``frame`` in batches over signed HTTP; wait until every request's capture landed."""
    cloud, s3 = world["cloud"], world["cloud"].client("s3")
    ids = []
    rows = records(frame)
    for start in range(0, len(rows), batch):
        status, answer = cloud.api("POST", f"models/{MODEL}/predict", {"records": rows[start : start + batch]})
        assert status == 200, answer
        ids.append(answer["request_id"])

    def captured() -> bool:
        keys = {
            o["Key"].rsplit("/", 1)[-1].removesuffix(".jsonl")
            for page in s3.get_paginator("list_objects_v2").paginate(
                Bucket=world["bucket"], Prefix=f"captures/{MODEL}/"
            )
            for o in page.get("Contents", [])
        }
        return all(i in keys for i in ids)

    wait_for(captured, 30, "the captures")
    return len(ids)


def monitor(world: dict[str, Any], *args: str) -> subprocess.CompletedProcess[str]:
    return mlops(world["env"], "monitor", "run", MODEL, *args)


def monitor_events(world: dict[str, Any]) -> list[Any]:
    events, _ = world["registry"].audit.list_events(MODEL, limit=200)
    return [e for e in reversed(events) if e.action.startswith("monitor.retrain")]


def test_deployment_created_the_champions_schedule(monitored: dict[str, Any]) -> None:
    # GIVEN v1 made champion by the deployment pipeline
    scheduler = monitored["cloud"].client("scheduler")
    # THEN its drift check is scheduled per the spec, targeting the monitor state machine
    schedule = scheduler.get_schedule(Name=MODEL, GroupName="mlops-dev-monitoring")
    assert schedule["ScheduleExpression"] == "rate(1 hour)" and schedule["State"] == "ENABLED"
    assert schedule["Target"]["Arn"] == parameter(monitored["cloud"], "monitor-state-machine-arn")
    assert json.loads(schedule["Target"]["Input"]) == {"model": MODEL, "trigger": "schedule"}


def test_clean_traffic_gives_a_report_html_and_run_item(monitored: dict[str, Any]) -> None:
    # GIVEN 200 predictions on data like the training data
    send(monitored, generate("churn", 200, 11))
    html = monitored["tmp"] / "clean.html"
    # WHEN the drift check runs now
    result = monitor(monitored, "--html", str(html))
    # THEN no drift over the 200 rows; JSON and HTML reports sit next to the version
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["verdict"] == "no_drift" and answer["rows"] == 200 and answer["mode"] == "inline", answer
    assert answer["report_key"].startswith(f"reports/{MODEL}/v{monitored['version']}/drift/")
    report = json.loads(
        monitored["cloud"].client("s3").get_object(Bucket=monitored["bucket"], Key=answer["report_key"])["Body"].read()
    )
    assert report["verdict"] == "no_drift" and report["current"]["rows"] == 200
    assert report["prediction"] is not None, "the registered holdout predictions are the prediction reference"
    assert html.read_text().lstrip().lower().startswith("<!doctype html>")
    # AND the run is recorded in the registry
    runs = list_monitor_runs(monitored["registry"], MODEL)
    assert runs[0]["status"] == "SUCCEEDED" and runs[0]["report_key"] == answer["report_key"]
    # (the deployment's own "deployed" notice may land after the queue subscribed: it is not the monitor's)
    notes = [
        json.loads(m["Message"]) for m in monitored["cloud"].messages(monitored["queue"], wait_s=1) if "Message" in m
    ]
    assert [n for n in notes if not str(n.get("event", "")).startswith("deployment.")] == []


def test_shifted_traffic_drifts_and_alerts_but_retrains_nothing_without_new_data(monitored: dict[str, Any]) -> None:
    cloud = monitored["cloud"]
    training = cloud.client("stepfunctions")
    machine = parameter(cloud, "training-state-machine-arn")
    before = training.list_executions(stateMachineArn=machine)["executions"]
    # GIVEN 200 predictions on shifted data (newer customers, higher prices)
    send(monitored, generate("churn", 200, 12, drift=True))
    # WHEN the drift check runs with --fail-on-drift
    result = monitor(monitored, "--fail-on-drift")
    # THEN it exits 1 and names the shifted features
    assert result.returncode == 1, result.stderr
    answer = json.loads(result.stdout)
    assert answer["verdict"] == "drifted"
    assert {"tenure_months", "monthly_charges"} & set(answer["drifted_features"]), answer["drifted_features"]
    # AND no retrain starts: the only dataset is the champion's own, and no labels were uploaded
    retrain = answer["retrain"]
    assert retrain["action"] == "skipped" and retrain["code"] == "no_new_data", retrain
    assert retrain["reason"].startswith(
        f"no dataset newer than the champion's (v{monitored['version']}: datasets/{MODEL}/"
    )
    assert training.list_executions(stateMachineArn=machine)["executions"] == before
    assert monitored["registry"].get_model(MODEL).latest_version == monitored["version"]
    # AND the topic is notified with the model, version, features and report
    notes = [json.loads(m["Message"]) for m in cloud.messages(monitored["queue"]) if "Message" in m]
    drift_notes = [n for n in notes if n.get("event") == "model.drifted"]
    assert drift_notes and drift_notes[0]["report_key"] == answer["report_key"]
    assert drift_notes[0]["drifted_features"] == answer["drifted_features"]
    # AND the skip is audited with its reason
    events = monitor_events(monitored)
    assert [e.action for e in events] == ["monitor.retrain_skipped"] and events[0].after["reason"] == retrain["reason"]
    # AND the metrics reached CloudWatch, where the deployment's drift alarm fires on them
    service = {"Name": "service", "Value": "mlops-dev-monitor"}
    listed = cloud.client("cloudwatch").list_metrics(
        Namespace="MLOps", MetricName="DriftScore", Dimensions=[service, {"Name": "model", "Value": MODEL}]
    )
    assert listed["Metrics"], "DriftScore per model"
    assert cloud.wait_for_alarm("mlops-dev-drift", "ALARM", timeout_s=30)["StateValue"] == "ALARM"


def test_distributed_map_path(monitored: dict[str, Any]) -> None:
    # GIVEN 120 shifted predictions in 12 requests (12 capture objects)
    send(monitored, generate("churn", 120, 14, drift=True), batch=10)
    # WHEN the check is forced through the Distributed Map in shards of 4 objects
    result = monitor(monitored, "--distributed", "--shard-objects", "4")
    # THEN the shards' sketches (at least 3; objects written just before the window are listed
    # too and their records filtered out) were merged into the same kind of report
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["mode"] == "distributed" and answer["rows"] == 120 and answer["verdict"] == "drifted", answer
    s3 = monitored["cloud"].client("s3")
    sketches = s3.list_objects_v2(
        Bucket=monitored["bucket"], Prefix=answer["report_key"][: -len(".json")] + "/sketches/"
    )
    assert sketches["KeyCount"] == answer["shards"] >= 3
    report = json.loads(s3.get_object(Bucket=monitored["bucket"], Key=answer["report_key"])["Body"].read())
    assert any(f"merged from {answer['shards']} shard sketch" in note for note in report["notes"])


def test_the_schedule_starts_the_check(monitored: dict[str, Any]) -> None:
    cloud = monitored["cloud"]
    sfn = cloud.client("stepfunctions")
    machine = parameter(cloud, "monitor-state-machine-arn")
    before = {e["name"] for e in sfn.list_executions(stateMachineArn=machine)["executions"]}
    # WHEN the model's schedule fires (as Scheduler does every hour)
    cloud.fire(f"mlops-dev-monitoring/{MODEL}")

    # THEN a drift check runs with the trigger "schedule" and is recorded as such
    def finished() -> Any:
        new = [e for e in sfn.list_executions(stateMachineArn=machine)["executions"] if e["name"] not in before]
        return new if new and all(e["status"] != "RUNNING" for e in new) else None

    executions = wait_for(finished, 120, "the scheduled drift check")
    assert [e["status"] for e in executions] == ["SUCCEEDED"]
    runs = list_monitor_runs(monitored["registry"], MODEL, limit=1)
    assert runs[0]["trigger"] == "schedule" and runs[0]["status"] == "SUCCEEDED"
