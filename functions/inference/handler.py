"""Inference API: POST /models/{model}/predict and GET /openapi.json (``ROUTES``).

Thin: parse the API Gateway event, call :class:`mlops.serving.service.InferenceService`, shape the answer,
emit metrics. One service (and its model cache) per execution environment, created on first use.

Cold start is part of the contract (benchmarks/bench_inference.py), so this module imports only what
the first prediction needs: Powertools' Logger and Metrics from :mod:`mlops.observability` (not the
X-Ray SDK, and not Powertools' event handler, whose import pulls
in the validation and OpenAPI machinery of every resolver), and not boto3: the registry and the
artifacts are read with :mod:`mlops.serving.awsapi` (boto3's import and two clients cost ~0.15 s).
The two routes are matched on the REST event's resource template. ``GET /models/{model}`` (what a
model serves and expects) is the model catalog's (``functions/api``), not this function's.
"""

from __future__ import annotations

import base64
import json
import os
import re
import time
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit

from mlops.observability import api_handler, logger, metrics
from mlops.registry.versions import Registry
from mlops.serving.awsapi import clients_from_env
from mlops.serving.capture import S3Capture
from mlops.serving.errors import RequestError, ServingError
from mlops.serving.fallback import FALLBACK_FUNCTION_ENV, LambdaInvoker
from mlops.serving.metrics import artifact_refused, version_metrics
from mlops.serving.openapi import serving_openapi
from mlops.serving.predictors import S3Artifacts
from mlops.serving.service import InferenceService
from mlops.serving.settings import ServingSettings
from mlops.settings import Platform

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

_service: InferenceService | None = None

PREDICT = ("POST", "/models/{model}/predict")
OPENAPI = ("GET", "/openapi.json")
# Every route this handler serves: tests/infra/test_api_routes.py checks each is wired in the API.
ROUTES = (PREDICT, OPENAPI)


def service() -> InferenceService:
    """The execution environment's service (clients created once, on first use)."""
    global _service
    if _service is None:
        platform = Platform.from_env()
        clients: tuple[Any, Any] | None = clients_from_env(os.environ)
        if clients is None:  # credentials not in the environment (never on Lambda): boto3 finds them
            import boto3  # only then: its import and clients cost more than the cold start's first request

            clients = boto3.client("dynamodb"), boto3.client("s3")
        dynamodb, s3 = clients
        registry = Registry.for_platform(dynamodb, platform)
        _service = InferenceService(
            registry,
            S3Artifacts(s3),
            ServingSettings.from_env(os.environ),
            capture=S3Capture(s3, platform.data_bucket),
            on_refused=_artifact_refused,
            # versions without an ONNX export are predicted by the fallback function (scikit-learn)
            fallback=LambdaInvoker(os.environ[FALLBACK_FUNCTION_ENV])
            if os.environ.get(FALLBACK_FUNCTION_ENV)
            else None,
        )
    return _service


# Kept under their old names: the handler's tests and metrics read them here.
_per_version = version_metrics
_artifact_refused = artifact_refused


def _json_default(value: Any) -> Any:
    item = getattr(value, "item", None)  # numpy scalars
    return item() if callable(item) else str(value)


def _answer(status: int, body: Any, request_id: str | None) -> dict[str, Any]:
    headers = {"Content-Type": "application/json"}
    if request_id:
        headers["x-request-id"] = request_id
    text = json.dumps(body, separators=(",", ":"), default=_json_default)
    return {"statusCode": status, "headers": headers, "body": text, "isBase64Encoded": False}


_PATHS = (
    (PREDICT, re.compile(r"^/models/([^/]+)/predict/?$")),
    (OPENAPI, re.compile(r"^/openapi\.json$")),
)


def _route(event: dict[str, Any]) -> tuple[tuple[str, str], str]:
    """The route (method, resource template) and the model path parameter of a REST event."""
    context = event.get("requestContext") or {}
    method = str(event.get("httpMethod") or context.get("httpMethod") or "").upper()
    model = (event.get("pathParameters") or {}).get("model")
    resource = str(event.get("resource") or context.get("resourcePath") or "")
    if "{" not in resource:  # a hand-made event without the template: match the path itself
        path = str(event.get("path") or resource)
        for (_, template), pattern in _PATHS:
            found = pattern.match(path)
            if found:
                resource = template
                model = model or (found.group(1) if found.groups() else None)
                break
    return (method, resource), str(model or "-")


def _body(event: dict[str, Any]) -> str | bytes | None:
    body = event.get("body")
    if body is not None and event.get("isBase64Encoded"):
        try:
            return base64.b64decode(body, validate=True)
        except ValueError:  # binascii.Error: the gateway said base64, the bytes are not
            raise RequestError("request body is marked base64 but is not valid base64", code="malformed_body") from None
    return body  # type: ignore[no-any-return]


def _predict(event: dict[str, Any], model: str, headers: dict[str, str], request_id: str) -> dict[str, Any]:
    logger.append_keys(model=model, api_request_id=request_id)
    started = time.perf_counter()
    result = service().predict(model, _body(event), content_type=headers.get("content-type"), request_id=request_id)
    elapsed_ms = (time.perf_counter() - started) * 1000
    # Per model version: the dimensions the canary alarms watch (mlops.deployment.canary.canary_alarms).
    _per_version(
        model,
        result.version,
        ("PredictionLatency", MetricUnit.Milliseconds, elapsed_ms),
        ("PredictionRecords", MetricUnit.Count, result.records),
        ("PredictionErrors", MetricUnit.Count, 0),
    )
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
    return _answer(200, result.body, request_id)


def _openapi(event: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
    host = headers.get("host")
    stage = (event.get("requestContext") or {}).get("stage")
    server = f"https://{host}/{stage}" if host and stage else None
    return _answer(200, serving_openapi(service(), server_url=server), None)


def _refused(exc: ServingError, model: str, request_id: str) -> dict[str, Any]:
    if exc.http_status >= 500 or exc.code in ("invalid_record",):
        detail = {"error": exc.code, "status": exc.http_status, "detail": exc.message}
        logger.warning("prediction refused", extra=detail)
    version = getattr(_service.routes.get(model), "champion", None) if _service is not None else None
    _per_version(model, version, ("PredictionErrors", MetricUnit.Count, 1))
    metrics.add_metric(name="RequestErrors", unit=MetricUnit.Count, value=1)
    return _answer(exc.http_status, exc.body(request_id), request_id)


def _not_found(method: str, resource: str, request_id: str) -> dict[str, Any]:
    body = {"error": "not_found", "message": f"no route {method} {resource}", "request_id": request_id}
    return _answer(404, body, request_id)


# The shared logger and metrics, the API request id as correlation id; no SDK tracer (see
# mlops.observability.tracer: its import would cost the cold start, and this function makes no SDK call).
@api_handler(trace=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Answer one API Gateway (REST, proxy integration) event."""
    request_id = str((event.get("requestContext") or {}).get("requestId") or context.aws_request_id)
    route, model = _route(event)
    try:
        headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
        if route == PREDICT:
            return _predict(event, model, headers, request_id)
        if route == OPENAPI:
            return _openapi(event, headers)
        return _not_found(*route, request_id)
    except ServingError as exc:
        return _refused(exc, model, request_id)
    except Exception:
        logger.exception("inference failed")
        metrics.add_metric(name="InternalErrors", unit=MetricUnit.Count, value=1)
        message = "the prediction failed; quote the request id"
        return _answer(500, {"error": "internal_error", "message": message, "request_id": request_id}, request_id)
