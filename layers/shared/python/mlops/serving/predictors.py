"""Loaded models that predict validated records: ONNX (onnxruntime), a pickled scikit-learn pipeline,
or (in the inference function, for a ``python``-path version) the fallback function's answers.

:func:`load_predictor` reads a version's artifact, checks its bytes against the sha256 the
registry recorded, and prefers the ONNX export (no scikit-learn, no code run on load). A version
that records a decision threshold (registry tag ``decision_threshold``) labels each record by it,
from the probabilities it answers with (:class:`ThresholdPredictor`, numpy only).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from mlops.errors import CheckFailedError, NotFoundError
from mlops.registry.serving_path import serving_path
from mlops.registry.versions import ModelVersion
from mlops.serving.errors import ArtifactRefusedError, ServingUnavailableError
from mlops.serving.fallback import FallbackInvoker, RemotePredictor
from mlops.spec.view import SpecView
from mlops.training.onnx_model import (  # the ONNX model's interface, shared with the export's check
    ONNX_TAG_SHA256,
    ONNX_TAG_URI,
    OnnxPredictor,
    Prediction,
)
from mlops.training.onnx_model import class_values as _class_values
from mlops.training.threshold import DecisionThreshold, positive_column, positive_mask

if TYPE_CHECKING:
    from mlops.spec.model import ModelSpec


class Predictor(Protocol):
    """A loaded model (ONNX or scikit-learn) that predicts validated records."""

    kind: str
    nbytes: int

    def predict(self, records: Sequence[Mapping[str, Any]]) -> Prediction: ...


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

        from mlops.training.frames import model_input

        frame = pd.DataFrame.from_records(list(records), columns=self.spec.feature_names)
        x = model_input(frame, self.spec)
        if self.classes is None:
            return Prediction([float(v) for v in self.pipeline.predict(x)])
        probabilities = np.asarray(self.pipeline.predict_proba(x), dtype=np.float64)
        best = probabilities.argmax(axis=1)
        return Prediction([self.classes[i] for i in best], probabilities.round(6).tolist(), self.classes)


class ThresholdPredictor:
    """A binary classifier whose labels come from its probabilities and the version's decision threshold.

    The probabilities are the model's (unchanged); each label is the positive class where the
    probability served for it is at or above the threshold (the rule of
    :func:`mlops.training.threshold.threshold_labels`), so a client can check a label against the
    probability beside it.
    """

    def __init__(self, predictor: Predictor, threshold: DecisionThreshold) -> None:
        self.predictor = predictor
        self.threshold = threshold
        self.kind = predictor.kind
        self.nbytes = predictor.nbytes

    def predict(self, records: Sequence[Mapping[str, Any]]) -> Prediction:
        prediction = self.predictor.predict(records)
        if prediction.probabilities is None or prediction.classes is None:
            return prediction
        classes = prediction.classes  # as the spec writes them (1 stays 1, not numpy's int64)
        column = positive_column(classes, self.threshold.positive_class)
        positive = positive_mask(prediction.probabilities, classes, self.threshold)
        prediction.predictions = [classes[column] if hit else classes[1 - column] for hit in positive.tolist()]
        return prediction


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


def load_predictor(
    version: ModelVersion,
    spec: ModelSpec | SpecView,
    artifacts: ArtifactSource,
    *,
    fallback: FallbackInvoker | None = None,
    serve_onnx: bool = True,
) -> Predictor:
    """Load a version's model after checking its bytes against the registry's sha256.

    The version's serving path (:func:`mlops.registry.serving_path.serving_path`) decides: ``onnx``
    loads the ONNX export (tags ``onnx_uri`` and ``onnx_sha256``); ``python`` is a
    :class:`~mlops.serving.fallback.RemotePredictor` when a ``fallback`` function is given (the
    inference function), else the pickled pipeline loaded here with
    :func:`mlops.training.artifacts.load_artifact` (restricted unpickler; the fallback function, and
    tests). ``serve_onnx=False`` (the fallback function) always loads the pickle.

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
    python_path = serving_path(version.tags) == "python"
    if onnx_uri and serve_onnx and not python_path:
        data = artifacts.read(onnx_uri)
        expected = (version.tags.get(ONNX_TAG_SHA256) or "").lower()
        actual = sha256_hex(data)
        if actual != expected:
            raise ArtifactRefusedError(
                f"{where}: the model artifact failed its integrity check (sha256 mismatch); it is not served",
                code="artifact_integrity",
            )
        try:
            onnx = OnnxPredictor(data, spec)
        except ImportError:
            raise ServingUnavailableError(f"{where}: this function cannot run ONNX models") from None
        except Exception:  # onnxruntime raises its own types for a bad graph
            raise ArtifactRefusedError(
                f"{where}: the ONNX artifact cannot be loaded", code="artifact_invalid"
            ) from None
        return _thresholded(onnx, version)
    if not version.artifact_uri or not version.artifact_sha256:
        raise ServingUnavailableError(f"{where} records no model artifact")
    if fallback is not None and serve_onnx:
        # The Python path, from the inference function: the fallback function loads and checks it.
        return RemotePredictor(fallback, version.model, version.version)
    data = artifacts.read(version.artifact_uri)
    try:
        from mlops.training.artifacts import load_artifact

        code_modules: tuple[str, ...] = ()
        if version.tags.get("code_uri"):
            # A model built by user code (training.entry_point): its package, sha256 checked, is made
            # importable, and the unpickler allows exactly that package besides the allow-list.
            from mlops.training.code import activate_code

            activate_code(artifacts.read, version.tags["code_uri"], version.tags.get("code_sha256", ""))
            code_modules = (version.tags.get("code_package", ""),)
        pipeline = load_artifact(data, version.artifact_sha256, code_modules=code_modules)
    except ImportError:
        raise ServingUnavailableError(
            f"{where} is served by the Python path (no ONNX export) and this function has no fallback function"
            " configured (FALLBACK_FUNCTION) nor scikit-learn"
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
    return _thresholded(SklearnPredictor(pipeline, full, nbytes=2 * len(data) + 64 * 1024), version)


def _thresholded(predictor: Predictor, version: ModelVersion) -> Predictor:
    """The predictor labelling by the version's decision threshold, when it records one.

    Raises
    ------
    ArtifactRefusedError
        The tag is not a threshold, or names a positive class the model does not have (checked
        once, at load, so no request fails on it).
    """
    try:
        threshold = DecisionThreshold.from_tags(version.tags)
        if threshold is not None:
            positive_column(getattr(predictor, "classes", None) or [], threshold.positive_class)
    except (ValueError, TypeError) as exc:  # json's decode error is a ValueError
        raise ArtifactRefusedError(
            f"model {version.model!r} version {version.version}: its decision threshold cannot be applied"
            f" ({exc}); it is not served",
            code="artifact_invalid",
        ) from None
    return predictor if threshold is None else ThresholdPredictor(predictor, threshold)
