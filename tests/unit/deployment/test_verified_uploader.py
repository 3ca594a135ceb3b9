"""Four-eyes on a verified identity: upload grants, the uploader they prove, and comparing principals."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
from botocore.config import Config
from hypothesis import given
from hypothesis import strategies as st

from mlops.data.catalog import DatasetCatalog
from mlops.data.datasets import UNVERIFIED, DatasetVersion
from mlops.data.uploads import authorize_upload, record_platform_upload, same_principal, verified_uploader
from mlops.deployment.approval import SelfApprovalError, UnverifiedUploaderError, decide, request_approval
from mlops.errors import ConflictError, InputError, NotFoundError, TransitionError
from mlops.registry.versions import Registry

from .conftest import FakeStepFunctions, store_spec

ACCOUNT = "123456789012"
SCIENTIST = f"arn:aws:iam::{ACCOUNT}:user/scientist"
APPROVER = f"arn:aws:iam::{ACCOUNT}:user/approver"
BODY = b"tenure,churned\n1,0\n2,1\n"
SHA = hashlib.sha256(BODY).hexdigest()


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


def now() -> datetime:
    return datetime.now(UTC)


# ------------------------------------------------------------------------------ comparing principals
@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        (SCIENTIST, SCIENTIST.upper(), True),
        (SCIENTIST, APPROVER, False),
        # one SSO user signed in under two permission sets is one person
        (
            f"arn:aws:sts::{ACCOUNT}:assumed-role/AWSReservedSSO_Scientist_0a1b/alice@example.com",
            f"arn:aws:sts::{ACCOUNT}:assumed-role/AWSReservedSSO_Approver_9f8e/alice@example.com",
            True,
        ),
        # two people under one role are two people
        (
            f"arn:aws:sts::{ACCOUNT}:assumed-role/Approver/alice",
            f"arn:aws:sts::{ACCOUNT}:assumed-role/Approver/bob",
            False,
        ),
        # the same session name in another account is someone else
        ("arn:aws:sts::111111111111:assumed-role/A/alice", "arn:aws:sts::222222222222:assumed-role/A/alice", False),
        # an IAM user and a role session with the same name are compared exactly: different
        (f"arn:aws:iam::{ACCOUNT}:user/alice", f"arn:aws:sts::{ACCOUNT}:assumed-role/A/alice", False),
    ],
)
def test_principals_compare_exactly_except_role_session_names(a: str, b: str, same: bool) -> None:
    # GIVEN two principals  WHEN compared (either way round)  THEN the verdict is the expected one
    assert same_principal(a, b) is same
    assert same_principal(b, a) is same


@given(
    account=st.from_regex(r"[0-9]{12}", fullmatch=True),
    roles=st.lists(st.from_regex(r"[A-Za-z0-9_+=,.@-]{1,30}", fullmatch=True), min_size=2, max_size=2),
    session=st.from_regex(r"[A-Za-z0-9_=,.@-]{2,40}", fullmatch=True),
)
def test_a_session_name_is_one_person_under_any_role(account: str, roles: list[str], session: str) -> None:
    # GIVEN one session name under two roles of one account
    a = f"arn:aws:sts::{account}:assumed-role/{roles[0]}/{session}"
    b = f"arn:aws:sts::{account}:assumed-role/{roles[1]}/{session}"
    # THEN it is one person; AND another session name is not
    assert same_principal(a, b)
    assert not same_principal(a, f"arn:aws:sts::{account}:assumed-role/{roles[1]}/{session}x")


# ------------------------------------------------------------------------------------ upload grants
def test_an_upload_is_authorized_for_the_caller_and_presigned_with_its_identity_and_checksum(s3: Any) -> None:
    # GIVEN a model with a spec
    registry = Registry.in_memory()
    store_spec(registry)
    # WHEN the scientist asks to upload
    grant = authorize_upload(
        registry, s3, "data", "churn", name="train.csv", sha256=SHA, size=len(BODY), caller=SCIENTIST, request_id="r1"
    )
    # THEN the presigned PUT signs the uploader metadata, the checksum and the length
    query = parse_qs(urlsplit(grant["url"]).query)
    signed = query["X-Amz-SignedHeaders"][0].split(";")
    assert {"x-amz-meta-uploaded-by", "x-amz-checksum-sha256", "content-length"} <= set(signed)
    assert query["X-Amz-Expires"] == ["900"]
    assert grant["headers"]["x-amz-meta-uploaded-by"] == SCIENTIST and grant["key"] == "datasets/churn/train.csv"
    # AND the grant is audited with the caller as actor
    newest = registry.audit.list_events("churn", limit=1)[0][0]
    assert (newest.action, newest.actor) == ("dataset.upload_authorized", SCIENTIST)
    # AND an object with that content written in the grant's window is the scientist's
    found = verified_uploader(registry, "churn", "datasets/churn/train.csv", SHA, now())
    assert (found.identity, found.source) == (SCIENTIST, "upload-api")


def test_other_content_or_another_key_or_another_time_is_unverified(s3: Any) -> None:
    registry = Registry.in_memory()
    store_spec(registry)
    authorize_upload(registry, s3, "data", "churn", name="train.csv", sha256=SHA, size=len(BODY), caller=SCIENTIST)
    key = "datasets/churn/train.csv"
    # THEN other bytes at the key, the same bytes at another key, or long after the URL expired prove nothing
    assert verified_uploader(registry, "churn", key, "0" * 64, now()).identity == UNVERIFIED
    assert verified_uploader(registry, "churn", "datasets/churn/other.csv", SHA, now()).identity == UNVERIFIED
    late = verified_uploader(registry, "churn", key, SHA, now() + timedelta(hours=2))
    assert late.identity == UNVERIFIED and "not through `mlops data upload`" in late.note


def test_a_model_without_a_spec_or_a_bad_request_is_refused_before_any_grant(s3: Any) -> None:
    registry = Registry.in_memory()
    store_spec(registry)
    # WHEN the model has no spec  THEN 'not found' names the missing spec, and nothing is recorded
    with pytest.raises(NotFoundError, match="model 'ghost' has no spec"):
        authorize_upload(registry, s3, "data", "ghost", name="a.csv", sha256=SHA, size=3, caller=SCIENTIST)
    # AND a bad name, checksum or size names the field
    for fields, field in [
        ({"name": "../x.csv"}, "name"),
        ({"name": "a/b.csv"}, "name"),
        ({"sha256": "ABC"}, "sha256"),
        ({"size": 0}, "size"),
        ({"size": "12"}, "size"),
        ({"size": True}, "size"),
    ]:
        request: dict[str, Any] = {"name": "a.csv", "sha256": SHA, "size": 3, **fields}
        with pytest.raises(InputError, match=f"^{field}"):
            authorize_upload(registry, s3, "data", "churn", caller=SCIENTIST, **request)
    # AND an archived model takes no data (409) until it is unarchived
    registry.archive_model("churn", actor="arn:aws:iam::123456789012:user/ops", reason="replaced")
    with pytest.raises(TransitionError, match=r"model 'churn' is archived \(replaced\)") as refused:
        authorize_upload(registry, s3, "data", "churn", name="a.csv", sha256=SHA, size=3, caller=SCIENTIST)
    assert refused.value.http_status == 409
    assert all(e.action != "dataset.upload_authorized" for e in registry.audit.list_events("churn", limit=100)[0])


def test_two_principals_cannot_hold_live_grants_for_the_same_content_at_the_same_key(s3: Any) -> None:
    registry = Registry.in_memory()
    store_spec(registry)
    authorize_upload(registry, s3, "data", "churn", name="t.csv", sha256=SHA, size=3, caller=SCIENTIST)
    # WHEN someone else asks for the same content at the same key  THEN refused, naming the holder
    with pytest.raises(ConflictError, match="scientist"):
        authorize_upload(registry, s3, "data", "churn", name="t.csv", sha256=SHA, size=3, caller=APPROVER)
    # AND the same caller may ask again (a retried upload)
    authorize_upload(registry, s3, "data", "churn", name="t.csv", sha256=SHA, size=3, caller=SCIENTIST)
    assert verified_uploader(registry, "churn", "datasets/churn/t.csv", SHA, now()).identity == SCIENTIST


def test_the_platform_records_itself_as_the_uploader_of_what_it_writes() -> None:
    registry = Registry.in_memory()
    record_platform_upload(
        registry, "churn", "data", "datasets/churn/captures-1.csv", sha256=SHA, size=3, actor="pipeline:monitor"
    )
    found = verified_uploader(registry, "churn", "datasets/churn/captures-1.csv", SHA, now())
    assert (found.identity, found.source) == ("pipeline:monitor", "platform")


# ------------------------------------------------------------------------------- four-eyes decisions
def _candidate(registry: Registry, *, uploaded_by: str, source: str | None, claimed: str | None = None) -> int:
    dataset = DatasetVersion(
        bucket="data",
        key="datasets/churn/train.csv",
        version_id=f"v-{uploaded_by}-{source}-{claimed}",
        sha256=SHA,
        size=len(BODY),
        rows=2,
        columns=["tenure", "churned"],
        column_types={"tenure": "int", "churned": "int"},
        schema_fingerprint="f",
        uploaded_by=uploaded_by,
        uploaded_at=None,
        model="churn",
        extra={"claimed_uploader": claimed} if claimed else {},
        uploader_source=source,
    )
    DatasetCatalog(registry).record("churn", dataset, actor="pipeline:training")
    version = registry.register_version(
        "churn", actor="pipeline:training", metrics={"roc_auc": 0.9}, dataset_version=dataset.ref()
    ).version
    request_approval(registry, "churn", version, token=f"t{version}", execution="arn:exec", timeout_seconds=60)
    return version


def test_four_eyes_compares_verified_identities_and_refuses_an_unverified_uploader() -> None:
    registry = Registry.in_memory()
    store_spec(registry)
    sfn = FakeStepFunctions()
    # GIVEN a candidate whose data the scientist uploaded through the API
    verified = _candidate(registry, uploaded_by=SCIENTIST, source="upload-api")
    # WHEN the scientist approves  THEN refused; the approver may
    with pytest.raises(SelfApprovalError, match=r"four-eyes rule: .*scientist uploaded"):
        decide(registry, "churn", verified, "approve", actor=SCIENTIST, callbacks=sfn, four_eyes=True)
    assert (
        decide(registry, "churn", verified, "approve", actor=APPROVER, callbacks=sfn, four_eyes=True)["by"] == APPROVER
    )
    # GIVEN a candidate whose data was put straight into S3 with forged metadata naming the scientist
    forged = _candidate(registry, uploaded_by=UNVERIFIED, source=None, claimed=SCIENTIST)
    # WHEN the approver approves  THEN refused: the uploader is unverified, and the message says how to fix it
    with pytest.raises(UnverifiedUploaderError, match=r"unverified.*`mlops data upload`") as refused:
        decide(registry, "churn", forged, "approve", actor=APPROVER, callbacks=sfn, four_eyes=True)
    assert "metadata claims" in str(refused.value)
    # AND a claimed name with no verification source is no identity either
    claimed = _candidate(registry, uploaded_by=SCIENTIST, source=None)
    with pytest.raises(UnverifiedUploaderError):
        decide(registry, "churn", claimed, "approve", actor=APPROVER, callbacks=sfn, four_eyes=True)
    # AND rejecting, or approving with four-eyes off, is still possible
    decide(
        registry, "churn", forged, "reject", actor=APPROVER, callbacks=sfn, four_eyes=True, comment="unverified data"
    )
    assert decide(registry, "churn", claimed, "approve", actor=APPROVER, callbacks=sfn, four_eyes=False)[
        "decision"
    ] == ("approved")


def test_one_sso_user_under_two_permission_sets_may_not_approve_their_own_upload() -> None:
    registry = Registry.in_memory()
    store_spec(registry)
    uploader = f"arn:aws:sts::{ACCOUNT}:assumed-role/AWSReservedSSO_DataScientist_1/alice"
    version = _candidate(registry, uploaded_by=uploader, source="upload-api")
    approver = f"arn:aws:sts::{ACCOUNT}:assumed-role/AWSReservedSSO_Approver_2/alice"
    with pytest.raises(SelfApprovalError):
        decide(registry, "churn", version, "approve", actor=approver, callbacks=None, four_eyes=True)
    # AND a record written before verification existed (no source) counts as unverified
    legacy = replace(DatasetVersion.from_item({"uploaded_by": uploader, "key": "k"}), uploaded_by=uploader)
    assert not legacy.uploader_verified


def test_the_importer_of_an_imported_model_may_not_approve_it() -> None:
    registry = Registry.in_memory()
    store_spec(registry)
    # GIVEN data the approver uploaded and a model the scientist imported onto it (tags Register writes)
    _candidate(registry, uploaded_by=APPROVER, source="upload-api")
    dataset = registry.get_version("churn", 1).dataset_version
    version = registry.register_version(
        "churn",
        actor="pipeline:training",
        metrics={"roc_auc": 0.9},
        dataset_version=dataset,
        tags={"imported_uploader": SCIENTIST, "imported_format": "onnx"},
    ).version
    request_approval(registry, "churn", version, token="t-imported", execution="arn:exec", timeout_seconds=60)
    # WHEN the importer approves  THEN refused by the four-eyes rule
    with pytest.raises(SelfApprovalError, match=r"four-eyes rule: .*scientist imported model 'churn'"):
        decide(registry, "churn", version, "approve", actor=SCIENTIST, callbacks=None, four_eyes=True)
    # AND the approver, who uploaded the data, may not either; a third person may
    with pytest.raises(SelfApprovalError, match="uploaded the data"):
        decide(registry, "churn", version, "approve", actor=APPROVER, callbacks=None, four_eyes=True)
    third = f"arn:aws:iam::{ACCOUNT}:user/carol"
    assert decide(registry, "churn", version, "approve", actor=third, callbacks=None, four_eyes=True)["by"] == third
