"""The registry's :class:`~mlops.registry.tables.Store` on DynamoDB, through a low-level client.

Conditions become condition expressions (with placeholder names and values), transactions
become ``TransactWriteItems``, and items travel in DynamoDB's typed JSON
(:func:`mlops.registry.tables.serialize`), so boto3's resource layer is never needed.
"""

from __future__ import annotations

import random
import time
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
    attribute_value,
    deserialize,
    serialize,
    to_dynamo,
)


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
        self.values[placeholder] = attribute_value(to_dynamo(value))
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
