"""Window planning, capture prefixes and shards: pure functions of time and object lists."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mlops.errors import InputError
from mlops.monitoring.captures import MAX_WINDOW, capture_prefixes, key_hour, make_shards, plan_window
from mlops.monitoring.schedules import schedule_period

NOW = datetime(2026, 11, 22, 10, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("expression", "period"),
    [
        ("rate(1 day)", timedelta(days=1)),
        ("rate(5 minutes)", timedelta(minutes=5)),
        ("rate(2 hours)", timedelta(hours=2)),
        ("cron(0 * * * ? *)", timedelta(hours=1)),
        ("cron(15 6 * * ? *)", timedelta(days=1)),
    ],
)
def test_schedule_period(expression: str, period: timedelta) -> None:
    # GIVEN a schedule expression WHEN its period is computed THEN it is the interval between runs
    assert schedule_period(expression) == period


def test_schedule_period_refuses_other_text() -> None:
    # GIVEN text that is no schedule WHEN parsed THEN the error names it
    with pytest.raises(InputError, match="every day"):
        schedule_period("every day")


def test_first_window_is_one_period() -> None:
    # GIVEN no previous run WHEN planning THEN the window is one schedule period back from now
    assert plan_window(NOW, None, timedelta(hours=6)) == (NOW - timedelta(hours=6), NOW)


def test_window_starts_where_the_last_run_ended() -> None:
    # GIVEN a run that ended 90 minutes ago WHEN planning THEN nothing is read twice or skipped
    last = NOW - timedelta(minutes=90)
    assert plan_window(NOW, last, timedelta(days=1)) == (last, NOW)


def test_window_is_capped_and_never_backwards() -> None:
    # GIVEN a last run long ago, and one "in the future" (clock skew)
    long_ago = NOW - timedelta(days=400)
    future = NOW + timedelta(minutes=5)
    # WHEN planning THEN the window is capped at MAX_WINDOW, and a future end falls back to one period
    assert plan_window(NOW, long_ago, timedelta(days=1))[0] == NOW - MAX_WINDOW
    assert plan_window(NOW, future, timedelta(hours=1)) == (NOW - timedelta(hours=1), NOW)


def test_capture_prefixes_hourly_then_daily() -> None:
    # GIVEN a 2.5-hour window and a 4-day window
    short = capture_prefixes("churn", NOW - timedelta(hours=2, minutes=30), NOW)
    long = capture_prefixes("churn", NOW - timedelta(days=4), NOW)
    # THEN short windows list hour folders (including the partial first hour), long ones day folders
    assert short == ["captures/churn/2026/11/22/08/", "captures/churn/2026/11/22/09/", "captures/churn/2026/11/22/10/"]
    assert long[0] == "captures/churn/2026/11/18/" and long[-1] == "captures/churn/2026/11/22/" and len(long) == 5


def test_key_hour_reads_the_capture_layout() -> None:
    # GIVEN capture keys WHEN their hour is read THEN it comes from the path; other keys give None
    assert key_hour("captures/churn/2026/11/22/09/abc.jsonl") == datetime(2026, 11, 22, 9, tzinfo=UTC)
    assert key_hour("labels/churn/2026/11/22/x.csv") is None


def test_shards_respect_bytes_and_object_limits() -> None:
    # GIVEN 7 objects of 10 bytes, and one object bigger than the byte limit
    objects = [(f"k{i}", 10) for i in range(7)] + [("big", 1000)]
    # WHEN cut into shards of at most 25 bytes and 2 objects
    shards = make_shards(objects, max_bytes=25, max_objects=2)
    # THEN every key is in exactly one shard, in order, and limits hold (a big object is alone)
    assert [k for shard in shards for k in shard] == [k for k, _ in objects]
    assert all(len(s) <= 2 for s in shards)
    assert ["big"] in shards
    assert make_shards([], max_bytes=10, max_objects=1) == []
