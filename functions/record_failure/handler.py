"""Training pipeline: Record a failed pipeline run in the registry and the audit trail."""

from __future__ import annotations

import functools
from typing import Any

from mlops.contracts.training import RecordFailureInput, RecordFailureOutput
from mlops.observability import step_handler
from mlops.training.steps.outcome import record_failure
from mlops.training.steps.services import Services

# clients once per execution environment, made on the first invocation (not at import)
services = functools.cache(Services.from_env)


def _step(event: dict[str, Any], *, request_id: str | None = None) -> dict[str, Any]:
    payload = RecordFailureInput.model_validate(event).model_dump(mode="json", exclude_unset=True)
    result = record_failure(payload, request_id=request_id, services=services())
    return RecordFailureOutput.model_validate(result).model_dump(mode="json", exclude_unset=True)


handler = step_handler(_step)
