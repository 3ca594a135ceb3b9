"""The Validate state: record an uploaded dataset version and validate it against its model's spec."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from mlops.data.catalog import DatasetCatalog
from mlops.data.datasets import DatasetVersion, describe_s3_object
from mlops.data.profile import ReferenceProfile
from mlops.data.trigger import DatasetUpload, parse_key
from mlops.data.uploads import verified_uploader
from mlops.data.validation.api import validate_stream
from mlops.errors import NotFoundError
from mlops.registry.specs import SpecStore
from mlops.registry.versions import Registry
from mlops.training.steps.services import (
    PIPELINE_ACTOR,
    Services,
    read_bytes,
    report_key,
    write_json,
)


def champion_profile(services: Services, model: str) -> Any:
    """The reference profile of the champion's training data (None without a champion or profile)."""

    try:
        champion = services.registry.get_by_alias(model, "champion")
    except NotFoundError:
        return None
    uri = champion.tags.get("profile_uri")
    if not uri:
        return None
    return ReferenceProfile.from_json(read_bytes(services, uri), source=uri)


def with_verified_uploader(
    registry: Registry, model: str, dataset: DatasetVersion, *, requester: str | None = None
) -> DatasetVersion:
    """``dataset`` with its uploader as the platform can prove it (``unverified`` and why, else)."""

    modified = datetime.fromisoformat(dataset.uploaded_at) if dataset.uploaded_at else None
    found = verified_uploader(registry, model, dataset.key, dataset.sha256, modified)
    extra = dict(dataset.extra)
    if requester:
        extra["event_requester"] = requester  # the S3 event's requester (an account or principal id), kept for reading
    if found.note:
        extra["uploader_note"] = found.note
    return replace(dataset, uploaded_by=found.identity, uploader_source=found.source, extra=extra)


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
    key = report_key(model, item.version_id, "validation.json")

    # The uploader is the caller the upload API recorded for this key and content (or the platform
    # actor that wrote it), never the object's metadata nor the event's requester: see mlops.data.uploads.
    dataset = describe_s3_object(services.s3, item.bucket, item.key, version_id=item.version_id, model=model)
    dataset = with_verified_uploader(services.registry, model, dataset, requester=item.uploader)
    DatasetCatalog(services.registry).record(model, dataset, actor=actor, request_id=request_id)
    reference = dataset.ref()

    try:
        revision = SpecStore(services.registry).get(model)
    except NotFoundError as exc:
        summary = f"no spec for model {model!r}: {exc}"
        report_uri = write_json(
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

    profile = champion_profile(services, model)
    body = services.s3.get_object(Bucket=item.bucket, Key=item.key, VersionId=item.version_id)["Body"]
    try:
        report = validate_stream(
            body, revision.spec(), f"s3://{item.bucket}/{item.key}?versionId={item.version_id}", reference=profile
        )
    finally:
        body.close()
    report_uri = write_json(services, key, report.to_json())
    failed = [c.check for c in report.checks if c.failed]
    warned = [c.check for c in report.warnings]
    summary = ("valid: " if report.valid else "invalid: ") + (
        f"{report.rows} rows, " + ("no check failed" if warned else "all checks passed")
        if report.valid
        else f"{len(failed)} failed checks ({', '.join(failed[:5])})"
    )
    if warned:  # warnings (spec.validation, label fairness) never fail an upload; they are named
        summary += f"; {len(warned)} warning(s) ({', '.join(warned[:5])})"
    services.registry.audit.append(
        model,
        actor=actor,
        action="dataset.validated" if report.valid else "dataset.rejected",
        subject=f"dataset/{model}/{item.version_id}",
        after={
            "valid": report.valid,
            "rows": report.rows,
            "failed_checks": failed,
            "warning_checks": warned,
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
