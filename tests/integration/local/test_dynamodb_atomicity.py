"""DynamoDB requests are atomic on moto once the local cloud's lock is installed.

moto rolls a cancelled ``TransactWriteItems`` back by putting back a copy of every table it
touched. Without a lock, a write that lands between the copy and the rollback is silently undone:
the writer was told it succeeded, its audit event is gone, and the next writer finds an anchor that
disagrees with its chain. The test makes that window wide (moto is slowed down inside the
cancelled transaction) so that the outcome does not depend on timing.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.dynamodb.models import DynamoDBBackend

from mlops.registry.tables import Condition, ConditionFailedError, Put
from mlops.registry.versions import Registry
from mlops_local.patches import serialize_dynamodb
from mlops_local.testing import create_registry_tables

REGISTRY, AUDIT = "mlops-dev-registry", "mlops-dev-audit"
PAUSE_S = 2.0


@pytest.fixture
def registry() -> Iterator[Registry]:
    serialize_dynamodb()
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_registry_tables(client, registry_table=REGISTRY, audit_table=AUDIT)
        yield Registry.for_dynamodb(client, registry_table=REGISTRY, audit_table=AUDIT)


def test_a_write_during_a_cancelled_transaction_is_not_undone(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a chain with one event and a registry item that a transaction will try to create again
    registry.audit.append("churn", actor="pipeline:1", action="dataset.record", subject="model/churn")
    registry.store.write(Put(REGISTRY, {"pk": "MODEL#churn", "sk": "TAKEN"}))
    # AND moto slowed down inside that transaction: after it copied the tables for its rollback,
    # it waits (up to PAUSE_S) for the other writer to finish
    other_done = threading.Event()
    paused = threading.Event()
    state = threading.local()
    original_transact, original_get = DynamoDBBackend.transact_write_items, DynamoDBBackend.get_item

    def transact(self: Any, *args: Any, **kwargs: Any) -> Any:
        state.inside = threading.current_thread().name == "cancelled"
        try:
            return original_transact(self, *args, **kwargs)
        finally:
            state.inside = False

    def get_item(self: Any, *args: Any, **kwargs: Any) -> Any:
        if getattr(state, "inside", False) and not paused.is_set():
            paused.set()
            other_done.wait(PAUSE_S)
        return original_get(self, *args, **kwargs)

    monkeypatch.setattr(DynamoDBBackend, "transact_write_items", transact)
    monkeypatch.setattr(DynamoDBBackend, "get_item", get_item)
    outcomes: dict[str, Any] = {}

    def cancelled() -> None:
        try:
            registry.audit.append(
                "churn",
                actor="pipeline:2",
                action="dataset.record",
                subject="model/churn",
                with_ops=[Put(REGISTRY, {"pk": "MODEL#churn", "sk": "TAKEN"}, Condition(item_exists=False))],
            )
        except ConditionFailedError as exc:
            outcomes["cancelled"] = exc

    def other() -> None:
        assert paused.wait(30), "the transaction never reached moto"
        outcomes["other"] = registry.audit.append(
            "churn", actor="pipeline:3", action="approval.request", subject="model/churn"
        )
        other_done.set()

    # WHEN one append's transaction is cancelled while another append to the same chain runs
    threads = [threading.Thread(target=cancelled, name="cancelled"), threading.Thread(target=other, name="other")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    # THEN the cancelled one wrote nothing and said so, and the other one's event is kept
    assert isinstance(outcomes.get("cancelled"), ConditionFailedError)
    assert outcomes["other"].seq == 2
    events, _ = registry.audit.list_events("churn")
    assert [(e.seq, e.actor) for e in events] == [(2, "pipeline:3"), (1, "pipeline:1")]
    # AND the chain and its anchor agree, so the next writer is not refused
    assert registry.audit.verify("churn").ok
    assert registry.audit.append("churn", actor="pipeline:4", action="x", subject="model/churn").seq == 3
