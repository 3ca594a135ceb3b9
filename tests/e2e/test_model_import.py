"""Imported models on the local cloud: the import API, S3, the training and deployment pipelines, serving.

The scientist uploads the real penguins (palmerpenguins) and imports two models trained "in a
notebook": an ONNX file and an MLflow model directory with the sklearn flavor (a pickle, which
the CLI loads on the scientist's machine and converts to the restricted format). Each is evaluated
on the dataset version's holdout, gated, registered with its origin, approved by another identity,
deployed and served over signed HTTP. A model that does not fit the spec is refused before
anything is uploaded; an unsigned import request is refused by the gateway. A notebook run
(``mlops.tracking``) logs its model and is imported by its run id (``models import --run``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pytest

from mlops import tracking
from mlops.registry.versions import Registry
from mlops.training.imported import export_imported_onnx
from mlops_local.testing import LocalCloudProcess
from tests.conformance.datasets import PENGUINS
from tests.conformance.notebook import notebook_pipeline, penguins_frame, write_mlflow_sklearn_dir
from tests.e2e.test_deployment_pipeline import mlops, ok, wait_for, waiting_input

MODEL = "penguins-imported"
SCIENTIST = "arn:aws:iam::123456789012:user/scientist"


@pytest.fixture(scope="module")
def envs(local_cloud: LocalCloudProcess) -> dict[str, dict[str, str]]:
    return {name: local_cloud.environ(name) for name in ("testing", "scientist", "approver")}


@pytest.fixture(scope="module")
def registry(local_cloud: LocalCloudProcess) -> Registry:
    ssm = local_cloud.client("ssm")

    def parameter(leaf: str) -> str:
        return str(ssm.get_parameter(Name=f"/mlops/dev/{leaf}")["Parameter"]["Value"])

    return Registry.for_dynamodb(
        local_cloud.client("dynamodb"), registry_table=parameter("registry-table"), audit_table=parameter("audit-table")
    )


@pytest.fixture(scope="module")
def dataset(envs: dict[str, dict[str, str]], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The penguins spec (under this test's model name) and the shipped file less the held-back rows."""
    tmp = tmp_path_factory.mktemp("imports")
    spec = tmp / f"{MODEL}.yaml"
    # Two imports of equally good models: the second may register without beating the first (the champion)
    text = PENGUINS.spec_path.read_text().replace("name: palmer-penguins", f"name: {MODEL}")
    spec.write_text(text.replace("gates:\n", "gates:\n  must_beat_champion: false\n"))
    ok(envs["testing"], "spec", "put", str(spec), "--actor", "alice")
    data = tmp / "penguins.csv"
    data.write_bytes(PENGUINS.training_bytes())
    uploaded = ok(envs["scientist"], "data", "upload", str(data), "--model", MODEL, "--wait")
    return {"tmp": tmp, "version_id": uploaded["version_id"]}


def approve_and_serve(
    cloud: LocalCloudProcess, envs: dict[str, dict[str, str]], registry: Registry, version: int
) -> None:
    """Deploy: the approval waits, another identity approves, the version becomes champion."""
    arn = str(ok(envs["testing"], "deploy", MODEL, str(version))["execution"])
    wait_for(lambda: waiting_input(cloud, arn), timeout=60, what="the approval task")
    decision = ok(envs["approver"], "approve", MODEL, str(version), "--comment", "imported model reviewed")
    assert decision["decision"] == "approved", decision
    wait_for(lambda: registry.get_model(MODEL).champion == version, timeout=120, what=f"v{version} as champion")


def served_accuracy(cloud: LocalCloudProcess, version: int) -> float:
    frame = PENGUINS.held_back_frame()

    def answered_by_version() -> Any:
        # the inference function caches the champion for a few seconds: wait for the new one to answer
        status, answer = cloud.api("POST", f"models/{MODEL}/predict", {"records": PENGUINS.records(frame)})
        assert status == 200, answer
        return answer if str(answer.get("version")) == str(version) else None

    answer = wait_for(answered_by_version, timeout=90, what=f"v{version} to answer predictions")
    return float(np.mean(np.asarray(answer["predictions"]).astype(str) == frame["species"].astype(str).to_numpy()))


def imported_version(result: dict[str, Any]) -> int:
    run = result["run"]
    assert run["status"] == "SUCCEEDED", [
        (s["name"], s["status"], s["error"], (s["cause"] or "")[:800]) for s in run["steps"]
    ]
    assert run["output"]["outcome"] == "registered", run["output"]
    return int(run["output"]["version"])


def test_an_imported_onnx_model_is_approved_and_serves(
    local_cloud: LocalCloudProcess, envs: dict[str, dict[str, str]], registry: Registry, dataset: dict[str, Any]
) -> None:
    # GIVEN a notebook model exported to ONNX by the scientist
    path = dataset["tmp"] / "notebook.onnx"
    path.write_bytes(export_imported_onnx(notebook_pipeline(penguins_frame()), PENGUINS.spec))
    # WHEN the scientist imports it onto the uploaded dataset version and waits for the run
    result = ok(
        envs["scientist"],
        "models",
        "import",
        MODEL,
        "--artifact",
        str(path),
        "--dataset",
        dataset["version_id"],
        "--wait",
    )
    # THEN the importer is the identity AWS verified and the run registered the import
    assert result["importer"] == SCIENTIST and result["format"] == "onnx"
    version = imported_version(result)
    shown = ok(envs["testing"], "models", "show", MODEL, "--version", str(version))
    assert shown["origin"]["uploader"] == SCIENTIST and shown["origin"]["sha256"] == result["sha256"]
    assert shown["params"]["estimator"] == "imported"
    # AND once another identity approves it, it serves the held-back penguins over signed HTTP
    approve_and_serve(local_cloud, envs, registry, version)
    assert served_accuracy(local_cloud, version) > 0.9


def test_an_imported_mlflow_sklearn_directory_is_converted_approved_and_serves(
    local_cloud: LocalCloudProcess, envs: dict[str, dict[str, str]], registry: Registry, dataset: dict[str, Any]
) -> None:
    # GIVEN an MLflow model directory (sklearn flavor, a pickle) of another notebook model
    pipeline = notebook_pipeline(penguins_frame(), ["bill_length_mm", "bill_depth_mm", "island", "body_mass_g"])
    folder = write_mlflow_sklearn_dir(pipeline, Path(dataset["tmp"]) / "mlflow-model", run_id="3f2b9c0d1e")
    # WHEN the scientist imports it
    result = ok(
        envs["scientist"],
        "models",
        "import",
        MODEL,
        "--artifact",
        str(folder),
        "--dataset",
        dataset["version_id"],
        "--wait",
    )
    # THEN it was converted to the restricted format on the scientist's machine, its MLflow run kept
    assert (result["format"], result["source"], result["run_id"]) == (
        "sklearn-pickle-5",
        "mlflow-sklearn",
        "3f2b9c0d1e",
    )
    version = imported_version(result)
    record = registry.get_version(MODEL, version)
    assert record.tags["imported_run_id"] == "3f2b9c0d1e" and record.tags.get("onnx_sha256"), record.tags
    # AND it serves (through the ONNX model the pipeline exported and checked) once approved
    approve_and_serve(local_cloud, envs, registry, version)
    assert served_accuracy(local_cloud, version) > 0.9


def test_a_wrong_shaped_import_is_refused_before_anything_is_uploaded(
    envs: dict[str, dict[str, str]], dataset: dict[str, Any]
) -> None:
    # GIVEN a model fitted on a column the spec does not have
    frame = penguins_frame().assign(wingspan_mm=1.0)
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(max_iter=500).fit(frame[["wingspan_mm", "year"]], frame["species"].astype(str))
    folder = write_mlflow_sklearn_dir(model, Path(dataset["tmp"]) / "wrong-model")
    # WHEN it is imported  THEN exit 2 (bad input), the file and the column named
    refused = mlops(envs["scientist"], "models", "import", MODEL, "--artifact", str(folder), "--dataset", "x")
    assert refused.returncode == 2, refused.stderr
    assert "model.pkl was fitted on column(s) wingspan_mm that spec penguins-imported" in refused.stderr


def test_an_import_without_a_valid_signature_is_refused(
    local_cloud: LocalCloudProcess, dataset: dict[str, Any]
) -> None:
    body = {
        "format": "onnx",
        "sha256": "ab" * 32,
        "size": 10,
        "dataset_version": dataset["version_id"],
        "source": "onnx-file",
    }
    # an unsigned request: API Gateway refuses it (IAM authorization on the import route)
    status, _ = local_cloud.api("POST", f"models/{MODEL}/imports", body, sign=False)
    assert status == 403
    # a signed one for a dataset version the model does not have: 404 naming it
    status, answer = local_cloud.api("POST", f"models/{MODEL}/imports", {**body, "dataset_version": "nope"})
    assert status == 404 and "dataset_version 'nope'" in answer["error"], answer


def test_a_notebook_runs_logged_model_is_imported_by_its_run_id(
    local_cloud: LocalCloudProcess, envs: dict[str, dict[str, str]], dataset: dict[str, Any]
) -> None:
    # GIVEN a notebook run, signed with the scientist's own credentials, that logged its pipeline
    env = envs["scientist"]
    session = boto3.Session(
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=local_cloud.region,
    )
    pipeline = notebook_pipeline(penguins_frame(), ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "island"])
    with tracking.start_run(
        model=MODEL, api_url=local_cloud.api_url, region=local_cloud.region, session=session
    ) as run:
        run.log_params({"C": 1.0})
        run.log_metrics({"accuracy": 0.97})
        run.log_model(pipeline)
    run_id = str(run.run_id)
    # WHEN the scientist imports it by its run id and waits for the pipeline's run
    result = ok(env, "models", "import", MODEL, "--run", run_id, "--dataset", dataset["version_id"], "--wait")
    # THEN it went through the import path, the run id its source run, the importer AWS verified
    assert (result["source"], result["run_id"], result["importer"]) == ("tracking-run", run_id, SCIENTIST)
    version = imported_version(result)
    # AND the run and the version name each other
    shown = ok(envs["testing"], "runs", "show", run_id, "--model", MODEL)
    assert shown["caller"] == SCIENTIST and shown["params"] == {"C": 1.0}
    assert shown["imported_versions"] == [{"version": version, "status": "PENDING_APPROVAL"}]
    origin = ok(envs["testing"], "models", "show", MODEL, "--version", str(version))["origin"]
    assert (origin["source"], origin["run_id"], origin["uploader"]) == ("tracking-run", run_id, SCIENTIST)
