"""Training pipeline: Apply the spec's gates to the evaluated candidate."""

from __future__ import annotations

import functools
from typing import Any

from mlops.contracts.training import GateInput, GateOutput
from mlops.observability import step_handler
from mlops.training.steps.outcome import gate_candidate
from mlops.training.steps.services import Services

# clients once per execution environment, made on the first invocation (not at import)
services = functools.cache(Services.from_env)


def _step(event: dict[str, Any], *, request_id: str | None = None) -> dict[str, Any]:
    payload = GateInput.model_validate(event).model_dump(mode="json", exclude_unset=True)
    result = gate_candidate(payload, request_id=request_id, services=services())
    return GateOutput.model_validate(result).model_dump(mode="json", exclude_unset=True)


handler = step_handler(_step)
