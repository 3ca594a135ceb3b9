"""Conditional writes on DynamoDB: the one small interface the registry's code is written against.

The registry, the spec store, the dataset catalog and the audit trail only ever need a handful
of DynamoDB operations: get one item, put or update one item under a condition, write several
items in one transaction, and query one partition (or the ``gsi1`` index) in key order. They are
written against :class:`Store`, with conditions as data (:class:`Condition`), not expression
strings. This module holds that interface and DynamoDB's wire format (numbers and typed JSON);
two stores implement it:

- :class:`mlops.registry.dynamo.DynamoStore` runs it on DynamoDB (AWS, moto or the local cloud);
- :class:`mlops.registry.memory.MemoryStore` runs it in memory, for unit tests.

Why the in-memory twin stays beside moto: about forty unit tests of other capabilities
(deployment, monitoring, serving, training) and ``benchmarks/bench_inference.py`` build a
registry with :meth:`~mlops.registry.versions.Registry.in_memory`. The registry's behaviour suite
(59 tests) takes 0.9 s on the fake and 42 s on moto (user CPU 3.6 s against 18.8 s, measured on
the development machine), so moving every unit test onto moto would multiply their run time;
``benchmarks/bench_registry.py --store`` measures the same workload on both in one run (30
versions registered, approved and aliased, then read back and the audit chain verified: 0.44 s
in memory, 6.4 s on moto, 14.7x).
The fake is held equal to DynamoDB by running the same suites on both:
``tests/unit/registry`` on the fake and ``tests/integration/registry/test_registry_on_moto.py``
on moto (behaviour, audit chain, archive, spec store, dataset catalog, failure recording).
"""

from __future__ import annotations

import math
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
# boto3's TypeSerializer: the inference function reads the registry without boto3
# (mlops.serving.awsapi), and a fresh interpreter takes 0.20 s to import boto3's serializer against
# 0.027 s for this module (7.4x; benchmarks/bench_registry.py --codec, which also times encoding:
# 22 us per item here, 35 us with boto3's). tests/unit/registry/test_codec.py
# checks both directions against boto3's serializer on generated values.
# Numbers follow boto3: at most 38 significant digits, exponent within DynamoDB's range.
_NUMBERS = Context(Emin=-128, Emax=126, prec=38, traps=[Clamped, Overflow, Inexact, Rounded, Underflow])


def attribute_value(value: Any) -> dict[str, Any]:
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
        return {"M": {str(k): attribute_value(v) for k, v in value.items()}}
    if isinstance(value, list | tuple):
        return {"L": [attribute_value(v) for v in value]}
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
    return {k: attribute_value(to_dynamo(v)) for k, v in item.items()}


def deserialize(item: Mapping[str, Any]) -> dict[str, Any]:
    """DynamoDB attribute values as plain JSON-like values (numbers as int when integral)."""
    return {k: _plain(v) for k, v in item.items()}
