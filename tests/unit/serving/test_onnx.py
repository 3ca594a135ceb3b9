"""ONNX export at registration: every estimator family the spec allows converts, and serves like scikit-learn.

Needs skl2onnx, onnx and onnxruntime (pinned with the inference layer).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from mlops.serving.errors import ArtifactRefusedError
from mlops.spec.model import ModelSpec
from mlops.training.artifacts import sha256_hex
from mlops.training.export import ONNX_TAG_SHA256, ONNX_TAG_URI, check_onnx, export_onnx
from mlops.training.fit import TrainResult, train
from mlops.training.frames import model_input
from mlops.training.onnx_model import OnnxPredictor, records_from_frame
from tests.unit.serving.conftest import MODEL, World
from tests.unit.training.helpers import example_frame, example_spec, spec_with

ESTIMATORS = [
    ("churn", "sklearn.ensemble.HistGradientBoostingClassifier", {"max_iter": 50, "max_depth": 4}),
    ("churn", "sklearn.ensemble.RandomForestClassifier", {"n_estimators": 30}),
    ("churn", "sklearn.linear_model.LogisticRegression", {}),
    ("house-prices", "sklearn.ensemble.RandomForestRegressor", {"n_estimators": 20}),
    ("house-prices", "sklearn.linear_model.Ridge", {}),
]


def trained(model: str, estimator: str, params: dict[str, object]) -> tuple[ModelSpec, TrainResult]:
    spec = spec_with(example_spec(model), training={"estimator": estimator, "params": params, "search": None})
    return spec, train(example_frame(model, rows=1200), spec)


@pytest.mark.parametrize(("model", "estimator", "params"), ESTIMATORS, ids=[e[1].rsplit(".", 1)[1] for e in ESTIMATORS])
def test_export_matches_scikit_learn_on_the_holdout(model: str, estimator: str, params: dict[str, object]) -> None:
    # GIVEN a fitted pipeline of each family
    spec, result = trained(model, estimator, params)
    # WHEN exported THEN its predictions on the holdout are within the stated tolerance
    data = export_onnx(result.pipeline, spec)
    report = check_onnx(data, result.pipeline, result.holdout, spec)
    assert report["rows"] == result.holdout_rows


def test_missing_values_serve_like_scikit_learn(world: World) -> None:
    # GIVEN a pipeline trained with missing values in a nullable feature, and records with nulls
    spec, result = world.spec, world.trained[0]
    data = export_onnx(result.pipeline, spec)
    records = records_from_frame(result.holdout.head(30), spec)
    for record in records[::3]:
        record["total_charges"] = None
    # WHEN predicted by onnxruntime THEN probabilities equal scikit-learn's within 1e-4
    ours = OnnxPredictor(data, spec).predict(records)
    expected = result.pipeline.predict_proba(model_input(pd.DataFrame(records), spec))
    np.testing.assert_allclose(np.asarray(ours.probabilities), expected, atol=1e-4)
    assert ours.classes == [0, 1]


def test_service_prefers_the_onnx_export_and_checks_its_sha256(world: World) -> None:
    # GIVEN a version with an ONNX export recorded in its tags
    data = export_onnx(world.trained[0].pipeline, world.spec)
    world.artifacts.objects["s3://bucket/artifacts/churn/0/model.onnx"] = data
    tags = {ONNX_TAG_URI: "s3://bucket/artifacts/churn/0/model.onnx", ONNX_TAG_SHA256: sha256_hex(data)}
    version = world.register(0, **tags)  # type: ignore[arg-type]
    world.champion(version)
    service = world.service()
    # WHEN predicting THEN the ONNX model answers
    result = service.predict(
        MODEL, json.dumps({"records": world.records[:4]}), content_type="application/json", request_id="o"
    )
    assert service.cache.get((MODEL, version)).predictor.kind == "onnx"  # type: ignore[union-attr]
    assert len(result.body["probabilities"]) == 4
    # AND a tampered export is refused
    world.artifacts.objects["s3://bucket/artifacts/churn/0/model.onnx"] = data[:-1] + b"\x00"
    fresh = world.service()
    with pytest.raises(ArtifactRefusedError):
        fresh.predict(
            MODEL, json.dumps({"records": world.records[:1]}), content_type="application/json", request_id="p"
        )
