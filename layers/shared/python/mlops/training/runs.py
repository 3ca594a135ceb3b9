"""Pipeline runs: listing, describing and waiting for the executions that dataset uploads start.

A run is one execution of the training state machine. Its name is derived from the uploaded
object version (:func:`mlops.data.trigger.execution_name`), so the CLI knows which run an upload
starts before the run exists, and a duplicate event can never start a second one. Uploading is
in :mod:`.uploads`, reading a run's history in :mod:`.history`, its text in :mod:`.run_view`.
"""

from __future__ import annotations

import time
from typing import Any

from mlops.errors import MlopsError, NotFoundError
from mlops.training.history import Run, explain_failure, iso_time, json_or_text, parse_history


def execution_arn(state_machine_arn: str, name: str) -> str:
    """``arn:...:stateMachine:X`` + name -> ``arn:...:execution:X:name``."""
    return state_machine_arn.replace(":stateMachine:", ":execution:") + f":{name}"


def list_runs(sfn: Any, state_machine_arn: str, *, model: str | None = None, limit: int = 20) -> list[Run]:
    """The newest runs (of one model when given), without their step details."""
    runs: list[Run] = []
    for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=state_machine_arn):
        for item in page["executions"]:
            if model is not None and not item["name"].startswith(f"{model}-"):
                continue
            runs.append(
                Run(
                    name=item["name"],
                    arn=item["executionArn"],
                    status=item["status"],
                    started=iso_time(item.get("startDate")),
                    stopped=iso_time(item.get("stopDate")),
                )
            )
    runs.sort(key=lambda r: r.started or "", reverse=True)
    return runs[:limit]


def describe_run(sfn: Any, state_machine_arn: str, name_or_arn: str) -> Run:
    """A run with each step's real status, attempts and error, and why it failed (from the execution history)."""
    arn = name_or_arn if name_or_arn.startswith("arn:") else execution_arn(state_machine_arn, name_or_arn)
    try:
        described = sfn.describe_execution(executionArn=arn)
    except sfn.exceptions.ExecutionDoesNotExist:
        raise NotFoundError(f"run {name_or_arn!r} does not exist (yet)") from None
    run = Run(
        name=described["name"],
        arn=arn,
        status=described["status"],
        started=iso_time(described.get("startDate")),
        stopped=iso_time(described.get("stopDate")),
        input=json_or_text(described.get("input")) or {},
        output=json_or_text(described.get("output")),
        error=described.get("error"),
        cause=described.get("cause"),
    )
    events: list[dict[str, Any]] = []
    for page in sfn.get_paginator("get_execution_history").paginate(executionArn=arn):
        events.extend(page["events"])
    for event in events:
        if event["type"] == "ExecutionFailed":
            details = event.get("executionFailedEventDetails", {})
            run.error = run.error or details.get("error")
            run.cause = run.cause or details.get("cause")
    run.steps, visits = parse_history(events)
    run.failure = explain_failure(run, visits)
    return run


class WaitTimeoutError(MlopsError):
    """The run had not finished when the wait gave up (exit 3: not a verdict on the run, which goes on)."""

    exit_code = 3


def wait_run(sfn: Any, state_machine_arn: str, name_or_arn: str, *, timeout_s: float = 900, poll_s: float = 1.0) -> Run:
    """Wait until the run exists and finishes; :class:`WaitTimeoutError` (exit 3) when it has not by ``timeout_s``.

    Polls after 0.25 s, then half as long again each time, up to every ``poll_s`` seconds: a
    short run is seen to end at once, a long one costs one or two requests a second.
    """
    deadline = time.monotonic() + timeout_s
    pause = min(0.25, poll_s)
    while True:
        try:
            run = describe_run(sfn, state_machine_arn, name_or_arn)
        except NotFoundError:
            run = None
        if run is not None and run.finished:
            return run
        if time.monotonic() > deadline:
            state = run.status if run else "not started"
            raise WaitTimeoutError(
                f"run {name_or_arn} still {state} after {timeout_s:.0f} s (the wait gave up; the run goes on)"
            )
        time.sleep(pause)
        pause = min(pause * 1.5, poll_s)
