"""Retraining on drift: at most once per cooldown, audited either way, one winner under concurrency."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from mlops.data.catalog import DatasetCatalog
from mlops.data.datasets import DatasetVersion
from mlops.monitoring.retrain_start import maybe_retrain
from mlops.monitoring.services import MonitorServices, MonitorSettings, get_monitor_state
from mlops.registry.versions import Registry

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
TRAINING = "arn:aws:states:us-east-1:123456789012:stateMachine:training"


class FakeStepFunctions:
    """Records start_execution calls; refuses a repeated name like Step Functions does."""

    def __init__(self, fail: bool = False) -> None:
        self.started: list[dict[str, Any]] = []
        self.running: set[str] = set()
        self.fail = fail
        self.lock = threading.Lock()

    def describe_execution(self, executionArn: str) -> dict[str, str]:
        name = executionArn.rsplit(":", 1)[-1]
        if name in self.running:
            return {"status": "RUNNING"}
        if any(s["name"] == name for s in self.started):
            return {"status": "SUCCEEDED"}
        raise RuntimeError("ExecutionDoesNotExist")

    def start_execution(self, **kwargs: Any) -> dict[str, str]:
        if self.fail:
            raise RuntimeError("AccessDenied")
        with self.lock:
            if any(s["name"] == kwargs["name"] for s in self.started):
                raise RuntimeError("ExecutionAlreadyExists")
            self.started.append(kwargs)
        return {"executionArn": f"{TRAINING}:{kwargs['name']}"}


def _services(registry: Registry, sfn: FakeStepFunctions) -> MonitorServices:
    settings = MonitorSettings(training_state_machine_arn=TRAINING)
    return MonitorServices(bucket="data", registry=registry, s3=None, settings=settings, sfn=sfn)


@pytest.fixture
def registry() -> Registry:
    registry = Registry.in_memory()
    for version_id, when in (("v-old", "2026-11-01T00:00:00+00:00"), ("v-new", "2026-11-20T00:00:00+00:00")):
        DatasetCatalog(registry).record(
            "churn",
            DatasetVersion(
                bucket="data",
                key="datasets/churn/train.csv",
                version_id=version_id,
                sha256="0" * 64 if version_id == "v-old" else "1" * 64,
                size=100,
                rows=10,
                columns=["a"],
                column_types={"a": "int"},
                schema_fingerprint="f",
                uploaded_by="bob",
                uploaded_at=when,
            ),
            actor="bob",
        )
    # The champion, v1, was trained on the older version: the newer one is new to it.
    champion = DatasetCatalog(registry).get("churn", "v-old")
    registry.register_version("churn", actor="pipeline:training", dataset_version=champion.ref())
    return registry


def _run(run_id: str) -> dict[str, Any]:
    return {"run_id": run_id, "version": 1, "drifted_features": ["tenure_months"], "report_key": "reports/x.json"}


def _actions(registry: Registry) -> list[str]:
    events, _ = registry.audit.list_events("churn", limit=100)
    return [e.action for e in reversed(events) if e.action.startswith("monitor.")]


def test_first_drift_starts_training_on_the_latest_dataset(registry: Registry) -> None:
    # GIVEN two recorded dataset versions and no retraining yet
    sfn = FakeStepFunctions()
    # WHEN a drifted run asks for retraining
    result = maybe_retrain(_services(registry, sfn), "churn", now=NOW, cooldown_hours=24, run=_run("m-1"))
    # THEN the training pipeline starts once, on the newest version, with the upload input shape
    assert result["action"] == "started"
    assert len(sfn.started) == 1
    started = sfn.started[0]
    assert started["stateMachineArn"] == TRAINING and started["name"].startswith("churn-retrain-")
    upload = json.loads(started["input"])["upload"]
    assert (
        upload["version_id"] == "v-new" and upload["model"] == "churn" and upload["key"] == "datasets/churn/train.csv"
    )
    # AND it is audited with the claim on the monitor item
    assert _actions(registry) == ["monitor.retrain_started"]
    assert get_monitor_state(registry, "churn")["last_retrain_run"] == "m-1"


def test_drift_inside_the_cooldown_is_skipped_and_audited(registry: Registry) -> None:
    # GIVEN a retraining 3 hours ago with a 24-hour cooldown
    sfn = FakeStepFunctions()
    services = _services(registry, sfn)
    maybe_retrain(services, "churn", now=NOW, cooldown_hours=24, run=_run("m-1"))
    # WHEN another run drifts inside the cooldown
    result = maybe_retrain(services, "churn", now=NOW + timedelta(hours=3), cooldown_hours=24, run=_run("m-2"))
    # THEN nothing starts, and the audit trail says until when
    assert result == {
        "action": "skipped",
        "reason": "cooldown",
        "cooldown_until": (NOW + timedelta(hours=24)).isoformat(timespec="microseconds"),
    }
    assert len(sfn.started) == 1
    assert _actions(registry) == ["monitor.retrain_started", "monitor.retrain_skipped"]
    events, _ = registry.audit.list_events("churn", limit=1)
    assert events[0].after["cooldown_until"].startswith("2026-11-23T10:00:00")


def test_after_the_cooldown_training_starts_again(registry: Registry) -> None:
    # GIVEN a retraining 25 hours ago with a 24-hour cooldown
    sfn = FakeStepFunctions()
    services = _services(registry, sfn)
    maybe_retrain(services, "churn", now=NOW, cooldown_hours=24, run=_run("m-1"))
    # WHEN a run drifts after the cooldown THEN a second training starts
    result = maybe_retrain(services, "churn", now=NOW + timedelta(hours=25), cooldown_hours=24, run=_run("m-2"))
    assert result["action"] == "started"
    assert len(sfn.started) == 2


def test_a_retried_analysis_does_not_start_twice(registry: Registry) -> None:
    # GIVEN a run that started retraining WHEN the same run is retried THEN it reports the same execution
    sfn = FakeStepFunctions()
    services = _services(registry, sfn)
    first = maybe_retrain(services, "churn", now=NOW, cooldown_hours=0, run=_run("m-1"))
    again = maybe_retrain(services, "churn", now=NOW + timedelta(seconds=5), cooldown_hours=0, run=_run("m-1"))
    assert again["execution_name"] == first["execution_name"] and again.get("repeat") is True
    assert len(sfn.started) == 1


def test_concurrent_drifted_runs_start_one_training(registry: Registry) -> None:
    # GIVEN 8 runs that drift at the same moment
    sfn = FakeStepFunctions()
    services = _services(registry, sfn)
    results: list[dict[str, Any]] = []
    barrier = threading.Barrier(8)

    def run(index: int) -> None:
        barrier.wait()
        results.append(maybe_retrain(services, "churn", now=NOW, cooldown_hours=24, run=_run(f"m-{index}")))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # THEN exactly one wins the conditional claim; the others are skipped by the cooldown
    assert sorted(r["action"] for r in results) == ["skipped"] * 7 + ["started"]
    assert len(sfn.started) == 1
    assert _actions(registry).count("monitor.retrain_started") == 1


def test_a_failed_start_releases_the_claim(registry: Registry) -> None:
    # GIVEN a training pipeline that refuses to start
    services = _services(registry, FakeStepFunctions(fail=True))
    # WHEN a drifted run tries THEN the failure is audited and the cooldown is not consumed
    result = maybe_retrain(services, "churn", now=NOW, cooldown_hours=24, run=_run("m-1"))
    assert result["action"] == "failed"
    assert "last_retrain_at" not in get_monitor_state(registry, "churn")
    assert _actions(registry) == ["monitor.retrain_started", "monitor.retrain_failed"]


def test_no_dataset_means_skipped(registry: Registry) -> None:
    # GIVEN a model without recorded datasets WHEN it drifts THEN retraining is skipped with the reason
    result = maybe_retrain(_services(registry, FakeStepFunctions()), "other", now=NOW, cooldown_hours=1, run=_run("x"))
    assert result["action"] == "skipped" and result["code"] == "no_new_data"
    assert result["reason"].startswith("no dataset newer than the champion's (v1: no recorded training dataset)")


def test_a_retried_analysis_after_a_failed_start_tries_again_and_starts(registry: Registry) -> None:
    # GIVEN a run whose start was refused (the claim released whole)
    failing = FakeStepFunctions(fail=True)
    first = maybe_retrain(_services(registry, failing), "churn", now=NOW, cooldown_hours=24, run=_run("m-1"))
    assert first["action"] == "failed"
    state = get_monitor_state(registry, "churn")
    assert "last_retrain_run" not in state and "last_retrain_execution" not in state
    # WHEN the same run is retried and the pipeline now accepts THEN training really starts
    working = FakeStepFunctions()
    again = maybe_retrain(
        _services(registry, working), "churn", now=NOW + timedelta(seconds=5), cooldown_hours=24, run=_run("m-1")
    )
    assert again["action"] == "started" and len(working.started) == 1


def test_a_claim_whose_start_never_happened_is_started_by_the_retry(registry: Registry) -> None:
    # GIVEN a run that claimed the retraining, then died before starting it (no execution exists)
    sfn = FakeStepFunctions()
    services = _services(registry, sfn)
    claimed = maybe_retrain(services, "churn", now=NOW, cooldown_hours=24, run=_run("m-1"))
    sfn.started.clear()  # as if StartExecution had never been called
    # WHEN Step Functions retries that Analyze THEN the claimed execution is started, by its name
    again = maybe_retrain(services, "churn", now=NOW + timedelta(seconds=5), cooldown_hours=24, run=_run("m-1"))
    assert again["action"] == "started" and again.get("repeat") is True
    assert [s["name"] for s in sfn.started] == [claimed["execution_name"]]
    assert json.loads(sfn.started[0]["input"])["upload"]["version_id"] == "v-new"
