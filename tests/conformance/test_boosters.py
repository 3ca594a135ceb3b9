"""LightGBM and XGBoost on real public data: trained in the platform's pipeline, exported to ONNX,
served by onnxruntime and checked against the library's own predictions.

Datasets: palmerpenguins (three classes, missing values, two category features), ISLP Default
(binary, skewed) and ISLP Bikeshare (regression). XGBoost's classifier takes integer classes 0..n-1
(the spec check says so), so its classification case is ISLP Caravan with the target as 0/1.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest

from mlops.spec.model import ModelSpec
from mlops.training.artifacts import dump_artifact, load_artifact
from mlops.training.export import check_onnx, export_onnx
from mlops.training.fit import TrainResult, train
from mlops.training.frames import load_training_frame, model_input
from mlops.training.onnx_check import PROBABILITY_TOLERANCE, REGRESSION_RELATIVE_TOLERANCE
from mlops.training.onnx_model import OnnxPredictor, records_from_frame
from tests.conformance.datasets import BIKESHARE, DEFAULT, PENGUINS, RealDataset
from tests.unit.training.helpers import spec_with

CASES = [
    (PENGUINS, "lightgbm.LGBMClassifier", {"n_estimators": 60, "num_leaves": 15}),
    (DEFAULT, "lightgbm.LGBMClassifier", {"n_estimators": 80, "class_weight": {"Yes": 3, "No": 1}}),
    (BIKESHARE, "lightgbm.LGBMRegressor", {"n_estimators": 120, "learning_rate": 0.1}),
    (BIKESHARE, "xgboost.XGBRegressor", {"n_estimators": 120, "max_depth": 5}),
]


def _trained(dataset: RealDataset, estimator: str, params: dict[str, Any]) -> tuple[ModelSpec, TrainResult]:
    backend = "sagemaker" if estimator.startswith("xgboost.") else "lambda"
    spec = spec_with(
        dataset.spec, training={"estimator": estimator, "params": params, "search": None, "backend": backend}
    )
    frame = load_training_frame(io.BytesIO(dataset.training_bytes()), spec)
    return spec, train(frame, spec)


@pytest.mark.parametrize(
    ("dataset", "estimator", "params"), CASES, ids=[f"{c[0].key}-{c[1].rsplit('.', 1)[1]}" for c in CASES]
)
def test_onnx_export_serves_what_the_library_predicts(
    dataset: RealDataset, estimator: str, params: dict[str, Any]
) -> None:
    # GIVEN the library's model trained by the platform on a real dataset
    spec, result = _trained(dataset, estimator, params)
    assert type(result.pipeline.named_steps["model"]).__module__.startswith(estimator.partition(".")[0])
    assert result.library_versions[estimator.partition(".")[0]]
    # WHEN exported to ONNX and served by onnxruntime from request records (nulls included)
    data = export_onnx(result.pipeline, spec)
    report = check_onnx(data, result.pipeline, result.holdout, spec)
    served = OnnxPredictor(data, spec).predict(records_from_frame(result.holdout, spec))
    x = model_input(result.holdout, spec)
    # THEN the served answers equal the library's own predict / predict_proba within the tolerance
    assert report["rows"] == result.holdout_rows > 50
    if spec.task == "classification":
        expected = result.pipeline.predict_proba(x)
        np.testing.assert_allclose(np.asarray(served.probabilities), expected, atol=PROBABILITY_TOLERANCE)
        assert [str(p) for p in served.predictions] == [str(p) for p in result.pipeline.predict(x)]
    else:
        expected = result.pipeline.predict(x)
        got = np.asarray(served.predictions)
        assert float((np.abs(got - expected) / np.maximum(1.0, np.abs(expected))).max()) <= (
            REGRESSION_RELATIVE_TOLERANCE
        )


def test_xgboost_classifier_on_integer_classes() -> None:
    # GIVEN ISLP Default with its target as 0/1 (XGBoost's classifier takes classes 0..n-1)
    spec = spec_with(
        DEFAULT.spec,
        target={"name": "default", "classes": [0, 1], "positive_class": 1},
        training={"estimator": "xgboost.XGBClassifier", "params": {"n_estimators": 60}, "backend": "sagemaker"},
    )
    frame = DEFAULT.frame()
    frame["default"] = (frame["default"] == "Yes").astype(int)
    result = train(load_training_frame(io.BytesIO(frame.to_csv(index=False).encode()), spec), spec)
    # WHEN exported THEN onnxruntime's probabilities and labels match XGBoost's
    report = check_onnx(export_onnx(result.pipeline, spec), result.pipeline, result.holdout, spec)
    assert report["max_probability_delta"] <= PROBABILITY_TOLERANCE
    assert result.classes == [0, 1]


def test_lightgbm_artifact_round_trips_byte_identical() -> None:
    # GIVEN two trainings of the same data, spec and code
    spec, first = _trained(PENGUINS, "lightgbm.LGBMClassifier", {"n_estimators": 20})
    _, second = _trained(PENGUINS, "lightgbm.LGBMClassifier", {"n_estimators": 20})
    data, sha256 = dump_artifact(first.pipeline)
    # THEN the artifacts are the same bytes, and the restricted unpickler loads LightGBM's classes
    assert dump_artifact(second.pipeline)[1] == sha256
    loaded = load_artifact(data, sha256)
    x = model_input(first.holdout, spec)
    np.testing.assert_array_equal(loaded.predict_proba(x), first.pipeline.predict_proba(x))


def test_column_order_changes_nothing() -> None:
    # GIVEN the same rows with the columns in reverse order (a metamorphic property)
    spec = spec_with(PENGUINS.spec, training={"estimator": "lightgbm.LGBMClassifier", "params": {"n_estimators": 20}})
    frame = PENGUINS.frame()
    shuffled = frame[list(reversed(frame.columns))]
    a = train(load_training_frame(io.BytesIO(frame.to_csv(index=False).encode()), spec), spec)
    b = train(load_training_frame(io.BytesIO(shuffled.to_csv(index=False).encode()), spec), spec)
    # THEN the fitted models give the same probabilities
    np.testing.assert_array_equal(
        a.pipeline.predict_proba(model_input(a.holdout, spec)), b.pipeline.predict_proba(model_input(b.holdout, spec))
    )
