"""Batch API: POST /models/{model}/batch-jobs (IAM-authorized, its own route and permission).

Body ``{"uri", "object_version"?, "version"?}`` (``mlops batch start``). The starter is the caller's
IAM identity API Gateway verified (requestContext.identity), never a body field: it is recorded as
the job's ``started_by`` and is the actor of the job's audit event. One job per object version
(and model version): a second start joins the first, and the answer names who started it.
"""

from __future__ import annotations

import functools
import os
from typing import Any

import boto3
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.utilities.typing import LambdaContext

from mlops.apierrors import answer_errors_as_json, body_text, grant_fields, verified_caller
from mlops.batch.runs import REQUEST_FIELDS, request_job
from mlops.observability import api_handler, logger

app = APIGatewayRestResolver()
stepfunctions = functools.cache(lambda: boto3.client("stepfunctions"))  # once per execution environment
s3 = functools.cache(lambda: boto3.client("s3"))


@app.post("/models/<model>/batch-jobs")
def start_job(model: str) -> Response:
    event = app.current_event
    caller = verified_caller(event)
    body = grant_fields(body_text(event), REQUEST_FIELDS, ("uri",), who="starter")
    answer = request_job(
        stepfunctions(),
        s3(),
        os.environ["BATCH_STATE_MACHINE_ARN"],
        os.environ["DATA_BUCKET"],
        model,
        body,
        caller=caller,
        request_id=event.request_context.request_id,
    )
    logger.info("batch job requested", extra={**answer, "caller": caller})
    return Response(
        status_code=201 if answer["started"] else 200, content_type=content_types.APPLICATION_JSON, body=answer
    )


answer_errors_as_json(app)


@api_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
