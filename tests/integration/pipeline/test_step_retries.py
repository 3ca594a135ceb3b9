"""Training steps retried by Step Functions after they ran (their answer lost): on moto, each step
run twice with the same input writes its effect once and answers the same."""

from __future__ import annotations

from typing import Any

from mlops.data.trigger import upload_from_event
from mlops.registry.specs import SpecStore
from mlops.spec.model import parse_spec
from mlops.training.steps.candidates import plan_training, train_candidate
from mlops.training.steps.evaluate import evaluate_candidates
from mlops.training.steps.onnx_check import check_onnx_export
from mlops.training.steps.outcome import gate_candidate, record_failure, register_candidate
from mlops.training.steps.services import Services
from mlops.training.steps.validate import validate_upload
from tests.integration.pipeline.test_holdout_steps import DIABETES, csv_bytes, spec_document
from tests.integration.registry.conftest import DATA_BUCKET


def actions(services: Services, chain: str) -> list[str]:
    events, _ = services.registry.audit.list_events(chain, limit=500)
    return [e.action for e in reversed(events)]


def register_event(services: Services) -> dict[str, Any]:
    """Register's input, as the state machine builds it after Validate ... CheckOnnx, Gate ran for one upload."""
    key = "datasets/diabetes/v1.csv"
    version = services.s3.put_object(Bucket=DATA_BUCKET, Key=key, Body=csv_bytes(DIABETES))["VersionId"]
    upload = upload_from_event({"bucket": {"name": DATA_BUCKET}, "object": {"key": key, "version-id": version}})
    common = {"upload": upload.to_dict(), "execution": "arn:sfn:run-v1", "execution_name": "run-v1"}
    validation = validate_upload(common["upload"], services=services)
    revision = {"spec_revision": validation["spec_revision"]}
    plan = plan_training({**common, **revision}, services=services)
    candidates = [
        train_candidate({**common, **revision, "candidate": candidate}, services=services)
        for candidate in plan["candidates"]
    ]
    evaluation = evaluate_candidates({**common, **revision, "candidates": candidates}, services=services)
    onnx = check_onnx_export(
        {"onnx": evaluation["onnx"], "model": "diabetes", "execution_name": "run-v1"}, services=services
    )
    gate = gate_candidate({"evaluation": evaluation, **revision, "model": "diabetes"}, services=services)
    return {
        **common,
        "evaluation": evaluation,
        "onnx": onnx,
        "gate": gate,
        "validation": validation,
        "status": "PENDING_APPROVAL",
    }


def test_register_retried_after_it_registered_returns_its_version(services: Services) -> None:
    # GIVEN a run's Register that registered v1 (then lost its answer, or outlived its timeout)
    SpecStore(services.registry).put(parse_spec(spec_document()), actor="alice")
    event = register_event(services)
    first = register_candidate(event, request_id="r1", services=services)
    before = actions(services, "diabetes")
    # WHEN Step Functions runs it again with the same input, under a new request id
    again = register_candidate(event, request_id="r2", services=services)
    # THEN it answers the version it made: no second version, no second registration event
    assert again == first and first["version"] == 1
    assert services.registry.get_model("diabetes").latest_version == 1
    added = actions(services, "diabetes")[len(before) :]
    assert "version.register" not in added, added


def test_record_failure_retried_records_once(services: Services) -> None:
    # GIVEN a run's failure, recorded once
    upload = {"bucket": DATA_BUCKET, "key": "datasets/diabetes/v9.csv", "version_id": "v9", "model": "diabetes"}
    event = {
        "failure": {"step": "Evaluate", "error": {"Error": "Lambda.ServiceException", "Cause": "boom"}},
        "upload": upload,
        "execution": "arn:sfn:run-v9",
        "execution_name": "run-v9",
    }
    first = record_failure(event, request_id="r1", services=services)
    # WHEN RecordFailure runs again (its answer was lost) under a new request id
    again = record_failure(event, request_id="r2", services=services)
    # THEN it answers the same, and the run's failure is audited once
    assert first == again and first["step"] == "Evaluate"
    assert actions(services, "diabetes").count("pipeline.failed") == 1
    assert services.registry.audit.verify("diabetes").ok
