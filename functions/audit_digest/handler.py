"""Scheduled (and ``mlops audit digest``): write one signed digest of every audit chain's head."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from mlops.audit_digest import write_digest_from_env

logger = Logger()


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    summary = write_digest_from_env()
    if summary["refused"]:
        # `mlops audit verify` reports these too; the digest keeps each refused chain's last verified head.
        logger.error("audit chains not advanced", extra={"refused": summary["refused"], "digest": summary["number"]})
    logger.info("audit digest written", extra={k: v for k, v in summary.items() if k != "refused"})
    return summary
