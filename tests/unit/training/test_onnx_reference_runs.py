"""Evaluate runs an ONNX model through onnx.reference once per holdout, not once per question.

``OnnxReferenceModel`` (an imported ONNX model, or an XGBoost candidate scored from its job's export)
keeps its last answer: ``evaluate`` asks ``predict`` then ``predict_proba`` of the same rows, and the
holdout predictions ask both again. Data: ISLP Default (every fifth row), the target as 0/1.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from mlops.training.evaluation import evaluate
from mlops.training.export import export_onnx
from mlops.training.fit import train
from mlops.training.frames import load_training_frame, model_input
from mlops.training.holdout import holdout_document
from mlops.training.imported import OnnxReferenceModel
from tests.conformance.datasets import DEFAULT
from tests.unit.training.helpers import spec_with

SPEC = spec_with(
    DEFAULT.spec,
    target={"name": "default", "classes": [0, 1], "positive_class": 1},
    training={"estimator": "xgboost.XGBClassifier", "params": {"n_estimators": 20}, "backend": "sagemaker"},
)


def _counted(model: OnnxReferenceModel) -> list[int]:
    runs = [0]
    original = model.evaluator.run

    def run(*args: Any, **kwargs: Any) -> Any:
        runs[0] += 1
        return original(*args, **kwargs)

    model.evaluator.run = run  # type: ignore[method-assign]
    return runs


def test_the_holdout_is_run_once_and_other_rows_again() -> None:
    # GIVEN an XGBoost candidate's ONNX export scored by onnx.reference
    frame = DEFAULT.frame().iloc[::5].reset_index(drop=True)
    frame["default"] = (frame["default"] == "Yes").astype(int)
    result = train(load_training_frame(io.BytesIO(frame.to_csv(index=False).encode()), SPEC), SPEC)
    model = OnnxReferenceModel(export_onnx(result.pipeline, SPEC), SPEC)
    runs = _counted(model)
    # WHEN Evaluate's questions are asked of the holdout
    scored = evaluate(model, result.holdout, SPEC)
    holdout_document(model, result.holdout, SPEC)
    # THEN the graph ran once, and the answers are XGBoost's
    assert runs[0] == 1
    assert (scored.metrics["roc_auc"] or 0) > 0.85
    x = model_input(result.holdout, SPEC)
    np.testing.assert_allclose(model.predict_proba(x), result.pipeline.predict_proba(x), atol=1e-6)
    # AND other rows (a subset, or a changed value) are run again, not answered from the last run
    model.predict_proba(x.iloc[:10])
    changed = x.copy()
    changed.iloc[0, list(changed.columns).index("balance")] += 1000.0
    model.predict_proba(changed)
    assert runs[0] == 3
    # AND the kept answer cannot be changed through what was returned
    first = model.predict_proba(changed)
    first[:] = 0
    assert model.predict_proba(changed).sum() > 0
