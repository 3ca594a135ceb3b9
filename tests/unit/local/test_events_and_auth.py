"""Input transformers, schedules, SigV4 verification and route matching: pure functions."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from mlops_local.apigw import Route, SignatureError, verify_sigv4
from mlops_local.events import Schedule, ScheduleError, json_path, transform_input

EVENT = {
    "id": "e1",
    "time": "2026-11-22T10:00:00Z",
    "source": "aws.s3",
    "detail": {"bucket": {"name": "b"}, "object": {"key": "datasets/churn/a.csv", "size": 10}},
}


def test_input_transformer_quoted_unquoted_and_inside_strings() -> None:
    # GIVEN a CDK-style template with a JSON position, a quoted position and text inside a string
    target = {
        "InputTransformer": {
            "InputPathsMap": {"key": "$.detail.object.key", "size": "$.detail.object.size"},
            "InputTemplate": '{"key":<key>,"size":<size>,"quoted":"<key>","note":"got <key> (<size> bytes)",'
            '"rule":"<aws.events.rule-name>"}',
        }
    }
    # WHEN it is applied
    out = json.loads(transform_input(target, EVENT, "r1", "arn:r1"))
    # THEN values are JSON where unquoted and text inside strings
    assert out == {
        "key": "datasets/churn/a.csv",
        "size": 10,
        "quoted": "datasets/churn/a.csv",
        "note": "got datasets/churn/a.csv (10 bytes)",
        "rule": "r1",
    }


def test_input_and_input_path_and_default() -> None:
    assert transform_input({"Input": '{"a":1}'}, EVENT, "r", "a") == '{"a":1}'
    assert json.loads(transform_input({"InputPath": "$.detail.bucket"}, EVENT, "r", "a")) == {"name": "b"}
    assert json.loads(transform_input({}, EVENT, "r", "a")) == EVENT
    assert json_path(EVENT, "$.detail.missing.x") is None


def test_rate_and_cron_schedules() -> None:
    # GIVEN a rate and a cron schedule
    started = datetime(2026, 11, 22, 10, 0, 30, tzinfo=UTC)
    rate = Schedule.parse("rate(5 minutes)")
    cron = Schedule.parse("cron(0 3 ? * MON-FRI *)")
    # THEN the rate fires every fifth minute after start, the cron at 03:00 on weekdays only
    assert not rate.due(datetime(2026, 11, 22, 10, 4, tzinfo=UTC), started)
    assert rate.due(datetime(2026, 11, 22, 10, 5, tzinfo=UTC), started)
    assert cron.due(datetime(2026, 11, 23, 3, 0, tzinfo=UTC), started)  # a Monday
    assert not cron.due(datetime(2026, 11, 22, 3, 0, tzinfo=UTC), started)  # a Sunday
    with pytest.raises(ScheduleError, match="not supported"):
        Schedule.parse("cron(0 3 L * ? *)")


def _signed(url: str, body: bytes, secret: str = "testing", region: str = "us-east-1") -> dict[str, str]:
    request = AWSRequest(method="POST", url=url, data=body, headers={"Content-Type": "application/json"})
    SigV4Auth(Credentials("testing", secret), "execute-api", region).add_auth(request)
    headers = dict(request.headers.items())
    headers["Host"] = url.split("/")[2]
    return headers


def test_sigv4_signature_verifies_and_tampering_is_refused() -> None:
    # GIVEN a request signed with the local credentials
    url = "http://127.0.0.1:4567/abc/dev/items/x?q=1"
    body = b'{"a":1}'
    headers = _signed(url, body)
    creds = {"testing": "testing"}
    # THEN it verifies, and names the signer
    assert (
        verify_sigv4(method="POST", url=url, headers=headers, body=body, credentials=creds, region="us-east-1")
        == "testing"
    )
    # WHEN the body changes, or it was signed with another secret, or not at all, THEN it is refused
    with pytest.raises(SignatureError, match="does not match"):
        verify_sigv4(method="POST", url=url, headers=headers, body=b'{"a":2}', credentials=creds, region="us-east-1")
    with pytest.raises(SignatureError, match="does not match"):
        verify_sigv4(
            method="POST",
            url=url,
            headers=_signed(url, body, secret="other"),
            body=body,
            credentials=creds,
            region="us-east-1",
        )
    with pytest.raises(SignatureError, match="Missing Authentication Token"):
        verify_sigv4(method="POST", url=url, headers={}, body=body, credentials=creds, region="us-east-1")


def test_routes_match_params_and_greedy_proxy() -> None:
    # GIVEN a parameter route and a greedy proxy route
    param = Route("a", "/models/{model}/predict", "POST", "r1", "NONE", "AWS_PROXY", "fn")
    proxy = Route("a", "/models/{proxy+}", "ANY", "r2", "NONE", "AWS_PROXY", "fn")
    # THEN parameters are captured, the proxy takes the rest of the path, and specific beats greedy
    assert param.match("/models/churn/predict") == {"model": "churn"}
    assert param.match("/models/churn") is None
    assert proxy.match("/models/churn/v/2") == {"proxy": "churn/v/2"}
    assert param.rank > proxy.rank
