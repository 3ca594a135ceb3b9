"""Training-code versions: their own permission, numbered, audited, presigned for exactly their content."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
import yaml
from botocore.config import Config

from mlops.errors import InputError, NotFoundError
from mlops.registry.code_versions import (
    CodeUploadRefusedError,
    authorize_code_upload,
    get_code_version,
    list_code_versions,
)
from mlops.registry.specs import SpecStore
from mlops.registry.versions import Registry
from mlops.spec.model import parse_spec

ROOT = Path(__file__).resolve().parents[3]
ACCOUNT = "123456789012"
SCIENTIST = f"arn:aws:iam::{ACCOUNT}:user/scientist"
APPROVER = f"arn:aws:iam::{ACCOUNT}:user/approver"
UPLOADERS = (f"arn:aws:iam::{ACCOUNT}:user/scientist", f"arn:aws:iam::{ACCOUNT}:role/ml-*")
SHA = hashlib.sha256(b"zip").hexdigest()


@pytest.fixture
def s3() -> Any:
    # Presigning is local computation: no endpoint is called.
    return boto3.client(
        "s3",
        region_name="us-east-1",
        aws_access_key_id="AKIAEXAMPLE",
        aws_secret_access_key="secret",
        config=Config(signature_version="s3v4"),
    )


@pytest.fixture
def registry() -> Registry:
    registry = Registry.in_memory()
    document = yaml.safe_load((ROOT / "examples" / "code" / "credit-code.yaml").read_text())
    SpecStore(registry).put(parse_spec(document), actor="alice")
    return registry


def _upload(registry: Registry, s3: Any, caller: str = SCIENTIST, **fields: Any) -> dict[str, Any]:
    request = {"package": "creditfeatures", "sha256": SHA, "size": 3, **fields}
    return authorize_code_upload(
        registry, s3, "data-bucket", "credit-code", caller=caller, uploaders=UPLOADERS, request_id="req", **request
    )


def test_versions_are_numbered_audited_and_presigned_for_their_content(registry: Registry, s3: Any) -> None:
    # WHEN the scientist uploads twice
    first, second = _upload(registry, s3), _upload(registry, s3, sha256="b" * 64)
    # THEN versions 1 and 2, under code/, the verified caller as uploader
    assert (first["version"], second["version"]) == (1, 2)
    assert first["key"] == f"code/credit-code/000001/{SHA}.zip" and first["uploader"] == SCIENTIST
    query = parse_qs(urlsplit(first["url"]).query)
    assert "x-amz-checksum-sha256" in query["X-Amz-SignedHeaders"][0]
    assert first["headers"]["x-amz-meta-uploaded-by"] == SCIENTIST
    # AND the registry lists them oldest first; the latest is version 2, a pin finds version 1
    assert [v.version for v in list_code_versions(registry, "credit-code")] == [1, 2]
    assert get_code_version(registry, "credit-code").sha256 == "b" * 64
    assert get_code_version(registry, "credit-code", 1).uri == f"s3://data-bucket/code/credit-code/000001/{SHA}.zip"
    # AND each upload is an audit event of the model's chain, by the scientist
    events = [e for e in registry.audit.list_events("credit-code")[0] if e.action == "code.upload"]
    assert [(e.actor, e.subject) for e in reversed(events)] == [
        (SCIENTIST, "model/credit-code/code/1"),
        (SCIENTIST, "model/credit-code/code/2"),
    ]


def test_uploading_code_is_its_own_permission(registry: Registry, s3: Any) -> None:
    # WHEN the approver (no code-upload permission) tries THEN 403, and nothing is recorded
    with pytest.raises(CodeUploadRefusedError, match="may not upload training code") as refused:
        _upload(registry, s3, caller=APPROVER)
    assert refused.value.http_status == 403 and refused.value.exit_code == 1
    assert list_code_versions(registry, "credit-code") == []
    # AND a role matching a pattern may
    assert _upload(registry, s3, caller=f"arn:aws:iam::{ACCOUNT}:role/ml-training")["version"] == 1


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"package": "my-code"}, "package: 'my-code' is not a Python package name"),
        ({"sha256": "XYZ"}, "sha256: must be"),
        ({"size": 0}, "size: must be"),
        ({"size": True}, "size: must be"),
    ],
)
def test_bad_requests_name_the_field(registry: Registry, s3: Any, fields: dict[str, Any], message: str) -> None:
    with pytest.raises(InputError, match=message):
        _upload(registry, s3, **fields)


def test_a_model_without_spec_or_code_says_what_to_do(registry: Registry, s3: Any) -> None:
    with pytest.raises(NotFoundError, match="has no spec"):
        authorize_code_upload(
            registry, s3, "b", "nospec", package="p", sha256=SHA, size=3, caller=SCIENTIST, uploaders=UPLOADERS
        )
    with pytest.raises(NotFoundError, match="mlops code upload DIR --model credit-code"):
        get_code_version(registry, "credit-code")
    with pytest.raises(NotFoundError, match=r"training.code_version: .* has no code version 4"):
        get_code_version(registry, "credit-code", 4)
