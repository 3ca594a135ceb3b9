"""Starting the training pipeline from a dataset upload.

An upload to ``datasets/<model>/<file>`` in the data bucket starts one execution of the training
pipeline. EventBridge delivers at least once, so the execution name is derived from the bucket,
key and VersionId: a duplicate event asks for the same name, and Step Functions itself refuses it.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import unquote_plus

from mlops.errors import InputError

DATASET_PREFIX = "datasets/"
_KEY = re.compile(r"^datasets/(?P<model>[a-z][a-z0-9-]{0,62})/(?P<file>[^/].*)$")
_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


@dataclass(frozen=True)
class DatasetUpload:
    """One uploaded object version under ``datasets/<model>/``."""

    bucket: str
    key: str
    version_id: str
    model: str
    size: int | None = None
    uploader: str | None = None
    event_time: str | None = None
    # A model trained elsewhere to evaluate on this dataset version (mlops.training.steps.imports).
    imported: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def execution_name(self) -> str:
        return execution_name(self.bucket, self.key, self.version_id, self.model)


def execution_name(bucket: str, key: str, version_id: str, model: str) -> str:
    """A Step Functions execution name (<= 80 chars) unique to one object version."""
    digest = hashlib.sha256(f"{bucket}\n{key}\n{version_id}".encode()).hexdigest()[:32]
    return f"{_NAME_UNSAFE.sub('-', model)[:40]}-{digest}"


def parse_key(key: str) -> tuple[str, str]:
    """Split ``datasets/<model>/<file>`` into (model, file); :class:`InputError` otherwise."""
    match = _KEY.match(key)
    if match is None:
        raise InputError(
            f"object key {key!r} is outside the dataset layout: uploads must go to "
            "datasets/<model>/<file> where <model> is a model name (lowercase letters, digits, '-')"
        )
    return match["model"], match["file"]


def upload_from_event(event: dict[str, Any]) -> DatasetUpload:
    """Read an EventBridge "Object Created" event from S3 (or an already-shaped upload dict)."""
    detail = event.get("detail", event)
    try:
        bucket = detail["bucket"]["name"]
        obj = detail["object"]
        key = unquote_plus(obj["key"])
    except (KeyError, TypeError) as exc:
        raise InputError(f"not an S3 Object Created event: missing {exc}") from None
    version_id = obj.get("version-id") or obj.get("versionId") or "null"
    model, _ = parse_key(key)
    return DatasetUpload(
        bucket=bucket,
        key=key,
        version_id=version_id,
        model=model,
        size=obj.get("size"),
        uploader=(detail.get("requester") or None),
        event_time=event.get("time"),
    )


def start_training(sfn_client: Any, state_machine_arn: str, upload: DatasetUpload) -> dict[str, Any]:
    """Start the training pipeline for ``upload``; a duplicate delivery is reported, not run twice."""
    try:
        response = sfn_client.start_execution(
            stateMachineArn=state_machine_arn,
            name=upload.execution_name,
            input=json.dumps({"upload": upload.to_dict()}),
        )
    except sfn_client.exceptions.ExecutionAlreadyExists:
        return {"started": False, "duplicate": True, "execution_name": upload.execution_name}
    return {
        "started": True,
        "duplicate": False,
        "execution_arn": response["executionArn"],
        "execution_name": upload.execution_name,
    }
