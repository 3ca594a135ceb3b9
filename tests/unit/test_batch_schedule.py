"""Batch schedules: EventBridge expressions parsed, due times found, the spec's batch section checked."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from mlops.errors import SpecError
from mlops.spec.model import parse_spec
from mlops.spec.schedule import ScheduleError, parse_schedule

BASE: dict[str, Any] = {
    "name": "churn",
    "task": "classification",
    "target": {"name": "churned", "classes": [0, 1]},
    "features": [{"name": "tenure", "type": "int", "min": 0}],
    "training": {"estimator": "sklearn.linear_model.LogisticRegression"},
}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_daily_cron_is_due_at_two_and_found_within_the_window() -> None:
    schedule = parse_schedule("cron(0 2 * * ? *)")
    assert schedule.latest(at("2026-12-06T02:10"), timedelta(hours=1)) == at("2026-12-06T02:00")
    assert schedule.latest(at("2026-12-06T02:00:59"), timedelta(hours=1)) == at("2026-12-06T02:00")
    assert schedule.latest(at("2026-12-06T01:59"), timedelta(hours=1)) is None
    assert schedule.latest(at("2026-12-06T03:01"), timedelta(hours=1)) is None


def test_weekday_names_ranges_steps_and_lists() -> None:
    schedule = parse_schedule("cron(0/30 8-10,14 ? JAN-MAR,DEC MON-FRI 2026-2027)")
    assert schedule.matches(at("2026-12-07T08:30"))  # a Monday in December
    assert schedule.matches(at("2026-12-07T14:00"))
    assert not schedule.matches(at("2026-12-06T08:30"))  # a Sunday
    assert not schedule.matches(at("2026-12-07T11:00"))
    assert not schedule.matches(at("2026-06-08T08:30"))  # June
    assert parse_schedule("cron(15 1 ? * 1 *)").matches(at("2026-12-06T01:15"))  # 1 = SUN


def test_rate_is_due_at_multiples_of_its_period_since_the_epoch() -> None:
    day = parse_schedule("rate(1 day)")
    assert day.latest(at("2026-12-06T00:40"), timedelta(hours=1)) == at("2026-12-06T00:00")
    assert day.latest(at("2026-12-06T01:01"), timedelta(hours=1)) is None
    hours = parse_schedule("rate(6 hours)")
    assert hours.latest(at("2026-12-06T12:14"), timedelta(minutes=15)) == at("2026-12-06T12:00")


@pytest.mark.parametrize(
    ("expression", "says"),
    [
        ("cron(0 2 * * *)", "6 fields"),
        ("cron(0 2 * * * *)", "exactly one of day-of-month and day-of-week"),
        ("cron(0 25 * * ? *)", "hours field: 25 is outside 0-23"),
        ("cron(0 2 L * ? *)", "L, W or #"),
        ("cron(0 2 ? * 2#1 *)", "L, W or #"),
        ("cron(x 2 * * ? *)", "minutes field: 'x' is not a number"),
        ("cron(0 5-2 * * ? *)", "runs backwards"),
        ("rate(0 days)", "not a schedule expression"),
        ("every day", "not a schedule expression"),
    ],
)
def test_bad_expressions_are_refused_naming_the_field(expression: str, says: str) -> None:
    with pytest.raises(ScheduleError, match=says.replace("(", r"\(")):
        parse_schedule(expression)


def test_the_spec_batch_section() -> None:
    spec = parse_spec({**BASE, "batch": {"schedule": "cron(0 2 * * ? *)", "input": "batch/churn/nightly.csv"}})
    assert (spec.batch.schedule, spec.batch.input, spec.batch.output) == (
        "cron(0 2 * * ? *)",
        "batch/churn/nightly.csv",
        None,
    )
    assert parse_spec(BASE).batch.schedule is None


@pytest.mark.parametrize(
    ("batch", "says"),
    [
        ({"schedule": "cron(0 2 * * *)", "input": "batch/churn/a.csv"}, "batch.schedule: .*6 fields"),
        ({"schedule": "rate(5 minutes)", "input": "batch/churn/a.csv"}, "batch.schedule: .*every 15 minutes"),
        ({"schedule": "rate(1 day)", "input": "batch/other/a.csv"}, "batch.input: 'batch/other/a.csv' must be"),
        ({"schedule": "rate(1 day)", "input": "data/churn.csv"}, "batch.input: .* under batch/churn/"),
        ({"schedule": "rate(1 day)", "input": "batch/churn/"}, "batch.input: .*object key"),
        ({"schedule": "rate(1 day)"}, "batch.input: a batch.schedule needs the input"),
        ({"input": "batch/churn/a.csv"}, "batch.schedule: .*add one"),
        ({"schedule": "rate(1 day)", "input": "batch/churn/a.csv", "output": "out/"}, "batch.output: 'out/'"),
        ({"schedule": "rate(1 day)", "input": "batch/churn/a.csv", "when": 1}, "batch.when"),
    ],
)
def test_a_bad_batch_section_is_refused_naming_the_field(batch: dict[str, Any], says: str) -> None:
    with pytest.raises(SpecError, match=says):
        parse_spec({**BASE, "batch": batch})
