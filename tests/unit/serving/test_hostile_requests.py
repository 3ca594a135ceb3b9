"""Requests built to crash a prediction get a 4xx naming the problem, never an exception.

Seen before: a field nested about 1,450 levels deep made the JSON parser's ``RecursionError``
escape, and datetimes near the ends of the calendar with an offset overflowed converting to UTC.
Both served by the pickled pipeline (scikit-learn) and by its ONNX export.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlops.serving.errors import ServingError
from mlops.serving.requests import json_depth
from mlops.serving.service import InferenceService
from mlops.serving.settings import DEFAULT_MAX_JSON_DEPTH
from mlops.serving.validation import FLOAT32_MAX, utc_datetime
from mlops.training.artifacts import sha256_hex
from mlops.training.export import ONNX_TAG_SHA256, ONNX_TAG_URI, export_onnx
from tests.unit.serving.conftest import MODEL, World

JSON = "application/json"


@pytest.fixture(params=["sklearn", "onnx"])
def served(request: pytest.FixtureRequest, world: World) -> tuple[InferenceService, World]:
    """A champion served from its pickle, or from its ONNX export."""
    tags: dict[str, str] = {}
    if request.param == "onnx":
        data = export_onnx(world.trained[0].pipeline, world.spec)
        world.artifacts.objects["s3://bucket/artifacts/churn/0/model.onnx"] = data
        tags = {ONNX_TAG_URI: "s3://bucket/artifacts/churn/0/model.onnx", ONNX_TAG_SHA256: sha256_hex(data)}
    world.champion(world.register(0, **tags))
    service = world.service()
    assert service.loaded(MODEL, 1).predictor.kind == request.param
    return service, world


def answer(service: InferenceService, body: str | bytes) -> tuple[int, dict[str, Any]]:
    """What the endpoint answers: 200 and the body, or the refusal's status and body."""
    try:
        return 200, service.predict(MODEL, body, content_type=JSON, request_id="r").body
    except ServingError as exc:
        return exc.http_status, exc.body("r")


def nested(depth: int, kind: str = "[") -> str:
    return "[" * depth + "]" * depth if kind == "[" else '{"a":' * depth + "1" + "}" * depth


@pytest.mark.parametrize("depth", [33, 1450, 100_000])
@pytest.mark.parametrize("field", ["customer_id", "tenure_months", "contract", "signup_date"])
@pytest.mark.parametrize("kind", ["[", "{"])
def test_deep_nesting_is_refused_before_parsing(
    served: tuple[InferenceService, World], depth: int, field: str, kind: str
) -> None:
    # GIVEN a valid record with one field replaced by arrays (or objects) nested `depth` levels
    service, world = served
    body = json.dumps({"record": {**world.records[0], field: "HERE"}}).replace('"HERE"', nested(depth, kind))
    # WHEN it is posted
    status, error = answer(service, body)
    # THEN 400 too_deeply_nested, naming the depth found and the limit
    assert status == 400 and error["error"] == "too_deeply_nested", error
    assert f"at most {DEFAULT_MAX_JSON_DEPTH}" in error["message"]
    assert f"{depth + 2} levels" in error["message"]  # {"record": {...}} is two of them


def test_nesting_at_the_limit_is_parsed_and_brackets_in_text_do_not_count(
    served: tuple[InferenceService, World],
) -> None:
    service, world = served
    # GIVEN a body exactly at the depth limit ({"record": {...}} is 2 levels, the rest in one field)
    at_limit = json.dumps({"record": {**world.records[0], "region": "HERE"}}).replace(
        '"HERE"', nested(DEFAULT_MAX_JSON_DEPTH - 2)
    )
    # WHEN posted THEN it is parsed and refused for what it is: a list where a region goes
    status, error = answer(service, at_limit)
    assert status == 400 and error["error"] == "invalid_record" and error["details"][0]["field"] == "region"
    # AND brackets inside strings are text: 5,000 of them in a string field are no nesting at all
    text = json.dumps({"record": {**world.records[0], "customer_id": "[" * 5000 + '\\"{' * 100}})
    status, error = answer(service, text)
    assert status == 400 and error["error"] == "invalid_record", error
    assert error["details"][0]["field"] == "customer_id"


@pytest.mark.parametrize(
    "value",
    [
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:59:59-01:00",
        "0001-01-01",
        "9999-12-31T23:59:59.999999",
        "1677-09-21T23:59:59Z",
        "1677-09-22T00:30:00+01:00",  # 1677-09-21T23:30Z
        "2262-04-11T00:00:00Z",
        "2262-04-10T23:30:00-01:00",  # 2262-04-11T00:30Z
    ],
)
def test_datetimes_outside_the_model_range_are_400_naming_the_field(
    served: tuple[InferenceService, World], value: str
) -> None:
    # GIVEN a valid record whose datetime is outside what datetime64[ns] holds, once in UTC
    service, world = served
    body = json.dumps({"records": [world.records[0], {**world.records[1], "signup_date": value}]})
    # WHEN it is posted THEN 400 invalid_record naming record 1, the field and the range
    status, error = answer(service, body)
    assert status == 400 and error["error"] == "invalid_record", error
    detail = error["details"][0]
    assert (detail["record"], detail["field"]) == (1, "signup_date")
    assert "1677-09-22T00:00:00Z and 2262-04-10T23:59:59Z" in detail["message"]


@pytest.mark.parametrize(
    ("value", "utc"),
    [
        ("1677-09-22T00:00:00Z", "1677-09-22T00:00:00"),
        ("1677-09-21T23:00:00-01:00", "1677-09-22T00:00:00"),
        ("2262-04-10T23:59:59Z", "2262-04-10T23:59:59"),
        ("2262-04-11T00:59:59+01:00", "2262-04-10T23:59:59"),
        ("2026-10-01T12:00:00+05:30", "2026-10-01T06:30:00"),
        ("2026-10-01", "2026-10-01T00:00:00"),
    ],
)
def test_datetimes_at_the_ends_of_the_range_predict(
    served: tuple[InferenceService, World], value: str, utc: str
) -> None:
    # GIVEN datetimes on the edges of the range, with and without an offset
    service, world = served
    assert utc_datetime(value).isoformat() == utc
    # WHEN posted THEN the model answers
    status, body = answer(service, json.dumps({"record": {**world.records[0], "signup_date": value}}))
    assert status == 200, body


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("total_charges", 1e300, "out_of_range"),  # no max in the spec: float32's range applies
        ("total_charges", 3.5e38, "out_of_range"),
        ("total_charges", -1.0, "out_of_range"),  # the spec's own min still applies
        ("tenure_months", 10**30, "out_of_range"),
    ],
)
def test_numbers_a_model_cannot_take_are_400(
    served: tuple[InferenceService, World], field: str, value: float, problem: str
) -> None:
    service, world = served
    status, error = answer(service, json.dumps({"record": {**world.records[0], field: value}}))
    assert status == 400 and error["details"][0]["field"] == field, error
    assert error["details"][0]["problem"] == problem


def test_numbers_too_long_for_the_parser_are_malformed_json(served: tuple[InferenceService, World]) -> None:
    service, world = served
    body = json.dumps({"record": {**world.records[0], "tenure_months": 0}}).replace(
        '"tenure_months": 0', '"tenure_months": ' + "9" * 5000
    )
    status, error = answer(service, body)
    assert status == 400 and error["error"] == "malformed_json", error


def test_json_depth_counts_only_structure() -> None:
    assert json_depth(b'{"records": [{"a": "[[[["}]}') == 3
    assert json_depth(b'{"a": "x\\"[[", "b": [[1]]}') == 3
    assert json_depth(b"[]") == 1 and json_depth(b'"[[["') == 0 and json_depth(b"") == 0
    assert json_depth(("[" * 10_000).encode()) == 10_000  # malformed, still measured


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=30)
    | st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat())
    | st.sampled_from(["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "NaN", "-Infinity"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)


def _property(check: Callable[..., None]) -> Callable[..., None]:
    return settings(
        max_examples=300,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )(check)


def test_any_value_in_any_field_is_answered_with_2xx_or_4xx(served: tuple[InferenceService, World]) -> None:
    service, world = served
    names = list(world.records[0])

    @_property
    @given(field=st.sampled_from(names), value=JSON_VALUES, batch=st.booleans())
    def check(field: str, value: Any, batch: bool) -> None:
        # GIVEN a valid record with one field replaced by any JSON value
        record = {**world.records[0], field: value}
        body = json.dumps({"records": [world.records[1], record]} if batch else {"record": record})
        # WHEN posted THEN a prediction or a 4xx naming the field
        status, out = answer(service, body)
        assert status == 200 or 400 <= status < 500, (status, out)
        if status >= 400:
            assert out["details"][0]["field"] == field, out

    check()


def test_float32_bounds_are_in_the_request_schema(world: World) -> None:
    from mlops.serving.requests import request_models

    schema = request_models(world.spec, spec_revision=1, max_batch_size=10).input_schema()
    total = schema["properties"]["total_charges"]["anyOf"][0]
    assert total["minimum"] == 0 and total["maximum"] == FLOAT32_MAX


def test_a_refused_request_never_loads_the_model(world: World) -> None:
    # GIVEN a champion not loaded yet
    world.champion(world.register(0))
    service = world.service()
    # WHEN refused requests arrive (an empty record, a deep body, a bad datetime)
    for body in (
        '{"record": {}}',
        nested(40),
        json.dumps({"record": {**world.records[0], "signup_date": "0001-01-01"}}),
    ):
        status, _ = answer(service, body)
        assert status == 400
    # THEN its artifact was never read (a pickled model's load imports scikit-learn: seconds when cold)
    assert world.artifacts.reads == 0 and len(service.cache) == 0
    # AND the first valid request loads it
    assert answer(service, json.dumps({"record": world.records[0]}))[0] == 200
    assert world.artifacts.reads == 1
