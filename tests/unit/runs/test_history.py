"""A run's steps and failure from its execution history: recorded local-cloud histories and small ones.

``histories.json`` holds two training executions recorded on the local cloud (stack traces
removed): ``invalid_data`` (two failed checks) and ``training_failed`` (PlanTraining failed once
and was retried; the second of two search candidates failed at fit, while the first went on).
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from mlops.errors import MlopsError
from mlops.training.history import Run, Step, explain_failure, parse_history
from mlops.training.run_view import render_run
from mlops.training.runs import WaitTimeoutError

HISTORIES = json.loads((Path(__file__).parent / "histories.json").read_text())
FIT_CAUSE = (
    "training.search.space.learning_rate: The 'learning_rate' parameter of HistGradientBoostingClassifier "
    "must be a float in the range (0.0, inf). Got -1.0 instead."
)


def run_of(events: list[dict[str, Any]], status: str = "FAILED", **extra: Any) -> Run:
    run = Run(name="m-1", arn="arn", status=status, started=None, stopped=None, input={"upload": {"model": "m"}})
    for key, value in extra.items():
        setattr(run, key, value)
    run.steps, visits = parse_history(events)
    run.failure = explain_failure(run, visits)
    return run


def recorded(name: str) -> Run:
    history = HISTORIES[name]
    described = history["describe"]
    return run_of(history["events"], described["status"], error=described.get("error"), cause=described.get("cause"))


def steps(run: Run) -> dict[str, Step]:
    return {s.name: s for s in run.steps}


def test_a_failed_training_run_shows_each_steps_real_state() -> None:
    run = recorded("training_failed")
    found = steps(run)
    # the retried PlanTraining succeeded, with its attempts and the error it was retried after
    plan = found["PlanTraining"]
    assert (plan.status, plan.attempts, plan.retries, plan.error) == ("SUCCEEDED", 2, 1, "Lambda.ServiceException")
    # the Map failed in item 1 only; its inner task carries the estimator's error
    assert (found["TrainCandidates"].status, found["TrainCandidates"].iterations) == ("FAILED", 2)
    train = found["TrainCandidate"]
    assert (train.status, train.parent, train.entries, train.failed, train.failed_iterations) == (
        "FAILED",
        "TrainCandidates",
        2,
        1,
        [1],
    )
    # the failure path ran fine: RecordFailure is not charged with the other item's events
    for name in ("Validate", "IsDatasetValid", "FailedTrainCandidates", "RecordFailure", "NotifyFailure"):
        assert found[name].status == "SUCCEEDED", found[name]
    assert (found["PipelineFailed"].status, found["PipelineFailed"].kind) == ("FAILED", "Fail")
    failure = run.failure
    assert failure is not None
    assert (failure.step, failure.error, failure.cause, failure.within, failure.iteration, failure.iterations) == (
        "TrainCandidate",
        "SpecError",
        FIT_CAUSE,
        "TrainCandidates",
        1,
        2,
    )


def test_the_rendering_names_the_failing_step_error_and_cause_not_the_fail_states_text() -> None:
    lines = render_run(recorded("training_failed"))
    text = "\n".join(lines)
    assert "  SUCCEEDED PlanTraining (2 attempts, retried after Lambda.ServiceException)" in lines
    assert "  FAILED    TrainCandidates (2 items; failed: item 1)" in lines
    assert f"  FAILED      TrainCandidate x2 (1 failed: item 1): SpecError: {FIT_CAUSE}" in lines
    assert "  SUCCEEDED RecordFailure" in lines
    assert "  FAILED    PipelineFailed (a Fail state: ends the run)" in lines
    assert lines[-3:] == [
        "  failed at TrainCandidate (item 1 of 2 in TrainCandidates)",
        "    error:  SpecError",
        f"    cause:  {FIT_CAUSE}",
    ]
    assert "A pipeline step failed after its retries" not in text and "stackTrace" not in text


def test_invalid_data_names_the_report_and_renders_its_failed_checks() -> None:
    run = recorded("invalid_data")
    assert [(s.name, s.status) for s in run.steps] == [
        ("Validate", "SUCCEEDED"),
        ("IsDatasetValid", "SUCCEEDED"),
        ("NotifyInvalidDataset", "SUCCEEDED"),
        ("DatasetInvalid", "FAILED"),
    ]
    failure = run.failure
    assert failure is not None and (failure.step, failure.error) == ("Validate", "DatasetInvalid")
    assert failure.report_uri is not None and failure.report_uri.endswith("/validation.json")
    assert "/reports/churn/datasets/" in failure.report_uri
    failure.checks = [
        {
            "check": "column.max",
            "column": "tenure_months",
            "status": "failed",
            "message": "3 values above the maximum 72",
            "failing_count": 3,
            "examples": [{"row": r, "value": "500"} for r in (1, 4, 5, 9)],
        }
    ]
    lines = render_run(run)
    assert lines[-6:] == [
        "  failed: the dataset is invalid (Validate): 2 failed checks (column.max, column.allowed)",
        "    FAIL column.max [tenure_months] (3 rows): 3 values above the maximum 72",
        "         row 1: value '500'",
        "         row 4: value '500'",
        "         row 5: value '500'",
        f"    report: {failure.report_uri}",
    ]


def _topological_shuffle(events: list[dict[str, Any]], seed: int) -> list[dict[str, Any]]:
    """Another order AWS could have written: each event still after the one it follows."""
    rng = random.Random(seed)
    children: dict[int, list[dict[str, Any]]] = {}
    for event in events:
        children.setdefault(int(event.get("previousEventId") or 0), []).append(event)
    ready = list(children.get(0, []))
    ordered: list[dict[str, Any]] = []
    while ready:
        event = ready.pop(rng.randrange(len(ready)))
        ordered.append(event)
        ready.extend(children.get(int(event["id"]), []))
    assert len(ordered) == len(events)
    return ordered


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=0, max_value=2**32 - 1))
def test_interleaving_parallel_branches_differently_changes_no_step(seed: int) -> None:
    # metamorphic: Map items run at once, so their events interleave in any order; each event is
    # charged through the state it follows, so the steps and the failure are the same in every order
    history = HISTORIES["training_failed"]
    expected = recorded("training_failed")
    shuffled = run_of(_topological_shuffle(history["events"], seed), error="PipelineFailed")
    assert {s.name: (s.status, s.attempts, s.failed_iterations) for s in shuffled.steps} == {
        s.name: (s.status, s.attempts, s.failed_iterations) for s in expected.steps
    }
    assert shuffled.failure == expected.failure


def _event(eid: int, prev: int, kind: str, **details: Any) -> dict[str, Any]:
    key = {
        "TaskStateEntered": "stateEnteredEventDetails",
        "TaskStateExited": "stateExitedEventDetails",
        "FailStateEntered": "stateEnteredEventDetails",
        "TaskFailed": "taskFailedEventDetails",
        "TaskSucceeded": "taskSucceededEventDetails",
        "TaskScheduled": "taskScheduledEventDetails",
        "ExecutionFailed": "executionFailedEventDetails",
    }.get(kind)
    event: dict[str, Any] = {"id": eid, "previousEventId": prev, "type": kind}
    if key:
        event[key] = details
    return event


def test_a_task_failing_for_good_after_its_retries_is_failed_with_every_attempt() -> None:
    cause = json.dumps({"errorMessage": "Rate exceeded", "errorType": "Lambda.ServiceException"})
    events = [
        _event(1, 0, "ExecutionStarted"),
        _event(2, 1, "TaskStateEntered", name="Gate", input="{}"),
        _event(3, 2, "TaskScheduled"),
        _event(4, 3, "TaskFailed", error="Lambda.ServiceException", cause=cause),
        _event(5, 4, "TaskScheduled"),
        _event(6, 5, "TaskFailed", error="Lambda.ServiceException", cause=cause),
        _event(7, 6, "TaskStateExited", name="Gate", output="{}"),
        _event(8, 7, "TaskStateEntered", name="RecordFailure", input='{"failure": {"step": "Gate"}}'),
        _event(9, 8, "TaskScheduled"),
        _event(10, 9, "TaskSucceeded", output='{"StatusCode": 200, "Payload": {"recorded": true}}'),
        _event(11, 10, "TaskStateExited", name="RecordFailure", output="{}"),
        _event(12, 11, "FailStateEntered", name="PipelineFailed", input="{}"),
        _event(13, 12, "ExecutionFailed", error="PipelineFailed", cause="A pipeline step failed"),
    ]
    run = run_of(events, error="PipelineFailed", cause="A pipeline step failed")
    gate = steps(run)["Gate"]
    assert (gate.status, gate.attempts, gate.retries, gate.error) == ("FAILED", 2, 1, "Lambda.ServiceException")
    assert steps(run)["RecordFailure"].status == "SUCCEEDED"
    assert run.failure is not None
    assert (run.failure.step, run.failure.cause, run.failure.attempts) == ("Gate", "Rate exceeded", 2)
    assert "  failed at Gate after 2 attempts" in render_run(run)


def test_a_succeeded_run_has_no_failure_and_a_wait_that_gives_up_exits_3() -> None:
    events = [
        _event(1, 0, "ExecutionStarted"),
        _event(2, 1, "TaskStateEntered", name="Validate", input="{}"),
        _event(3, 2, "TaskScheduled"),
        _event(
            4, 3, "TaskSucceeded", output='{"StatusCode": 200, "Payload": {"valid": true, "report_uri": "s3://b/k"}}'
        ),
        _event(5, 4, "TaskStateExited", name="Validate", output="{}"),
    ]
    run = run_of(events, status="SUCCEEDED")
    assert run.failure is None and [s.status for s in run.steps] == ["SUCCEEDED"]
    assert issubclass(WaitTimeoutError, MlopsError) and WaitTimeoutError.exit_code == 3


def test_a_run_timed_out_mid_step_names_that_step() -> None:
    events = [
        _event(1, 0, "ExecutionStarted"),
        _event(2, 1, "TaskStateEntered", name="Validate", input="{}"),
        _event(3, 2, "TaskScheduled"),
        _event(4, 3, "ExecutionTimedOut"),
    ]
    run = run_of(events, status="TIMED_OUT")
    assert [(s.name, s.status) for s in run.steps] == [("Validate", "ABORTED")]
    assert run.failure is not None and (run.failure.step, run.failure.error) == ("Validate", "TIMED_OUT")
