"""checkov on the synthesized templates of the whole app: 0 failed checks; every skip has its reason.

checkov runs from its own virtual environment (``make test`` builds .venv-checkov from
requirements-checkov.txt): it pins boto3 and packaging far below the platform's pins. Skips are
written only by ``stacks.nag`` (``acknowledge(..., checkov=...)`` or ``skip_checkov``) into each
resource's ``Metadata: checkov: skip``.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3

from stacks import nag
from tests.infra.conftest import ROOT, Synthesized

CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"

# Every check the app skips somewhere, and why (README "Security": the same list).
EXPECTED_SKIPS = {
    "CKV_AWS_115",  # reserved concurrency: a per-kind setting in cdk.json, unset by default
    "CKV_AWS_116",  # DLQ: only the asynchronously invoked starter has one; the rest are synchronous
    "CKV_AWS_117",  # VPC: no private resource to reach, a VPC adds NAT cost
    "CKV_AWS_120",  # API cache: predictions must never be cached
    "CKV_AWS_27",  # SQS-managed SSE is encryption; the check does not recognize it
    "CKV_AWS_18",  # the access-log bucket does not log into itself
    "CKV_AWS_7",  # key rotation: the audit signing key is asymmetric, which KMS does not rotate
}


def _templates(outdir: Path) -> list[Path]:
    return sorted(outdir.glob("assembly-*/*.template.json"))


def _checkov(files: list[Path]) -> dict:
    assert CHECKOV.is_file(), f"{CHECKOV} is missing: run `make test` (it builds .venv-checkov)"
    # Without --quiet: the report lists the passed and skipped checks too, each with its file.
    args = [str(CHECKOV), "--framework", "cloudformation", "--compact", "--skip-download", "-o", "json"]
    for file in files:
        args += ["-f", str(file)]
    result = subprocess.run(args, capture_output=True, text=True, timeout=300, check=False)
    assert result.stdout.strip(), f"checkov printed nothing (exit {result.returncode}): {result.stderr[-2000:]}"
    report = json.loads(result.stdout)
    reports = report if isinstance(report, list) else [report]
    assert len(reports) == 1 and reports[0]["check_type"] == "cloudformation", [r.get("check_type") for r in reports]
    return reports[0]


PROBE = "Probe.template.json"


def _probe(outdir: Path) -> Path:
    """A stack with the two most common findings the platform fixes, one of them skipped."""
    app = cdk.App(outdir=str(outdir))
    stack = cdk.Stack(app, "Probe")
    logs.LogGroup(stack, "Plain")
    bucket = s3.Bucket(stack, "Unlogged", enforce_ssl=True, encryption=s3.BucketEncryption.S3_MANAGED)
    nag.skip_checkov(bucket, "CKV_AWS_18", "A probe bucket in a test; it never holds any data.")
    app.synth()
    return outdir / PROBE


@pytest.fixture(scope="module")
def checked(synthesized: Synthesized, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One checkov run over every synthesized template and the probe's: checkov's start-up (loading
    its checks, about a third of a run) is paid once, not once per test."""
    files = _templates(synthesized.outdir)
    assert len(files) == 6, files  # every stack of every environment (dev, prod and the API-key variant)
    return _checkov([*files, _probe(tmp_path_factory.mktemp("probe"))])


def _of_probe(check: dict) -> bool:
    return Path(check["file_path"]).name == PROBE


def test_checkov_finds_no_failure_in_any_synthesized_template(checked: dict) -> None:
    # GIVEN every stack of every environment, checked by checkov (with the probe, told apart by file)
    summary, results = checked["summary"], checked["results"]
    failures = [
        f"{f['check_id']} {f['resource']} ({Path(f['file_path']).name}): {f['check_name']}"
        for f in results["failed_checks"]
        if not _of_probe(f)
    ]
    # THEN nothing fails, every template was read, and the checks really ran
    assert not failures, "checkov failures:\n  " + "\n  ".join(failures)
    assert summary["failed"] == len([f for f in results["failed_checks"] if _of_probe(f)]), summary
    assert summary["parsing_errors"] == 0, summary
    passed = [c for c in results["passed_checks"] if not _of_probe(c)]
    assert summary["resource_count"] > 300 and len(passed) > 1000, summary


def test_every_checkov_skip_is_expected_and_has_a_reason(synthesized: Synthesized) -> None:
    skips: dict[str, int] = {}
    for file in _templates(synthesized.outdir):
        for logical_id, resource in json.loads(file.read_text())["Resources"].items():
            for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
                assert len(skip.get("comment", "").strip()) >= nag.MIN_REASON_LENGTH, (file.name, logical_id, skip)
                skips[skip["id"]] = skips.get(skip["id"], 0) + 1
    assert set(skips) == EXPECTED_SKIPS, skips
    # prod reserves concurrency for its inference functions (cdk.json; the inference function and its
    # fallback, which serves versions without an ONNX export): no skip needed there
    prod = json.loads(next(f for f in _templates(synthesized.outdir) if "mlopsprodPlatform" in f.name).read_text())
    inference = [
        r
        for r in prod["Resources"].values()
        if r["Type"] == "AWS::Lambda::Function" and "Inference" in json.dumps(r["Properties"].get("Description", ""))
    ]
    assert [r["Properties"].get("ReservedConcurrentExecutions") for r in inference] == [50, 50]
    for function in inference:
        skipped = [s["id"] for s in function["Metadata"]["checkov"]["skip"]]
        assert "CKV_AWS_115" not in skipped and "CKV_AWS_117" in skipped


def test_checkov_flags_what_the_platform_fixes(checked: dict) -> None:
    # GIVEN a stack with the two most common findings the platform fixes, one of them skipped (_probe)
    # WHEN checkov checks it  THEN the unencrypted log group fails and the skipped check is skipped
    results = checked["results"]
    failed = {f["check_id"] for f in results["failed_checks"] if _of_probe(f)}
    assert "CKV_AWS_158" in failed
    skipped = {c["check_id"] for c in results["skipped_checks"] if _of_probe(c)}
    assert "CKV_AWS_18" not in failed and "CKV_AWS_18" in skipped


def test_skip_checkov_writes_metadata_once_per_check_and_needs_a_reason() -> None:
    stack = cdk.Stack(cdk.App(), "Probe")
    bucket = s3.Bucket(stack, "Bucket")
    nag.skip_checkov(bucket, "CKV_AWS_18", "First reason, long enough to count.", types=["AWS::S3::Bucket"])
    nag.skip_checkov(bucket, ["CKV_AWS_18", "CKV_AWS_21"], "Second reason, long enough to count.")
    metadata = bucket.node.default_child.get_metadata("checkov")  # type: ignore[union-attr]
    assert metadata == {
        "skip": [
            {"id": "CKV_AWS_18", "comment": "Second reason, long enough to count."},
            {"id": "CKV_AWS_21", "comment": "Second reason, long enough to count."},
        ]
    }
    with pytest.raises(nag.AcknowledgementError, match="needs a reason"):
        nag.skip_checkov(bucket, "CKV_AWS_18", "because")
    with pytest.raises(nag.AcknowledgementError, match="not a checkov"):
        nag.skip_checkov(bucket, "AwsSolutions-S1", "A reason that is long enough here.")
    with pytest.raises(nag.AcknowledgementError, match="holds no resource"):
        nag.skip_checkov(bucket, "CKV_AWS_18", "A reason that is long enough here.", types=["AWS::SQS::Queue"])


def test_acknowledge_records_the_nag_finding_and_the_checkov_skip_with_one_reason() -> None:
    stack = cdk.Stack(cdk.App(), "Probe")
    bucket = s3.Bucket(stack, "Bucket")
    reason = "The access-log destination; logging it into itself would loop."
    nag.acknowledge(bucket, "AwsSolutions-S1", reason, checkov="CKV_AWS_18", checkov_types=["AWS::S3::Bucket"])
    assert bucket.node.default_child.get_metadata("checkov") == {  # type: ignore[union-attr]
        "skip": [{"id": "CKV_AWS_18", "comment": reason}]
    }
