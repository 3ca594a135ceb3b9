"""Scheduled batch jobs on moto: the one periodic trigger starts each model's due job once.

Real boto3 against moto's DynamoDB (registry, spec store), S3 (a versioned data bucket) and Step
Functions (the batch state machine's executions); the clock is passed in.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from moto import mock_aws

from mlops.batch.runs import list_jobs
from mlops.batch.schedules import start_due_jobs
from mlops.registry.specs import SpecStore
from mlops.registry.versions import Registry
from mlops.spec.model import parse_spec
from mlops_local.patches import serialize_dynamodb
from tests.integration.registry.conftest import AUDIT_TABLE, REGISTRY_TABLE, create_tables

BUCKET = "data"
NIGHTLY = "batch/churn/nightly.csv"
SPEC: dict[str, Any] = {
    "name": "churn",
    "task": "classification",
    "target": {"name": "churned", "classes": [0, 1]},
    "features": [{"name": "tenure", "type": "int", "min": 0}],
    "training": {"estimator": "sklearn.linear_model.LogisticRegression"},
    "batch": {"schedule": "cron(0 2 * * ? *)", "input": NIGHTLY},
}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


class Cloud:
    def __init__(self) -> None:
        self.s3 = boto3.client("s3", region_name="us-east-1")
        self.s3.create_bucket(Bucket=BUCKET)
        self.s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        create_tables(dynamodb)
        self.registry = Registry.for_dynamodb(dynamodb, registry_table=REGISTRY_TABLE, audit_table=AUDIT_TABLE)
        self.sfn = boto3.client("stepfunctions", region_name="us-east-1")
        role = "arn:aws:iam::123456789012:role/batch"
        definition = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}})
        self.arn = self.sfn.create_state_machine(name="mlops-dev-batch", definition=definition, roleArn=role)[
            "stateMachineArn"
        ]

    def model(self, spec: dict[str, Any], *, champion: bool = True) -> None:
        name = spec["name"]
        SpecStore(self.registry).put(parse_spec(spec), actor="alice")
        if champion:
            version = self.registry.register_version(
                name, actor="pipeline", spec_revision=1, artifact_uri=None, artifact_sha256=None, tags={}
            )
            self.registry.approve(name, version.version, actor="carol")
            self.registry.set_alias(name, "champion", version.version, actor="carol")

    def tick(self, now: str) -> list[dict[str, Any]]:
        return start_due_jobs(self.registry, self.sfn, self.s3, self.arn, BUCKET, now=at(now))

    def execution_input(self, job_id: str) -> dict[str, Any]:
        arn = self.arn.replace(":stateMachine:", ":execution:") + f":{job_id}"
        loaded: dict[str, Any] = json.loads(self.sfn.describe_execution(executionArn=arn)["input"])
        return loaded


@pytest.fixture
def cloud() -> Iterator[Cloud]:
    serialize_dynamodb()
    with mock_aws():
        yield Cloud()


def test_due_job_starts_once_per_due_time_on_the_inputs_current_version(cloud: Cloud) -> None:
    cloud.model(SPEC)
    first = cloud.s3.put_object(Bucket=BUCKET, Key=NIGHTLY, Body=b"tenure\n3\n")["VersionId"]
    current = cloud.s3.put_object(Bucket=BUCKET, Key=NIGHTLY, Body=b"tenure\n3\n4\n")["VersionId"]
    assert first != current

    assert [r["action"] for r in cloud.tick("2026-12-06T01:45")] == ["not_due"]
    (started,) = cloud.tick("2026-12-06T02:00")
    assert started["action"] == "started" and started["job_id"] == "churn.schedule-20261206T0200Z"
    sent = cloud.execution_input("churn.schedule-20261206T0200Z")
    assert sent == {
        "model": "churn",
        "bucket": BUCKET,
        "key": NIGHTLY,
        "version_id": current,
        "job_id": "churn.schedule-20261206T0200Z",
        "trigger": "schedule",
        "started_by": "schedule:cron(0 2 * * ? *)@2026-12-06T02:00Z",
    }
    # The next ticks see the same due time: nothing more is started.
    for later in ("2026-12-06T02:15", "2026-12-06T02:30", "2026-12-06T02:45"):
        assert [r["action"] for r in cloud.tick(later)] == ["duplicate"]
    assert [j["job_id"] for j in list_jobs(cloud.sfn, cloud.arn, "churn")] == ["churn.schedule-20261206T0200Z"]
    # The next day's due time is a new job; `mlops batch list` shows both.
    assert [r["action"] for r in cloud.tick("2026-12-07T02:05")] == ["started"]
    listed = sorted(j["job_id"] for j in list_jobs(cloud.sfn, cloud.arn, "churn"))
    assert listed == ["churn.schedule-20261206T0200Z", "churn.schedule-20261207T0200Z"]


def test_not_due_outside_the_catch_up_window(cloud: Cloud) -> None:
    cloud.model(SPEC)
    cloud.s3.put_object(Bucket=BUCKET, Key=NIGHTLY, Body=b"tenure\n3\n")
    assert [r["action"] for r in cloud.tick("2026-12-06T01:59")] == ["not_due"]
    assert [r["action"] for r in cloud.tick("2026-12-06T03:01")] == ["not_due"]  # more than an hour late
    assert list_jobs(cloud.sfn, cloud.arn, "churn") == []


def test_missing_input_is_named_and_starts_nothing(cloud: Cloud) -> None:
    cloud.model(SPEC)
    (result,) = cloud.tick("2026-12-06T02:00")
    assert result["action"] == "input_missing"
    assert "model churn: batch.input 'batch/churn/nightly.csv': no such object in s3://data/" in result["error"]
    assert "2026-12-06T02:00Z" in result["error"]
    assert list_jobs(cloud.sfn, cloud.arn, "churn") == []
    # Uploaded before the next tick, within the window: the due time's job starts then.
    cloud.s3.put_object(Bucket=BUCKET, Key=NIGHTLY, Body=b"tenure\n3\n")
    assert [r["action"] for r in cloud.tick("2026-12-06T02:15")] == ["started"]


def test_output_prefix_and_models_without_schedule_or_champion_or_archived(cloud: Cloud) -> None:
    cloud.model({**SPEC, "batch": {"schedule": "rate(1 day)", "input": NIGHTLY, "output": "batch-jobs/churn/daily/"}})
    cloud.model({**SPEC, "name": "plain", "batch": {}})
    cloud.model(
        {**SPEC, "name": "fresh", "batch": {"schedule": "rate(1 day)", "input": "batch/fresh/a.csv"}}, champion=False
    )
    cloud.model(
        {**SPEC, "name": "old", "batch": {"schedule": "rate(1 day)", "input": "batch/old/a.csv"}}, champion=False
    )
    cloud.registry.archive_model("old", actor="carol", reason="retired")
    cloud.s3.put_object(Bucket=BUCKET, Key=NIGHTLY, Body=b"tenure\n3\n")
    results = sorted(cloud.tick("2026-12-06T00:10"), key=lambda r: r["model"])
    assert [(r["model"], r["action"]) for r in results] == [("churn", "started"), ("fresh", "no_champion")]
    sent = cloud.execution_input("churn.schedule-20261206T0000Z")
    assert sent["output_prefix"] == "batch-jobs/churn/daily/churn.schedule-20261206T0000Z"
