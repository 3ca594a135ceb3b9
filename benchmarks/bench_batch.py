"""Batch scoring: rows per second through the local batch pipeline against one onnxruntime loop, and cost.

Starts the local cloud on the synthesized assembly, makes a 20-tree forest on ISLP Default
(student, balance, income; trained in process on the file's first 6,000 rows) champion with its
ONNX export, writes ``--rows`` rows resampled from the other 4,000 real rows under
``batch/bench-batch/``, and measures, in the same run:

- pipeline: the job the upload starts (``statemachines/batch.asl.json`` through the local cloud:
  Start, the Distributed Map's ItemReader and ItemBatcher, Score per batch in Lambda execution
  environments, Finish), from the upload to the execution's end;
- baseline: one process, one loop over the same file: the same typing (``RowTyper``), request
  validation and ``OnnxPredictor`` per batch of ``batch_size`` rows, no S3 and no orchestration.

Cost per million rows at list prices (us-east-1, stated as the constants below), from what was
measured: Lambda GB-seconds (each invocation's duration from the local runtime's records, times
the function's memory: 1,769 MB, arm64) and requests; Step Functions standard state transitions
(the parent's four states plus one per child execution, as Step Functions bills a Distributed
Map's standard children); S3 requests the job made (counted from its objects). Against SageMaker
Batch Transform on its smallest instance (``SAGEMAKER_INSTANCE``), billed for the baseline's
compute time per million rows; its instance start-up (minutes, billed) is not included, which
favours SageMaker.

The local pipeline runs Lambda environments as local processes on this machine's cores, so its
rows per second are a floor for this machine, not AWS's concurrency; the cost uses the measured
per-invocation durations, which do not depend on how many ran at once.

Run: ``python benchmarks/bench_batch.py [--rows 100000]``.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MODEL = "bench-batch"
# List prices, us-east-1 (2026-11): what the cost lines multiply.
LAMBDA_GB_SECOND_ARM64 = 0.0000133334
LAMBDA_REQUEST = 0.20 / 1_000_000
STATE_TRANSITION = 0.025 / 1_000
S3_PUT = 0.005 / 1_000
S3_GET = 0.0004 / 1_000
SAGEMAKER_INSTANCE = ("ml.m5.large", 0.115)  # the smallest Batch Transform instance, per hour
SCORE_MEMORY_GB = 1769 / 1024
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


def real_rows() -> tuple[list[str], list[list[str]]]:
    sys.path.insert(0, str(ROOT))
    from tests.conformance.datasets import DEFAULT  # the pinned public dataset (requirements-data.txt)

    header, lines = DEFAULT.lines()
    return next(csv.reader([header.decode()])), [next(csv.reader([line.decode()])) for line in lines]


def make_file(names: list[str], pool: list[list[str]], rows: int) -> bytes:
    rng = random.Random(11)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(names)
    writer.writerows(rng.choice(pool) for _ in range(rows))
    return out.getvalue().encode()


def baseline(body: bytes, spec: Any, onnx: bytes, batch_size: int) -> float:
    """Seconds for one process to type, validate and predict every row, a batch at a time."""
    from mlops.batch.rows import RowTyper
    from mlops.serving.requests import request_models
    from mlops.training.onnx_model import OnnxPredictor

    started = time.perf_counter()
    predictor = OnnxPredictor(onnx, spec)
    requests = request_models(spec, spec_revision=1, max_batch_size=batch_size)
    typer = RowTyper(spec)
    reader = csv.DictReader(io.StringIO(body.decode()))
    batch: list[dict[str, Any]] = []
    scored = 0
    for row in reader:
        batch.append(typer.csv(row))
        if len(batch) == batch_size:
            scored += len(predictor.predict(requests.validator.validate(batch) or []).predictions)
            batch = []
    if batch:
        scored += len(predictor.predict(requests.validator.validate(batch) or []).predictions)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()

    import pandas as pd

    from mlops.batch.runs import object_job_id
    from mlops.registry.specs import SpecStore
    from mlops.registry.versions import Registry
    from mlops.spec.model import parse_spec
    from mlops.training.export import ONNX_TAG_URI
    from mlops.training.fit import train
    from mlops.training.runs import wait_run
    from mlops_local.testing import LocalCloudProcess, serve_as_champion, synthesize_once

    names, rows = real_rows()
    spec = parse_spec(SPEC)
    frame = pd.DataFrame(rows[:6000], columns=names).astype({"balance": float, "income": float})
    pipeline = train(frame[["student", "balance", "income", "default"]], spec).pipeline
    body = make_file(names, rows[6000:], args.rows)

    cloud = LocalCloudProcess(synthesize_once("dev", ROOT), "--no-schedules")
    cloud.start()
    try:
        ssm = cloud.client("ssm")

        def parameter(leaf: str) -> str:
            return str(ssm.get_parameter(Name=f"/mlops/dev/{leaf}")["Parameter"]["Value"])

        registry = Registry.for_dynamodb(
            cloud.client("dynamodb"), registry_table=parameter("registry-table"), audit_table=parameter("audit-table")
        )
        bucket, s3, sfn = parameter("data-bucket"), cloud.client("s3"), cloud.client("stepfunctions")
        revision = SpecStore(registry).put(spec, actor="bench").revision
        version = serve_as_champion(registry, s3, bucket, spec, pipeline, spec_revision=revision, prefix="bench")
        onnx_uri = registry.get_version(MODEL, version).tags[ONNX_TAG_URI]
        onnx = s3.get_object(Bucket=bucket, Key=onnx_uri.split("/", 3)[3])["Body"].read()

        key = f"batch/{MODEL}/bench.csv"
        started = time.perf_counter()
        put = s3.put_object(Bucket=bucket, Key=key, Body=body)
        job_id = object_job_id(MODEL, key, put["VersionId"])
        run = wait_run(sfn, parameter("batch-state-machine-arn"), job_id, timeout_s=3600)
        pipeline_s = time.perf_counter() - started
        if run.status != "SUCCEEDED":
            print(f"the job ended {run.status}: {run.error} {run.cause}")
            return 1
        output = json.loads(sfn.describe_execution(executionArn=run.arn)["output"])
        manifest = output["manifest"]
        invocations = [i for i in cloud.status()["invocations"] if "Batch" in i["function"]]
        # What `mlops batch show` prints for the job (docs/batch.md shows it).
        shown = subprocess.run(
            [sys.executable, "-m", "mlops_cli.main", "batch", "show", job_id],
            env={**os.environ, **cloud.environ()},
            capture_output=True,
            text=True,
            check=False,
        )
        print(f"$ mlops batch show {job_id}\n{shown.stdout}{shown.stderr}")
    finally:
        cloud.stop()

    batch_size = math.ceil(args.rows / manifest["batches"])
    baseline_s = baseline(body, spec, onnx, batch_size)
    batches = manifest["batches"]
    per_million = 1_000_000 / args.rows
    lambda_s = sum(i["duration_ms"] for i in invocations) / 1000
    lambda_cost = (
        lambda_s * SCORE_MEMORY_GB * LAMBDA_GB_SECOND_ARM64 + len(invocations) * LAMBDA_REQUEST
    ) * per_million
    transitions = 4 + batches
    sfn_cost = transitions * STATE_TRANSITION * per_million
    captured = math.ceil(batches * 0.1)
    puts = batches + 3 + captured + 1  # parts, output/errors/manifest, sampled captures, the upload itself
    gets = 2 + batches + math.ceil(batches / 1000)  # Start and the ItemReader read the input; Finish lists and reads
    s3_cost = (puts * S3_PUT + gets * S3_GET) * per_million
    instance, hourly = SAGEMAKER_INSTANCE
    sagemaker_cost = baseline_s * per_million / 3600 * hourly
    total = lambda_cost + sfn_cost + s3_cost
    print(f"rows {args.rows:,} in {batches} batch(es), {manifest['refused']} refused, job {job_id}")
    print(f"pipeline (local cloud): {pipeline_s:.1f} s = {args.rows / pipeline_s:,.0f} rows/s")
    print(f"baseline (one process, onnxruntime loop): {baseline_s:.2f} s = {args.rows / baseline_s:,.0f} rows/s")
    print(f"ratio pipeline/baseline rows/s: {baseline_s / pipeline_s:.3f}")
    print(
        f"Lambda: {len(invocations)} invocations, {lambda_s:.1f} s measured, "
        f"{lambda_s * per_million / 60:.1f} min per million rows"
    )
    print(
        f"cost per million rows: Lambda ${lambda_cost:.4f} + Step Functions ${sfn_cost:.4f} ({transitions} transitions)"
    )
    print(f"  + S3 ${s3_cost:.4f} ({puts} PUT, {gets} GET) = ${total:.4f}")
    print(
        f"SageMaker Batch Transform {instance} (${hourly}/h) for the baseline's compute time: "
        f"${sagemaker_cost:.4f} per million rows (start-up not included); ratio serverless/SageMaker "
        f"{total / sagemaker_cost:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
