"""Dataset upload API: POST /models/{model}/uploads (IAM-authorized).

Body ``{"name": "train.csv", "sha256": "<64 hex>", "size": <bytes>}``. The uploader is the caller's
IAM identity (requestContext.identity.userArn), never a body field: the answer is a presigned PUT
(15 minutes) whose signed headers carry that identity and the content's SHA-256.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.utilities.typing import LambdaContext

from mlops.apierrors import answer_errors_as_json, body_text, grant_fields, verified_caller
from mlops.data.uploads import authorize_upload, check_upload
from mlops.observability import api_handler
from mlops.registry.api_clients import ApiClientsOnce

app = APIGatewayRestResolver()

FIELDS = ("name", "sha256", "size")
_services = ApiClientsOnce()  # made on the first request whose body parsed


@app.post("/models/<model>/uploads")
def create_upload(model: str) -> Response:
    event = app.current_event
    caller = verified_caller(event)
    body = grant_fields(body_text(event), FIELDS)
    check_upload(model, body["name"], body["sha256"], body["size"])  # refused here: no client made, no AWS call
    services = _services()
    granted = authorize_upload(
        services.registry,
        services.s3,
        services.bucket,
        model,
        name=body["name"],
        sha256=body["sha256"],
        size=body["size"],
        caller=caller,
        request_id=event.request_context.request_id,
    )
    return Response(status_code=201, content_type=content_types.APPLICATION_JSON, body=granted)


answer_errors_as_json(app)


@api_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
