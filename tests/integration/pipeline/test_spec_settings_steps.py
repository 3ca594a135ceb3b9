"""The Validate and Gate steps on moto follow the spec's validation and fairness settings.

Real data (ISLP's Caravan and Default, as the package ships them), real boto3 against moto, the
step functions the state machine calls: no code of ours is replaced.
"""

from __future__ import annotations

import io
import json
from importlib import resources
from typing import Any

import boto3
import pandas as pd
import pytest

from mlops.evaluation import evaluate
from mlops.pipeline import upload_from_event
from mlops.pipeline_steps import Services, gate_candidate, validate_upload
from mlops.platform import Platform
from mlops.registry import Registry
from mlops.spec import parse_spec
from mlops.specstore import SpecStore
from mlops.training import train
from tests.integration.registry.conftest import AUDIT_TABLE, DATA_BUCKET, REGISTRY_TABLE


def shipped(name: str) -> bytes:
    return resources.files("ISLP").joinpath("data", name).read_bytes()


@pytest.fixture
def services(dynamodb: Any) -> Services:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=DATA_BUCKET)
    s3.put_bucket_versioning(Bucket=DATA_BUCKET, VersioningConfiguration={"Status": "Enabled"})
    platform = Platform(
        environment="test", data_bucket=DATA_BUCKET, registry_table=REGISTRY_TABLE, audit_table=AUDIT_TABLE
    )
    registry = Registry.for_dynamodb(dynamodb, registry_table=REGISTRY_TABLE, audit_table=AUDIT_TABLE)
    return Services(platform=platform, s3=s3, registry=registry)


def upload(services: Services, key: str, body: bytes) -> dict[str, Any]:
    version = services.s3.put_object(Bucket=DATA_BUCKET, Key=key, Body=body)["VersionId"]
    event = {
        "detail": {
            "bucket": {"name": DATA_BUCKET},
            "object": {"key": key, "version-id": version, "size": len(body)},
            "requester": "alice",
        }
    }
    return upload_from_event(event).to_dict()


def read_json(services: Services, uri: str) -> Any:
    bucket, key = uri.removeprefix("s3://").split("/", 1)
    return json.loads(services.s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def caravan_document(duplicate_rows: str) -> dict[str, Any]:
    header = shipped("Caravan.csv").split(b"\n", 1)[0].decode().strip().split(",")
    return {
        "name": "caravan",
        "task": "classification",
        "target": {"name": "Purchase", "classes": ["No", "Yes"], "positive_class": "Yes"},
        "features": [{"name": name, "type": "int", "min": 0} for name in header[:-1]],
        "training": {"estimator": "sklearn.linear_model.LogisticRegression"},
        "validation": {"duplicate_rows": duplicate_rows},
    }


@pytest.mark.parametrize(("setting", "valid"), [("warning", True), ("error", False)])
def test_validate_step_applies_the_stored_specs_duplicate_setting(
    services: Services, setting: str, valid: bool
) -> None:
    # GIVEN a stored Caravan spec and the shipped file (602 rows repeat an earlier row) uploaded
    SpecStore(services.registry).put(parse_spec(caravan_document(setting)), actor="alice")
    item = upload(services, "datasets/caravan/caravan.csv", shipped("Caravan.csv"))
    # WHEN the Validate step runs
    result = validate_upload(item, request_id="req-1", services=services)
    # THEN the verdict follows the spec, the summary and the audit event name the duplicate check
    assert result["valid"] is valid, result["summary"]
    report = read_json(services, result["report_uri"])
    [check] = [c for c in report["checks"] if c["check"] == "dataset.duplicate_rows"]
    assert check["failing_count"] == 602 and check["status"] == ("warning" if valid else "failed")
    assert report["settings"]["duplicate_rows"] == setting
    [event] = [
        e
        for e in services.registry.audit.list_events("caravan")[0]
        if e.action in ("dataset.validated", "dataset.rejected")
    ]
    if valid:
        assert result["summary"] == "valid: 5822 rows, no check failed; 1 warning(s) (dataset.duplicate_rows)"
        assert event.action == "dataset.validated" and event.after["warning_checks"] == ["dataset.duplicate_rows"]
    else:
        assert "dataset.duplicate_rows" in result["summary"]
        assert event.action == "dataset.rejected" and event.after["failed_checks"] == ["dataset.duplicate_rows"]


DEFAULT = {
    "name": "default",
    "task": "classification",
    "target": {"name": "default", "classes": ["No", "Yes"], "positive_class": "Yes"},
    "features": [
        {"name": "student", "type": "category", "allowed": ["No", "Yes"]},
        {"name": "balance", "type": "float", "min": 0},
        {"name": "income", "type": "float", "min": 0},
    ],
    "training": {"estimator": "sklearn.linear_model.LogisticRegression", "params": {"max_iter": 1000}},
}


@pytest.fixture(scope="module")
def default_evaluation() -> dict[str, Any]:
    """A candidate trained on ISLP Default and evaluated on its holdout (fairness by student)."""
    spec = parse_spec({**DEFAULT, "fairness": {"protected_attributes": ["student"]}})
    frame = pd.read_csv(io.BytesIO(shipped("Default.csv")), dtype={"default": str, "student": str})
    result = train(frame, spec)
    return evaluate(result.pipeline, result.holdout, spec).to_dict()


@pytest.mark.parametrize("mode", ["gate", "report"])
def test_gate_step_refuses_on_the_predictions_disparate_impact_only_in_gate_mode(
    services: Services, default_evaluation: dict[str, Any], mode: str
) -> None:
    # GIVEN a candidate whose predicted default rate for non-students is well under the students'
    fairness = default_evaluation["fairness"]["student"]
    assert fairness["disparate_impact"] is not None and fairness["disparate_impact"] < 0.8, fairness
    assert fairness["excluded_groups"] == [] and min(fairness["group_rows"].values()) >= 30
    # AND its spec stored with fairness.mode, its evaluation stored where the Evaluate step puts it
    spec = parse_spec({**DEFAULT, "fairness": {"protected_attributes": ["student"], "mode": mode}})
    revision = SpecStore(services.registry).put(spec, actor="alice").revision
    key = "artifacts/default/runs/r1/evaluation.json"
    services.s3.put_object(Bucket=DATA_BUCKET, Key=key, Body=json.dumps({"evaluation": default_evaluation}).encode())
    event = {
        "model": "default",
        "spec_revision": revision,
        "evaluation": {
            "metrics": {k: v for k, v in default_evaluation["metrics"].items() if v is not None},
            "champion": None,
            "evaluation_uri": f"s3://{DATA_BUCKET}/{key}",
        },
    }
    # WHEN the Gate step runs
    result = gate_candidate(event, services=services)
    # THEN gate mode refuses the candidate naming the attribute; report mode records the same figure
    [check] = [c for c in result["checks"] if c["check"] == "fairness"]
    assert check["value"] == pytest.approx(fairness["disparate_impact"]) and check["passed"] is False
    assert check["enforced"] is (mode == "gate")
    if mode == "gate":
        assert result["passed"] is False
        assert result["reasons"] == [check["message"]] and "disparate impact across student" in check["message"]
    else:
        assert result["passed"] is True and result["reasons"] == []
        assert check["message"].endswith("reported only (fairness.mode: report)")
