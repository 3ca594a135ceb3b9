"""Every write to the audit table is a conditional Put (``attribute_not_exists``): checked on the wire.

The audit trail's only writer is :meth:`mlops.registry.audit.AuditTrail.append`. These tests watch every
DynamoDB request a registry lifecycle sends to moto, and race a rival writer into the gap between
reading a chain's head and writing the next event: the loser gets a conflict, never an overwrite.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mlops.errors import ConflictError
from mlops.registry.audit import AuditTrail
from mlops.registry.dynamo import DynamoStore
from mlops.registry.specs import SpecStore
from mlops.registry.tables import Condition, Operation, Put
from mlops.registry.versions import Registry
from mlops.spec.model import load_spec
from tests.integration.registry.conftest import AUDIT_TABLE, REGISTRY_TABLE
from tests.unit.registry.helpers import audit_items

ROOT = Path(__file__).resolve().parents[3]


def watch_requests(client: Any) -> list[tuple[str, dict[str, Any]]]:
    """Every request the client sends from now on, as (operation, parameters)."""
    seen: list[tuple[str, dict[str, Any]]] = []

    def record(params: dict[str, Any], model: Any, **_: Any) -> None:
        seen.append((model.name, params))

    client.meta.events.register("provide-client-params.dynamodb.*", record)
    return seen


def audit_writes(seen: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
    """The writes among ``seen`` that touch the audit table (single-item or inside a transaction)."""
    writes = []
    for operation, params in seen:
        single = operation in ("PutItem", "UpdateItem", "DeleteItem") and params.get("TableName") == AUDIT_TABLE
        if single or (operation == "BatchWriteItem" and AUDIT_TABLE in params.get("RequestItems", {})):
            writes.append((operation, params))
        elif operation == "TransactWriteItems":
            for item in params["TransactItems"]:
                ((kind, request),) = item.items()
                if request.get("TableName") == AUDIT_TABLE:
                    writes.append((f"Transact{kind}", request))
    return writes


def test_every_audit_write_of_a_lifecycle_is_a_put_under_attribute_not_exists(registry: Registry) -> None:
    # GIVEN the requests the registry's client sends
    assert isinstance(registry.store, DynamoStore)
    seen = watch_requests(registry.store.client)
    # WHEN a model goes through a lifecycle: spec, versions, approvals, a rejection, a champion, an archive
    SpecStore(registry).put(load_spec(ROOT / "examples" / "specs" / "churn.yaml"), actor="alice")
    first = registry.register_version("churn", actor="pipeline", metrics={"roc_auc": 0.9})
    second = registry.register_version("churn", actor="pipeline", metrics={"roc_auc": 0.8})
    registry.approve("churn", first.version, actor="bob")
    registry.reject("churn", second.version, actor="bob", reason="worse")
    registry.set_alias("churn", "champion", first.version, actor="bob")
    third = registry.register_version("churn", actor="pipeline", metrics={"roc_auc": 0.85})
    registry.approve("churn", third.version, actor="bob")
    registry.archive("churn", third.version, actor="bob", reason="retired")
    # THEN each audit event was one Put inside a transaction, conditioned on the key not existing
    writes = audit_writes(seen)
    events = audit_items(registry, "churn")
    assert len(writes) == len(events) >= 6
    for kind, request in writes:
        assert kind == "TransactPut", kind
        names = request["ExpressionAttributeNames"]
        condition = request["ConditionExpression"]
        assert condition.startswith("attribute_not_exists("), condition
        assert names[condition.removeprefix("attribute_not_exists(").rstrip(")")] == "pk"
    # AND nothing else ever wrote, updated or deleted an audit item
    assert {kind for kind, _ in writes} == {"TransactPut"}


class RivalFirst(DynamoStore):
    """A store whose first transaction is preceded by a rival writer's append to the same chain.

    That is the interleaving real concurrency produces: the head was read, then someone else took
    the next position, then our transaction arrives.
    """

    def __init__(self, client: Any, schemas: Any, rival: AuditTrail, chain: str) -> None:
        super().__init__(client, schemas)
        self.rival, self.chain, self.raced = rival, chain, False

    def transact(self, ops: Any) -> None:
        if not self.raced:
            self.raced = True
            self.rival.append(self.chain, actor="rival", action="test.event", subject="rival")
        super().transact(ops)


def racing_trail(registry: Registry, *, max_attempts: int) -> AuditTrail:
    assert isinstance(registry.store, DynamoStore)
    rival = AuditTrail.for_dynamodb(registry.store.client, audit_table=AUDIT_TABLE, registry_table=REGISTRY_TABLE)
    store = RivalFirst(registry.store.client, list(registry.store.schemas.values()), rival, "churn")
    return AuditTrail(store, AUDIT_TABLE, anchor_table=REGISTRY_TABLE, max_attempts=max_attempts)


def test_appending_at_a_taken_seq_is_a_conflict_not_an_overwrite(registry: Registry) -> None:
    # GIVEN a chain of two events
    for i in range(2):
        registry.audit.append("churn", actor=f"user-{i}", action="test.event", subject=f"thing/{i}")
    # WHEN an append reads the head (seq 2), a rival takes seq 3, and the append may try once only
    trail = racing_trail(registry, max_attempts=1)
    with pytest.raises(ConflictError, match="stayed busy"):
        trail.append("churn", actor="mallory", action="test.event", subject="overwrite?")
    # THEN the rival's event at seq 3 is intact and nothing of the loser was written
    items = audit_items(registry, "churn")
    assert [(i["seq"], i["actor"]) for i in items] == [(1, "user-0"), (2, "user-1"), (3, "rival")]
    assert registry.audit.verify("churn").ok


def test_the_loser_of_a_race_appends_after_the_winner(registry: Registry) -> None:
    registry.audit.append("churn", actor="user-0", action="test.event", subject="thing/0")
    event = racing_trail(registry, max_attempts=3).append("churn", actor="late", action="test.event", subject="x")
    assert event.seq == 3
    assert [(i["seq"], i["actor"]) for i in audit_items(registry, "churn")] == [
        (1, "user-0"),
        (2, "rival"),
        (3, "late"),
    ]
    assert registry.audit.verify("churn").ok


def test_a_change_cannot_carry_its_own_write_to_the_audit_table(registry: Registry) -> None:
    # GIVEN a caller that passes an unconditional Put on the audit table as "its change"
    sneaky: list[Operation] = [Put(AUDIT_TABLE, {"pk": "churn", "seq": 1, "actor": "mallory"})]
    # THEN append refuses before writing anything
    with pytest.raises(ValueError, match="may not write the audit table"):
        registry.audit.append("churn", actor="mallory", action="x", subject="y", with_ops=sneaky)
    # AND a conditional one is refused too: the event's own Put is the only audit write
    guarded: list[Operation] = [Put(AUDIT_TABLE, {"pk": "churn", "seq": 9}, Condition(item_exists=False))]
    with pytest.raises(ValueError, match="may not write the audit table"):
        registry.audit.append("churn", actor="mallory", action="x", subject="y", with_ops=guarded)
    assert audit_items(registry, "churn") == []
