"""The training steps on moto with real data: the fixed holdout file, and the champion scored only on unseen rows.

Plan, Train, Evaluate, CheckOnnx, Gate and Register run as the state machine runs them (each step's output
is the next one's input), against boto3 on moto; the data is scikit-learn's diabetes set.
"""

from __future__ import annotations

import hashlib
import io
import json
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlops.data.trigger import upload_from_event
from mlops.errors import CheckFailedError, InputError, NotFoundError
from mlops.registry.specs import SpecStore
from mlops.spec.model import parse_spec
from mlops.storage import read_uri
from mlops.training.fingerprints import load_fingerprints, row_fingerprints
from mlops.training.frames import load_training_frame
from mlops.training.steps.candidates import plan_training, train_candidate
from mlops.training.steps.evaluate import evaluate_candidates
from mlops.training.steps.onnx_check import check_onnx_export
from mlops.training.steps.outcome import gate_candidate, register_candidate
from mlops.training.steps.services import Services
from mlops.training.steps.validate import validate_upload
from tests.integration.registry.conftest import DATA_BUCKET

NUMBERS = ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]
HOLDOUT_KEY = "holdouts/diabetes/holdout.csv"


def _diabetes() -> pd.DataFrame:
    from sklearn.datasets import load_diabetes

    return load_diabetes(as_frame=True).frame


DIABETES = _diabetes()


def spec_document(**split: Any) -> dict[str, Any]:
    return {
        "name": "diabetes",
        "task": "regression",
        "target": {"name": "target"},
        "features": [{"name": name, "type": "float"} for name in NUMBERS],
        "training": {
            "estimator": "sklearn.linear_model.Ridge",
            "test_size": 0.2,
            "seed": 42,
            **({"split": split} if split else {}),
        },
        "gates": {"must_beat_champion": True},
        "approval": {"four_eyes": False},
    }


def csv_bytes(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


def run_pipeline(services: Services, frame: pd.DataFrame, name: str) -> dict[str, Any]:
    """Validate, plan, train, evaluate, check the ONNX export, gate and register one upload; every
    step's result, by step."""
    key = f"datasets/diabetes/{name}"
    body = csv_bytes(frame)
    version = services.s3.put_object(Bucket=DATA_BUCKET, Key=key, Body=body)["VersionId"]
    event = {"detail": {"bucket": {"name": DATA_BUCKET}, "object": {"key": key, "version-id": version}}}
    upload = upload_from_event(event).to_dict()
    execution_name = f"run-{name.replace('.', '-')}"
    common = {"upload": upload, "execution": f"arn:sfn:{execution_name}", "execution_name": execution_name}
    validation = validate_upload(upload, services=services)
    assert validation["valid"], validation["summary"]
    plan = plan_training({**common, "spec_revision": validation["spec_revision"]}, services=services)
    candidates = [
        train_candidate({**common, "spec_revision": validation["spec_revision"], "candidate": c}, services=services)
        for c in plan["candidates"]
    ]
    evaluation = evaluate_candidates(
        {**common, "spec_revision": validation["spec_revision"], "candidates": candidates}, services=services
    )
    onnx = check_onnx_export(
        {"onnx": evaluation["onnx"], "model": "diabetes", "execution_name": execution_name}, services=services
    )
    gate = gate_candidate(
        {"evaluation": evaluation, "spec_revision": validation["spec_revision"], "model": "diabetes"},
        services=services,
    )
    registered = register_candidate(
        {
            **common,
            "evaluation": evaluation,
            "onnx": onnx,
            "gate": gate,
            "validation": validation,
            "status": "PENDING_APPROVAL" if gate["passed"] else "REJECTED",
        },
        services=services,
    )
    return {
        "plan": plan,
        "candidates": candidates,
        "evaluation": evaluation,
        "onnx": onnx,
        "gate": gate,
        "registered": registered,
    }


def make_champion(services: Services, version: int) -> None:
    services.registry.approve("diabetes", version, actor="carol")
    services.registry.set_alias("diabetes", "champion", version, actor="carol")


def test_fixed_holdout_file_is_validated_pinned_and_recorded(services: Services) -> None:
    # GIVEN a spec whose holdout is a fixed file in the data bucket (the first 100 diabetes rows)
    SpecStore(services.registry).put(
        parse_spec(spec_document(method="holdout_dataset", holdout=HOLDOUT_KEY)), actor="alice"
    )
    holdout_bytes = csv_bytes(DIABETES.iloc[:100])
    holdout_version = services.s3.put_object(Bucket=DATA_BUCKET, Key=HOLDOUT_KEY, Body=holdout_bytes)["VersionId"]
    # WHEN the other 342 rows are uploaded and the run goes through every step
    run = run_pipeline(services, DIABETES.iloc[100:], "v1.csv")
    # THEN every candidate was planned with that object version and its sha256
    source = run["plan"]["candidates"][0]["holdout"]
    assert source["version_id"] == holdout_version
    assert source["sha256"] == hashlib.sha256(holdout_bytes).hexdigest() and source["rows"] == 100
    report = json.loads(read_uri(services.s3, source["validation_report"]))
    assert report["valid"] is True
    # AND every dataset row trained, and the holdout is the file's 100 rows
    training = run["candidates"][0]["training"]
    assert (training["train_rows"], training["holdout_rows"]) == (342, 100)
    split = run["evaluation"]["split"]
    assert split["method"] == "holdout_dataset" and split["holdout_file"]["version_id"] == holdout_version
    # AND the model card names the file, its version and its sha256
    card = read_uri(services.s3, run["registered"]["card_uri"]).decode()
    assert f"fixed holdout file s3://{DATA_BUCKET}/{HOLDOUT_KEY}, version {holdout_version}" in card
    assert source["sha256"] in card


def test_a_replaced_holdout_file_does_not_change_a_run_in_flight(services: Services) -> None:
    # GIVEN a run planned against the holdout file's first version
    SpecStore(services.registry).put(
        parse_spec(spec_document(method="holdout_dataset", holdout=HOLDOUT_KEY)), actor="alice"
    )
    services.s3.put_object(Bucket=DATA_BUCKET, Key=HOLDOUT_KEY, Body=csv_bytes(DIABETES.iloc[:100]))
    key = "datasets/diabetes/v1.csv"
    version = services.s3.put_object(Bucket=DATA_BUCKET, Key=key, Body=csv_bytes(DIABETES.iloc[100:]))["VersionId"]
    upload = upload_from_event(
        {"detail": {"bucket": {"name": DATA_BUCKET}, "object": {"key": key, "version-id": version}}}
    ).to_dict()
    common = {"upload": upload, "execution": "arn:sfn:r", "execution_name": "r", "spec_revision": 1}
    plan = plan_training(common, services=services)
    # WHEN the file is replaced before the candidate trains
    services.s3.put_object(Bucket=DATA_BUCKET, Key=HOLDOUT_KEY, Body=csv_bytes(DIABETES.iloc[:50]))
    trained = train_candidate({**common, "candidate": plan["candidates"][0]}, services=services)
    # THEN the candidate still used the version the plan validated
    assert trained["training"]["holdout_rows"] == 100


@pytest.mark.parametrize(
    ("key", "body", "error", "message"),
    [
        ("holdouts/diabetes/missing.csv", None, NotFoundError, r"holdouts/diabetes/missing.csv does not exist"),
        ("elsewhere/holdout.csv", None, InputError, r"not under holdouts/"),
        (HOLDOUT_KEY, "age,bmi\n1,2\n", CheckFailedError, r"fails validation against the spec \(.*report: s3://"),
    ],
)
def test_a_bad_holdout_file_fails_planning_with_the_reason(
    services: Services, key: str, body: str | None, error: type[Exception], message: str
) -> None:
    SpecStore(services.registry).put(parse_spec(spec_document(method="holdout_dataset", holdout=key)), actor="alice")
    if body is not None:
        services.s3.put_object(Bucket=DATA_BUCKET, Key=key, Body=body.encode())
    upload = {"bucket": DATA_BUCKET, "key": "datasets/diabetes/x.csv", "version_id": "v", "model": "diabetes"}
    with pytest.raises(error, match=message):
        plan_training({"upload": upload, "spec_revision": 1, "execution_name": "r"}, services=services)


def test_the_champion_is_scored_only_on_rows_it_did_not_train_on(services: Services) -> None:
    # GIVEN a champion trained on the first 300 rows (hash split, seed 42)
    SpecStore(services.registry).put(parse_spec(spec_document()), actor="alice")
    first = run_pipeline(services, DIABETES.iloc[:300], "v1.csv")
    make_champion(services, first["registered"]["version"])
    champion_version = services.registry.get_version("diabetes", first["registered"]["version"])
    stored = read_uri(services.s3, champion_version.tags["training_rows_uri"])
    assert champion_version.tags["training_rows_sha256"] == hashlib.sha256(stored).hexdigest()
    trained = load_fingerprints(stored)
    assert 0 < len(trained) <= 300
    # WHEN all 442 rows are uploaded (the usual "append new data" retrain)
    second = run_pipeline(services, DIABETES, "v2.csv")
    champion = second["evaluation"]["champion"]
    # THEN the hash split kept every champion training row out of the holdout: nothing to exclude
    assert champion["seen_check"] == "fingerprints"
    assert champion["seen_rows_excluded"] == 0 and champion["seen_rows_scored"] == 0
    assert champion["rows_scored"] == champion["holdout_rows"] == second["candidates"][0]["training"]["holdout_rows"]
    # WHEN the seed changes (rows are dealt again) and the same data is uploaded
    SpecStore(services.registry).put(
        parse_spec({**spec_document(), "training": {**spec_document()["training"], "seed": 7}}), actor="alice"
    )
    third = run_pipeline(services, DIABETES, "v3.csv")
    champion = third["evaluation"]["champion"]
    # THEN the rows the champion trained on are excluded before it is scored, exactly those (checked by position)
    holdout_rows = json.loads(read_uri(services.s3, third["evaluation"]["split"]["holdout_rows_uri"]))["rows"]
    first_rows = json.loads(read_uri(services.s3, first["evaluation"]["split"]["holdout_rows_uri"]))["rows"]
    champion_trained = set(range(300)) - set(first_rows)
    expected = len(set(holdout_rows) & champion_trained)
    assert expected > 0
    assert champion["seen_rows_excluded"] == expected and champion["seen_rows_scored"] == 0
    assert champion["rows_scored"] == len(holdout_rows) - expected
    # AND the gate compared the candidate on those same rows
    check = next(c for c in third["gate"]["checks"] if c["check"] == "champion")
    assert check["value"] == pytest.approx(champion["candidate_metrics"]["rmse"])
    assert check["champion"] == pytest.approx(champion["metrics"]["rmse"])
    # AND the card says how many holdout rows the champion had seen
    card = read_uri(services.s3, third["registered"]["card_uri"]).decode()
    assert f"scored on {champion['rows_scored']} of the {len(holdout_rows)} holdout rows" in card
    assert f"Holdout rows the champion had trained on: 0 scored ({expected} excluded before scoring" in card
    # AND the fingerprints recognize the same rows the positions do (independent check)
    typed = load_training_frame(io.BytesIO(csv_bytes(DIABETES)), parse_spec(spec_document()))
    seen = np.isin(row_fingerprints(typed.iloc[holdout_rows], parse_spec(spec_document())), trained)
    assert int(seen.sum()) == expected


def test_a_champion_without_fingerprints_is_reported_as_unknown(services: Services) -> None:
    # GIVEN a champion registered before training rows were fingerprinted (its tags lack them)
    SpecStore(services.registry).put(parse_spec(spec_document()), actor="alice")
    first = run_pipeline(services, DIABETES.iloc[:300], "v1.csv")
    old = services.registry.get_version("diabetes", first["registered"]["version"])
    legacy = services.registry.register_version(
        "diabetes",
        actor="pipeline:training:old",
        metrics=old.metrics,
        params=old.params,
        spec_revision=old.spec_revision,
        dataset_version=old.dataset_version,
        code_revision=old.code_revision,
        pipeline_execution="old-run",
        artifact_uri=old.artifact_uri,
        artifact_sha256=old.artifact_sha256,
        tags={k: v for k, v in old.tags.items() if not k.startswith("training_rows")},
    )
    make_champion(services, legacy.version)
    # WHEN a new dataset version is evaluated
    second = run_pipeline(services, DIABETES, "v2.csv")
    champion = second["evaluation"]["champion"]
    # THEN it is scored on the whole holdout and the card says it is unknown what it had seen
    assert champion["seen_check"] == "unknown" and champion["seen_rows_scored"] is None
    assert champion["rows_scored"] == champion["holdout_rows"]
    card = read_uri(services.s3, second["registered"]["card_uri"]).decode()
    assert "Holdout rows the champion had trained on: unknown (v2 was registered without the fingerprints" in card


def test_a_sagemaker_job_trains_against_the_same_fixed_holdout(
    services: Services, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tarfile

    from mlops.training.sagemaker import run_training_job
    from mlops.training.steps.candidates import collect_candidate

    # GIVEN a SageMaker-backed spec with a fixed holdout file
    monkeypatch.setenv("SAGEMAKER_TRAINING_IMAGE", "123456789012.dkr.ecr.us-east-1.amazonaws.com/mlops-train:1")
    document = spec_document(method="holdout_dataset", holdout=HOLDOUT_KEY)
    document["training"]["backend"] = "sagemaker"
    SpecStore(services.registry).put(parse_spec(document), actor="alice")
    services.s3.put_object(Bucket=DATA_BUCKET, Key=HOLDOUT_KEY, Body=csv_bytes(DIABETES.iloc[:100]))
    key = "datasets/diabetes/v1.csv"
    version = services.s3.put_object(Bucket=DATA_BUCKET, Key=key, Body=csv_bytes(DIABETES.iloc[100:]))["VersionId"]
    upload = upload_from_event(
        {"detail": {"bucket": {"name": DATA_BUCKET}, "object": {"key": key, "version-id": version}}}
    ).to_dict()
    common = {"upload": upload, "execution": "arn:sfn:sm", "execution_name": "sm", "spec_revision": 1}
    # WHEN planned, the dataset staged (the state machine's CopyObject), and the job run on the channel's files
    plan = plan_training(common, services=services)
    staged = plan["input"]
    source_key, _, version_id = staged["copy_source"].partition("?versionId=")
    services.s3.copy_object(
        Bucket=staged["bucket"],
        Key=staged["key"],
        CopySource={"Bucket": source_key.split("/", 1)[0], "Key": source_key.split("/", 1)[1], "VersionId": version_id},
    )
    candidate = plan["candidates"][0]
    prefix = candidate["job"]["input_uri"].split("/", 3)[3]
    input_dir, model_dir, config_dir = tmp_path / "input", tmp_path / "model", tmp_path / "config"
    for item in services.s3.list_objects_v2(Bucket=DATA_BUCKET, Prefix=prefix)["Contents"]:
        path = input_dir / item["Key"][len(prefix) :]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(read_uri(services.s3, f"s3://{DATA_BUCKET}/{item['Key']}"))
    config_dir.mkdir()
    (config_dir / "hyperparameters.json").write_text(json.dumps(candidate["job"]["hyperparameters"]))
    record = run_training_job(input_dir=input_dir, model_dir=model_dir, config_dir=config_dir)
    # THEN the job held out the file's 100 rows and trained on every dataset row
    assert (record["training"]["train_rows"], record["training"]["holdout_rows"]) == (342, 100)
    assert record["training"]["split"]["holdout_file"]["sha256"] == candidate["holdout"]["sha256"]
    # AND the collected candidate is evaluated on the same rows
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        for path in sorted(model_dir.iterdir()):
            tar.add(path, arcname=path.name)
    services.s3.put_object(Bucket=DATA_BUCKET, Key="artifacts/diabetes/sm/model.tar.gz", Body=archive.getvalue())
    job = {"ModelArtifacts": {"S3ModelArtifacts": f"s3://{DATA_BUCKET}/artifacts/diabetes/sm/model.tar.gz"}}
    collected = collect_candidate({**common, "candidate": candidate, "job": job}, services=services)
    evaluation = evaluate_candidates({**common, "candidates": [collected]}, services=services)
    assert evaluation["split"]["holdout_rows"] == 100 and evaluation["split"]["method"] == "holdout_dataset"
    # AND a staged holdout file that is not the validated one is refused
    (input_dir / "holdout" / "holdout.csv").write_bytes(csv_bytes(DIABETES.iloc[:50]))
    with pytest.raises(CheckFailedError, match="sha256 differs"):
        run_training_job(input_dir=input_dir, model_dir=model_dir, config_dir=config_dir)
