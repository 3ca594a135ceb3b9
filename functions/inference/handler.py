"""Inference API: POST /models/{model}/predict, GET /models/{model}, GET /openapi.json.

Thin: parse the API Gateway event, call :class:`mlops.serving.InferenceService`, shape the answer,
emit metrics. One service (and its model cache) per execution environment, created on first use.
"""

from __future__ import annotations

import os
import time
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.typing import LambdaContext

from mlops.serving import InferenceService, ServingError, ServingSettings, serving_openapi

logger = Logger()
metrics = Metrics()
app = APIGatewayRestResolver()
_service: InferenceService | None = None


def service() -> InferenceService:
    """The execution environment's service (clients created once, on first use)."""
    global _service
    if _service is None:
        import boto3

        from mlops.platform import Platform
        from mlops.registry import Registry
        from mlops.serving import S3Artifacts, S3Capture

        platform = Platform.from_env()
        s3 = boto3.client("s3")
        registry = Registry.for_dynamodb(
            boto3.client("dynamodb"), registry_table=platform.registry_table, audit_table=platform.audit_table
        )
        _service = InferenceService(
            registry,
            S3Artifacts(s3),
            ServingSettings.from_env(os.environ),
            capture=S3Capture(s3, platform.data_bucket),
            on_refused=_artifact_refused,
        )
    return _service


def _per_version(name: str, unit: MetricUnit, value: float, model: str, version: int | None) -> None:
    with single_metric(name=name, unit=unit, value=value, namespace=metrics.namespace) as metric:
        metric.add_dimension(name="model", value=model)
        metric.add_dimension(name="version", value=str(version) if version is not None else "none")


def _artifact_refused(model: str, version: int, reason: str) -> None:
    logger.error("model artifact refused", extra={"model": model, "version": version, "reason": reason})
    _per_version("ArtifactRefused", MetricUnit.Count, 1, model, version)


def _request_id() -> str:
    event = app.current_event
    return event.request_context.request_id or app.lambda_context.aws_request_id


def _json(status: int, body: Any, request_id: str | None = None) -> Response:
    headers = {"x-request-id": request_id} if request_id else None
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body, headers=headers)


@app.post("/models/<model>/predict")
def predict(model: str) -> Response:
    event = app.current_event
    request_id = _request_id()
    logger.append_keys(model=model, api_request_id=request_id)
    started = time.perf_counter()
    result = service().predict(
        model,
        event.decoded_body if event.is_base64_encoded else event.body,
        content_type=event.headers.get("content-type"),
        request_id=request_id,
    )
    elapsed_ms = (time.perf_counter() - started) * 1000
    # Per model version: the dimensions the canary alarms watch (mlops.deployment.canary_alarms).
    _per_version("PredictionLatency", MetricUnit.Milliseconds, elapsed_ms, model, result.version)
    _per_version("PredictionRecords", MetricUnit.Count, result.records, model, result.version)
    _per_version("PredictionErrors", MetricUnit.Count, 0, model, result.version)
    metrics.add_metric(name="Predictions", unit=MetricUnit.Count, value=1)
    logger.info(
        "predicted",
        extra={
            "version": result.version,
            "role": result.role,
            "records": result.records,
            "shadow_version": result.shadow_version,
            "latency_ms": round(elapsed_ms, 3),
        },
    )
    return _json(200, result.body, request_id)


@app.get("/models/<model>")
def describe(model: str) -> Response:
    return _json(200, service().describe(model), _request_id())


@app.get("/openapi.json")
def openapi() -> Response:
    event = app.current_event
    host = event.headers.get("host")
    stage = event.request_context.stage
    server = f"https://{host}/{stage}" if host and stage else None
    return _json(200, serving_openapi(service(), server_url=server))


@app.exception_handler(ServingError)
def _refused(exc: ServingError) -> Response:
    request_id = _request_id()
    model = (app.current_event.path_parameters or {}).get("model", "-")
    if exc.status >= 500 or exc.code in ("invalid_record",):
        logger.warning("prediction refused", extra={"error": exc.code, "status": exc.status, "detail": exc.message})
    version = getattr(_service.routes.get(model), "champion", None) if _service is not None else None
    _per_version("PredictionErrors", MetricUnit.Count, 1, model, version)
    metrics.add_metric(name="RequestErrors", unit=MetricUnit.Count, value=1)
    return _json(exc.status, exc.body(request_id), request_id)


@app.exception_handler(Exception)
def _broken(exc: Exception) -> Response:
    request_id = _request_id()
    logger.exception("inference failed")
    metrics.add_metric(name="InternalErrors", unit=MetricUnit.Count, value=1)
    message = "the prediction failed; quote the request id"
    body = {"error": "internal_error", "message": message, "request_id": request_id}
    return _json(500, body, request_id)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
