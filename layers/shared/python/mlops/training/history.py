"""A run's execution history read into steps (each state over every entry) and the failure that ended it.

Events of parallel Map iterations interleave; each is attributed to the state entry it follows,
so a failure in one iteration is never charged to a state another branch entered meanwhile.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

FINISHED = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"})


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
CONTAINERS = frozenset({"Map", "Parallel"})


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


def iso_time(value: Any) -> str | None:
    return value.isoformat() if hasattr(value, "isoformat") else (str(value) if value else None)


def json_or_text(text: str | None) -> Any:
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
    parsed = json_or_text(cause)
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
    parsed = json_or_text(output) if isinstance(output, str) else output
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
                parent = here if here.kind in CONTAINERS and (opens or here.ended is None) else here.parent
            visit = _Visit(
                name=str(details.get("name")),
                kind=state_kind,
                started=iso_time(event.get("timestamp")),
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
            exited.ended = iso_time(event.get("timestamp"))
            if exited.status == "RUNNING":
                exited.status = "SUCCEEDED"
            visit_of[eid], iteration_of[eid], last = exited, exited.iteration, exited
            continue
        if kind.startswith("MapIteration") or kind.startswith("ParallelState") or kind.startswith("MapState"):
            # a container's own event: charge it to the Map/Parallel the chain leads back to
            container = here
            while container is not None and container.kind not in CONTAINERS:
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
        entered = json_or_text(visit.input) if isinstance(visit.input, str) else visit.input
        failure = entered.get("failure") if isinstance(entered, dict) else None
        if isinstance(failure, dict) and failure.get("step"):
            recorded_step = str(failure["step"])
            break
    failed = [v for v in visits if v.status == "FAILED" and v.kind != "Fail" and v.failed_at is not None]
    if recorded_step is not None:
        named = [v for v in failed if v.name == recorded_step or _within(v, recorded_step)]
        failed = named or failed
    inner = [v for v in failed if v.kind not in CONTAINERS] or failed
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
