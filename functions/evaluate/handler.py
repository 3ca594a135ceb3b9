"""Training pipeline: Evaluate the best candidate and the champion on the same holdout."""

from __future__ import annotations

import functools
from typing import Any

from mlops.contracts.training import EvaluateInput, Evaluation
from mlops.observability import step_handler
from mlops.training.steps.evaluate import evaluate_candidates
from mlops.training.steps.services import Services

# clients once per execution environment, made on the first invocation (not at import)
services = functools.cache(Services.from_env)


def _step(event: dict[str, Any], *, request_id: str | None = None) -> dict[str, Any]:
    payload = EvaluateInput.model_validate(event).model_dump(mode="json", exclude_unset=True)
    result = evaluate_candidates(payload, request_id=request_id, services=services())
    return Evaluation.model_validate(result).model_dump(mode="json", exclude_unset=True)


handler = step_handler(_step)
