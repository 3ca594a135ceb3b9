"""The failure-drill plan's own semantics (the drills themselves run in tests/e2e/test_drills.py)."""

from __future__ import annotations

import threading
import time

import pytest

from mlops.errors import InputError
from mlops_local.faults import FaultPlan


def test_a_hold_fault_matches_once_and_waits_until_the_plan_is_cleared() -> None:
    # GIVEN a plan that holds the check step of one model
    plan = FaultPlan()
    plan.add({"kind": "function.hold", "target": "DeploymentSteps", "match": ['"check"', "m1"], "delay_s": 30})
    # WHEN another model's check, or the model's other step, is invoked THEN nothing is taken
    assert plan.take_function("mlops-dev-DeploymentSteps", b'{"step": "check", "model": "m2"}') is None
    assert plan.take_function("mlops-dev-DeploymentSteps", b'{"step": "plan", "model": "m1"}') is None
    taken = plan.take_function("mlops-dev-DeploymentSteps", b'{"step": "check", "model": "m1"}')
    assert taken is not None and taken["kind"] == "function.hold"
    # AND the hold ends when the plan is cleared, not before
    released: list[bool] = []
    waiter = threading.Thread(target=lambda: released.append(plan.hold(taken["delay_s"])))
    started = time.monotonic()
    waiter.start()
    time.sleep(0.3)
    assert released == []
    plan.clear()
    waiter.join(5)
    assert released == [True] and time.monotonic() - started < 5


def test_a_hold_ends_by_itself_after_its_delay() -> None:
    plan = FaultPlan()
    started = time.monotonic()
    assert plan.hold(0.2) is False
    assert time.monotonic() - started >= 0.2


def test_an_unknown_kind_is_refused_naming_the_kinds() -> None:
    with pytest.raises(InputError, match=r"function\.hold"):
        FaultPlan().add({"kind": "function.pause"})
