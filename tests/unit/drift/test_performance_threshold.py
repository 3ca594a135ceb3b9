"""Performance monitoring at the version's decision threshold, on ISLP Default's held-back rows."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlops.drift import Holdout, drift_report, holdout_document, performance_drift
from mlops.training.evaluation import evaluate
from mlops.training.fit import TrainResult, train
from mlops.training.frames import model_input, target_array
from mlops.training.threshold import DecisionThreshold
from tests.conformance.datasets import DEFAULT

LOW = DecisionThreshold(value=0.1, positive_class="Yes")


@pytest.fixture(scope="module")
def default_model() -> TrainResult:
    # Trained without the held-back rows: those are the monitored window.
    return train(pd.read_csv(io.BytesIO(DEFAULT.training_bytes())), DEFAULT.spec)


def _window(result: TrainResult) -> dict[str, Any]:
    """The held-back rows as the inference function answered them: probabilities, and labels at LOW."""
    spec = DEFAULT.spec
    frame = DEFAULT.held_back_frame()
    typed = frame.assign(default=frame["default"].astype(object))
    proba = np.round(result.pipeline.predict_proba(model_input(typed, spec)), 6)
    labels = target_array(typed, spec)
    served = np.where(proba[:, 1] >= LOW.value, "Yes", "No")
    return {"labels": labels, "proba": proba, "served": served, "argmax": np.where(proba[:, 1] > 0.5, "Yes", "No")}


def test_label_metrics_are_computed_at_the_versions_threshold(default_model: TrainResult) -> None:
    # GIVEN a version registered at threshold 0.1 (metrics and kept holdout predictions at it)
    spec = DEFAULT.spec
    registered = evaluate(default_model.pipeline, default_model.holdout, spec, LOW).finite_metrics()
    holdout = Holdout.from_documents(
        holdout_document(default_model.pipeline, default_model.holdout, spec, threshold=LOW)
    )
    window = _window(default_model)
    common: dict[str, Any] = {"probabilities": window["proba"], "model_classes": ["No", "Yes"], "holdout": holdout}
    # WHEN its held-back rows are monitored with the threshold, given labels that are not the threshold's
    at_threshold = performance_drift(window["labels"], window["argmax"], spec, registered, threshold=LOW, **common)
    # THEN the window's label metrics are those of "P(Yes) >= 0.1" of the served probabilities
    served, truth = window["served"] == "Yes", window["labels"] == "Yes"
    tp = int(np.sum(served & truth))
    current = {m.name: m.current for m in at_threshold.metrics}
    assert current["precision"] == pytest.approx(tp / served.sum())
    assert current["recall"] == pytest.approx(tp / truth.sum())
    assert (
        at_threshold.notes[0]
        == "labels at the decision threshold 0.1 (P(Yes) at or above it), from the served probabilities"
    )
    # AND they are the same as those of the labels the function served at the threshold
    as_served = performance_drift(window["labels"], window["served"], spec, registered, **common)
    assert current == {m.name: m.current for m in as_served.metrics}
    # AND rows from the training data's own distribution are not degraded at the threshold
    assert at_threshold.status == "ok", at_threshold.summary()
    # AND arg-max labels judged against metrics registered at 0.1 would have been: recall falls
    mixed = performance_drift(window["labels"], window["argmax"], spec, registered, **common)
    assert {m.name: m.current for m in mixed.metrics}["recall"] < current["recall"]  # type: ignore[operator]


def test_the_offline_drift_report_judges_labels_at_the_champions_threshold(default_model: TrainResult) -> None:
    # GIVEN a champion registered at threshold 0.1 (its tags), and its held-back rows with served probabilities
    spec = DEFAULT.spec
    registered = evaluate(default_model.pipeline, default_model.holdout, spec, LOW).finite_metrics()
    champion = DecisionThreshold.from_tags({"decision_threshold": LOW.tag()})
    window = _window(default_model)
    frame = DEFAULT.held_back_frame()
    common: dict[str, Any] = {
        "labels": window["labels"],
        "current_predictions": window["argmax"],
        "registered_metrics": registered,
        "probabilities": window["proba"],
        "model_classes": ["No", "Yes"],
    }
    # WHEN the offline report is made with the champion's threshold, and without it
    at_threshold = drift_report(default_model.holdout, frame, spec, threshold=champion, **common).performance
    mixed = drift_report(default_model.holdout, frame, spec, **common).performance
    assert at_threshold is not None and mixed is not None
    # THEN with it, the labels judged are the threshold's (as performance monitoring judges them)
    expected = performance_drift(
        window["labels"],
        window["served"],
        spec,
        registered,
        **{k: common[k] for k in ("probabilities", "model_classes")},
    )
    assert {m.name: m.current for m in at_threshold.metrics} == {m.name: m.current for m in expected.metrics}
    assert at_threshold.notes[0].startswith("labels at the decision threshold 0.1")
    # AND without it, the arg-max labels against metrics registered at 0.1: recall falls
    recall = {m.name: m.current for m in mixed.metrics}["recall"]
    assert recall < {m.name: m.current for m in at_threshold.metrics}["recall"]  # type: ignore[operator]
