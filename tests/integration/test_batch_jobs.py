"""Batch scoring's steps on moto's S3 and DynamoDB: Start, every batch Scored, Finish.

The batches are cut from the object by the local cloud's Distributed Map emulation
(:func:`mlops_local.distributed_map.read_items`, the ItemReader + ItemSelector + ItemBatcher of
``statemachines/batch.asl.json``) and scored in a shuffled order, as concurrent child executions
finish; the output is checked row by row against onnxruntime run directly on the same rows. Data:
real rows of ISLP's Default (tests/conformance/datasets.py), resampled.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import random
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from mlops.batch import jobs, scoring
from mlops.batch.rows import RowTyper
from mlops.batch.services import BatchServices, BatchSettings
from mlops.contracts.batch import BatchInput, FinishRequest, Job, Row, ScoreRequest, StartRequest
from mlops.errors import InputError
from mlops.monitoring.captures import list_captures, read_records
from mlops.registry.specs import SpecStore
from mlops.registry.versions import Registry
from mlops.spec.model import parse_spec
from mlops.training.artifacts import sha256_hex
from mlops.training.export import ONNX_TAG_SHA256, ONNX_TAG_URI, export_onnx
from mlops.training.fit import train
from mlops.training.onnx_model import OnnxPredictor
from mlops_local.distributed_map import read_items
from mlops_local.patches import serialize_dynamodb
from tests.conformance.datasets import DEFAULT
from tests.integration.registry.conftest import AUDIT_TABLE, REGISTRY_TABLE, create_tables

BUCKET = "data"
MODEL = "default"
ASL = json.loads(open("statemachines/batch.asl.json").read())  # noqa: SIM115 - read once
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


@pytest.fixture(scope="module")
def default_rows() -> tuple[list[str], list[list[str]]]:
    header, lines = DEFAULT.lines()
    names = next(csv.reader([header.decode()]))
    return names, [next(csv.reader([line.decode()])) for line in lines]


@pytest.fixture(scope="module")
def onnx_model(default_rows: tuple[list[str], list[list[str]]]) -> tuple[Any, bytes]:
    import pandas as pd  # the training side only (scoring never imports it)

    names, rows = default_rows
    frame = pd.DataFrame(rows[:6000], columns=names)
    frame["balance"] = frame["balance"].astype(float)
    frame["income"] = frame["income"].astype(float)
    spec = parse_spec(SPEC)
    result = train(frame[["student", "balance", "income", "default"]], spec)
    return spec, export_onnx(result.pipeline, spec)


@pytest.fixture
def services(onnx_model: tuple[Any, bytes]) -> Iterator[BatchServices]:
    serialize_dynamodb()
    spec, data = onnx_model
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        create_tables(dynamodb)
        registry = Registry.for_dynamodb(dynamodb, registry_table=REGISTRY_TABLE, audit_table=AUDIT_TABLE)
        SpecStore(registry).put(spec, actor="alice")
        key = f"artifacts/{MODEL}/1/model.onnx"
        s3.put_object(Bucket=BUCKET, Key=key, Body=data)
        tags = {ONNX_TAG_URI: f"s3://{BUCKET}/{key}", ONNX_TAG_SHA256: sha256_hex(data)}
        version = registry.register_version(
            MODEL, actor="pipeline", spec_revision=1, artifact_uri=None, artifact_sha256=None, tags=tags
        )
        registry.approve(MODEL, version.version, actor="carol")
        registry.set_alias(MODEL, "champion", version.version, actor="carol")
        yield BatchServices(s3, registry, BUCKET, BatchSettings(batch_size=97, max_concurrency=4, capture_rate=0.0))


def sample(default_rows: tuple[list[str], list[list[str]]], n: int, seed: int = 7) -> tuple[list[str], list[list[str]]]:
    """``n`` rows drawn with replacement from the 4,000 rows the model did not train on."""
    names, rows = default_rows
    rng = random.Random(seed)
    return names, [list(rng.choice(rows[6000:])) for _ in range(n)]


def csv_bytes(names: list[str], rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(names)
    writer.writerows(rows)
    return out.getvalue().encode()


def run_job(services: BatchServices, key: str, *, seed: int = 0) -> tuple[Job, Any]:
    """Start, then every batch (in a shuffled order) as the Map would, then Finish."""
    name = f"{MODEL}.job-{seed}"
    job = jobs.start(
        StartRequest(input=BatchInput(model=MODEL, bucket=BUCKET, key=key, job_id=name), execution_name=name),
        services,
    )
    state = "ScoreJsonl" if job.reader == "JSONL" else "ScoreCsv"
    config = json.loads(
        json.dumps(
            {
                "ReaderConfig": ASL["States"][state]["ItemReader"]["ReaderConfig"],
                "ItemBatcher": ASL["States"][state]["ItemBatcher"],
                "ItemSelector": ASL["States"][state]["ItemSelector"],
            }
        )
    )
    body = services.s3.get_object(Bucket=BUCKET, Key=job.reader_key, VersionId=job.reader_version_id)["Body"]
    batches = read_items(config, body.read().decode(), {"job": job.model_dump(mode="json")}, {})
    random.Random(seed).shuffle(batches)
    for batch in batches:
        request = ScoreRequest(items=[Row(**i) for i in batch["Items"]], job=Job(**batch["BatchInput"]["job"]))
        scoring.score(request, services)
    return job, jobs.finish(FinishRequest(job=job), services, request_id="r-1")


def output_lines(services: BatchServices, key: str) -> list[dict[str, Any]]:
    body = services.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    return [json.loads(line) for line in body.splitlines()]


def test_a_csv_is_scored_in_input_order_with_refused_rows_named(
    services: BatchServices, default_rows: tuple[list[str], list[list[str]]], onnx_model: tuple[Any, bytes]
) -> None:
    # GIVEN 2,000 real rows, three of them broken (text for a number, a negative income, an unknown category)
    names, rows = sample(default_rows, 2000)
    rows[5][names.index("balance")] = "lots"
    rows[777][names.index("income")] = "-3"
    rows[1999][names.index("student")] = "Maybe"
    services.s3.put_object(Bucket=BUCKET, Key="batch/default/in.csv", Body=csv_bytes(names, rows))
    # WHEN the job runs (batches of 97, scored out of order)
    job, manifest = run_job(services, "batch/default/in.csv")
    # THEN every row is accounted for once: 1,997 scored in input order, 3 refused with their field
    assert (manifest.rows, manifest.scored, manifest.refused, manifest.batches) == (2000, 1997, 3, 21)
    errors = output_lines(services, manifest.errors["key"])
    assert [(e["row"], e["field"]) for e in errors] == [(5, "balance"), (777, "income"), (1999, "student")]
    assert all(e["why"] for e in errors)
    results = output_lines(services, manifest.output["key"])
    assert [r["row"] for r in results] == [i for i in range(2000) if i not in (5, 777, 1999)]
    assert {r["version"] for r in results} == {1}
    # AND the predictions are onnxruntime's on the same rows, run directly
    spec, data = onnx_model
    typer = RowTyper(spec)
    records = [typer.csv(dict(zip(names, rows[r["row"]], strict=True))) for r in results]
    direct = OnnxPredictor(data, spec).predict(records)
    assert [r["prediction"] for r in results] == direct.predictions
    assert [list(r["probabilities"].values()) for r in results] == direct.probabilities
    # AND the manifest pins what was scored: the input's VersionId and sha256, the output's sha256
    got = services.s3.get_object(Bucket=BUCKET, Key="batch/default/in.csv")
    assert manifest.input["version_id"] == got["VersionId"]
    assert manifest.input["sha256"] == sha256_hex(got["Body"].read())
    output = services.s3.get_object(Bucket=BUCKET, Key=manifest.output["key"])["Body"].read()
    assert manifest.output["sha256"] == sha256_hex(output)
    stored = json.loads(services.s3.get_object(Bucket=BUCKET, Key=manifest.manifest_key)["Body"].read())
    assert stored["output"]["sha256"] == manifest.output["sha256"]
    # AND the job is an audit event of the model's chain
    events = list(services.registry.audit.items(MODEL))
    assert [e["action"] for e in events][-1] == "batch.score"
    after = events[-1]["after"]
    assert (json.loads(after) if isinstance(after, str) else after)["trigger"] == job.trigger
    assert job.actor == f"pipeline:{MODEL}.job-0"


def test_order_of_batches_and_a_retried_batch_change_nothing(
    services: BatchServices, default_rows: tuple[list[str], list[list[str]]]
) -> None:
    # GIVEN one input scored twice, the batches finishing in two different orders
    names, rows = sample(default_rows, 700, seed=3)
    services.s3.put_object(Bucket=BUCKET, Key="batch/default/a.csv", Body=csv_bytes(names, rows))
    _, first = run_job(services, "batch/default/a.csv", seed=1)
    _, second = run_job(services, "batch/default/a.csv", seed=2)
    # THEN the outputs are byte for byte the same
    assert first.output["sha256"] == second.output["sha256"]
    # WHEN the second job's batches all run again into the same prefix (a redrive after their writes)
    _, again = run_job(services, "batch/default/a.csv", seed=2)
    assert again.output["sha256"] == first.output["sha256"]
    assert again.rows == 700


def test_permuted_columns_and_shuffled_rows_give_each_row_the_same_prediction(
    services: BatchServices, default_rows: tuple[list[str], list[list[str]]]
) -> None:
    # GIVEN 600 real rows (two broken), and the same file with its columns in another order and its
    # rows shuffled (an extra id column the spec does not name, to follow each row)
    names, rows = sample(default_rows, 600, seed=41)
    rows[10][names.index("income")] = "-3"
    rows[444][names.index("student")] = "Maybe"
    with_id = ["id", *names]
    original = [[str(i), *row] for i, row in enumerate(rows)]
    order = list(reversed(with_id))  # every column moves
    shuffled = original[:]
    random.Random(43).shuffle(shuffled)
    permuted = [[row[with_id.index(c)] for c in order] for row in shuffled]
    services.s3.put_object(Bucket=BUCKET, Key="batch/default/orig.csv", Body=csv_bytes(with_id, original))
    services.s3.put_object(Bucket=BUCKET, Key="batch/default/perm.csv", Body=csv_bytes(order, permuted))
    # WHEN both are scored
    _, first = run_job(services, "batch/default/orig.csv", seed=1)
    _, second = run_job(services, "batch/default/perm.csv", seed=2)
    # THEN each input row (by its id) has the same prediction and probabilities, and the same refusal
    ids = [int(row[order.index("id")]) for row in permuted]  # the permuted file's row -> the original's

    def by_id(lines: list[dict[str, Any]], to_id: Any) -> dict[int, tuple[Any, ...]]:
        return {to_id(line["row"]): tuple(v for k, v in sorted(line.items()) if k != "row") for line in lines}

    assert (first.scored, first.refused) == (second.scored, second.refused) == (598, 2)
    a = by_id(output_lines(services, first.output["key"]), lambda r: r)
    b = by_id(output_lines(services, second.output["key"]), lambda r: ids[r])
    assert a == b and len(a) == 598
    errors_a = by_id(output_lines(services, first.errors["key"]), lambda r: r)
    errors_b = by_id(output_lines(services, second.errors["key"]), lambda r: ids[r])
    assert errors_a == errors_b and sorted(errors_a) == [10, 444]


def test_a_missing_batch_fails_the_job_instead_of_writing_a_short_output(
    services: BatchServices, default_rows: tuple[list[str], list[list[str]]]
) -> None:
    names, rows = sample(default_rows, 300)
    services.s3.put_object(Bucket=BUCKET, Key="batch/default/b.csv", Body=csv_bytes(names, rows))
    job, _ = run_job(services, "batch/default/b.csv")
    # GIVEN a job whose second batch's result object is lost
    services.s3.delete_object(Bucket=BUCKET, Key=scoring.part_key(job.prefix, 97))
    # WHEN Finish runs THEN it names the missing rows
    with pytest.raises(jobs.BatchIncompleteError, match=re.escape("rows 97..193 are missing")):
        jobs.finish(FinishRequest(job=job), services)


def test_gzip_csv_and_json_lines_score_like_the_csv(
    services: BatchServices, default_rows: tuple[list[str], list[list[str]]]
) -> None:
    names, rows = sample(default_rows, 400, seed=5)
    plain = csv_bytes(names, rows)
    services.s3.put_object(Bucket=BUCKET, Key="batch/default/p.csv", Body=plain)
    services.s3.put_object(Bucket=BUCKET, Key="batch/default/p.csv.gz", Body=gzip.compress(plain))
    at = {name: names.index(name) for name in ("student", "balance", "income")}
    typed = [
        {"student": r[at["student"]], "balance": float(r[at["balance"]]), "income": float(r[at["income"]])}
        for r in rows
    ]
    lines = "".join(json.dumps(t) + "\n" for t in typed).encode()
    services.s3.put_object(Bucket=BUCKET, Key="batch/default/p.jsonl", Body=lines)
    outputs = {}
    for key in ("batch/default/p.csv", "batch/default/p.csv.gz", "batch/default/p.jsonl"):
        job, manifest = run_job(services, key)
        outputs[job.format] = [(r["row"], r["prediction"]) for r in output_lines(services, manifest.output["key"])]
        assert manifest.rows == 400
    assert outputs["csv"] == outputs["csv.gz"] == outputs["jsonl"]


@pytest.mark.parametrize(
    ("key", "body", "message"),
    [
        ("batch/default/no-income.csv", b"student,balance\nNo,1.0\n", "lacks the column(s) the spec requires: income"),
        ("batch/default/empty.csv", b"", "is empty"),
        ("datasets/default/x.csv", b"student,balance,income\nNo,1,2\n", "batch inputs are read under"),
    ],
)
def test_an_unusable_input_is_refused_at_start_with_what_is_wrong(
    services: BatchServices, key: str, body: bytes, message: str
) -> None:
    services.s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    with pytest.raises(InputError, match=re.escape(message)):
        jobs.start(StartRequest(input=BatchInput(model=MODEL, bucket=BUCKET, key=key)), services)


def test_scored_rows_feed_the_models_capture_store_as_the_drift_check_reads_it(
    services: BatchServices, default_rows: tuple[list[str], list[list[str]]]
) -> None:
    # GIVEN a deployment that captures every batch (capture_rate 1; the stack's default samples 10%)
    services.settings = BatchSettings(batch_size=97, max_concurrency=4, capture_rate=1.0)
    names, rows = sample(default_rows, 300, seed=9)
    rows[10][names.index("balance")] = "lots"
    services.s3.put_object(Bucket=BUCKET, Key="batch/default/c.csv", Body=csv_bytes(names, rows))
    # WHEN the job runs
    _, manifest = run_job(services, "batch/default/c.csv")
    # THEN the monitoring room finds the scored rows in the model's capture window, as batch traffic
    now = datetime.now(UTC)
    window = (now - timedelta(hours=1), now + timedelta(hours=1))
    keys = [key for key, _ in list_captures(services.s3, BUCKET, MODEL, *window)]
    records = read_records(services.s3, BUCKET, keys)
    assert len(records) == manifest.captured == manifest.scored == 299
    assert {r["role"] for r in records} == {"batch"} and {r["version"] for r in records} == {1}
    assert {"student", "balance", "income"} <= set(records[0]["input"])
