"""A fitted pipeline skl2onnx cannot convert: the platform's preprocessing, a Nystroem kernel map, a classifier.

Until training runs user code (``training.entry_point``), no pipeline the platform trains lacks a
converter; this one stands for "a custom transformer without a converter". Every part of it is
scikit-learn's classes and numpy arrays, so the restricted unpickler loads it, and skl2onnx 1.20
has no converter for ``Nystroem`` (``skl2onnx.supported_converters()``), so the ONNX export fails.
(``SplineTransformer`` has no converter either, but it holds scipy's ``BSpline`` objects, which the
unpickler's allow-list refuses.)
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from sklearn.base import clone
from sklearn.impute import SimpleImputer
from sklearn.kernel_approximation import Nystroem
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from mlops.spec.model import ModelSpec
from mlops.training.fit import TrainResult
from mlops.training.frames import coerce_frame, model_input, target_array


def kernel_pipeline(frame: pd.DataFrame, spec: ModelSpec, result: TrainResult) -> Any:
    """Refit ``result``'s preprocessing with a Nystroem kernel map and a logistic regression on its training rows."""
    typed = coerce_frame(frame, spec)
    rows = typed.drop(index=result.holdout.index)
    rows = rows[rows[spec.target.name].notna()]
    pipeline = Pipeline(
        [
            ("preprocess", clone(result.pipeline.named_steps["preprocess"])),
            # the preprocessing of an estimator that takes missing values natively leaves them in
            ("impute", SimpleImputer()),
            ("kernel", Nystroem(n_components=40, random_state=0)),
            ("model", LogisticRegression(max_iter=2000)),
        ]
    )
    return pipeline.fit(model_input(rows, spec), target_array(rows, spec))
