"""moto fixtures: the registry and audit tables exactly as the stacks create them, SSM discovery."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.dynamodb.responses import DynamoHandler

from mlops.local.testing import create_registry_tables
from mlops.registry import Registry

REGISTRY_TABLE = "mlops-dev-registry"
AUDIT_TABLE = "mlops-dev-audit"
DATA_BUCKET = "mlops-dev-data"

_request_lock = threading.Lock()
_original_call_action = DynamoHandler.call_action


def _atomic_call_action(self: Any) -> Any:
    with _request_lock:
        return _original_call_action(self)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto, with every DynamoDB request applied atomically.

    Real DynamoDB applies each request (a conditional put, an ADD, a transaction) atomically.
    moto's backend takes no lock, so threads could interleave inside one request, and a cancelled
    transaction restores a deep copy of the table, undoing other threads' writes. Serializing
    whole requests restores DynamoDB's guarantee; our code still interleaves freely between
    requests, which is what the concurrency tests exercise.
    """
    monkeypatch.setattr(DynamoHandler, "call_action", _atomic_call_action)
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
