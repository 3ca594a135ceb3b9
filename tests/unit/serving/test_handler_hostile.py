"""Hostile requests through the Lambda handler: 4xx with a JSON body, and never the alarm's metric.

``InternalErrors`` is what the ``<env>-inference-errors`` alarm watches: no request a caller can
make may count it, or any caller could page the on-call team.
"""

from __future__ import annotations

import base64
import json
from types import ModuleType
from typing import Any

import pytest

from tests.unit.serving.conftest import MODEL, World
from tests.unit.serving.test_handler import Context, emf_lines, event
from tests.unit.serving.test_handler import handler as handler  # the fixture, used by name


def send(handler: ModuleType, evt: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    answer = handler.handler(evt, Context())
    return answer["statusCode"], json.loads(answer["body"])


def hostile_bodies(world: World) -> dict[str, str]:
    record = world.records[0]
    return {
        "nested 1450 deep": json.dumps({"record": {**record, "region": "X"}}).replace('"X"', "[" * 1450 + "]" * 1450),
        "nested objects 50,000 deep": '{"record": ' + '{"a":' * 50_000 + "1" + "}" * 50_000 + "}",
        "year 1 with +01:00": json.dumps({"record": {**record, "signup_date": "0001-01-01T00:00:00+01:00"}}),
        "year 9999 with -01:00": json.dumps({"record": {**record, "signup_date": "9999-12-31T23:59:59-01:00"}}),
        "float beyond float32": json.dumps({"record": {**record, "total_charges": 1e300}}),
        "5000-digit integer": json.dumps({"record": record}).replace(
            f'"tenure_months": {record["tenure_months"]}', '"tenure_months": ' + "9" * 5000
        ),
        "lone surrogate": json.dumps({"record": {**record, "region": "\ud800"}}),
    }


@pytest.mark.parametrize(
    "case",
    [
        "nested 1450 deep",
        "nested objects 50,000 deep",
        "year 1 with +01:00",
        "year 9999 with -01:00",
        "float beyond float32",
        "5000-digit integer",
        "lone surrogate",
    ],
)
def test_hostile_bodies_are_400_and_never_count_an_internal_error(
    handler: ModuleType, world: World, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    # GIVEN a champion and a body built to crash a prediction
    world.champion(world.register(0))
    capsys.readouterr()
    # WHEN it is posted through the handler
    status, answer = send(handler, event("POST", f"/models/{MODEL}/predict", hostile_bodies(world)[case]))
    # THEN 400 with a JSON error and the request id, no internals
    assert status == 400, answer
    assert answer["error"] and answer["message"] and answer["request_id"] == "api-req-1"
    assert "Traceback" not in json.dumps(answer) and "Error:" not in answer["message"]
    # AND the request counts as a refused request, not as the alarm's InternalErrors
    metrics = emf_lines(capsys.readouterr().out)
    assert not [m for m in metrics if "InternalErrors" in m]
    assert [m for m in metrics if "RequestErrors" in m]


def test_base64_bodies_are_decoded_or_refused(handler: ModuleType, world: World) -> None:
    world.champion(world.register(0))
    good = json.dumps({"record": world.records[0]}).encode()
    # GIVEN a body the gateway passed base64-encoded WHEN posted THEN it is decoded and predicted
    encoded = {**event("POST", f"/models/{MODEL}/predict"), "body": base64.b64encode(good).decode()}
    assert send(handler, {**encoded, "isBase64Encoded": True})[0] == 200
    # AND a body marked base64 that is not is a 400 naming that
    status, answer = send(handler, {**encoded, "body": "not base64!", "isBase64Encoded": True})
    assert status == 400 and answer["error"] == "malformed_body", answer


@pytest.mark.parametrize("model", ["x" * 5000, "Ünïcode", "a/../../b", "%00", "-", "1abc"])
def test_model_names_that_cannot_exist_are_404(handler: ModuleType, world: World, model: str) -> None:
    body = {"record": world.records[0]}
    evt = {**event("POST", "/models/m/predict", body), "pathParameters": {"model": model}}
    status, answer = send(handler, evt)
    assert status == 404 and answer["error"] == "unknown_model", answer
