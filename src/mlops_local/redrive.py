"""Step Functions ``RedriveExecution`` for the local cloud (moto has none).

A redrive restarts a FAILED standard execution, under the same execution ARN, from the top-level
state where it failed: the states that succeeded before it are not run again (their effects and
output are kept), and the failed state receives the input it received the first time, which is
read from the execution's history (the last top-level ``...StateEntered`` event with no matching
``...StateExited``). ``$$.Execution.Input``, ``Id`` and ``Name`` stay those of the first run. The
new events are appended to the execution's history after an ``ExecutionRedriven`` event, and
``DescribeExecution`` reports ``redriveCount`` and ``redriveDate``.

A Distributed Map state that failed runs again only the child executions that did not succeed, as
on AWS: when a Map's children end with some failed, the local cloud's Map
(:mod:`mlops_local.patches`) keeps which succeeded and their output (:func:`record_children`);
a redrive at that Map hands them to its next run (:func:`take_succeeded_children`), which closes
them with their output and runs the rest. What differs from AWS: a child counts as succeeded when
it left an output other than ``null`` (moto's pool leaves ``null`` for a failed child), so a child
whose output is ``null`` runs again. Refused as AWS refuses them: an execution that is not FAILED, TIMED_OUT or
ABORTED (``ExecutionNotRedrivable``), an express execution.

The seam: moto dispatches each API action to the ``StepFunctionResponse`` method of the same
name, so :func:`install` adds ``redrive_execution`` there; the execution is moto's
``Execution`` object, given a new ``ExecutionWorker`` whose definition starts at the failed state.
"""

from __future__ import annotations

import datetime
import json
import threading
from typing import Any

REDRIVABLE = ("FAILED", "TIMED_OUT", "ABORTED")

# (execution ARN, Map state name) -> {child index: output} of the children that succeeded in a Map
# run where some failed; and what a redrive hands to the Map it resumes (taken once).
_succeeded: dict[tuple[str, str], dict[int, Any]] = {}
_handed: dict[tuple[str, str], dict[int, Any]] = {}
_children_lock = threading.Lock()


def record_children(execution: str, state: str, succeeded: dict[int, Any], *, complete: bool) -> None:
    """After a Map run: keep its successful children unless every child succeeded."""
    with _children_lock:
        if complete:
            _succeeded.pop((execution, state), None)
        else:
            _succeeded[(execution, state)] = succeeded


def take_succeeded_children(execution: str, state: str) -> dict[int, Any]:
    """Before a Map run: the children a redrive at this Map found succeeded (empty otherwise)."""
    with _children_lock:
        return _handed.pop((execution, state), {})


def _hand_to_redrive(execution: str, state: str) -> int:
    with _children_lock:
        done = _succeeded.pop((execution, state), {})
        _handed[(execution, state)] = done
        return len(done)


class NotRedrivableError(Exception):
    """The execution cannot be redriven; the message says why."""


def failed_state(events: list[dict[str, Any]], top_level: set[str]) -> tuple[str, Any]:
    """The top-level state the execution stopped in, and the input it entered with.

    >>> events = [
    ...     {"type": "TaskStateEntered", "stateEnteredEventDetails": {"name": "A", "input": "{}"}},
    ...     {"type": "TaskStateExited", "stateExitedEventDetails": {"name": "A", "output": "{\\"x\\": 1}"}},
    ...     {"type": "MapStateEntered", "stateEnteredEventDetails": {"name": "M", "input": "{\\"x\\": 1}"}},
    ...     {"type": "TaskStateEntered", "stateEnteredEventDetails": {"name": "Inner", "input": "{}"}},
    ... ]
    >>> failed_state(events, {"A", "M"})
    ('M', {'x': 1})
    """
    open_states: dict[str, Any] = {}
    last: str | None = None
    for event in events:
        entered = event.get("stateEnteredEventDetails")
        exited = event.get("stateExitedEventDetails")
        if entered and entered.get("name") in top_level:
            open_states[entered["name"]] = json.loads(entered.get("input") or "{}")
            last = entered["name"]
        elif exited and exited.get("name") in top_level:
            open_states.pop(exited["name"], None)
    if last is None or last not in open_states:
        raise NotRedrivableError("the execution's history shows no state that failed")
    return last, open_states[last]


def definition_from(definition: str, start_at: str) -> str:
    """``definition`` with ``StartAt`` moved to ``start_at`` (every state kept)."""
    document = json.loads(definition)
    document["StartAt"] = start_at
    return json.dumps(document)


def redrive(execution: Any) -> datetime.datetime:
    """Redrive moto's ``execution`` (see the module docstring); returns the redrive date."""
    # moto's interpreter, imported when a redrive is asked for (its modules cost seconds).
    from moto.stepfunctions.parser.api import ExecutionStatus, HistoryEventType, StateMachineType
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

    status = getattr(execution.exec_status, "value", execution.exec_status)
    if status not in REDRIVABLE:
        raise NotRedrivableError(f"execution {execution.exec_arn} is {status}, not FAILED, TIMED_OUT or ABORTED")
    if execution.sm_type == StateMachineType.EXPRESS:
        raise NotRedrivableError(f"execution {execution.exec_arn} is an express execution")
    worker = execution.exec_worker
    previous = list(worker.env.event_manager.get_event_history()) if worker and worker.env else []
    previous = [*getattr(execution, "mlops_previous_events", []), *previous]
    document = json.loads(execution.state_machine.definition)
    start_at, state_input = failed_state(previous, set(document.get("States") or {}))
    definition = definition_from(execution.state_machine.definition, start_at)
    _hand_to_redrive(execution.exec_arn, start_at)

    class RedriveWorker(ExecutionWorker):
        def _get_evaluation_entrypoint(self) -> Any:
            from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

            return AmazonStateLanguageParser.parse(definition)[0]

        def _get_evaluation_environment(self) -> Any:
            env = super()._get_evaluation_environment()
            env.states.reset(input_value=state_input)
            return env

        def _execution_logic(self) -> None:
            program = self._get_evaluation_entrypoint()
            self.env = self._get_evaluation_environment()
            self.env.event_manager.add_event(
                context=self.env.event_history_context,
                event_type=HistoryEventType.ExecutionRedriven,
                event_details=redriven_details,
                update_source_event_id=False,
            )
            program.eval(self.env)
            self._execution_communication.terminated()

    # a plain dict: moto's EventDetails type does not list this AWS event's details
    redriven_details: Any = {"executionRedrivenEventDetails": {"redriveCount": 0}}
    execution.mlops_previous_events = previous
    execution.mlops_redrive_count = getattr(execution, "mlops_redrive_count", 0) + 1
    redriven_details["executionRedrivenEventDetails"]["redriveCount"] = execution.mlops_redrive_count
    execution.mlops_redrive_date = datetime.datetime.now(tz=datetime.UTC)
    execution.error = execution.cause = execution.stop_date = execution.output = None
    execution.exec_worker = RedriveWorker(
        evaluation_details=execution._get_start_execution_worker()._evaluation_details,
        exec_comm=execution._get_start_execution_worker_comm(),
        cloud_watch_logging_session=None,
        activity_store=execution._activity_store,
    )
    execution.exec_status = ExecutionStatus.RUNNING
    execution.exec_worker.start()
    return execution.mlops_redrive_date


_installed: dict[str, bool] = {"done": False}


def install() -> None:
    """Add ``RedriveExecution`` to moto's Step Functions (process-wide, idempotent)."""
    if _installed["done"]:
        return
    # moto, imported only when installed (see mlops_local.patches).
    from moto.core.exceptions import JsonRESTError
    from moto.core.responses import ActionResult
    from moto.stepfunctions.parser.backend.execution import Execution
    from moto.stepfunctions.responses import StepFunctionResponse

    class ExecutionNotRedrivable(JsonRESTError):
        def __init__(self, message: str) -> None:
            super().__init__("ExecutionNotRedrivable", message)

    def redrive_execution(self: Any) -> Any:
        execution = self.stepfunction_backend.describe_execution(self._get_param("executionArn"))
        try:
            date = redrive(execution)
        except NotRedrivableError as exc:
            raise ExecutionNotRedrivable(str(exc)) from None
        return ActionResult({"redriveDate": date})

    original_describe = StepFunctionResponse.describe_execution
    original_history = Execution.to_history_output

    def describe_execution(self: Any) -> Any:
        answer = original_describe(self)
        execution = self.stepfunction_backend.describe_execution(self._get_param("executionArn"))
        if getattr(execution, "mlops_redrive_count", 0) and isinstance(answer.result, dict):
            answer.result["redriveCount"] = execution.mlops_redrive_count
            answer.result["redriveDate"] = execution.mlops_redrive_date
        return answer

    def to_history_output(self: Any) -> Any:
        out = original_history(self)
        out["events"] = [*getattr(self, "mlops_previous_events", []), *out["events"]]
        return out

    StepFunctionResponse.redrive_execution = redrive_execution  # type: ignore[attr-defined]
    StepFunctionResponse.describe_execution = describe_execution  # type: ignore[method-assign]
    Execution.to_history_output = to_history_output  # type: ignore[method-assign]
    _installed["done"] = True
