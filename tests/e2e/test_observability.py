"""Metrics, alarms and the dashboard on the local cloud: a refused artifact is alarmed, over real HTTP."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops.registry.specs import SpecStore
from mlops.registry.versions import Registry
from mlops.spec.model import parse_spec
from mlops_local.metrics import EVALUATOR_REASON
from mlops_local.testing import LocalCloudProcess

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.xdist_group("local-cloud")


def parameter(cloud: LocalCloudProcess, leaf: str) -> str:
    return str(cloud.client("ssm").get_parameter(Name=f"/mlops/dev/{leaf}")["Parameter"]["Value"])


@pytest.fixture(scope="module")
def registry(local_cloud: LocalCloudProcess) -> Registry:
    return Registry.for_dynamodb(
        local_cloud.client("dynamodb"),
        registry_table=parameter(local_cloud, "registry-table"),
        audit_table=parameter(local_cloud, "audit-table"),
    )


VALID_RECORD = {
    "customer_id": "C000042",
    "tenure_months": 3,
    "monthly_charges": 70.5,
    "total_charges": 211.5,
    "contract": "month-to-month",
    "internet_service": "fiber",
    "payment_method": "card",
    "region": "eu-west",
    "support_calls": 1,
    "senior": False,
    "signup_date": "2026-08-01",
}


def tampered_champion(cloud: LocalCloudProcess, registry: Registry, model: str) -> None:
    """``model`` v1 is champion, but the registry's sha256 is not its artifact's."""
    document = yaml.safe_load((ROOT / "examples" / "specs" / "churn.yaml").read_text())
    document.update(name=model, deployment={"strategy": "all_at_once"})
    SpecStore(registry).put(parse_spec(document), actor="alice")
    bucket = parameter(cloud, "data-bucket")
    body = b"not the model the registry describes"
    key = f"artifacts/{model}/v1/model.pkl"
    cloud.client("s3").put_object(Bucket=bucket, Key=key, Body=body)
    wrong = hashlib.sha256(body + b"!").hexdigest()
    created = registry.register_version(
        model, actor="pipeline", spec_revision=1, artifact_uri=f"s3://{bucket}/{key}", artifact_sha256=wrong
    )
    registry.approve(model, created.version, actor="carol")
    registry.set_alias(model, "champion", created.version, actor="carol")


def test_refused_artifact_becomes_a_metric_an_alarm_and_a_notification(
    local_cloud: LocalCloudProcess, registry: Registry
) -> None:
    cloudwatch = local_cloud.client("cloudwatch")
    alarm = "mlops-dev-artifact-refused"
    # GIVEN the notifications topic with a queue subscribed, and the alarm back to OK as if evaluated
    inbox = local_cloud.subscribe_queue(parameter(local_cloud, "notifications-topic-arn"), "obs-alarm-inbox")
    cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="OK", StateReason=f"{EVALUATOR_REASON}: reset by the test")
    tampered_champion(local_cloud, registry, "obs-tampered")
    # WHEN an application asks it for a prediction over signed HTTPS
    # (a record the spec accepts: a refused request is answered before any model is loaded)
    status, answer = local_cloud.api("POST", "models/obs-tampered/predict", {"record": VALID_RECORD})
    # THEN the answer is a clear 503, never the artifact's location
    assert status == 503 and answer["error"] == "artifact_integrity", answer
    # AND the function's ArtifactRefused metric is in CloudWatch, on the environment's service dimension
    metrics = cloudwatch.list_metrics(Namespace="MLOps", MetricName="ArtifactRefused")["Metrics"]
    dimension_sets = [{d["Name"]: d["Value"] for d in m["Dimensions"]} for m in metrics]
    assert {"service": "mlops-dev-inference"} in dimension_sets
    assert {"service": "mlops-dev-inference", "model": "obs-tampered", "version": "1"} in dimension_sets
    # AND the alarm fires and CloudWatch's notification reaches the topic's subscribers
    fired = local_cloud.wait_for_alarm(alarm, "ALARM")
    assert fired["StateReason"].startswith(EVALUATOR_REASON)
    notes = [json.loads(m["Message"]) for m in local_cloud.messages(inbox)]
    assert any(n.get("AlarmName") == alarm and n["NewStateValue"] == "ALARM" for n in notes), notes


def test_dashboard_and_alarms_exist_in_the_local_cloud(local_cloud: LocalCloudProcess) -> None:
    cloudwatch = local_cloud.client("cloudwatch")
    # THEN the dashboard is there with its widgets, and every alarm of the template
    body: dict[str, Any] = json.loads(cloudwatch.get_dashboard(DashboardName="mlops-dev")["DashboardBody"])
    titles = {w["properties"].get("title") for w in body["widgets"]}
    assert {"API latency p50 / p99 (ms)", "Errors", "Pipeline failures", "Alarms"} <= titles
    names = {a["AlarmName"] for a in cloudwatch.describe_alarms(AlarmNamePrefix="mlops-dev-")["MetricAlarms"]}
    assert {"mlops-dev-inference-5xx", "mlops-dev-artifact-refused", "mlops-dev-training-failed"} <= names
