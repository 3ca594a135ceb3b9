"""Datetime features are compared as numbers: seconds since 1970-01-01 UTC (what the model reads)."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sst

from mlops.data.profile import profile_frame
from mlops.drift import drift_report, render_html
from mlops.drift.sides import datetime_seconds
from mlops.errors import SpecError
from mlops.spec.model import ModelSpec, parse_spec

START = np.datetime64("2024-01-01T00:00:00", "s")


def _spec(drift_method: str = "auto") -> ModelSpec:
    feature: dict[str, Any] = {"name": "signup", "type": "datetime", "nullable": True}
    if drift_method != "auto":
        feature["drift_method"] = drift_method
    return parse_spec(
        {
            "name": "dates",
            "task": "regression",
            "target": {"name": "y"},
            "features": [feature, {"name": "amount", "type": "float"}],
            "training": {"estimator": "sklearn.linear_model.Ridge"},
        }
    )


def _frame(rows: int, seed: int, shift_days: float = 0.0, as_text: bool = True) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    seconds = rng.normal(180, 40, rows) * 86_400 + shift_days * 86_400
    stamps = START + seconds.astype("int64").astype("timedelta64[s]")
    signup: Any = np.datetime_as_string(stamps, unit="s") if as_text else stamps.astype("datetime64[ns]")
    return pd.DataFrame({"signup": signup, "amount": rng.normal(0, 1, rows), "y": rng.normal(0, 1, rows)})


def _feature(report: Any, name: str = "signup") -> Any:
    return next(f for f in report.features if f.name == name)


@pytest.mark.parametrize("rows", [1_500, 12_000], ids=["test-judged", "effect-size-judged"])
def test_a_shifted_datetime_feature_drifts_and_a_clean_one_does_not(rows: int) -> None:
    # GIVEN signup dates as ISO text, and windows with the same spread, one 30 days later
    spec, reference = _spec(), _frame(20_000, seed=1)
    clean, shifted = _frame(rows, seed=2), _frame(rows, seed=3, shift_days=30)
    # WHEN compared with the training data
    same = _feature(drift_report(reference, clean, spec))
    moved = _feature(drift_report(reference, shifted, spec))
    # THEN the feature is compared as a number (every numeric method), and only the shift drifts
    assert same.kind == "numeric" and same.status == "ok" and not same.drifted
    assert set(same.methods) == {"ks", "wasserstein", "psi"}
    assert moved.drifted and moved.method == ("ks" if rows <= spec.monitoring.large_window_rows else "wasserstein")
    # (30 days over a 40-day spread: Wasserstein over the reference std is 0.75)
    assert moved.methods["wasserstein"].statistic == pytest.approx(0.75, abs=0.1)
    assert any("seconds since 1970-01-01" in note for note in moved.notes)


def test_datetime_numbers_are_scipy_numbers_on_epoch_seconds() -> None:
    # GIVEN datetime64 columns (as a DataFrame built in code holds them) on both sides
    spec = _spec()
    reference, window = _frame(4_000, seed=4, as_text=False), _frame(900, seed=5, shift_days=3, as_text=False)
    # WHEN compared
    signup = _feature(drift_report(reference, window, spec))
    # THEN KS and Wasserstein are scipy's on the seconds since the epoch
    a = reference["signup"].to_numpy().astype("int64") / 1e9
    b = window["signup"].to_numpy().astype("int64") / 1e9
    assert signup.methods["ks"].statistic == pytest.approx(sst.ks_2samp(a, b).statistic, abs=1e-9)
    assert signup.methods["ks"].p_value == pytest.approx(sst.ks_2samp(a, b).pvalue, abs=1e-9)
    expected = sst.wasserstein_distance(a, b) / np.std(a, ddof=1)
    assert signup.methods["wasserstein"].statistic == pytest.approx(expected, rel=1e-9)


def test_time_zones_missing_and_unreadable_dates() -> None:
    # GIVEN text with an offset, a naive UTC text, a tz-aware column, blanks and a non-date
    text = pd.Series(["2024-03-01T12:00:00+02:00", "2024-03-01T10:00:00", None, "", "31/02/2024"], dtype=object)
    aware = pd.Series(pd.to_datetime(["2024-03-01T12:00:00"]).tz_localize("Europe/Paris"))
    # WHEN read as seconds
    seconds = datetime_seconds(text)
    # THEN both texts are the same instant, and what is not a date is missing
    expected = (np.datetime64("2024-03-01T10:00:00", "s") - np.datetime64(0, "s")).astype(float)
    assert seconds[0] == seconds[1] == expected
    assert np.isnan(seconds[2:]).all()
    assert datetime_seconds(aware)[0] == expected + 3_600  # 12:00 in Paris (UTC+1) is 11:00 UTC


def test_unreadable_dates_count_as_missing_and_alarm() -> None:
    # GIVEN a window where 30% of the dates cannot be read
    spec, reference, window = _spec(), _frame(5_000, seed=6), _frame(2_000, seed=7)
    window.loc[window.index[:600], "signup"] = "not a date"
    # WHEN compared
    report = drift_report(reference, window, spec)
    # THEN the missing-rate change is reported and alarms; the dates that were read do not drift
    signup = _feature(report)
    assert signup.missing is not None and signup.missing.current == pytest.approx(0.3)
    assert report.missing_rate_alerts == ["signup"] and not signup.drifted


def test_a_profile_keeps_the_distribution_of_a_datetime_feature() -> None:
    # GIVEN the stored profile of the training data (a datetime feature: its range, and a sketch of
    # its seconds since the epoch, as the deployed monitor compares against)
    spec, reference = _spec(), _frame(5_000, seed=8)
    profile = profile_frame(reference, spec)
    seconds = datetime_seconds(reference["signup"])
    column = profile.columns["signup"]
    assert column.datetime is not None and column.numeric is not None
    assert column.numeric.min == pytest.approx(seconds.min()) and column.numeric.max == pytest.approx(seconds.max())
    assert column.numeric.count == len(reference)
    # WHEN a window shifted by 120 days, and one drawn like the training data, are compared with it
    shifted = _feature(drift_report(profile, _frame(2_000, seed=9, shift_days=120), spec))
    clean = _feature(drift_report(profile, _frame(2_000, seed=10), spec))
    # THEN the shift is found by the same test as with the data itself, and the clean window passes
    assert shifted.drifted and shifted.method == "ks"
    assert not clean.drifted and clean.status != "no_reference"


def test_a_profile_stored_with_only_the_range_of_a_datetime_feature() -> None:
    # GIVEN a profile stored before datetime features were sketched (min and max only)
    spec, reference = _spec(), _frame(5_000, seed=8)
    profile = profile_frame(reference, spec)
    profile.columns["signup"].numeric = None
    window = _frame(2_000, seed=9, shift_days=120)
    # WHEN a window is compared with the profile
    signup = _feature(drift_report(profile, window, spec))
    # THEN the feature has no distribution to test against, never drifts, and the note says how much
    # of the window lies outside the training range
    assert signup.status == "no_reference" and not signup.drifted
    outside = next(note for note in signup.notes if "outside the training range" in note)
    low, high = datetime_seconds(reference["signup"]).min(), datetime_seconds(reference["signup"]).max()
    values = datetime_seconds(window["signup"])
    assert f"{np.mean((values < low) | (values > high)):.1%}" in outside


def test_a_profile_reference_and_a_window_without_the_datetime_column() -> None:
    # GIVEN a stored profile, and a window that has no datetime column at all
    spec, reference = _spec(), _frame(3_000, seed=12)
    window = _frame(1_000, seed=13).drop(columns=["signup"])
    # WHEN compared
    report = drift_report(profile_frame(reference, spec), window, spec)
    signup = _feature(report)
    # THEN the column is reported missing from the window, which is not drift
    assert signup.status == "missing_column" and not signup.drifted and signup.current_count == 0
    assert report.verdict == "no_drift"


def test_the_spec_takes_numeric_methods_for_datetime_features_and_refuses_categorical_ones() -> None:
    # GIVEN a spec asking for chi-square on a datetime feature THEN it is refused, naming the field
    with pytest.raises(SpecError, match=r"features\.0: drift_method chi2 needs a categorical feature, not datetime"):
        _spec(drift_method="chi2")
    # AND one asking for Wasserstein is taken, and the engine judges by it
    spec = _spec(drift_method="wasserstein")
    signup = _feature(drift_report(_frame(3_000, seed=10), _frame(1_000, seed=11, shift_days=40), spec))
    assert signup.method == "wasserstein" and signup.judged_by == "threshold" and signup.drifted


def test_clean_datetime_windows_are_not_flagged_over_20_seeds() -> None:
    # GIVEN 20 clean windows at each window regime (tests; effect sizes)
    spec, reference = _spec(), _frame(20_000, seed=14)
    flagged = total = 0
    for seed in range(200, 220):
        for rows in (1_000, 8_000):
            # WHEN each is compared at the default settings
            report = drift_report(reference, _frame(rows, seed=seed), spec)
            flagged += sum(f.drifted for f in report.features)
            total += len(report.features)
    # THEN at most 5% of the (datetime and numeric) features are flagged
    print(f"false-positive rate with a datetime feature: {flagged / total:.3%} ({flagged}/{total})")
    assert flagged / total <= 0.05


@pytest.mark.parametrize("charts", ["matplotlib", "svg"])
def test_html_labels_datetime_bins_as_dates(charts: str) -> None:
    # GIVEN a drifted datetime feature drawn by either chart backend
    spec = _spec()
    report = drift_report(_frame(3_000, seed=20), _frame(1_000, seed=21, shift_days=60), spec)
    signup = _feature(report)
    assert signup.distribution is not None and signup.distribution.unit == "epoch_seconds"
    # WHEN the HTML report is rendered
    page = render_html(report, charts=charts)
    # THEN the axis shows dates of 2024 (the data's year), not seconds since 1970
    assert re.search(r">2024-\d\d-\d\d<", page), "no date label in the chart"
    assert f">{signup.distribution.edges[0]:.4g}<" not in page
