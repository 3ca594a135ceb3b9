"""Training pipeline: Register the candidate (PENDING_APPROVAL or REJECTED) with lineage, card and profile."""

from __future__ import annotations

import functools
from typing import Any

from mlops.contracts.training import Registered, RegisterInput
from mlops.observability import step_handler
from mlops.training.steps.outcome import register_candidate
from mlops.training.steps.services import Services

# clients once per execution environment, made on the first invocation (not at import)
services = functools.cache(Services.from_env)


def _step(event: dict[str, Any], *, request_id: str | None = None) -> dict[str, Any]:
    payload = RegisterInput.model_validate(event).model_dump(mode="json", exclude_unset=True)
    result = register_candidate(payload, request_id=request_id, services=services())
    return Registered.model_validate(result).model_dump(mode="json", exclude_unset=True)


handler = step_handler(_step)
