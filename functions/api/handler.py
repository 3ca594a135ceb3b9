"""Model catalog API: GET /models and GET /models/{model} (what exists, what serves)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.utilities.typing import LambdaContext

from mlops.errors import MlopsError, NotFoundError
from mlops.registry import catalog

logger = Logger()
app = APIGatewayRestResolver()


@app.get("/models")
def list_models() -> dict[str, Any]:
    return catalog.list_models(
        catalog.registry_from_env(), next_token=app.current_event.get_query_string_value("next_token")
    )


@app.get("/models/<model>")
def describe_model(model: str) -> dict[str, Any]:
    return catalog.describe_model(catalog.registry_from_env(), model)


@app.exception_handler(NotFoundError)
def _not_found(exc: NotFoundError) -> Response:
    return Response(status_code=404, content_type=content_types.APPLICATION_JSON, body={"error": str(exc)})


@app.exception_handler(MlopsError)
def _bad_request(exc: MlopsError) -> Response:
    return Response(status_code=400, content_type=content_types.APPLICATION_JSON, body={"error": str(exc)})


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
