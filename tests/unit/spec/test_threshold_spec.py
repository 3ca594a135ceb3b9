"""The spec's decision threshold: a number or an objective, binary classification only, errors naming the field."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from mlops.errors import SpecError
from mlops.spec.model import ThresholdObjective, parse_spec

BASE: dict[str, Any] = {
    "name": "churn",
    "task": "classification",
    "target": {"name": "churned", "classes": [0, 1]},
    "features": [{"name": "tenure", "type": "float"}],
    "training": {"estimator": "sklearn.linear_model.LogisticRegression"},
}


def _spec(threshold: Any, **changes: Any) -> Any:
    document = copy.deepcopy(BASE)
    document.update(changes)
    document["training"] = {**document["training"], "threshold": threshold}
    return parse_spec(document)


def test_a_number_is_the_threshold_and_no_threshold_is_the_default() -> None:
    # GIVEN specs with and without training.threshold
    # WHEN parsed
    # THEN a number is kept as it is, and the default is no threshold (the estimator's own labels)
    assert _spec(0.35).training.threshold == 0.35
    assert parse_spec(copy.deepcopy(BASE)).training.threshold is None


@pytest.mark.parametrize(
    ("threshold", "objective", "value"),
    [
        ({"objective": "max_f1"}, "max_f1", None),
        ({"objective": "min_precision", "value": 0.9}, "min_precision", 0.9),
        ({"objective": "min_recall", "value": 0.8, "folds": 3}, "min_recall", 0.8),
    ],
)
def test_an_objective_is_read_with_its_value(threshold: dict[str, Any], objective: str, value: float | None) -> None:
    # GIVEN an objective to choose the threshold by
    # WHEN parsed
    parsed = _spec(threshold).training.threshold
    # THEN it is an objective with its value (five folds unless stated)
    assert isinstance(parsed, ThresholdObjective)
    assert (parsed.objective, parsed.value) == (objective, value)
    assert parsed.folds == threshold.get("folds", 5)


@pytest.mark.parametrize(
    ("threshold", "expected"),
    [
        (1.5, "spec: training.threshold: Input should be less than 1"),
        (0, "spec: training.threshold: Input should be greater than 0"),
        ("high", "spec: training.threshold: Input should be a valid number"),
        ({"objective": "max_f1", "value": 0.9}, "spec: training.threshold: objective max_f1 takes no value"),
        ({"objective": "min_precision"}, "spec: training.threshold: objective min_precision needs value"),
        ({"objective": "best"}, "spec: training.threshold.objective: Input should be 'max_f1', 'min_precision'"),
        ({"objective": "min_recall", "value": 2}, "spec: training.threshold.value: Input should be less than or"),
        ({"objective": "max_f1", "folds": 1}, "spec: training.threshold.folds: Input should be greater than"),
        ({"objective": "max_f1", "on": "holdout"}, "spec: training.threshold.on: unknown field"),
    ],
)
def test_a_bad_threshold_is_refused_naming_the_field(threshold: Any, expected: str) -> None:
    # GIVEN a threshold that is not a probability or not a valid objective
    # WHEN parsed
    with pytest.raises(SpecError) as caught:
        _spec(threshold)
    # THEN one message names training.threshold (the shape's internal tag never shows) and what is wrong
    assert str(caught.value).startswith(expected), str(caught.value)
    assert "threshold:" not in str(caught.value).replace("training.threshold:", "")


def test_regression_is_refused_a_threshold() -> None:
    # GIVEN a regression spec with a threshold
    # WHEN parsed
    with pytest.raises(SpecError) as caught:
        _spec(
            0.5,
            task="regression",
            target={"name": "price"},
            training={"estimator": "sklearn.linear_model.Ridge"},
        )
    # THEN the message names the field and says why
    assert str(caught.value) == (
        "spec: training.threshold: a decision threshold applies to binary classification, and task is regression"
        " (a regression model predicts a number, not a class)"
    )


def test_multiclass_is_refused_a_threshold() -> None:
    # GIVEN a three-class spec with a threshold objective
    # WHEN parsed
    with pytest.raises(SpecError) as caught:
        _spec({"objective": "max_f1"}, target={"name": "species", "classes": ["a", "b", "c"]})
    # THEN the message names the field and the number of classes
    assert str(caught.value) == (
        "spec: training.threshold: a decision threshold applies to binary classification, and target.classes"
        " lists 3 classes (a multiclass model predicts the class with the highest probability)"
    )
