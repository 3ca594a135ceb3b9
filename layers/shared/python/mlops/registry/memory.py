"""The registry's :class:`~mlops.registry.tables.Store` in memory, for unit tests.

Same conditions, the same number handling and the same all-or-nothing transactions as
:class:`mlops.registry.dynamo.DynamoStore`; why it stays beside moto, and how it is held equal to
DynamoDB, is in :mod:`mlops.registry.tables`.

Examples
--------
>>> from mlops.registry.tables import Condition, Put, TableSchema, Update
>>> store = MemoryStore([TableSchema("t", "pk", "sk")])
>>> store.write(Put("t", {"pk": "a", "sk": "1", "n": 1}, Condition(item_exists=False)))
{'pk': 'a', 'sk': '1', 'n': 1}
>>> store.write(Update("t", {"pk": "a", "sk": "1"}, add={"n": 1}))["n"]
2
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from mlops.registry.tables import (
    ABSENT,
    Check,
    Condition,
    ConditionFailedError,
    Operation,
    Page,
    Put,
    TableSchema,
    Update,
    deserialize,
    from_dynamo,
    serialize,
    to_dynamo,
)


def _holds(condition: Condition | None, item: Mapping[str, Any] | None) -> bool:
    if condition is None:
        return True
    if condition.item_exists is True and item is None:
        return False
    if condition.item_exists is False and item is not None:
        return False
    current = item or {}
    for attribute, expected in condition.equals.items():
        if expected is ABSENT:
            if attribute in current:
                return False
        elif attribute not in current or current[attribute] != from_dynamo(to_dynamo(expected)):
            return False
    for attribute, unwanted in condition.not_equals.items():
        if attribute in current and current[attribute] == from_dynamo(to_dynamo(unwanted)):
            return False
    return True


class MemoryStore:
    """:class:`Store` in memory, for unit tests: same conditions, numbers and transactions.

    One lock makes every call atomic, as DynamoDB makes every request atomic. Values are kept in
    DynamoDB's wire format, so whatever DynamoDB would refuse to store is refused here too.
    """

    def __init__(self, schemas: Sequence[TableSchema]) -> None:
        self.schemas = {s.name: s for s in schemas}
        self._tables: dict[str, dict[tuple[Any, Any], dict[str, Any]]] = {s.name: {} for s in schemas}
        self._lock = threading.RLock()

    # Test helpers: direct access, the way someone with table access could tamper.
    def raw_items(self, table: str) -> list[dict[str, Any]]:
        with self._lock:
            return [deserialize(v) for v in self._tables[table].values()]

    def raw_put(self, table: str, item: Mapping[str, Any]) -> None:
        with self._lock:
            self._tables[table][self._key_of(table, item)] = serialize(item)

    def raw_delete(self, table: str, key: Mapping[str, Any]) -> None:
        with self._lock:
            self._tables[table].pop(self._key_of(table, key), None)

    def _key_of(self, table: str, item: Mapping[str, Any]) -> tuple[Any, Any]:
        schema = self.schemas[table]
        try:
            return (from_dynamo(to_dynamo(item[schema.pk])), from_dynamo(to_dynamo(item[schema.sk])))
        except KeyError as exc:
            raise ValueError(f"item lacks key attribute {exc.args[0]!r}") from None

    def _current(self, table: str, key: Mapping[str, Any]) -> dict[str, Any] | None:
        raw = self._tables[table].get(self._key_of(table, key))
        return deserialize(raw) if raw is not None else None

    def get(self, table: str, key: Mapping[str, Any]) -> dict[str, Any] | None:
        with self._lock:
            return self._current(table, key)

    def _apply(self, op: Put | Update) -> dict[str, Any]:
        if isinstance(op, Put):
            new = dict(op.item)
            self._tables[op.table][self._key_of(op.table, new)] = serialize(new)
            return deserialize(serialize(new))
        item = self._current(op.table, op.key) or dict(op.key)
        for attribute, value in op.set.items():
            item[attribute] = value
        for attribute, value in op.set_if_absent.items():
            item.setdefault(attribute, value)
        for attribute, amount in op.add.items():
            item[attribute] = item.get(attribute, 0) + amount
        for attribute, values in op.append.items():
            item[attribute] = [*item.get(attribute, []), *values]
        for attribute in op.remove:
            item.pop(attribute, None)
        encoded = serialize(item)
        self._tables[op.table][self._key_of(op.table, item)] = encoded
        return deserialize(encoded)

    def write(self, op: Put | Update) -> dict[str, Any]:
        with self._lock:
            key = op.item if isinstance(op, Put) else op.key
            if not _holds(op.condition, self._current(op.table, key)):
                raise ConditionFailedError(f"condition failed on {op.table}")
            return self._apply(op)

    def transact(self, ops: Sequence[Operation]) -> None:
        with self._lock:
            seen = set()
            for op in ops:
                key = op.item if isinstance(op, Put) else op.key
                identity = (op.table, self._key_of(op.table, key))
                if identity in seen:
                    raise ValueError("a transaction cannot touch one item twice")
                seen.add(identity)
            failed = tuple(
                i
                for i, op in enumerate(ops)
                if not _holds(op.condition, self._current(op.table, op.item if isinstance(op, Put) else op.key))
            )
            if failed:
                raise ConditionFailedError("transaction condition failed", failed)
            backup = copy.deepcopy(self._tables)
            try:
                for op in ops:
                    if not isinstance(op, Check):
                        self._apply(op)
            except Exception:
                self._tables = backup
                raise

    def query(
        self,
        table: str,
        partition: tuple[str, Any],
        *,
        sk_prefix: tuple[str, str] | None = None,
        index: str | None = None,
        forward: bool = True,
        limit: int | None = None,
        start: Mapping[str, Any] | None = None,
    ) -> Page:
        schema = self.schemas[table]
        if index is not None:
            pk_name, sk_name = schema.indexes[index]
        else:
            pk_name, sk_name = schema.pk, schema.sk
        with self._lock:
            items = [deserialize(v) for v in self._tables[table].values()]
        matching = [
            item
            for item in items
            if item.get(pk_name) == partition[1]
            and sk_name in item
            and (sk_prefix is None or str(item[sk_prefix[0]]).startswith(sk_prefix[1]))
        ]

        def order(item: dict[str, Any]) -> tuple[Any, ...]:
            return (item[sk_name], item[schema.pk], item[schema.sk])

        matching.sort(key=order, reverse=not forward)
        if start is not None:
            mark = (start[sk_name], start[schema.pk], start[schema.sk])
            matching = [i for i in matching if (order(i) > mark if forward else order(i) < mark)]
        if limit is None or len(matching) <= limit:
            return Page(items=matching, last_key=None)
        page = matching[:limit]
        last = page[-1]
        last_key = {schema.pk: last[schema.pk], schema.sk: last[schema.sk]}
        if index is not None:
            last_key.update({pk_name: last[pk_name], sk_name: last[sk_name]})
        return Page(items=page, last_key=last_key)
