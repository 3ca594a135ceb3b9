"""An imported model as the training pipeline's one candidate: no training, the same evaluation.

PlanTraining plans one candidate carrying the import (its stored artifact, format, sha256 and
origin) when the execution's ``upload`` has ``imported``; TrainCandidate, instead of fitting,
checks the artifact against the spec, scores it on the dataset version's holdout (the split every
candidate of this dataset version gets) and copies it to the run's prefix, so that Evaluate, Gate,
Register, approval and deployment treat it as they treat a trained candidate.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlops.data.trigger import DatasetUpload
from mlops.errors import CheckFailedError
from mlops.registry.origin import IMPORT_FILE_NAMES, IMPORTED_ESTIMATOR, ONNX_FORMAT, Origin, imported_of
from mlops.spec.model import ModelSpec
from mlops.training.artifacts import sha256_hex
from mlops.training.evaluation import evaluate
from mlops.training.fit import library_versions
from mlops.training.frames import model_input, target_array
from mlops.training.imported import check_format, load_imported
from mlops.training.split import prepare_split
from mlops.training.steps.services import Services, code_revision, put, read_bytes, run_prefix
from mlops.training.threshold import choose_threshold_for_fitted


def import_candidate(
    services: Services,
    upload: DatasetUpload,
    spec: ModelSpec,
    candidate: dict[str, Any],
    frame: Any,
    holdout_file: Any,
    execution_name: str,
) -> dict[str, Any]:
    """The imported candidate, checked against the spec and scored on the holdout (a TrainedCandidate).

    Raises
    ------
    CheckFailedError
        The stored artifact's sha256 is not the one the import API authorized.
    InputError
        The model does not fit the spec (named input, output, column or class).
    """
    imported = dict(candidate["imported"])
    artifact_format = check_format(imported["format"])
    data = read_bytes(services, imported["uri"])
    if sha256_hex(data) != imported["sha256"]:
        raise CheckFailedError(
            f"{imported['uri']}: sha256 {sha256_hex(data)} is not the authorized {imported['sha256']}; not imported"
        )
    model = load_imported(data, imported["sha256"], artifact_format, spec)
    train_rows, holdout, rows_dropped, split = prepare_split(frame, spec, holdout_file)
    # A threshold objective is chosen on the training side of the split, never the holdout.
    threshold = (
        None
        if spec.training.threshold is None
        else choose_threshold_for_fitted(model, model_input(train_rows, spec), target_array(train_rows, spec), spec)
    )
    scored = evaluate(model, holdout, spec, threshold)
    name = IMPORT_FILE_NAMES[artifact_format]
    key = f"{run_prefix(upload.model, execution_name)}candidate-{candidate['index']}/{name}"
    uri = put(services, key, data, "application/octet-stream", sha256=imported["sha256"])
    origin = Origin.from_dict(imported)
    columns = [str(c) for c in model.feature_names_in_]
    summary = {
        "estimator": IMPORTED_ESTIMATOR,
        "params": {},
        "features": sorted({c.split("__")[0] for c in columns}, key=[f.name for f in spec.features].index),
        "feature_columns": columns,
        "dropped_features": {},
        "train_rows": None,  # trained elsewhere: its training rows are not known here
        "holdout_rows": len(holdout),
        "rows_dropped": dict(rows_dropped),
        "classes": None if getattr(model, "classes_", None) is None else [_plain(c) for c in model.classes_],
        "seed": spec.training.seed,
        "test_size": spec.training.test_size,
        "library_versions": library_versions(code_revision()),
        "warnings": [
            "imported: trained outside the platform; the holdout may overlap the rows it was trained on"
            " (they are not known to the platform)"
        ],
        "fit_seconds": 0.0,
        "split": split.to_dict(),
        "imported": {**origin.to_dict(), "uri": imported["uri"]},
        "artifact_format": artifact_format,
        **({"threshold": threshold.to_dict()} if threshold is not None else {}),
    }
    return {
        "index": candidate["index"],
        "params": {},
        "artifact_uri": uri,
        "artifact_sha256": imported["sha256"],
        "metrics": scored.finite_metrics(),
        "training": summary,
        **({"holdout": candidate["holdout"]} if candidate.get("holdout") else {}),
    }


def imported_onnx(candidate: Mapping[str, Any]) -> dict[str, Any] | None:
    """An ONNX import is its own ONNX model: the artifact serves as is (nothing exported; without a
    check input, CheckOnnx has nothing to compare and passes it on)."""
    imported = imported_of(candidate)
    if not imported or imported.get("format") != ONNX_FORMAT:
        return None
    return {"uri": candidate["artifact_uri"], "sha256": candidate["artifact_sha256"]}


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value
