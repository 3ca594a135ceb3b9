"""Decision thresholds on real data (ISLP Default: 3.3% positives): the choice, the rule, the invariant at 0.5.

The choice is made on out-of-fold predictions of the training rows: it meets its objective there,
it is the best threshold that does, and it does not move when the gate's holdout changes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlops.errors import InputError
from mlops.registry.modelcard import render_model_card
from mlops.spec.model import ModelSpec
from mlops.training.evaluation import evaluate
from mlops.training.fit import TrainResult, build_pipeline, train
from mlops.training.frames import model_input, target_array
from mlops.training.gate import gate
from mlops.training.holdout import holdout_document
from mlops.training.split import HoldoutFile, prepare_split
from mlops.training.threshold import (
    DecisionThreshold,
    choose,
    choose_threshold,
    out_of_fold_probabilities,
    positive_column,
    positive_mask,
    reported,
    threshold_labels,
)
from tests.conformance.datasets import CARAVAN, DEFAULT
from tests.unit.training.helpers import spec_with


def _with_threshold(spec: ModelSpec, threshold: Any) -> ModelSpec:
    return spec_with(spec, training={"threshold": threshold})


def _rates(scores: np.ndarray, truth: np.ndarray, value: float) -> tuple[float, float]:
    predicted = scores >= value
    tp = int(np.sum(predicted & truth))
    return tp / max(int(predicted.sum()), 1), tp / int(truth.sum())


@pytest.fixture(scope="module")
def default_frame() -> pd.DataFrame:
    return DEFAULT.frame()


@pytest.fixture(scope="module")
def default_plain(default_frame: pd.DataFrame) -> TrainResult:
    return train(default_frame, DEFAULT.spec)


# ----------------------------------------------------------------------------------- the choice
@pytest.mark.parametrize(
    "objective",
    [
        {"objective": "min_precision", "value": 0.7},
        {"objective": "min_recall", "value": 0.8},
        {"objective": "max_f1"},
    ],
    ids=lambda o: o["objective"],
)
def test_the_chosen_threshold_meets_its_objective_on_the_training_rows_out_of_fold(
    default_frame: pd.DataFrame, objective: dict[str, Any]
) -> None:
    # GIVEN ISLP Default and a spec asking for a threshold chosen for an objective
    spec = _with_threshold(DEFAULT.spec, objective)
    # WHEN trained
    result = train(default_frame, spec)
    threshold = result.threshold
    assert threshold is not None and threshold.method == objective["objective"] and threshold.met
    # THEN it was chosen on the out-of-fold predictions of exactly the training rows (recomputed here)
    training_rows, _, _, _ = prepare_split(default_frame, spec)
    x, y = model_input(training_rows, spec), target_array(training_rows, spec)
    assert choose_threshold(build_pipeline(spec), x, y, spec) == threshold
    assert threshold.chosen_on is not None and threshold.chosen_on["rows"] == len(training_rows) == result.train_rows
    proba, classes = out_of_fold_probabilities(build_pipeline(spec), x, y, 5, spec.training.seed)
    scores = reported(proba[:, positive_column(classes, "Yes")])
    truth = y == "Yes"
    precision, recall = _rates(scores, truth, threshold.value)
    # AND on those predictions it meets the objective, and no other threshold does better
    others = [_rates(scores, truth, t) for t in np.unique(scores)]
    f1 = [2 * p * r / (p + r) if p + r else 0.0 for p, r in others]
    if objective["objective"] == "min_precision":
        assert precision >= 0.7
        assert recall == max(r for p, r in others if p >= 0.7)
    elif objective["objective"] == "min_recall":
        assert recall >= 0.8
        assert precision == max(p for p, r in others if r >= 0.8)
    else:
        assert 2 * precision * recall / (precision + recall) == pytest.approx(max(f1), abs=1e-12)
    assert threshold.chosen_on["precision"] == pytest.approx(precision)
    assert threshold.chosen_on["recall"] == pytest.approx(recall)


def test_the_threshold_does_not_move_when_the_gates_holdout_changes(default_frame: pd.DataFrame) -> None:
    # GIVEN ISLP Default with a fixed holdout file (the last 2,500 rows) and a threshold chosen for max F1
    spec = _with_threshold(DEFAULT.spec, {"objective": "max_f1"})
    spec = spec_with(spec, training={"split": {"method": "holdout_dataset", "holdout": "holdout.csv"}})
    training_rows, held = default_frame.iloc[:7500], default_frame.iloc[7500:]
    flipped = held.assign(default=held["default"].map({"Yes": "No", "No": "Yes"}))

    def holdout(frame: pd.DataFrame) -> HoldoutFile:
        return HoldoutFile.from_bytes(frame.to_csv(index=False).encode(), spec, "holdout.csv")

    # WHEN trained against the real holdout, and against the same rows with every label flipped
    real = train(training_rows, spec, holdout=holdout(held))
    corrupted = train(training_rows, spec, holdout=holdout(flipped))
    # THEN the threshold is the same: the holdout the gate scores took no part in choosing it
    assert real.threshold is not None and real.threshold == corrupted.threshold
    # AND the holdout's metrics at it are not (they are the gate's unbiased estimate)
    good = evaluate(real.pipeline, real.holdout, spec, real.threshold).metrics
    bad = evaluate(corrupted.pipeline, corrupted.holdout, spec, corrupted.threshold).metrics
    assert good["f1"] is not None and bad["f1"] is not None and good["f1"] > 0.4 > bad["f1"]


@settings(max_examples=200, deadline=None)
@given(
    data=st.lists(st.tuples(st.integers(0, 20), st.booleans()), min_size=2, max_size=60),
    objective=st.sampled_from(["max_f1", "min_precision", "min_recall"]),
    wanted=st.sampled_from([0.3, 0.5, 0.8, 1.0]),
)
def test_choose_is_the_best_threshold_by_brute_force(
    data: list[tuple[int, bool]], objective: str, wanted: float
) -> None:
    # GIVEN scores with ties (twentieths) and labels with at least one positive
    scores = np.asarray([s / 20 for s, _ in data])
    truth = np.asarray([t for _, t in data])
    if not truth.any():
        truth[0] = True
    # WHEN a threshold is chosen
    index, met, table = choose(scores, truth, objective, None if objective == "max_f1" else wanted)
    value = float(table["threshold"][index])
    precision, recall = _rates(scores, truth, value)
    # THEN it is one of the scores, and the table's rates are the rates at it
    assert value in scores
    assert (table["precision"][index], table["recall"][index]) == pytest.approx((precision, recall))
    candidates = [(t, *_rates(scores, truth, t)) for t in np.unique(scores)]
    if objective == "max_f1":
        best = max(2 * p * r / (p + r) if p + r else 0.0 for _, p, r in candidates)
        assert met and 2 * precision * recall / max(precision + recall, 1e-300) == pytest.approx(best)
        return
    bound, kept = (1, 2) if objective == "min_precision" else (2, 1)
    feasible = [c for c in candidates if c[bound] >= wanted - 1e-12]
    # AND it meets the objective with the best other rate whenever some threshold does
    assert met == bool(feasible)
    ours = (precision, recall)
    if feasible:
        assert ours[bound - 1] >= wanted - 1e-12
        assert ours[kept - 1] == pytest.approx(max(c[kept] for c in feasible))
    else:
        assert ours[bound - 1] == pytest.approx(max(c[bound] for c in candidates))


def test_too_few_rows_of_a_class_to_choose_is_a_clear_error(default_frame: pd.DataFrame) -> None:
    # GIVEN 300 rows of ISLP Default with one defaulter, and a threshold to choose for max F1
    rows = pd.concat(
        [
            default_frame[default_frame["default"] == "No"].head(299),
            default_frame[default_frame["default"] == "Yes"].head(1),
        ]
    )
    spec = _with_threshold(DEFAULT.spec, {"objective": "max_f1"})
    # WHEN trained
    with pytest.raises(InputError) as caught:
        train(rows, spec)
    # THEN the error names the field and what is missing
    assert str(caught.value).startswith("training.threshold: choosing a threshold needs at least 2 training rows")


# ----------------------------------------------------------------------------------- the rule
@pytest.mark.parametrize("dataset", [DEFAULT, CARAVAN], ids=lambda d: d.key)
def test_threshold_half_reproduces_todays_labels_metrics_and_holdout_predictions(dataset: Any) -> None:
    # GIVEN a real binary dataset trained without a threshold (today's behaviour: the estimator's labels)
    spec = dataset.spec
    frame = dataset.frame()
    result = train(frame, spec)
    half = DecisionThreshold(value=0.5, positive_class=spec.positive_class)
    # (no probability sits within a rounding step of 0.5, where the two rules could part)
    proba = result.pipeline.predict_proba(model_input(result.holdout, spec))
    assert not np.any(np.abs(proba[:, 1] - 0.5) < 1e-6)
    # WHEN evaluated, and its holdout predictions kept, at threshold 0.5
    with_half = evaluate(result.pipeline, result.holdout, spec, half).to_dict()
    without = evaluate(result.pipeline, result.holdout, spec).to_dict()
    # THEN every metric, slice and the confusion matrix are exactly today's
    for document in (with_half, without):
        document.pop("predict_seconds")
    assert with_half == without
    # AND so are the predictions kept for monitoring
    kept = holdout_document(result.pipeline, result.holdout, spec, threshold=half)
    assert kept.pop("threshold") == half.to_dict()
    assert kept == holdout_document(result.pipeline, result.holdout, spec)


def test_evaluation_labels_by_the_threshold_and_keeps_the_probability_metrics(default_plain: TrainResult) -> None:
    # GIVEN ISLP Default's model and a low threshold (the positive class is rare)
    spec = DEFAULT.spec
    low = DecisionThreshold(value=0.1, positive_class="Yes")
    holdout = default_plain.holdout
    # WHEN evaluated at it and without it
    at_low = evaluate(default_plain.pipeline, holdout, spec, low)
    plain = evaluate(default_plain.pipeline, holdout, spec)
    # THEN precision, recall, F1 and accuracy are those of "P(Yes) >= 0.1", computed here by hand
    proba = default_plain.pipeline.predict_proba(model_input(holdout, spec))[:, 1]
    predicted, truth = np.round(proba, 6) >= 0.1, target_array(holdout, spec) == "Yes"
    tp = int(np.sum(predicted & truth))
    assert at_low.metrics["precision"] == tp / predicted.sum()
    assert at_low.metrics["recall"] == tp / truth.sum()
    assert at_low.metrics["accuracy"] == np.mean(predicted == truth)
    assert at_low.metrics["recall"] > plain.metrics["recall"]  # type: ignore[operator]
    assert at_low.confusion_matrix == {
        "labels": ["No", "Yes"],
        "matrix": [
            [int(np.sum(~predicted & ~truth)), int(np.sum(predicted & ~truth))],
            [int(np.sum(~predicted & truth)), tp],
        ],
    }
    # AND ROC AUC and log loss, read from the probabilities, do not change
    assert at_low.metrics["roc_auc"] == plain.metrics["roc_auc"]
    assert at_low.metrics["log_loss"] == plain.metrics["log_loss"]
    # AND the positive rate of each slice is the threshold's
    assert [s.positive_rate for s in at_low.slices] > [s.positive_rate for s in plain.slices]


def test_the_rule_reads_probabilities_as_reported_and_keeps_the_class_type() -> None:
    # GIVEN probabilities around a threshold, with integer classes whose positive class is listed first
    proba = np.array([[0.6999996, 0.3000004], [0.71, 0.29], [0.3, 0.7]])
    rule = DecisionThreshold(value=0.7, positive_class=0)
    # WHEN labelled
    labels = threshold_labels(proba, np.array([0, 1]), rule)
    # THEN the positive class is the one named (not the last column), compared at 6 decimals
    assert labels.tolist() == [0, 0, 1] and labels.dtype == np.array([0, 1]).dtype
    assert positive_mask(proba, [0, 1], rule).tolist() == [True, True, False]
    # AND a class the model does not have is refused
    with pytest.raises(ValueError, match="two classes including 'maybe'"):
        threshold_labels(proba, ["no", "yes"], DecisionThreshold(value=0.5, positive_class="maybe"))


def test_a_threshold_survives_its_registry_tag() -> None:
    # GIVEN a chosen threshold with its holdout figures
    threshold = DecisionThreshold(
        value=0.32,
        positive_class="Yes",
        method="min_precision",
        objective_value=0.6,
        chosen_on={"rows": 7423, "folds": 5, "positives": 255, "precision": 0.6, "recall": 0.49, "f1": 0.54},
    ).with_holdout({"precision": 0.53, "recall": 0.51, "f1": 0.52, "roc_auc": 0.95})
    # WHEN written as the version's tag and read back
    back = DecisionThreshold.from_tags({"decision_threshold": threshold.tag()})
    # THEN it is the same threshold, and a version without the tag has none
    assert back == threshold and back is not None and back.holdout == threshold.holdout
    assert DecisionThreshold.from_tags({}) is None
    assert "highest recall with precision >= 0.6" in threshold.describe()


# ----------------------------------------------------------------------------------- gate and card
def test_an_objective_no_threshold_reaches_is_refused_by_the_gate(default_plain: TrainResult) -> None:
    # GIVEN a candidate whose threshold was chosen for precision >= 0.95, which no threshold reached
    spec = spec_with(
        _with_threshold(DEFAULT.spec, {"objective": "min_precision", "value": 0.95}), gates={"metrics": {}}
    )
    unmet = DecisionThreshold(
        value=0.91,
        positive_class="Yes",
        method="min_precision",
        objective_value=0.95,
        met=False,
        chosen_on={"rows": 7423, "folds": 5, "positives": 255, "precision": 0.8, "recall": 0.03, "f1": 0.06},
    )
    metrics = evaluate(default_plain.pipeline, default_plain.holdout, spec, unmet).metrics
    # WHEN gated
    verdict = gate(metrics, spec, decision_threshold=unmet.to_dict())
    # THEN the candidate is refused, naming the field and the best precision there was
    assert not verdict.passed
    assert verdict.reasons == [
        "training.threshold: no decision threshold reaches precision >= 0.95 on out-of-fold predictions of 7423"
        " training rows; the best is 0.8 (at 0.91): lower the objective or improve the model"
    ]
    # AND a met objective passes the same check; a fixed threshold adds none
    met = gate(
        metrics,
        spec,
        decision_threshold={**unmet.to_dict(), "met": True, "chosen_on": {"rows": 7423, "precision": 0.96}},
    )
    assert met.passed and met.checks[-1]["check"] == "decision_threshold"
    fixed = gate(metrics, spec, decision_threshold=DecisionThreshold(value=0.3, positive_class="Yes").to_dict())
    assert fixed.passed and all(c["check"] != "decision_threshold" for c in fixed.checks)


def test_the_model_card_says_how_labels_are_made(default_plain: TrainResult) -> None:
    # GIVEN a chosen threshold with its figures on the training rows and the holdout
    threshold = DecisionThreshold(
        value=0.32,
        positive_class="Yes",
        method="max_f1",
        chosen_on={"rows": 7423, "folds": 5, "positives": 255, "precision": 0.6, "recall": 0.49, "f1": 0.54},
        holdout={"precision": 0.53, "recall": 0.51, "f1": 0.52},
    )
    # WHEN the card is rendered
    card = render_model_card(
        DEFAULT.spec, 1, {"f1": 0.52}, [], {}, default_plain.summary(), None, None, threshold=threshold.to_dict()
    )
    # THEN it has the threshold, the objective, where it was chosen and what it gives on the holdout
    section = card.split("## Decision threshold", 1)[1].split("## Metrics", 1)[0]
    assert "`Yes` is predicted when its probability is at or above **0.32**" in section
    assert "Chosen for the highest F1, on out-of-fold predictions of the 7423 training rows (5 folds)" in section
    assert "On the holdout: precision 0.53, recall 0.51, f1 0.52." in section
    # AND a card without a threshold has no such section
    assert "## Decision threshold" not in render_model_card(
        DEFAULT.spec, 1, {}, [], {}, default_plain.summary(), None, None
    )
