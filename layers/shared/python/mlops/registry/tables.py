"""Conditional writes on DynamoDB, behind one small interface with an in-memory fake.

The registry, the spec store, the dataset catalog and the audit trail only ever need a handful
of DynamoDB operations: get one item, put or update one item under a condition, write several
items in one transaction, and query one partition (or the ``gsi1`` index) in key order. They are
written against :class:`Store`; :class:`DynamoStore` runs them on DynamoDB (or moto) through a
thread-safe low-level client, :class:`MemoryStore` runs them in memory for unit tests, with the
same conditions, the same number handling and the same all-or-nothing transactions.

Conditions are data (:class:`Condition`), not expression strings, so both stores evaluate the
very same thing.

Examples
--------
>>> store = MemoryStore([TableSchema("t", "pk", "sk")])
>>> store.write(Put("t", {"pk": "a", "sk": "1", "n": 1}, Condition(item_exists=False)))
{'pk': 'a', 'sk': '1', 'n': 1}
>>> store.write(Update("t", {"pk": "a", "sk": "1"}, add={"n": 1}))["n"]
2
"""

from __future__ import annotations

import copy
import math
import random
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Clamped, Context, Decimal, Inexact, Overflow, Rounded, Underflow
from typing import Any, Literal, Protocol

from mlops.errors import ConflictError, InputError


class _Absent:
    """Marker: the attribute must not exist (``attribute_not_exists``)."""

    _instance: _Absent | None = None

    def __new__(cls) -> _Absent:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT: Any = _Absent()


@dataclass(frozen=True)
class TableSchema:
    """Key layout of one table: partition key, sort key (string or number) and GSIs."""

    name: str
    pk: str
    sk: str
    sk_type: Literal["S", "N"] = "S"
    # index name -> (partition key attribute, sort key attribute); both strings.
    indexes: Mapping[str, tuple[str, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Condition:
    """What must hold for a write to happen; every part must hold (AND).

    ``item_exists`` True/False requires the item to exist / not to exist. ``equals`` maps an
    attribute to its required value (:data:`ABSENT`: the attribute must not exist).
    ``not_equals`` maps an attribute to a value it must not have (an absent attribute passes).
    """

    item_exists: bool | None = None
    equals: Mapping[str, Any] = field(default_factory=dict)
    not_equals: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Put:
    """Write a whole item, under an optional condition."""

    table: str
    item: Mapping[str, Any]
    condition: Condition | None = None


@dataclass(frozen=True)
class Update:
    """Change some attributes of one item (creating it if needed), under an optional condition.

    ``set_if_absent`` writes only attributes that do not exist yet; ``add`` adds to a number
    (an absent number counts as 0) atomically; ``append`` appends to a list (created if absent).
    """

    table: str
    key: Mapping[str, Any]
    set: Mapping[str, Any] = field(default_factory=dict)
    set_if_absent: Mapping[str, Any] = field(default_factory=dict)
    add: Mapping[str, int] = field(default_factory=dict)
    append: Mapping[str, Sequence[Any]] = field(default_factory=dict)
    remove: tuple[str, ...] = ()
    condition: Condition | None = None


@dataclass(frozen=True)
class Check:
    """A condition on another item that must hold for a transaction to commit."""

    table: str
    key: Mapping[str, Any]
    condition: Condition


Operation = Put | Update | Check


@dataclass(frozen=True)
class Page:
    """One page of a query; ``last_key`` is None when there is nothing more."""

    items: list[dict[str, Any]]
    last_key: dict[str, Any] | None


class ConditionFailedError(ConflictError):
    """A write's condition did not hold; nothing was written.

    ``failed`` holds the positions (in the transaction) of the operations whose condition failed.
    """

    def __init__(self, message: str, failed: tuple[int, ...] = (0,)) -> None:
        super().__init__(message)
        self.failed = failed


class Store(Protocol):
    """The DynamoDB operations the domain code uses."""

    def get(self, table: str, key: Mapping[str, Any]) -> dict[str, Any] | None:
        """Strongly consistent read of one item."""
        ...

    def write(self, op: Put | Update) -> dict[str, Any]:
        """Apply one conditional write; return the item as it is afterwards."""
        ...

    def transact(self, ops: Sequence[Operation]) -> None:
        """Apply every operation or none (``ConditionFailedError`` names the failed ones)."""
        ...

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
        """Items of one partition in sort-key order (``index``: a GSI instead of the table)."""
        ...


# ---------------------------------------------------------------------------------------------
# Numbers: DynamoDB stores decimals. Floats go in as Decimal (NaN and infinity are refused, they
# have no DynamoDB form), and come out as int when integral, else float, in both stores.


def to_dynamo(value: Any) -> Any:
    """Convert a JSON-like value into what boto3's serializer accepts."""
    if isinstance(value, bool) or value is None or isinstance(value, str | int | Decimal):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InputError(f"{value!r} cannot be stored: only finite numbers can")
        return Decimal(repr(value))
    if isinstance(value, Mapping):
        return {str(k): to_dynamo(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_dynamo(v) for v in value]
    raise InputError(f"a value of type {type(value).__name__} cannot be stored")


def from_dynamo(value: Any) -> Any:
    """Convert what boto3's deserializer returns into plain JSON-like Python values."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: from_dynamo(v) for k, v in value.items()}
    if isinstance(value, list | set | frozenset):
        return [from_dynamo(v) for v in value]
    return value


# DynamoDB's typed JSON ({"S": ...}, {"N": "1.5"}, {"M": {...}}), written here rather than with
# boto3's TypeSerializer: importing boto3 costs ~0.07 s of the inference function's cold start, and
# that function reads the registry without it (mlops.serving.awsapi). tests/unit/registry/test_codec.py
# checks both directions against boto3's serializer on generated values.
# Numbers follow boto3: at most 38 significant digits, exponent within DynamoDB's range.
_NUMBERS = Context(Emin=-128, Emax=126, prec=38, traps=[Clamped, Overflow, Inexact, Rounded, Underflow])


def _typed(value: Any) -> dict[str, Any]:
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, int | Decimal):
        if isinstance(value, Decimal) and not value.is_finite():
            raise InputError(f"{value!r} cannot be stored: only finite numbers can")
        try:
            return {"N": str(_NUMBERS.create_decimal(value))}
        except (ArithmeticError, ValueError):
            raise InputError(
                f"{value!r} cannot be stored: DynamoDB numbers have at most 38 digits, magnitude 1E-130 to 1E+125"
            ) from None
    if isinstance(value, Mapping):
        return {"M": {str(k): _typed(v) for k, v in value.items()}}
    if isinstance(value, list | tuple):
        return {"L": [_typed(v) for v in value]}
    raise InputError(f"a value of type {type(value).__name__} cannot be stored")


def _plain(typed: Mapping[str, Any]) -> Any:
    ((kind, value),) = typed.items()
    if kind == "S" or kind == "BOOL":
        return value
    if kind == "N":
        return from_dynamo(Decimal(value))
    if kind == "NULL":
        return None
    if kind == "M":
        return {k: _plain(v) for k, v in value.items()}
    if kind == "L":
        return [_plain(v) for v in value]
    if kind == "SS":
        return list(value)
    if kind == "NS":
        return [from_dynamo(Decimal(v)) for v in value]
    if kind in ("B", "BS"):  # never written by this package; base64 text through mlops.serving.awsapi
        return value
    raise ValueError(f"unknown DynamoDB attribute type {kind!r}")


def serialize(item: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON-like item as DynamoDB attribute values (floats as exact decimals, NaN refused)."""
    return {k: _typed(to_dynamo(v)) for k, v in item.items()}


def deserialize(item: Mapping[str, Any]) -> dict[str, Any]:
    """DynamoDB attribute values as plain JSON-like values (numbers as int when integral)."""
    return {k: _plain(v) for k, v in item.items()}


# ---------------------------------------------------------------------------------------------
class _Expression:
    """Builds expression strings with placeholder names and values."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.values: dict[str, Any] = {}

    def name(self, attribute: str) -> str:
        for placeholder, known in self.names.items():
            if known == attribute:
                return placeholder
        placeholder = f"#n{len(self.names)}"
        self.names[placeholder] = attribute
        return placeholder

    def value(self, value: Any) -> str:
        placeholder = f":v{len(self.values)}"
        self.values[placeholder] = _typed(to_dynamo(value))
        return placeholder

    def condition(self, condition: Condition | None, key_attribute: str) -> str | None:
        if condition is None:
            return None
        parts = []
        if condition.item_exists is True:
            parts.append(f"attribute_exists({self.name(key_attribute)})")
        elif condition.item_exists is False:
            parts.append(f"attribute_not_exists({self.name(key_attribute)})")
        for attribute, expected in condition.equals.items():
            if expected is ABSENT:
                parts.append(f"attribute_not_exists({self.name(attribute)})")
            else:
                parts.append(f"{self.name(attribute)} = {self.value(expected)}")
        for attribute, unwanted in condition.not_equals.items():
            # A comparison with a missing attribute is not true in DynamoDB, so say it outright.
            name = self.name(attribute)
            parts.append(f"(attribute_not_exists({name}) OR {name} <> {self.value(unwanted)})")
        return " AND ".join(parts) or None

    def attach(self, request: dict[str, Any]) -> dict[str, Any]:
        if self.names:
            request["ExpressionAttributeNames"] = self.names
        if self.values:
            request["ExpressionAttributeValues"] = self.values
        return request


def _update_request(op: Update, key_attribute: str) -> dict[str, Any]:
    expr = _Expression()
    sets = [f"{expr.name(a)} = {expr.value(v)}" for a, v in op.set.items()]
    sets += [f"{expr.name(a)} = if_not_exists({expr.name(a)}, {expr.value(v)})" for a, v in op.set_if_absent.items()]
    sets += [
        f"{expr.name(a)} = list_append(if_not_exists({expr.name(a)}, {expr.value([])}), {expr.value(list(v))})"
        for a, v in op.append.items()
    ]
    clauses = []
    if sets:
        clauses.append("SET " + ", ".join(sets))
    if op.add:
        clauses.append("ADD " + ", ".join(f"{expr.name(a)} {expr.value(v)}" for a, v in op.add.items()))
    if op.remove:
        clauses.append("REMOVE " + ", ".join(expr.name(a) for a in op.remove))
    request: dict[str, Any] = {
        "TableName": op.table,
        "Key": serialize(op.key),
        "UpdateExpression": " ".join(clauses),
    }
    condition = expr.condition(op.condition, key_attribute)
    if condition:
        request["ConditionExpression"] = condition
    return expr.attach(request)


def _put_request(op: Put, key_attribute: str) -> dict[str, Any]:
    expr = _Expression()
    request: dict[str, Any] = {"TableName": op.table, "Item": serialize(op.item)}
    condition = expr.condition(op.condition, key_attribute)
    if condition:
        request["ConditionExpression"] = condition
    return expr.attach(request)


def _check_request(op: Check, key_attribute: str) -> dict[str, Any]:
    expr = _Expression()
    request: dict[str, Any] = {"TableName": op.table, "Key": serialize(op.key)}
    request["ConditionExpression"] = expr.condition(op.condition, key_attribute) or ""
    return expr.attach(request)


def _error_response(exc: Exception) -> Mapping[str, Any]:
    """The parsed error of a failed call: botocore's ``ClientError`` and ``awsapi.AwsError`` alike."""
    response = getattr(exc, "response", None)
    return response if isinstance(response, Mapping) else {}


def _error_code(exc: Exception) -> str:
    return str(_error_response(exc).get("Error", {}).get("Code", ""))


class DynamoStore:
    """:class:`Store` on DynamoDB through a low-level client (thread-safe, unlike resources).

    Parameters
    ----------
    client
        A boto3 ``dynamodb`` client (its endpoint decides AWS, moto or the local cloud).
    schemas
        The key layout of every table this store touches.
    """

    # Real DynamoDB cancels a transaction that overlaps another one in flight
    # (TransactionConflict); that says nothing about our conditions, so it is retried here.
    conflict_attempts = 8

    def __init__(self, client: Any, schemas: Sequence[TableSchema]) -> None:
        self.client = client
        self.schemas = {s.name: s for s in schemas}

    def _schema(self, table: str) -> TableSchema:
        try:
            return self.schemas[table]
        except KeyError:
            raise ValueError(f"table {table!r} has no declared schema") from None

    def get(self, table: str, key: Mapping[str, Any]) -> dict[str, Any] | None:
        response = self.client.get_item(TableName=table, Key=serialize(key), ConsistentRead=True)
        item = response.get("Item")
        return deserialize(item) if item is not None else None

    def write(self, op: Put | Update) -> dict[str, Any]:
        key_attribute = self._schema(op.table).pk
        try:
            if isinstance(op, Put):
                self.client.put_item(**_put_request(op, key_attribute))
                return deserialize(serialize(op.item))
            response = self.client.update_item(**_update_request(op, key_attribute), ReturnValues="ALL_NEW")
            return deserialize(response.get("Attributes", {}))
        except Exception as exc:  # botocore's ClientError or mlops.serving.awsapi.AwsError: told apart by code
            if _error_code(exc) == "ConditionalCheckFailedException":
                raise ConditionFailedError(f"condition failed on {op.table}") from None
            raise

    def transact(self, ops: Sequence[Operation]) -> None:
        items: list[dict[str, Any]] = []
        for op in ops:
            key_attribute = self._schema(op.table).pk
            if isinstance(op, Put):
                items.append({"Put": _put_request(op, key_attribute)})
            elif isinstance(op, Update):
                items.append({"Update": _update_request(op, key_attribute)})
            else:
                items.append({"ConditionCheck": _check_request(op, key_attribute)})
        for attempt in range(self.conflict_attempts):
            try:
                self.client.transact_write_items(TransactItems=items)
                return
            except Exception as exc:  # botocore's ClientError or mlops.serving.awsapi.AwsError: told apart by code
                if _error_code(exc) != "TransactionCanceledException":
                    raise
                reasons = _error_response(exc).get("CancellationReasons") or []
                codes = [str(r.get("Code", "None")) for r in reasons]
                failed = tuple(i for i, code in enumerate(codes) if code == "ConditionalCheckFailed")
                if failed:
                    raise ConditionFailedError("transaction condition failed", failed) from None
                if "TransactionConflict" in codes and attempt + 1 < self.conflict_attempts:
                    time.sleep(random.uniform(0, 0.01 * 2**attempt))
                    continue
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
        expr = _Expression()
        condition = f"{expr.name(partition[0])} = {expr.value(partition[1])}"
        if sk_prefix is not None:
            condition += f" AND begins_with({expr.name(sk_prefix[0])}, {expr.value(sk_prefix[1])})"
        request: dict[str, Any] = {
            "TableName": table,
            "KeyConditionExpression": condition,
            "ScanIndexForward": forward,
        }
        if index is not None:
            request["IndexName"] = index
        else:
            request["ConsistentRead"] = True
        if limit is not None:
            request["Limit"] = limit
        if start is not None:
            request["ExclusiveStartKey"] = serialize(start)
        response = self.client.query(**expr.attach(request))
        last = response.get("LastEvaluatedKey")
        return Page(
            items=[deserialize(item) for item in response.get("Items", [])],
            last_key=deserialize(last) if last else None,
        )


# ---------------------------------------------------------------------------------------------
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
