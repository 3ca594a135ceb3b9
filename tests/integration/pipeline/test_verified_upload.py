"""The validate step records the uploader the upload API verified, never the object's metadata (moto)."""

from __future__ import annotations

import hashlib

from mlops.data.catalog import DatasetCatalog
from mlops.data.uploads import authorize_upload
from mlops.registry.specs import SpecStore
from mlops.spec.model import parse_spec
from mlops.training.steps.services import Services
from mlops.training.steps.validate import validate_upload
from tests.integration.pipeline.conftest import put_upload
from tests.integration.pipeline.test_validate_step import GOOD, SPEC
from tests.integration.registry.conftest import DATA_BUCKET

SCIENTIST = "arn:aws:iam::123456789012:user/scientist"
APPROVER = "arn:aws:iam::123456789012:user/approver"


def test_an_upload_through_the_api_is_recorded_with_the_verified_caller(services: Services) -> None:
    # GIVEN a spec, and the upload API's grant to the scientist for this content
    SpecStore(services.registry).put(parse_spec(SPEC), actor="alice")
    grant = authorize_upload(
        services.registry,
        services.s3,
        DATA_BUCKET,
        "tiny",
        name="train.csv",
        sha256=hashlib.sha256(GOOD).hexdigest(),
        size=len(GOOD),
        caller=SCIENTIST,
    )
    # WHEN the presigned PUT lands (the same headers) and the validate step runs
    version = services.s3.put_object(
        Bucket=DATA_BUCKET, Key=grant["key"], Body=GOOD, Metadata={"uploaded-by": SCIENTIST}
    )["VersionId"]
    upload = {"bucket": DATA_BUCKET, "key": grant["key"], "version_id": version, "model": "tiny"}
    validate_upload(upload, services=services)
    # THEN the dataset's uploader is the scientist, verified by the upload API
    record = DatasetCatalog(services.registry).get("tiny", version)
    assert (record.uploaded_by, record.uploader_source, record.uploader_verified) == (SCIENTIST, "upload-api", True)


def test_a_direct_put_with_forged_metadata_is_unverified(services: Services) -> None:
    # GIVEN a spec and an object written straight to S3 claiming the approver uploaded it
    SpecStore(services.registry).put(parse_spec(SPEC), actor="alice")
    version = services.s3.put_object(
        Bucket=DATA_BUCKET, Key="datasets/tiny/forged.csv", Body=GOOD, Metadata={"uploaded-by": APPROVER}
    )["VersionId"]
    # WHEN the validate step runs on it
    validate_upload(
        {"bucket": DATA_BUCKET, "key": "datasets/tiny/forged.csv", "version_id": version, "model": "tiny"},
        services=services,
    )
    # THEN the uploader is unverified; the claim is kept apart, with why
    record = DatasetCatalog(services.registry).get("tiny", version)
    assert (record.uploaded_by, record.uploader_source, record.uploader_verified) == ("unverified", None, False)
    assert record.extra["claimed_uploader"] == APPROVER
    assert "not through `mlops data upload`" in record.extra["uploader_note"]


def test_the_same_content_granted_to_one_key_does_not_vouch_for_another(services: Services) -> None:
    # GIVEN a grant for train.csv, and the same bytes put at copy.csv
    SpecStore(services.registry).put(parse_spec(SPEC), actor="alice")
    authorize_upload(
        services.registry,
        services.s3,
        DATA_BUCKET,
        "tiny",
        name="train.csv",
        sha256=hashlib.sha256(GOOD).hexdigest(),
        size=len(GOOD),
        caller=SCIENTIST,
    )
    upload = put_upload(services, "datasets/tiny/copy.csv", GOOD, requester="123456789012")
    validate_upload(upload, services=services)
    # THEN the copy is unverified (the event's requester is kept, for reading only)
    record = DatasetCatalog(services.registry).get("tiny", upload["version_id"])
    assert record.uploaded_by == "unverified" and record.extra["event_requester"] == "123456789012"
