"""Training pipeline: Record a failed pipeline run in the registry and the audit trail."""

from mlops.observability import step_handler
from mlops.training.steps import record_failure

handler = step_handler(record_failure)
