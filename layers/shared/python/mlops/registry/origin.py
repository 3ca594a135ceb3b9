"""Where an imported model came from, as plain data (no numpy: the model card and RecordFailure's module read it).

An imported version records its origin in the registry's tags (``imported_format``,
``imported_sha256``, ``imported_source``, ``imported_source_sha256``, ``imported_uploader``,
``imported_run_id``) and ``artifact_format``; ``models show`` and the model card show them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

ONNX_FORMAT = "onnx"
SKLEARN_FORMAT = "sklearn-pickle-5"  # mlops.training.artifacts.ARTIFACT_FORMAT: the restricted pickle
IMPORT_FORMATS = (ONNX_FORMAT, SKLEARN_FORMAT)
IMPORT_FILE_NAMES = {ONNX_FORMAT: "model.onnx", SKLEARN_FORMAT: "model.pkl"}
# The estimator name an imported candidate carries in the registry, the card and `runs show`.
IMPORTED_ESTIMATOR = "imported"
# The registry tags of an imported version's origin.
ORIGIN_TAG_PREFIX = "imported_"
SOURCES = ("onnx-file", "sklearn-file", "mlflow-sklearn", "mlflow-onnx", "tracking-run")


@dataclass(frozen=True)
class Origin:
    """Where an imported model came from: recorded in the lineage, the model card and ``models show``.

    ``uploader`` is the identity the import API recorded (AWS verified it), never a client value.
    """

    format: str  # the stored artifact's format: onnx or sklearn-pickle-5
    sha256: str  # of the stored artifact
    source: str  # one of SOURCES
    source_sha256: str | None = None  # of what the user gave, when the CLI converted it
    uploader: str | None = None
    run_id: str | None = None  # the MLflow or tracked run it came from, if any

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Origin:
        return cls(**{k: data.get(k) for k in cls.__dataclass_fields__})  # type: ignore[arg-type]


def imported_of(candidate: Mapping[str, Any]) -> dict[str, Any] | None:
    """The import a trained candidate carries (in its training summary), or ``None``."""
    return (candidate.get("training") or {}).get("imported")


def origin_tags(candidate: Mapping[str, Any]) -> dict[str, str]:
    """The registry tags of an imported candidate's origin (none for a trained one)."""
    imported = imported_of(candidate)
    if not imported:
        return {}
    origin = Origin.from_dict(imported).to_dict()
    return {
        "artifact_format": str(origin["format"]),
        **{f"{ORIGIN_TAG_PREFIX}{k}": str(v) for k, v in origin.items()},
    }


def origin_from_tags(tags: dict[str, str]) -> dict[str, str] | None:
    """An imported version's origin from its registry tags (``None`` for a trained version)."""
    found = {k[len(ORIGIN_TAG_PREFIX) :]: v for k, v in tags.items() if k.startswith(ORIGIN_TAG_PREFIX)}
    return found or None


def describe_origin(origin: dict[str, Any] | None) -> str | None:
    """One line: ``imported onnx from mlflow-sklearn (run r1), sha256 ab12..., by arn:...``."""
    if not origin:
        return None
    text = f"imported {origin.get('format')} from {origin.get('source')}"
    if origin.get("run_id"):
        text += f" (run {origin['run_id']})"
    text += f", sha256 {origin.get('sha256')}"
    if origin.get("source_sha256") and origin.get("source_sha256") != origin.get("sha256"):
        text += f" (converted from sha256 {origin['source_sha256']})"
    if origin.get("uploader"):
        text += f", uploaded by {origin['uploader']}"
    return text
