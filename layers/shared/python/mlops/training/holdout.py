"""What a registered version keeps of its holdout (``predictions.json``): the registered side of
prediction drift and of performance drift."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from mlops.spec.model import ModelSpec
from mlops.training.frames import _plain, coerce_frame, model_input
from mlops.training.threshold import DecisionThreshold, threshold_labels

# Rows stored with a registered version to describe its holdout (labels, predictions, probabilities).
HOLDOUT_SAMPLE_ROWS = 20_000


def holdout_document(
    pipeline: Any,
    holdout: pd.DataFrame,
    spec: ModelSpec,
    *,
    limit: int = HOLDOUT_SAMPLE_ROWS,
    threshold: DecisionThreshold | None = None,
) -> dict[str, Any]:
    """What a registered version keeps of its holdout (``predictions.json``).

    ``predictions`` (the reference of prediction drift), and for performance drift the
    ``labels``, the ``probabilities`` (classification, columns in ``classes`` order, rounded
    to 6 digits as served) and ``holdout_rows``: a uniform sample of at most ``limit`` rows.
    With a decision ``threshold`` the predictions are its labels (as served), and the document
    records it (``threshold``).
    """
    typed = coerce_frame(holdout, spec)
    typed = typed.loc[typed[spec.target.name].notna()]
    features = model_input(typed, spec)
    predictions = np.asarray(pipeline.predict(features))
    labels = typed[spec.target.name].to_numpy()
    proba = None
    classes: list[Any] | None = None
    if spec.task == "classification" and hasattr(pipeline, "predict_proba"):
        proba = np.asarray(pipeline.predict_proba(features), dtype=np.float64).round(6)
        classes = [_plain(c) for c in pipeline.classes_]
        if threshold is not None:
            predictions = threshold_labels(proba, np.asarray(pipeline.classes_), threshold)
    rows = len(predictions)
    if rows > limit:
        keep = np.sort(np.random.default_rng(0).choice(rows, size=limit, replace=False))
        predictions, labels = predictions[keep], labels[keep]
        proba = None if proba is None else proba[keep]
    document: dict[str, Any] = {
        "model": spec.name,
        "rows": len(predictions),
        "holdout_rows": rows,
        "predictions": [_plain(v) for v in predictions],
        "labels": [_plain(v) for v in labels],
    }
    if threshold is not None:
        document["threshold"] = threshold.to_dict()
    if proba is not None and classes is not None:
        document["classes"] = classes
        document["probabilities"] = proba.tolist()
    return document
