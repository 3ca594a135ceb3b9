"""Model import API: POST /models/{model}/imports and POST /models/{model}/runs (IAM-authorized, each its
own route and permission).

Body ``{"format", "sha256", "size", "dataset_version", "source"}`` and optionally
``source_sha256`` and ``run_id``. The importer is the caller's IAM identity
(requestContext.identity.userArn), never a body field: the answer is a presigned PUT (15 minutes)
of exactly that content to ``imports/<model>/<sha256>/``, whose creation starts the training
pipeline's evaluation of the import on that dataset version.

``POST /models/{model}/runs`` records a notebook run (:mod:`mlops.tracking`): body ``{"params",
"metrics", "tags"}`` and optionally the logged ``model`` (format, sha256, size), the recorder again
the caller's IAM identity; answers the run, its run id and for a model a presigned PUT under imports/.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.utilities.typing import LambdaContext

from mlops.apierrors import answer_errors_as_json, body_text, grant_fields, verified_caller
from mlops.errors import InputError
from mlops.observability import api_handler
from mlops.registry.api_clients import ApiClientsOnce
from mlops.registry.versions import check_model_name
from mlops.training.import_grants import authorize_import, check_import
from mlops.training.notebook_runs import check_run_body, parse_body, record_run

app = APIGatewayRestResolver()

MAX_RUN_BODY_CHARS = 256 * 1024  # a run's params, metrics and tags (DynamoDB items hold 400 KB)
FIELDS = ("format", "sha256", "size", "dataset_version", "source", "source_sha256", "run_id")
REQUIRED = FIELDS[:5]
_services = ApiClientsOnce()  # made on the first request whose body parsed


@app.post("/models/<model>/imports")
def create_import(model: str) -> Response:
    event = app.current_event
    caller = verified_caller(event)
    body = grant_fields(body_text(event), FIELDS, REQUIRED, who="importer")
    check_model_name(model)
    check_import(body)  # refused here: no client made, no AWS call
    services = _services()
    granted = authorize_import(
        services.registry,
        services.s3,
        services.bucket,
        model,
        body,
        caller=caller,
        request_id=event.request_context.request_id,
    )
    return Response(status_code=201, content_type=content_types.APPLICATION_JSON, body=granted)


@app.post("/models/<model>/runs")
def create_run(model: str) -> Response:
    event = app.current_event
    caller = verified_caller(event)
    text = body_text(event)
    if not text:
        raise InputError("request body is missing: send a JSON object with params, metrics and tags")
    if len(text) > MAX_RUN_BODY_CHARS:
        raise InputError(f"request body is {len(text)} characters; at most {MAX_RUN_BODY_CHARS} are accepted")
    body = parse_body(text)
    check_model_name(model)
    check_run_body(body)  # refused here: no client made, no AWS call
    services = _services()
    recorded = record_run(
        services.registry,
        model,
        body,
        caller=caller,
        request_id=event.request_context.request_id,
        s3=services.s3,
        bucket=services.bucket,
    )
    return Response(status_code=201, content_type=content_types.APPLICATION_JSON, body=recorded)


answer_errors_as_json(app)


@api_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
