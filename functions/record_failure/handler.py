"""Training pipeline: Record a failed pipeline run in the registry and the audit trail."""

from mlops.handlers import step_handler
from mlops.pipeline_steps import record_failure

handler = step_handler(record_failure)
