"""The steps' common ground: their clients and names (:class:`Services`), where a run's files go in
the data bucket, and the S3 reads and writes every step makes.

Each step takes its AWS clients and the deployment's names explicitly (``Platform``), so tests and
the local cloud run exactly the steps' code against moto.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from mlops.registry.audit import PLATFORM_CHAIN
from mlops.registry.specs import SpecStore
from mlops.registry.versions import Registry
from mlops.settings import Platform
from mlops.spec.model import ModelSpec
from mlops.storage import read_uri

PIPELINE_ACTOR = "pipeline:training"
# Where fixed holdout files live in the data bucket (training.split.method: holdout_dataset): the
# training functions may read them, and writing one starts nothing.
HOLDOUT_PREFIX = "holdouts/"


@dataclass(frozen=True)
class Services:
    """The clients and names one step needs (built from the function's environment by default)."""

    platform: Platform
    s3: Any
    registry: Registry

    @classmethod
    def from_env(cls) -> Services:
        """The clients of a Lambda execution environment (the handlers cache the result, one per environment)."""
        import boto3  # here: tests and the local cloud build Services from their own clients, without boto3's import

        platform = Platform.from_env()
        registry = Registry.for_platform(boto3.client("dynamodb"), platform)
        return cls(platform=platform, s3=boto3.client("s3"), registry=registry)


def report_key(model: str, version_id: str, name: str) -> str:
    """Where a dataset version's reports live: apart from datasets/, so writing one starts nothing."""
    return f"reports/{model}/datasets/{version_id}/{name}"


def write_json(services: Services, key: str, document: Any) -> str:
    body = document if isinstance(document, str) else json.dumps(document, indent=2, default=str)
    services.s3.put_object(
        Bucket=services.platform.data_bucket, Key=key, Body=body.encode(), ContentType="application/json"
    )
    return f"s3://{services.platform.data_bucket}/{key}"


def run_prefix(model: str, execution_name: str) -> str:
    """Where one run's candidates, evaluation and profile go (artifacts/, never datasets/)."""
    return f"artifacts/{model}/runs/{execution_name}/"


def version_prefix(model: str, version: int) -> str:
    """Where a registered version's model card lives."""
    return f"artifacts/{model}/versions/{version}/"


def s3_uri(bucket: str, key: str) -> str:
    return f"s3://{bucket}/{key}"


def read_bytes(services: Services, uri: str) -> bytes:
    return read_uri(services.s3, uri)


def put(services: Services, key: str, data: bytes, content_type: str, **metadata: str) -> str:
    services.s3.put_object(
        Bucket=services.platform.data_bucket, Key=key, Body=data, ContentType=content_type, Metadata=metadata
    )
    return s3_uri(services.platform.data_bucket, key)


def spec_for(services: Services, model: str, revision: int) -> ModelSpec:
    return SpecStore(services.registry).get(model, revision).spec()


def code_revision() -> str:
    return os.environ.get("CODE_REVISION", "unknown")


# Here, not in .validate: the starter function (no science layer) calls it on a refused upload.
def record_ignored_upload(key: str, reason: str, *, services: Services, request_id: str | None = None) -> None:
    """An object under datasets/ outside the layout: nothing to train, but the platform says so."""

    services.registry.audit.append(
        PLATFORM_CHAIN,
        actor=PIPELINE_ACTOR,
        action="dataset.ignored",
        subject=f"s3://{services.platform.data_bucket}/{key}",
        after={"reason": reason},
        request_id=request_id,
    )
