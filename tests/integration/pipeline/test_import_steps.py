"""Imported models through the training steps on moto, on the real penguins (palmerpenguins).

Plan, Train (which imports instead of fitting), Evaluate, Gate and Register run as the state
machine runs them, each step's output the next one's input; the registered version carries the
import's origin in its tags and its model card.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from mlops.data.trigger import upload_from_event
from mlops.errors import InputError
from mlops.registry.origin import ONNX_FORMAT, SKLEARN_FORMAT
from mlops.registry.specs import SpecStore
from mlops.storage import read_uri
from mlops.training.artifacts import dump_artifact
from mlops.training.imported import export_imported_onnx
from mlops.training.steps.candidates import plan_training, train_candidate
from mlops.training.steps.evaluate import evaluate_candidates
from mlops.training.steps.onnx_check import check_onnx_export
from mlops.training.steps.outcome import gate_candidate, register_candidate
from mlops.training.steps.services import Services
from mlops.training.steps.validate import validate_upload
from tests.conformance.datasets import PENGUINS
from tests.conformance.notebook import notebook_pipeline, penguins_frame
from tests.integration.registry.conftest import DATA_BUCKET

MODEL = "palmer-penguins"
UPLOADER = "arn:aws:iam::123456789012:user/dana"


def dataset_upload(services: Services) -> dict[str, Any]:
    key = f"datasets/{MODEL}/penguins.csv"
    version = services.s3.put_object(Bucket=DATA_BUCKET, Key=key, Body=PENGUINS.training_bytes())["VersionId"]
    event = {"detail": {"bucket": {"name": DATA_BUCKET}, "object": {"key": key, "version-id": version}}}
    return upload_from_event(event).to_dict()


def stored_import(services: Services, data: bytes, artifact_format: str, **origin: Any) -> dict[str, Any]:
    sha256 = hashlib.sha256(data).hexdigest()
    key = f"imports/{MODEL}/{sha256}/{'model.onnx' if artifact_format == ONNX_FORMAT else 'model.pkl'}"
    services.s3.put_object(Bucket=DATA_BUCKET, Key=key, Body=data)
    return {
        "uri": f"s3://{DATA_BUCKET}/{key}",
        "format": artifact_format,
        "sha256": sha256,
        "uploader": UPLOADER,
        **origin,
    }


def run_import(services: Services, imported: dict[str, Any], name: str) -> dict[str, Any]:
    upload = {**dataset_upload(services), "imported": imported}
    common = {"upload": upload, "execution": f"arn:sfn:{name}", "execution_name": name}
    validation = validate_upload(upload, services=services)
    assert validation["valid"], validation["summary"]
    revision = validation["spec_revision"]
    plan = plan_training({**common, "spec_revision": revision}, services=services)
    candidates = [
        train_candidate({**common, "spec_revision": revision, "candidate": c}, services=services)
        for c in plan["candidates"]
    ]
    evaluation = evaluate_candidates({**common, "spec_revision": revision, "candidates": candidates}, services=services)
    onnx = check_onnx_export({"onnx": evaluation["onnx"], "model": MODEL, "execution_name": name}, services=services)
    gate = gate_candidate({"evaluation": evaluation, "spec_revision": revision, "model": MODEL}, services=services)
    registered = register_candidate(
        {
            **common,
            "evaluation": evaluation,
            "onnx": onnx,
            "gate": gate,
            "validation": validation,
            "status": "PENDING_APPROVAL" if gate["passed"] else "REJECTED",
        },
        services=services,
    )
    return {
        "plan": plan,
        "candidates": candidates,
        "evaluation": evaluation,
        "onnx": onnx,
        "gate": gate,
        "registered": registered,
    }


@pytest.fixture
def penguins_spec(services: Services) -> None:
    SpecStore(services.registry).put(PENGUINS.spec, actor="alice")


@pytest.mark.usefixtures("penguins_spec")
def test_an_imported_onnx_model_is_evaluated_gated_and_registered_with_its_origin(services: Services) -> None:
    # GIVEN a notebook model exported to ONNX, stored where the import API puts it
    data = export_imported_onnx(notebook_pipeline(penguins_frame()), PENGUINS.spec)
    imported = stored_import(services, data, ONNX_FORMAT, source="onnx-file")
    # WHEN a run imports it on the penguins dataset version
    run = run_import(services, imported, "import-onnx")
    # THEN one candidate was planned and nothing was trained
    assert run["plan"]["backend"] == "lambda" and len(run["plan"]["candidates"]) == 1
    candidate = run["candidates"][0]
    assert candidate["training"]["estimator"] == "imported" and candidate["artifact_sha256"] == imported["sha256"]
    # AND it was scored on the holdout and passed the spec's gates (accuracy >= 0.9, roc_auc >= 0.95)
    assert run["evaluation"]["metrics"]["accuracy"] > 0.95
    assert run["gate"]["passed"], run["gate"]["reasons"]
    # AND the ONNX model serving will run is the imported file itself
    assert run["evaluation"]["onnx"]["sha256"] == imported["sha256"]
    assert run["onnx"] == {"uri": run["evaluation"]["onnx"]["uri"], "sha256": imported["sha256"], "max_deltas": {}}
    assert run["evaluation"]["training_rows"] is None  # its training rows are not known here
    # AND the version carries its origin: format, sha256, source, the verified uploader
    version = services.registry.get_version(MODEL, run["registered"]["version"])
    assert version.status.value == "PENDING_APPROVAL"
    assert version.tags["imported_format"] == ONNX_FORMAT and version.tags["imported_sha256"] == imported["sha256"]
    assert version.tags["imported_uploader"] == UPLOADER and version.tags["onnx_sha256"] == imported["sha256"]
    card = read_uri(services.s3, run["registered"]["card_uri"]).decode()
    assert f"- Imported: imported onnx from onnx-file, sha256 {imported['sha256']}, uploaded by {UPLOADER}" in card


@pytest.mark.usefixtures("penguins_spec")
def test_an_imported_sklearn_model_is_exported_to_onnx_and_keeps_its_source_run(services: Services) -> None:
    # GIVEN a notebook pipeline in the restricted artifact format, converted from an MLflow run
    data, _ = dump_artifact(notebook_pipeline(penguins_frame()))
    imported = stored_import(
        services, data, SKLEARN_FORMAT, source="mlflow-sklearn", source_sha256="ab" * 32, run_id="3f2b9c0d1e"
    )
    # WHEN a run imports it
    run = run_import(services, imported, "import-sklearn")
    # THEN it passed the gates and the platform exported it to ONNX for serving, checked on the holdout
    assert run["gate"]["passed"], run["gate"]["reasons"]
    onnx = run["onnx"]  # CheckOnnx's result
    assert "uri" in onnx, onnx.get("error")
    assert onnx["max_deltas"]["max_probability_delta"] < 1e-4
    assert run["evaluation"]["onnx"]["check_uri"].endswith("/onnx-check.json")
    version = services.registry.get_version(MODEL, run["registered"]["version"])
    assert version.tags["imported_run_id"] == "3f2b9c0d1e" and version.tags["imported_source"] == "mlflow-sklearn"
    assert version.tags["artifact_format"] == SKLEARN_FORMAT
    # AND a second import on the same data is compared with that version as champion
    services.registry.approve(MODEL, version.version, actor="carol")
    services.registry.set_alias(MODEL, "champion", version.version, actor="carol")
    onnx_data = export_imported_onnx(notebook_pipeline(penguins_frame()), PENGUINS.spec)
    second = run_import(services, stored_import(services, onnx_data, ONNX_FORMAT, source="onnx-file"), "import-2")
    champion = second["evaluation"]["champion"]
    assert champion["version"] == version.version and "error" not in champion, champion
    assert champion["seen_check"] == "unknown"  # an imported champion's training rows are not known
    assert champion["metrics"]["accuracy"] == pytest.approx(second["evaluation"]["metrics"]["accuracy"])


@pytest.mark.usefixtures("penguins_spec")
def test_a_wrong_shaped_import_fails_the_run_naming_the_column(services: Services) -> None:
    # GIVEN a pipeline fitted on a column the spec does not have
    frame = penguins_frame().assign(wingspan_mm=1.0)
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(max_iter=500).fit(frame[["wingspan_mm", "year"]], frame["species"].astype(str))
    data, _ = dump_artifact(model)
    imported = stored_import(services, data, SKLEARN_FORMAT, source="sklearn-file")
    upload = {**dataset_upload(services), "imported": imported}
    common = {"upload": upload, "execution": "arn:sfn:wrong", "execution_name": "wrong"}
    validation = validate_upload(upload, services=services)
    plan = plan_training({**common, "spec_revision": validation["spec_revision"]}, services=services)
    # WHEN TrainCandidate imports it THEN the run fails with the column named
    with pytest.raises(InputError, match=r"fitted on column\(s\) wingspan_mm that spec palmer-penguins"):
        train_candidate(
            {**common, "spec_revision": validation["spec_revision"], "candidate": plan["candidates"][0]},
            services=services,
        )
