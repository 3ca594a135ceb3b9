"""Hard cases: tiny windows, zero variance, one-sided categories, all-missing columns, empty bins."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlops.drift import drift_report, performance_drift, prediction_drift
from mlops.spec.model import ModelSpec

from .conftest import make_frame, make_spec


@pytest.mark.parametrize("rows", [1, 2, 5, 17, 30])
def test_windows_of_1_to_30_rows_are_too_small_never_drift(
    rows: int, spec: ModelSpec, reference_frame: pd.DataFrame
) -> None:
    # GIVEN a tiny window of strongly drifted data
    window = make_frame(rows, seed=rows, drift=True)
    window["shifted"] += 10
    # WHEN compared
    report = drift_report(reference_frame, window, spec)
    # THEN the verdict is "too small", nothing drifts, nothing alarms
    assert report.verdict == "too_small" and not report.drifted
    assert report.drifted_features == [] and report.missing_rate_alerts == []
    assert {f.status for f in report.features} == {"too_small"}


def test_31_rows_are_compared(spec: ModelSpec, reference_frame: pd.DataFrame) -> None:
    window = make_frame(31, seed=31, drift=True)
    window["shifted"] += 10
    report = drift_report(reference_frame, window, spec)
    assert report.verdict == "drifted" and "shifted" in report.drifted_features


def test_zero_variance_reference(spec: ModelSpec) -> None:
    # GIVEN a reference column with a single value
    ref = make_frame(2_000, seed=1)
    ref["normal"] = 5.0
    same, other = make_frame(1_000, seed=2), make_frame(8_000, seed=3)
    same["normal"] = 5.0
    other["normal"] = 5.0
    other.loc[other.index[:2_000], "normal"] = 6.0
    # WHEN a window with the same constant, and a large one where a quarter moved, are compared
    stable = next(f for f in drift_report(ref, same, spec).features if f.name == "normal")
    moved = next(f for f in drift_report(ref, other, spec).features if f.name == "normal")
    # THEN the constant window is not drift and the moved one is, with finite numbers and a note
    assert stable.status == "ok" and stable.methods["wasserstein"].statistic == 0.0
    assert stable.methods["psi"].statistic == 0.0
    assert moved.drifted and moved.method == "wasserstein"
    # (no reference spread: the distance is measured in the window's standard deviations)
    assert moved.statistic == pytest.approx(0.25 / np.std(other["normal"], ddof=1))
    assert all(np.isfinite(m.statistic) for m in moved.methods.values())
    assert any("zero-variance" in n for n in moved.notes)


def test_categories_on_one_side_only(spec: ModelSpec) -> None:
    # GIVEN a window without "black" and with "purple" and "teal"
    ref, cur = make_frame(5_000, seed=1), make_frame(2_000, seed=2)
    cur["color"] = np.where(cur["color"] == "black", "purple", cur["color"])
    cur.loc[cur.index[:30], "color"] = "teal"
    # WHEN compared
    color = next(f for f in drift_report(ref, cur, spec).features if f.name == "color")
    # THEN unseen and vanished categories are listed apart, most frequent first, and the test flags it
    assert color.categories is not None
    assert color.categories.unseen == ["purple", "teal"] and color.categories.vanished == ["black"]
    assert color.categories.unseen_count == 2 and color.categories.vanished_count == 1
    assert color.drifted and np.isfinite(color.methods["psi"].statistic)


def test_all_missing_columns(spec: ModelSpec) -> None:
    # GIVEN a window whose numeric and categorical columns are entirely missing, and a reference
    # with an entirely missing column
    ref, cur = make_frame(3_000, seed=1), make_frame(1_000, seed=2)
    cur["normal"] = np.nan
    cur["color"] = None
    ref["lognormal"] = np.nan
    # WHEN compared
    report = drift_report(ref, cur, spec)
    by_name = {f.name: f for f in report.features}
    # THEN the window's empty columns are too small (not drift) and their missing rate alarms
    assert by_name["normal"].status == "too_small" and not by_name["normal"].drifted
    assert by_name["color"].status == "too_small"
    assert by_name["normal"].missing is not None and by_name["normal"].missing.current == 1.0
    assert set(report.missing_rate_alerts) == {"normal", "color", "lognormal"}
    # AND the reference's empty column is "no reference", never drift
    assert by_name["lognormal"].status == "no_reference" and not by_name["lognormal"].drifted
    assert report.drifted and report.drifted_features == []


def test_missing_column_in_the_window(spec: ModelSpec, reference_frame: pd.DataFrame) -> None:
    report = drift_report(reference_frame, make_frame(500, seed=2).drop(columns=["scaled"]), spec)
    scaled = next(f for f in report.features if f.name == "scaled")
    assert scaled.status == "missing_column" and not scaled.drifted


def test_psi_with_values_outside_the_reference_range() -> None:
    # GIVEN a window entirely above the reference maximum (every reference bin empty in the window)
    spec = make_spec(large_window_rows=100)
    ref, cur = make_frame(2_000, seed=1), make_frame(500, seed=2)
    cur["normal"] = cur["normal"] + 1_000
    normal = next(f for f in drift_report(ref, cur, spec).features if f.name == "normal")
    # THEN PSI is large and finite (empty bins smoothed), and the feature drifts
    assert np.isfinite(normal.methods["psi"].statistic) and normal.methods["psi"].statistic > 5
    assert normal.drifted


def test_binary_numeric_column_gets_a_bin_per_value(spec: ModelSpec) -> None:
    # GIVEN a 0/1 column whose share of ones doubles
    ref, cur = make_frame(5_000, seed=1), make_frame(2_000, seed=2)
    rng = np.random.default_rng(0)
    ref["counts"] = (rng.random(len(ref)) < 0.2).astype(float)
    cur["counts"] = (rng.random(len(cur)) < 0.4).astype(float)
    counts = next(f for f in drift_report(ref, cur, spec).features if f.name == "counts")
    # THEN PSI sees it (quantile bins did not collapse into one) and KS (ties) flags it
    p, q = np.array([0.8, 0.2]), np.array([0.6, 0.4])
    assert counts.methods["psi"].statistic == pytest.approx(float(np.sum((q - p) * np.log(q / p))), abs=0.02)
    assert counts.drifted and counts.methods["ks"].statistic == pytest.approx(0.2, abs=0.03)


def test_prediction_drift_regression_and_classification() -> None:
    spec = make_spec()
    rng = np.random.default_rng(0)
    same = prediction_drift(rng.normal(0, 1, 5_000), rng.normal(0, 1, 2_000), spec)
    moved = prediction_drift(rng.normal(0, 1, 5_000), rng.normal(0.5, 1, 2_000), spec)
    assert same.name == "prediction" and not same.drifted
    assert moved.drifted and moved.method == "ks"


def test_performance_drift_against_registered_metrics() -> None:
    # GIVEN a regression model whose errors doubled on the labelled window
    spec = make_spec()
    rng = np.random.default_rng(0)
    y = rng.normal(0, 1, 500)
    good = y + rng.normal(0, 0.1, 500)
    bad = y + rng.normal(0, 0.2, 500)
    registered = {"rmse": 0.1, "mae": 0.08, "r2": 0.99}
    # WHEN each is scored against the registered holdout metrics
    ok = performance_drift(y, good, spec, registered)
    degraded = performance_drift(y, bad, spec, registered)
    # THEN only the worse one is degraded, on RMSE (relative) and not on R² (within 0.05)
    assert ok.status == "ok", ok
    assert degraded.status == "degraded"
    by_name = {m.name: m for m in degraded.metrics}
    assert by_name["rmse"].degraded and by_name["rmse"].relative
    assert not by_name["r2"].degraded
    # AND a handful of labels is too small
    assert performance_drift(y[:10], good[:10], spec, registered).status == "too_small"


def test_prediction_and_performance_in_the_report(spec: ModelSpec, reference_frame: pd.DataFrame) -> None:
    window = make_frame(1_000, seed=5)
    rng = np.random.default_rng(1)
    report = drift_report(
        reference_frame,
        window,
        spec,
        reference_predictions=rng.normal(0, 1, 3_000),
        current_predictions=window["y"].to_numpy() + 3.0,
        labels=window["y"].to_numpy(),
        registered_metrics={"rmse": 0.5},
    )
    assert report.prediction is not None and report.prediction.drifted
    assert report.performance is not None and report.performance.status == "degraded"
    assert report.drifted and report.drifted_features == []
