"""The CheckOnnx state: the run's ONNX export, run by onnxruntime on the check's input Evaluate wrote.

Runs on the inference layer (numpy and onnxruntime), the layer that serves the export; Evaluate,
on the science layer (scikit-learn, skl2onnx), has no onnxruntime. Its result is what Register
records (the ``onnx_uri`` and ``onnx_sha256`` tags, or ``onnx_error``).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from mlops.errors import CheckFailedError, MlopsError
from mlops.training.onnx_check import compare_onnx
from mlops.training.steps.services import Services, read_bytes


def _verified(services: Services, uri: str, sha256: str) -> bytes:
    """The object's bytes, refused when they are not the ones Evaluate wrote."""
    data = read_bytes(services, uri)
    if hashlib.sha256(data).hexdigest() != sha256:
        raise CheckFailedError(f"{uri}: sha256 differs from the one Evaluate recorded; refusing to check it")
    return data


def check_onnx_export(
    event: dict[str, Any], *, request_id: str | None = None, services: Services | None = None
) -> dict[str, Any]:
    """Check the run's ONNX export against scikit-learn's answers on the holdout.

    An export Evaluate could not make passes through as its ``error``, an imported ONNX model (its
    own export, no check input) as it is; an export whose predictions
    differ beyond the stated tolerance (:mod:`mlops.training.onnx_check`) gives an ``error`` too:
    either way the version is registered without an ONNX model and served from its pickle. An
    object whose sha256 is not the one Evaluate recorded fails the step (nothing is registered),
    and so does a failed check of a model that serves only through ONNX (``serves_only_onnx``: its
    library, XGBoost, is in no Lambda function, so no pickle of it could be served).
    """
    export = event["onnx"]
    if not export.get("uri"):
        return {"error": str(export.get("error") or "not exported")}
    if not export.get("check_uri"):  # an imported ONNX model: served as it was uploaded, nothing to compare
        return {"uri": export["uri"], "sha256": export["sha256"], "max_deltas": {}}
    services = services or Services.from_env()
    data = _verified(services, export["uri"], export["sha256"])
    document = json.loads(_verified(services, export["check_uri"], export["check_sha256"]))
    try:
        deltas = compare_onnx(data, document)
    except MlopsError as exc:
        if export.get("serves_only_onnx"):
            raise CheckFailedError(f"{exc}; the model serves only through ONNX, so nothing is registered") from None
        return {"error": str(exc)}
    return {"uri": export["uri"], "sha256": export["sha256"], "max_deltas": deltas}
