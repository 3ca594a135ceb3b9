"""Bring your own code, on the local cloud: the real code upload API, S3, training pipeline and CLI.

A training package with a derived feature and a ColumnTransformer (examples/code/creditfeatures)
trains on ISLP's Default data through Register; the registered version records the code version,
its sha256 and entry point, and `models show` and the model card say so. Its custom transformer has
no ONNX converter, so Register puts it on the python serving path; approved by the approver, it is
served through the fallback function, answers equal to the registered pickle's. Uploading code is its own
permission (the approver may not), a package whose stored bytes no longer match the sha256
the registry recorded never runs, and a version whose package never arrived stays pending: listed
so, refused at PlanTraining when pinned.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from mlops.spec.model import parse_spec
from mlops.storage import read_uri
from mlops.training.artifacts import load_artifact
from mlops.training.code import activate_code
from mlops.training.frames import coerce_frame, model_input
from mlops_local.testing import LocalCloudProcess
from tests.conformance.datasets import DEFAULT
from tests.e2e.test_deployment_pipeline import MLOPS, mlops, ok

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = "123456789012"
SCIENTIST = f"arn:aws:iam::{ACCOUNT}:user/scientist"
MODEL = "credit-code"


@pytest.fixture(scope="module")
def envs(local_cloud: LocalCloudProcess) -> dict[str, dict[str, str]]:
    return {name: local_cloud.environ(name) for name in ("testing", "scientist", "approver")}


def _put_spec(env: dict[str, str], tmp: Path, **training: Any) -> None:
    document = yaml.safe_load((ROOT / "examples" / "code" / "credit-code.yaml").read_text())
    document["training"].update(training)
    path = tmp / f"{MODEL}.yaml"
    path.write_text(yaml.safe_dump(document))
    ok(env, "spec", "put", str(path), "--actor", "alice")


def _text(env: dict[str, str], *args: str) -> str:
    """What a person reads: the command's output without --json."""
    result = subprocess.run(
        [MLOPS, *args], env={**os.environ, **env}, capture_output=True, text=True, check=False, timeout=300
    )
    assert result.returncode == 0, (args, result.stdout, result.stderr)
    return result.stdout


def _wait(predicate: Callable[[], Any], timeout: float, what: str) -> None:
    deadline = time.time() + timeout
    while not predicate():
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(1)


def _approve(env: dict[str, str], version: int) -> None:
    """``mlops approve`` once the deployment pipeline the training run started waits for approval."""
    deadline = time.time() + 300
    while True:
        result = mlops(env, "approve", MODEL, str(version), "--comment", "reviewed")
        if result.returncode == 0:
            assert json.loads(result.stdout)["decision"] == "approved", result.stdout
            return
        waiting = "not waiting" in result.stderr or "no approval" in result.stderr
        assert waiting and time.time() < deadline, (result.stdout, result.stderr)
        time.sleep(1)  # the deployment pipeline has not reached its approval step yet


def _registered_pipeline(cloud: LocalCloudProcess, shown: dict[str, Any], code: dict[str, Any]) -> tuple[Any, Any]:
    """The registered pickle, loaded as Evaluate loads it (its code package checked and activated)."""
    s3 = cloud.client("s3")
    saved_path, saved_modules = list(sys.path), set(sys.modules)
    try:
        activate_code(lambda uri: read_uri(s3, uri), code["uri"], code["sha256"])
        pipeline = load_artifact(
            read_uri(s3, shown["artifact_uri"]), shown["artifact_sha256"], code_modules=[code["package"]]
        )
    finally:
        sys.path[:] = saved_path
        for name in set(sys.modules) - saved_modules:
            if name.startswith(code["package"]):
                del sys.modules[name]
    document = yaml.safe_load((ROOT / "examples" / "code" / "credit-code.yaml").read_text())
    return pipeline, parse_spec(document)


def _failure(run: dict[str, Any]) -> str:
    return " ".join(f"{s.get('error')} {s.get('cause')}" for s in run["steps"] if s.get("error") or s.get("cause"))


def test_code_trains_through_register_with_its_lineage_and_only_its_uploader_and_bytes_count(
    local_cloud: LocalCloudProcess, envs: dict[str, dict[str, str]], tmp_path_factory: pytest.TempPathFactory
) -> None:
    tmp = tmp_path_factory.mktemp("byoc")
    _put_spec(envs["testing"], tmp)
    package = ROOT / "examples" / "code" / "creditfeatures"

    # WHEN the approver (not a code uploader) uploads code THEN refused (exit 1), nothing recorded
    refused = mlops(envs["approver"], "code", "upload", str(package), "--model", MODEL)
    assert refused.returncode == 1 and "may not upload training code" in refused.stderr, refused
    assert ok(envs["testing"], "code", "list", "--model", MODEL) == []
    # AND a folder that is not a package is refused before anything is sent (exit 2)
    notes = tmp / "notes"
    notes.mkdir()
    (notes / "model.py").write_text("")
    not_package = mlops(envs["scientist"], "code", "upload", str(notes), "--model", MODEL)
    assert not_package.returncode == 2 and "not a Python package (no __init__.py in it)" in not_package.stderr

    # WHEN the scientist uploads the package THEN it is code version 1, by the identity AWS verified
    code = ok(envs["scientist"], "code", "upload", str(package), "--model", MODEL)
    assert code["version"] == 1 and code["uploader"] == SCIENTIST and code["package"] == "creditfeatures"
    assert code["state"] == "stored" and code["stored_at"], code  # the API read the package back
    assert [v["sha256"] for v in ok(envs["testing"], "code", "list", "--model", MODEL)] == [code["sha256"]]

    # WHEN ISLP Default is uploaded THEN the run trains the package's pipeline and registers it
    data = tmp / "default.csv"
    data.write_bytes(DEFAULT.training_bytes())
    uploaded = ok(envs["scientist"], "data", "upload", str(data), "--model", MODEL, "--wait", "--timeout", "600")
    run = uploaded["run"]
    assert run["output"]["outcome"] == "registered", _failure(run)
    version = int(run["output"]["version"])
    # AND the version records the code version, sha256 and entry point (models show, the card)
    shown = ok(envs["testing"], "models", "show", MODEL, "--version", str(version))
    assert shown["code"]["version"] == 1 and shown["code"]["sha256"] == code["sha256"]
    assert shown["code"]["entry_point"] == "creditfeatures.model:build" and shown["code"]["uploader"] == SCIENTIST
    assert shown["metrics"]["roc_auc"] > 0.9
    text = _text(envs["testing"], "models", "show", MODEL, "--version", str(version))
    assert f"version 1 of creditfeatures (sha256 {code['sha256'][:12]}...)" in text, text
    card = _text(envs["testing"], "models", "card", MODEL, str(version))
    assert f"Training code: version 1 of creditfeatures (sha256 {code['sha256']})" in card, card
    # AND the model has no ONNX converter for the derived feature: Register put it on the python path
    assert "does not record its input columns" in shown["tags"]["onnx_error"], shown["tags"]
    assert shown["tags"]["serving_path"] == "python", shown["tags"]

    # WHEN the approver (not the scientist who uploaded: four eyes) approves the waiting candidate
    _approve(envs["approver"], version)
    # THEN the deployment pipeline makes it champion, and ISLP Default's held-back rows are served
    # through the fallback function, exactly as the registered pickle (with its code) answers them
    _wait(lambda: ok(envs["testing"], "rollouts", MODEL)["champion"] == version, 300, "the version to be champion")
    rows = DEFAULT.held_back_frame()
    status, answer = local_cloud.api("POST", f"models/{MODEL}/predict", {"records": DEFAULT.records(rows)})
    assert status == 200 and answer["version"] == version, answer
    pipeline, spec = _registered_pipeline(local_cloud, shown, code)
    x = model_input(coerce_frame(rows, spec), spec)
    assert answer["predictions"] == [str(label) for label in pipeline.predict(x)]
    np.testing.assert_allclose(answer["probabilities"], pipeline.predict_proba(x), atol=1e-6)
    assert answer["classes"] == [str(c) for c in pipeline.classes_]

    # GIVEN a second code version whose stored bytes are replaced behind the registry's back
    changed = tmp / "creditfeatures"
    shutil.copytree(package, changed)
    (changed / "notes.py").write_text('"""A second version."""\n')
    uploaded_text = _text(envs["scientist"], "code", "upload", str(changed), "--model", MODEL)
    assert uploaded_text.startswith(f"code version 2 of {MODEL}: package creditfeatures"), uploaded_text
    listed = _text(envs["testing"], "code", "list", "--model", MODEL)
    second = ok(envs["testing"], "code", "list", "--model", MODEL)[-1]
    assert second["version"] == 2 and second["sha256"][:12] in listed and SCIENTIST in listed, listed
    s3 = local_cloud.client("s3")
    # (on AWS the bucket policy denies this put to every role but the code upload API's)
    s3.put_object(Bucket=second["bucket"], Key=second["key"], Body=b"PK\x03\x04 not the uploaded package")
    _put_spec(envs["testing"], tmp, code_version=2)
    # WHEN a run trains with it THEN it fails, naming the sha256 mismatch, and registers nothing
    again = mlops(envs["scientist"], "data", "upload", str(data), "--model", MODEL, "--name", "again.csv", "--wait")
    assert again.returncode == 1, again
    failed = json.loads(again.stdout)["run"]
    assert failed["status"] == "FAILED"
    assert "code package sha256 mismatch" in _failure(failed) and second["sha256"] in _failure(failed), failed

    # GIVEN a third version whose upload is authorized (the real API, as the scientist) but never put
    status, granted = local_cloud.api(
        "POST",
        f"models/{MODEL}/code",
        {"package": "creditfeatures", "sha256": "c" * 64, "size": 100},
        identity="scientist",
    )
    assert status == 201 and granted["version"] == 3 and granted["state"] == "pending", granted
    # THEN confirming it says the package is not there (409), and `code list` shows it pending
    status, refused_confirm = local_cloud.api("POST", f"models/{MODEL}/code", {"confirm": 3}, identity="scientist")
    assert status == 409 and "no package at" in json.dumps(refused_confirm), refused_confirm
    listed = _text(envs["testing"], "code", "list", "--model", MODEL)
    assert [v["state"] for v in ok(envs["testing"], "code", "list", "--model", MODEL)] == ["stored"] * 2 + ["pending"]
    assert "pending" in listed, listed
    print(f"\n$ mlops code list --model {MODEL}\n{listed}")  # docs/bring-your-own-code.md quotes it
    # WHEN a spec pins it THEN the run fails at PlanTraining, naming the version and what to do
    _put_spec(envs["testing"], tmp, code_version=3)
    pinned = mlops(envs["scientist"], "data", "upload", str(data), "--model", MODEL, "--name", "pinned.csv", "--wait")
    assert pinned.returncode == 1, pinned
    failed = json.loads(pinned.stdout)["run"]
    reason = _failure(failed)
    assert f"code version 3 of '{MODEL}' is pending: its package never arrived" in reason, failed
    assert f"mlops code upload DIR --model {MODEL}" in reason, reason
    # AND the run's recorded reason is that message, at PlanTraining, without a stack trace
    failure = failed["failure"]
    assert (failure["step"], failure["error"]) == ("PlanTraining", "CodePendingError"), failure
    assert failure["cause"].startswith("training.code_version: code version 3") and "stackTrace" not in failure["cause"]
    print(f"\npinned pending version, the run's reason: {failure['cause']}")
