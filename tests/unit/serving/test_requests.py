"""Request validation: every refusal is a 4xx naming the problem, the record index and the field."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from mlops.serving.errors import PayloadTooLargeError, RequestError, ServingError, UnsupportedMediaTypeError
from mlops.serving.requests import parse_request, request_models
from mlops.spec.model import ModelSpec
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
    assert isinstance(error, UnsupportedMediaTypeError) and error.http_status == status
    assert "application/json" in error.message


def test_malformed_json_names_the_position(world: World) -> None:
    # GIVEN a truncated body WHEN parsed THEN 400 malformed_json with line and column
    error = refused(world, '{"record": {"tenure_months": 3,')
    assert error.http_status == 400 and error.code == "malformed_json"
    assert "line 1 column" in error.message


@pytest.mark.parametrize("body", [[1, 2], {"rows": []}, {"record": {}, "records": []}, "3"])
def test_wrong_shape_is_400(world: World, body: Any) -> None:
    # GIVEN a body that is neither {"record": ...} nor {"records": [...]} WHEN parsed THEN 400 bad_request_shape
    error = refused(world, body)
    assert error.http_status == 400 and error.code == "bad_request_shape"


def test_empty_batch_is_400(world: World) -> None:
    error = refused(world, {"records": []})
    assert error.http_status == 400 and error.code == "empty_batch"


def test_batch_over_the_limit_is_413(world: World) -> None:
    # GIVEN a limit of 10 WHEN 11 records arrive THEN 413 naming both numbers
    error = refused(world, {"records": [good(world)] * 11}, max_batch=10)
    assert isinstance(error, PayloadTooLargeError) and error.http_status == 413
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


def test_column_wise_check_never_accepts_what_pydantic_refuses(world: World) -> None:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
    from pydantic import ValidationError

    # GIVEN the churn request models and records made from good ones with fields changed, dropped or added
    models = request_models(world.spec, spec_revision=1, max_batch_size=10)
    names = [f.name for f in world.spec.features]
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(),
        st.text(max_size=12),
        st.sampled_from(["month-to-month", "two-year", "North", "C12345", "2026-01-02", "2026-13-40", "1", "true"]),
    )
    bounds = [b for f in world.spec.features for b in (f.min, f.max) if b is not None]
    near_bounds = st.one_of(
        st.sampled_from(bounds).flatmap(lambda b: st.sampled_from([b, b - 1, b + 1, b - 0.5, b + 0.5, int(b) + 1])),
        st.integers(min_value=-5, max_value=600),
    )
    specials = st.sampled_from([math.inf, -math.inf, math.nan, True, False, None, "1", 1.0, 0])
    values = st.one_of(
        near_bounds,
        specials,
        scalars,
        st.lists(scalars, max_size=2),
        st.dictionaries(st.text(max_size=3), scalars, max_size=2),
    )

    @st.composite
    def batch(draw: st.DrawFn) -> list[Any]:
        # Good records around one changed record: one field replaced, sometimes one dropped or one added.
        records = [dict(r) for r in draw(st.lists(st.sampled_from(world.records), min_size=1, max_size=3))]
        changed = dict(draw(st.sampled_from(world.records)))
        changed[draw(st.sampled_from(names))] = draw(values)
        if draw(st.integers(0, 4)) == 0:
            changed.pop(draw(st.sampled_from(names)))
        if draw(st.integers(0, 4)) == 0:
            changed[draw(st.text(min_size=1, max_size=5))] = draw(scalars)
        whole = draw(st.one_of(st.just(changed), values)) if draw(st.integers(0, 9)) == 0 else changed
        records.insert(draw(st.integers(0, len(records))), whole)
        return records

    @settings(max_examples=500, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(batch=batch())
    def agree(batch: list[Any]) -> None:
        # WHEN the column-wise check and the pydantic model both judge the batch
        fast = models.validator.validate(json.loads(json.dumps(batch)))
        try:
            slow: list[dict[str, Any]] | None = [
                r.model_dump() for r in models.records_adapter.validate_python(json.loads(json.dumps(batch)))
            ]
        except ValidationError:
            slow = None
        # THEN what the column-wise check accepts, pydantic accepts too, with the same values
        if fast is not None:
            assert slow == fast, batch

    agree()


def test_refusals_after_the_column_wise_check_keep_pydantic_messages(world: World) -> None:
    # GIVEN a batch whose record 2 has a float out of range and record 0 an unknown field
    bad = [{**good(world), "shoe_size": 44}, good(world), {**good(world), "monthly_charges": 1e9}]
    # WHEN parsed THEN every problem is named as the pydantic model names it, record by record
    error = refused(world, {"records": bad})
    assert [(d["record"], d["field"], d["problem"]) for d in error.details] == [
        (0, "shoe_size", "extra_field"),
        (2, "monthly_charges", "out_of_range"),
    ]
    assert error.details[0]["message"] == "Extra inputs are not permitted"
    assert error.message.startswith("record 0, field 'shoe_size': Extra inputs are not permitted (and 1 more")


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
def test_non_finite_numbers_are_refused(world: World, value: float) -> None:
    # GIVEN a float feature without an upper bound given a non-finite number (JSON Infinity / NaN literals)
    bad = {**good(world), "total_charges": value}
    # WHEN parsed THEN record 1's total_charges is refused: no model ever sees it
    error = refused(world, {"records": [good(world), bad]})
    found = detail(error, "total_charges")
    assert found["record"] == 1 and found["problem"] in ("out_of_range", "wrong_type")
