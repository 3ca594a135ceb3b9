"""A failed run is recorded once, however often the recording state is retried, with or without
its run item. Run on the in-memory fake here and on DynamoDB (moto) by
tests/integration/registry/test_registry_on_moto.py."""

from __future__ import annotations

from mlops.registry.failures import failure_fields, record_failure
from mlops.registry.keys import training_run_key
from mlops.registry.versions import Registry

ERROR = {"Error": "States.TaskFailed", "Cause": "x" * 5000}


def test_failure_fields_cut_the_cause_and_keep_missing_values_as_none() -> None:
    assert failure_fields(ERROR, cause_limit=2000) == {"error": "States.TaskFailed", "cause": "x" * 2000}
    assert failure_fields(None, cause_limit=10) == {"error": None, "cause": "None"}


def test_a_failure_with_its_run_item_is_recorded_once_across_retries(registry: Registry) -> None:
    # GIVEN a failed run's record and its RUN item
    record = {"step": "Train", **failure_fields(ERROR, cause_limit=4000), "execution": "arn:exec-1"}
    item = {**training_run_key("churn", "exec-1"), "kind": "run", "status": "FAILED", **record}
    # WHEN the recording state runs twice (its first answer lost)
    first = record_failure(
        registry, "churn", actor="pipeline", action="pipeline.failed", subject="run/exec-1", record=record, item=item
    )
    again = record_failure(
        registry, "churn", actor="pipeline", action="pipeline.failed", subject="run/exec-1", record=record, item=item
    )
    # THEN one event and one item, and both calls answer the same
    assert first == again == {"recorded": True, **record}
    events, _ = registry.audit.list_events("churn")
    assert [e.action for e in events] == ["pipeline.failed"]
    assert events[0].after == record and events[0].subject == "run/exec-1"
    stored = registry.store.get(registry.table, training_run_key("churn", "exec-1"))
    assert stored is not None and stored["status"] == "FAILED" and stored["step"] == "Train"
    assert registry.audit.verify("churn").ok


def test_a_failure_without_an_item_is_recorded_once_per_record(registry: Registry) -> None:
    record = {**failure_fields(ERROR, cause_limit=2000), "execution": "arn:exec-2", "version": 3}
    for _ in range(2):
        record_failure(
            registry, "_platform", actor="pipeline", action="deployment.failed", subject="model/x", record=record
        )
    # a different execution's failure is its own event
    other = {**record, "execution": "arn:exec-3"}
    record_failure(registry, "_platform", actor="pipeline", action="deployment.failed", subject="model/x", record=other)
    events, _ = registry.audit.list_events("_platform")
    assert [e.after["execution"] for e in events] == ["arn:exec-3", "arn:exec-2"]  # newest first
