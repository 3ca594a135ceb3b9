"""Four-eyes on verified identities, on the local cloud: the real upload API, S3, pipelines and CLI.

The scientist uploads through `mlops data upload` (the upload API records the principal AWS
authenticated); the scientist may not approve the candidate, the approver may. An object put
straight into S3 with forged ``uploaded-by`` metadata is unverified and cannot be approved. An
upload for a model with no spec is refused before anything is stored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mlops.data.catalog import DatasetCatalog
from mlops.data.trigger import execution_name
from mlops.deployment.approval import get_request
from mlops.registry.versions import Registry, Status
from mlops_local.testing import LocalCloudProcess
from tests.e2e.test_deployment_pipeline import (
    assert_consistent,
    generate,
    mlops,
    ok,
    put_spec,
    wait_for,
    waiting_input,
)

ACCOUNT = "123456789012"
SCIENTIST = f"arn:aws:iam::{ACCOUNT}:user/scientist"
APPROVER = f"arn:aws:iam::{ACCOUNT}:user/approver"


@pytest.fixture(scope="module")
def envs(local_cloud: LocalCloudProcess) -> dict[str, dict[str, str]]:
    return {name: local_cloud.environ(name) for name in ("testing", "scientist", "approver")}


@pytest.fixture(scope="module")
def registry(local_cloud: LocalCloudProcess) -> Registry:
    ssm = local_cloud.client("ssm")

    def parameter(leaf: str) -> str:
        return str(ssm.get_parameter(Name=f"/mlops/dev/{leaf}")["Parameter"]["Value"])

    return Registry.for_dynamodb(
        local_cloud.client("dynamodb"),
        registry_table=parameter("registry-table"),
        audit_table=parameter("audit-table"),
    )


def waiting_candidate(cloud: LocalCloudProcess, env: dict[str, str], registry: Registry, model: str, run: Any) -> int:
    """The run's registered version, with its deployment pipeline waiting for approval."""
    assert run["output"]["outcome"] == "registered", run
    version = int(run["output"]["version"])
    arn = str(ok(env, "deploy", model, str(version))["execution"])
    wait_for(lambda: waiting_input(cloud, arn), timeout=60, what="the approval task")
    assert get_request(registry, model, version) is not None
    return version


def test_the_uploader_is_refused_and_another_identity_approves(
    local_cloud: LocalCloudProcess,
    envs: dict[str, dict[str, str]],
    registry: Registry,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    tmp = tmp_path_factory.mktemp("four-eyes")
    put_spec(envs["testing"], tmp, "fe", deployment={"strategy": "all_at_once"})
    path = tmp / "train.csv"
    generate("churn", 600, 11).to_csv(path, index=False)
    # GIVEN the scientist uploads through the CLI (signed call to the upload API, then the presigned PUT)
    uploaded = ok(envs["scientist"], "data", "upload", str(path), "--model", "fe", "--wait")
    assert uploaded["uploader"] == SCIENTIST and uploaded["run"]["status"] == "SUCCEEDED", [
        (s["name"], s["status"], s["error"], (s["cause"] or "")[:1500]) for s in uploaded["run"]["steps"]
    ]
    stored = local_cloud.client("s3").head_object(Bucket=uploaded["bucket"], Key=uploaded["key"])
    assert stored["Metadata"]["uploaded-by"] == SCIENTIST
    # AND the dataset is recorded with the scientist as its verified uploader
    record = DatasetCatalog(registry).get("fe", uploaded["version_id"])
    assert (record.uploaded_by, record.uploader_source) == (SCIENTIST, "upload-api")
    version = waiting_candidate(local_cloud, envs["testing"], registry, "fe", uploaded["run"])
    # WHEN the scientist approves through the API  THEN 403 with the four-eyes message
    status, answer = local_cloud.api("POST", f"models/fe/versions/{version}/approve", {}, identity="scientist")
    assert status == 403 and "four-eyes rule" in answer["error"] and SCIENTIST in answer["error"], answer
    # AND through the CLI: a refused check, exit 1 (the README's table)
    refused = mlops(envs["scientist"], "approve", "fe", str(version))
    assert refused.returncode == 1 and "four-eyes" in refused.stderr, refused.stderr
    assert registry.get_version("fe", version).status == Status.PENDING_APPROVAL
    # WHEN the approver approves  THEN it is approved by the approver and deployed
    result = ok(envs["approver"], "approve", "fe", str(version), "--comment", "reviewed")
    assert (result["decision"], result["by"], result["resumed"]) == ("approved", APPROVER, True)
    assert registry.get_version("fe", version).approvals[-1]["by"] == APPROVER
    assert_consistent(envs["testing"], registry, "fe")


def test_a_direct_put_with_forged_metadata_is_unverified_and_cannot_be_approved(
    local_cloud: LocalCloudProcess,
    envs: dict[str, dict[str, str]],
    registry: Registry,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    tmp = tmp_path_factory.mktemp("forged")
    put_spec(envs["testing"], tmp, "fe-forged", deployment={"strategy": "all_at_once"})
    path = tmp / "train.csv"
    generate("churn", 600, 12).to_csv(path, index=False)
    s3 = local_cloud.client("s3", identity="scientist")
    bucket = local_cloud.client("ssm").get_parameter(Name="/mlops/dev/data-bucket")["Parameter"]["Value"]
    # GIVEN the scientist writes straight to S3, claiming in the metadata that the approver uploaded it
    # (AWS's bucket policy denies this put; moto does not evaluate bucket policies)
    put = s3.put_object(
        Bucket=bucket, Key="datasets/fe-forged/train.csv", Body=path.read_bytes(), Metadata={"uploaded-by": APPROVER}
    )
    run_name = execution_name(bucket, "datasets/fe-forged/train.csv", put["VersionId"], "fe-forged")
    run = ok(envs["testing"], "runs", "wait", run_name)
    # THEN the dataset's uploader is unverified, the claim kept apart
    record = DatasetCatalog(registry).get("fe-forged", put["VersionId"])
    assert (record.uploaded_by, record.uploader_source) == ("unverified", None)
    assert record.extra["claimed_uploader"] == APPROVER
    version = waiting_candidate(local_cloud, envs["testing"], registry, "fe-forged", run)
    # WHEN the approver (whom the metadata names, so not the uploader by the claim) approves
    status, answer = local_cloud.api("POST", f"models/fe-forged/versions/{version}/approve", {}, identity="approver")
    # THEN refused (403): the uploader is unverified, and the message says how to fix it
    assert status == 403 and "unverified" in answer["error"] and "mlops data upload" in answer["error"], answer
    refused = mlops(envs["approver"], "approve", "fe-forged", str(version))
    assert refused.returncode == 1 and "unverified" in refused.stderr
    # AND it can still be rejected, which ends its pipeline
    ok(envs["approver"], "reject", "fe-forged", str(version), "--reason", "data of unverified origin")
    assert registry.get_version("fe-forged", version).status == Status.REJECTED
    assert_consistent(envs["testing"], registry, "fe-forged")


def test_an_upload_for_a_model_with_no_spec_is_refused_before_anything_is_stored(
    local_cloud: LocalCloudProcess, envs: dict[str, dict[str, str]], tmp_path: Path
) -> None:
    path = tmp_path / "data.csv"
    path.write_text("a,b\n1,2\n")
    # WHEN data is uploaded for a model with no spec
    refused = mlops(envs["scientist"], "data", "upload", str(path), "--model", "fe-nospec")
    # THEN exit 2 naming the missing spec, and nothing is in the bucket
    assert refused.returncode == 2, (refused.stdout, refused.stderr)
    assert "model 'fe-nospec' has no spec" in refused.stderr and "mlops spec put" in refused.stderr
    bucket = local_cloud.client("ssm").get_parameter(Name="/mlops/dev/data-bucket")["Parameter"]["Value"]
    listed = local_cloud.client("s3").list_object_versions(Bucket=bucket, Prefix="datasets/fe-nospec/")
    assert not listed.get("Versions") and not listed.get("DeleteMarkers")
    # AND naming the uploader on the command line is refused, not silently used
    claimed = mlops(envs["scientist"], "data", "upload", str(path), "--model", "fe", "--actor", "someone-else")
    assert claimed.returncode == 2 and "--actor" in claimed.stderr
