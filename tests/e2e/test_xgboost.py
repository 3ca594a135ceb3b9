"""An XGBoost model through the whole lifecycle on the local cloud, on real public data.

ISLP Default (every third row, the target as 0/1: XGBoost's classifier takes classes 0..n-1) with
``training.estimator: xgboost.XGBClassifier`` and ``training.backend: sagemaker``. XGBoost is in no
Lambda function: the pipeline's ``createTrainingJob.sync`` task runs the training image's entry point
(the local cloud runs it in a subprocess fenced to the image's packages, the job laid out as
SageMaker lays it out), which trains, exports to ONNX and records XGBoost's answers on the holdout;
Evaluate scores the export, CheckOnnx checks it, it is registered, approved, deployed, and the
held-back rows are predicted over signed HTTP (onnxruntime). The answers are checked against
XGBoost's own ``predict_proba`` of the registered pickle. A job XGBoost refuses ends its run FAILED
with the job's reason.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from mlops.registry.versions import Registry
from mlops.spec.model import parse_spec
from mlops.storage import read_uri
from mlops.training.artifacts import load_artifact
from mlops.training.frames import load_training_frame, model_input
from mlops.training.onnx_check import PROBABILITY_TOLERANCE
from mlops_local.testing import LocalCloudProcess, signed_as
from tests.conformance.datasets import DEFAULT

MLOPS = str(Path(sys.executable).parent / "mlops")
MODEL = "default-xgb"
PARAMS = {"n_estimators": 40, "max_depth": 3}


def mlops(env: dict[str, str], *args: str, ok: bool = True) -> Any:
    result = subprocess.run(
        [MLOPS, "--json", *args], env={**os.environ, **env}, capture_output=True, text=True, check=False, timeout=600
    )
    if ok:
        assert result.returncode == 0, (args, result.stdout[-2000:], result.stderr[-2000:])
    return json.loads(result.stdout) if result.stdout.strip() else None


def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every third row of ISLP Default, target 0/1: 80 rows held back for prediction, the rest trained on."""
    frame = DEFAULT.frame().iloc[::3].reset_index(drop=True)
    frame["default"] = (frame["default"] == "Yes").astype(int)
    held = frame.index % 40 == 0
    return frame.loc[~held].reset_index(drop=True), frame.loc[held].reset_index(drop=True)


def xgboost_spec(name: str, params: dict[str, Any]) -> dict[str, Any]:
    document = json.loads(DEFAULT.spec.model_dump_json(exclude_none=True))
    document["name"] = name
    document["target"].update(classes=[0, 1], positive_class=1)
    document["training"].update(estimator="xgboost.XGBClassifier", params=params, backend="sagemaker")
    return dict(document)


def test_xgboost_trains_on_the_sagemaker_backend_registers_and_serves_what_xgboost_predicts(
    local_cloud: LocalCloudProcess, tmp_path: Path
) -> None:
    env = local_cloud.environ()
    train_frame, held_back = frames()
    # GIVEN the XGBoost spec stored, and the rows uploaded
    spec_path = tmp_path / f"{MODEL}.yaml"
    spec_path.write_text(yaml.safe_dump(xgboost_spec(MODEL, PARAMS)))
    mlops(env, "spec", "put", str(spec_path), "--actor", "alice")
    data = tmp_path / "default.csv"
    train_frame.to_csv(data, index=False)
    uploaded = mlops(signed_as(env, "scientist"), "data", "upload", str(data), "--model", MODEL, "--wait")
    # THEN the pipeline trained it in a training job and registered it with the job's ONNX export
    run = uploaded["run"]
    failed = [(s["name"], s.get("error"), str(s.get("cause"))[:1500]) for s in run["steps"] if s.get("error")]
    assert run["status"] == "SUCCEEDED" and run["output"]["outcome"] == "registered", (run.get("error"), failed)
    assert "TrainOnSageMaker" in {s["name"] for s in run["steps"]}
    version = int(run["output"]["version"])
    ssm = local_cloud.client("ssm")
    registry = Registry.for_dynamodb(
        local_cloud.client("dynamodb"),
        registry_table=ssm.get_parameter(Name="/mlops/dev/registry-table")["Parameter"]["Value"],
        audit_table=ssm.get_parameter(Name="/mlops/dev/audit-table")["Parameter"]["Value"],
    )
    registered = registry.get_version(MODEL, version)
    assert registered.params["estimator"] == "xgboost.XGBClassifier"
    assert (registered.tags or {}).get("onnx_uri", "").endswith("/candidate-0/model.onnx"), registered.tags

    # WHEN someone other than the uploader approves it and the held-back rows are predicted over HTTP
    def approved() -> bool:
        result = subprocess.run(
            [MLOPS, "--json", "approve", MODEL, str(version), "--comment", "xgboost e2e"],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
        return result.returncode == 0

    wait_for(approved, 120, f"{MODEL} v{version} to wait for approval")
    wait_for(lambda: registry.get_model(MODEL).champion == version, 120, f"{MODEL} v{version} as champion")
    records = json.loads(held_back.drop(columns=["default"]).to_json(orient="records"))
    status, answer = local_cloud.api("POST", f"models/{MODEL}/predict", {"records": records})
    # THEN the served probabilities are XGBoost's own predict_proba of the registered model, within the
    # export's tolerance (1e-4; served probabilities are rounded to 6 decimals)
    assert status == 200, answer
    assert answer["version"] == version
    spec = parse_spec(xgboost_spec(MODEL, PARAMS))
    assert registered.artifact_uri and registered.artifact_sha256
    pipeline = load_artifact(read_uri(local_cloud.client("s3"), registered.artifact_uri), registered.artifact_sha256)
    typed = load_training_frame(io.BytesIO(held_back.to_csv(index=False).encode()), spec)
    expected = pipeline.predict_proba(model_input(typed, spec))
    np.testing.assert_allclose(np.asarray(answer["probabilities"]), expected, atol=PROBABILITY_TOLERANCE + 1e-6)

    # AND WHEN XGBoost refuses a job's parameters THEN the run fails with the job's reason
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(xgboost_spec(f"{MODEL}-bad", {"max_depth": -1})))
    mlops(env, "spec", "put", str(bad), "--actor", "alice")
    refused = mlops(
        signed_as(env, "scientist"), "data", "upload", str(data), "--model", f"{MODEL}-bad", "--wait", ok=False
    )
    run = refused["run"]
    assert run["status"] == "FAILED", run
    text = json.dumps(run)
    assert "max_depth" in text and "TrainOnSageMaker" in text, text[-3000:]
