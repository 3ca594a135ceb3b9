"""The audit digest on the local cloud: the deployed function signs, Object Lock keeps, verify catches a re-chain.

The local cloud materializes the digest bucket (Object Lock, GOVERNANCE in dev), the asymmetric
signing key (ECC_NIST_P256) and the digest function from the synthesized dev stage. Events are
written through the platform's own append path; the tampering is done with plain boto3, as
someone holding a platform role could: edit an event, recompute every later hash, move the anchor.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from mlops.registry.audit import anchor_key
from mlops.registry.digest import digest_key
from mlops.registry.versions import Registry
from mlops_local.testing import LocalCloudProcess
from tests.integration.console import console
from tests.integration.registry.test_audit_digest import rechain
from tests.unit.registry.helpers import audit_items, raw_put

pytestmark = pytest.mark.xdist_group("local-cloud")

CHAIN = "digest-e2e"


class Run:
    def __init__(self, returncode: int, stdout: str, stderr: str) -> None:
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


@pytest.fixture
def mlops(
    local_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., Run]:
    """``mlops ARGS`` in this process (the real entry point; ``local_env`` points it at the local cloud)."""
    shell = console(monkeypatch, capsys)

    def run(*args: str) -> Run:
        result = shell(*args)
        return Run(result.code, result.out, result.err)

    return run


def parameter(cloud: LocalCloudProcess, leaf: str) -> str:
    return str(cloud.client("ssm").get_parameter(Name=f"/mlops/dev/{leaf}")["Parameter"]["Value"])


def test_a_rechained_edit_passes_the_chain_but_not_the_signed_digest(
    local_cloud: LocalCloudProcess, mlops: Callable[..., Run]
) -> None:
    registry = Registry.for_dynamodb(
        local_cloud.client("dynamodb"),
        registry_table=parameter(local_cloud, "registry-table"),
        audit_table=parameter(local_cloud, "audit-table"),
    )
    s3, bucket = local_cloud.client("s3"), parameter(local_cloud, "audit-digest-bucket")
    # GIVEN the deployed digest bucket under Object Lock and the asymmetric signing key
    lock = s3.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"]
    retention = lock["Rule"]["DefaultRetention"]
    assert lock["ObjectLockEnabled"] == "Enabled" and (retention["Mode"], retention["Days"]) == ("GOVERNANCE", 1)
    key = local_cloud.client("kms").describe_key(KeyId=parameter(local_cloud, "audit-signing-key-arn"))["KeyMetadata"]
    assert (key["KeySpec"], key["KeyUsage"]) == ("ECC_NIST_P256", "SIGN_VERIFY")
    # AND a chain of five events written through the platform's append path
    for i in range(5):
        registry.audit.append(CHAIN, actor=f"user-{i}", action="test.event", subject=f"thing/{i}", after={"i": i})
    original = audit_items(registry, CHAIN)
    original_anchor = registry.store.get(registry.table, anchor_key(CHAIN))
    assert original_anchor is not None

    # WHEN an operator writes a digest now (the deployed function runs)
    written = mlops("--json", "audit", "digest")
    digest = json.loads(written.stdout)
    # (the cloud is shared: another test's chain could be refused; this one must not be)
    assert written.returncode == (1 if digest["refused"] else 0), written.stderr
    assert CHAIN not in [r["chain"] for r in digest["refused"]] and digest["key"] == digest_key(digest["number"])
    # THEN the digest object is locked: deleting its version is refused, rewriting its key too
    (version,) = s3.list_object_versions(Bucket=bucket, Prefix=digest["key"])["Versions"]
    head = s3.head_object(Bucket=bucket, Key=digest["key"], VersionId=version["VersionId"])
    assert head["ObjectLockMode"] == "GOVERNANCE"
    with pytest.raises(s3.exceptions.ClientError, match="AccessDenied"):
        s3.delete_object(Bucket=bucket, Key=digest["key"], VersionId=version["VersionId"])
    with pytest.raises(s3.exceptions.ClientError, match="PreconditionFailed"):
        s3.put_object(Bucket=bucket, Key=digest["key"], Body=b"{}", IfNoneMatch="*")
    # AND verify passes, naming the anchored seq
    intact = mlops("audit", "verify", "--model", CHAIN)
    assert intact.returncode == 0, intact.stdout + intact.stderr
    assert f"{CHAIN}: anchored up to seq 5 by digest #{digest['number']}" in intact.stdout

    try:
        # WHEN event 2 is edited with boto3, every later hash recomputed and the anchor moved
        rechain(registry, CHAIN, 2, actor="mallory")
        # THEN the chain and its anchor agree (the tables alone cannot tell)
        assert registry.audit.verify(CHAIN).ok
        # BUT `mlops audit verify` exits 1 naming the chain, the anchored seq and the digest's time
        caught = mlops("audit", "verify", "--model", CHAIN)
        assert caught.returncode == 1, caught.stdout + caught.stderr
        assert f"{CHAIN}: rewritten at seq 5: " in caught.stdout and digest["time"] in caught.stdout
        assert f"audit verify: 1 problem(s) in chain(s) {CHAIN}" in caught.stderr
        # AND the next digest refuses to anchor the rewritten chain
        refused = mlops("--json", "audit", "digest")
        assert refused.returncode == 1
        assert CHAIN in [r["chain"] for r in json.loads(refused.stdout)["refused"]]
    finally:
        # The cloud is shared with other tests: put the genuine events and anchor back.
        for item in original:
            raw_put(registry, registry.audit.table, item)
        raw_put(registry, registry.table, original_anchor)
        # and a digest after the refusal, so the newest digest anchors every chain again
        redigested = mlops("--json", "audit", "digest")
    assert CHAIN not in [r["chain"] for r in json.loads(redigested.stdout)["refused"]], redigested.stderr
    restored = mlops("audit", "verify", "--model", CHAIN)
    assert restored.returncode == 0, restored.stdout + restored.stderr
