"""Notifications in the three state machines: retried on SNS's transient errors, and never the
reason a run ends differently from what happened to the model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

STATEMACHINES = Path(__file__).resolve().parents[2] / "statemachines"
SNS_TRANSIENT = {"SNS.InternalErrorException", "SNS.ThrottledException", "SNS.KMSThrottlingException"}


def _states(name: str) -> dict[str, Any]:
    return dict(json.loads((STATEMACHINES / name).read_text())["States"])


def _notify(states: dict[str, Any]) -> dict[str, Any]:
    return {n: s for n, s in states.items() if s["Type"] == "Task" and s["Resource"].endswith("sns:publish")}


@pytest.mark.parametrize("machine", ["training.asl.json", "deployment.asl.json", "monitoring.asl.json"])
def test_every_notification_retries_sns_errors_with_backoff_and_catches_everything(machine: str) -> None:
    # GIVEN a state machine's SNS publish tasks
    states = _states(machine)
    notify = _notify(states)
    assert notify, machine
    for name, state in notify.items():
        # THEN each retries SNS's transient errors with back-off, like the function tasks ...
        retry = state["Retry"][0]
        assert set(retry["ErrorEquals"]) >= SNS_TRANSIENT, name
        assert retry["MaxAttempts"] >= 2 and retry["BackoffRate"] > 1 and retry["IntervalSeconds"] >= 1, name
        # ... and a notification that still fails is caught: it goes where a sent one goes, or to a
        # state that records the failure and then goes there
        (catch,) = state["Catch"]
        assert catch["ErrorEquals"] == ["States.ALL"], name
        target = states[catch["Next"]]
        assert catch["Next"] == state["Next"] or target["Next"] == state["Next"], name


def test_a_failed_deployment_notification_is_audited_and_the_outcome_kept() -> None:
    # GIVEN the deployment machine's outcome notifications
    states = _states("deployment.asl.json")
    outcomes = {"NotifyDeployed": "Deployed", "NotifyRolledBack": "RolledBack", "NotifyRejected": "Rejected"}
    outcomes["NotifyTimedOut"] = "TimedOut"
    for notify, outcome in outcomes.items():
        record = states[states[notify]["Catch"][0]["Next"]]
        # THEN the catch runs the NotificationFailed function (audit notification.failed), whose own
        # failure is caught too, and both lead to the real outcome ...
        assert record["Parameters"]["FunctionName"] == "${NotificationFailedFunctionArn}", notify
        assert record["Next"] == outcome and record["Catch"][0]["Next"] == outcome, notify
        # ... whose output says whether the notification was sent
        assert states[outcome]["Parameters"]["notification.$"] == "$.notification", outcome
        assert states[notify]["ResultPath"] == record["ResultPath"] == "$.notification", notify
    # AND the failure path's own notification ends in the failure it reports
    assert states["NotifyFailure"]["Catch"][0]["Next"] == "DeploymentFailed"


@pytest.mark.parametrize("machine", ["training.asl.json", "deployment.asl.json", "monitoring.asl.json"])
def test_a_crashed_environment_is_retried_once_and_short_steps_retry_a_timeout(machine: str) -> None:
    # GIVEN every function task (not the approval wait, which waits for a person)
    def tasks(states: dict[str, Any]) -> dict[str, Any]:
        found = {}
        for name, state in states.items():
            if state["Type"] == "Task" and state["Resource"] == "arn:aws:states:::lambda:invoke":
                found[name] = state
            if "ItemProcessor" in state:
                found.update(tasks(state["ItemProcessor"]["States"]))
        return found

    for name, state in tasks(_states(machine)).items():
        retried = {e: r["MaxAttempts"] for r in state["Retry"] for e in r["ErrorEquals"]}
        # THEN a killed environment is run once more (its step is idempotent per execution)
        assert retried.get("Runtime.ExitError") == 1, name
        # AND a timeout once more, except where the data's size is the likely cause
        heavy = name in {"Validate", "TrainCandidate", "CollectCandidate", "Evaluate", "Sketch", "Analyze"}
        assert ("Sandbox.Timedout" in retried) is not heavy, name
