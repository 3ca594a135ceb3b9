"""XGBoost through the training pipeline's steps on moto, with a real public dataset (ISLP Default).

XGBoost is in no Lambda function (it does not fit beside the science layer), so its candidate trains
in a SageMaker training job, which exports it to ONNX with the library's own answers on the holdout;
Evaluate scores that export with ``onnx.reference``, CheckOnnx compares it with the job's answers,
Register records it as the version's ONNX model. Here the job's entry point runs in this process on
the directories SageMaker would lay out (the channel's files from S3, the hyperparameters), and its
``model.tar.gz`` goes to the job's output path; every step's output is the next one's input.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlops.errors import CheckFailedError
from mlops.registry.specs import SpecStore
from mlops.spec.model import ModelSpec
from mlops.storage import read_uri
from mlops.training.artifacts import load_artifact
from mlops.training.frames import load_training_frame, model_input
from mlops.training.onnx_check import PROBABILITY_TOLERANCE
from mlops.training.onnx_model import OnnxPredictor, records_from_frame
from mlops.training.sagemaker import run_training_job
from mlops.training.steps.candidates import collect_candidate, plan_training, train_candidate
from mlops.training.steps.evaluate import evaluate_candidates
from mlops.training.steps.onnx_check import check_onnx_export
from mlops.training.steps.outcome import gate_candidate, register_candidate
from mlops.training.steps.services import Services
from mlops.training.steps.validate import validate_upload
from tests.conformance.datasets import DEFAULT
from tests.integration.pipeline.conftest import put_upload
from tests.integration.registry.conftest import DATA_BUCKET
from tests.unit.training.helpers import spec_with

MODEL = DEFAULT.spec.name
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/mlops-train:1"


def _frame() -> pd.DataFrame:
    """ISLP Default with its target as 0/1 (XGBoost's classifier takes classes 0..n-1), every 3rd row."""
    frame = DEFAULT.frame().iloc[::3].reset_index(drop=True)
    frame["default"] = (frame["default"] == "Yes").astype(int)
    return frame


FRAME = _frame()


def _spec(estimator: str, params: dict[str, Any]) -> ModelSpec:
    backend = "sagemaker" if estimator.startswith("xgboost.") else "lambda"
    return spec_with(
        DEFAULT.spec,
        target={"name": "default", "classes": [0, 1], "positive_class": 1},
        training={"estimator": estimator, "params": params, "backend": backend, "search": None},
        gates={"primary_metric": "roc_auc", "metrics": {"roc_auc": {"min": 0.8}}, "must_beat_champion": False},
        approval={"four_eyes": False},
    )


XGB = _spec("xgboost.XGBClassifier", {"n_estimators": 40, "max_depth": 3})


def run_job_as_sagemaker(services: Services, job: dict[str, Any], work: Path) -> dict[str, Any]:
    """The training job: the channel's objects under input/data/train, the hyperparameters in
    input/config, the entry point, model/ packed as model.tar.gz under the output path; answers
    what DescribeTrainingJob would (the part the state machine passes on)."""
    channel, model_dir, config_dir = work / "input" / "data" / "train", work / "model", work / "input" / "config"
    bucket, prefix = job["input_uri"].removeprefix("s3://").split("/", 1)
    for item in services.s3.list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]:
        path = channel / item["Key"][len(prefix) :]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(read_uri(services.s3, f"s3://{bucket}/{item['Key']}"))
    config_dir.mkdir(parents=True)
    (config_dir / "hyperparameters.json").write_text(json.dumps(job["hyperparameters"]))
    run_training_job(input_dir=channel, model_dir=model_dir, config_dir=config_dir)
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        for path in sorted(model_dir.iterdir()):
            tar.add(path, arcname=path.name)
    out_bucket, out_prefix = job["output_uri"].removeprefix("s3://").split("/", 1)
    key = f"{out_prefix}{job['name']}/output/model.tar.gz"
    services.s3.put_object(Bucket=out_bucket, Key=key, Body=archive.getvalue())
    return {"TrainingJobName": job["name"], "ModelArtifacts": {"S3ModelArtifacts": f"s3://{out_bucket}/{key}"}}


def run_pipeline(services: Services, spec: ModelSpec, name: str, work: Path) -> dict[str, Any]:
    """Store the spec, upload the data, and run every step of the training machine on it."""
    SpecStore(services.registry).put(spec, actor="alice")
    upload = put_upload(services, f"datasets/{MODEL}/{name}.csv", FRAME.to_csv(index=False).encode())
    common = {"upload": upload, "execution": f"arn:sfn:{name}", "execution_name": name}
    validation = validate_upload(upload, services=services)
    assert validation["valid"], validation["summary"]
    revision = validation["spec_revision"]
    plan = plan_training({**common, "spec_revision": revision}, services=services)
    if plan["backend"] == "sagemaker":
        staged = plan["input"]  # StageSageMakerInput: the exact dataset version to the run's input prefix
        source, _, version_id = staged["copy_source"].partition("?versionId=")
        source_bucket, source_key = source.split("/", 1)
        services.s3.copy_object(
            Bucket=staged["bucket"],
            Key=staged["key"],
            CopySource={"Bucket": source_bucket, "Key": source_key, "VersionId": version_id},
        )
        candidates = [
            collect_candidate(
                {**common, "candidate": c, "job": run_job_as_sagemaker(services, c["job"], work / name / str(i))},
                services=services,
            )
            for i, c in enumerate(plan["candidates"])
        ]
    else:
        candidates = [
            train_candidate({**common, "spec_revision": revision, "candidate": c}, services=services)
            for c in plan["candidates"]
        ]
    evaluation = evaluate_candidates({**common, "spec_revision": revision, "candidates": candidates}, services=services)
    onnx = check_onnx_export({"onnx": evaluation["onnx"], "model": MODEL, "execution_name": name}, services=services)
    gate = gate_candidate({"evaluation": evaluation, "spec_revision": revision, "model": MODEL}, services=services)
    status = "PENDING_APPROVAL" if gate["passed"] else "REJECTED"
    registered = register_candidate(
        {**common, "evaluation": evaluation, "onnx": onnx, "gate": gate, "validation": validation, "status": status},
        services=services,
    )
    return {
        "upload": upload,
        "plan": plan,
        "candidates": candidates,
        "evaluation": evaluation,
        "onnx": onnx,
        "registered": registered,
    }


@pytest.fixture
def sagemaker_image(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAGEMAKER_TRAINING_IMAGE", IMAGE)


def test_an_xgboost_candidate_is_scored_checked_and_registered_from_its_jobs_onnx_export(
    services: Services, tmp_path: Path, sagemaker_image: None
) -> None:
    # GIVEN an XGBoost classifier spec on the SageMaker backend, and ISLP Default uploaded
    # WHEN the pipeline's steps run (the job in this process, as SageMaker runs it)
    run = run_pipeline(services, XGB, "xgb-1", tmp_path)
    # THEN the job exported the candidate to ONNX beside its pickle, each with its sha256
    candidate = run["candidates"][0]
    assert run["plan"]["backend"] == "sagemaker" and candidate["training"]["backend"] == "sagemaker"
    export = candidate["onnx"]
    assert export["uri"].endswith("/candidate-0/model.onnx") and export["check_uri"].endswith("/onnx-check.json")
    # AND Evaluate scored that export (onnx.reference) as the job scored XGBoost itself on the same holdout
    evaluation = run["evaluation"]
    assert evaluation["metrics"]["roc_auc"] > 0.9
    for metric in ("roc_auc", "accuracy", "log_loss"):
        assert evaluation["metrics"][metric] == pytest.approx(candidate["metrics"][metric], abs=1e-4)
    assert evaluation["onnx"] == {**export, "serves_only_onnx": True}
    # AND CheckOnnx compared the export (onnxruntime) with the answers XGBoost gave in the job
    assert run["onnx"]["uri"] == export["uri"]
    assert run["onnx"]["max_deltas"]["max_probability_delta"] <= PROBABILITY_TOLERANCE
    assert run["onnx"]["max_deltas"]["rows"] == candidate["training"]["holdout_rows"]
    # AND the version is registered with it as its ONNX model (the serving path), estimator recorded
    version = services.registry.get_version(MODEL, run["registered"]["version"])
    assert run["registered"]["status"] == "PENDING_APPROVAL"
    assert version.params["estimator"] == "xgboost.XGBClassifier"
    assert version.tags["onnx_uri"] == export["uri"] and version.tags["serving_path"] == "onnx"
    # AND what serving answers from that ONNX model equals XGBoost's own predict_proba on held-out rows
    pipeline = load_artifact(read_uri(services.s3, version.artifact_uri), version.artifact_sha256)
    rows = load_training_frame(io.BytesIO(DEFAULT.held_back_frame().to_csv(index=False).encode()), XGB)
    served = OnnxPredictor(read_uri(services.s3, version.tags["onnx_uri"]), XGB).predict(records_from_frame(rows, XGB))
    np.testing.assert_allclose(
        np.asarray(served.probabilities), pipeline.predict_proba(model_input(rows, XGB)), atol=PROBABILITY_TOLERANCE
    )


def test_an_xgboost_champion_is_compared_either_way_round(
    services: Services, tmp_path: Path, sagemaker_image: None
) -> None:
    # GIVEN a scikit-learn champion
    first = run_pipeline(services, _spec("sklearn.linear_model.LogisticRegression", {"max_iter": 1000}), "lr", tmp_path)
    services.registry.approve(MODEL, first["registered"]["version"], actor="carol")
    services.registry.set_alias(MODEL, "champion", first["registered"]["version"], actor="carol")
    # WHEN an XGBoost candidate meets it
    second = run_pipeline(services, XGB, "xgb-2", tmp_path)
    # THEN both are scored on the same rows (the candidate from its ONNX export)
    champion = second["evaluation"]["champion"]
    assert "error" not in champion, champion.get("error")
    assert champion["version"] == first["registered"]["version"]
    assert champion["metrics"]["roc_auc"] > 0.9 and champion["candidate_metrics"]["roc_auc"] > 0.9
    # AND WHEN the XGBoost version is the champion and a scikit-learn candidate meets it
    services.registry.approve(MODEL, second["registered"]["version"], actor="carol")
    services.registry.set_alias(MODEL, "champion", second["registered"]["version"], actor="carol")
    third = run_pipeline(services, _spec("sklearn.ensemble.HistGradientBoostingClassifier", {}), "hgb", tmp_path)
    # THEN the XGBoost champion is scored from its registered ONNX model, as its own job scored it
    champion = third["evaluation"]["champion"]
    assert "error" not in champion, champion.get("error")
    assert champion["version"] == second["registered"]["version"]
    if champion["rows_scored"] == second["evaluation"]["split"]["holdout_rows"]:
        assert champion["metrics"]["roc_auc"] == pytest.approx(second["evaluation"]["metrics"]["roc_auc"], abs=1e-4)
    assert champion["metrics"]["roc_auc"] > 0.9


def test_a_job_without_an_onnx_export_or_with_a_wrong_one_registers_nothing(
    services: Services, tmp_path: Path, sagemaker_image: None
) -> None:
    # GIVEN a finished XGBoost run's candidate and export
    run = run_pipeline(services, XGB, "xgb-3", tmp_path)
    candidate, export = run["candidates"][0], run["evaluation"]["onnx"]
    common = {"upload": run["upload"], "execution_name": "xgb-3b"}
    # WHEN a candidate's job made no ONNX export THEN Evaluate fails, saying why
    no_export = {**candidate, "onnx": {"error": "cannot export xgboost.XGBClassifier to ONNX: boom"}}
    with pytest.raises(CheckFailedError, match=r"scored from the ONNX export its training job made.*boom"):
        evaluate_candidates({**common, "spec_revision": 1, "candidates": [no_export]}, services=services)
    # WHEN the job's recorded answers disagree with the export THEN CheckOnnx fails the run
    document = json.loads(read_uri(services.s3, export["check_uri"]))
    document["expected"]["probabilities"] = [[p[1], p[0]] for p in document["expected"]["probabilities"]]
    body = json.dumps(document).encode()
    key = export["check_uri"].removeprefix(f"s3://{DATA_BUCKET}/")
    services.s3.put_object(Bucket=DATA_BUCKET, Key=key, Body=body)
    wrong = {**export, "check_sha256": hashlib.sha256(body).hexdigest()}
    with pytest.raises(CheckFailedError, match="serves only through ONNX"):
        check_onnx_export({"onnx": wrong, "model": MODEL, "execution_name": "xgb-3b"}, services=services)
    # AND a scikit-learn model's failed check is not fatal (it is served from its pickle)
    assert "error" in check_onnx_export(
        {"onnx": {**wrong, "serves_only_onnx": None}, "model": MODEL, "execution_name": "xgb-3b"}, services=services
    )
