"""Loaded models that predict validated records: ONNX (onnxruntime) or a pickled scikit-learn pipeline.

:func:`load_predictor` reads a version's artifact, checks its bytes against the sha256 the
registry recorded, and prefers the ONNX export (no scikit-learn, no code run on load).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from mlops.errors import CheckFailedError, NotFoundError
from mlops.registry.versions import ModelVersion
from mlops.serving.errors import ArtifactRefusedError, ServingUnavailableError
from mlops.serving.validation import utc_datetime
from mlops.spec.view import FeatureType, SpecView
from mlops.values import canonical_label as _canonical_label

if TYPE_CHECKING:
    from mlops.spec.model import ModelSpec

ONNX_TAG_URI = "onnx_uri"
ONNX_TAG_SHA256 = "onnx_sha256"
MISSING_CATEGORY = "(missing)"
_NS_PER_DAY = 86_400 * 10**9


@dataclass
class Prediction:
    """What a model said about a batch: one prediction per record (and class probabilities)."""

    predictions: list[Any]
    probabilities: list[list[float]] | None = None
    classes: list[Any] | None = None


class Predictor(Protocol):
    """A loaded model (ONNX or scikit-learn) that predicts validated records."""

    kind: str
    nbytes: int

    def predict(self, records: Sequence[Mapping[str, Any]]) -> Prediction: ...


def _datetime64(value: str | None) -> np.datetime64:
    if value is None:
        return np.datetime64("NaT", "ns")
    return np.datetime64(utc_datetime(value), "ns")  # validated: inside the range datetime64[ns] holds


def feature_columns(records: Sequence[Mapping[str, Any]], spec: ModelSpec | SpecView) -> dict[str, np.ndarray]:
    """The model-input columns of validated records, without pandas (what the ONNX graph takes).

    Same values as :func:`mlops.training.fit.model_input`: numbers and booleans as float (missing
    NaN), categories as canonical text (missing ``"(missing)"``), each datetime as ``__days`` and
    ``__month``; string features left out. Shapes are ``[N, 1]``.
    """
    columns: dict[str, np.ndarray] = {}
    for feature in spec.features:
        name = feature.name
        kind = feature.type
        if kind is FeatureType.STRING:
            continue
        values = [r.get(name) for r in records]
        if kind in (FeatureType.FLOAT, FeatureType.INT, FeatureType.BOOL):
            # None becomes NaN; through float64 first, as float(v) would, then to the graph's float32.
            columns[name] = np.array(values, dtype=np.float64).astype(np.float32)
        elif kind is FeatureType.CATEGORY:
            # A batch repeats few distinct values: label each once (keyed by type too: True is not 1).
            keys = [(type(v), v) for v in values]
            labels = {k: MISSING_CATEGORY if k[1] is None else _canonical_label(k[1]) for k in set(keys)}
            columns[name] = np.array([labels[k] for k in keys], dtype=object)
        else:
            parsed = {v: _datetime64(v) for v in set(values)}
            stamps = np.array([parsed[v] for v in values], dtype="datetime64[ns]")
            missing = np.isnat(stamps)
            ns = stamps.astype("int64").astype(np.float64)
            months = stamps.astype("datetime64[M]").astype("int64") % 12 + 1
            columns[f"{name}__days"] = np.where(missing, np.nan, ns / _NS_PER_DAY).astype(np.float32)
            columns[f"{name}__month"] = np.where(missing, np.nan, months).astype(np.float32)
    return {k: v.reshape(-1, 1) for k, v in columns.items()}


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _class_values(labels: Iterable[Any], spec: ModelSpec | SpecView) -> list[Any]:
    """Model class labels as the spec writes them (so 1 comes back as 1, not "1")."""
    by_text = {_canonical_label(c): c for c in spec.target.classes or []}
    return [by_text.get(_canonical_label(_plain(c)), _plain(c)) for c in labels]


class OnnxPredictor:
    """An ONNX export (see :mod:`mlops.training.export`) run by onnxruntime: no scikit-learn, no code on load."""

    kind = "onnx"

    def __init__(self, data: bytes, spec: ModelSpec | SpecView) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(data, options, providers=["CPUExecutionProvider"])
        self.spec = spec
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.outputs = [o.name for o in self.session.get_outputs()]
        self.nbytes = 2 * len(data) + 64 * 1024
        self.classes: list[Any] | None = None
        meta = self.session.get_modelmeta().custom_metadata_map
        # The spec's column behind each graph input, in order (graph input names are identifiers
        # made from the column names); models exported before this record were named as-is.
        self.columns = json.loads(meta["columns"]) if "columns" in meta else list(self.inputs)
        if spec.task == "classification":
            labels = json.loads(meta["classes"]) if "classes" in meta else list(spec.target.classes or [])
            self.classes = _class_values(labels, spec)

    def predict(self, records: Sequence[Mapping[str, Any]]) -> Prediction:
        columns = feature_columns(records, self.spec)
        feeds = {name: columns[column] for name, column in zip(self.inputs, self.columns, strict=True)}
        outputs = self.session.run(None, feeds)
        if self.classes is None:
            values = np.asarray(outputs[0], dtype=np.float64).ravel()
            return Prediction([float(v) for v in values])
        probabilities = np.asarray(outputs[self.outputs.index("probabilities")], dtype=np.float64)
        best = probabilities.argmax(axis=1)  # first maximum wins, as in scikit-learn
        return Prediction([self.classes[i] for i in best], probabilities.round(6).tolist(), self.classes)


class SklearnPredictor:
    """A pickled scikit-learn pipeline (versions registered before ONNX export; needs pandas)."""

    kind = "sklearn"

    def __init__(self, pipeline: Any, spec: ModelSpec, nbytes: int) -> None:
        self.pipeline = pipeline
        self.spec = spec
        self.nbytes = nbytes
        self.classes = (
            _class_values(pipeline.classes_, spec)
            if spec.task == "classification" and hasattr(pipeline, "classes_")
            else None
        )

    def predict(self, records: Sequence[Mapping[str, Any]]) -> Prediction:
        import pandas as pd

        from mlops.training.fit import model_input

        frame = pd.DataFrame.from_records(list(records), columns=self.spec.feature_names)
        x = model_input(frame, self.spec)
        if self.classes is None:
            return Prediction([float(v) for v in self.pipeline.predict(x)])
        probabilities = np.asarray(self.pipeline.predict_proba(x), dtype=np.float64)
        best = probabilities.argmax(axis=1)
        return Prediction([self.classes[i] for i in best], probabilities.round(6).tolist(), self.classes)


def records_from_frame(frame: Any, spec: ModelSpec | SpecView) -> list[dict[str, Any]]:
    """Typed training rows (a frame from :func:`mlops.training.fit.coerce_frame`) as request records."""
    records: list[dict[str, Any]] = []
    names = [f.name for f in spec.features if f.name in frame.columns]
    kinds = {f.name: f.type for f in spec.features}
    for row in frame[names].itertuples(index=False, name=None):
        record: dict[str, Any] = {}
        for name, value in zip(names, row, strict=True):
            if value is None or (isinstance(value, float) and math.isnan(value)) or value is np.datetime64("NaT"):
                record[name] = None
                continue
            kind = kinds[name]
            if kind is FeatureType.DATETIME:
                record[name] = None if str(value) == "NaT" else str(np.datetime64(value, "s")) + "Z"
            elif kind is FeatureType.INT:
                record[name] = int(value)
            elif kind is FeatureType.BOOL:
                record[name] = bool(value)
            elif kind is FeatureType.FLOAT:
                record[name] = float(value)
            else:
                record[name] = _plain(value)
        records.append(record)
    return records


# ---------------------------------------------------------------------------------------------- artifacts
class ArtifactSource(Protocol):
    """Reads artifact bytes by URI (``s3://bucket/key``)."""

    def read(self, uri: str) -> bytes: ...


class S3Artifacts:
    """Artifacts on S3 (a boto3 ``s3`` client)."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def read(self, uri: str) -> bytes:
        if not uri.startswith("s3://") or "/" not in uri[5:]:
            raise NotFoundError(f"artifact URI {uri!r} is not an s3:// URI")
        bucket, key = uri[5:].split("/", 1)
        try:
            return bytes(self.client.get_object(Bucket=bucket, Key=key)["Body"].read())
        except self.client.exceptions.NoSuchKey:
            raise NotFoundError(f"artifact {uri} does not exist") from None


class MemoryArtifacts:
    """Artifacts in a dict (unit tests)."""

    def __init__(self, objects: Mapping[str, bytes] | None = None) -> None:
        self.objects: dict[str, bytes] = dict(objects or {})
        self.reads = 0

    def read(self, uri: str) -> bytes:
        self.reads += 1
        if uri not in self.objects:
            raise NotFoundError(f"artifact {uri} does not exist")
        return self.objects[uri]


def load_predictor(version: ModelVersion, spec: ModelSpec | SpecView, artifacts: ArtifactSource) -> Predictor:
    """Load a version's model after checking its bytes against the registry's sha256.

    The ONNX export (tags ``onnx_uri`` and ``onnx_sha256``) is preferred; without one, the
    pickled pipeline is loaded with :func:`mlops.training.artifacts.load_artifact` (restricted unpickler).

    Raises
    ------
    ArtifactRefusedError
        The bytes do not hash to the recorded sha256, or the artifact is not a loadable model.
    ServingUnavailableError
        The version records no artifact, or the runtime to serve it is not installed.
    """
    from mlops.training.artifacts import sha256_hex

    where = f"model {version.model!r} version {version.version}"
    onnx_uri = version.tags.get(ONNX_TAG_URI)
    if onnx_uri:
        data = artifacts.read(onnx_uri)
        expected = (version.tags.get(ONNX_TAG_SHA256) or "").lower()
        actual = sha256_hex(data)
        if actual != expected:
            raise ArtifactRefusedError(
                f"{where}: the model artifact failed its integrity check (sha256 mismatch); it is not served",
                code="artifact_integrity",
            )
        try:
            return OnnxPredictor(data, spec)
        except ImportError:
            raise ServingUnavailableError(f"{where}: this function cannot run ONNX models") from None
        except Exception:  # onnxruntime raises its own types for a bad graph
            raise ArtifactRefusedError(
                f"{where}: the ONNX artifact cannot be loaded", code="artifact_invalid"
            ) from None
    if not version.artifact_uri or not version.artifact_sha256:
        raise ServingUnavailableError(f"{where} records no model artifact")
    data = artifacts.read(version.artifact_uri)
    try:
        from mlops.training.artifacts import load_artifact

        pipeline = load_artifact(data, version.artifact_sha256)
    except ImportError:
        raise ServingUnavailableError(
            f"{where} has no ONNX export and this function does not carry scikit-learn; re-register it"
        ) from None
    except CheckFailedError as exc:
        integrity = "sha256 mismatch" in str(exc)
        raise ArtifactRefusedError(
            f"{where}: the model artifact failed its integrity check (sha256 mismatch); it is not served"
            if integrity
            else f"{where}: the model artifact cannot be loaded safely; it is not served",
            code="artifact_integrity" if integrity else "artifact_invalid",
        ) from None
    # A pickled pipeline takes the spec's full model (scikit-learn and pandas are imported anyway).
    full = spec.model_spec() if isinstance(spec, SpecView) else spec
    return SklearnPredictor(pipeline, full, nbytes=2 * len(data) + 64 * 1024)
