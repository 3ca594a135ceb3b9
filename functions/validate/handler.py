"""Training pipeline: validate the uploaded dataset version against its model spec (streamed)."""

from __future__ import annotations

import functools
from typing import Any

from mlops.contracts.training import ValidateInput, ValidateOutput
from mlops.observability import step_handler
from mlops.training.steps.services import Services
from mlops.training.steps.validate import validate_upload

# clients once per execution environment, made on the first invocation (not at import)
services = functools.cache(Services.from_env)


def _step(event: dict[str, Any], *, request_id: str | None = None) -> dict[str, Any]:
    payload = ValidateInput.model_validate(event)
    result = validate_upload(payload.upload.model_dump(exclude_unset=True), request_id=request_id, services=services())
    return ValidateOutput.model_validate(result).model_dump(mode="json", exclude_unset=True)


handler = step_handler(_step)
