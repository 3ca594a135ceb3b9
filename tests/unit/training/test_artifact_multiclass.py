"""Every classification estimator's artifact loads for a multiclass target, on real data.

Seen in the conformance suite: a three-class gradient-boosting model (palmerpenguins' species)
pickles its loss through Cython's generated ``__pyx_unpickle_CyHalfMultinomialLoss``, which the
restricted unpickler refused, so no multiclass boosting candidate could pass Evaluate.
"""

from __future__ import annotations

import io
from importlib import resources

import numpy as np
import pandas as pd
import pytest

from mlops.spec.model import ESTIMATORS
from mlops.training.artifacts import dump_artifact, load_artifact

FAST: dict[str, dict[str, int]] = {
    "HistGradientBoostingClassifier": {"max_iter": 20},
    "GradientBoostingClassifier": {"n_estimators": 10},
    "RandomForestClassifier": {"n_estimators": 10},
    "LogisticRegression": {"max_iter": 1000},
}
CLASSIFIERS = sorted(name for name, task in ESTIMATORS.items() if task == "classification")


@pytest.fixture(scope="module")
def penguins() -> tuple[np.ndarray, np.ndarray]:
    raw = resources.files("palmerpenguins").joinpath("data/penguins.csv").read_bytes()
    frame = pd.read_csv(io.BytesIO(raw)).dropna()
    columns = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
    return frame[columns].to_numpy(dtype=np.float64), frame["species"].to_numpy(dtype=object)


@pytest.mark.parametrize("estimator", CLASSIFIERS)
def test_a_three_class_model_loads_and_predicts_the_same(
    estimator: str, penguins: tuple[np.ndarray, np.ndarray]
) -> None:
    # GIVEN the estimator fitted on the three penguin species
    module, name = estimator.rsplit(".", 1)
    cls = getattr(__import__(module, fromlist=[name]), name)
    params = (
        {"max_iter": 20}
        if "HistGradient" in name
        else {"n_estimators": 10}
        if "Forest" in name or "Boosting" in name
        else {}
    )
    if name == "LogisticRegression":
        params = {"max_iter": 1000}
    x, y = penguins
    if name == "XGBClassifier":  # XGBoost's own rule: classes are the integers 0..n-1 (the spec checks it)
        y = np.unique(y, return_inverse=True)[1]
    model = cls(**params).fit(x, y)
    assert len(model.classes_) == 3
    # WHEN its artifact goes through the restricted unpickler
    data, sha = dump_artifact(model)
    loaded = load_artifact(data, sha)
    # THEN it gives the same answers
    assert list(loaded.predict(x)) == list(model.predict(x))
    np.testing.assert_array_equal(loaded.predict_proba(x), model.predict_proba(x))
