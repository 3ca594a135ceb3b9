"""EventBridge target: an upload under datasets/<model>/ (or an import under imports/<model>/) starts
the training pipeline once."""

from __future__ import annotations

import functools
import os
from typing import Any

import boto3
from aws_lambda_powertools.utilities.typing import LambdaContext

from mlops.data.trigger import start_training, upload_from_event
from mlops.errors import InputError, NotFoundError, TransitionError
from mlops.observability import event_handler, logger
from mlops.training.import_grants import (
    import_grant_for,
    import_upload,
    is_import_key,
    is_run_model_key,
    start_import,
)
from mlops.training.steps.services import (
    Services,
    record_ignored_upload,
)  # no pandas: this function has no science layer

# clients once per execution environment, made on the first invocation (not at import)
services = functools.cache(Services.from_env)
stepfunctions = functools.cache(lambda: boto3.client("stepfunctions"))


@event_handler  # the S3 event's id as correlation id, then the run it starts
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    key = str(event.get("detail", {}).get("object", {}).get("key", "?"))
    if is_run_model_key(key):
        # a notebook run's logged model: recorded (and audited) with its run; imported only by
        # `mlops models import M --run RUN`, through a grant of its own
        logger.info("a notebook run's model arrived", extra={"key": key})
        return {"started": False, "ignored": True, "reason": f"{key}: a notebook run's logged model"}
    if is_import_key(key):
        return _start_import(key, context)
    try:
        upload = upload_from_event(event)
    except InputError as exc:
        # Outside the layout: nothing to train. Audited (the object stays in S3), not retried.
        key = str(event.get("detail", {}).get("object", {}).get("key", "?"))
        record_ignored_upload(key, str(exc), services=services(), request_id=context.aws_request_id)
        logger.warning("ignored upload", extra={"key": key, "reason": str(exc)})
        return {"started": False, "ignored": True, "reason": str(exc)}
    try:
        services().registry.ensure_active(upload.model)
    except TransitionError as exc:
        # An archived model trains nothing until it is unarchived; the object stays, the refusal is audited.
        record_ignored_upload(upload.key, str(exc), services=services(), request_id=context.aws_request_id)
        logger.warning("ignored upload", extra={"key": upload.key, "reason": str(exc)})
        return {"started": False, "ignored": True, "reason": str(exc)}
    result = start_training(stepfunctions(), os.environ["TRAINING_STATE_MACHINE_ARN"], upload)
    if result.get("execution_name"):
        logger.append_keys(run_id=result["execution_name"])  # ties this event to the run's own logs
    logger.info("training pipeline", extra={**result, "model": upload.model, "key": upload.key})
    return result


def _start_import(key: str, context: LambdaContext) -> dict[str, Any]:
    """An imported artifact: its grant names the dataset version and the importer; the run evaluates it."""
    try:
        grant = import_grant_for(services().registry, key)
        services().registry.ensure_active(grant.model)
        upload = import_upload(services().registry, grant)
    except (InputError, NotFoundError, TransitionError) as exc:
        record_ignored_upload(key, str(exc), services=services(), request_id=context.aws_request_id)
        logger.warning("ignored import", extra={"key": key, "reason": str(exc)})
        return {"started": False, "ignored": True, "reason": str(exc)}
    result = start_import(stepfunctions(), os.environ["TRAINING_STATE_MACHINE_ARN"], upload, grant.run_name)
    logger.append_keys(run_id=grant.run_name)
    logger.info("import pipeline", extra={**result, "model": grant.model, "key": key})
    return result
