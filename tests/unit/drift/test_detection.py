"""Injected drift is flagged, clean columns are not (false-positive rate over 20 seeds)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlops.data.profile import profile_frame
from mlops.drift import drift_report
from mlops.spec.model import ModelSpec

from .conftest import CLEAN, DRIFTED, make_frame


@pytest.mark.parametrize("rows", [2_000, 20_000], ids=["small-window-tests", "large-window-effect-sizes"])
def test_injected_drift_is_flagged_and_clean_columns_are_not(
    rows: int, spec: ModelSpec, reference_frame: pd.DataFrame
) -> None:
    # GIVEN a window with location shift, scale change, tail mixture, category swap and a new category
    window = make_frame(rows, seed=2, drift=True)
    # WHEN compared with the training data
    report = drift_report(reference_frame, window, spec)
    # THEN exactly the injected columns drift, and the dataset verdict is drift
    assert set(report.drifted_features) == DRIFTED
    assert report.verdict == "drifted" and report.drifted
    methods = {f.name: f.method for f in report.features}
    if rows > spec.monitoring.large_window_rows:
        assert methods["shifted"] == "wasserstein" and methods["swapped"] == "jensen_shannon"
    else:
        assert methods["shifted"] == "ks" and methods["swapped"] == "chi2"
    newcat = next(f for f in report.features if f.name == "newcat")
    assert newcat.categories is not None and newcat.categories.unseen == ["purple"]
    assert newcat.categories.unseen_fraction == pytest.approx(0.05, abs=0.01)
    # AND the report lists drifted features first
    assert {f.name for f in report.features[: len(DRIFTED)]} == DRIFTED


def test_false_positive_rate_on_clean_columns_over_20_seeds(spec: ModelSpec, reference_frame: pd.DataFrame) -> None:
    # GIVEN 20 windows of clean data at each window regime (tests with BH; effect sizes)
    flagged = total = 0
    for seed in range(100, 120):
        for rows in (1_000, 8_000):
            # WHEN each is compared at the default settings
            report = drift_report(reference_frame, make_frame(rows, seed=seed), spec)
            # THEN count the clean columns flagged
            clean = [f for f in report.features if f.name in CLEAN]
            flagged += sum(f.drifted for f in clean)
            total += len(clean)
            # AND no column of a clean window is flagged through the missing rate
            assert report.missing_rate_alerts == []
    rate = flagged / total
    print(f"false-positive rate on clean columns: {rate:.3%} ({flagged}/{total})")
    assert rate <= 0.05


def test_profile_reference_flags_the_same_columns(spec: ModelSpec, reference_frame: pd.DataFrame) -> None:
    # GIVEN the stored profile of the training data (numeric columns kept as quantiles and a sample)
    profile = profile_frame(reference_frame, spec)
    window = make_frame(3_000, seed=3, drift=True)
    # WHEN the window is compared with the profile instead of the data
    report = drift_report(profile, window, spec)
    # THEN the verdict is the same, and the report says the reference is approximate
    assert set(report.drifted_features) == DRIFTED
    assert report.reference.exact is False
    shifted = next(f for f in report.features if f.name == "shifted")
    assert not shifted.exact and any("approximate" in n for n in shifted.notes)


def test_drift_method_override_is_used(reference_frame: pd.DataFrame) -> None:
    # GIVEN a spec asking for PSI on one feature
    from .conftest import make_spec

    spec = make_spec()
    features = [f.model_copy(update={"drift_method": "psi"}) if f.name == "scaled" else f for f in spec.features]
    spec = spec.model_copy(update={"features": features})
    # WHEN compared
    report = drift_report(reference_frame, make_frame(2_000, seed=4, drift=True), spec)
    scaled = next(f for f in report.features if f.name == "scaled")
    # THEN that feature is judged by PSI against psi_threshold, not by a p-value
    assert scaled.method == "psi" and scaled.judged_by == "threshold"
    assert scaled.threshold == spec.monitoring.psi_threshold
    assert scaled.p_value is None and scaled.statistic == scaled.methods["psi"].statistic


def test_every_method_is_reported_for_every_compared_feature(spec: ModelSpec, reference_frame: pd.DataFrame) -> None:
    # GIVEN a clean window
    report = drift_report(reference_frame, make_frame(500, seed=5), spec)
    # THEN numeric features carry ks/wasserstein/psi and categorical ones chi2/jensen_shannon/psi
    for feature in report.features:
        expected = {"ks", "wasserstein", "psi"} if feature.kind == "numeric" else {"chi2", "jensen_shannon", "psi"}
        assert set(feature.methods) == expected
        assert all(np.isfinite(m.statistic) for m in feature.methods.values())
