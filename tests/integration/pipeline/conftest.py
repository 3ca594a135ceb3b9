"""Moto fixtures for the pipeline steps: the registry's tables exactly as the stacks declare them, the
versioned data bucket, the steps' services, and an upload as the bucket's event describes it."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from mlops.data.trigger import upload_from_event
from mlops.registry.versions import Registry
from mlops.settings import Platform
from mlops.training.steps.services import Services
from tests.integration.registry.conftest import AUDIT_TABLE, DATA_BUCKET, REGISTRY_TABLE, aws, dynamodb

__all__ = ["aws", "dynamodb", "put_upload", "services"]


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


def put_upload(services: Services, key: str, body: bytes, requester: str = "alice") -> dict[str, Any]:
    """Store ``body`` under ``key`` and return the upload the bucket's event describes."""
    version = services.s3.put_object(Bucket=DATA_BUCKET, Key=key, Body=body)["VersionId"]
    event = {
        "detail": {
            "bucket": {"name": DATA_BUCKET},
            "object": {"key": key, "version-id": version, "size": len(body)},
            "requester": requester,
        }
    }
    return upload_from_event(event).to_dict()
