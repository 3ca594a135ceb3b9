"""Batch jobs as executions of the batch state machine: started, listed and described.

A job's execution is named ``<model>.<UTC stamp>-<8 hex>`` (a model name holds no ``.``, so one
model's jobs are exactly the names starting ``<model>.``); the job id is that name and its results
live under ``batch-jobs/<model>/<job id>/``. Used by the CLI, the upload starter and the scheduler.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from mlops.contracts.batch import BatchInput
from mlops.contracts.names import BATCH_JOB_PREFIX
from mlops.errors import InputError, NotFoundError
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
