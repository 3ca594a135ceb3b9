"""ONNX export and serving with real column names that are not identifiers.

scikit-learn's breast cancer data names its columns ``mean radius``, ``worst concave points``...
skl2onnx turns each into an identifier (``mean_radius``); serving looked its inputs up by the
graph's names and failed with ``KeyError: 'mean_radius'``, so Evaluate failed the whole run.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.datasets import load_breast_cancer

from mlops.spec.model import parse_spec
from mlops.training.export import check_onnx, export_onnx
from mlops.training.fit import train
from mlops.training.frames import model_input
from mlops.training.onnx_model import OnnxPredictor, records_from_frame


def test_columns_with_spaces_and_clashing_identifiers_serve_like_scikit_learn() -> None:
    # GIVEN the real breast cancer data, plus a column whose identifier clashes with a real one
    data = load_breast_cancer(as_frame=True)
    frame = data.frame.rename(columns={"target": "malignant"})
    frame["mean_radius"] = frame["mean radius"].to_numpy()[::-1]
    frame = frame[["malignant", *[c for c in frame.columns if c != "malignant"]]]
    features = [c for c in frame.columns if c != "malignant"]
    spec = parse_spec(
        {
            "name": "cancer",
            "task": "classification",
            "target": {"name": "malignant", "classes": [0, 1]},
            "features": [{"name": c, "type": "float"} for c in features],
            "training": {"estimator": "sklearn.linear_model.LogisticRegression", "params": {"max_iter": 2000}},
        }
    )
    result = train(frame, spec)
    # WHEN exported and served from records keyed by the spec's names
    onnx = export_onnx(result.pipeline, spec)
    report = check_onnx(onnx, result.pipeline, result.holdout, spec)
    served = OnnxPredictor(onnx, spec).predict(records_from_frame(result.holdout, spec))
    # THEN every column reaches its own input: same labels and probabilities as scikit-learn
    assert report["rows"] == len(result.holdout)
    expected = result.pipeline.predict_proba(model_input(result.holdout, spec))
    np.testing.assert_allclose(np.asarray(served.probabilities), expected, atol=1e-4)
    assert isinstance(result.holdout, pd.DataFrame)
