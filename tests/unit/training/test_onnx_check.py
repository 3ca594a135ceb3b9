"""The ONNX check's two halves: the input Evaluate writes (scikit-learn side) and the comparison
CheckOnnx makes (onnxruntime side), through JSON as the pipeline stores it."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from mlops.errors import CheckFailedError
from mlops.spec.model import ModelSpec
from mlops.training.export import check_document, check_onnx, export_onnx
from mlops.training.fit import TrainResult
from mlops.training.frames import model_input
from mlops.training.onnx_check import PROBABILITY_TOLERANCE, REGRESSION_RELATIVE_TOLERANCE, compare_onnx
from mlops.training.threshold import DecisionThreshold, reported, threshold_labels


def stored(result: TrainResult, spec: ModelSpec, limit: int | None = None) -> tuple[bytes, dict[str, Any]]:
    """The export and the check's input, read back from JSON as CheckOnnx reads them."""
    document = check_document(result.pipeline, result.holdout, spec, limit=limit)
    return export_onnx(result.pipeline, spec), json.loads(json.dumps(document))


def test_the_check_input_holds_up_to_limit_rows_and_what_scikit_learn_answers(
    churn_trained: TrainResult, churn_spec: ModelSpec
) -> None:
    # GIVEN a fitted classifier and its holdout
    # WHEN the check's input is made for its first 25 rows
    _, document = stored(churn_trained, churn_spec, limit=25)
    # THEN it holds 25 request records, scikit-learn's labels and probabilities, and the whole holdout's size
    assert len(document["records"]) == len(document["expected"]["labels"]) == 25
    assert np.asarray(document["expected"]["probabilities"]).shape == (25, len(churn_trained.pipeline.classes_))
    assert document["holdout_rows"] == len(churn_trained.holdout)
    assert document["spec_fingerprint"] == churn_spec.fingerprint()
    # AND the probabilities are scikit-learn's, exactly (JSON keeps float64)
    first = churn_trained.holdout.iloc[:25]
    expected = churn_trained.pipeline.predict_proba(model_input(first, churn_spec))
    assert np.array_equal(np.asarray(document["expected"]["probabilities"]), expected)


def test_classification_passes_and_is_the_same_whatever_the_row_order(
    churn_trained: TrainResult, churn_spec: ModelSpec
) -> None:
    # GIVEN the export and its check input
    data, document = stored(churn_trained, churn_spec)
    # WHEN compared, and compared again with the rows (records and answers alike) reversed
    deltas = compare_onnx(data, document)
    reversed_document = {
        **document,
        "records": document["records"][::-1],
        "expected": {k: v[::-1] for k, v in document["expected"].items()},
    }
    # THEN both pass within the tolerance, with the same deltas
    assert deltas["rows"] == len(churn_trained.holdout)
    assert deltas["max_probability_delta"] <= PROBABILITY_TOLERANCE
    assert compare_onnx(data, reversed_document) == deltas
    # AND the one-process check gives the same answer
    assert check_onnx(data, churn_trained.pipeline, churn_trained.holdout, churn_spec) == deltas


def test_a_label_that_differs_fails_the_check_even_with_equal_probabilities(
    churn_trained: TrainResult, churn_spec: ModelSpec
) -> None:
    # GIVEN a check input whose third expected label is another class (probabilities unchanged)
    data, document = stored(churn_trained, churn_spec, limit=50)
    labels = document["expected"]["labels"]
    classes = sorted({str(c) for c in churn_trained.pipeline.classes_})
    labels[2] = next(c for c in classes if c != labels[2])
    # WHEN compared THEN the check fails, counting the label
    with pytest.raises(CheckFailedError, match=r"differs from scikit-learn: .* 1 label\(s\) differ"):
        compare_onnx(data, document)


def test_regression_fails_beyond_its_relative_tolerance(house_trained: TrainResult, house_spec: ModelSpec) -> None:
    # GIVEN a regressor's export and its check input
    data, document = stored(house_trained, house_spec, limit=200)
    assert compare_onnx(data, document)["max_relative_delta"] <= REGRESSION_RELATIVE_TOLERANCE
    # WHEN one expected value is 1% off
    document["expected"]["values"][7] *= 1.01
    # THEN the check fails, naming the delta and the tolerance
    with pytest.raises(CheckFailedError, match=rf"max relative delta .* \(tolerance {REGRESSION_RELATIVE_TOLERANCE}\)"):
        compare_onnx(data, document)


def test_a_check_input_without_one_answer_per_record_is_refused(
    house_trained: TrainResult, house_spec: ModelSpec
) -> None:
    # GIVEN a check input that lost an answer
    data, document = stored(house_trained, house_spec, limit=10)
    document["expected"]["values"].pop()
    # WHEN compared THEN it is refused with both counts
    with pytest.raises(CheckFailedError, match=r"10 record\(s\) but 9 expected answer\(s\)"):
        compare_onnx(data, document)


def test_a_candidate_with_a_decision_threshold_is_checked_at_it(
    churn_trained: TrainResult, churn_spec: ModelSpec
) -> None:
    # GIVEN a decision threshold far from 0.5: the median probability of the positive class
    pipeline, holdout = churn_trained.pipeline, churn_trained.holdout
    classes = [c.item() if isinstance(c, np.generic) else c for c in pipeline.classes_]  # as the model records them
    positive = next(c for c in classes if str(c) == str(churn_spec.positive_class))
    scores = reported(pipeline.predict_proba(model_input(holdout, churn_spec))[:, classes.index(positive)])
    threshold = DecisionThreshold(value=float(np.median(scores)), positive_class=positive)
    data = export_onnx(pipeline, churn_spec)
    document = json.loads(json.dumps(check_document(pipeline, holdout, churn_spec, threshold=threshold)))
    # THEN the expected labels are the threshold's (what is served), not the estimator's own
    assert document["expected"]["labels"] == [
        str(v) for v in threshold_labels(scores_table(document), classes, threshold)
    ]
    own = [str(v) for v in pipeline.predict(model_input(holdout, churn_spec))]
    assert sum(a != b for a, b in zip(own, document["expected"]["labels"], strict=True)) > len(holdout) // 10
    # AND the graph, labelled by the same rule, agrees
    report = compare_onnx(data, document)
    assert report["threshold"] == threshold.value and report["max_probability_delta"] <= PROBABILITY_TOLERANCE
    assert check_onnx(data, pipeline, holdout, churn_spec, threshold) == report
    # WHEN the document loses its threshold (the estimator's own labels compared with the threshold's)
    without = {k: v for k, v in document.items() if k != "threshold"}
    # THEN the check fails: the labels compared are the served ones, or it says they differ
    with pytest.raises(CheckFailedError, match=r"label\(s\) differ$"):
        compare_onnx(data, without)
    # WHEN a label far from the threshold is changed THEN it fails, saying at which threshold
    far = int(np.argmax(np.abs(scores - threshold.value)))
    changed = json.loads(json.dumps(document))
    changed["expected"]["labels"][far] = next(str(c) for c in classes if str(c) != changed["expected"]["labels"][far])
    with pytest.raises(CheckFailedError, match=rf"1 label\(s\) differ at the decision threshold {threshold.value:g}"):
        compare_onnx(data, changed)
    # WHEN a row lies exactly at the threshold (float32 may put it on either side) THEN it is counted, not refused
    at = int(np.argsort(scores)[len(scores) // 3])
    edge = DecisionThreshold(value=float(scores[at]), positive_class=positive)
    edged = json.loads(json.dumps(check_document(pipeline, holdout, churn_spec, threshold=edge)))
    edged["expected"]["labels"][at] = next(str(c) for c in classes if str(c) != edged["expected"]["labels"][at])
    assert compare_onnx(data, edged)["borderline_labels"] >= 1


def scores_table(document: dict[str, Any]) -> np.ndarray:
    return np.asarray(document["expected"]["probabilities"], dtype=np.float64)
