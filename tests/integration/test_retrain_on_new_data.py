"""A drift-triggered retrain on moto runs only on data the champion has not learnt from.

Real data: scikit-learn's bundled breast cancer set (569 rows, 30 measurements, target ``target``);
the model uses the ten "mean" measurements, and the champion's file has the target first, the
other twenty measurements and a ``sample_id`` column as extra columns. The monitor runs its
real steps (plan -> analyze) against moto; the training state machine is a stand-in whose
executions show what would train. Captured traffic is the rows the champion never saw, with three
size measurements 30% larger (so the window drifts); their true labels are uploaded as a label
file, as ``mlops labels upload`` stores it.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer

from mlops.contracts.monitoring import AnalyzeRequest, PlanRequest
from mlops.data.catalog import DatasetCatalog
from mlops.data.labels import label_key
from mlops.data.profile import profile_frame
from mlops.data.trigger import execution_name, start_training, upload_from_event
from mlops.monitoring import steps
from mlops.monitoring.services import MonitorServices, MonitorSettings, list_monitor_runs
from mlops.registry.specs import SpecStore
from mlops.registry.versions import Registry
from mlops.serving.capture import capture_key
from mlops.settings import Platform
from mlops.spec.model import ModelSpec, parse_spec
from mlops.training.steps.services import Services
from mlops.training.steps.validate import validate_upload
from tests.integration.registry.conftest import AUDIT_TABLE, DATA_BUCKET, REGISTRY_TABLE, aws, dynamodb

__all__ = ["aws", "dynamodb"]

MODEL = "cancer"
NOW = datetime.now(UTC).replace(microsecond=0)
SHIFTED = ["mean radius", "mean perimeter", "mean area"]


class Clock:
    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def __call__(self) -> datetime:
        return self.moment


def cancer() -> pd.DataFrame:
    """The bundled data, target first (as some real files ship), in a fixed random row order."""
    frame = load_breast_cancer(as_frame=True).frame
    frame = frame[["target", *[c for c in frame.columns if c != "target"]]]
    order = np.random.default_rng(7).permutation(len(frame))
    return frame.iloc[order].reset_index(drop=True)


DATA = cancer()
# The ten "mean" measurements are the model's features; the other twenty stay in the files as
# extra columns (the spec allows them), between the target and the features' neighbours.
FEATURES = [c for c in DATA.columns if c.startswith("mean ")]


def cancer_spec() -> ModelSpec:
    return parse_spec(
        {
            "name": MODEL,
            "task": "classification",
            "target": {"name": "target", "classes": [0, 1]},
            "features": [{"name": name, "type": "float", "min": 0} for name in FEATURES],
            "allow_extra_columns": True,
            "row_count": {"min": 100},
            "training": {"estimator": "sklearn.linear_model.LogisticRegression"},
            "monitoring": {"schedule": "rate(1 hour)", "min_rows": 50, "retrain_on_drift": True, "cooldown_hours": 24},
        }
    )


def csv_bytes(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


@pytest.fixture
def world(dynamodb: Any) -> dict[str, Any]:
    """Champion v1 of ``cancer``, trained on the first 350 rows (uploaded and validated for real)."""
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=DATA_BUCKET)
    s3.put_bucket_versioning(Bucket=DATA_BUCKET, VersioningConfiguration={"Status": "Enabled"})
    registry = Registry.for_dynamodb(dynamodb, registry_table=REGISTRY_TABLE, audit_table=AUDIT_TABLE)
    spec = cancer_spec()
    revision = SpecStore(registry).put(spec, actor="alice").revision
    platform = Platform(
        environment="test", data_bucket=DATA_BUCKET, registry_table=REGISTRY_TABLE, audit_table=AUDIT_TABLE
    )
    pipeline = Services(platform=platform, s3=s3, registry=registry)
    train = DATA.iloc[:350].assign(sample_id=[f"s{i:04d}" for i in range(350)])
    first = upload(pipeline, "datasets/cancer/train.csv", csv_bytes(train))
    assert first["valid"], first["summary"]
    s3.put_object(
        Bucket=DATA_BUCKET,
        Key="artifacts/cancer/runs/r1/profile.json",
        Body=profile_frame(train[FEATURES], spec).to_json().encode(),
    )
    version = registry.register_version(
        MODEL,
        actor="pipeline:training:r1",
        metrics={"accuracy": 0.95},
        spec_revision=revision,
        dataset_version=first["dataset"],
        tags={"profile_uri": f"s3://{DATA_BUCKET}/artifacts/cancer/runs/r1/profile.json"},
    ).version
    registry.approve(MODEL, version, actor="carol")
    registry.set_alias(MODEL, "champion", version, actor="carol")
    sfn = boto3.client("stepfunctions", region_name="us-east-1")
    training = sfn.create_state_machine(
        name="training",
        definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
        roleArn="arn:aws:iam::123456789012:role/sfn",
    )["stateMachineArn"]
    clock = Clock(NOW)
    services = MonitorServices(
        bucket=DATA_BUCKET,
        registry=registry,
        s3=s3,
        settings=MonitorSettings(training_state_machine_arn=training),
        sfn=sfn,
        clock=clock,
    )
    return {
        "services": services,
        "pipeline": pipeline,
        "s3": s3,
        "sfn": sfn,
        "training": training,
        "registry": registry,
        "clock": clock,
        "spec": spec,
        "train": train,
        "first": first,
    }


def upload(pipeline: Services, key: str, body: bytes) -> dict[str, Any]:
    """An upload as the bucket's event brings it, through the pipeline's real Validate step."""
    version = pipeline.s3.put_object(Bucket=DATA_BUCKET, Key=key, Body=body)["VersionId"]
    event = {
        "detail": {"bucket": {"name": DATA_BUCKET}, "object": {"key": key, "version-id": version, "size": len(body)}}
    }
    return validate_upload(upload_from_event(event).to_dict(), services=pipeline)


def capture(s3: Any, frame: pd.DataFrame, at: datetime, prefix: str) -> list[str]:
    """One capture object per row, as serving writes them; returns the request ids."""
    ids = []
    for index, row in enumerate(frame[FEATURES].to_dict(orient="records")):
        request_id = f"{prefix}-{index}"
        line = {
            "request_id": request_id,
            "at": at.isoformat(),
            "model": MODEL,
            "version": 1,
            "role": "champion",
            "index": 0,
            "input": {k: float(v) for k, v in row.items()},
            "prediction": 1,
        }
        s3.put_object(Bucket=DATA_BUCKET, Key=capture_key(MODEL, request_id, at), Body=json.dumps(line).encode())
        ids.append(request_id)
    return ids


def shifted(rows: pd.DataFrame, factor: float = 1.3) -> pd.DataFrame:
    out = rows.copy()
    out[SHIFTED] = out[SHIFTED] * factor
    return out


def label(s3: Any, ids: list[str], targets: pd.Series, at: datetime) -> str:
    key = label_key(MODEL, "csv", at)
    body = "request_id,target\n" + "".join(f"{i},{int(t)}\n" for i, t in zip(ids, targets, strict=True))
    s3.put_object(Bucket=DATA_BUCKET, Key=key, Body=body.encode(), Metadata={"uploaded-by": "dana"})
    return key


def run(services: MonitorServices, name: str) -> dict[str, Any]:
    request = PlanRequest.model_validate({"input": {"model": MODEL, "trigger": "manual"}, "execution_name": name})
    plan = steps.plan(request, services)
    return steps.analyze(AnalyzeRequest(plan=plan), services).model_dump(mode="json")


def executions(world: dict[str, Any]) -> list[dict[str, Any]]:
    return list(world["sfn"].list_executions(stateMachineArn=world["training"])["executions"])


def retrain_events(registry: Registry) -> list[Any]:
    events, _ = registry.audit.list_events(MODEL, limit=200)
    return [e for e in reversed(events) if e.action.startswith("monitor.retrain")]


def test_drift_without_new_data_skips_audits_and_spends_no_version(world: dict[str, Any]) -> None:
    # GIVEN shifted traffic and nothing newer than the champion's data (no dataset, no labels)
    capture(world["s3"], shifted(DATA.iloc[350:460]), NOW - timedelta(minutes=30), "r")
    # WHEN the monitor runs
    result = run(world["services"], "m-1")
    # THEN it drifts, but the retrain is skipped: no execution, no version number
    assert result["verdict"] == "drifted" and set(SHIFTED) & set(result["drifted_features"])
    retrain = result["retrain"]
    assert retrain["action"] == "skipped" and retrain["code"] == "no_new_data"
    assert executions(world) == [] and world["registry"].get_model(MODEL).latest_version == 1
    # AND the reason names the champion's dataset and what else was looked for
    first = world["first"]["dataset"]
    assert retrain["reason"].startswith(
        f"no dataset newer than the champion's (v1: datasets/cancer/train.csv version {first['version_id'][:16]}, "
        "uploaded "
    )
    assert retrain["reason"].endswith(
        "uploaded {}), and no dataset from labelled captures: no labels uploaded in the last 7 day(s)".format(
            DatasetCatalog(world["registry"]).get(MODEL, first["version_id"]).uploaded_at
        )
    )
    # AND it is audited, and the run item says the same
    events = retrain_events(world["registry"])
    assert [e.action for e in events] == ["monitor.retrain_skipped"]
    assert events[0].after["reason"] == retrain["reason"] and events[0].after["run_id"] == "m-1"
    assert list_monitor_runs(world["registry"], MODEL)[0]["retrain"]["reason"] == retrain["reason"]
    # AND a skip does not start the cooldown
    assert "last_retrain_at" not in world["registry"].store.get(
        world["registry"].table, {"pk": f"MODEL#{MODEL}", "sk": "MONITOR"}
    )


def test_drift_with_a_newer_dataset_retrains_on_it(world: dict[str, Any]) -> None:
    # GIVEN a newer dataset version: the champion's rows and 100 more (its own run never trained it)
    more = pd.concat([world["train"], DATA.iloc[460:560].assign(sample_id="new")], ignore_index=True)
    second = upload(world["pipeline"], "datasets/cancer/train.csv", csv_bytes(more))
    assert second["valid"], second["summary"]
    capture(world["s3"], shifted(DATA.iloc[350:460]), NOW - timedelta(minutes=30), "r")
    # WHEN the monitor drifts
    result = run(world["services"], "m-1")
    # THEN the retrain starts on that version, and says so
    retrain = result["retrain"]
    assert retrain["action"] == "started" and retrain["data"]["source"] == "newer_dataset"
    assert retrain["data"]["version_id"] == second["dataset"]["version_id"] and retrain["data"]["rows"] == 450
    started = executions(world)
    assert [e["name"] for e in started] == [retrain["execution_name"]]
    described = world["sfn"].describe_execution(executionArn=started[0]["executionArn"])
    assert json.loads(described["input"])["upload"]["version_id"] == second["dataset"]["version_id"]


def test_a_newer_dataset_that_was_trained_already_is_not_retrained(world: dict[str, Any]) -> None:
    # GIVEN a newer version whose own upload run registered v2, which the gate rejected
    more = pd.concat([world["train"], DATA.iloc[460:560].assign(sample_id="new")], ignore_index=True)
    second = upload(world["pipeline"], "datasets/cancer/train.csv", csv_bytes(more))
    world["registry"].register_version(
        MODEL, actor="pipeline:training:r2", dataset_version=second["dataset"], status="REJECTED", reason="not better"
    )
    capture(world["s3"], shifted(DATA.iloc[350:460]), NOW - timedelta(minutes=30), "r")
    # WHEN the monitor drifts THEN no v3 with v2's metrics: skipped, naming v2
    retrain = run(world["services"], "m-1")["retrain"]
    assert retrain["action"] == "skipped" and "is trained already (v2 REJECTED)" in retrain["reason"]
    assert executions(world) == [] and world["registry"].get_model(MODEL).latest_version == 2


def read_text_rows(body: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(body.decode())))


def test_drift_with_labelled_captures_builds_a_dataset_with_lineage_and_trains_once(world: dict[str, Any]) -> None:
    s3, registry = world["s3"], world["registry"]
    # GIVEN 110 shifted requests captured and their true labels uploaded
    rows = shifted(DATA.iloc[350:460])
    ids = capture(s3, rows, NOW - timedelta(minutes=30), "r")
    labels_key = label(s3, ids, rows["target"], NOW - timedelta(minutes=5))
    # WHEN the monitor drifts
    result = run(world["services"], "m-1")
    retrain = result["retrain"]
    # THEN a new dataset version is written under the model's dataset prefix ...
    assert retrain["action"] == "started", retrain
    data = retrain["data"]
    assert data["source"] == "captures+labels" and data["key"].startswith("datasets/cancer/captures-")
    assert (data["rows"], data["base_rows"], data["labelled_rows"]) == (460, 350, 110)
    body = s3.get_object(Bucket=DATA_BUCKET, Key=data["key"], VersionId=data["version_id"])["Body"].read()
    built = read_text_rows(body)
    # ... the spec's columns in spec order: the champion's rows verbatim (by name), then the labelled captures
    assert list(built[0]) == [*FEATURES, "target"]
    original = read_text_rows(
        s3.get_object(
            Bucket=DATA_BUCKET, Key="datasets/cancer/train.csv", VersionId=world["first"]["dataset"]["version_id"]
        )["Body"].read()
    )
    assert built[:350] == [{k: row[k] for k in [*FEATURES, "target"]} for row in original]
    # (in capture order: here all at one moment, so by request id)
    expected = rows.assign(request_id=ids).sort_values("request_id")
    assert [int(r["target"]) for r in built[350:]] == expected["target"].astype(int).tolist()
    assert [float(r["mean radius"]) for r in built[350:]] == pytest.approx(expected["mean radius"].tolist())
    # ... recorded as a dataset version with its lineage
    record = DatasetCatalog(registry).get(MODEL, data["version_id"])
    lineage = record.extra["lineage"]
    assert lineage["source"] == "captures+labels" and lineage["champion_version"] == 1
    assert lineage["base_dataset"]["version_id"] == world["first"]["dataset"]["version_id"]
    assert lineage["label_objects"] == [labels_key] and lineage["capture_objects"] == 110
    assert (lineage["base_rows"], lineage["labelled_rows"]) == (350, 110)
    assert record.uploaded_by == "pipeline:monitor" and record.rows == 460
    # ... and the training pipeline starts once on it, under the upload's own name
    name = execution_name(DATA_BUCKET, data["key"], data["version_id"], MODEL)
    assert retrain["execution_name"] == name and [e["name"] for e in executions(world)] == [name]
    # WHEN the bucket's event for that object reaches the starter as well
    event = {
        "detail": {"bucket": {"name": DATA_BUCKET}, "object": {"key": data["key"], "version-id": data["version_id"]}}
    }
    again = start_training(world["sfn"], world["training"], upload_from_event(event))
    # THEN it is refused by name: exactly one run
    assert again["duplicate"] is True and len(executions(world)) == 1
    # AND the built dataset passes the pipeline's own validation; its record keeps the lineage
    described = world["sfn"].describe_execution(executionArn=executions(world)[0]["executionArn"])
    validated = validate_upload(json.loads(described["input"])["upload"], services=world["pipeline"])
    assert validated["valid"], validated["summary"]
    assert DatasetCatalog(registry).get(MODEL, data["version_id"]).extra["lineage"] == lineage
    # AND the audit event carries the lineage in brief
    started = [e for e in retrain_events(registry) if e.action == "monitor.retrain_started"]
    assert len(started) == 1 and started[0].after["lineage"]["labelled_rows"] == 110
    assert started[0].after["lineage"]["label_objects"] == 1
    assert registry.get_model(MODEL).latest_version == 1

    # WHEN it drifts again after the cooldown, with no new labels (the candidate was never promoted)
    world["clock"].moment = NOW + timedelta(hours=25)
    capture(s3, shifted(DATA.iloc[460:520]), NOW + timedelta(hours=24, minutes=30), "s")
    later = run(world["services"], "m-2")["retrain"]
    # THEN the same labelled captures would make the same dataset: skipped, naming it
    assert later["action"] == "skipped" and "was built before" in later["reason"]
    assert data["key"] in later["reason"] and len(executions(world)) == 1


def test_too_few_labelled_captures_are_not_a_dataset(world: dict[str, Any]) -> None:
    # GIVEN 110 shifted requests, 20 of them labelled (monitoring.min_rows is 50)
    rows = shifted(DATA.iloc[350:460])
    ids = capture(world["s3"], rows, NOW - timedelta(minutes=30), "r")
    label(world["s3"], ids[:20], rows["target"].iloc[:20], NOW - timedelta(minutes=5))
    # WHEN the monitor drifts THEN skipped, saying how many there were and how many are needed
    retrain = run(world["services"], "m-1")["retrain"]
    assert retrain["action"] == "skipped"
    assert (
        "20 labelled capture(s) in the last 7 day(s) (20 new label(s)), 50 needed (monitoring.min_rows)"
        in (retrain["reason"])
    )
    assert (
        executions(world) == []
        and world["s3"].list_objects_v2(Bucket=DATA_BUCKET, Prefix="datasets/cancer/captures-")["KeyCount"] == 0
    )


def test_a_champion_trained_on_labelled_captures_gets_only_the_new_ones(world: dict[str, Any]) -> None:
    s3, registry, services = world["s3"], world["registry"], world["services"]
    # GIVEN a built dataset (champion rows + 110 labelled captures) that became the champion, v2
    rows = shifted(DATA.iloc[350:460])
    ids = capture(s3, rows, NOW - timedelta(minutes=30), "r")
    label(s3, ids, rows["target"], NOW - timedelta(minutes=5))
    data = run(services, "m-1")["retrain"]["data"]
    built = DatasetCatalog(registry).get(MODEL, data["version_id"])
    v1 = registry.get_version(MODEL, 1)
    v2 = registry.register_version(
        MODEL, actor="pipeline:training:r2", dataset_version=built.ref(), spec_revision=1, tags=v1.tags
    ).version
    registry.approve(MODEL, v2, actor="carol")
    registry.set_alias(MODEL, "champion", v2, actor="carol")
    # WHEN more traffic drifts after the cooldown and 60 more labels arrive (the old file still in the lookback)
    services.clock.moment = NOW + timedelta(hours=25)  # type: ignore[attr-defined]
    fresh = shifted(DATA.iloc[460:520], 1.35)
    fresh_ids = capture(s3, fresh, NOW + timedelta(hours=24, minutes=30), "s")
    fresh_key = label(s3, fresh_ids, fresh["target"], NOW + timedelta(hours=24, minutes=50))
    retrain = run(services, "m-2")["retrain"]
    # THEN the new dataset is v2's rows (its 460, verbatim) and only the 60 new labelled captures
    assert retrain["action"] == "started", retrain
    lineage = DatasetCatalog(registry).get(MODEL, retrain["data"]["version_id"]).extra["lineage"]
    assert lineage["base_dataset"]["version_id"] == built.version_id
    assert (lineage["base_rows"], lineage["labelled_rows"], lineage["label_objects"]) == (460, 60, [fresh_key])
    body = s3.get_object(Bucket=DATA_BUCKET, Key=retrain["data"]["key"])["Body"].read()
    old = s3.get_object(Bucket=DATA_BUCKET, Key=data["key"])["Body"].read()
    assert body.startswith(old) and len(read_text_rows(body)) == 520


def test_labelled_captures_that_would_fail_validation_are_not_written(world: dict[str, Any]) -> None:
    # GIVEN 110 shifted requests sent twice (a client retried them) and both copies labelled
    rows = shifted(DATA.iloc[350:460])
    ids = capture(world["s3"], rows, NOW - timedelta(minutes=30), "r")
    again = capture(world["s3"], rows, NOW - timedelta(minutes=20), "retry")
    label(world["s3"], ids + again, pd.concat([rows["target"], rows["target"]]), NOW - timedelta(minutes=5))
    # WHEN the monitor drifts
    retrain = run(world["services"], "m-1")["retrain"]
    # THEN the dataset they make would fail the pipeline's duplicate check (validation.duplicate_rows:
    # error): nothing is written or started, and the reason names the check
    assert retrain["action"] == "skipped", retrain
    assert (
        "the champion's 350 row(s) + 220 labelled capture(s)) would fail validation: dataset.duplicate_rows"
        in (retrain["reason"])
    )
    assert executions(world) == []
    listed = world["s3"].list_objects_v2(Bucket=DATA_BUCKET, Prefix="datasets/cancer/captures-")
    assert listed["KeyCount"] == 0


def test_a_newer_dataset_that_failed_validation_waits_for_a_spec_that_accepts_it(world: dict[str, Any]) -> None:
    # GIVEN a newer version whose run failed validation: one row has a negative mean radius
    more = pd.concat([world["train"], DATA.iloc[460:560].assign(sample_id="new")], ignore_index=True)
    more.loc[400, "mean radius"] = -1.0
    second = upload(world["pipeline"], "datasets/cancer/train.csv", csv_bytes(more))
    assert not second["valid"]
    capture(world["s3"], shifted(DATA.iloc[350:460]), NOW - timedelta(minutes=30), "r")
    # WHEN the monitor drifts THEN it would fail again under the same spec: skipped, saying so
    retrain = run(world["services"], "m-1")["retrain"]
    assert retrain["action"] == "skipped" and executions(world) == []
    assert "failed validation against the current spec (" in retrain["reason"]
    # WHEN the spec changes so that it accepts the file (no lower bound on mean radius) and it drifts again
    document = world["spec"].model_dump(mode="json")
    document["features"] = [{**f, "min": None} if f["name"] == "mean radius" else f for f in document["features"]]
    SpecStore(world["registry"]).put(parse_spec(document), actor="alice")
    world["clock"].moment = NOW + timedelta(hours=2)
    capture(world["s3"], shifted(DATA.iloc[350:460]), NOW + timedelta(hours=1, minutes=30), "s")
    retrain = run(world["services"], "m-2")["retrain"]
    # THEN the retrain runs on it (validated again, under the new spec)
    assert retrain["action"] == "started", retrain
    assert retrain["data"]["version_id"] == second["dataset"]["version_id"]
