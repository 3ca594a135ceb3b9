"""The window end only moves forward: overlapping runs and retried analyses never move it back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from mlops.monitoring.analysis import _record_run
from mlops.monitoring.services import MonitorServices, MonitorSettings, get_monitor_state
from mlops.registry.versions import Registry

T0 = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


def _record(registry: Registry, run_id: str, previous: str | None, end: datetime, verdict: str = "no_drift") -> None:
    services = MonitorServices(bucket="data", registry=registry, s3=None, settings=MonitorSettings())
    window = {"start": previous or (T0 - timedelta(days=1)).isoformat(), "end": end.isoformat()}
    summary: dict[str, Any] = {
        "model": "churn",
        "run_id": run_id,
        "version": 1,
        "verdict": verdict,
        "score": 0.5,
        "window": window,
        "drifted_features": [],
        "rows": 500,
        "report_key": f"reports/churn/v1/drift/{run_id}.json",
        "trigger": "manual",
    }
    plan = {"planned_at": end.isoformat(), "previous_window_end": previous}
    _record_run(services, summary, plan, now=end, request_id=None)


def test_an_older_run_finishing_last_does_not_move_the_end_back() -> None:
    registry = Registry.in_memory()
    # GIVEN a scheduled run planned at T0+1h and a manual one planned at T0+2h, both from no end
    # WHEN the newer one finishes first, then the older one
    _record(registry, "newer", None, T0 + timedelta(hours=2))
    _record(registry, "older", None, T0 + timedelta(hours=1))
    # THEN the end stays where the newer run left it, and both runs are recorded
    state = get_monitor_state(registry, "churn")
    assert state["last_window_end"] == (T0 + timedelta(hours=2)).isoformat()
    assert state["last_run"] == "older"


def test_the_next_run_advances_it_from_there_and_too_small_windows_do_not() -> None:
    registry = Registry.in_memory()
    first = (T0 + timedelta(hours=1)).isoformat()
    _record(registry, "r1", None, T0 + timedelta(hours=1))
    # WHEN a run planned from that end finishes THEN it advances
    _record(registry, "r2", first, T0 + timedelta(hours=2))
    assert get_monitor_state(registry, "churn")["last_window_end"] == (T0 + timedelta(hours=2)).isoformat()
    # AND a too-small window leaves it for the next run to accumulate
    _record(registry, "r3", (T0 + timedelta(hours=2)).isoformat(), T0 + timedelta(hours=3), verdict="too_small")
    assert get_monitor_state(registry, "churn")["last_window_end"] == (T0 + timedelta(hours=2)).isoformat()
