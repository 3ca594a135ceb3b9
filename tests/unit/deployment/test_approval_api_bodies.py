"""The approval API's request bodies: anything that is not a small JSON object is a 400, never a 500.

Before, the body went through Powertools' ``json_body`` (a parser error escaped the resolver: the
function failed, API Gateway answered 502) and a JSON array reached ``dict(body)`` (TypeError, 500).
The refusals happen before any AWS call, so no cloud is needed.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

HANDLER = Path(__file__).resolve().parents[3] / "functions" / "approval_api" / "handler.py"


class Context:
    function_name = "approval-api"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:approval-api"
    aws_request_id = "r"


@pytest.fixture(scope="module")
def handler() -> ModuleType:
    spec = importlib.util.spec_from_file_location("approval_api_handler", HANDLER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def post(handler: ModuleType, body: str) -> tuple[int, dict[str, Any]]:
    path = "/models/churn/versions/1/approve"
    event = {
        "resource": "/models/{model}/versions/{version}/approve",
        "path": path,
        "httpMethod": "POST",
        "headers": {"Content-Type": "application/json"},
        "pathParameters": {"model": "churn", "version": "1"},
        "requestContext": {
            "requestId": "r",
            "stage": "v1",
            "resourcePath": "/models/{model}/versions/{version}/approve",
            "httpMethod": "POST",
            "identity": {"userArn": "arn:aws:iam::123456789012:user/carol", "caller": "AIDA"},
        },
        "body": body,
        "isBase64Encoded": False,
    }
    answer = handler.handler(event, Context())
    return answer["statusCode"], json.loads(answer["body"])


@pytest.mark.parametrize(
    "body",
    [
        "[" * 1450 + "]" * 1450,
        '{"comment": ' + "[" * 100_000 + "]" * 100_000 + "}",
        '{"comment": "x"',
        "[1, 2]",
        "3",
        '"text"',
        "null",
        '{"comment": "' + "x" * 70_000 + '"}',
    ],
)
def test_bodies_that_are_not_a_small_object_are_400(handler: ModuleType, body: str) -> None:
    status, answer = post(handler, body)
    assert status == 400, answer
    assert answer["error"] and "Traceback" not in answer["error"]
