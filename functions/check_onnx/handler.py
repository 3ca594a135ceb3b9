"""Training pipeline: CheckOnnx runs the ONNX export with onnxruntime and compares it with scikit-learn."""

from __future__ import annotations

import functools
from typing import Any

from mlops.contracts.training import CheckOnnxInput, OnnxCheck
from mlops.observability import step_handler
from mlops.training.steps.onnx_check import check_onnx_export
from mlops.training.steps.services import Services

# clients once per execution environment, made on the first invocation (not at import)
services = functools.cache(Services.from_env)


def _step(event: dict[str, Any], *, request_id: str | None = None) -> dict[str, Any]:
    payload = CheckOnnxInput.model_validate(event).model_dump(mode="json", exclude_unset=True)
    result = check_onnx_export(payload, request_id=request_id, services=services())
    return OnnxCheck.model_validate(result).model_dump(mode="json", exclude_unset=True)


handler = step_handler(_step)
