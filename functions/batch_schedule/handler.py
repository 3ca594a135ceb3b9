"""EventBridge target (every 15 minutes): start each model's due scheduled batch job once."""

from __future__ import annotations

import functools
import os
from typing import Any

import boto3
from aws_lambda_powertools.utilities.typing import LambdaContext

from mlops.batch.schedules import start_due_jobs
from mlops.observability import event_handler, logger
from mlops.registry.versions import Registry
from mlops.settings import Platform

stepfunctions = functools.cache(lambda: boto3.client("stepfunctions"))  # once per execution environment
s3 = functools.cache(lambda: boto3.client("s3"))


@event_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    platform = Platform.from_env()
    registry = Registry.for_platform(boto3.client("dynamodb"), platform)
    results = start_due_jobs(
        registry, stepfunctions(), s3(), os.environ["BATCH_STATE_MACHINE_ARN"], platform.data_bucket
    )
    for result in results:
        if result["action"] == "input_missing":
            logger.warning("scheduled batch input missing", extra=result)
        elif result["action"] == "started":
            logger.info("scheduled batch job", extra=result)
    return {"jobs": results}
