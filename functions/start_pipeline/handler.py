"""EventBridge target: an upload under datasets/<model>/ starts the training pipeline once."""

from __future__ import annotations

import os
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from mlops.errors import InputError
from mlops.pipeline import start_training, upload_from_event

logger = Logger()
_sfn = None


def _client() -> Any:
    global _sfn
    if _sfn is None:
        _sfn = boto3.client("stepfunctions")
    return _sfn


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        upload = upload_from_event(event)
    except InputError as exc:
        # Outside the layout: nothing to train. Logged (and kept in S3), not retried.
        logger.warning("ignored upload", extra={"reason": str(exc)})
        return {"started": False, "ignored": True, "reason": str(exc)}
    result = start_training(_client(), os.environ["TRAINING_STATE_MACHINE_ARN"], upload)
    logger.info("training pipeline", extra={**result, "model": upload.model, "key": upload.key})
    return result
