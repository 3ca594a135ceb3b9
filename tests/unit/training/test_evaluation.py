"""Evaluation: the examples are learnable, metrics are JSON-safe, degenerate slices never raise."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from mlops.errors import InputError
from mlops.spec.model import ModelSpec, parse_spec
from mlops.training.evaluation import MISSING_SLICE, evaluate
from mlops.training.fit import TrainResult, train
from tests.unit.training.helpers import example_frame, spec_with


def test_churn_is_learnable_and_fully_reported(churn_trained: TrainResult, churn_spec: ModelSpec) -> None:
    # GIVEN the churn example trained on 2,000 rows
    # WHEN evaluated on its holdout
    evaluation = evaluate(churn_trained.pipeline, churn_trained.holdout, churn_spec)
    # THEN it beats the spec's gate on ROC AUC and every metric is present
    assert evaluation.metrics["roc_auc"] > 0.75
    assert set(evaluation.metrics) == {"accuracy", "precision", "recall", "f1", "roc_auc", "log_loss"}
    assert all(value is not None for value in evaluation.metrics.values())
    matrix = evaluation.confusion_matrix
    assert matrix is not None and matrix["labels"] == [0, 1]
    assert sum(map(sum, matrix["matrix"])) == evaluation.rows == churn_trained.holdout_rows
    # AND the protected attribute has one slice per value, rows adding up, with a disparate impact
    slices = [s for s in evaluation.slices if s.attribute == "senior"]
    assert [s.value for s in slices] == ["false", "true"]
    assert sum(s.rows for s in slices) == churn_trained.holdout_rows
    assert 0 < evaluation.fairness["senior"]["disparate_impact"] <= 1
    # AND the whole evaluation is strict JSON
    json.dumps(evaluation.to_dict(), allow_nan=False)


def test_house_prices_is_learnable(house_trained: TrainResult, house_spec: ModelSpec) -> None:
    # GIVEN the house-prices example trained on 2,000 rows
    # WHEN evaluated
    evaluation = evaluate(house_trained.pipeline, house_trained.holdout, house_spec)
    # THEN R² is high and the errors are in currency units
    assert evaluation.metrics["r2"] > 0.7
    assert 0 < evaluation.metrics["mae"] <= evaluation.metrics["rmse"] < 150_000
    assert evaluation.confusion_matrix is None and evaluation.slices == []


def test_single_class_slice_gives_null_metrics_with_reasons(churn_trained: TrainResult, churn_spec: ModelSpec) -> None:
    # GIVEN a holdout where every senior row is a churner, and one row with senior missing
    holdout = churn_trained.holdout.copy()
    holdout.loc[holdout["senior"] == 1.0, "churned"] = 1
    holdout.iloc[0, holdout.columns.get_loc("senior")] = np.nan
    # WHEN evaluated
    evaluation = evaluate(churn_trained.pipeline, holdout, churn_spec)
    # THEN the one-class slice has no ROC AUC, says why, and nothing raised
    senior = next(s for s in evaluation.slices if s.value == "true")
    assert senior.metrics["roc_auc"] is None
    assert "only one class" in senior.notes["roc_auc"]
    assert senior.metrics["accuracy"] is not None
    missing = next(s for s in evaluation.slices if s.value == MISSING_SLICE)
    assert missing.rows == 1 and missing.small
    assert missing.metrics["roc_auc"] is None
    json.dumps(evaluation.to_dict(), allow_nan=False)


def test_no_positive_prediction_leaves_precision_undefined(churn_spec: ModelSpec) -> None:
    # GIVEN a model that always predicts the negative class
    class AlwaysNo:
        classes_ = np.array([0, 1])

        def predict(self, frame: pd.DataFrame) -> np.ndarray:
            return np.zeros(len(frame), dtype=int)

        def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
            return np.tile([1.0, 0.0], (len(frame), 1))

    holdout = example_frame("churn", rows=60)
    # WHEN evaluated
    evaluation = evaluate(AlwaysNo(), holdout, churn_spec)
    # THEN precision and F1 are null with a reason, log loss stays finite (clipped), JSON is strict
    assert evaluation.metrics["precision"] is None and "no row is predicted 1" in evaluation.notes["precision"]
    assert evaluation.metrics["f1"] is None
    assert evaluation.metrics["recall"] == 0.0
    assert evaluation.fairness["senior"]["disparate_impact"] is None
    json.dumps(evaluation.to_dict(), allow_nan=False)


def test_constant_target_slice_has_no_r2(house_trained: TrainResult, house_spec: ModelSpec) -> None:
    # GIVEN house prices with a protected attribute, and a holdout where one slice's price is constant
    spec = spec_with(house_spec, fairness={"protected_attributes": ["has_garage"]})
    holdout = house_trained.holdout.copy()
    holdout.loc[holdout["has_garage"] == 0.0, "price"] = 250_000.0
    # WHEN evaluated
    evaluation = evaluate(house_trained.pipeline, holdout, spec)
    # THEN that slice's R² is null with the reason, RMSE is a number, no fairness ratio for regression
    no_garage = next(s for s in evaluation.slices if s.value == "false")
    assert no_garage.metrics["r2"] is None and "constant" in no_garage.notes["r2"]
    assert no_garage.metrics["rmse"] is not None
    assert evaluation.fairness == {}


def test_multiclass_uses_macro_averages_and_tolerates_an_absent_class() -> None:
    # GIVEN a three-class problem whose holdout lacks one class entirely
    rng = np.random.default_rng(0)
    x = rng.normal(size=300)
    frame = pd.DataFrame({"x": x, "group": rng.choice(["a", "b"], 300), "label": np.where(x > 0.5, "hi", "lo")})
    frame.loc[:5, "label"] = "mid"
    spec = parse_spec(
        {
            "name": "three",
            "task": "classification",
            "target": {"name": "label", "classes": ["lo", "mid", "hi"]},
            "features": [{"name": "x", "type": "float"}, {"name": "group", "type": "category"}],
            "training": {"estimator": "sklearn.tree.DecisionTreeClassifier", "params": {"max_depth": 3}},
            "fairness": {"protected_attributes": ["group"]},
        }
    )
    result = train(frame, spec)
    holdout = result.holdout[result.holdout["label"] != "mid"]
    # WHEN evaluated
    evaluation = evaluate(result.pipeline, holdout, spec)
    # THEN accuracy and macro scores exist, one-vs-rest ROC AUC is null with a reason, nothing raised
    assert evaluation.metrics["accuracy"] > 0.8
    assert evaluation.metrics["f1"] is not None
    assert evaluation.metrics["roc_auc"] is None and "'mid' is absent" in evaluation.notes["roc_auc"]
    assert evaluation.confusion_matrix is not None and evaluation.confusion_matrix["labels"] == ["lo", "mid", "hi"]
    json.dumps(evaluation.to_dict(), allow_nan=False)


def test_many_valued_numeric_attribute_is_sliced_by_quartiles(
    house_trained: TrainResult, house_spec: ModelSpec
) -> None:
    # GIVEN a numeric protected attribute with many values
    spec = spec_with(house_spec, fairness={"protected_attributes": ["living_area_sqm"]})
    # WHEN evaluated
    evaluation = evaluate(house_trained.pipeline, house_trained.holdout, spec)
    # THEN there are four ordered ranges covering every row
    values = [s.value for s in evaluation.slices]
    assert len(values) == 4 and all(v.startswith("[") for v in values)
    assert sum(s.rows for s in evaluation.slices) == house_trained.holdout_rows


def test_holdout_without_target_is_refused(churn_trained: TrainResult, churn_spec: ModelSpec) -> None:
    # GIVEN a holdout without the target column
    # WHEN / THEN evaluation names it
    with pytest.raises(InputError, match="no target column 'churned'"):
        evaluate(churn_trained.pipeline, churn_trained.holdout.drop(columns=["churned"]), churn_spec)


def test_a_model_expecting_other_columns_is_an_input_error(house_trained: TrainResult, churn_spec: ModelSpec) -> None:
    # GIVEN a champion pipeline trained on other features (house prices) scored against the churn spec
    holdout = example_frame("churn", rows=50)
    # WHEN / THEN evaluation reports it as an input error, not a scikit-learn traceback
    with pytest.raises(InputError, match="cannot score these rows"):
        evaluate(house_trained.pipeline, holdout, churn_spec)
