"""Dataset versions of S3 objects (moto): streamed, identified by VersionId, recorded once."""

from __future__ import annotations

import hashlib
from typing import Any

import boto3
import pytest

from mlops.data.catalog import DatasetCatalog
from mlops.data.datasets import describe_s3_object
from mlops.errors import InputError, NotFoundError
from mlops.registry.versions import Registry
from tests.integration.registry.conftest import DATA_BUCKET

BODY = b"tenure,churned\n1,0\n2,1\n3,0\n"


@pytest.fixture
def s3(deployed: Any) -> Any:
    return boto3.client("s3", region_name="us-east-1")


def test_each_object_version_is_its_own_dataset_version(s3: Any, registry: Registry) -> None:
    # GIVEN two uploads to the same key, the first with uploader metadata
    first = s3.put_object(Bucket=DATA_BUCKET, Key="datasets/churn/a.csv", Body=BODY, Metadata={"uploaded-by": "carol"})
    s3.put_object(Bucket=DATA_BUCKET, Key="datasets/churn/a.csv", Body=BODY + b"4,1\n")
    # WHEN the first version and the latest are described (streamed in 8-byte chunks)
    old = describe_s3_object(s3, DATA_BUCKET, "datasets/churn/a.csv", version_id=first["VersionId"], chunk_size=8)
    new = describe_s3_object(s3, DATA_BUCKET, "datasets/churn/a.csv", uploaded_by="dave")
    # THEN each has its own version id, exact hash, rows and uploader
    assert old.version_id == first["VersionId"] and new.version_id != old.version_id
    assert old.sha256 == hashlib.sha256(BODY).hexdigest()
    assert (old.rows, new.rows, old.size) == (3, 4, len(BODY))
    # AND the metadata is a claim, kept apart: only a caller-verified uploader is an uploader
    assert (old.uploaded_by, new.uploaded_by) == ("unverified", "dave")
    assert old.extra == {"claimed_uploader": "carol"} and new.extra == {}
    assert old.columns == ["tenure", "churned"] and old.uploaded_at is not None
    # AND recording them keeps both, audited
    catalog = DatasetCatalog(registry)
    catalog.record("churn", old, actor="pipeline")
    catalog.record("churn", new, actor="pipeline")
    assert {d.version_id for d in catalog.list("churn").items} == {old.version_id, new.version_id}
    assert registry.audit.verify("churn").events == 2


def test_missing_objects_and_unversioned_buckets_are_refused(s3: Any) -> None:
    # GIVEN an unversioned bucket with an object
    s3.create_bucket(Bucket="plain")
    s3.put_object(Bucket="plain", Key="a.csv", Body=BODY)
    # WHEN / THEN describing it, or a missing object, names the problem
    with pytest.raises(InputError, match="not versioned"):
        describe_s3_object(s3, "plain", "a.csv")
    with pytest.raises(NotFoundError, match="does not exist"):
        describe_s3_object(s3, DATA_BUCKET, "datasets/churn/missing.csv")
