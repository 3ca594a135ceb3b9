"""EventBridge target: an upload under batch/<model>/ starts one batch job per object version."""

from __future__ import annotations

import functools
import os
from typing import Any

import boto3
from aws_lambda_powertools.utilities.typing import LambdaContext

from mlops.batch.runs import start_object_job, upload_job
from mlops.errors import InputError
from mlops.observability import event_handler, logger

stepfunctions = functools.cache(lambda: boto3.client("stepfunctions"))  # once per execution environment


@event_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        request = upload_job(event)
    except InputError as exc:  # outside batch/<model>/: nothing to score, not retried
        logger.warning("ignored batch upload", extra={"reason": str(exc)})
        return {"started": False, "ignored": True, "reason": str(exc)}
    result = start_object_job(stepfunctions(), os.environ["BATCH_STATE_MACHINE_ARN"], request)
    logger.info("batch job", extra={**result, "model": request.model, "key": request.key})
    return result
