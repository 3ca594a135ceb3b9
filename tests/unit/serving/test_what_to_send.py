"""A refused request whose values have the wrong JSON type says what to send instead (still a 400).

The case seen: ISLP Bikeshare ships the hour quoted (``"0"``), so a spec may make ``hr`` a category
of the strings "0" to "23"; an application that sends ``"hr": 0`` was told ``Input should be '0',
'1', ...``, which is right but does not say "send it as a string".
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from mlops.serving.errors import RequestError
from mlops.serving.requests import parse_request, request_models
from mlops.spec.model import ModelSpec, parse_spec
from tests.conformance.datasets import BIKESHARE

JSON = "application/json"


@pytest.fixture(scope="module")
def spec() -> ModelSpec:
    """The conformance Bikeshare spec with the hour as the file writes it: a category of strings."""
    document = yaml.safe_load(BIKESHARE.spec_path.read_text())
    for feature in document["features"]:
        if feature["name"] == "hr":
            feature.clear()
            feature.update(name="hr", type="category", allowed=[str(h) for h in range(24)])
    document["features"] += [
        {"name": "when", "type": "datetime", "nullable": True},
        {"name": "rainy", "type": "bool", "nullable": True},
        {"name": "tag", "type": "category", "nullable": True},
        {"name": "code", "type": "category", "nullable": True, "allowed": [1, 2]},
        {"name": "visits", "type": "int", "nullable": True},
    ]
    return parse_spec(document)


@pytest.fixture(scope="module")
def record(spec: ModelSpec) -> dict[str, Any]:
    """Row 1 of the shipped file, as an application sends it (hr a string, as the spec says)."""
    row = json.loads(BIKESHARE.frame().head(1).to_json(orient="records"))[0]
    out = {name: row[name] for name in spec.feature_names if name in row}
    out["hr"] = str(out["hr"])
    return out


def refused(spec: ModelSpec, records: list[dict[str, Any]]) -> RequestError:
    models = request_models(spec, spec_revision=1, max_batch_size=10)
    with pytest.raises(RequestError) as caught:
        parse_request(json.dumps({"records": records}), JSON, models)
    return caught.value


def test_the_record_as_the_spec_wants_it_is_accepted(spec: ModelSpec, record: dict[str, Any]) -> None:
    models = request_models(spec, spec_revision=1, max_batch_size=10)
    accepted, _ = parse_request(json.dumps({"record": record}), JSON, models)
    assert accepted[0]["hr"] == "0"


def test_an_integer_looking_category_sent_as_a_number_says_send_a_string(
    spec: ModelSpec, record: dict[str, Any]
) -> None:
    # GIVEN a batch whose second record sends the hour as the JSON number 5
    error = refused(spec, [record, {**record, "hr": 5}])
    # THEN 400, naming the record and field, and saying what to send
    assert error.http_status == 400 and error.code == "invalid_record"
    assert error.message.startswith("record 1, field 'hr': send category values as strings, e.g. \"5\"")
    [detail] = error.details
    assert detail["problem"] == "not_allowed" and "(got the JSON number 5;" in detail["message"]
    # AND following the advice is accepted
    models = request_models(spec, spec_revision=1, max_batch_size=10)
    assert parse_request(json.dumps({"records": [record, {**record, "hr": "5"}]}), JSON, models)[0][1]["hr"] == "5"


@pytest.mark.parametrize(
    ("field", "value", "advice"),
    [
        ("hr", 99, 'send category values as strings, e.g. "0"'),  # not an allowed hour: the example is one
        ("day", "12", 'send numbers as JSON numbers, e.g. 12, not "12"'),
        ("day", 12.0, "send whole numbers without a decimal point, e.g. 12"),
        ("temp", "0.24", 'send numbers as JSON numbers, e.g. 0.24, not "0.24"'),
        ("rainy", 1, "send true or false (JSON booleans)"),
        ("rainy", "yes", "send true or false (JSON booleans)"),
        ("when", 1700000000, 'send an ISO 8601 date or date-time as a string, e.g. "2026-10-01T12:00:00Z"'),
        ("tag", 7, 'send category values as strings, e.g. "7"'),
        ("code", "1", 'send this category value as JSON 1, not "1"'),
        ("visits", "3", 'send numbers as JSON numbers, e.g. 3, not "3"'),
    ],
)
def test_type_mismatches_say_what_to_send(
    spec: ModelSpec, record: dict[str, Any], field: str, value: Any, advice: str
) -> None:
    error = refused(spec, [{**record, field: value}])
    assert error.http_status == 400
    assert error.message.startswith(f"record 0, field {field!r}: {advice} (got the JSON ")


@pytest.mark.parametrize(
    ("field", "value"),
    [("hr", "24"), ("day", 500), ("mnth", "Smarch"), ("visits", 2.5), ("when", "yesterday")],
)
def test_other_problems_keep_their_own_message(spec: ModelSpec, record: dict[str, Any], field: str, value: Any) -> None:
    # A value of the right JSON type that breaks a constraint is not a type problem: no advice.
    error = refused(spec, [{**record, field: value}])
    assert "send " not in error.message, error.message


def test_an_int_feature_without_bounds_is_explained_not_crashed(spec: ModelSpec, record: dict[str, Any]) -> None:
    # `visits` has no min/max: the explaining model's bounds are float32's range, as whole numbers
    error = refused(spec, [{**record, "visits": True}])
    assert error.details[0]["field"] == "visits" and error.details[0]["problem"] == "wrong_type"
