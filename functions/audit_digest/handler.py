"""Scheduled (and ``mlops audit digest``): write one signed digest of every audit chain's head.

Every run publishes ``AuditChainsRefused`` (how many chains no longer extend their last digested
head) and ``AuditDigestFailed`` (1 when no digest was written) in the MLOps namespace on this
function's ``service`` dimension; the alarm ``mlops-<env>-audit-chain-broken`` pages on the first.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from mlops.contracts.names import CHAINS_REFUSED_METRIC, DIGEST_FAILED_METRIC
from mlops.observability import event_handler, logger, metrics
from mlops.registry.digest import write_digest_from_env


# The shared logger, tracer and metrics (namespace POWERTOOLS_METRICS_NAMESPACE, dimension
# service=POWERTOOLS_SERVICE_NAME); metrics flush on failure too: a failed run still publishes
# AuditDigestFailed. The schedule's event id is the correlation id.
@event_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        summary = write_digest_from_env()
    except Exception:
        metrics.add_metric(name=DIGEST_FAILED_METRIC, unit=MetricUnit.Count, value=1)
        logger.exception("audit digest not written")
        raise
    metrics.add_metric(name=DIGEST_FAILED_METRIC, unit=MetricUnit.Count, value=0)
    if summary.get("skipped"):  # overlapping runs kept winning the race: theirs anchor the heads
        logger.warning("audit digest not written: other runs wrote first", extra=summary)
        return summary
    metrics.add_metric(name=CHAINS_REFUSED_METRIC, unit=MetricUnit.Count, value=len(summary["refused"]))
    if summary["refused"]:
        # `mlops audit verify` reports these too; the digest keeps each refused chain's last verified head.
        logger.error("audit chains not advanced", extra={"refused": summary["refused"], "digest": summary["number"]})
    logger.info("audit digest written", extra={k: v for k, v in summary.items() if k != "refused"})
    return summary
