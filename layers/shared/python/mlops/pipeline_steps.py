"""The training pipeline's steps as plain functions: the Lambda handlers only parse and call these.

Each step takes its AWS clients and the deployment's names explicitly (``Platform``), so tests and
the local cloud run exactly this code against moto.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from mlops.datasets import DatasetCatalog, describe_s3_object
from mlops.errors import InputError, NotFoundError
from mlops.pipeline import DatasetUpload, parse_key
from mlops.platform import Platform
from mlops.registry import Registry
from mlops.specstore import SpecStore
from mlops.validation.api import validate_stream

PIPELINE_ACTOR = "pipeline:training"


@dataclass(frozen=True)
class Services:
    """The clients and names one step needs (built from the function's environment by default)."""

    platform: Platform
    s3: Any
    registry: Registry

    @classmethod
    def from_env(cls) -> Services:
        import boto3

        platform = Platform.from_env()
        registry = Registry.for_dynamodb(
            boto3.client("dynamodb"), registry_table=platform.registry_table, audit_table=platform.audit_table
        )
        return cls(platform=platform, s3=boto3.client("s3"), registry=registry)


def report_key(model: str, version_id: str, name: str) -> str:
    """Where a dataset version's reports live: apart from datasets/, so writing one starts nothing."""
    return f"reports/{model}/datasets/{version_id}/{name}"


def _write_json(services: Services, key: str, document: Any) -> str:
    body = document if isinstance(document, str) else json.dumps(document, indent=2, default=str)
    services.s3.put_object(
        Bucket=services.platform.data_bucket, Key=key, Body=body.encode(), ContentType="application/json"
    )
    return f"s3://{services.platform.data_bucket}/{key}"


def validate_upload(
    upload: dict[str, Any], *, request_id: str | None = None, services: Services | None = None
) -> dict[str, Any]:
    """Record and validate one uploaded dataset version; never raises for bad data.

    The result says ``valid`` and where the report is. A model with no spec, an unreadable or
    invalid file all give ``valid: False`` with a report and an audit event; the uploaded object
    is never changed (it is the evidence).

    Returns
    -------
    dict
        ``valid``, ``report_uri``, ``summary`` (one line), ``dataset`` (the version reference),
        ``spec_revision`` (or None).
    """
    services = services or Services.from_env()
    item = DatasetUpload(**upload)
    model, _ = parse_key(item.key)
    actor = f"{PIPELINE_ACTOR}:{request_id}" if request_id else PIPELINE_ACTOR
    uploader = item.uploader or "unknown"
    key = report_key(model, item.version_id, "validation.json")

    dataset = describe_s3_object(
        services.s3, item.bucket, item.key, version_id=item.version_id, uploaded_by=uploader, model=model
    )
    DatasetCatalog(services.registry).record(model, dataset, actor=actor, request_id=request_id)
    reference = dataset.ref()

    try:
        revision = SpecStore(services.registry).get(model)
    except NotFoundError as exc:
        summary = f"no spec for model {model!r}: {exc}"
        report_uri = _write_json(
            services,
            key,
            {"valid": False, "readable": None, "error": "no_spec", "message": summary, "dataset": reference},
        )
        services.registry.audit.append(
            model,
            actor=actor,
            action="dataset.rejected",
            subject=f"dataset/{model}/{item.version_id}",
            after={"reason": "no_spec", "report": report_uri},
            request_id=request_id,
        )
        return {
            "valid": False,
            "report_uri": report_uri,
            "summary": summary,
            "dataset": reference,
            "spec_revision": None,
        }

    body = services.s3.get_object(Bucket=item.bucket, Key=item.key, VersionId=item.version_id)["Body"]
    try:
        report = validate_stream(body, revision.spec(), f"s3://{item.bucket}/{item.key}?versionId={item.version_id}")
    finally:
        body.close()
    report_uri = _write_json(services, key, report.to_json())
    failed = [c.check for c in report.checks if c.failed]
    summary = ("valid: " if report.valid else "invalid: ") + (
        f"{report.rows} rows, all checks passed"
        if report.valid
        else f"{len(failed)} failed checks ({', '.join(failed[:5])})"
    )
    services.registry.audit.append(
        model,
        actor=actor,
        action="dataset.validated" if report.valid else "dataset.rejected",
        subject=f"dataset/{model}/{item.version_id}",
        after={
            "valid": report.valid,
            "rows": report.rows,
            "failed_checks": failed,
            "report": report_uri,
            "spec_revision": revision.revision,
        },
        request_id=request_id,
    )
    return {
        "valid": report.valid,
        "report_uri": report_uri,
        "summary": summary,
        "dataset": reference,
        "spec_revision": revision.revision,
    }


def record_ignored_upload(key: str, reason: str, *, services: Services, request_id: str | None = None) -> None:
    """An object under datasets/ outside the layout: nothing to train, but the platform says so."""
    from mlops.audit import PLATFORM_CHAIN

    services.registry.audit.append(
        PLATFORM_CHAIN,
        actor=PIPELINE_ACTOR,
        action="dataset.ignored",
        subject=f"s3://{services.platform.data_bucket}/{key}",
        after={"reason": reason},
        request_id=request_id,
    )


__all__ = ["InputError", "Services", "record_ignored_upload", "report_key", "validate_upload"]
