"""Request validation: every refusal is a 4xx naming the problem, the record index and the field."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mlops.serving import (
    PayloadTooLargeError,
    RequestError,
    ServingError,
    UnsupportedMediaTypeError,
    parse_request,
    request_models,
)
from mlops.spec import ModelSpec
from tests.unit.serving.conftest import World

JSON = "application/json"


def refused(world: World, body: Any, content_type: str = JSON, max_batch: int = 10) -> ServingError:
    models = request_models(world.spec, spec_revision=1, max_batch_size=max_batch)
    raw = body if isinstance(body, str | bytes) else json.dumps(body)
    with pytest.raises(ServingError) as caught:
        parse_request(raw, content_type, models)
    return caught.value


def good(world: World) -> dict[str, Any]:
    return dict(world.records[0])


def test_valid_single_and_batch_pass(world: World) -> None:
    # GIVEN the churn request models
    models = request_models(world.spec, spec_revision=1, max_batch_size=10)
    # WHEN a single record and a batch are parsed
    single, is_single = parse_request(json.dumps({"record": good(world)}), "application/json; charset=utf-8", models)
    batch, _ = parse_request(json.dumps({"records": world.records[:3]}), JSON, models)
    # THEN the records come back validated
    assert is_single and len(single) == 1 and single[0]["tenure_months"] == world.records[0]["tenure_months"]
    assert len(batch) == 3


def test_models_are_cached_per_spec_revision(world: World) -> None:
    # GIVEN the same spec and revision WHEN request models are asked twice THEN the same object comes back
    first = request_models(world.spec, spec_revision=1, max_batch_size=10)
    assert request_models(world.spec, spec_revision=1, max_batch_size=10) is first
    # AND another revision builds another model
    assert request_models(world.spec, spec_revision=2, max_batch_size=10) is not first


@pytest.mark.parametrize(
    ("content_type", "status"), [("text/plain", 415), (None, 415), ("application/x-www-form-urlencoded", 415)]
)
def test_wrong_content_type_is_415(world: World, content_type: str | None, status: int) -> None:
    # GIVEN a valid body WHEN sent with another content type THEN 415
    error = refused(world, {"record": good(world)}, content_type=content_type)  # type: ignore[arg-type]
    assert isinstance(error, UnsupportedMediaTypeError) and error.status == status
    assert "application/json" in error.message


def test_malformed_json_names_the_position(world: World) -> None:
    # GIVEN a truncated body WHEN parsed THEN 400 malformed_json with line and column
    error = refused(world, '{"record": {"tenure_months": 3,')
    assert error.status == 400 and error.code == "malformed_json"
    assert "line 1 column" in error.message


@pytest.mark.parametrize("body", [[1, 2], {"rows": []}, {"record": {}, "records": []}, "3"])
def test_wrong_shape_is_400(world: World, body: Any) -> None:
    # GIVEN a body that is neither {"record": ...} nor {"records": [...]} WHEN parsed THEN 400 bad_request_shape
    error = refused(world, body)
    assert error.status == 400 and error.code == "bad_request_shape"


def test_empty_batch_is_400(world: World) -> None:
    error = refused(world, {"records": []})
    assert error.status == 400 and error.code == "empty_batch"


def test_batch_over_the_limit_is_413(world: World) -> None:
    # GIVEN a limit of 10 WHEN 11 records arrive THEN 413 naming both numbers
    error = refused(world, {"records": [good(world)] * 11}, max_batch=10)
    assert isinstance(error, PayloadTooLargeError) and error.status == 413
    assert "11" in error.message and "10" in error.message


def test_body_over_the_byte_limit_is_413(world: World) -> None:
    models = request_models(world.spec, spec_revision=1, max_batch_size=10)
    with pytest.raises(PayloadTooLargeError) as caught:
        parse_request(json.dumps({"record": good(world)}), JSON, models, max_body_bytes=50)
    assert caught.value.code == "body_too_large"


def detail(error: ServingError, field: str) -> dict[str, Any]:
    found = [d for d in error.details if d["field"] == field]
    assert found, error.details
    return found[0]


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("tenure_months", 73, "out_of_range"),
        ("tenure_months", -1, "out_of_range"),
        ("monthly_charges", 500.0, "out_of_range"),
        ("tenure_months", "12", "wrong_type"),
        ("tenure_months", 12.5, "wrong_type"),
        ("tenure_months", True, "wrong_type"),
        ("senior", 1, "wrong_type"),
        ("senior", "yes", "wrong_type"),
        ("contract", "weekly", "not_allowed"),
        ("region", "Mars", "pattern_mismatch"),
        ("customer_id", "X1", "pattern_mismatch"),
        ("signup_date", "yesterday", "invalid_value"),
        ("monthly_charges", None, "wrong_type"),
    ],
)
def test_field_problems_name_record_and_field(world: World, field: str, value: Any, problem: str) -> None:
    # GIVEN a batch whose second record breaks one constraint
    bad = {**good(world), field: value}
    # WHEN parsed
    error = refused(world, {"records": [good(world), bad]})
    # THEN 400 invalid_record naming record 1, the field and the problem
    assert isinstance(error, RequestError) and error.code == "invalid_record"
    found = detail(error, field)
    assert found["record"] == 1 and found["problem"] == problem
    assert f"record 1, field {field!r}" in error.message


def test_missing_and_extra_fields(world: World) -> None:
    # GIVEN a record without tenure_months and with an unknown field
    record = good(world)
    del record["tenure_months"]
    record["favourite_colour"] = "blue"
    # WHEN parsed THEN both are named
    error = refused(world, {"record": record})
    assert detail(error, "tenure_months")["problem"] == "missing_field"
    assert detail(error, "favourite_colour")["problem"] == "extra_field"
    assert detail(error, "favourite_colour")["record"] == 0


def test_nullable_and_identifier_fields_may_be_left_out(world: World) -> None:
    # GIVEN total_charges (nullable) null and customer_id (an unused identifier) left out
    record = {**good(world), "total_charges": None}
    del record["customer_id"]
    models = request_models(world.spec, spec_revision=1, max_batch_size=10)
    # WHEN parsed THEN it passes
    records, _ = parse_request(json.dumps({"record": record}), JSON, models)
    assert records[0]["total_charges"] is None


def test_input_schema_is_json_schema_of_the_spec(world: World) -> None:
    # GIVEN the request models WHEN the schema is read THEN constraints from the spec are in it
    schema = request_models(world.spec, spec_revision=1, max_batch_size=10).input_schema()
    assert schema["additionalProperties"] is False
    assert schema["properties"]["tenure_months"]["maximum"] == 72
    assert schema["properties"]["contract"]["enum"] == ["month-to-month", "one-year", "two-year"]
    assert "tenure_months" in schema["required"] and "customer_id" not in schema["required"]


def test_spec_with_other_features(world: World, churn_models: tuple[ModelSpec, Any]) -> None:
    # GIVEN a regression spec WHEN its request models are built THEN its own fields are required
    from tests.unit.training.helpers import example_spec

    house = example_spec("house-prices")
    schema = request_models(house, spec_revision=1, max_batch_size=5).input_schema()
    assert "living_area_sqm" in schema["required"] and "tenure_months" not in schema["properties"]
