"""The training pipeline on the local cloud: the real state machine, functions and CLI."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops_local.testing import LocalCloudProcess, signed_as

from .churn import churn_spec

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "examples"))
from generate import generate  # noqa: E402  (examples/ is scripts, not a package)

MLOPS = str(Path(sys.executable).parent / "mlops")


def mlops(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MLOPS, "--json", *args], env={**os.environ, **env}, capture_output=True, text=True, check=False, timeout=600
    )


def put_spec(env: dict[str, str], tmp_path: Path, name: str, *, search: bool = False, **changes: Any) -> None:
    """The example churn spec as ``name``; unless ``search``, one quickly trained candidate (the
    grid search is the subject of the happy path and the one-class run only)."""
    spec = churn_spec(name, search=search, **changes)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec))
    result = mlops(env, "spec", "put", str(path), "--actor", "alice")
    assert result.returncode == 0, result.stderr


def upload(
    env: dict[str, str],
    tmp_path: Path,
    model: str,
    rows: int = 1500,
    seed: int = 7,
    name: str = "train.csv",
    frame: Any = None,
) -> dict[str, Any]:
    path = tmp_path / name
    (frame if frame is not None else generate("churn", rows, seed)).to_csv(path, index=False)
    result = mlops(signed_as(env, "scientist"), "data", "upload", str(path), "--model", model, "--wait")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_upload_becomes_a_registered_candidate(
    local_env: dict[str, str], tmp_path: Path, aws: Callable[[str], Any]
) -> None:
    # GIVEN a stored spec
    put_spec(local_env, tmp_path, "happy", search=True)
    # WHEN a dataset is uploaded through the CLI
    uploaded = upload(local_env, tmp_path, "happy")
    run = uploaded["run"]
    # THEN the run validated, trained, evaluated, checked the ONNX export, gated and registered a candidate
    assert run["status"] == "SUCCEEDED", run
    steps = [s["name"] for s in run["steps"]]
    for step in ("Validate", "PlanTraining", "TrainCandidates", "Evaluate", "CheckOnnx", "Gate", "Register"):
        assert step in steps
    assert run["output"]["outcome"] == "registered"
    assert run["output"]["version"] == 1
    # AND the registry holds the version with its lineage, and the artifact matches its sha256
    shown = json.loads(mlops(local_env, "models", "show", "happy", "--version", "1").stdout)
    version = shown
    assert version["status"] == "PENDING_APPROVAL"
    assert version["dataset_version"]["version_id"] == uploaded["version_id"]
    assert version["spec_revision"] == 1
    assert version["pipeline_execution"].endswith(uploaded["run_name"])
    bucket, key = version["artifact_uri"][5:].split("/", 1)
    artifact = aws("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    assert hashlib.sha256(artifact).hexdigest() == version["artifact_sha256"]
    assert version["metrics"]["roc_auc"] > 0.7
    # AND an ONNX export, checked against scikit-learn on the holdout, is registered for serving
    bucket, key = version["tags"]["onnx_uri"][5:].split("/", 1)
    onnx = aws("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    assert hashlib.sha256(onnx).hexdigest() == version["tags"]["onnx_sha256"]
    # AND the model card exists and the audit chain is intact
    card = mlops(local_env, "models", "card", "happy", "1")
    assert card.returncode == 0, card.stderr
    assert "happy" in json.loads(card.stdout)["card"]
    assert mlops(local_env, "audit", "verify", "--model", "happy").returncode == 0


def test_duplicate_event_starts_one_execution(
    local_env: dict[str, str], tmp_path: Path, aws: Callable[[str], Any], local_cloud: LocalCloudProcess
) -> None:
    # GIVEN an upload whose run already exists
    put_spec(local_env, tmp_path, "dupe")
    uploaded = upload(local_env, tmp_path, "dupe", rows=600)
    # WHEN EventBridge delivers the same Object Created event again (at-least-once delivery)
    event = {
        "source": "aws.s3",
        "detail-type": "Object Created",
        "detail": {
            "bucket": {"name": uploaded["bucket"]},
            "object": {"key": uploaded["key"], "version-id": uploaded["version_id"]},
        },
    }
    starter = next(
        f["FunctionName"] for f in aws("lambda").list_functions()["Functions"] if "TrainingStarter" in f["FunctionName"]
    )
    answer = json.loads(aws("lambda").invoke(FunctionName=starter, Payload=json.dumps(event))["Payload"].read())
    # THEN Step Functions itself refuses the second start
    assert answer["duplicate"] is True
    machine = json.loads(mlops(local_env, "runs", "list", "--model", "dupe").stdout)["runs"]
    assert [r["name"] for r in machine].count(uploaded["run_name"]) == 1


def test_same_inputs_give_the_same_artifact(local_env: dict[str, str], tmp_path: Path) -> None:
    put_spec(local_env, tmp_path, "repro")
    first = upload(local_env, tmp_path, "repro", rows=800, seed=3, name="a.csv")
    second = upload(local_env, tmp_path, "repro", rows=800, seed=3, name="b.csv")
    versions = [
        json.loads(mlops(local_env, "models", "show", "repro", "--version", str(v)).stdout)
        for v in (first["run"]["output"]["version"], second["run"]["output"]["version"])
    ]
    shas = [v["artifact_sha256"] for v in versions]
    assert shas[0] == shas[1]


def test_gate_rejection_is_registered_with_reasons(local_env: dict[str, str], tmp_path: Path) -> None:
    # GIVEN a spec whose gate no model can pass
    spec = yaml.safe_load((ROOT / "examples" / "specs" / "churn.yaml").read_text())
    put_spec(local_env, tmp_path, "strict", gates={**spec.get("gates", {}), "metrics": {"accuracy": {"min": 0.999}}})
    uploaded = upload(local_env, tmp_path, "strict", rows=600)
    # THEN the run SUCCEEDED with outcome rejected, and the version is REJECTED with the reason
    run = uploaded["run"]
    assert run["status"] == "SUCCEEDED"
    assert run["output"]["outcome"] == "rejected"
    assert any("accuracy" in reason for reason in run["output"]["reasons"])
    shown = json.loads(mlops(local_env, "models", "show", "strict", "--version", "1").stdout)
    version = shown
    assert version["status"] == "REJECTED"


def test_invalid_dataset_fails_with_the_report_and_the_data_kept(
    local_env: dict[str, str], tmp_path: Path, aws: Callable[[str], Any]
) -> None:
    put_spec(local_env, tmp_path, "dirty")
    frame = generate("churn", 400, 5)
    frame.loc[3, "tenure_months"] = -10
    path = tmp_path / "dirty.csv"
    frame.to_csv(path, index=False)
    result = mlops(local_env, "data", "upload", str(path), "--model", "dirty", "--wait")
    uploaded = json.loads(result.stdout)
    run = uploaded["run"]
    assert run["status"] == "FAILED"
    assert run["error"] == "DatasetInvalid"
    validate = next(s for s in run["steps"] if s["name"] == "Validate")
    assert validate["status"] == "SUCCEEDED"
    kept = aws("s3").get_object(Bucket=uploaded["bucket"], Key=uploaded["key"], VersionId=uploaded["version_id"])
    assert kept["Body"].read() == path.read_bytes()
    report_key = f"reports/dirty/datasets/{uploaded['version_id']}/validation.json"
    report = json.loads(aws("s3").get_object(Bucket=uploaded["bucket"], Key=report_key)["Body"].read())
    assert report["valid"] is False


def test_training_failure_ends_failed_and_is_recorded(local_env: dict[str, str], tmp_path: Path) -> None:
    # GIVEN data that passes validation but cannot train: one class only, and a spec without
    # class-balance or fairness checks that would have caught it first
    spec = yaml.safe_load((ROOT / "examples" / "specs" / "churn.yaml").read_text())
    target = {k: v for k, v in spec["target"].items() if k != "min_class_fraction"}
    put_spec(local_env, tmp_path, "oneclass", search=True, target=target, fairness={"protected_attributes": []})
    frame = generate("churn", 400, 9)
    frame["churned"] = 0
    path = tmp_path / "x.csv"
    frame.to_csv(path, index=False)
    # WHEN it is uploaded
    result = mlops(local_env, "data", "upload", str(path), "--model", "oneclass", "--wait")
    run = json.loads(result.stdout)["run"]
    # THEN the run is FAILED, the failing step is named, and the audit trail says why
    assert run["status"] == "FAILED", run
    assert run["error"] == "PipelineFailed"
    events = json.loads(mlops(local_env, "audit", "list", "--model", "oneclass").stdout)
    failures = [e for e in events.get("events", events) if e["action"] == "pipeline.failed"]
    assert failures
    # one class: every candidate trains, but none has a ROC AUC to rank by, so Evaluate stops the run
    assert failures[0]["after"]["step"] == "Evaluate"
    assert "no candidate has a value for roc_auc" in failures[0]["after"]["cause"]
    # AND no version was registered (nothing half-written)
    assert mlops(local_env, "models", "show", "oneclass", "--version", "1").returncode != 0


pytestmark = pytest.mark.xdist_group("local-cloud")


STEPS = ("Validate", "PlanTraining", "TrainCandidate", "Evaluate", "CheckOnnx", "Gate", "Register")


def test_a_transient_failure_of_each_task_is_retried(
    local_env: dict[str, str], tmp_path: Path, local_cloud: LocalCloudProcess
) -> None:
    # GIVEN every task's function fails once with a Lambda service error, in one run
    put_spec(local_env, tmp_path, "flaky")
    before = len(local_cloud.status()["invocations"])
    for step in STEPS:
        local_cloud.inject_fault(f"Training{step}", count=1, error_type="Lambda.ServiceException")
    try:
        # WHEN a dataset is uploaded
        uploaded = upload(local_env, tmp_path, "flaky", rows=500)
    finally:
        for step in STEPS:
            local_cloud.inject_fault(f"Training{step}", count=0)
    run = uploaded["run"]
    # THEN each Retry absorbed its failure: the run registered its candidate
    assert run["status"] == "SUCCEEDED", run
    assert run["output"]["outcome"] == "registered"
    # AND each task met its fault once and ran again (a failure path would have been audited)
    injected = [i["function"] for i in local_cloud.status()["invocations"][before:] if i.get("injected")]
    for step in STEPS:
        assert sum(f"Training{step}" in name for name in injected) == 1, (step, injected)
    events = json.loads(mlops(local_env, "audit", "list", "--model", "flaky").stdout)
    assert not [e for e in events.get("events", events) if e["action"] == "pipeline.failed"]


def test_a_permanent_failure_of_a_task_fails_the_run(
    local_env: dict[str, str], tmp_path: Path, local_cloud: LocalCloudProcess
) -> None:
    # GIVEN Register fails on every attempt
    put_spec(local_env, tmp_path, "broken")
    before = len(local_cloud.status()["invocations"])
    local_cloud.inject_fault("TrainingRegister", count=10, error_type="Lambda.ServiceException")
    try:
        path = tmp_path / "b.csv"
        generate("churn", 500, 4).to_csv(path, index=False)
        result = mlops(local_env, "data", "upload", str(path), "--model", "broken", "--wait")
    finally:
        local_cloud.inject_fault("TrainingRegister", count=0)
    run = json.loads(result.stdout)["run"]
    # THEN the run is FAILED after the retries, the failure is audited, and no version exists
    assert run["status"] == "FAILED"
    attempts = [i for i in local_cloud.status()["invocations"][before:] if "TrainingRegister" in i["function"]]
    assert len(attempts) == 4  # the first try and the Retry's three more, all failed
    assert all(i.get("injected") for i in attempts)
    events = json.loads(mlops(local_env, "audit", "list", "--model", "broken").stdout)
    failure = next(e for e in events.get("events", events) if e["action"] == "pipeline.failed")
    assert failure["after"]["step"] == "Register"
    assert mlops(local_env, "models", "show", "broken", "--version", "1").returncode != 0
