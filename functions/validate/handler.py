"""First state of the training pipeline: validate the uploaded dataset version against its spec."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from mlops.pipeline_steps import validate_upload

logger = Logger()


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    result = validate_upload(event["upload"], request_id=context.aws_request_id)
    logger.info("validated", extra={"valid": result["valid"], "report": result["report_uri"]})
    return result
