"""Approval API: POST /models/{model}/versions/{version}/approve|reject (IAM-authorized).

The approver is the caller's IAM identity (requestContext.identity.userArn), never a body field.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.utilities.typing import LambdaContext

from mlops.apierrors import answer_errors_as_json, body_text
from mlops.deployment.decisions import approve_from_api
from mlops.deployment.services import DeploymentServices
from mlops.errors import InputError
from mlops.observability import api_handler

app = APIGatewayRestResolver()


@functools.cache
def services() -> DeploymentServices:
    """This execution environment's clients: made on its first request, reused by the next ones."""
    return DeploymentServices.from_env()


def _decide(model: str, version: str, decision: str) -> dict[str, Any]:
    event = app.current_event
    identity = event.request_context.identity
    return approve_from_api(
        model,
        version,
        decision,
        caller=identity.user_arn or identity.caller,
        body=_json_object(text) if (text := body_text(event)) is not None else None,
        request_id=event.request_context.request_id,
        services=services(),
    )


MAX_BODY_CHARS = 64 * 1024


def _json_object(text: str) -> dict[str, Any]:
    """The request body as a JSON object, or InputError (400): never a parser error (500) on caller input."""
    if len(text) > MAX_BODY_CHARS:
        raise InputError(f"request body is {len(text)} characters; at most {MAX_BODY_CHARS} are accepted")
    if text.count("{") + text.count("[") > 32:  # a body is {"comment": "..."}; also keeps the parser shallow
        raise InputError('request body must be a JSON object such as {"comment": "..."} (too many brackets)')
    try:
        body = json.loads(text)
    except ValueError:
        raise InputError("request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise InputError('request body must be a JSON object such as {"comment": "..."}')
    return body


@app.post("/models/<model>/versions/<version>/approve")
def approve(model: str, version: str) -> dict[str, Any]:
    return _decide(model, version, "approve")


@app.post("/models/<model>/versions/<version>/reject")
def reject(model: str, version: str) -> dict[str, Any]:
    return _decide(model, version, "reject")


answer_errors_as_json(app)


@api_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
