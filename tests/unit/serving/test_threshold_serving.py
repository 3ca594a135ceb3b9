"""Serving by the version's decision threshold: labels from the served probabilities, probabilities unchanged."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mlops.serving.errors import ArtifactRefusedError
from mlops.serving.predictors import ThresholdPredictor, load_predictor
from mlops.training.artifacts import sha256_hex
from mlops.training.export import export_onnx
from mlops.training.threshold import DecisionThreshold
from tests.unit.serving.conftest import MODEL, World

JSON = "application/json"


def _served(world: World, version: int) -> dict[str, object]:
    world.champion(version)
    result = world.service().predict(
        MODEL, json.dumps({"records": world.records}), content_type=JSON, request_id=f"r{version}"
    )
    return result.body


def test_an_onnx_champion_labels_by_its_threshold(world: World) -> None:
    # GIVEN the same ONNX model registered twice: without a threshold, and with 0.2 for class 1
    data = export_onnx(world.trained[0].pipeline, world.spec)
    uri = "s3://bucket/artifacts/churn/0/model.onnx"
    world.artifacts.objects[uri] = data
    onnx = {"onnx_uri": uri, "onnx_sha256": sha256_hex(data)}
    plain = world.register(0, **onnx)
    low = DecisionThreshold(value=0.2, positive_class=1)
    thresholded = world.register(0, **onnx, decision_threshold=low.tag())
    # WHEN the same records are predicted by each
    before, after = _served(world, plain), _served(world, thresholded)
    # THEN the probabilities are the same, and the labels are "P(1) >= 0.2" of the probabilities served
    assert after["probabilities"] == before["probabilities"]
    probabilities = np.asarray(after["probabilities"])
    assert after["predictions"] == [1 if p >= 0.2 else 0 for p in probabilities[:, 1]]
    assert before["predictions"] == [int(np.argmax(p)) for p in probabilities]
    # AND some record's answer flipped with the threshold (its probability of 1 is between 0.2 and 0.5)
    flipped = [i for i, (a, b) in enumerate(zip(before["predictions"], after["predictions"], strict=True)) if a != b]  # type: ignore[call-overload]
    assert flipped and all(0.2 <= probabilities[i, 1] < 0.5 for i in flipped)
    # AND the labels keep the spec's type (1, not numpy's int64 or "1")
    assert {type(label) for label in after["predictions"]} == {int}  # type: ignore[union-attr]


def test_a_pickled_champion_labels_by_its_threshold_too(world: World) -> None:
    # GIVEN a version without an ONNX export (served from its pickle) and a high threshold
    high = DecisionThreshold(value=0.8, positive_class=1)
    version = world.register(0, decision_threshold=high.tag())
    # WHEN loaded and asked
    predictor = load_predictor(world.registry.get_version(MODEL, version), world.spec, world.artifacts)
    prediction = predictor.predict(world.records)
    # THEN the predictor is the threshold's, and labels are "P(1) >= 0.8"
    assert isinstance(predictor, ThresholdPredictor) and predictor.kind == "sklearn"
    assert prediction.probabilities is not None
    assert prediction.predictions == [1 if p[1] >= 0.8 else 0 for p in prediction.probabilities]


def test_a_version_without_a_threshold_is_served_as_before(world: World) -> None:
    # GIVEN a version registered without a threshold
    version = world.register(0)
    # WHEN loaded THEN it is the model's own predictor (arg-max labels), not wrapped
    predictor = load_predictor(world.registry.get_version(MODEL, version), world.spec, world.artifacts)
    assert not isinstance(predictor, ThresholdPredictor)


@pytest.mark.parametrize(
    ("tag", "reason"),
    [
        ("{not json", "Expecting property name"),
        (DecisionThreshold(value=0.3, positive_class="yes").tag(), "two classes including 'yes'"),
    ],
    ids=["unreadable", "unknown-class"],
)
def test_a_threshold_that_cannot_be_applied_is_refused_at_load_not_per_request(
    world: World, tag: str, reason: str
) -> None:
    # GIVEN a version whose decision_threshold tag is not JSON, or names a class the model lacks
    version = world.register(0, decision_threshold=tag)
    # WHEN loaded THEN it is refused (a 503 the service reports), saying why
    with pytest.raises(ArtifactRefusedError) as caught:
        load_predictor(world.registry.get_version(MODEL, version), world.spec, world.artifacts)
    assert caught.value.code == "artifact_invalid"
    assert "its decision threshold cannot be applied" in caught.value.message and reason in caught.value.message


def test_threshold_half_serves_todays_answers(world: World) -> None:
    # GIVEN the same ONNX model registered without a threshold and at 0.5
    data = export_onnx(world.trained[0].pipeline, world.spec)
    uri = "s3://bucket/artifacts/churn/0/model.onnx"
    world.artifacts.objects[uri] = data
    onnx = {"onnx_uri": uri, "onnx_sha256": sha256_hex(data)}
    plain = world.register(0, **onnx)
    half = world.register(0, **onnx, decision_threshold=DecisionThreshold(value=0.5, positive_class=1).tag())
    # WHEN the same records are predicted by each
    before, after = _served(world, plain), _served(world, half)
    # THEN the answers are the same (no served probability of 1 is exactly 0.5 here, where arg-max
    # would answer the first class and the threshold the positive one)
    assert all(p[1] != 0.5 for p in before["probabilities"])  # type: ignore[union-attr]
    assert after["predictions"] == before["predictions"] and after["probabilities"] == before["probabilities"]
