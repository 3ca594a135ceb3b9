"""The Python serving path: versions without an ONNX export, served by the fallback function.

The API keeps one predict route per model, answered by the inference function (numpy and
onnxruntime, no scikit-learn). A version whose serving path is ``python``
(:func:`mlops.registry.serving_path.serving_path`: skl2onnx could not convert its pipeline) is
loaded there as a :class:`RemotePredictor`: the inference function still parses and validates
the request against the spec, routes it (champion, canary, shadow), shapes the answer and
captures it, exactly as for an ONNX version, and only the prediction itself is made by the
fallback function (``functions/inference_fallback``: runtime, science and shared layers), which it
invokes synchronously with the validated records (:class:`LambdaInvoker`). The fallback loads the
pickled pipeline with :func:`mlops.training.artifacts.load_artifact` (sha256 checked, allow-listed
classes only) into its own model cache and answers :func:`fallback_answer`.

Why the inference function invokes the fallback, rather than the API routing to it: which
function serves a request depends on the registry (the version the champion alias points at,
the canary's share), which API Gateway cannot read; and a canary may pair an ONNX champion with a
Python challenger, so the choice is per version, after routing. The cost is one synchronous
invoke per request to a Python version (measured in docs/inference.md).

Payload (the function's own contract, not the API's):

- request: ``{"model", "version", "records": [...], "requestContext": {"requestId"}}``; the
  records are the validated ones, the request id the API's (the fallback's log correlation id);
- answer: ``{"predictions", "classes"?, "probabilities"?}`` or a refusal
  ``{"error": code, "status": http_status, "message"}`` (an artifact refused, a missing version).

Examples
--------
>>> invoker = LambdaInvoker("mlops-dev-inference-fallback")  # doctest: +SKIP
>>> service = InferenceService(registry, artifacts, fallback=invoker)  # doctest: +SKIP
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from mlops.contracts.names import FALLBACK_FUNCTION_ENV
from mlops.contracts.serving import FALLBACK_READ_TIMEOUT_S, FALLBACK_TIMEOUT_S
from mlops.errors import InputError
from mlops.serving.errors import (
    ArtifactRefusedError,
    NoChampionError,
    ServingError,
    ServingUnavailableError,
    UnknownModelError,
)
from mlops.training.onnx_model import Prediction

# What a remote model weighs in the inference function's cache: a handle, not a model.
REMOTE_NBYTES = 1024
# How long the inference function waits for the fallback: its cold start, this wait and its answer
# fit in API Gateway's 29 s, and the fallback's own timeout is shorter (mlops.contracts.serving).
INVOKE_READ_TIMEOUT_S = FALLBACK_READ_TIMEOUT_S
# Errors worth one more invoke: the request never reached the function (a throttle, no connection).
RETRIED_ERROR_CODES = frozenset({"TooManyRequestsException", "ThrottlingException", "EC2ThrottledException"})
RETRIED_EXCEPTIONS = frozenset({"EndpointConnectionError", "ConnectTimeoutError"})
# What Lambda's error payload says when a function ran out of its time.
TIMED_OUT = b"Task timed out"


class FallbackInvoker(Protocol):
    """Asks the fallback function for one version's predictions on validated records."""

    def predict(
        self, model: str, version: int, records: Sequence[Mapping[str, Any]], request_id: str
    ) -> Prediction: ...


class FallbackFailedError(Exception):
    """The fallback function failed (an unhandled error or a timeout): the platform's failure, a 500."""


def fallback_request(model: str, version: int, records: Sequence[Mapping[str, Any]], request_id: str) -> bytes:
    """The invoke payload for the fallback function."""
    body = {"model": model, "version": version, "records": list(records), "requestContext": {"requestId": request_id}}
    return json.dumps(body, separators=(",", ":"), default=str).encode()


def prediction_from_answer(answer: Mapping[str, Any], where: str) -> Prediction:
    """The fallback's answer as a :class:`Prediction`, or its refusal raised as the same error."""
    if "error" in answer:
        code, status = str(answer.get("error")), int(answer.get("status") or 503)
        message = str(answer.get("message") or f"{where} cannot be served")
        kind = {404: UnknownModelError, 409: NoChampionError}.get(status)
        if code.startswith("artifact_"):
            raise ArtifactRefusedError(message, code=code)
        if kind is not None:
            raise kind(message, code=code)
        raise ServingUnavailableError(message, code=code)
    if not isinstance(answer.get("predictions"), list):
        raise FallbackFailedError(f"{where}: the fallback function answered without predictions")
    return Prediction(answer["predictions"], answer.get("probabilities"), answer.get("classes"))


class RemotePredictor:
    """A ``python``-path version in the inference function: its predictions come from the fallback.

    Parameters
    ----------
    invoker
        Reaches the fallback function.
    model, version
        The version it predicts with.
    """

    kind = "python-remote"
    nbytes = REMOTE_NBYTES

    def __init__(self, invoker: FallbackInvoker, model: str, version: int) -> None:
        self.invoker = invoker
        self.model = model
        self.version = version

    def predict(self, records: Sequence[Mapping[str, Any]], request_id: str = "-") -> Prediction:
        """The fallback's prediction; ``request_id`` (the API's) becomes the fallback's log correlation id."""
        return self.invoker.predict(self.model, self.version, records, request_id)


class LambdaInvoker:
    """Invokes the fallback function synchronously (``RequestResponse``) with boto3's Lambda client.

    boto3 is imported and the client made on the first Python-path prediction of an execution
    environment, never on an ONNX version's cold start (see :mod:`mlops.serving.awsapi`); that
    first prediction waits for the fallback's own cold start (scikit-learn), which is larger.
    Reads time out after :data:`INVOKE_READ_TIMEOUT_S`; one retry for an invoke that never reached
    the function (a throttle, a connection that could not be made: a prediction is safe to repeat),
    never after a read timeout, which already took the time a second attempt would need.
    """

    def __init__(self, function_name: str, client: Any | None = None) -> None:
        self.function_name = function_name
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            # here, not at the top: only an execution environment that serves a Python-path version
            # pays boto3's import (about 0.2 s), not the ONNX cold start
            import boto3
            from botocore.config import Config

            config = Config(
                read_timeout=INVOKE_READ_TIMEOUT_S,
                connect_timeout=3,
                # no SDK retry: its standard mode retries read timeouts too (see predict)
                retries={"total_max_attempts": 1, "mode": "standard"},
            )
            self._client = boto3.client("lambda", config=config)
        return self._client

    def _invoke(self, payload: bytes) -> Any:
        return self.client.invoke(FunctionName=self.function_name, InvocationType="RequestResponse", Payload=payload)

    def predict(self, model: str, version: int, records: Sequence[Mapping[str, Any]], request_id: str) -> Prediction:
        where = f"model {model!r} version {version}"
        payload = fallback_request(model, version, records, request_id)
        try:
            try:
                answer = self._invoke(payload)
            except Exception as exc:  # botocore's errors: retried once when the invoke never reached the function
                if not retried(exc):
                    raise
                answer = self._invoke(payload)
        except Exception as exc:
            if retried(exc) or type(exc).__name__ == "ReadTimeoutError":
                raise busy(where, exc) from None
            raise
        body = answer["Payload"].read()
        if answer.get("FunctionError"):
            if TIMED_OUT in body[:2000]:
                raise busy(where, None)
            raise FallbackFailedError(f"{where}: the fallback function failed: {body[:500]!r}")
        return prediction_from_answer(json.loads(body), where)


def busy(where: str, exc: BaseException | None) -> ServingUnavailableError:
    """A 503 the client may retry: the fallback timed out (a cold start) or stayed throttled.

    Not the platform's failure (a 500): a Python-path version's first request after a quiet spell
    waits for the fallback's cold start, and a retry a few seconds later finds it warm.
    """
    if exc is None:  # Lambda ended it at its own timeout
        why = f"did not answer within {FALLBACK_TIMEOUT_S} s"
    elif retried(exc):
        why = "stayed throttled"
    else:  # the inference function stopped waiting (a cold start's Init is not part of the 24 s)
        why = f"did not answer within {INVOKE_READ_TIMEOUT_S:g} s"
    return ServingUnavailableError(
        f"{where}: its serving function {why} (a cold start of the Python serving path); retry in a few seconds",
        code="fallback_busy",
    )


def retried(exc: BaseException) -> bool:
    """Whether a failed invoke is worth one more: throttled, or no connection made (never a read timeout)."""
    response = getattr(exc, "response", None)
    code = str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""
    return code in RETRIED_ERROR_CODES or type(exc).__name__ in RETRIED_EXCEPTIONS


def parse_fallback_request(event: Any) -> tuple[str, int, list[dict[str, Any]]]:
    """The model, version and records of a fallback invoke (:class:`InputError` for another shape)."""
    if not isinstance(event, Mapping):
        raise InputError("fallback request: expected a JSON object")
    model, version, records = event.get("model"), event.get("version"), event.get("records")
    if not isinstance(model, str) or not model:
        raise InputError("fallback request: 'model' must be a non-empty string")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise InputError("fallback request: 'version' must be a positive integer")
    if not isinstance(records, list) or not records or not all(isinstance(r, dict) for r in records):
        raise InputError("fallback request: 'records' must be a non-empty list of objects")
    return model, version, records


def fallback_answer(service: Any, event: Any) -> dict[str, Any]:
    """Answer one fallback invoke: load the version (its pickle) through ``service`` and predict.

    ``service`` is the fallback function's :class:`mlops.serving.service.InferenceService`, made with
    ``serve_onnx=False``; a refusal (:class:`ServingError`) becomes ``{"error", "status", "message"}``.
    """
    try:
        model, version, records = parse_fallback_request(event)
        prediction = service.loaded(model, version).predictor.predict(records)
    except ServingError as exc:
        return {"error": exc.code, "status": exc.http_status, "message": exc.message}
    except InputError as exc:
        return {"error": "bad_request", "status": 400, "message": str(exc)}
    answer: dict[str, Any] = {"predictions": prediction.predictions}
    if prediction.classes is not None:
        answer["classes"] = prediction.classes
        answer["probabilities"] = prediction.probabilities
    return answer


__all__ = [
    "FALLBACK_FUNCTION_ENV",
    "FallbackFailedError",
    "FallbackInvoker",
    "LambdaInvoker",
    "RemotePredictor",
    "fallback_answer",
    "fallback_request",
    "parse_fallback_request",
    "prediction_from_answer",
    "retried",
]
