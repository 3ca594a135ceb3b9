"""The one shape every pipeline-step Lambda has: log the context, call the step, return its result."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Step = Callable[..., dict[str, Any]]


def step_handler(step: Step) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """A Lambda handler running ``step(event, request_id=...)`` with Powertools' structured logging."""
    from aws_lambda_powertools import Logger

    logger = Logger()

    @logger.inject_lambda_context
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return step(event, request_id=context.aws_request_id)

    return handler
