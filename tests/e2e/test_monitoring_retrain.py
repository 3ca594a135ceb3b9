"""A drift-triggered retrain on the local cloud: nothing new, nothing trains; labelled captures train once.

Model ``cells`` learns scikit-learn's bundled breast cancer data (its ten "mean" measurements; the
file has the target first and the other twenty measurements as extra columns). Column names are
as shipped with spaces written as underscores: the ONNX export fails on a feature name with a
space (skl2onnx renames the graph input, serving then looks the column up by the new name). v1 is trained by
the pipeline and approved; the traffic is the rows it never saw with three size measurements 30%
larger. The tests run in order on one worker.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.datasets import load_breast_cancer

from mlops.data.catalog import DatasetCatalog
from mlops.monitoring.services import list_monitor_runs
from mlops.registry.versions import Registry
from mlops_local.testing import LocalCloudProcess, signed_as

MLOPS = str(Path(sys.executable).parent / "mlops")
MODEL = "cells"
SHIFTED = ["mean_radius", "mean_perimeter", "mean_area"]
pytestmark = pytest.mark.xdist_group("monitoring")


def cancer() -> pd.DataFrame:
    frame = load_breast_cancer(as_frame=True).frame
    frame.columns = [str(c).replace(" ", "_") for c in frame.columns]
    frame = frame[["target", *[c for c in frame.columns if c != "target"]]]
    return frame.iloc[np.random.default_rng(11).permutation(len(frame))].reset_index(drop=True)


DATA = cancer()
FEATURES = [c for c in DATA.columns if c.startswith("mean_")]


def parameter(cloud: LocalCloudProcess, leaf: str) -> str:
    return str(cloud.client("ssm").get_parameter(Name=f"/mlops/dev/{leaf}")["Parameter"]["Value"])


def mlops(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MLOPS, *args], env={**os.environ, **env}, capture_output=True, text=True, check=False, timeout=600
    )


def wait_for(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def world(local_cloud: LocalCloudProcess, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """v1 of ``cells`` trained on 350 rows and champion."""
    cloud = local_cloud
    env = cloud.environ()
    tmp = tmp_path_factory.mktemp("retrain")
    spec = {
        "name": MODEL,
        "task": "classification",
        "target": {"name": "target", "classes": [0, 1]},
        "features": [{"name": name, "type": "float", "min": 0} for name in FEATURES],
        "allow_extra_columns": True,
        "row_count": {"min": 100},
        "training": {"estimator": "sklearn.linear_model.LogisticRegression", "params": {"max_iter": 2000}},
        "approval": {"required": False},
        "deployment": {"strategy": "all_at_once"},
        "monitoring": {"schedule": "rate(1 hour)", "min_rows": 50, "retrain_on_drift": True, "cooldown_hours": 24},
    }
    (tmp / "spec.yaml").write_text(yaml.safe_dump(spec))
    stored = mlops(env, "spec", "put", str(tmp / "spec.yaml"), "--actor", "alice")
    assert stored.returncode == 0, stored.stderr
    DATA.iloc[:350].to_csv(tmp / "train.csv", index=False)
    uploaded = mlops(
        signed_as(env, "scientist"), "--json", "data", "upload", str(tmp / "train.csv"), "--model", MODEL, "--wait"
    )
    assert uploaded.returncode == 0, uploaded.stderr
    version = json.loads(uploaded.stdout)["run"]["output"]["version"]
    registry = Registry.for_dynamodb(
        cloud.client("dynamodb"),
        registry_table=parameter(cloud, "registry-table"),
        audit_table=parameter(cloud, "audit-table"),
    )
    wait_for(lambda: registry.get_model(MODEL).champion == version, 180, "v1 to become champion")
    return {
        "cloud": cloud,
        "env": env,
        "tmp": tmp,
        "version": version,
        "registry": registry,
        "bucket": parameter(cloud, "data-bucket"),
        "training": parameter(cloud, "training-state-machine-arn"),
    }


def send(world: dict[str, Any], rows: pd.DataFrame) -> list[tuple[str, int]]:
    """Post the rows' features in batches of 10 over signed HTTP; (request id, index) of each row."""
    cloud, s3 = world["cloud"], world["cloud"].client("s3")
    keys = []
    records = json.loads(rows[FEATURES].to_json(orient="records"))
    for start in range(0, len(records), 10):
        status, answer = cloud.api("POST", f"models/{MODEL}/predict", {"records": records[start : start + 10]})
        assert status == 200, answer
        keys.extend((answer["request_id"], i) for i in range(len(answer["predictions"])))
    wanted = {rid for rid, _ in keys}

    def captured() -> bool:
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=world["bucket"], Prefix=f"captures/{MODEL}/")
        found = {o["Key"].rsplit("/", 1)[-1].removesuffix(".jsonl") for p in pages for o in p.get("Contents", [])}
        return wanted <= found

    wait_for(captured, 60, "the captures")
    return keys


def training_runs(world: dict[str, Any]) -> list[dict[str, Any]]:
    sfn = world["cloud"].client("stepfunctions")
    runs = []
    for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=world["training"]):
        for execution in page["executions"]:
            if execution["name"].startswith(f"{MODEL}-"):
                described = sfn.describe_execution(executionArn=execution["executionArn"])
                runs.append({**execution, "input": json.loads(described["input"])})
    return runs


def retrain_events(world: dict[str, Any]) -> list[Any]:
    events, _ = world["registry"].audit.list_events(MODEL, limit=200)
    return [e for e in reversed(events) if e.action.startswith("monitor.retrain")]


def test_drift_without_new_data_starts_nothing_and_says_why(world: dict[str, Any]) -> None:
    # GIVEN shifted traffic, and no data newer than the champion's (no dataset upload, no labels)
    rows = DATA.iloc[350:460].copy()
    rows[SHIFTED] = rows[SHIFTED] * 1.3
    world["traffic"] = (rows, send(world, rows))
    before = training_runs(world)
    # WHEN `mlops monitor run` checks it
    result = mlops(world["env"], "monitor", "run", MODEL)
    # THEN it drifts and prints why no retrain started, naming the champion's dataset
    assert result.returncode == 0, result.stderr
    assert "DRIFTED" in result.stdout
    assert "  retraining skipped: no dataset newer than the champion's (v1: datasets/cells/train.csv version " in (
        result.stdout
    )
    assert "no dataset from labelled captures: no labels uploaded in the last 7 day(s)" in result.stdout
    # AND no training run started, no version number was spent
    assert training_runs(world) == before and world["registry"].get_model(MODEL).latest_version == 1
    # AND the skip is audited and recorded with the run
    events = retrain_events(world)
    assert [e.action for e in events] == ["monitor.retrain_skipped"] and events[0].after["code"] == "no_new_data"
    assert list_monitor_runs(world["registry"], MODEL)[0]["retrain"]["reason"] == events[0].after["reason"]


def test_labelled_captures_make_a_dataset_version_that_trains_exactly_once(world: dict[str, Any]) -> None:
    rows, keys = world["traffic"]
    # GIVEN the true outcomes of the 110 drifted requests, uploaded with `mlops labels upload`
    labels = world["tmp"] / "labels.csv"
    pd.DataFrame(
        {"request_id": [k[0] for k in keys], "index": [k[1] for k in keys], "target": rows["target"].tolist()}
    ).to_csv(labels, index=False)
    uploaded = mlops(world["env"], "labels", "upload", str(labels), "--model", MODEL, "--actor", "dana")
    assert uploaded.returncode == 0, uploaded.stderr
    # AND more drifted traffic (the window of the next check)
    more = DATA.iloc[460:520].copy()
    more[SHIFTED] = more[SHIFTED] * 1.3
    send(world, more)
    # WHEN the monitor runs
    result = mlops(world["env"], "--json", "monitor", "run", MODEL)
    assert result.returncode == 0, result.stderr
    retrain = json.loads(result.stdout)["retrain"]
    # THEN it started a retrain on a new dataset version: the champion's 350 rows + 110 labelled captures
    assert retrain["action"] == "started", retrain
    data = retrain["data"]
    assert data["source"] == "captures+labels" and data["key"].startswith(f"datasets/{MODEL}/captures-")
    assert (data["base_rows"], data["labelled_rows"], data["rows"]) == (350, 110, 460)
    # AND the dataset version is recorded with its lineage
    record = DatasetCatalog(world["registry"]).get(MODEL, data["version_id"])
    lineage = record.extra["lineage"]
    assert lineage["source"] == "captures+labels" and lineage["labelled_rows"] == 110
    assert lineage["base_dataset"]["key"] == f"datasets/{MODEL}/train.csv" and len(lineage["label_objects"]) == 1

    # WHEN the training run finishes (the bucket's event for the object was delivered long before)
    def finished() -> Any:
        on_it = [r for r in training_runs(world) if r["input"]["upload"]["key"] == data["key"]]
        return on_it if on_it and all(r["status"] != "RUNNING" for r in on_it) else None

    runs = wait_for(finished, 300, "the retrain")
    # THEN exactly one run trained on it, and it succeeded
    assert [r["name"] for r in runs] == [retrain["execution_name"]] and runs[0]["status"] == "SUCCEEDED"
    # AND the bucket's event for the object did reach the starter, which asked for that same name
    deliveries = [d for d in world["cloud"].status()["deliveries"] if data["key"] in d["input"]]
    assert len(deliveries) == 1, deliveries
    starter = json.loads(deliveries[0]["result"]["attempts"][-1]["payload"])
    assert starter["execution_name"] == retrain["execution_name"], starter
    # AND v2 is registered (trained on new data: a version number well spent) with that dataset as lineage
    v2 = world["registry"].get_version(MODEL, 2)
    assert (v2.dataset_version or {})["version_id"] == data["version_id"]
    assert [e.action for e in retrain_events(world)] == ["monitor.retrain_skipped", "monitor.retrain_started"]
