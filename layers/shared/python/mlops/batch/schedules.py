"""Scheduled batch jobs: the platform's one periodic trigger starts every model's due job once.

A model is a spec, not a stack, so a spec's ``batch.schedule`` is no EventBridge rule of its own:
one rule (stacks/batch.py, every :data:`~mlops.spec.schedule.BATCH_TICK`) invokes
``functions/batch_schedule``, which calls :func:`start_due_jobs`. For each model that is not
archived and whose latest spec revision has a schedule, the newest due time no older than
:data:`CATCH_UP` is found; its job is named ``<model>.schedule-<due time>``, so every tick that
sees the same due time names the same execution and it runs once (Step Functions refuses a name
twice). The job scores the input's current object version, pinned at the tick, through the same
path as ``mlops batch start`` (:func:`mlops.batch.runs.start_job`); ``trigger`` is ``schedule``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from mlops.batch.runs import start_job
from mlops.contracts.batch import BatchInput
from mlops.errors import NotFoundError
from mlops.registry.specs import SpecStore
from mlops.registry.versions import Registry
from mlops.spec.model import ModelSpec
from mlops.spec.schedule import BATCH_TICK, parse_schedule
from mlops.training.runs import execution_arn

# A due time older than this is not started: four ticks of catching up after missed invocations,
# but a schedule put today does not score yesterday's due time.
CATCH_UP = 4 * BATCH_TICK


def schedule_job_id(model: str, due: datetime) -> str:
    """``churn.schedule-20261206T0200Z``: one job per model and due time."""
    return f"{model}.schedule-{due.astimezone(UTC):%Y%m%dT%H%MZ}"


def _exists(sfn: Any, state_machine_arn: str, name: str) -> bool:
    try:
        sfn.describe_execution(executionArn=execution_arn(state_machine_arn, name))
    except sfn.exceptions.ExecutionDoesNotExist:
        return False
    return True


def start_due_job(
    sfn: Any, s3: Any, state_machine_arn: str, bucket: str, model: str, spec: ModelSpec, now: datetime
) -> dict[str, Any]:
    """Start ``model``'s job of its newest due time, unless none is due or it was started already.

    Returns
    -------
    dict
        ``{"model", "action", ...}`` with ``action`` one of ``not_due``, ``duplicate``,
        ``started`` (with ``job_id``, ``execution_arn``, ``input``, ``version_id``) or
        ``input_missing`` (with ``error`` naming the spec field, the key and the due time).
    """
    batch = spec.batch
    if batch.schedule is None or batch.input is None:
        return {"model": model, "action": "no_schedule"}
    due = parse_schedule(batch.schedule).latest(now, CATCH_UP)
    if due is None:
        return {"model": model, "action": "not_due", "schedule": batch.schedule}
    job_id = schedule_job_id(model, due)
    result: dict[str, Any] = {"model": model, "due": f"{due:%Y-%m-%dT%H:%MZ}", "job_id": job_id}
    if _exists(sfn, state_machine_arn, job_id):
        return {**result, "action": "duplicate"}
    try:
        head = s3.head_object(Bucket=bucket, Key=batch.input)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        why = "no such object" if code in ("404", "NoSuchKey", "NotFound") else f"cannot be read ({code})"
        error = (
            f"model {model}: batch.input {batch.input!r}: {why} in s3://{bucket}/ at the due time "
            f"{result['due']} of {batch.schedule}; upload it (mlops batch start, or under {batch.input})"
        )
        return {**result, "action": "input_missing", "error": error}
    output = batch.output.strip("/") + f"/{job_id}" if batch.output else None
    request = BatchInput(
        model=model,
        bucket=bucket,
        key=batch.input,
        version_id=head.get("VersionId"),
        output_prefix=output,
        job_id=job_id,
        trigger="schedule",
        started_by=f"schedule:{batch.schedule}@{result['due']}",
    )
    try:
        started = start_job(sfn, state_machine_arn, request)
    except sfn.exceptions.ExecutionAlreadyExists:  # another tick started it between the check and now
        return {**result, "action": "duplicate"}
    return {**result, **started, "action": "started", "version_id": head.get("VersionId")}


def start_due_jobs(
    registry: Registry, sfn: Any, s3: Any, state_machine_arn: str, bucket: str, now: datetime | None = None
) -> list[dict[str, Any]]:
    """:func:`start_due_job` for every model that is not archived and has a champion; one result each.

    A model without a champion, or whose spec has no ``batch.schedule``, is left out of the answer.
    """
    now = now or datetime.now(UTC)
    results: list[dict[str, Any]] = []
    specs = SpecStore(registry)
    token: str | None = None
    while True:
        page = registry.list_models(next_token=token, include_archived=False)
        for summary in page.items:
            try:
                spec = specs.get(summary.name).spec()
            except NotFoundError:
                continue
            if spec.batch.schedule is None:
                continue
            if summary.alias("champion") is None:
                results.append({"model": summary.name, "action": "no_champion"})
                continue
            results.append(start_due_job(sfn, s3, state_machine_arn, bucket, summary.name, spec, now))
        token = page.next_token
        if not token:
            return results
