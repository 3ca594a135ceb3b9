"""Training pipeline: PlanTraining plans the candidates, TrainCandidate trains one, CollectCandidate
turns a finished SageMaker training job into the same candidate record (one handler per state)."""

from __future__ import annotations

import functools
from typing import Any

from mlops.contracts.training import CollectInput, PlanInput, PlanOutput, TrainedCandidate, TrainInput
from mlops.observability import step_handler
from mlops.training.steps.candidates import collect_candidate, plan_training, train_candidate
from mlops.training.steps.services import Services

# clients once per execution environment, made on the first invocation (not at import)
services = functools.cache(Services.from_env)


def _plan(event: dict[str, Any], *, request_id: str | None = None) -> dict[str, Any]:
    payload = PlanInput.model_validate(event).model_dump(mode="json", exclude_unset=True)
    result = plan_training(payload, request_id=request_id, services=services())
    return PlanOutput.model_validate(result).model_dump(mode="json", exclude_unset=True)


def _train(event: dict[str, Any], *, request_id: str | None = None) -> dict[str, Any]:
    payload = TrainInput.model_validate(event).model_dump(mode="json", exclude_unset=True)
    result = train_candidate(payload, request_id=request_id, services=services())
    return TrainedCandidate.model_validate(result).model_dump(mode="json", exclude_unset=True)


def _collect(event: dict[str, Any], *, request_id: str | None = None) -> dict[str, Any]:
    payload = CollectInput.model_validate(event).model_dump(mode="json", exclude_unset=True)
    result = collect_candidate(payload, request_id=request_id, services=services())
    return TrainedCandidate.model_validate(result).model_dump(mode="json", exclude_unset=True)


plan = step_handler(_plan)
train = step_handler(_train)
collect = step_handler(_collect)
