"""The one shape every pipeline-step Lambda has: log the context, call the step, return its result."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mlops.errors import TransientError

Step = Callable[..., dict[str, Any]]


def step_handler(step: Step) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """A Lambda handler running ``step(event, request_id=...)`` with Powertools' structured logging."""
    from aws_lambda_powertools import Logger

    logger = Logger()

    @logger.inject_lambda_context
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        try:
            return step(event, request_id=context.aws_request_id)
        except Exception as exc:
            if is_transient(exc):
                # named so the state machine's Retry (ErrorEquals TransientError) runs the step again
                raise TransientError(f"{type(exc).__name__}: {exc}") from exc
            raise

    return handler


# DynamoDB and other services' throttling codes: after the SDK's own retries, worth a step retry.
_THROTTLING = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "Throttling",
        "SlowDown",
        "InternalServerError",
        "InternalError",
        "ServiceUnavailable",
    }
)


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` is the infrastructure failing (retry the step), not the input (a finding)."""
    from botocore.exceptions import ClientError, ConnectionError, HTTPClientError, IncompleteReadError

    if isinstance(exc, (HTTPClientError, ConnectionError, IncompleteReadError)):  # reset mid-stream, timeouts
        return True
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "")) in _THROTTLING
    return False
