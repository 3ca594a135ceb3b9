"""The batch state machine's Score state (one batch of rows inside the Distributed Map).

Runs on the inference layer (onnxruntime, numpy; no pandas or scikit-learn), as the inference
function does; the loaded model stays in the execution environment for the next batches.
"""

from __future__ import annotations

import functools
from typing import Any

from mlops.batch import scoring
from mlops.batch.services import BatchServices
from mlops.contracts.batch import ScoreRequest
from mlops.observability import step_handler


@functools.cache
def services() -> BatchServices:
    """The clients and the model cache, made once per execution environment."""
    return BatchServices.from_env()


@step_handler
def score(event: dict[str, Any], *, request_id: str) -> dict[str, Any]:
    return scoring.score(ScoreRequest.model_validate(event), services()).model_dump(mode="json")
