"""moto fixtures: the registry and audit tables exactly as the stacks create them, SSM discovery."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from mlops.registry.versions import Registry
from mlops_local.patches import serialize_dynamodb
from mlops_local.testing import create_registry_tables

REGISTRY_TABLE = "mlops-dev-registry"
AUDIT_TABLE = "mlops-dev-audit"
DATA_BUCKET = "mlops-dev-data"


@pytest.fixture
def aws() -> Iterator[None]:
    """moto, with every DynamoDB request applied atomically.

    The same lock the local cloud installs (:func:`mlops_local.patches.serialize_dynamodb`):
    real DynamoDB applies each request atomically, moto does not. Our code still interleaves
    freely between requests, which is what the concurrency tests exercise.
    """
    serialize_dynamodb()
    with mock_aws():
        yield


def create_tables(client: Any) -> None:
    """The two tables, key for key as stacks/stateful.py declares them."""
    create_registry_tables(client, registry_table=REGISTRY_TABLE, audit_table=AUDIT_TABLE)


@pytest.fixture
def dynamodb(aws: None) -> Any:
    client = boto3.client("dynamodb", region_name="us-east-1")
    create_tables(client)
    return client


@pytest.fixture
def registry(dynamodb: Any) -> Registry:
    return Registry.for_dynamodb(dynamodb, registry_table=REGISTRY_TABLE, audit_table=AUDIT_TABLE)


@pytest.fixture
def deployed(dynamodb: Any) -> Any:
    """A deployed 'dev' environment as the CLI finds it: SSM parameters naming the resources."""
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=DATA_BUCKET)
    s3.put_bucket_versioning(Bucket=DATA_BUCKET, VersioningConfiguration={"Status": "Enabled"})
    ssm = boto3.client("ssm", region_name="us-east-1")
    for name, value in (("data-bucket", DATA_BUCKET), ("registry-table", REGISTRY_TABLE), ("audit-table", AUDIT_TABLE)):
        ssm.put_parameter(Name=f"/mlops/dev/{name}", Value=value, Type="String")
    return dynamodb
