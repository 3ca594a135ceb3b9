"""Pagination tokens are caller input (``GET /models?next_token=...``): forged ones are a 400, on moto.

A token is a DynamoDB key in base64 JSON. Before, any JSON object whose partition attribute matched
went to DynamoDB as ``ExclusiveStartKey`` (DynamoDB answers a start key that is not the table's or
index's key with a ``ValidationException``, which the API turned into a 500; moto does not check
start keys, so these tests assert the refusal happens before the query), and a long token nested
deep enough crashed the JSON parser.
"""

from __future__ import annotations

import base64
import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from mlops.errors import InputError
from mlops.registry.keys import MODELS_INDEX_PK
from mlops.registry.tokens import encode_token
from mlops.registry.versions import Registry
from tests.integration.registry.conftest import AUDIT_TABLE, DATA_BUCKET, REGISTRY_TABLE

CATALOG = Path(__file__).resolve().parents[3] / "functions" / "api" / "handler.py"


def forge(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


FORGED = {
    "extra attribute": {"pk": "MODEL#m", "sk": "META", "gsi1pk": MODELS_INDEX_PK, "gsi1sk": "m", "x": "y"},
    "missing table key": {"gsi1pk": MODELS_INDEX_PK, "gsi1sk": "m"},
    "number where a string goes": {"pk": "MODEL#m", "sk": 5, "gsi1pk": MODELS_INDEX_PK, "gsi1sk": "m"},
    "nested value": {"pk": "MODEL#m", "sk": {"S": "x"}, "gsi1pk": MODELS_INDEX_PK, "gsi1sk": "m"},
    "not an object": [MODELS_INDEX_PK],
}


def models(registry: Registry, count: int) -> None:
    for i in range(count):
        registry.register_version(
            f"m{i}", actor="pipeline", spec_revision=1, artifact_uri="s3://b/k", artifact_sha256="0" * 64
        )


@pytest.mark.parametrize("case", sorted(FORGED))
def test_forged_tokens_are_refused_before_dynamodb(registry: Registry, dynamodb: Any, case: str) -> None:
    models(registry, 3)
    token = forge(FORGED[case])
    # WHEN a listing is asked with a forged token THEN InputError (the API's 400), naming the token
    with pytest.raises(InputError, match="next token"):
        registry.list_models(limit=1, next_token=token)


def test_deep_and_long_tokens_are_refused_without_parsing_them(registry: Registry) -> None:
    for token in (forge(json.loads("[" * 700 + "]" * 700)), "W" * 20_000, forge({"a": "[" * 2000})):
        with pytest.raises(InputError, match="next token"):
            registry.list_models(limit=1, next_token=token)
    with pytest.raises(InputError, match="next token"):
        registry.list_models(limit=1, next_token=base64.urlsafe_b64encode(b"[" * 1500).decode())


def test_real_tokens_page_through_every_listing(registry: Registry) -> None:
    # GIVEN three models, one with three versions
    models(registry, 3)
    for _ in range(2):
        registry.register_version(
            "m0", actor="pipeline", spec_revision=1, artifact_uri="s3://b/k", artifact_sha256="0" * 64
        )
    # WHEN each listing is paged one item at a time THEN every item comes back once
    names, token = [], None
    while True:
        page = registry.list_models(limit=1, next_token=token)
        names += [m.name for m in page.items]
        if (token := page.next_token) is None:
            break
    assert sorted(names) == ["m0", "m1", "m2"]
    versions, token = [], None
    while True:
        page = registry.list_versions("m0", limit=1, next_token=token)
        versions += [v.version for v in page.items]
        if (token := page.next_token) is None:
            break
    assert versions == [3, 2, 1]
    events, token = 0, None
    while True:
        listed, token = registry.audit.list_events("m0", limit=1, next_token=token)
        events += len(listed)
        if token is None:
            break
    assert events >= 3
    assert encode_token({"pk": "x", "seq": 1})  # the audit table's numeric sort key is a shape tokens take


def test_catalog_api_answers_a_forged_token_with_400(dynamodb: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in (("REGISTRY_TABLE", REGISTRY_TABLE), ("AUDIT_TABLE", AUDIT_TABLE), ("DATA_BUCKET", DATA_BUCKET)):
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    spec = importlib.util.spec_from_file_location("catalog_handler", CATALOG)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    class Context:
        function_name = "api"
        memory_limit_in_mb = 256
        invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:api"
        aws_request_id = "r"

    for token in (forge(FORGED["extra attribute"]), forge(json.loads("[" * 700 + "]" * 700)), "%%%"):
        event = {
            "resource": "/models",
            "path": "/models",
            "httpMethod": "GET",
            "headers": {},
            "queryStringParameters": {"next_token": token},
            "requestContext": {"requestId": "r", "stage": "v1", "resourcePath": "/models", "httpMethod": "GET"},
            "body": None,
            "isBase64Encoded": False,
        }
        answer = module.handler(event, Context())
        assert answer["statusCode"] == 400, answer
        assert "next token" in json.loads(answer["body"])["error"]


def test_catalog_api_answers_hostile_model_names_without_a_5xx(dynamodb: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN the catalog handler (one registry client per environment, each deliberate error with its status)
    for name, value in (("REGISTRY_TABLE", REGISTRY_TABLE), ("AUDIT_TABLE", AUDIT_TABLE), ("DATA_BUCKET", DATA_BUCKET)):
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    spec = importlib.util.spec_from_file_location("catalog_handler_hostile", CATALOG)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    class Context:
        function_name = "api"
        memory_limit_in_mb = 256
        invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:api"
        aws_request_id = "r"

    # WHEN a model is asked for by names no spec allows: traversal, a key separator, control
    # characters, an emoji, 10,000 characters, an empty-looking name
    hostile = ["../../etc/passwd", "MODEL#x", "a\x00b", "churn\u202e", "🙂", "x" * 10_000, "%00", "VERSION#1"]
    for model in hostile:
        event = {
            "resource": "/models/{model}",
            "path": f"/models/{model}",
            "httpMethod": "GET",
            "headers": {},
            "pathParameters": {"model": model},
            "requestContext": {"requestId": "r", "stage": "v1", "resourcePath": "/models/{model}", "httpMethod": "GET"},
            "body": None,
            "isBase64Encoded": False,
        }
        answer = module.handler(event, Context())
        # THEN each is a JSON refusal (404 unknown model, or 400 a name that cannot be one), never a 5xx
        assert answer["statusCode"] in (400, 404), (model[:40], answer)
        assert json.loads(answer["body"])["error"], answer
    # AND the one client made on the first request served them all
    assert module.registry.cache_info().misses == 1
