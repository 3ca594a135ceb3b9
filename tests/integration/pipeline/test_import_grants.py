"""The import API's grants on moto: who imports what onto which dataset version, and the run it starts."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from mlops.errors import InputError, NotFoundError
from mlops.registry.specs import SpecStore
from mlops.spec.model import parse_spec
from mlops.training.import_grants import authorize_import, import_grant_for, import_upload
from mlops.training.steps.services import Services
from mlops.training.steps.validate import validate_upload
from tests.integration.pipeline.conftest import put_upload
from tests.integration.pipeline.test_validate_step import GOOD, SPEC
from tests.integration.registry.conftest import DATA_BUCKET

SCIENTIST = "arn:aws:iam::123456789012:user/scientist"
ARTIFACT = b"an onnx model's bytes"


def _request(version: str, **changes: Any) -> dict[str, Any]:
    return {
        "format": "onnx",
        "sha256": hashlib.sha256(ARTIFACT).hexdigest(),
        "size": len(ARTIFACT),
        "dataset_version": version,
        "source": "mlflow-onnx",
        "run_id": "7a6b5c4d3e",
        **changes,
    }


@pytest.fixture
def dataset_version(services: Services) -> str:
    SpecStore(services.registry).put(parse_spec(SPEC), actor="alice")
    upload = put_upload(services, "datasets/tiny/train.csv", GOOD)
    validate_upload(upload, services=services)
    return str(upload["version_id"])


def test_an_authorized_import_names_its_importer_dataset_and_origin(services: Services, dataset_version: str) -> None:
    # GIVEN the import API authorizes the scientist (the caller AWS verified)
    grant = authorize_import(
        services.registry, services.s3, DATA_BUCKET, "tiny", _request(dataset_version), caller=SCIENTIST
    )
    assert grant["key"] == f"imports/tiny/{hashlib.sha256(ARTIFACT).hexdigest()}/model.onnx"
    assert grant["caller"] == SCIENTIST and grant["run_name"].startswith("import-tiny-")
    # WHEN the artifact lands and the starter reads the grant for the object
    services.s3.put_object(Bucket=DATA_BUCKET, Key=grant["key"], Body=ARTIFACT)
    found = import_grant_for(services.registry, grant["key"])
    upload = import_upload(services.registry, found)
    # THEN the run's upload is the dataset version, carrying the import and its verified importer
    assert upload.version_id == dataset_version and upload.key == "datasets/tiny/train.csv"
    assert upload.imported == {
        "uri": f"s3://{DATA_BUCKET}/{grant['key']}",
        "format": "onnx",
        "sha256": hashlib.sha256(ARTIFACT).hexdigest(),
        "source": "mlflow-onnx",
        "uploader": SCIENTIST,
        "run_id": "7a6b5c4d3e",
    }
    # AND the authorization is in the audit trail
    events, _ = services.registry.audit.list_events("tiny", limit=50)
    assert any(e.action == "model.import_authorized" and e.actor == SCIENTIST for e in events)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"format": "pickle"}, "format: must be one of onnx, sklearn-pickle-5"),
        ({"sha256": "abc"}, "sha256: must be a SHA-256"),
        ({"size": 0}, "size: must be the artifact's size"),
        ({"source": "email"}, "source: must be one of"),
        ({"run_id": "a b"}, "run_id: 1-128 characters"),
    ],
)
def test_a_bad_field_is_named(services: Services, dataset_version: str, change: dict[str, Any], message: str) -> None:
    with pytest.raises(InputError, match=message):
        authorize_import(
            services.registry, services.s3, DATA_BUCKET, "tiny", _request(dataset_version, **change), caller=SCIENTIST
        )


def test_an_unknown_dataset_version_or_model_is_refused(services: Services, dataset_version: str) -> None:
    with pytest.raises(NotFoundError, match="dataset_version 'nope': model 'tiny' has no such dataset version"):
        authorize_import(services.registry, services.s3, DATA_BUCKET, "tiny", _request("nope"), caller=SCIENTIST)
    with pytest.raises(NotFoundError, match="model 'other' has no spec"):
        authorize_import(services.registry, services.s3, DATA_BUCKET, "other", _request("x"), caller=SCIENTIST)


def test_an_artifact_written_without_a_grant_starts_nothing(services: Services, dataset_version: str) -> None:
    key = f"imports/tiny/{'cd' * 32}/model.onnx"
    services.s3.put_object(Bucket=DATA_BUCKET, Key=key, Body=ARTIFACT)
    with pytest.raises(NotFoundError, match="no import was authorized"):
        import_grant_for(services.registry, key)
