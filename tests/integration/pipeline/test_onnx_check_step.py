"""The CheckOnnx state on moto with real data: Evaluate exports and writes the check's input, CheckOnnx
runs the export with onnxruntime, Register records CheckOnnx's result.

The data is palmerpenguins as its package ships it (three species, two category features, NA
values). The steps run as the state machine runs them: each step's output is the next one's input.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from mlops.errors import CheckFailedError
from mlops.registry.specs import SpecStore
from mlops.storage import read_uri
from mlops.training.onnx_check import CHECK_FILE_NAME, PROBABILITY_TOLERANCE
from mlops.training.steps.candidates import plan_training, train_candidate
from mlops.training.steps.evaluate import evaluate_candidates
from mlops.training.steps.onnx_check import check_onnx_export
from mlops.training.steps.outcome import gate_candidate, register_candidate
from mlops.training.steps.services import Services
from mlops.training.steps.validate import validate_upload
from tests.conformance.datasets import PENGUINS
from tests.integration.pipeline.conftest import put_upload
from tests.integration.registry.conftest import DATA_BUCKET

MODEL = PENGUINS.key
RUN = "run-penguins-1"


def evaluated(services: Services) -> dict[str, Any]:
    """Validate, plan, train and evaluate one upload of the penguins; what Register then needs."""
    SpecStore(services.registry).put(PENGUINS.spec, actor="alice")
    upload = put_upload(services, f"datasets/{MODEL}/v1.csv", PENGUINS.training_bytes())
    common = {"upload": upload, "execution": f"arn:sfn:{RUN}", "execution_name": RUN}
    validation = validate_upload(upload, services=services)
    assert validation["valid"], validation["summary"]
    revision = {"spec_revision": validation["spec_revision"]}
    plan = plan_training({**common, **revision}, services=services)
    candidates = [
        train_candidate({**common, **revision, "candidate": c}, services=services) for c in plan["candidates"]
    ]
    evaluation = evaluate_candidates({**common, **revision, "candidates": candidates}, services=services)
    gate = gate_candidate({"evaluation": evaluation, **revision, "model": MODEL}, services=services)
    return {**common, "evaluation": evaluation, "gate": gate, "validation": validation}


def check_event(onnx: dict[str, Any]) -> dict[str, Any]:
    """CheckOnnx's Payload, as the state machine builds it."""
    return {"onnx": onnx, "model": MODEL, "execution_name": RUN}


def register(services: Services, run: dict[str, Any], onnx: dict[str, Any]) -> Any:
    registered = register_candidate({**run, "onnx": onnx, "status": "PENDING_APPROVAL"}, services=services)
    return services.registry.get_version(MODEL, registered["version"])


def test_evaluate_stores_the_export_and_the_check_input_and_check_onnx_passes_it(services: Services) -> None:
    # GIVEN a run evaluated by the Evaluate step (scikit-learn and skl2onnx, no onnxruntime)
    run = evaluated(services)
    export = run["evaluation"]["onnx"]
    # THEN the export and the check's input are beside the run's artifacts, each with its sha256
    assert export["uri"] == f"s3://{DATA_BUCKET}/artifacts/{MODEL}/runs/{RUN}/model.onnx"
    assert export["check_uri"] == f"s3://{DATA_BUCKET}/artifacts/{MODEL}/runs/{RUN}/{CHECK_FILE_NAME}"
    check_bytes = read_uri(services.s3, export["check_uri"])
    assert hashlib.sha256(check_bytes).hexdigest() == export["check_sha256"]
    document = json.loads(check_bytes)
    holdout_rows = run["evaluation"]["split"]["holdout_rows"]
    assert len(document["records"]) == document["holdout_rows"] == holdout_rows
    assert len(document["expected"]["labels"]) == len(document["expected"]["probabilities"]) == holdout_rows
    assert set(document["records"][0]) == set(PENGUINS.spec.feature_names)
    assert any(value is None for record in document["records"] for value in record.values())  # NA kept as null
    # WHEN CheckOnnx runs the export with onnxruntime
    result = check_onnx_export(check_event(export), services=services)
    # THEN it passes within the stated tolerance on every holdout row
    assert (result["uri"], result["sha256"]) == (export["uri"], export["sha256"])
    assert result["max_deltas"]["rows"] == holdout_rows
    assert 0.0 <= result["max_deltas"]["max_probability_delta"] <= PROBABILITY_TOLERANCE
    # AND Register records the checked export as the version's ONNX model
    version = register(services, run, result)
    assert (version.tags["onnx_uri"], version.tags["onnx_sha256"]) == (export["uri"], export["sha256"])
    assert "onnx_error" not in version.tags


def test_an_export_that_differs_from_scikit_learn_is_registered_without_onnx(services: Services) -> None:
    # GIVEN a run whose export gives other answers than scikit-learn (here: scikit-learn's
    # answers for the first rows are rotated by one class, as a faulty converter would give)
    run = evaluated(services)
    export = run["evaluation"]["onnx"]
    document = json.loads(read_uri(services.s3, export["check_uri"]))
    probabilities = document["expected"]["probabilities"]
    for i in range(3):
        probabilities[i] = probabilities[i][1:] + probabilities[i][:1]
    body = json.dumps(document).encode()
    key = f"artifacts/{MODEL}/runs/{RUN}/differs.json"
    services.s3.put_object(Bucket=DATA_BUCKET, Key=key, Body=body)
    differing = {**export, "check_uri": f"s3://{DATA_BUCKET}/{key}", "check_sha256": hashlib.sha256(body).hexdigest()}
    # WHEN CheckOnnx compares
    result = check_onnx_export(check_event(differing), services=services)
    # THEN the check fails without failing the run: the reason names the model and the deltas
    assert set(result) == {"error"}
    assert f"ONNX export of {MODEL} differs from scikit-learn" in result["error"]
    assert f"(tolerance {PROBABILITY_TOLERANCE})" in result["error"]
    # AND the version is registered without an ONNX model, the reason in its tags (served from its pickle)
    version = register(services, run, result)
    assert "onnx_uri" not in version.tags
    assert version.tags["onnx_error"] == result["error"]


def test_an_export_that_could_not_be_made_passes_through_to_register(services: Services) -> None:
    # GIVEN Evaluate's answer for a pipeline skl2onnx cannot convert
    reason = "cannot export sklearn.svm.SVC to ONNX: MissingShapeCalculator: no shape calculator"
    # WHEN CheckOnnx runs (it reads nothing)
    result = check_onnx_export(check_event({"error": reason}), services=services)
    # THEN the reason is its result, as Register recorded it before the check had its own state
    assert result == {"error": reason}


@pytest.mark.parametrize("which", ["uri", "check_uri"])
def test_an_object_changed_after_evaluate_fails_the_step(services: Services, which: str) -> None:
    # GIVEN a run whose export (or check input) was overwritten after Evaluate recorded its sha256
    run = evaluated(services)
    export = run["evaluation"]["onnx"]
    bucket, key = export[which][len("s3://") :].split("/", 1)
    services.s3.put_object(Bucket=bucket, Key=key, Body=b"replaced")
    # WHEN CheckOnnx reads it THEN the step fails (the run fails: nothing unchecked is registered)
    with pytest.raises(CheckFailedError, match=f"{key}: sha256 differs from the one Evaluate recorded"):
        check_onnx_export(check_event(export), services=services)
