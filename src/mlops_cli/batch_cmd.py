"""``mlops batch start M s3://... [--version V] [--wait]``, ``list M``, ``show JOB``, ``redrive JOB [--wait]``."""

from __future__ import annotations

import json
import sys
import time
from typing import Any
from urllib.parse import quote

import click

from mlops.batch.runs import describe_job, job_prefix, list_jobs, parse_uri, redrive_job
from mlops.errors import CheckFailedError, ConflictError, InputError, MlopsError, NotFoundError
from mlops.registry.versions import check_model_name
from mlops.training.runs import WaitTimeoutError
from mlops_cli.common import AppContext, emit, json_option, pass_app, signed_request
from mlops_cli.progress import Progress

_ERRORS: dict[int, type[MlopsError]] = {
    400: InputError,
    403: CheckFailedError,
    404: NotFoundError,
    409: ConflictError,
}


def batch_state_machine(app: AppContext) -> str:
    arn = app.platform().batch_state_machine_arn
    if not arn:
        raise NotFoundError(f"environment {app.environment!r} has no batch pipeline deployed")
    return arn


def _text(job: dict[str, Any]) -> str:
    manifest = job.get("manifest")
    lines = [f"{job['job_id']}: {job['status']} (started {job.get('started')}, stopped {job.get('stopped') or '-'})"]
    given = job.get("input") or {}
    lines.append(f"  started by {given.get('started_by') or '-'} (trigger {given.get('trigger') or 'manual'})")
    if manifest:
        source = manifest["input"]
        lines += [
            f"  model {manifest['model']} v{manifest['version']}: {manifest['rows']} row(s), "
            f"{manifest['scored']} scored, {manifest['refused']} refused, {manifest['batches']} batch(es), "
            f"{manifest['duration_s']:.1f} s",
            f"  input:    {source['uri']} version {source['version_id']} sha256 {source['sha256'][:16]}...",
            f"  output:   {manifest['output']['uri']} (sha256 {manifest['output']['sha256'][:16]}...)",
            f"  errors:   {manifest['errors']['uri']}",
            f"  manifest: s3://{manifest['output']['uri'][5:].split('/', 1)[0]}/{manifest['manifest_key']}",
        ]
    elif job.get("error"):
        lines.append(f"  failed: {job['error']}: {(job.get('cause') or '')[:300]}")
    return "\n".join(lines)


def _parts(s3: Any, bucket: str, prefix: str) -> int:
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/parts/")
    return int(listed.get("KeyCount", 0))


def _wait(app: AppContext, arn: str, job_id: str, timeout: float) -> dict[str, Any]:
    """Poll the job until it stops, showing how many batches have been written."""
    session = app.session()
    sfn, s3 = session.client("stepfunctions"), session.client("s3")
    bucket = app.platform().data_bucket
    deadline = time.monotonic() + timeout
    with Progress(sys.stderr).phase(f"batch {job_id}") as phase:
        while True:
            job = describe_job(sfn, arn, job_id)
            if job["status"] != "RUNNING":
                return job
            if time.monotonic() > deadline:
                raise WaitTimeoutError(f"batch job {job_id} still RUNNING after {timeout:.0f} s (it goes on)")
            phase.update(f"{_parts(s3, bucket, job_prefix(job_id))} batch(es) scored")
            time.sleep(1.0)


@click.group("batch")
def command() -> None:
    """Batch scoring: a whole file in the data bucket scored by one pinned model version."""


@command.command("start")
@click.argument("model")
@click.argument("uri")
@click.option("--version", "version", type=click.IntRange(min=1), default=None, help="Score with this version.")
@click.option("--object-version", default=None, help="The input object's S3 VersionId (default: the newest).")
@click.option("--wait", is_flag=True, help="Wait for the job, showing progress, and print its manifest.")
@click.option("--timeout", default=3600.0, show_default=True, help="Seconds to wait (then exit 3; the job goes on).")
@json_option
@pass_app
def start(
    app: AppContext, model: str, uri: str, version: int | None, object_version: str | None, wait: bool, timeout: float
) -> None:
    """Score the object at URI (s3://BUCKET/batch/...) with MODEL's champion, or --version V."""
    check_model_name(model)
    parse_uri(uri)
    arn = batch_state_machine(app)
    body: dict[str, Any] = {"uri": uri}
    if object_version is not None:
        body["object_version"] = object_version
    if version is not None:
        body["version"] = version
    # Through the batch API (IAM): the job records the identity AWS verified as its starter.
    started = signed_request(
        app,
        "POST",
        f"models/{quote(model, safe='')}/batch-jobs",
        json.dumps(body).encode(),
        errors=_ERRORS,
        why_credentials="the batch API records who started a job from the credentials that sign the request",
        retry_unavailable=True,
    )
    what = "started" if started["started"] else f"already started by {started.get('started_by') or 'someone else'}:"
    if not wait:
        emit(app, started, f"{what} {started['job_id']}  (mlops batch show {started['job_id']})")
        return
    job = _wait(app, arn, started["job_id"], timeout)
    emit(app, job, _text(job))
    if job["status"] != "SUCCEEDED":
        raise CheckFailedError(f"batch job {job['job_id']} ended {job['status']}: {job.get('error') or ''}")


@command.command("list")
@click.argument("model")
@click.option("--limit", default=20, show_default=True)
@json_option
@pass_app
def list_(app: AppContext, model: str, limit: int) -> None:
    """MODEL's batch jobs, newest first."""
    check_model_name(model)
    jobs = list_jobs(app.session().client("stepfunctions"), batch_state_machine(app), model, limit=limit)
    lines = [f"{j['status']:<10} {j['started'] or '-':<33} {j['job_id']}" for j in jobs]
    emit(app, {"jobs": jobs}, "\n".join(lines) or f"{model}: no batch jobs yet")


@command.command("show")
@click.argument("job_id")
@json_option
@pass_app
def show(app: AppContext, job_id: str) -> None:
    """One job: status, counts, input version and sha256, output, errors and manifest objects."""
    job = describe_job(app.session().client("stepfunctions"), batch_state_machine(app), job_id)
    emit(app, job, _text(job))


@command.command("redrive")
@click.argument("job_id")
@click.option("--wait", is_flag=True, help="Wait for the job, showing progress, and print its manifest.")
@click.option("--timeout", default=3600.0, show_default=True, help="Seconds to wait (then exit 3; the job goes on).")
@json_option
@pass_app
def redrive(app: AppContext, job_id: str, wait: bool, timeout: float) -> None:
    """Resume JOB_ID, which ended FAILED, where it failed: only the work not done runs again."""
    arn = batch_state_machine(app)
    redriven = redrive_job(app.session().client("stepfunctions"), arn, job_id)
    if not wait:
        emit(app, redriven, f"redriven {job_id} at {redriven['redriven']}  (mlops batch show {job_id})")
        return
    job = _wait(app, arn, job_id, timeout)
    emit(app, job, _text(job))
    if job["status"] != "SUCCEEDED":
        raise CheckFailedError(f"batch job {job_id} ended {job['status']}: {job.get('error') or ''}")
