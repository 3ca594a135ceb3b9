"""Batch scoring on the local cloud: ``statemachines/batch.asl.json`` run as synthesized.

One model, ``batch-default``: ISLP Default (student, balance, income), a 20-tree forest trained
in process on the file's first 6,000 rows and made champion with its ONNX export, as the pipeline
registers it. A 200,000-row CSV resampled from the other 4,000 real rows, 40 of them broken, is
scored by ``mlops batch start --wait`` through the Distributed Map (ItemReader, ItemSelector and
ItemBatcher emulated by the local cloud); the output's order, counts and every prediction are
checked against onnxruntime run directly on the same rows. A second job meets injected failures of
the Score function after its write (the answer lost, the batch retried) and its output holds each
row once. A third is started by its upload under ``batch/<model>/``; ``mlops batch start`` on the
same object version joins it.
"""

from __future__ import annotations

import csv
import io
import json
import math
import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from mlops.batch.rows import RowTyper
from mlops.batch.runs import job_prefix, list_jobs, object_job_id
from mlops.registry.specs import SpecStore
from mlops.registry.versions import Registry
from mlops.spec.model import parse_spec
from mlops.training.export import ONNX_TAG_URI
from mlops.training.fit import train
from mlops.training.onnx_model import OnnxPredictor
from mlops.training.runs import wait_run
from mlops_local.testing import LocalCloudProcess, serve_as_champion
from tests.conformance.conftest import run_mlops
from tests.conformance.datasets import DEFAULT

MODEL = "batch-default"
ROOT = Path(__file__).resolve().parents[2]
DEV_BATCH_SIZE = int(json.loads((ROOT / "cdk.json").read_text())["context"]["mlops:environments"]["dev"]["batch_size"])
ROWS = 200_000
BROKEN = {"balance": "lots", "income": "-3", "student": "Maybe"}
SPEC = {
    "name": MODEL,
    "task": "classification",
    "target": {"name": "default", "classes": ["No", "Yes"]},
    "features": [
        {"name": "student", "type": "category", "allowed": ["No", "Yes"]},
        {"name": "balance", "type": "float", "min": 0},
        {"name": "income", "type": "float", "min": 0},
    ],
    "training": {
        "estimator": "sklearn.ensemble.RandomForestClassifier",
        "params": {"n_estimators": 20, "max_depth": 6},
        "search": None,
    },
}


def parameter(cloud: LocalCloudProcess, leaf: str) -> str:
    return str(cloud.client("ssm").get_parameter(Name=f"/mlops/dev/{leaf}")["Parameter"]["Value"])


@pytest.fixture(scope="module")
def champion(local_cloud: LocalCloudProcess) -> dict[str, Any]:
    import pandas as pd  # training side only

    header, lines = DEFAULT.lines()
    names = next(csv.reader([header.decode()]))
    rows = [next(csv.reader([line.decode()])) for line in lines]
    frame = pd.DataFrame(rows[:6000], columns=names).astype({"balance": float, "income": float})
    spec = parse_spec(SPEC)
    result = train(frame[["student", "balance", "income", "default"]], spec)
    registry = Registry.for_dynamodb(
        local_cloud.client("dynamodb"),
        registry_table=parameter(local_cloud, "registry-table"),
        audit_table=parameter(local_cloud, "audit-table"),
    )
    revision = SpecStore(registry).put(spec, actor="alice").revision
    bucket, s3 = parameter(local_cloud, "data-bucket"), local_cloud.client("s3")
    version = serve_as_champion(registry, s3, bucket, spec, result.pipeline, spec_revision=revision, prefix="batch")
    onnx_uri = registry.get_version(MODEL, version).tags[ONNX_TAG_URI]
    onnx = s3.get_object(Bucket=bucket, Key=onnx_uri.split("/", 3)[3])["Body"].read()
    return {"names": names, "rows": rows[6000:], "spec": spec, "onnx": onnx, "version": version, "bucket": bucket}


def resampled(champion: dict[str, Any], n: int, broken: int, seed: int) -> tuple[bytes, list[list[str]], set[int]]:
    """``n`` real rows drawn with replacement, ``broken`` of them given a value the spec refuses."""
    rng = random.Random(seed)
    names, pool = champion["names"], champion["rows"]
    rows = [list(rng.choice(pool)) for _ in range(n)]
    bad = set(rng.sample(range(n), broken))
    fields = sorted(BROKEN)
    for index in bad:
        name = fields[index % len(fields)]
        rows[index][names.index(name)] = BROKEN[name]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(names)
    writer.writerows(rows)
    return out.getvalue().encode(), rows, bad


def start(
    local_cloud: LocalCloudProcess, champion: dict[str, Any], key: str, body: bytes, identity: str = "testing"
) -> dict[str, Any]:
    local_cloud.client("s3").put_object(Bucket=champion["bucket"], Key=key, Body=body)
    uri = f"s3://{champion['bucket']}/{key}"
    env = local_cloud.environ(identity)
    result = run_mlops("batch", "start", MODEL, uri, "--wait", "--timeout", "1500", env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    job: dict[str, Any] = json.loads(result.stdout)
    assert job["status"] == "SUCCEEDED"
    # started through the batch API: the starter is the identity the gateway verified
    assert job["manifest"]["started_by"] == job["manifest"]["actor"]
    assert job["manifest"]["started_by"].endswith(f":user/{identity}"), job["manifest"]
    return job


def lines_of(local_cloud: LocalCloudProcess, bucket: str, key: str) -> list[dict[str, Any]]:
    body = local_cloud.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    return [json.loads(line) for line in body.splitlines()]


def test_200k_real_shaped_rows_are_scored_in_order_and_refused_rows_reported(
    local_cloud: LocalCloudProcess, champion: dict[str, Any]
) -> None:
    # GIVEN 200,000 resampled real rows, 40 of them with a value the spec refuses
    body, rows, bad = resampled(champion, ROWS, 40, seed=19)
    # WHEN scored by `mlops batch start --wait`
    job = start(local_cloud, champion, f"batch/{MODEL}-nightly.csv", body)  # no upload job: the CLI starts it
    manifest = job["manifest"]
    # THEN every row is accounted for once
    assert (manifest["rows"], manifest["scored"], manifest["refused"]) == (ROWS, ROWS - 40, 40)
    assert manifest["version"] == champion["version"]
    # (the dev stage's batch_size rows per batch: 119 bytes at most per item, within 256 KiB)
    assert manifest["batches"] == math.ceil(ROWS / DEV_BATCH_SIZE)
    errors = lines_of(local_cloud, champion["bucket"], manifest["errors"]["key"])
    assert [e["row"] for e in errors] == sorted(bad)
    names = champion["names"]
    for error in errors:
        assert rows[error["row"]][names.index(error["field"])] == BROKEN[error["field"]], error
    # AND the output is in input order, each prediction onnxruntime's on the same row
    results = lines_of(local_cloud, champion["bucket"], manifest["output"]["key"])
    assert [r["row"] for r in results] == [i for i in range(ROWS) if i not in bad]
    typer = RowTyper(champion["spec"])
    records = [typer.csv(dict(zip(names, rows[r["row"]], strict=True))) for r in results]
    direct = OnnxPredictor(champion["onnx"], champion["spec"]).predict(records)
    assert [r["prediction"] for r in results] == direct.predictions
    assert [list(r["probabilities"].values()) for r in results] == direct.probabilities
    # AND `mlops batch show` and `list` find the job
    shown = run_mlops("batch", "show", job["job_id"], env=local_cloud.environ())
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["manifest"]["output"]["sha256"] == manifest["output"]["sha256"]
    listed = run_mlops("batch", "list", MODEL, env=local_cloud.environ())
    assert job["job_id"] in [j["job_id"] for j in json.loads(listed.stdout)["jobs"]]


def test_a_batch_that_fails_after_its_write_is_retried_without_a_duplicate_row(
    local_cloud: LocalCloudProcess, champion: dict[str, Any]
) -> None:
    # GIVEN the Score function's next two answers lost after it wrote its batch
    body, _, bad = resampled(champion, 5_000, 5, seed=23)
    local_cloud.add_faults(
        {"kind": "function.error", "target": "BatchScoreFunction", "phase": "after", "count": 2, "match": MODEL}
    )
    try:
        # WHEN a job runs
        job = start(local_cloud, champion, f"batch/{MODEL}-retried.csv", body, identity="scientist")
    finally:
        applied = local_cloud.clear_faults()["applied"]
    # THEN both faults were met, and the output still holds each row once, in order
    assert len([a for a in applied if "BatchScoreFunction" in a["where"]]) == 2
    manifest = job["manifest"]
    assert (manifest["rows"], manifest["refused"]) == (5_000, 5)
    results = lines_of(local_cloud, champion["bucket"], manifest["output"]["key"])
    assert [r["row"] for r in results] == [i for i in range(5_000) if i not in bad]


def test_an_upload_under_batch_starts_one_job_which_the_cli_joins(
    local_cloud: LocalCloudProcess, champion: dict[str, Any]
) -> None:
    # GIVEN a file put under batch/<model>/ (the bucket's event starts its job)
    body, _, _ = resampled(champion, 1_000, 0, seed=29)
    key = f"batch/{MODEL}/uploaded.csv"
    put = local_cloud.client("s3").put_object(Bucket=champion["bucket"], Key=key, Body=body)
    job_id = object_job_id(MODEL, key, put["VersionId"])
    sfn = local_cloud.client("stepfunctions")
    arn = parameter(local_cloud, "batch-state-machine-arn")
    finished = wait_run(sfn, arn, job_id, timeout_s=600)
    # THEN the upload's job scored it
    assert finished.status == "SUCCEEDED"
    # AND `mlops batch start` on the same object version joins that job instead of scoring it again
    uri = f"s3://{champion['bucket']}/{key}"
    result = run_mlops("batch", "start", MODEL, uri, env=local_cloud.environ())
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "started": False,
        "duplicate": True,
        "job_id": job_id,
        "prefix": job_prefix(job_id),
        "started_by": f"upload:{key}@{put['VersionId']}",
        "trigger": "upload",
    }
    assert len([j for j in list_jobs(sfn, arn, MODEL, limit=100) if j["job_id"] == job_id]) == 1


def _score_invocations(local_cloud: LocalCloudProcess) -> int:
    return sum("BatchScore" in str(i.get("name") or i.get("function")) for i in local_cloud.status()["invocations"])


def test_a_failed_job_is_redriven_and_only_its_failed_batches_run_again(
    local_cloud: LocalCloudProcess, champion: dict[str, Any]
) -> None:
    # GIVEN a job of 3 batches (dev's batch_size) whose first two Score invocations fail with an error
    # no Retry matches
    body, _, bad = resampled(champion, 5_000, 3, seed=31)
    key = f"batch/{MODEL}-redriven.csv"  # outside batch/<model>/: the CLI starts it
    put = local_cloud.client("s3").put_object(Bucket=champion["bucket"], Key=key, Body=body)
    local_cloud.add_faults(
        {
            "kind": "function.error",
            "target": "BatchScoreFunction",
            "phase": "before",
            "error_type": "InjectedBatchFault",
            "count": 2,
            "match": [MODEL, "redriven.csv"],
        }
    )
    env = local_cloud.environ()
    uri = f"s3://{champion['bucket']}/{key}"
    try:
        failed = run_mlops("batch", "start", MODEL, uri, "--wait", "--timeout", "900", env=env)
    finally:
        applied = local_cloud.clear_faults()["applied"]
    # THEN the job fails at its Map (exit 1), both faults met
    assert failed.returncode == 1, failed.stderr[-2000:]
    assert len([a for a in applied if a.get("error_type") == "InjectedBatchFault"]) == 2
    job_id = object_job_id(MODEL, key, put["VersionId"])
    shown = json.loads(run_mlops("batch", "show", job_id, env=env).stdout)
    assert (shown["status"], shown["error"]) == ("FAILED", "States.ExceedToleratedFailureThreshold"), shown
    # WHEN `mlops batch redrive` resumes it
    before = _score_invocations(local_cloud)
    redriven = run_mlops("batch", "redrive", job_id, "--wait", "--timeout", "900", env=env)
    assert redriven.returncode == 0, redriven.stderr[-3000:]
    job = json.loads(redriven.stdout)
    # THEN only the two failed batches were scored again, and the output holds each row once, in order
    assert job["status"] == "SUCCEEDED"
    assert _score_invocations(local_cloud) - before == 2
    manifest = job["manifest"]
    assert (manifest["rows"], manifest["refused"]) == (5_000, 3)
    assert manifest["batches"] == math.ceil(5_000 / DEV_BATCH_SIZE) > 2
    results = lines_of(local_cloud, champion["bucket"], manifest["output"]["key"])
    assert [r["row"] for r in results] == [i for i in range(5_000) if i not in bad]
    # AND a redrive of the SUCCEEDED job is refused (exit 2)
    assert run_mlops("batch", "redrive", job_id, env=env).returncode == 2


def test_a_scheduled_job_runs_once_however_many_ticks_fire_at_its_time(
    local_cloud: LocalCloudProcess, champion: dict[str, Any]
) -> None:
    # GIVEN the model's spec with a batch schedule, and its input (its upload starts a job of its own)
    registry = Registry.for_dynamodb(
        local_cloud.client("dynamodb"),
        registry_table=parameter(local_cloud, "registry-table"),
        audit_table=parameter(local_cloud, "audit-table"),
    )
    key = f"batch/{MODEL}/scheduled.csv"
    body, _, _ = resampled(champion, 800, 0, seed=37)
    put = local_cloud.client("s3").put_object(Bucket=champion["bucket"], Key=key, Body=body)
    scheduled = {**SPEC, "batch": {"schedule": "rate(15 minutes)", "input": key}}
    SpecStore(registry).put(parse_spec(scheduled), actor="alice")
    (rule,) = [r["Name"] for r in local_cloud.client("events").list_rules()["Rules"] if "BatchSchedule" in r["Name"]]
    try:
        # WHEN two ticks of the platform's schedule rule fire at once (EventBridge delivers at least once)
        with ThreadPoolExecutor(2) as pool:
            ticks = list(pool.map(lambda _: local_cloud.fire(rule), range(2)))
    finally:
        SpecStore(registry).put(parse_spec(SPEC), actor="alice")  # no more scheduled jobs in this module
    assert all(d["error"] is None for deliveries in ticks for d in deliveries), ticks
    # THEN exactly one job of the due time exists, and it scored the input's version
    sfn, arn = local_cloud.client("stepfunctions"), parameter(local_cloud, "batch-state-machine-arn")
    jobs = [j for j in list_jobs(sfn, arn, MODEL, limit=100) if ".schedule-" in j["job_id"]]
    assert len(jobs) == 1, jobs
    finished = wait_run(sfn, arn, jobs[0]["job_id"], timeout_s=600)
    assert finished.status == "SUCCEEDED"
    shown = run_mlops("batch", "show", jobs[0]["job_id"], env=local_cloud.environ())
    job = json.loads(shown.stdout)
    manifest = job["manifest"]
    assert (manifest["rows"], manifest["trigger"]) == (800, "schedule")
    assert manifest["input"]["version_id"] == put["VersionId"]
    assert (
        manifest["started_by"].startswith("schedule:rate(15 minutes)@") and manifest["actor"] == manifest["started_by"]
    )
    # AND the job is in the model's audit chain, by the schedule
    events, _ = registry.audit.list_events(MODEL, limit=200)
    assert [e.actor for e in events if e.action == "batch.score" and jobs[0]["job_id"] in e.subject] == [
        manifest["started_by"]
    ]
