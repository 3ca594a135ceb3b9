"""DynamoDB's typed JSON, written in mlops.registry.tables without boto3, against boto3's own serializer."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlops.errors import InputError
from mlops.registry.tables import deserialize, from_dynamo, serialize, to_dynamo

_BOTO_SERIALIZER = TypeSerializer()
_BOTO_DESERIALIZER = TypeDeserializer()

# What the registry, the audit trail and the catalogs store: JSON-like values.
_scalars = (
    st.none()
    | st.booleans()
    | st.text(max_size=20)
    | st.integers(min_value=-(10**37), max_value=10**37)
    | st.floats(min_value=-1e100, max_value=1e100).filter(lambda f: f == 0 or abs(f) > 1e-100)
)
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
_items = st.dictionaries(st.text(min_size=1, max_size=8), _values, max_size=6)


def _boto_serialize(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _BOTO_SERIALIZER.serialize(to_dynamo(v)) for k, v in item.items()}


def _boto_deserialize(typed: dict[str, Any]) -> dict[str, Any]:
    return {k: from_dynamo(_BOTO_DESERIALIZER.deserialize(v)) for k, v in typed.items()}


@settings(max_examples=400, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(item=_items)
def test_serialize_matches_boto3_and_round_trips(item: dict[str, Any]) -> None:
    # GIVEN a JSON-like item
    # WHEN it is written in DynamoDB's typed JSON by both
    ours = serialize(item)
    # THEN the attribute values are boto3's, byte for byte
    assert ours == _boto_serialize(item)
    # AND reading them back gives what boto3's deserializer gives
    assert deserialize(ours) == _boto_deserialize(ours)


def test_numbers_come_back_as_int_when_integral_and_float_otherwise() -> None:
    typed = serialize({"i": 3, "f": 0.1, "big": 10**30, "d": Decimal("2.50")})
    assert typed["f"] == {"N": "0.1"}
    back = deserialize(typed)
    assert back == {"i": 3, "f": 0.1, "big": 10**30, "d": 2.5}
    assert isinstance(back["i"], int) and isinstance(back["d"], float)


def test_sets_and_null_read_back_as_plain_values() -> None:
    # Sets are never written by the package, but an item edited by hand may hold them.
    typed = {"ss": {"SS": ["a", "b"]}, "ns": {"NS": ["1", "2.5"]}, "n": {"NULL": True}}
    assert deserialize(typed) == {"ss": ["a", "b"], "ns": [1, 2.5], "n": None}
    assert deserialize(typed) == _boto_deserialize(typed) | {"ss": ["a", "b"], "ns": [1, 2.5]}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (float("nan"), "only finite numbers"),
        (Decimal("Infinity"), "only finite numbers"),
        (10**40 + 1, "at most 38 digits"),
        (1e127, "magnitude"),
        (b"raw", "type bytes cannot be stored"),
        ({1, 2}, "type set cannot be stored"),
    ],
)
def test_values_dynamodb_cannot_hold_are_refused_by_name(value: Any, message: str) -> None:
    with pytest.raises(InputError, match=message):
        serialize({"a": value})
