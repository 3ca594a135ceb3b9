"""The ONNX export's check: the exported graph, run as serving runs it, against scikit-learn's answers.

The check has two halves on two functions, because no Lambda function can hold both sides within
250 MiB: scikit-learn and skl2onnx (the science layer) and onnxruntime (the inference layer).

- Evaluate (science layer) exports the pipeline and writes the check's input beside it:
  :func:`mlops.training.export.check_document`, up to :data:`CHECK_ROWS` holdout rows as request
  records (:func:`mlops.training.onnx_model.records_from_frame`) with what the fitted pipeline
  answers for them (labels and class probabilities, or values) and the spec they were made under.
- CheckOnnx (inference layer) runs the graph on those records with
  :class:`~mlops.training.onnx_model.OnnxPredictor` and the spec read as serving reads it
  (:class:`~mlops.spec.view.SpecView`), and compares: :func:`compare_onnx`.

numpy and onnxruntime only (no pandas, scikit-learn or pydantic): the inference layer's function
imports it.

Tolerance (float32 inside the graph): class probabilities within ``1e-4`` absolute, regression
within ``1e-3`` relative (``max(1, |y|)``); no label may differ (labels are the arg-max of the
probabilities, as scikit-learn takes them, so ties break the same way). A candidate with a decision
threshold is checked at it: the document carries the threshold and scikit-learn's labels by it,
and the graph's probabilities are labelled by the same rule serving applies
(:func:`mlops.training.threshold.threshold_labels`), so the labels compared are the labels served.
A row whose scikit-learn probability of the positive class lies within the probability tolerance
of the threshold may fall on either side in float32; it is counted (``borderline_labels``), not
refused. Every other label must agree.

Examples
--------
>>> document = check_document(pipeline, holdout, spec, limit=CHECK_ROWS)  # doctest: +SKIP
>>> compare_onnx(data, json.loads(json.dumps(document)))  # doctest: +SKIP
{'max_probability_delta': 3.1e-07, 'rows': 150.0}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from mlops.errors import CheckFailedError
from mlops.spec.view import SpecView
from mlops.training.onnx_model import OnnxPredictor
from mlops.training.threshold import DecisionThreshold, positive_column, reported, threshold_labels

__all__ = ["CHECK_FILE_NAME", "CHECK_ROWS", "PROBABILITY_TOLERANCE", "REGRESSION_RELATIVE_TOLERANCE", "compare_onnx"]

# Beside the run's model.onnx: the check's input (request records and scikit-learn's answers).
CHECK_FILE_NAME = "onnx-check.json"
# The holdout rows checked (the first ones; the holdout is already a random sample of the data).
CHECK_ROWS = 10_000
PROBABILITY_TOLERANCE = 1e-4
REGRESSION_RELATIVE_TOLERANCE = 1e-3


def compare_onnx(data: bytes, document: Mapping[str, Any]) -> dict[str, float]:
    """Run the ONNX model on the check's records and compare with scikit-learn's answers.

    Parameters
    ----------
    data
        The serialized ONNX model (:func:`mlops.training.export.export_onnx`).
    document
        The check's input as :func:`mlops.training.export.check_document` wrote it (read back from JSON).

    Returns
    -------
    dict
        ``max_probability_delta`` (classification) or ``max_relative_delta`` (regression), and ``rows``.

    Raises
    ------
    CheckFailedError
        A probability differs by more than ``PROBABILITY_TOLERANCE``, a regression prediction by
        more than ``REGRESSION_RELATIVE_TOLERANCE`` (relative), a label differs, or the document
        does not hold one expected answer per record.
    """
    spec = SpecView.from_document(document["spec"], str(document.get("spec_fingerprint", "")))
    records = document["records"]
    expected_answers = document["expected"]
    ours = OnnxPredictor(data, spec).predict(records)
    if spec.task == "classification":
        labels = [str(v) for v in expected_answers["labels"]]
        expected = np.asarray(expected_answers["probabilities"], dtype=np.float64)
        _same_length(spec.name, len(records), len(labels), len(expected))
        got = np.asarray(ours.probabilities, dtype=np.float64)
        delta = float(np.abs(got - expected).max()) if len(expected) else 0.0
        threshold = DecisionThreshold.from_dict(document.get("threshold"))
        predicted = list(ours.predictions)
        borderline = np.zeros(len(labels), dtype=bool)
        if threshold is not None and len(expected):
            classes = list(ours.classes or [])
            predicted = threshold_labels(got, classes, threshold).tolist()
            column = positive_column(classes, threshold.positive_class)
            borderline = np.abs(reported(expected[:, column]) - threshold.value) <= PROBABILITY_TOLERANCE
        differs = np.asarray([str(a) != b for a, b in zip(predicted, labels, strict=True)], dtype=bool)
        mismatched = int((differs & ~borderline).sum())
        if delta > PROBABILITY_TOLERANCE or mismatched:
            at = "" if threshold is None else f" at the decision threshold {threshold.value:g}"
            raise CheckFailedError(
                f"ONNX export of {spec.name} differs from scikit-learn: max probability delta {delta:.2e}"
                f" (tolerance {PROBABILITY_TOLERANCE}), {mismatched} label(s) differ{at}"
            )
        result = {"max_probability_delta": delta, "rows": float(len(expected))}
        if threshold is not None:
            result.update(threshold=threshold.value, borderline_labels=float((differs & borderline).sum()))
        return result
    expected = np.asarray(expected_answers["values"], dtype=np.float64)
    _same_length(spec.name, len(records), len(expected))
    got = np.asarray(ours.predictions, dtype=np.float64)
    relative = float((np.abs(got - expected) / np.maximum(1.0, np.abs(expected))).max()) if len(expected) else 0.0
    if relative > REGRESSION_RELATIVE_TOLERANCE:
        raise CheckFailedError(
            f"ONNX export of {spec.name} differs from scikit-learn: max relative delta {relative:.2e}"
            f" (tolerance {REGRESSION_RELATIVE_TOLERANCE})"
        )
    return {"max_relative_delta": relative, "rows": float(len(expected))}


def _same_length(name: str, records: int, *answers: int) -> None:
    if any(n != records for n in answers):
        raise CheckFailedError(
            f"ONNX check input of {name}: {records} record(s) but {'/'.join(map(str, answers))} expected answer(s)"
        )
