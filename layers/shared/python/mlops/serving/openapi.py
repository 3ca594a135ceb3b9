"""The inference API's OpenAPI 3.1 document, built from the request models of the served models."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import TYPE_CHECKING, Any

from mlops.errors import MlopsError
from mlops.serving.requests import RequestModels
from mlops.serving.settings import DEFAULT_MAX_BATCH_SIZE

if TYPE_CHECKING:  # pydantic is imported when the document is first asked for
    from pydantic import BaseModel

    from mlops.serving.service import InferenceService


@cache
def _response_models() -> tuple[type[BaseModel], ...]:
    """The response models of the OpenAPI document (built when the document is first asked for)."""
    from pydantic import BaseModel, Field

    class ErrorDetail(BaseModel):
        record: int | None = Field(description="Index of the record in the batch (0 for a single record)")
        field: str = Field(description="The field the problem is about")
        problem: str = Field(description="missing_field, extra_field, wrong_type, out_of_range, not_allowed, ...")
        message: str

    class ErrorResponse(BaseModel):
        error: str = Field(description="A stable code: malformed_json, invalid_record, empty_batch, unknown_model, ...")
        message: str
        details: list[ErrorDetail] | None = None
        request_id: str | None = None

    class PredictResponse(BaseModel):
        request_id: str
        model: str
        version: int = Field(description="The model version that answered (champion, or the canary)")
        predictions: list[Any]
        classes: list[Any] | None = Field(default=None, description="Classifiers: the order of each probability list")
        probabilities: list[list[float]] | None = Field(default=None, description="Classifiers: one list per record")

    # GET /models/{model} is the model catalog's route (functions/api, mlops.registry.catalog).
    class ModelDescription(BaseModel):
        model: dict[str, Any] = Field(description="The model's name, aliases (champion, challenger) and state")
        serving: dict[str, dict[str, Any]] = Field(description="The champion's and challenger's version summaries")
        input_schema: dict[str, Any] | None = Field(
            description="The latest spec revision: task, target and features (null before a spec is stored)"
        )

    class CatalogError(BaseModel):
        error: str = Field(description="What is wrong, for a person")

    return PredictResponse, ErrorResponse, ModelDescription, CatalogError


def openapi_document(
    models: Sequence[RequestModels] = (), *, server_url: str | None = None, max_batch_size: int = DEFAULT_MAX_BATCH_SIZE
) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the inference API, built from the same pydantic models.

    Parameters
    ----------
    models
        Request models of the models to describe (each adds ``<Model>Record``, single and batch
        request schemas under ``components.schemas``); the path's request body is one of them.
    server_url
        The API's base URL, if known.
    max_batch_size
        The batch limit shown for the generic request.
    """
    from pydantic import ConfigDict, Field, create_model
    from pydantic.json_schema import models_json_schema

    generic_record = create_model("Record", __config__=ConfigDict(extra="allow", title="Record"))
    generic_single = create_model("SingleRequest", record=(generic_record, ...))
    generic_batch = create_model(
        "BatchRequest",
        records=(list[generic_record], Field(min_length=1, max_length=max_batch_size)),
    )
    all_models: list[type[BaseModel]] = [
        generic_single,
        generic_batch,
        *_response_models(),
    ]
    for m in models:
        all_models += [m.single, m.batch]
    _, schema = models_json_schema([(m, "validation") for m in all_models], ref_template="#/components/schemas/{model}")
    components = schema.get("$defs", {})
    request_refs = [{"$ref": "#/components/schemas/SingleRequest"}, {"$ref": "#/components/schemas/BatchRequest"}]
    for m in models:
        request_refs += [
            {"$ref": f"#/components/schemas/{m.single.__name__}"},
            {"$ref": f"#/components/schemas/{m.batch.__name__}"},
        ]

    def error(description: str) -> dict[str, Any]:
        return {
            "description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}},
        }

    def catalog_error(description: str) -> dict[str, Any]:
        return {
            "description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/CatalogError"}}},
        }

    model_parameter = {
        "name": "model",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "pattern": "^[a-z][a-z0-9-]{0,62}$"},
    }
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "MLOps inference API",
            "version": "1",
            "description": "Predictions from each model's champion (and canary). Requests are signed with SigV4"
            " (service execute-api) unless the deployment uses API keys (header x-api-key).",
        },
        "paths": {
            "/models/{model}/predict": {
                "post": {
                    "operationId": "predict",
                    "summary": "Predict one record or a batch",
                    "parameters": [model_parameter],
                    "requestBody": {
                        "required": True,
                        # anyOf, not oneOf: a valid request of a model is also a valid generic request.
                        "content": {"application/json": {"schema": {"anyOf": request_refs}}},
                    },
                    "responses": {
                        "200": {
                            "description": "Predictions, the version that answered and the request id",
                            "content": {
                                "application/json": {"schema": {"$ref": "#/components/schemas/PredictResponse"}}
                            },
                        },
                        "400": error("Malformed JSON, bad shape, empty batch, or records that break the schema"),
                        "403": error("Missing or invalid signature (or API key)"),
                        "404": error("Unknown model"),
                        "409": error("The model has no champion yet"),
                        "410": error("The model is archived (mlops models unarchive restores it)"),
                        "413": error("Batch or body over the limit"),
                        "415": error("Content-Type is not application/json"),
                        "503": error("The serving version's artifact was refused or cannot be loaded"),
                    },
                }
            },
            "/models/{model}": {
                "get": {
                    "operationId": "describeModel",
                    "summary": "The model's aliases, serving versions and input schema (the model catalog)",
                    "parameters": [model_parameter],
                    "responses": {
                        "200": {
                            "description": "The model's serving versions and the schema of one record",
                            "content": {
                                "application/json": {"schema": {"$ref": "#/components/schemas/ModelDescription"}}
                            },
                        },
                        "400": catalog_error("A model name that cannot exist"),
                        "404": catalog_error("Unknown model"),
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "This document",
                    "responses": {"200": {"description": "OpenAPI 3.1 document"}},
                }
            },
        },
        "components": {"schemas": components},
    }
    if server_url:
        document["servers"] = [{"url": server_url}]
    return document


def serving_openapi(service: InferenceService, *, server_url: str | None = None, limit: int = 100) -> dict[str, Any]:
    """The OpenAPI document with the request schemas of up to ``limit`` models that have a champion."""
    described: list[RequestModels] = []
    for summary in service.registry.list_models(limit=limit).items:
        if summary.champion is None:
            continue
        try:
            described.append(service.spec_requests(summary.name, summary.champion))
        except MlopsError:
            continue
    return openapi_document(described, server_url=server_url, max_batch_size=service.settings.max_batch_size)
