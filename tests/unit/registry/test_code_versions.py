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
    CodePendingError,
    CodeUploadRefusedError,
    authorize_code_upload,
    confirm_code_upload,
    get_code_version,
    list_code_versions,
    resolve_code_version,
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


def test_a_version_counts_once_its_package_arrived_with_its_sha256(registry: Registry, s3: Any) -> None:
    stored: dict[str, bytes] = {}  # the bucket: URI -> bytes

    def confirm(version: Any, caller: str = SCIENTIST) -> Any:
        return confirm_code_upload(
            registry, stored.get, "credit-code", version, caller=caller, uploaders=UPLOADERS, request_id="r"
        )

    # GIVEN version 1 authorized, its PUT not (yet) landed
    first = _upload(registry, s3)
    assert first["state"] == "pending" and list_code_versions(registry, "credit-code")[0].state == "pending"
    # THEN a run has no latest code, and a pin of it is refused naming it and what to do
    with pytest.raises(NotFoundError, match=r"no stored training code: its code versions 1 are pending"):
        resolve_code_version(registry, "credit-code", None, stored.get)
    with pytest.raises(CodePendingError, match=r"code version 1 of 'credit-code' is pending: its package never") as e:
        resolve_code_version(registry, "credit-code", 1, stored.get)
    assert "mlops code upload DIR --model credit-code" in str(e.value) and first["uri"] in str(e.value)
    # AND confirming it says the package is not there
    with pytest.raises(CodePendingError, match="no package at"):
        confirm(1)
    # WHEN other bytes land THEN still refused, naming both sha256
    stored[first["uri"]] = b"not the zip"
    with pytest.raises(CodePendingError, match=f"hashes to {hashlib.sha256(b'not the zip').hexdigest()}"):
        confirm(1)
    # WHEN the right bytes land THEN an uploader's confirmation records it stored, audited
    stored[first["uri"]] = b"zip"
    with pytest.raises(CodeUploadRefusedError):
        confirm(1, caller=APPROVER)
    confirmed = confirm(1)
    assert confirmed.state == "stored" and confirmed.stored_at and confirm(1).stored_at == confirmed.stored_at
    actions = [e.action for e in registry.audit.list_events("credit-code")[0]]
    assert actions.count("code.stored") == 1
    assert resolve_code_version(registry, "credit-code", None, stored.get).version == 1
    # GIVEN version 2 authorized and never put THEN "latest" skips it; a pin of it is refused
    second = _upload(registry, s3, sha256=hashlib.sha256(b"zip2").hexdigest())
    assert resolve_code_version(registry, "credit-code", None, stored.get).version == 1
    with pytest.raises(CodePendingError, match="code version 2"):
        resolve_code_version(registry, "credit-code", 2, stored.get)
    # WHEN its package lands but the confirmation never comes THEN it counts after the same check
    stored[second["uri"]] = b"zip2"
    assert resolve_code_version(registry, "credit-code", None, stored.get).version == 2
    assert resolve_code_version(registry, "credit-code", 2, stored.get).state == "pending"


@pytest.mark.parametrize("version", [0, True, "1", 1.5, None])
def test_a_confirmation_names_a_bad_version(registry: Registry, version: Any) -> None:
    with pytest.raises(InputError, match="confirm: must be the code version"):
        confirm_code_upload(registry, {}.get, "credit-code", version, caller=SCIENTIST, uploaders=UPLOADERS)
