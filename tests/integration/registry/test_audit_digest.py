"""Signed digests of the audit chains (moto: DynamoDB, S3 with Object Lock, KMS ECC_NIST_P256).

Someone who may write the audit table and the registry table can edit an event, recompute every
later hash and move the chain's anchor: the chain alone then verifies. These tests do exactly that
with boto3 and show what the digests outside the tables catch and what they cannot.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import boto3
import pytest

from mlops.errors import CheckFailedError, ConflictError
from mlops.registry.chain import AuditEvent
from mlops.registry.digest import (
    GENESIS,
    Digest,
    DigestStore,
    KmsSigner,
    digest_key,
    seal,
    write_digest,
    write_digest_racing,
)
from mlops.registry.digest_check import AnchorReport, check_trail
from mlops.registry.keys import anchor_key
from mlops.registry.versions import Registry
from tests.unit.registry.helpers import audit_items, raw_delete, raw_put

BUCKET = "mlops-dev-audit-digests"
CHAIN = "churn"


@pytest.fixture
def anchor(aws: None) -> tuple[DigestStore, KmsSigner]:
    """The digest bucket (versioned, Object Lock GOVERNANCE 1 day, as dev deploys it) and the signing key."""
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET, ObjectLockEnabledForBucket=True)
    s3.put_object_lock_configuration(
        Bucket=BUCKET,
        ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}},
        },
    )
    kms = boto3.client("kms", region_name="us-east-1")
    key = kms.create_key(KeyUsage="SIGN_VERIFY", KeySpec="ECC_NIST_P256")["KeyMetadata"]["Arn"]
    return DigestStore(s3, BUCKET), KmsSigner(kms, key)


def append(registry: Registry, n: int, chain: str = CHAIN) -> None:
    for i in range(n):
        registry.audit.append(chain, actor=f"user-{i}", action="test.event", subject=f"thing/{i}", after={"i": i})


def rechain(registry: Registry, chain: str, seq: int, **changes: Any) -> None:
    """Edit the event at ``seq``, recompute its hash and every later one, move the anchor: by hand, with boto3."""
    items = sorted(audit_items(registry, chain), key=lambda i: i["seq"])
    previous_hash = None
    for item in items:
        if item["seq"] < seq:
            previous_hash = item["hash"]
            continue
        event = AuditEvent.from_item({**item, **(changes if item["seq"] == seq else {})})
        fields = {**event.__dict__, "prev_hash": previous_hash or event.prev_hash, "hash": ""}
        fields["hash"] = AuditEvent(**fields).computed_hash()
        rewritten = AuditEvent(**fields)
        raw_put(registry, registry.audit.table, rewritten.to_item())
        previous_hash = rewritten.hash
    head = registry.store.get(registry.table, anchor_key(chain))
    assert head is not None
    raw_put(registry, registry.table, {**head, "hash": previous_hash})


def check(registry: Registry, anchor: tuple[DigestStore, KmsSigner], chain: str = CHAIN) -> AnchorReport:
    store, signer = anchor
    return check_trail(registry.audit, store, signer, registry.audit.chains())


def test_a_digest_anchors_every_chain_and_later_events_are_not_yet_anchored(registry: Registry, anchor) -> None:
    # GIVEN two chains
    append(registry, 4)
    append(registry, 2, chain="houses")
    # WHEN a digest is written and two more events follow
    digest = write_digest(registry.audit, *anchor)
    append(registry, 2)
    report = check(registry, anchor)
    # THEN both heads are in the digest and every stored event matches it
    assert [(h.chain, h.seq) for h in digest.heads] == [(CHAIN, 4), ("houses", 2)]
    assert digest.number == 1 and digest.previous_sha256 == GENESIS and digest.refused == ()
    assert report.ok, report.findings
    assert report.chains[CHAIN].anchored_seq == 4 and report.chains[CHAIN].not_anchored == 2
    assert report.chains["houses"].not_anchored == 0
    assert "churn: anchored up to seq 4 by digest #1" in report.chain_line(CHAIN)
    assert "not yet anchored: 2 events" in report.chain_line(CHAIN)


def test_digests_chain_to_each_other(registry: Registry, anchor) -> None:
    # GIVEN three digests with events between them
    digests = []
    for _ in range(3):
        append(registry, 1)
        digests.append(write_digest(registry.audit, *anchor))
    # THEN each names its predecessor's sha256, and all three verify
    assert [d.number for d in digests] == [1, 2, 3]
    assert digests[1].previous_sha256 == digests[0].sha256 and digests[2].previous_sha256 == digests[1].sha256
    report = check(registry, anchor)
    assert report.ok and report.checked == 3 and report.newest == digests[2]


def test_a_rechained_edit_before_the_digest_passes_the_chain_check_but_not_the_digest(
    registry: Registry, anchor
) -> None:
    # GIVEN five events anchored by a digest
    append(registry, 5)
    digest = write_digest(registry.audit, *anchor)
    # WHEN event 2 is edited, every later hash recomputed and the anchor moved (what a platform role could do)
    rechain(registry, CHAIN, 2, actor="mallory")
    # THEN the chain on its own still verifies
    assert registry.audit.verify(CHAIN).ok
    # BUT the digest names the chain, the anchored seq and the digest's time
    report = check(registry, anchor)
    assert [(f.kind, f.chain, f.seq, f.digest_time) for f in report.findings] == [("rewritten", CHAIN, 5, digest.time)]
    assert "changed after that digest" in report.findings[0].message


def test_the_oldest_disagreeing_digest_bounds_where_the_edit_is(registry: Registry, anchor) -> None:
    # GIVEN digests anchoring seq 2, 4 and 6
    digests = []
    for _ in range(3):
        append(registry, 2)
        digests.append(write_digest(registry.audit, *anchor))
    # WHEN event 3 is rewritten and re-chained
    rechain(registry, CHAIN, 3, subject="thing/forged")
    report = check(registry, anchor)
    # THEN the finding is at seq 4 (digest #2) and says digest #1 still matches at seq 2
    (finding,) = report.findings
    assert (finding.kind, finding.seq, finding.digest) == ("rewritten", 4, 2)
    assert "digest #1 of" in finding.message and "still matches at seq 2" in finding.message


def test_an_edit_after_the_last_digest_is_caught_only_once_a_digest_refuses_it(registry: Registry, anchor) -> None:
    # GIVEN a digest at seq 3 and three newer events
    append(registry, 3)
    write_digest(registry.audit, *anchor)
    append(registry, 3)
    # WHEN event 5 (not yet anchored) is rewritten and re-chained
    rechain(registry, CHAIN, 5, actor="mallory")
    # THEN nothing outside the tables knew it: it passes (this is the documented limit)
    report = check(registry, anchor)
    assert report.ok and report.chains[CHAIN].not_anchored == 3
    # AND the next digest anchors it (the rewritten chain still extends the digested head)
    assert write_digest(registry.audit, *anchor).head(CHAIN).seq == 6


def test_the_digest_function_refuses_to_advance_a_rewritten_chain(registry: Registry, anchor) -> None:
    # GIVEN a digested chain that is then rewritten before its digested head
    append(registry, 4)
    first = write_digest(registry.audit, *anchor)
    rechain(registry, CHAIN, 1, actor="mallory")
    append(registry, 1)
    # WHEN the next digest is written
    second = write_digest(registry.audit, *anchor)
    # THEN it keeps the verified head and records why it did not advance
    assert second.head(CHAIN) == first.head(CHAIN)
    assert [(r.chain, r.reason) for r in second.refused] == [
        (CHAIN, "the event at seq 4 no longer has the hash the last digest anchors")
    ]
    kinds = sorted((f.kind, f.seq) for f in check(registry, anchor).findings)
    assert kinds == [("refused", None), ("rewritten", 4)]


def test_a_truncated_chain_with_its_anchor_moved_back_is_found(registry: Registry, anchor) -> None:
    # GIVEN six anchored events
    append(registry, 6)
    digest = write_digest(registry.audit, *anchor)
    # WHEN the last two are deleted and the anchor moved back to seq 4
    items = {i["seq"]: i for i in audit_items(registry, CHAIN)}
    for seq in (5, 6):
        raw_delete(registry, registry.audit.table, {"pk": CHAIN, "seq": seq})
    head = registry.store.get(registry.table, anchor_key(CHAIN))
    raw_put(registry, registry.table, {**head, "seq": 4, "hash": items[4]["hash"]})
    # THEN the chain verifies on its own, the digest does not
    assert registry.audit.verify(CHAIN).ok
    (finding,) = check(registry, anchor).findings
    assert (finding.kind, finding.seq, finding.digest_time) == ("truncated", 6, digest.time)
    assert "cut off the end of the chain (the chain ends at seq 4)" in finding.message


def test_a_deleted_chain_is_found(registry: Registry, anchor) -> None:
    append(registry, 2)
    write_digest(registry.audit, *anchor)
    for seq in (1, 2):
        raw_delete(registry, registry.audit.table, {"pk": CHAIN, "seq": seq})
    raw_delete(registry, registry.table, anchor_key(CHAIN))
    store, signer = anchor
    report = check_trail(registry.audit, store, signer, registry.audit.chains())
    assert [(f.kind, f.chain, f.seq) for f in report.findings] == [("truncated", CHAIN, 2)]


def _envelope(store: DigestStore, number: int) -> dict[str, Any]:
    return json.loads(store.client.get_object(Bucket=BUCKET, Key=digest_key(number))["Body"].read())


def test_a_tampered_digest_does_not_verify(registry: Registry, anchor) -> None:
    # GIVEN a digest
    append(registry, 3)
    write_digest(registry.audit, *anchor)
    store, _ = anchor
    # WHEN someone writes digest #2 with the heads of their choice and #1's signature
    envelope = _envelope(store, 1)
    body = json.loads(envelope["body"])
    body.update(number=2, previous_sha256=Digest.from_body(envelope["body"].encode()).sha256)
    body["chains"][0]["hash"] = "f" * 64
    store.client.put_object(Bucket=BUCKET, Key=digest_key(2), Body=json.dumps({**envelope, "body": json.dumps(body)}))
    report = check(registry, anchor)
    # THEN it is reported as forged, and the chain is still checked against digest #1
    assert [(f.kind, f.digest) for f in report.findings] == [("forged", 2)]
    assert "signature does not verify" in report.findings[0].message
    assert report.newest is not None and report.newest.number == 1
    # AND the digest function refuses to chain a new digest to it
    with pytest.raises(CheckFailedError, match="does not verify"):
        write_digest(registry.audit, *anchor)


def test_a_digest_signed_with_another_key_or_unsigned_is_forged(registry: Registry, anchor) -> None:
    append(registry, 2)
    first = write_digest(registry.audit, *anchor)
    store, signer = anchor
    # GIVEN an attacker's own KMS key, used to sign digest #2...
    other = KmsSigner(
        signer.client, signer.client.create_key(KeyUsage="SIGN_VERIFY", KeySpec="ECC_NIST_P256")["KeyMetadata"]["Arn"]
    )
    forged = Digest(2, "2026-12-06T05:00:00.000Z", first.sha256, first.heads)
    sealed = json.loads(seal(forged, other))
    # ...claiming the platform's key id
    store.client.put_object(Bucket=BUCKET, Key=digest_key(2), Body=json.dumps({**sealed, "key_id": signer.key_id}))
    # AND digest #3 with no signature at all
    unsigned = Digest(3, "2026-12-06T05:15:00.000Z", forged.sha256, first.heads)
    store.client.put_object(
        Bucket=BUCKET,
        Key=digest_key(3),
        Body=json.dumps({**sealed, "key_id": signer.key_id, "body": unsigned.body().decode(), "signature": ""}),
    )
    # AND digest #4 naming the attacker's key openly
    named = Digest(4, "2026-12-06T05:30:00.000Z", unsigned.sha256, first.heads)
    store.client.put_object(Bucket=BUCKET, Key=digest_key(4), Body=seal(named, other))
    findings = {f.digest: f.message for f in check(registry, anchor).findings}
    # THEN each is forged, for its own reason
    assert "signature does not verify" in findings[2]
    assert "carries no signature" in findings[3]
    assert "not the platform's signing key" in findings[4]
    assert base64.b64decode(sealed["signature"])  # the attacker's signature was real, just not ours


def test_a_missing_digest_breaks_the_digest_chain(registry: Registry, anchor) -> None:
    # GIVEN three digests
    for _ in range(3):
        append(registry, 1)
        write_digest(registry.audit, *anchor)
    store, _ = anchor
    # WHEN digest #2 is removed (GOVERNANCE: only with s3:BypassGovernanceRetention)
    version = store.newest(0)[1]
    assert version.number == 2
    store.client.delete_object(
        Bucket=BUCKET, Key=version.key, VersionId=version.versions[0], BypassGovernanceRetention=True
    )
    # THEN the gap is a finding
    (finding,) = check(registry, anchor).findings
    assert finding.kind == "digest-chain" and "#3" in finding.message and "follows #1" in finding.message


def test_object_lock_keeps_a_digest_from_being_deleted_or_replaced(registry: Registry, anchor) -> None:
    append(registry, 1)
    write_digest(registry.audit, *anchor)
    store, _ = anchor
    (stored,) = store.newest(0)
    # WHEN the locked version is deleted without the governance bypass THEN S3 refuses
    with pytest.raises(store.client.exceptions.ClientError, match="AccessDenied"):
        store.client.delete_object(Bucket=BUCKET, Key=stored.key, VersionId=stored.versions[0])
    # WHEN the key is overwritten THEN a second version appears; the first is what verify reads, and it says so
    store.client.put_object(Bucket=BUCKET, Key=stored.key, Body=b"{}")
    report = check(registry, anchor)
    assert [(f.kind, f.digest) for f in report.findings] == [("overwritten", 1)]
    assert report.newest is not None and report.newest.number == 1
    # AND the digest function itself never overwrites: a put to an existing key is a conflict
    with pytest.raises(ConflictError):
        store.put(stored.key, b"{}")


def test_no_digest_yet_is_not_a_failure(registry: Registry, anchor) -> None:
    append(registry, 2)
    report = check(registry, anchor)
    assert report.ok and report.newest is None and report.chains[CHAIN].not_anchored == 2
    assert "no digest yet" in report.chain_line(CHAIN)


# -- the command line ---------------------------------------------------------------------------
def run_mlops(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    from mlops_cli.main import main

    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_audit_verify_names_the_rechained_chain_and_seq_and_exits_one(
    deployed: Any, anchor, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a deployment whose SSM parameters name the digest bucket and the signing key
    store, signer = anchor
    ssm = boto3.client("ssm", region_name="us-east-1")
    ssm.put_parameter(Name="/mlops/dev/audit-digest-bucket", Value=BUCKET, Type="String")
    ssm.put_parameter(Name="/mlops/dev/audit-signing-key-arn", Value=signer.key_id, Type="String")
    registry = Registry.for_dynamodb(deployed, registry_table="mlops-dev-registry", audit_table="mlops-dev-audit")
    append(registry, 4)
    digest = write_digest(registry.audit, store, signer)
    append(registry, 1)
    # WHEN the trail is intact THEN verify passes and says what is anchored
    code, out, err = run_mlops(capsys, "audit", "verify")
    assert code == 0, out + err
    assert f"churn: anchored up to seq 4 by digest #1 ({digest.time}); not yet anchored: 1 events" in out
    # WHEN event 3 is edited and re-chained, with the anchor moved
    rechain(registry, CHAIN, 3, actor="mallory")
    code, out, err = run_mlops(capsys, "audit", "verify", "--model", CHAIN)
    # THEN the chain alone is fine, the digest is not: exit 1 naming chain, seq and the digest's time
    assert code == 1
    assert "churn: ok (5 events, head seq 5)" in out
    assert "churn: rewritten at seq 4: the stored event's hash" in out and digest.time in out
    assert err.strip() == "error: audit verify: 1 problem(s) in chain(s) churn"
    code, out, _ = run_mlops(capsys, "--json", "audit", "verify", "--model", CHAIN)
    data = json.loads(out)
    assert code == 1 and data["ok"] is False and data["chains"][0]["ok"] is True
    assert [(f["kind"], f["seq"], f["digest_time"]) for f in data["chains"][0]["anchor_findings"]] == [
        ("rewritten", 4, digest.time)
    ]
    assert data["digests"]["newest"]["number"] == 1


def test_in_compliance_mode_not_even_the_governance_bypass_deletes_a_digest(registry: Registry, aws: None) -> None:
    # GIVEN the digest bucket as prod deploys it (COMPLIANCE)
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="mlops-prod-audit-digests", ObjectLockEnabledForBucket=True)
    s3.put_object_lock_configuration(
        Bucket="mlops-prod-audit-digests",
        ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": 365}},
        },
    )
    kms = boto3.client("kms", region_name="us-east-1")
    signer = KmsSigner(kms, kms.create_key(KeyUsage="SIGN_VERIFY", KeySpec="ECC_NIST_P256")["KeyMetadata"]["Arn"])
    store = DigestStore(s3, "mlops-prod-audit-digests")
    append(registry, 1)
    write_digest(registry.audit, store, signer)
    (stored,) = store.newest(0)
    # WHEN the version is deleted with the bypass THEN S3 refuses (moto enforces this; it does not
    # refuse shortening a COMPLIANCE retention with PutObjectRetention, which AWS does)
    with pytest.raises(s3.exceptions.ClientError, match="AccessDenied"):
        s3.delete_object(
            Bucket="mlops-prod-audit-digests",
            Key=stored.key,
            VersionId=stored.versions[0],
            BypassGovernanceRetention=True,
        )
    head = s3.head_object(Bucket="mlops-prod-audit-digests", Key=stored.key, VersionId=stored.versions[0])
    assert head["ObjectLockMode"] == "COMPLIANCE"


def test_a_run_that_loses_the_race_chains_to_the_winner_instead_of_failing(registry: Registry, anchor) -> None:
    # GIVEN a digest run that reads the newest digest, then another run stores the same number first
    store, signer = anchor
    append(registry, 2)
    write_digest(registry.audit, store, signer)

    class Overlapped(DigestStore):
        raced = False

        def put(self, key: str, data: bytes) -> str:
            if not self.raced:  # the other run wins this number between our read and our write
                self.raced = True
                write_digest(registry.audit, store, signer)
            return super().put(key, data)

    # WHEN the slow run writes
    summary = write_digest_racing(registry.audit, Overlapped(store.client, store.bucket), signer, bucket=store.bucket)
    # THEN it lost once, re-read the winner's digest and chained its own on top: #3 after #2, all verify
    assert summary["number"] == 3 and not summary.get("skipped")
    assert check(registry, anchor).ok

    # AND a run that loses every race stops without error, writing nothing
    class AlwaysLate(DigestStore):
        def put(self, key: str, data: bytes) -> str:
            write_digest(registry.audit, store, signer)
            return super().put(key, data)

    before = len(store.newest(0))
    late = write_digest_racing(registry.audit, AlwaysLate(store.client, store.bucket), signer, bucket=store.bucket)
    assert late["skipped"] and "written by someone else first" in late["reason"]
    assert len(store.newest(0)) == before + 3 and check(registry, anchor).ok
