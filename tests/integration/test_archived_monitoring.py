"""An archived model's drift checks stop: a champion change keeps its schedule disabled, Plan refuses it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from mlops.errors import TransitionError
from mlops.monitoring.monitor import plan_run
from mlops.monitoring.schedules import ScheduleTarget, set_schedule_state, sync_champion_schedule
from mlops.monitoring.services import MonitorServices
from mlops.registry.specs import SpecStore
from mlops.registry.versions import Registry
from mlops.spec.model import load_spec

ROOT = Path(__file__).resolve().parents[2]
GROUP = "mlops-dev-monitoring"
TARGET = ScheduleTarget(
    group=GROUP,
    state_machine_arn="arn:aws:states:us-east-1:123456789012:stateMachine:mlops-dev-monitor",
    role_arn="arn:aws:iam::123456789012:role/mlops-dev-scheduler",
)


@pytest.fixture
def scheduler() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("scheduler", region_name="us-east-1")
        client.create_schedule_group(Name=GROUP)
        yield client


@pytest.fixture
def registry() -> Registry:
    registry = Registry.in_memory()
    SpecStore(registry).put(load_spec(ROOT / "examples" / "specs" / "churn.yaml"), actor="alice")
    version = registry.register_version("churn", actor="pipeline", spec_revision=1)
    registry.approve("churn", version.version, actor="carol")
    registry.set_alias("churn", "champion", version.version, actor="carol")
    return registry


def test_a_champion_change_keeps_an_archived_models_schedule_disabled(scheduler: Any, registry: Registry) -> None:
    # GIVEN the champion's schedule as the deployment creates it
    assert sync_champion_schedule(registry, "churn", scheduler=scheduler, target=TARGET)["action"] == "created"
    # WHEN the model is archived and its schedule paused, then a deployment syncs the schedule again
    registry.archive_model("churn", actor="dana")
    assert set_schedule_state(scheduler, GROUP, "churn", enabled=False)["action"] == "disabled"
    again = sync_champion_schedule(registry, "churn", scheduler=scheduler, target=TARGET)
    # THEN it stays disabled, with its expression and target kept for the unarchive
    assert again["action"] == "unchanged"
    schedule = scheduler.get_schedule(Name="churn", GroupName=GROUP)
    assert schedule["State"] == "DISABLED" and schedule["ScheduleExpression"] == "rate(1 day)"
    assert schedule["Target"]["Arn"] == TARGET.state_machine_arn
    # and after unarchiving, resuming it restores the same schedule
    registry.unarchive_model("churn", actor="dana")
    assert set_schedule_state(scheduler, GROUP, "churn", enabled=True)["action"] == "enabled"
    assert sync_champion_schedule(registry, "churn", scheduler=scheduler, target=TARGET)["action"] == "unchanged"


def test_an_archived_champion_whose_schedule_is_on_is_disabled_by_the_next_sync(scheduler: Any, registry: Registry):
    sync_champion_schedule(registry, "churn", scheduler=scheduler, target=TARGET)
    registry.archive_model("churn", actor="dana")  # archived by someone without Scheduler permissions
    assert sync_champion_schedule(registry, "churn", scheduler=scheduler, target=TARGET)["action"] == "disabled"
    assert scheduler.get_schedule(Name="churn", GroupName=GROUP)["State"] == "DISABLED"
    assert set_schedule_state(scheduler, GROUP, "nobody", enabled=False)["action"] == "absent"


def test_a_monitor_run_of_an_archived_model_is_refused_at_plan(registry: Registry) -> None:
    registry.archive_model("churn", actor="dana", reason="retired")
    services = MonitorServices(bucket="unused", registry=registry, s3=None)
    with pytest.raises(TransitionError, match=r"model 'churn' is archived \(retired\)"):
        plan_run({"model": "churn", "trigger": "schedule"}, services)
