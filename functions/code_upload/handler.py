"""Code upload API: POST /models/{model}/code (IAM-authorized, its own route and permission).

Body ``{"package": "churnfeatures", "sha256": "<64 hex>", "size": <bytes>}``. The uploader is the
caller's IAM identity (requestContext.identity.userArn), never a body field, and must be one of the
environment's code uploaders (``CODE_UPLOADERS``): the code runs with the training role. The answer
is the recorded code version (``pending``) and a presigned PUT (15 minutes) of exactly that content.
Body ``{"confirm": <version>}``, sent by the CLI after its PUT, records that version ``stored`` once
its package is there with the recorded sha256 (409 naming what is missing otherwise).
"""

from __future__ import annotations

import json
import os
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.utilities.typing import LambdaContext

from mlops.apierrors import answer_errors_as_json, body_text, grant_fields, verified_caller
from mlops.observability import api_handler
from mlops.registry.api_clients import ApiClientsOnce
from mlops.registry.code_versions import authorize_code_upload, check_code_request, confirm_code_upload
from mlops.storage import read_uri_if_any

app = APIGatewayRestResolver()

FIELDS = ("package", "sha256", "size")
CONFIRM = "confirm"
_services = ApiClientsOnce()  # made on the first request whose body parsed


def _uploaders() -> tuple[str, ...]:
    """The environment's code uploaders (IAM ARNs or patterns): CODE_UPLOADERS, a JSON list."""
    return tuple(json.loads(os.environ.get("CODE_UPLOADERS") or "[]"))


@app.post("/models/<model>/code")
def create_code_version(model: str) -> Response:
    event = app.current_event
    caller = verified_caller(event)
    text = body_text(event)
    if CONFIRM in grant_fields(text, (*FIELDS, CONFIRM), required=()):
        version = grant_fields(text, (CONFIRM,))[CONFIRM]  # a confirmation carries nothing else
        services = _services()
        confirmed = confirm_code_upload(
            services.registry,
            lambda uri: read_uri_if_any(services.s3, uri),
            model,
            version,
            caller=caller,
            uploaders=_uploaders(),
            request_id=event.request_context.request_id,
        )
        return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=confirmed.to_dict())
    body = grant_fields(text, FIELDS)
    check_code_request(model, body["package"], body["sha256"], body["size"])  # refused here: no AWS call
    services = _services()
    granted = authorize_code_upload(
        services.registry,
        services.s3,
        services.bucket,
        model,
        package=body["package"],
        sha256=body["sha256"],
        size=body["size"],
        caller=caller,
        uploaders=_uploaders(),
        request_id=event.request_context.request_id,
    )
    return Response(status_code=201, content_type=content_types.APPLICATION_JSON, body=granted)


answer_errors_as_json(app)


@api_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
