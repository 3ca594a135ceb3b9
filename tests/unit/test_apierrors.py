"""The control APIs answer each deliberate error with its own status and a JSON body naming it."""

from __future__ import annotations

import json
import re

import pytest
from aws_lambda_powertools.event_handler import APIGatewayRestResolver

from mlops.apierrors import answer_errors_as_json, grant_fields
from mlops.deployment.approval import SelfApprovalError, UnverifiedUploaderError
from mlops.errors import CheckFailedError, ConflictError, InputError, MlopsError, NotFoundError, SpecError


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (InputError, 400),
        (SpecError, 400),
        (SelfApprovalError, 403),
        (UnverifiedUploaderError, 403),
        (NotFoundError, 404),
        (ConflictError, 409),
        (CheckFailedError, 409),
        (MlopsError, 409),
    ],
)
def test_each_deliberate_error_has_its_status(error: type[MlopsError], status: int) -> None:
    app = APIGatewayRestResolver()
    answer_errors_as_json(app)

    @app.post("/x")
    def fail() -> None:
        raise error(f"{error.__name__} said why")

    event = {"path": "/x", "httpMethod": "POST", "requestContext": {"requestId": "r"}, "headers": {}, "body": None}
    response = app.resolve(event, None)
    assert response["statusCode"] == status
    assert json.loads(response["body"]) == {"error": f"{error.__name__} said why"}


def test_an_unexpected_error_is_not_answered_as_a_deliberate_one() -> None:
    app = APIGatewayRestResolver()
    answer_errors_as_json(app)

    @app.post("/x")
    def fail() -> None:
        raise KeyError("bug")

    event = {"path": "/x", "httpMethod": "POST", "requestContext": {"requestId": "r"}, "headers": {}, "body": None}
    with pytest.raises(KeyError):
        app.resolve(event, None)


def test_a_body_that_is_not_utf8_is_the_callers_error() -> None:
    import base64

    from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent

    from mlops.apierrors import body_text
    from mlops.errors import InputError

    def event(body: str | None, encoded: bool) -> APIGatewayProxyEvent:
        return APIGatewayProxyEvent({"body": body, "isBase64Encoded": encoded, "headers": {}})

    assert body_text(event(None, False)) is None and body_text(event("", False)) is None
    assert body_text(event('{"a": 1}', False)) == '{"a": 1}'
    assert body_text(event(base64.b64encode('{"é": 1}'.encode()).decode(), True)) == '{"é": 1}'
    for hostile in (base64.b64encode(b"\xff\xfe").decode(), "not base64!"):
        with pytest.raises(InputError, match="not UTF-8 text") as refused:
            body_text(event(hostile, True))
        assert refused.value.http_status == 400


FIELDS = ("name", "sha256", "size")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (None, "request body is missing: send a JSON object with name, sha256, size"),
        ("x" * 5000, "request body is 5000 characters; at most 4096 are accepted"),
        ('{"name": [[[[["deep"]]]]]}', "request body must be one flat JSON object"),
        ("{not json", "request body is not valid JSON"),
        ('["name"]', "request body must be a JSON object with name, sha256, size"),
        ('{"name": "a", "sha256": "b", "size": 1, "uploader": "me"}', "body field 'uploader' is not accepted"),
        ('{"name": "a", "size": 1}', "body field 'sha256' is missing"),
    ],
)
def test_a_grant_request_body_is_refused_naming_what_is_wrong(text: str | None, message: str) -> None:
    with pytest.raises(InputError, match=re.escape(message)):
        grant_fields(text, FIELDS)


def test_brackets_inside_a_grant_bodys_strings_are_not_nesting() -> None:
    # GIVEN a flat body whose value holds brackets (an S3 key may: batch/m/x[1]{2}[3]{4}.csv)
    text = json.dumps({"uri": "s3://data/batch/m/x[1]{2}[3]{4}.csv"})
    # THEN it is read (counting brackets refused it as "not one flat JSON object") ...
    assert grant_fields(text, ("uri",)) == {"uri": "s3://data/batch/m/x[1]{2}[3]{4}.csv"}
    # ... while a nested value is still refused before parsing
    with pytest.raises(InputError, match="request body must be one flat JSON object"):
        grant_fields('{"uri": [["x"]]}', ("uri",))


def test_a_grant_request_body_takes_optional_fields_and_names_who_comes_from_credentials() -> None:
    body = grant_fields('{"format": "onnx", "run_id": "r1"}', ("format", "run_id"), ("format",), who="importer")
    assert body == {"format": "onnx", "run_id": "r1"}
    with pytest.raises(InputError, match="the importer is taken from your credentials"):
        grant_fields('{"format": "onnx", "importer": "x"}', ("format", "run_id"), ("format",), who="importer")
