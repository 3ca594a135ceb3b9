"""The serving functions' per-version metrics (EMF), shared by the inference and fallback functions.

Namespace and service come from :data:`mlops.observability.metrics` (the function's environment).
The fallback function is given the inference function's service name (``stacks/inference.py``), so
the ``<env>-artifact-refused`` and ``<env>-inference-errors`` alarms watch both serving paths.
"""

from __future__ import annotations

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import AmazonCloudWatchEMFProvider

from mlops.observability import logger, metrics


def version_metrics(model: str, version: int | None, *values: tuple[str, MetricUnit, float]) -> None:
    """Metrics of one model version in one EMF document (dimensions model, version and service)."""
    document = AmazonCloudWatchEMFProvider(namespace=metrics.namespace, service=metrics.service)
    document.add_dimension(name="model", value=model)
    document.add_dimension(name="version", value=str(version) if version is not None else "none")
    for name, unit, value in values:
        document.add_metric(name=name, unit=unit, value=value)
    document.flush_metrics()


def artifact_refused(model: str, version: int, reason: str) -> None:
    """A serving version's artifact failed its integrity check: log, and count it twice.

    Per model and version (which artifact), and once more with only the function's service
    dimension, so one alarm on ``ArtifactRefused`` watches every model of the deployment.
    """
    logger.error("model artifact refused", extra={"model": model, "version": version, "reason": reason})
    version_metrics(model, version, ("ArtifactRefused", MetricUnit.Count, 1))
    metrics.add_metric(name="ArtifactRefused", unit=MetricUnit.Count, value=1)


__all__ = ["artifact_refused", "version_metrics"]
