"""Batch jobs as executions of the batch state machine: started, listed and described.

A job's execution is named ``<model>.<UTC stamp>-<8 hex>`` (a model name holds no ``.``, so one
model's jobs are exactly the names starting ``<model>.``); the job id is that name and its results
live under ``batch-jobs/<model>/<job id>/``. Used by the CLI, the upload starter and the scheduler.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote_plus

from botocore.exceptions import ClientError

from mlops.contracts.batch import BatchInput
from mlops.contracts.names import BATCH_INPUT_PREFIX, BATCH_JOB_PREFIX
from mlops.errors import InputError, NotFoundError
from mlops.spec.view import MODEL_NAME
from mlops.training.history import iso_time
from mlops.training.runs import execution_arn


def job_name(model: str, at: datetime | None = None) -> str:
    """``churn.20261206T130501Z-1a2b3c4d``: unique, sortable by start, and names its model."""
    stamp = (at or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    return f"{model}.{stamp}-{uuid.uuid4().hex[:8]}"


def job_model(name: str) -> str:
    return name.split(".", 1)[0]


def job_prefix(name: str) -> str:
    return f"{BATCH_JOB_PREFIX}/{job_model(name)}/{name}"


def parse_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` -> (bucket, key); anything else is refused with the form named."""
    if not uri.startswith("s3://") or "/" not in uri[5:] or uri.endswith("/"):
        raise InputError(f"{uri!r} is not an object's URI (s3://BUCKET/KEY)")
    bucket, key = uri[5:].split("/", 1)
    return bucket, key


def start_job(sfn: Any, state_machine_arn: str, request: BatchInput) -> dict[str, Any]:
    """Start one job; the answer names its execution and where its results go."""
    name = request.job_id or job_name(request.model)
    document = request.model_copy(update={"job_id": name}).model_dump(mode="json", exclude_none=True)
    started = sfn.start_execution(stateMachineArn=state_machine_arn, name=name, input=json.dumps(document))
    return {
        "job_id": name,
        "execution_arn": started["executionArn"],
        "model": request.model,
        "input": f"s3://{request.bucket}/{request.key}",
        "prefix": job_prefix(name),
    }


def list_jobs(sfn: Any, state_machine_arn: str, model: str, *, limit: int = 20) -> list[dict[str, Any]]:
    """``model``'s newest jobs (name, status, start and stop)."""
    found: list[dict[str, Any]] = []
    for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=state_machine_arn):
        for item in page["executions"]:
            if job_model(item["name"]) != model or "." not in item["name"]:
                continue
            found.append(
                {
                    "job_id": item["name"],
                    "status": item["status"],
                    "started": iso_time(item.get("startDate")),
                    "stopped": iso_time(item.get("stopDate")),
                }
            )
            if len(found) >= limit:
                return found
    return found


def describe_job(sfn: Any, state_machine_arn: str, job_id: str) -> dict[str, Any]:
    """A job's execution status, its output (the manifest) and, if it failed, why."""
    try:
        described = sfn.describe_execution(executionArn=execution_arn(state_machine_arn, job_id))
    except sfn.exceptions.ExecutionDoesNotExist:
        raise NotFoundError(f"batch job {job_id!r} does not exist") from None
    output = json.loads(described.get("output") or "null") or {}
    return {
        "job_id": job_id,
        "status": described["status"],
        "started": iso_time(described.get("startDate")),
        "stopped": iso_time(described.get("stopDate")),
        "input": json.loads(described.get("input") or "{}"),
        "manifest": output.get("manifest"),
        "error": described.get("error"),
        "cause": described.get("cause"),
        "prefix": job_prefix(job_id),
    }


def redrive_job(sfn: Any, state_machine_arn: str, job_id: str) -> dict[str, Any]:
    """Redrive a job that ended FAILED, TIMED_OUT or ABORTED (Step Functions ``RedriveExecution``).

    The execution resumes where it failed (for a job, the Map: its failed batches run again, and
    batches already written are written again with the same content), with the same input and the
    model version and input object version pinned at its Start.
    """
    arn = execution_arn(state_machine_arn, job_id)
    try:
        answer = sfn.redrive_execution(executionArn=arn)
    except sfn.exceptions.ExecutionDoesNotExist:
        raise NotFoundError(f"batch job {job_id!r} does not exist") from None
    except sfn.exceptions.ExecutionNotRedrivable as exc:
        message = exc.response.get("Error", {}).get("Message") or "not redrivable"
        raise InputError(f"batch job {job_id!r} cannot be redriven: {message}") from None
    return {"job_id": job_id, "redriven": iso_time(answer.get("redriveDate")), "prefix": job_prefix(job_id)}


def upload_job(event: dict[str, Any]) -> BatchInput:
    """The job an S3 "Object Created" event under ``batch/<model>/`` asks for (one per object version).

    Its name is derived from the object's key and VersionId, so a second delivery of the same
    event names the same execution and starts nothing (Step Functions refuses a name twice).
    """
    detail = event.get("detail", event)
    try:
        bucket, obj = detail["bucket"]["name"], detail["object"]
        key = unquote_plus(obj["key"])
    except (KeyError, TypeError) as exc:
        raise InputError(f"not an S3 Object Created event: missing {exc}") from None
    parts = key.split("/")
    if len(parts) < 3 or parts[0] != BATCH_INPUT_PREFIX or not MODEL_NAME.match(parts[1]) or not parts[-1]:
        raise InputError(f"{key}: a batch input is {BATCH_INPUT_PREFIX}/<model>/<file>")
    version_id = obj.get("version-id") or obj.get("versionId")
    if not version_id:
        raise InputError(f"{key}: the event names no object version (the data bucket versions objects)")
    return BatchInput(
        model=parts[1],
        bucket=bucket,
        key=key,
        version_id=version_id,
        job_id=object_job_id(parts[1], key, version_id),
        trigger="upload",
        started_by=f"upload:{key}@{version_id}",
    )


def object_job_id(model: str, key: str, version_id: str, model_version: int | None = None) -> str:
    """The one job of an object version (with the champion, or a named model version).

    The upload event and ``mlops batch start`` on the same object version name the same job, so
    whichever comes second joins the first instead of scoring the object again.
    """
    digest = hashlib.sha256(f"{key}\n{version_id}\n{model_version or ''}".encode()).hexdigest()[:16]
    return f"{model}.object-{digest}"


def start_object_job(
    sfn: Any, state_machine_arn: str, request: BatchInput, *, describe_duplicate: bool = False
) -> dict[str, Any]:
    """Start an object version's job; if it was already started (a repeated event, an upload and
    ``mlops batch start``, two callers at once), report it instead of running it twice.

    Step Functions refuses a second execution of one name atomically, so of concurrent starts
    exactly one starts the job and its ``started_by`` is the one recorded. With
    ``describe_duplicate`` (the caller's role may describe the machine's executions) the answer
    for a duplicate names who started the job and how.
    """
    name = str(request.job_id)
    try:
        return {"started": True, **start_job(sfn, state_machine_arn, request), "started_by": request.started_by}
    except sfn.exceptions.ExecutionAlreadyExists:
        answer: dict[str, Any] = {"started": False, "duplicate": True, "job_id": name, "prefix": job_prefix(name)}
    if describe_duplicate:
        first = json.loads(sfn.describe_execution(executionArn=execution_arn(state_machine_arn, name))["input"])
        answer.update(started_by=first.get("started_by"), trigger=first.get("trigger"))
    return answer


REQUEST_FIELDS = ("uri", "object_version", "version")


def request_job(
    sfn: Any,
    s3: Any,
    state_machine_arn: str,
    data_bucket: str,
    model: str,
    body: dict[str, Any],
    *,
    caller: str,
    request_id: str | None = None,
) -> dict[str, Any]:
    """``POST /models/{model}/batch-jobs``: start (or join) the job of one object version for ``caller``.

    ``body`` is ``{"uri", "object_version"?, "version"?}`` (``mlops batch start``). ``caller`` is the
    identity API Gateway verified (IAM authorization), recorded as the job's ``started_by`` and so
    as the actor of its audit event; the body cannot name one. The object's newest VersionId is read
    here when none is given, so the job is that object version's one job: a second start of the
    same version (by anyone, at the same time or later, or its upload event) joins the first and
    the answer names who started it.
    """
    if not MODEL_NAME.match(model):
        raise InputError(f"model name {model!r} is not valid")
    uri_value, version, object_version = body.get("uri"), body.get("version"), body.get("object_version")
    if not isinstance(uri_value, str):
        raise InputError("body field 'uri' must be the input object's s3://BUCKET/KEY")
    if version is not None and (isinstance(version, bool) or not isinstance(version, int) or version < 1):
        raise InputError(f"body field 'version' must be a model version number (1 or more), not {version!r}")
    if object_version is not None and (not isinstance(object_version, str) or not object_version):
        raise InputError("body field 'object_version' must be the input object's S3 VersionId")
    bucket, key = parse_uri(uri_value)
    if bucket != data_bucket:
        raise InputError(f"{uri_value}: batch inputs are read from the data bucket s3://{data_bucket}/ only")
    if not key.startswith(f"{BATCH_INPUT_PREFIX}/"):
        raise InputError(f"{uri_value}: batch inputs are read under {BATCH_INPUT_PREFIX}/ of the data bucket only")
    folder = key.split("/")
    if len(folder) > 2 and folder[1] != model:
        # Another model's folder: a caller allowed this model's route must not score (and so read)
        # the inputs another model's users put under batch/<their model>/.
        raise InputError(
            f"{uri_value}: is in model {folder[1]!r}'s folder; a job of model {model!r} reads"
            f" {BATCH_INPUT_PREFIX}/{model}/ or a file directly under {BATCH_INPUT_PREFIX}/"
        )
    # The object (its newest version, or the one named) must exist now: a job of a missing object
    # version would only fail later, in the state machine, instead of being refused here.
    pinned = {"VersionId": object_version} if object_version is not None else {}
    try:
        head = s3.head_object(Bucket=bucket, Key=key, **pinned)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if object_version is not None and code in ("400", "InvalidArgument"):
            raise InputError(
                f"body field 'object_version' {object_version!r} is not a VersionId of {uri_value}"
            ) from None
        if code in ("404", "NoSuchKey", "NotFound", "NoSuchVersion"):
            if object_version is not None:
                raise NotFoundError(f"{uri_value}: no object version {object_version!r}") from None
            raise NotFoundError(f"{uri_value}: no such object") from None
        raise
    object_version = object_version if object_version is not None else head.get("VersionId")
    request = BatchInput(
        model=model,
        bucket=bucket,
        key=key,
        version_id=object_version,
        version=version,
        job_id=object_job_id(model, key, object_version, version) if object_version else job_name(model),
        trigger="cli",
        started_by=caller,
        request_id=request_id,
    )
    return start_object_job(sfn, state_machine_arn, request, describe_duplicate=True)
