"""SageMaker training jobs as the local cloud runs them: the training image's entry point in a fenced
subprocess, on the job's channels and hyperparameters laid out as SageMaker lays them out, against
moto's S3; and a state machine's ``sagemaker:createTrainingJob.sync`` task run through moto's Step
Functions, Completed and Failed. Data: ISLP Default (every third row), the target as 0/1.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from mlops.training.sagemaker import collect_training_job, job_hyperparameters
from mlops_local import training_jobs
from mlops_local.training_jobs import TrainingImage, requirement_packages, run_training_job
from mlops_local.worker import RUNTIME_PACKAGES
from tests.conformance.datasets import DEFAULT
from tests.unit.training.helpers import spec_with

ROOT = Path(__file__).resolve().parents[3]
BUCKET = "data"
LAYERS = [
    ROOT / "layers" / "deps" / "science" / "requirements.txt",
    ROOT / "layers" / "deps" / "runtime" / "requirements.txt",
]
# What the image installs (the Dockerfile: science + runtime layers, its own requirements, mlops).
IMAGE = TrainingImage(
    paths=[ROOT / "layers" / "shared" / "python"],
    packages=requirement_packages(*LAYERS, ROOT / training_jobs.IMAGE_REQUIREMENTS) | {"mlops"},
)
WITHOUT_XGBOOST = TrainingImage(paths=IMAGE.paths, packages=requirement_packages(*LAYERS) | {"mlops"})
SPEC = spec_with(
    DEFAULT.spec,
    target={"name": "default", "classes": [0, 1], "positive_class": 1},
    training={
        "estimator": "xgboost.XGBClassifier",
        "params": {"n_estimators": 30, "max_depth": 3},
        "backend": "sagemaker",
        "search": None,
    },
)


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        frame = DEFAULT.frame().iloc[::3].reset_index(drop=True)
        frame["default"] = (frame["default"] == "Yes").astype(int)
        client.put_object(Bucket=BUCKET, Key="runs/r1/input/default.csv", Body=frame.to_csv(index=False).encode())
        yield client


def _request(name: str, spec_document: dict[str, Any]) -> dict[str, Any]:
    return {
        "TrainingJobName": name,
        "AlgorithmSpecification": {
            "TrainingImage": training_jobs.LOCAL_IMAGE,
            "TrainingInputMode": "File",
            "ContainerEntrypoint": ["python", "-m", "mlops.training.sagemaker"],
        },
        "RoleArn": "arn:aws:iam::123456789012:role/training",
        "HyperParameters": job_hyperparameters(spec_document, {"index": 0, "params": {}}, "rev-1"),
        "InputDataConfig": [
            {
                "ChannelName": "train",
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": f"s3://{BUCKET}/runs/r1/input/",
                        "S3DataDistributionType": "FullyReplicated",
                    }
                },
            }
        ],
        "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/runs/r1/sagemaker/"},
        "ResourceConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 50},
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
        "EnableNetworkIsolation": True,
    }


def _spec_document() -> dict[str, Any]:
    return json.loads(SPEC.model_dump_json())


def test_a_job_runs_the_image_entry_point_and_writes_model_tar_gz(s3: Any) -> None:
    # WHEN an XGBoost job runs with the image's packages only
    described = run_training_job(s3, _request("job-ok", _spec_document()), IMAGE)
    # THEN it completed and model.tar.gz is under <output>/<job>/output/, as SageMaker writes it
    assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
    uri = described["ModelArtifacts"]["S3ModelArtifacts"]
    assert uri == f"s3://{BUCKET}/runs/r1/sagemaker/job-ok/output/model.tar.gz"
    body = s3.get_object(Bucket=BUCKET, Key=uri.split("/", 3)[3])["Body"].read()
    job = collect_training_job(body)
    # AND it holds the pickle, the ONNX export and XGBoost's answers on the holdout, sha256-checked
    assert job.record["training"]["backend"] == "sagemaker" and job.record["metrics"]["roc_auc"] > 0.9
    assert job.onnx is not None and len(json.loads(job.onnx_check or b"{}")["records"]) > 100


def test_a_failing_job_reports_failed_with_its_reason(s3: Any) -> None:
    # WHEN the image lacks xgboost (the fence refuses what it does not install)
    described = run_training_job(s3, _request("job-fenced", _spec_document()), WITHOUT_XGBOOST)
    # THEN the job failed with the reason the entry point wrote to /opt/ml/output/failure
    assert described["TrainingJobStatus"] == "Failed"
    assert "xgboost" in described["FailureReason"] and "ModelArtifacts" not in described
    # AND a spec the job cannot train on names the field
    document = _spec_document()
    document["features"][1]["name"] = "no_such_column"
    described = run_training_job(s3, _request("job-bad", document), IMAGE)
    assert described["TrainingJobStatus"] == "Failed" and "no_such_column" in described["FailureReason"]


def _machine() -> str:
    return json.dumps(
        {
            "StartAt": "Train",
            "States": {
                "Train": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::sagemaker:createTrainingJob.sync",
                    "Parameters": {
                        "TrainingJobName.$": "$.request.TrainingJobName",
                        "AlgorithmSpecification.$": "$.request.AlgorithmSpecification",
                        "RoleArn.$": "$.request.RoleArn",
                        "HyperParameters.$": "$.request.HyperParameters",
                        "InputDataConfig.$": "$.request.InputDataConfig",
                        "OutputDataConfig.$": "$.request.OutputDataConfig",
                        "ResourceConfig.$": "$.request.ResourceConfig",
                        "StoppingCondition.$": "$.request.StoppingCondition",
                    },
                    "ResultPath": "$.job",
                    "End": True,
                }
            },
        }
    )


def _run_machine(s3: Any, request: dict[str, Any]) -> dict[str, Any]:
    sfn = boto3.client("stepfunctions", region_name="us-east-1")
    arn = sfn.create_state_machine(
        name=f"m-{request['TrainingJobName']}", definition=_machine(), roleArn="arn:aws:iam::123456789012:role/sfn"
    )["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=arn, input=json.dumps({"request": request}))["executionArn"]
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        described = sfn.describe_execution(executionArn=execution)
        if described["status"] != "RUNNING":
            return described
        time.sleep(0.5)
    raise AssertionError("the execution did not end in 300 s")


def test_a_state_machine_waits_for_the_job_and_gets_its_description(s3: Any) -> None:
    # GIVEN the local cloud's SageMaker task, configured with the image and the cloud's S3
    training_jobs.configure(IMAGE, s3)
    training_jobs.install()
    try:
        # WHEN a createTrainingJob.sync task runs a job that completes
        done = _run_machine(s3, _request("sfn-ok", _spec_document()))
        # THEN the task's result is DescribeTrainingJob's answer
        assert done["status"] == "SUCCEEDED", done
        job = json.loads(done["output"])["job"]
        assert job["TrainingJobStatus"] == "Completed"
        assert job["ModelArtifacts"]["S3ModelArtifacts"].endswith("/sfn-ok/output/model.tar.gz")
        # WHEN the job fails THEN the task fails with States.TaskFailed and the job's reason in the cause
        document = _spec_document()
        document["features"][1]["name"] = "no_such_column"
        failed = _run_machine(s3, _request("sfn-bad", document))
        assert failed["status"] == "FAILED" and failed["error"] == "States.TaskFailed"
        cause = json.loads(failed["cause"])
        assert cause["TrainingJobStatus"] == "Failed" and "no_such_column" in cause["FailureReason"]
    finally:
        training_jobs.configure(None)


def test_image_packages_come_from_the_image_requirements() -> None:
    assert {"xgboost", "numpy", "scipy"} <= requirement_packages(ROOT / training_jobs.IMAGE_REQUIREMENTS)
    assert "xgboost" not in WITHOUT_XGBOOST.packages  # type: ignore[operator]
    assert not RUNTIME_PACKAGES & {"xgboost", "sklearn"}  # the fence adds the SDK only
