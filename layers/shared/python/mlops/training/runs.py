"""Pipeline runs: uploading a dataset version and following the execution it starts.

A run is one execution of the training state machine. Its name is derived from the uploaded
object version (:func:`mlops.data.trigger.execution_name`), so the CLI knows which run an upload
starts before the run exists, and a duplicate event can never start a second one.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mlops.data.trigger import execution_name
from mlops.errors import CheckFailedError, InputError, MlopsError, NotFoundError
from mlops.registry.versions import check_model_name

FINISHED = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"})


@dataclass(frozen=True)
class Upload:
    bucket: str
    key: str
    version_id: str
    size: int
    run_name: str
    sha256: str = ""
    uploader: str = ""  # the caller the upload API recorded (the identity AWS authenticated)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


Authorize = Callable[[dict[str, Any]], dict[str, Any]]


def file_sha256(path: Path) -> tuple[str, int]:
    """(sha256 hex, size) of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def upload_dataset(
    model: str, path: str | Path, *, authorize: Authorize, name: str | None = None, timeout: float = 600
) -> Upload:
    """Upload a local file to ``datasets/<model>/<name>`` through the upload API; the upload starts the pipeline.

    ``authorize`` sends ``{"name", "sha256", "size"}`` to ``POST /models/<model>/uploads`` signed
    with the caller's credentials (the CLI's :func:`mlops_cli.common.signed_request`) and returns
    the API's answer: a presigned PUT and the headers it was signed with (the recorded uploader and
    the content's SHA-256, which S3 checks the body against).

    Raises
    ------
    InputError
        No such file, or the API refused the request (no spec for the model, a bad name).
    CheckFailedError
        S3 refused the PUT (the file changed after it was hashed, or the URL expired).
    """
    check_model_name(model)
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    sha256, size = file_sha256(path)
    if size == 0:
        raise InputError(f"{path}: the file is empty")
    grant = authorize({"name": name or path.name, "sha256": sha256, "size": size})
    # Content-Type set: urllib would call a PUT body a form (application/x-www-form-urlencoded).
    headers = {
        **{str(k): str(v) for k, v in (grant.get("headers") or {}).items()},
        "Content-Length": str(size),
        "Content-Type": "text/csv",
    }
    with path.open("rb") as body:
        request = urllib.request.Request(grant["url"], data=body, headers=headers, method="PUT")  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - the presigned URL
                version_id = response.headers.get("x-amz-version-id")
        except urllib.error.HTTPError as exc:
            text = exc.read().decode(errors="replace")
            code = re.search(r"<Code>([^<]+)</Code>", text)
            message = re.search(r"<Message>([^<]+)</Message>", text)
            raise CheckFailedError(
                f"S3 refused the upload of {path} to s3://{grant.get('bucket')}/{grant.get('key')} "
                f"(HTTP {exc.code} {code.group(1) if code else ''}: {message.group(1) if message else text[:200]}); "
                "if the file changed while uploading, upload it again"
            ) from None
        except urllib.error.URLError as exc:
            raise MlopsError(f"cannot reach S3 for the upload: {exc.reason}") from None
    bucket, key = str(grant["bucket"]), str(grant["key"])
    if not version_id or version_id == "null":
        raise CheckFailedError(f"s3://{bucket}/{key}: the bucket is not versioned; the upload has no version id")
    return Upload(
        bucket=bucket,
        key=key,
        version_id=version_id,
        size=size,
        run_name=execution_name(bucket, key, version_id, model),
        sha256=sha256,
        uploader=str(grant.get("caller") or ""),
    )


# Events that end one attempt of a task (or a state) in failure, as the history names them.
_ATTEMPT_FAILED = frozenset(
    {
        "TaskFailed",
        "TaskTimedOut",
        "TaskStartFailed",
        "TaskSubmitFailed",
        "LambdaFunctionFailed",
        "LambdaFunctionTimedOut",
        "LambdaFunctionStartFailed",
        "LambdaFunctionScheduleFailed",
        "ActivityFailed",
        "ActivityTimedOut",
        "ActivityScheduleFailed",
    }
)
_ATTEMPT_SUCCEEDED = frozenset({"TaskSucceeded", "LambdaFunctionSucceeded", "ActivitySucceeded", "TaskSubmitted"})
_SCHEDULED = frozenset({"TaskScheduled", "LambdaFunctionScheduled", "ActivityScheduled"})
_CONTAINERS = frozenset({"Map", "Parallel"})


@dataclass
class Step:
    """One state of a run, over every time it was entered (a Map iteration enters it once per item).

    ``status`` is the state's real outcome: SUCCEEDED (a task that succeeded after retries too:
    ``attempts`` counts them, ``error``/``cause`` keep the last failed attempt's), FAILED (its
    last attempt failed, whether the failure was caught or ended the run; in a Map, any
    iteration's), ABORTED, or RUNNING. A ``Fail`` state (``kind``) is FAILED: it ends the run.
    """

    name: str
    status: str  # RUNNING, SUCCEEDED, FAILED, ABORTED
    started: str | None = None
    ended: str | None = None
    attempts: int = 0  # task invocations, retries included
    entries: int = 0  # times the state was entered (a Map iteration enters it once per item)
    error: str | None = None
    cause: str | None = None
    kind: str = ""  # the state's type: Task, Map, Parallel, Choice, Pass, Wait, Succeed, Fail
    parent: str | None = None  # the Map or Parallel state it runs in
    failed: int = 0  # entries that ended FAILED
    aborted: int = 0  # entries aborted (a Map's other iterations when one failed)
    iterations: int | None = None  # a Map: how many items it started
    failed_iterations: list[int] = field(default_factory=list)  # a Map's (or its inner steps') failed item indexes

    @property
    def retries(self) -> int:
        """Attempts beyond the first of each entry (a task's Retry)."""
        return max(0, self.attempts - self.entries) if self.attempts else 0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["retries"] = self.retries
        return data


@dataclass
class Failure:
    """Why a run failed: the step that failed, its error and cause, from the execution itself.

    ``step`` is the innermost state that failed (a Map's iteration, not the Map), ``cause`` the
    readable message (a Lambda error's ``errorMessage``, without its stack trace). Invalid data
    names ``Validate`` with the report's location; the CLI adds the failed ``checks`` from the
    report and the registry's ``RUN#<run>`` item (``recorded``).
    """

    step: str
    error: str | None
    cause: str | None
    within: str | None = None  # the Map it ran in
    iteration: int | None = None  # the failing item's index in that Map
    iterations: int | None = None
    attempts: int = 0
    report_uri: str | None = None  # invalid data: the validation report
    summary: str | None = None  # invalid data: the report's one-line verdict
    checks: list[dict[str, Any]] = field(default_factory=list)
    recorded: dict[str, Any] | None = None  # the registry's RUN#<run> item, when the CLI read it
    notes: list[str] = field(default_factory=list)  # what could not be read (the report, the item)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Run:
    name: str
    arn: str
    status: str
    started: str | None
    stopped: str | None
    input: dict[str, Any] = field(default_factory=dict)
    output: dict[str, Any] | None = None
    error: str | None = None
    cause: str | None = None
    steps: list[Step] = field(default_factory=list)
    failure: Failure | None = None

    @property
    def model(self) -> str | None:
        upload = self.input.get("upload") or {}
        return upload.get("model") or self.input.get("model")

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["model"] = self.model
        data["steps"] = [s.to_dict() for s in self.steps]
        return data


def _iso(value: Any) -> str | None:
    return value.isoformat() if hasattr(value, "isoformat") else (str(value) if value else None)


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
                    started=_iso(item.get("startDate")),
                    stopped=_iso(item.get("stopDate")),
                )
            )
    runs.sort(key=lambda r: r.started or "", reverse=True)
    return runs[:limit]


def _loads(text: str | None) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def cause_message(cause: str | None) -> str | None:
    """The readable part of a failure's cause: a Lambda error's ``errorMessage`` (its stack trace
    left out), else the cause as given."""
    if not cause:
        return cause
    parsed = _loads(cause)
    if isinstance(parsed, dict) and parsed.get("errorMessage"):
        return str(parsed["errorMessage"])
    return cause


@dataclass
class _Visit:
    """One entry into a state (the history's ``...StateEntered`` event and what followed it)."""

    name: str
    kind: str
    started: str | None
    parent: _Visit | None
    iteration: int | None
    first_event: int
    status: str = "RUNNING"
    ended: str | None = None
    attempts: int = 0
    error: str | None = None
    cause: str | None = None
    failed_at: int | None = None  # event id of its failure (a failed attempt that was not retried)
    output: Any = None  # the last successful attempt's result (a Lambda's Payload)
    input: Any = None
    iterations: int | None = None
    iteration_status: dict[int, str] = field(default_factory=dict)


def _details(event: dict[str, Any]) -> dict[str, Any]:
    found = next((v for k, v in event.items() if k.endswith("EventDetails")), None)
    return found if isinstance(found, dict) else {}


def _payload(output: Any) -> Any:
    """A task's result: a Lambda invoke's ``Payload`` when the result is an invoke answer."""
    parsed = _loads(output) if isinstance(output, str) else output
    if isinstance(parsed, dict) and "Payload" in parsed and "StatusCode" in parsed:
        return parsed["Payload"]
    return parsed


def parse_history(events: list[dict[str, Any]]) -> tuple[list[Step], list[_Visit]]:
    """Each state's real outcome from an execution's history events (oldest first).

    Events of parallel Map iterations interleave; each event is attributed to the state entry it
    follows through ``previousEventId`` (the chain AWS and the local cloud both record), so a
    failure in one iteration is never charged to a state another branch entered meanwhile.
    """
    visit_of: dict[int, _Visit] = {}
    iteration_of: dict[int, int | None] = {}
    kind_of: dict[int, str] = {}
    visits: list[_Visit] = []
    last: _Visit | None = None
    for event in events:
        kind = str(event["type"])
        eid = int(event.get("id") or 0)
        prev = int(event.get("previousEventId") or 0)
        details = _details(event)
        kind_of[eid] = kind
        here = visit_of.get(prev, last)
        iteration = iteration_of.get(prev)
        if kind.endswith("StateEntered"):
            state_kind = kind[: -len("StateEntered")]
            # a state entered from inside an open Map/Parallel runs in it; after a state exits, beside it
            parent = None
            if here is not None:
                opens = kind_of.get(prev) in ("MapIterationStarted", "ParallelStateStarted")
                parent = here if here.kind in _CONTAINERS and (opens or here.ended is None) else here.parent
            visit = _Visit(
                name=str(details.get("name")),
                kind=state_kind,
                started=_iso(event.get("timestamp")),
                parent=parent,
                iteration=iteration,
                first_event=eid,
                input=details.get("input"),
            )
            if state_kind == "Fail":
                visit.status = "FAILED"
            visits.append(visit)
            visit_of[eid], iteration_of[eid], last = visit, iteration, visit
            continue
        if kind.endswith("StateExited"):
            name = details.get("name")
            exited: _Visit | None = here
            while exited is not None and exited.name != name:
                exited = exited.parent
            exited = exited or here
            if exited is None:
                continue
            exited.ended = _iso(event.get("timestamp"))
            if exited.status == "RUNNING":
                exited.status = "SUCCEEDED"
            visit_of[eid], iteration_of[eid], last = exited, exited.iteration, exited
            continue
        if kind.startswith("MapIteration") or kind.startswith("ParallelState") or kind.startswith("MapState"):
            # a container's own event: charge it to the Map/Parallel the chain leads back to
            container = here
            while container is not None and container.kind not in _CONTAINERS:
                container = container.parent
            if container is None:
                visit_of[eid], iteration_of[eid] = here, iteration  # type: ignore[assignment]
                continue
            own = details.get("index") if kind == "MapIterationStarted" else container.iteration
            visit_of[eid], iteration_of[eid] = container, own
            index = details.get("index")
            if kind == "MapStateStarted":
                container.iterations = details.get("length")
            elif kind.startswith("MapIteration") and isinstance(index, int):
                container.iteration_status[index] = kind[len("MapIteration") :].upper()
            elif kind in ("MapStateFailed", "ParallelStateFailed"):
                container.status, container.failed_at = "FAILED", eid
                container.error = container.error or details.get("error")
                container.cause = container.cause or details.get("cause")
            elif kind in ("MapStateAborted", "ParallelStateAborted"):
                container.status = "ABORTED"
            elif kind in ("MapStateSucceeded", "ParallelStateSucceeded") and container.status == "RUNNING":
                container.status = "SUCCEEDED"
            continue
        visit_of[eid], iteration_of[eid] = here, iteration  # type: ignore[assignment]
        if kind in ("ExecutionAborted", "ExecutionTimedOut"):
            for open_visit in visits:
                if open_visit.status == "RUNNING":
                    open_visit.status = "ABORTED"
        if here is None:
            continue
        if kind in _SCHEDULED:
            here.attempts += 1
            here.status = "RUNNING" if here.ended is None else here.status
        elif kind in _ATTEMPT_SUCCEEDED:
            if kind != "TaskSubmitted":
                here.status = "SUCCEEDED"
                here.output = _payload(details.get("output"))
        elif kind in _ATTEMPT_FAILED:
            here.status, here.failed_at = "FAILED", eid
            here.error, here.cause = details.get("error"), details.get("cause")
    return _steps(visits), visits


def _steps(visits: list[_Visit]) -> list[Step]:
    """One :class:`Step` per state name, in the order the states were first entered."""
    steps: dict[str, Step] = {}
    for visit in visits:
        step = steps.get(visit.name)
        if step is None:
            step = steps[visit.name] = Step(
                name=visit.name,
                status=visit.status,
                started=visit.started,
                kind=visit.kind,
                parent=visit.parent.name if visit.parent is not None else None,
            )
        step.entries += 1
        step.attempts += visit.attempts
        step.ended = visit.ended or step.ended
        if visit.iterations is not None:
            step.iterations = (step.iterations or 0) + visit.iterations
        if visit.status == "FAILED":
            step.failed += 1
            if visit.iteration is not None:
                step.failed_iterations.append(visit.iteration)
        elif visit.status == "ABORTED":
            step.aborted += 1
        for index, outcome in sorted(visit.iteration_status.items()):
            if outcome == "FAILED" and index not in step.failed_iterations:
                step.failed_iterations.append(index)
        if visit.error:  # a retried attempt's error is kept (the last); a failed entry's wins below
            step.error, step.cause = visit.error, visit.cause
    for step in steps.values():
        entered = [v for v in visits if v.name == step.name]
        outcomes = {v.status for v in entered}
        step.status = next(
            (s for s in ("FAILED", "RUNNING", "ABORTED", "SUCCEEDED") if s in outcomes), entered[-1].status
        )
        if step.status == "FAILED":  # the error shown is a failed entry's, not a retried one's
            failed = min((v for v in entered if v.status == "FAILED"), key=lambda v: v.failed_at or v.first_event)
            step.error, step.cause = failed.error or step.error, failed.cause or step.cause
        step.failed_iterations.sort()
    return list(steps.values())


def explain_failure(run: Run, visits: list[_Visit]) -> Failure | None:
    """The step that made ``run`` fail, with its error and readable cause; None unless it failed.

    Invalid data (a ``Validate`` result with ``valid: false``) names the report. Otherwise the
    failure the run's Catch recorded (the ``failure`` its failure path was entered with names the
    step) picks the failed state; else the first state whose last attempt failed; else the
    execution's own error and cause.
    """
    if run.status not in ("FAILED", "TIMED_OUT", "ABORTED"):
        return None
    for visit in visits:
        result = visit.output if isinstance(visit.output, dict) else {}
        if visit.kind == "Task" and result.get("valid") is False and "report_uri" in result:
            return Failure(
                step=visit.name,
                error="DatasetInvalid",
                cause=str(result.get("summary") or "the dataset failed validation"),
                report_uri=str(result["report_uri"]),
                summary=result.get("summary"),
                attempts=visit.attempts,
            )
    recorded_step: str | None = None
    for visit in visits:
        entered = _loads(visit.input) if isinstance(visit.input, str) else visit.input
        failure = entered.get("failure") if isinstance(entered, dict) else None
        if isinstance(failure, dict) and failure.get("step"):
            recorded_step = str(failure["step"])
            break
    failed = [v for v in visits if v.status == "FAILED" and v.kind != "Fail" and v.failed_at is not None]
    if recorded_step is not None:
        named = [v for v in failed if v.name == recorded_step or _within(v, recorded_step)]
        failed = named or failed
    inner = [v for v in failed if v.kind not in _CONTAINERS] or failed
    if inner:
        first = min(inner, key=lambda v: v.failed_at or 0)
        container = first.parent
        return Failure(
            step=first.name,
            error=first.error,
            cause=cause_message(first.cause),
            within=container.name if container is not None else None,
            iteration=first.iteration,
            iterations=container.iterations if container is not None else None,
            attempts=first.attempts,
        )
    # no state failed: a Fail state ended it, or the execution timed out or was stopped mid-step
    ended = next((v for v in reversed(visits) if v.kind == "Fail"), None)
    ended = ended or next((v for v in reversed(visits) if v.status in ("ABORTED", "RUNNING")), None)
    return Failure(
        step=ended.name if ended else "-",
        error=run.error or (run.status if run.status != "FAILED" else None),
        cause=cause_message(run.cause),
    )


def _within(visit: _Visit, name: str) -> bool:
    parent = visit.parent
    while parent is not None:
        if parent.name == name:
            return True
        parent = parent.parent
    return False


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
        started=_iso(described.get("startDate")),
        stopped=_iso(described.get("stopDate")),
        input=_loads(described.get("input")) or {},
        output=_loads(described.get("output")),
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


# ---------------------------------------------------------------------------------------------
# Rendering (``mlops runs show``, ``runs wait``, ``data upload --wait``)


def _clip(text: str, limit: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _items(indexes: list[int], limit: int = 8) -> str:
    shown = ", ".join(str(i) for i in indexes[:limit])
    return shown + (f" and {len(indexes) - limit} more" if len(indexes) > limit else "")


def render_step(step: Step, depth: int = 0) -> str:
    """``  FAILED      TrainCandidate x4 (2 failed: items 2, 3): SpecError: ...`` (one line)."""
    notes: list[str] = []
    name = step.name
    if step.kind in _CONTAINERS:
        if step.iterations is not None:
            notes.append(f"{step.iterations} item{'s' if step.iterations != 1 else ''}")
        if step.failed_iterations:
            notes.append(
                f"failed: item{'s' if len(step.failed_iterations) > 1 else ''} {_items(step.failed_iterations)}"
            )
    else:
        if step.entries > 1:
            name += f" x{step.entries}"
            if step.failed:
                where = f": item{'s' if len(step.failed_iterations) > 1 else ''} {_items(step.failed_iterations)}"
                notes.append(f"{step.failed} failed" + (where if step.failed_iterations else ""))
            if step.aborted:
                notes.append(f"{step.aborted} aborted")
        if step.retries:
            retried = f"{step.attempts} attempts"
            if step.status == "SUCCEEDED" and step.error:
                retried += f", retried after {step.error}"
            notes.append(retried)
    if step.kind == "Fail":
        notes.append("a Fail state: ends the run")
    line = f"  {step.status:<9} {'  ' * depth}{name}" + (f" ({'; '.join(notes)})" if notes else "")
    if step.status == "FAILED" and step.error and step.kind not in _CONTAINERS and step.kind != "Fail":
        line += ": " + _clip(f"{step.error}: {cause_message(step.cause) or ''}", 240)
    return line


def render_failure(failure: Failure, *, model: str | None = None, max_checks: int = 10) -> list[str]:
    """What made the run fail: the step, the error, the cause, and for invalid data the failed checks."""
    where = failure.step
    if failure.within is not None:
        item = f"item {failure.iteration}" if failure.iteration is not None else "an item"
        of = f" of {failure.iterations}" if failure.iterations is not None else ""
        where += f" ({item}{of} in {failure.within})"
    if failure.attempts > 1:
        where += f" after {failure.attempts} attempts"
    if failure.error == "DatasetInvalid" and failure.report_uri:
        summary = str(failure.summary or failure.cause or "the dataset failed validation")
        summary = summary.removeprefix("invalid: ")
        lines = [f"  failed: the dataset is invalid ({failure.step}): {summary}"]
        checks = failure.checks
        for check in checks[:max_checks]:
            column = f" [{check.get('column')}]" if check.get("column") is not None else ""
            count = check.get("failing_count") or 0
            rows = f" ({count:,} row{'s' if count != 1 else ''})" if count else ""
            lines.append(f"    FAIL {check.get('check')}{column}{rows}: {_clip(check.get('message') or '', 200)}")
            for example in (check.get("examples") or [])[:3]:
                parts = []
                if example.get("row") is not None:
                    parts.append(f"row {example['row']}")
                if example.get("value") is not None:
                    parts.append(f"value {_clip(example['value'], 60)!r}")
                if example.get("note"):
                    parts.append(str(example["note"]))
                lines.append("         " + ": ".join(parts))
        if len(checks) > max_checks:
            lines.append(f"    ... and {len(checks) - max_checks} more failed checks in the report")
        lines.append(f"    report: {failure.report_uri}")
    else:
        lines = [f"  failed at {where}", f"    error:  {failure.error or '-'}"]
        cause = failure.cause or "-"
        lines += [
            f"    cause:  {line}" if i == 0 else f"            {line}" for i, line in enumerate(cause.splitlines()[:20])
        ]
    recorded = failure.recorded
    if recorded:
        audit = f"  (mlops audit list --model {model})" if model else ""
        lines.append(
            f"    recorded: registry {recorded.get('sk')} (step {recorded.get('step')}), "
            f"audit event pipeline.failed{audit}"
        )
    lines += [f"    note:   {note}" for note in failure.notes]
    return lines


def render_run(run: Run) -> list[str]:
    """``mlops runs show``'s text: each step's real state, the outcome, and why a failed run failed."""
    lines = [
        f"run {run.name}  [{run.status}]  model {run.model or '?'}",
        f"  started {run.started}  stopped {run.stopped or '-'}",
    ]
    parents = {step.name: step.parent for step in run.steps}

    def depth(step: Step) -> int:
        level, parent, seen = 0, step.parent, set()
        while parent is not None and parent not in seen:
            seen.add(parent)
            level, parent = level + 1, parents.get(parent)
        return level

    lines += [render_step(step, depth(step)) for step in run.steps]
    output = run.output or {}
    if isinstance(output, dict) and "outcome" in output:
        metrics = ", ".join(f"{k}={v:.4g}" for k, v in sorted((output.get("metrics") or {}).items()))
        lines.append(
            f"  outcome: {output['outcome']}: {output.get('model')} version {output.get('version')} "
            f"{output.get('status')}"
        )
        if metrics:
            lines.append(f"  metrics: {metrics}")
        lines += [f"  reason:  {reason}" for reason in output.get("reasons") or []]
        if output.get("card_uri"):
            lines.append(
                f"  card:    {output['card_uri']}  (mlops models card {output.get('model')} {output.get('version')})"
            )
    elif run.output:
        lines.append("  output: " + json.dumps(run.output, default=str)[:800])
    if run.failure is not None:
        lines += render_failure(run.failure, model=run.model)
    elif run.error:
        lines.append(f"  failed: {run.error}: {run.cause or ''}")
    return lines
