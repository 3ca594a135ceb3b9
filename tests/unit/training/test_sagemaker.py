"""The SageMaker backend's job side, run here as SageMaker would run it (directories, hyperparameters)."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest
import yaml

from mlops.data.trigger import DatasetUpload
from mlops.errors import CheckFailedError, ConfigError
from mlops.registry.specs import SpecStore
from mlops.registry.versions import Registry
from mlops.settings import Platform
from mlops.spec.model import parse_spec
from mlops.training.artifacts import load_artifact
from mlops.training.onnx_check import PROBABILITY_TOLERANCE, compare_onnx
from mlops.training.sagemaker import collect_training_job, job_hyperparameters, run_training_job
from mlops.training.steps.candidates import plan_training
from mlops.training.steps.services import Services
from tests.unit.training.helpers import example_frame

ROOT = Path(__file__).resolve().parents[3]


def _run(dirs: tuple[Path, Path, Path]) -> dict:
    input_dir, model_dir, config_dir = dirs
    return run_training_job(input_dir=input_dir, model_dir=model_dir, config_dir=config_dir)


def _job_dirs(tmp_path: Path, document: dict) -> tuple[Path, Path, Path]:
    input_dir, model_dir, config_dir = (tmp_path / d for d in ("input", "model", "config"))
    input_dir.mkdir()
    config_dir.mkdir()
    example_frame("churn").to_csv(input_dir / "train.csv", index=False)
    hyper = job_hyperparameters(document, {"index": 0, "params": {"max_depth": 3}}, "rev-1")
    (config_dir / "hyperparameters.json").write_text(json.dumps(hyper))
    return input_dir, model_dir, config_dir


def _tar(model_dir: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path in sorted(model_dir.iterdir()):
            archive.add(path, arcname=path.name)
    return buffer.getvalue()


def test_training_job_writes_the_artifact_and_its_record(tmp_path: Path) -> None:
    # GIVEN the job's directories as SageMaker lays them out
    document = yaml.safe_load((ROOT / "examples" / "specs" / "churn.yaml").read_text())
    input_dir, model_dir, config_dir = _job_dirs(tmp_path, document)
    # WHEN the entry point runs
    record = run_training_job(input_dir=input_dir, model_dir=model_dir, config_dir=config_dir)
    # THEN model.pkl, its ONNX export, the check's input and result.json are in the model directory,
    # and the pipeline can collect them
    assert record["training"]["backend"] == "sagemaker"
    assert record["params"] == {"max_depth": 3}
    assert record["metrics"]["roc_auc"] > 0.7
    assert sorted(p.name for p in model_dir.iterdir()) == ["model.onnx", "model.pkl", "onnx-check.json", "result.json"]
    job = collect_training_job(_tar(model_dir))
    assert job.record["artifact_sha256"] == record["artifact_sha256"]
    pipeline = load_artifact(job.artifact, record["artifact_sha256"])
    assert hasattr(pipeline, "predict_proba")
    # AND the export answers what the pipeline answered in the job, on the holdout rows it recorded
    assert job.onnx is not None and job.onnx_check is not None
    report = compare_onnx(job.onnx, json.loads(job.onnx_check))
    assert report["rows"] == record["training"]["holdout_rows"]
    assert report["max_probability_delta"] <= PROBABILITY_TOLERANCE


def test_two_jobs_on_the_same_inputs_give_the_same_artifact(tmp_path: Path) -> None:
    document = yaml.safe_load((ROOT / "examples" / "specs" / "churn.yaml").read_text())
    records = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        records.append(_run(_job_dirs(tmp_path / name, document)))
    assert records[0]["artifact_sha256"] == records[1]["artifact_sha256"]


def test_collect_refuses_a_tampered_or_incomplete_archive(tmp_path: Path) -> None:
    document = yaml.safe_load((ROOT / "examples" / "specs" / "churn.yaml").read_text())
    _, model_dir, _ = dirs = _job_dirs(tmp_path, document)
    _run(dirs)
    onnx = (model_dir / "model.onnx").read_bytes()
    (model_dir / "model.onnx").write_bytes(onnx[:-1])
    with pytest.raises(CheckFailedError, match=r"model\.onnx does not match the sha256"):
        collect_training_job(_tar(model_dir))
    (model_dir / "model.onnx").unlink()
    with pytest.raises(CheckFailedError, match=r"lacks model\.onnx, which the training job recorded"):
        collect_training_job(_tar(model_dir))
    (model_dir / "model.pkl").write_bytes(b"not the model")
    with pytest.raises(CheckFailedError, match="does not match the sha256"):
        collect_training_job(_tar(model_dir))
    (model_dir / "result.json").unlink()
    with pytest.raises(CheckFailedError, match="lacks"):
        collect_training_job(_tar(model_dir))
    with pytest.raises(CheckFailedError, match="not a readable"):
        collect_training_job(b"garbage")


def _services_with_spec(backend: str) -> tuple[Services, dict]:
    registry = Registry.in_memory()
    document = yaml.safe_load((ROOT / "examples" / "specs" / "churn.yaml").read_text())
    document["training"]["backend"] = backend
    SpecStore(registry).put(parse_spec(document), actor="alice")
    platform = Platform(environment="test", data_bucket="data", registry_table="registry", audit_table="audit")
    upload = DatasetUpload(bucket="data", key="datasets/churn/big.csv", version_id="v1", model="churn")
    event = {"upload": upload.to_dict(), "spec_revision": 1, "execution_name": "churn-abc"}
    return Services(platform=platform, s3=None, registry=registry), event


def test_plan_for_sagemaker_names_jobs_and_copies_the_exact_version(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAGEMAKER_TRAINING_IMAGE", "123456789012.dkr.ecr.us-east-1.amazonaws.com/mlops-train:1")
    services, event = _services_with_spec("sagemaker")
    plan = plan_training(event, services=services)
    assert plan["backend"] == "sagemaker"
    assert len(plan["candidates"]) == 4  # the churn spec's 2x2 grid
    names = [c["job"]["name"] for c in plan["candidates"]]
    assert len(set(names)) == 4 and all(len(n) <= 63 and n.startswith("mlops-") for n in names)
    assert plan["input"]["copy_source"] == "data/datasets/churn/big.csv?versionId=v1"
    assert plan["input"]["key"] == "artifacts/churn/runs/churn-abc/input/big.csv"
    hyper = plan["candidates"][1]["job"]["hyperparameters"]
    assert all(isinstance(v, str) for v in hyper.values())
    assert json.loads(hyper["spec"])["name"] == "churn"


def test_plan_for_sagemaker_without_an_image_fails_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SAGEMAKER_TRAINING_IMAGE", raising=False)
    services, event = _services_with_spec("sagemaker")
    with pytest.raises(ConfigError, match="sagemaker_training_image"):
        plan_training(event, services=services)


def test_plan_for_lambda_has_no_job(monkeypatch: pytest.MonkeyPatch) -> None:
    services, event = _services_with_spec("lambda")
    plan = plan_training(event, services=services)
    assert plan["input"] is None
    assert all("job" not in c for c in plan["candidates"])


def test_a_training_job_chooses_the_threshold_as_the_training_function_does(tmp_path: Path) -> None:
    # GIVEN the churn spec asking for a threshold chosen for max F1, run as a SageMaker job
    document = yaml.safe_load((ROOT / "examples" / "specs" / "churn.yaml").read_text())
    document["training"]["threshold"] = {"objective": "max_f1", "folds": 3}
    record = _run(_job_dirs(tmp_path, document))
    # THEN the job's record carries the chosen threshold (chosen on 3 folds of its training rows),
    # which Evaluate and Register read as they read a Lambda-trained candidate's
    threshold = record["training"]["threshold"]
    assert threshold["method"] == "max_f1" and threshold["met"] and 0 < threshold["value"] < 1
    assert threshold["chosen_on"]["folds"] == 3
    assert threshold["chosen_on"]["rows"] == record["training"]["train_rows"]
    assert collect_training_job(_tar(tmp_path / "model")).record["training"]["threshold"] == threshold
