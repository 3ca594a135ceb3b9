"""Model catalog API: GET /models and GET /models/{model} (what exists, what serves)."""

from __future__ import annotations

import functools
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.utilities.typing import LambdaContext

from mlops.apierrors import answer_errors_as_json
from mlops.observability import api_handler
from mlops.registry import catalog
from mlops.registry.versions import Registry

app = APIGatewayRestResolver()


@functools.cache
def registry() -> Registry:
    """This execution environment's registry client: made on its first request, reused by the next ones."""
    return catalog.registry_from_env()


@app.get("/models")
def list_models() -> dict[str, Any]:
    return catalog.list_models(registry(), next_token=app.current_event.get_query_string_value("next_token"))


@app.get("/models/<model>")
def describe_model(model: str) -> dict[str, Any]:
    return catalog.describe_model(registry(), model)


answer_errors_as_json(app)  # each deliberate error with its own status (404 unknown model, 400 bad token)


@api_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
