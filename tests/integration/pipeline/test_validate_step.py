"""The validate step on moto: records the dataset version, writes the report, audits, never deletes."""

from __future__ import annotations

import json

from mlops.registry.specs import SpecStore
from mlops.spec.model import parse_spec
from mlops.training.steps.services import Services, record_ignored_upload, report_key
from mlops.training.steps.validate import validate_upload
from tests.integration.pipeline.conftest import put_upload
from tests.integration.registry.conftest import DATA_BUCKET

SPEC = {
    "name": "tiny",
    "task": "classification",
    "target": {"name": "label", "classes": [0, 1]},
    "features": [
        {"name": "age", "type": "int", "min": 0, "max": 120},
        {"name": "plan", "type": "category", "allowed": ["basic", "pro"]},
    ],
    "training": {"estimator": "sklearn.linear_model.LogisticRegression"},
}
GOOD = b"age,plan,label\n30,basic,0\n41,pro,1\n25,basic,0\n52,pro,1\n"
BAD = b"age,plan,label\n30,basic,0\n-4,gold,1\n"


def test_valid_dataset_is_recorded_and_reported(services: Services) -> None:
    # GIVEN a stored spec and a good upload
    SpecStore(services.registry).put(parse_spec(SPEC), actor="alice")
    upload = put_upload(services, "datasets/tiny/train.csv", GOOD)
    # WHEN the validate step runs
    result = validate_upload(upload, request_id="req-1", services=services)
    # THEN it is valid, the report sits under reports/, and the dataset version is recorded and audited
    assert result["valid"] is True
    assert result["dataset"]["rows"] == 4
    assert result["report_uri"] == f"s3://{DATA_BUCKET}/{report_key('tiny', upload['version_id'], 'validation.json')}"
    report = json.loads(
        services.s3.get_object(Bucket=DATA_BUCKET, Key=result["report_uri"].split("/", 3)[3])["Body"].read()
    )
    assert report["valid"] is True
    actions = [e.action for e in services.registry.audit.list_events("tiny")[0]]
    assert "dataset.validated" in actions
    assert services.registry.audit.verify("tiny").ok


def test_invalid_dataset_fails_cleanly_and_the_upload_is_kept(services: Services) -> None:
    SpecStore(services.registry).put(parse_spec(SPEC), actor="alice")
    upload = put_upload(services, "datasets/tiny/bad.csv", BAD)
    result = validate_upload(upload, request_id="req-2", services=services)
    assert result["valid"] is False
    assert "failed checks" in result["summary"]
    # the evidence is untouched
    kept = services.s3.get_object(Bucket=DATA_BUCKET, Key="datasets/tiny/bad.csv", VersionId=upload["version_id"])
    assert kept["Body"].read() == BAD
    assert "dataset.rejected" in [e.action for e in services.registry.audit.list_events("tiny")[0]]


def test_model_without_spec_is_rejected_with_a_report(services: Services) -> None:
    upload = put_upload(services, "datasets/ghost/train.csv", GOOD)
    result = validate_upload(upload, request_id="req-3", services=services)
    assert result["valid"] is False
    assert result["spec_revision"] is None
    assert "no spec for model 'ghost'" in result["summary"]
    assert "dataset.rejected" in [e.action for e in services.registry.audit.list_events("ghost")[0]]


def test_ignored_upload_is_audited_on_the_platform_chain(services: Services) -> None:
    record_ignored_upload("datasets/readme.txt", "outside the layout", services=services, request_id="r")
    events = services.registry.audit.list_events("_platform")[0]
    assert [e.action for e in events] == ["dataset.ignored"]


def test_champion_profile_adds_reference_checks(services: Services) -> None:
    # GIVEN a champion whose registered profile comes from its training data
    import pandas as pd

    from mlops.data.profile import profile_frame

    spec = parse_spec(SPEC)
    SpecStore(services.registry).put(spec, actor="alice")
    training = pd.DataFrame({"age": [30, 41, 25, 52] * 50, "plan": ["basic", "pro"] * 100, "label": [0, 1] * 100})
    services.s3.put_object(
        Bucket=DATA_BUCKET, Key="artifacts/tiny/profile.json", Body=profile_frame(training, spec).to_json().encode()
    )
    version = services.registry.register_version(
        "tiny",
        actor="pipeline",
        metrics={"accuracy": 0.9},
        tags={"profile_uri": f"s3://{DATA_BUCKET}/artifacts/tiny/profile.json"},
    )
    services.registry.approve("tiny", version.version, actor="carol")
    services.registry.set_alias("tiny", "champion", version.version, actor="carol")
    # WHEN a dataset whose ages moved far from the training data is validated
    shifted = "age,plan,label\n" + "".join(f"{100 + i % 15},basic,{i % 2}\n" for i in range(200))
    result = validate_upload(put_upload(services, "datasets/tiny/shifted.csv", shifted.encode()), services=services)
    # THEN the report carries the reference checks, and the mean shift of age fails them
    report = json.loads(
        services.s3.get_object(Bucket=DATA_BUCKET, Key=result["report_uri"].split("/", 3)[3])["Body"].read()
    )
    reference_checks = [c for c in report["checks"] if c["check"].startswith("reference.")]
    assert reference_checks
    assert any(c["column"] == "age" and c["status"] == "failed" for c in reference_checks)
