"""performance_drift: support, tolerances from the spec, probabilities, both sides' uncertainty."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlops.drift import Holdout, performance_drift
from mlops.drift.report import PerformanceDrift
from mlops.spec.model import ModelSpec, parse_spec


def binary_spec(**performance: Any) -> ModelSpec:
    return parse_spec(
        {
            "name": "churn",
            "task": "classification",
            "target": {"name": "churned", "classes": [0, 1], "positive_class": 1},
            "features": [{"name": "x", "type": "float"}],
            "training": {"estimator": "sklearn.linear_model.LogisticRegression"},
            "monitoring": {"performance": performance},
        }
    )


def rows_from_cells(tp: int, fp: int, fn: int, tn: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labels and predictions with exactly these confusion-matrix cells, in a shuffled order."""
    labels = np.array([1] * tp + [0] * fp + [1] * fn + [0] * tn)
    predictions = np.array([1] * tp + [1] * fp + [0] * fn + [0] * tn)
    order = np.random.default_rng(seed).permutation(len(labels))
    return labels[order], predictions[order]


def metrics_of(tp: int, fp: int, fn: int, tn: int) -> dict[str, float]:
    precision, recall = tp / (tp + fp), tp / (tp + fn)
    return {
        "accuracy": (tp + tn) / (tp + fp + fn + tn),
        "precision": precision,
        "recall": recall,
        "f1": 2 * precision * recall / (precision + recall),
    }


def by_name(result: PerformanceDrift) -> dict[str, Any]:
    return {m.name: m for m in result.metrics}


def test_precision_079_to_070_on_50_predicted_positives_is_not_degraded() -> None:
    # GIVEN the reported case: a holdout of 300 rows with precision 0.79 on 53 predicted positives,
    # and a window of 300 rows from the same distribution with precision 0.70 on 50
    holdout_cells, window_cells = (42, 11, 18, 229), (35, 15, 22, 228)
    registered = metrics_of(*holdout_cells)
    holdout = Holdout(rows=300, confusion_labels=[0, 1], confusion=[[229, 11], [18, 42]])
    labels, predictions = rows_from_cells(*window_cells)
    # WHEN performance is judged
    result = performance_drift(labels, predictions, binary_spec(), registered, holdout=holdout)
    # THEN precision moved by -0.09, but its interval reaches well above the tolerance: not degraded
    precision = by_name(result)["precision"]
    assert precision.change == pytest.approx(0.70 - 42 / 53)
    assert precision.interval[0] < precision.change < precision.interval[1]
    assert precision.interval[1] > -0.05
    assert precision.verdict == "ok" and not precision.degraded
    assert precision.support == 50 and precision.support_of == "predicted positives"
    assert result.status == "ok"
    # AND the old rule (a drop beyond 0.05 is degradation) would have raised the alarm on it
    assert -precision.change > 0.05


def test_a_real_drop_is_degraded_with_the_holdout_uncertainty_counted() -> None:
    # GIVEN the same holdout, and a window where the model is wrong far more often
    registered = metrics_of(42, 11, 18, 229)
    holdout = Holdout(rows=300, confusion_labels=[0, 1], confusion=[[229, 11], [18, 42]])
    labels, predictions = rows_from_cells(30, 45, 30, 195)
    # WHEN judged
    result = performance_drift(labels, predictions, binary_spec(), registered, holdout=holdout)
    # THEN accuracy and precision are degraded: even their best case is worse than the tolerance
    metrics = by_name(result)
    assert result.status == "degraded"
    for name in ("accuracy", "precision"):
        assert metrics[name].verdict == "degraded"
        assert metrics[name].interval[1] < -metrics[name].tolerance
        assert "beyond the tolerance" in metrics[name].reason


def test_too_few_labelled_rows_is_too_small_and_never_degraded() -> None:
    # GIVEN 80 labelled rows (fewer than min_labelled_rows 100), every prediction wrong
    labels, predictions = rows_from_cells(0, 40, 40, 0)
    # WHEN judged against a perfect registered model
    result = performance_drift(labels, predictions, binary_spec(), metrics_of(50, 1, 1, 50))
    # THEN too small: no metric judged, nothing degraded
    assert result.status == "too_small" and result.rows == 80
    assert all(m.verdict == "not_judged" and not m.degraded for m in result.metrics)
    assert "at least 100" in result.metrics[0].reason


def test_a_rate_below_min_support_is_not_judged() -> None:
    # GIVEN 400 rows with 25 predicted positives (precision's support) and 60 actual positives
    labels, predictions = rows_from_cells(10, 15, 50, 325)
    registered = metrics_of(40, 5, 20, 335)
    # WHEN judged with min_support 30
    result = performance_drift(labels, predictions, binary_spec(min_support=30), registered)
    metrics = by_name(result)
    # THEN precision has insufficient support (and says why); recall, with 60 positives, is judged
    assert metrics["precision"].verdict == "insufficient_support"
    assert metrics["precision"].reason == "25 predicted positives; at least 30 are needed to judge"
    assert metrics["precision"].interval is None and not metrics["precision"].degraded
    assert metrics["recall"].verdict in ("ok", "degraded") and metrics["recall"].support == 60
    # AND the Bonferroni level counts only the judged metrics (accuracy, recall, f1)
    assert result.metric_confidence == pytest.approx(1 - 0.05 / 3)


def test_tolerances_come_from_the_spec_with_per_metric_overrides() -> None:
    # GIVEN a window whose accuracy dropped by ~0.25 against a big holdout
    registered = metrics_of(400, 50, 50, 1500)
    holdout = Holdout(rows=2000, confusion_labels=[0, 1], confusion=[[1500, 50], [50, 400]])
    labels, predictions = rows_from_cells(100, 150, 150, 600)
    default = performance_drift(labels, predictions, binary_spec(), registered, holdout=holdout)
    lenient = performance_drift(
        labels, predictions, binary_spec(tolerances={"accuracy": 0.5}), registered, holdout=holdout
    )
    # THEN the default tolerance (0.05) calls it degraded, the spec's 0.5 for accuracy does not
    assert by_name(default)["accuracy"].tolerance == 0.05 and by_name(default)["accuracy"].degraded
    assert by_name(lenient)["accuracy"].tolerance == 0.5 and not by_name(lenient)["accuracy"].degraded
    # AND the other metrics keep the default
    assert by_name(lenient)["precision"].tolerance == 0.05


def test_served_probabilities_give_roc_auc_and_log_loss() -> None:
    # GIVEN 400 rows with the probabilities the model served
    rng = np.random.default_rng(3)
    labels = (rng.random(400) < 0.4).astype(int)
    p1 = 1 / (1 + np.exp(-rng.normal(labels * 2 - 1, 1.0)))
    proba = np.column_stack([1 - p1, p1])
    predictions = (p1 > 0.5).astype(int)
    registered = {"accuracy": 0.8, "roc_auc": 0.88, "log_loss": 0.45}
    # WHEN judged with and without them
    with_proba = by_name(
        performance_drift(labels, predictions, binary_spec(), registered, probabilities=proba, model_classes=[0, 1])
    )
    without = by_name(performance_drift(labels, predictions, binary_spec(), registered))
    # THEN ROC AUC and log loss are computed and judged from them (DeLong; mean loss, Fieller)
    assert with_proba["roc_auc"].current is not None and with_proba["roc_auc"].verdict == "ok"
    assert with_proba["roc_auc"].method.startswith("delong")
    assert with_proba["log_loss"].current is not None and "fieller" in with_proba["log_loss"].method
    # AND without them they are undefined, saying so (not "the model gives no probabilities")
    assert without["roc_auc"].verdict == "undefined"
    assert without["roc_auc"].reason == "no served probabilities came with these predictions"


def test_probability_columns_follow_model_classes() -> None:
    # GIVEN the same probabilities with their columns (and the class list) swapped
    rng = np.random.default_rng(4)
    labels = (rng.random(300) < 0.5).astype(int)
    p1 = 1 / (1 + np.exp(-rng.normal(labels * 2 - 1, 1.0)))
    predictions = (p1 > 0.5).astype(int)
    registered = {"roc_auc": 0.85, "log_loss": 0.5}
    spec = binary_spec()
    a = performance_drift(
        labels, predictions, spec, registered, probabilities=np.column_stack([1 - p1, p1]), model_classes=[0, 1]
    )
    b = performance_drift(
        labels, predictions, spec, registered, probabilities=np.column_stack([p1, 1 - p1]), model_classes=[1, 0]
    )
    # THEN every number is the same
    assert a.model_dump() == b.model_dump()


def test_multiclass_support_is_the_smallest_class() -> None:
    spec = parse_spec(
        {
            "name": "penguins",
            "task": "classification",
            "target": {"name": "species", "classes": ["Adelie", "Chinstrap", "Gentoo"]},
            "features": [{"name": "x", "type": "float"}],
            "training": {"estimator": "sklearn.linear_model.LogisticRegression"},
        }
    )
    # GIVEN 200 rows where Chinstrap is 20 of them
    labels = np.array(["Adelie"] * 100 + ["Chinstrap"] * 20 + ["Gentoo"] * 80, dtype=object)
    predictions = labels.copy()
    predictions[:5] = "Gentoo"
    result = by_name(
        performance_drift(labels, predictions, spec, {"accuracy": 0.97, "recall": 0.95, "precision": 0.95})
    )
    # THEN macro recall is not judged (20 rows of the smallest class), accuracy is
    assert result["recall"].verdict == "insufficient_support" and result["recall"].support == 20
    assert result["recall"].support_of == "rows of the smallest class"
    assert result["accuracy"].verdict == "ok"


def regression_spec() -> ModelSpec:
    return parse_spec(
        {
            "name": "houses",
            "task": "regression",
            "target": {"name": "price"},
            "features": [{"name": "x", "type": "float"}],
            "training": {"estimator": "sklearn.linear_model.Ridge"},
        }
    )


def test_regression_holdout_rows_count_on_the_registered_side() -> None:
    # GIVEN a holdout of 150 rows kept with the version, and a window of 150 rows like it
    rng = np.random.default_rng(5)
    y_h, y_w = rng.normal(100, 20, 150), rng.normal(100, 20, 150)
    pred_h, pred_w = y_h + rng.normal(0, 10, 150), y_w + rng.normal(0, 10, 150)
    registered = {"rmse": float(np.sqrt(np.mean((pred_h - y_h) ** 2))), "mae": float(np.mean(np.abs(pred_h - y_h)))}
    holdout = Holdout.from_documents({"holdout_rows": 150, "labels": y_h.tolist(), "predictions": pred_h.tolist()})
    # WHEN judged with the holdout's rows and with nothing known of it but its size
    with_rows = by_name(performance_drift(y_w, pred_w, regression_spec(), registered, holdout=holdout))
    size_only = by_name(performance_drift(y_w, pred_w, regression_spec(), registered, holdout=Holdout(rows=150)))
    # THEN both intervals are wider than the window's own sampling error alone would give
    alone = by_name(performance_drift(y_w, pred_w, regression_spec(), registered, holdout=Holdout(rows=10**9)))
    for name in ("rmse", "mae"):
        width = with_rows[name].interval[1] - with_rows[name].interval[0]
        assert width > 1.2 * (alone[name].interval[1] - alone[name].interval[0])
        assert size_only[name].interval[1] - size_only[name].interval[0] > width * 0.7
        assert with_rows[name].verdict == "ok" and with_rows[name].relative


def _numbers(result: PerformanceDrift) -> list[Any]:
    return [
        (m.name, m.verdict, m.current, m.change, *(m.interval or []), m.support, m.reason[:20]) for m in result.metrics
    ]


@settings(max_examples=10, deadline=None)
@given(st.permutations(list(range(200))))
def test_row_order_changes_no_verdict_or_number(order: list[int]) -> None:
    # GIVEN a labelled regression window and the same rows in another order
    rng = np.random.default_rng(6)
    y = rng.normal(0, 1, 200)
    predictions = y + rng.normal(0, 0.5, 200)
    registered = {"rmse": 0.45, "mae": 0.4, "r2": 0.8}
    spec = regression_spec()
    # WHEN both are judged
    before = _numbers(performance_drift(y, predictions, spec, registered))
    after = _numbers(performance_drift(y[order], predictions[order], spec, registered))
    # THEN every verdict is the same and every number too (up to float summation order)
    assert [row[:2] for row in before] == [row[:2] for row in after]
    for a, b in zip(before, after, strict=True):
        assert a[2:] == pytest.approx(b[2:], rel=1e-9, abs=1e-12) if a[-1] == b[-1] else a == b


def test_the_report_is_valid_json_with_an_unbounded_interval() -> None:
    # GIVEN a registered log loss whose own spread reaches zero (Fieller: unbounded above)
    rng = np.random.default_rng(7)
    labels = (rng.random(200) < 0.5).astype(int)
    p1 = np.clip(labels * 0.97 + 0.015 + rng.normal(0, 0.001, 200), 0.001, 0.999)
    p1[:3] = 1 - p1[:3]  # three confident misses
    proba = np.column_stack([1 - p1, p1])
    result = performance_drift(
        labels,
        (p1 > 0.5).astype(int),
        binary_spec(),
        {"log_loss": 0.02},
        probabilities=proba,
        model_classes=[0, 1],
        holdout=Holdout(rows=20),
    )
    # THEN the interval is open above (null), the verdict ok, and the document valid strict JSON
    metric = result.metrics[0]
    assert metric.interval is not None and metric.interval[1] is None and metric.verdict == "ok"
    assert json.loads(json.dumps(result.model_dump(mode="json"), allow_nan=False))["metrics"][0]["interval"][1] is None


def test_the_text_and_html_reports_show_each_metric_with_its_interval_and_verdict(
    reference_frame: Any, spec: ModelSpec
) -> None:
    from mlops.drift import drift_report, render_html

    # GIVEN a drift report whose labelled window has too few predicted positives for precision
    window = reference_frame.head(400)
    labels, predictions = rows_from_cells(10, 15, 50, 325)
    report = drift_report(reference_frame, window, spec)
    report.performance = performance_drift(labels, predictions, binary_spec(), metrics_of(40, 5, 20, 335))
    # WHEN rendered
    text, page = report.render_text(), render_html(report, charts="svg")
    # THEN each metric is a line (text) and a row (HTML) with its verdict and why
    assert "performance: ok on 400 labelled row(s)" in text or "performance: degraded on 400" in text
    assert "[ ] precision: 0.889 -> 0.4 (-0.489), insufficient support: 25 predicted positives" in text
    assert "interval of the change" in page and "insufficient support" in page
    assert "25 predicted positives; at least 30 are needed to judge" in page
