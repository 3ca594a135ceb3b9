"""Direct table access for tests: snapshots and tampering, on the fake or on moto alike."""

from __future__ import annotations

from typing import Any

from mlops.registry.dynamo import DynamoStore
from mlops.registry.memory import MemoryStore
from mlops.registry.tables import deserialize, serialize
from mlops.registry.versions import Registry


def all_items(registry: Registry, table: str) -> list[dict[str, Any]]:
    store = registry.store
    if isinstance(store, MemoryStore):
        items = store.raw_items(table)
    else:
        assert isinstance(store, DynamoStore)
        items = []
        for page in store.client.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
            items += [deserialize(i) for i in page["Items"]]
    return sorted(items, key=lambda i: (str(i.get("pk")), str(i.get("sk", i.get("seq")))))


def snapshot(registry: Registry) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Everything in both tables, to show a refused call changed nothing."""
    return all_items(registry, registry.table), all_items(registry, registry.audit.table)


def raw_put(registry: Registry, table: str, item: dict[str, Any]) -> None:
    """Write an item the way someone with table access could: no condition, no audit."""
    store = registry.store
    if isinstance(store, MemoryStore):
        store.raw_put(table, item)
    else:
        assert isinstance(store, DynamoStore)
        store.client.put_item(TableName=table, Item=serialize(item))


def raw_delete(registry: Registry, table: str, key: dict[str, Any]) -> None:
    store = registry.store
    if isinstance(store, MemoryStore):
        store.raw_delete(table, key)
    else:
        assert isinstance(store, DynamoStore)
        store.client.delete_item(TableName=table, Key=serialize(key))


def audit_items(registry: Registry, chain: str) -> list[dict[str, Any]]:
    return list(registry.audit.items(chain))
