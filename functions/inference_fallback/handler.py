"""The fallback serving function: predictions of versions without an ONNX export (the ``python`` path).

Invoked synchronously by the inference function (never by the API) with the validated records of one
request and the version that answers it (:mod:`mlops.serving.fallback`); it loads that version's
pickled pipeline with the restricted unpickler (sha256 checked, allow-listed classes only) into its
model cache and predicts with scikit-learn (the science layer). Parse, one call, dump.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from mlops.observability import api_handler, logger
from mlops.registry.versions import Registry
from mlops.serving.awsapi import clients_from_env
from mlops.serving.fallback import fallback_answer
from mlops.serving.metrics import artifact_refused
from mlops.serving.predictors import S3Artifacts
from mlops.serving.service import InferenceService
from mlops.serving.settings import ServingSettings
from mlops.settings import Platform

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

_service: InferenceService | None = None


def service() -> InferenceService:
    """The execution environment's service: every version from its pickle, no capture (the caller's)."""
    global _service
    if _service is None:
        platform = Platform.from_env()
        clients: tuple[Any, Any] | None = clients_from_env(os.environ)
        if clients is None:  # credentials not in the environment (never on Lambda): boto3 finds them
            import boto3  # only then, as in the inference function

            clients = boto3.client("dynamodb"), boto3.client("s3")
        dynamodb, s3 = clients
        _service = InferenceService(
            Registry.for_platform(dynamodb, platform),
            S3Artifacts(s3),
            ServingSettings.from_env(os.environ),
            on_refused=artifact_refused,
            serve_onnx=False,
        )
    return _service


# The API request id the inference function passes (requestContext.requestId) is the correlation id.
@api_handler(trace=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Answer one fallback invoke: ``{"predictions", ...}`` or ``{"error", "status", "message"}``."""
    answer = fallback_answer(service(), event)
    if "error" in answer:  # ("message" would clash with the log record's own attribute)
        logger.warning(
            "fallback prediction refused",
            extra={"error": answer["error"], "status": answer["status"], "detail": answer["message"]},
        )
    return answer
