"""Our statistics equal scipy's on the same inputs (to 1e-9), ties and discrete values included."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sst
from scipy.spatial.distance import jensenshannon

from mlops.drift import drift_report, stats
from mlops.spec.model import ModelSpec

from .conftest import make_frame

CASES = [
    ("continuous small (exact p)", 400, 350, False),
    ("discrete ties (exact p)", 3_000, 2_500, True),
    ("continuous large (asymptotic p)", 30_000, 12_000, False),
    ("discrete large", 20_000, 15_000, True),
    ("unequal tiny", 7, 40, False),
]


@pytest.mark.parametrize(("label", "n1", "n2", "discrete"), CASES, ids=[c[0] for c in CASES])
def test_ks_and_wasserstein_equal_scipy(label: str, n1: int, n2: int, discrete: bool) -> None:
    # GIVEN two samples (rounded to a few values when discrete: many ties)
    rng = np.random.default_rng(n1 + n2)
    a, b = rng.normal(0, 1, n1), rng.normal(0.1, 1.2, n2)
    if discrete:
        a, b = np.round(a * 2), np.round(b * 2)
    # WHEN compared on sorted arrays
    ours = stats.compare_sorted(np.sort(a), np.sort(b))
    p = stats.ks_p_value(ours.ks_statistic, n1, n2)
    # THEN statistic, p-value and distance are scipy's
    expected = sst.ks_2samp(a, b)
    assert ours.ks_statistic == pytest.approx(expected.statistic, abs=1e-9)
    assert p == pytest.approx(expected.pvalue, abs=1e-9)
    assert ours.wasserstein == pytest.approx(sst.wasserstein_distance(a, b), abs=1e-9)


def test_categorical_tests_equal_scipy() -> None:
    # GIVEN category counts with a category on each side only
    ref = np.array([120, 0, 35, 60, 5])
    cur = np.array([40, 12, 30, 0, 8])
    # WHEN tested
    statistic, p, dof = stats.chi2_homogeneity(ref, cur)
    # THEN chi-square is scipy's contingency test without correction, JS is scipy's (base 2)
    expected = sst.chi2_contingency(np.vstack([ref, cur]), correction=False)
    assert statistic == pytest.approx(expected.statistic, abs=1e-9)
    assert p == pytest.approx(expected.pvalue, abs=1e-9)
    assert dof == expected.dof
    assert stats.jensen_shannon(ref, cur) == pytest.approx(jensenshannon(ref, cur, base=2), abs=1e-9)


def test_chi2_against_known_proportions_matches_chisquare_goodness_of_fit() -> None:
    # GIVEN a reference so large that its proportions are known: the homogeneity test tends to
    # the goodness-of-fit test (scipy.stats.chisquare with the reference proportions)
    ref = np.array([5_000_000, 3_000_000, 2_000_000]) * 100
    cur = np.array([520, 290, 190])
    statistic, p, _ = stats.chi2_homogeneity(ref, cur)
    expected = sst.chisquare(cur, cur.sum() * ref / ref.sum())
    assert statistic == pytest.approx(expected.statistic, rel=1e-5)
    assert p == pytest.approx(expected.pvalue, rel=1e-5)


def test_benjamini_hochberg_equals_scipy() -> None:
    p = np.random.default_rng(0).random(25) ** 3
    assert np.allclose(stats.benjamini_hochberg(p), sst.false_discovery_control(p, method="bh"), atol=1e-12)


def test_psi_matches_its_formula_with_empty_bins_smoothed() -> None:
    # GIVEN bins empty on one side or the other
    ref, cur = np.array([50, 30, 20, 0]), np.array([0, 10, 60, 30])
    p = np.maximum(ref / ref.sum(), stats.PSI_EPSILON)
    q = np.maximum(cur / cur.sum(), stats.PSI_EPSILON)
    # THEN PSI is finite and is the textbook sum
    value = stats.psi(ref, cur)
    assert np.isfinite(value)
    assert value == pytest.approx(float(np.sum((q - p) * np.log(q / p))), abs=1e-12)


def test_report_numbers_are_scipy_numbers_for_a_data_reference(spec: ModelSpec) -> None:
    # GIVEN a reference and a window as data (so the engine is exact)
    ref, cur = make_frame(6_000, seed=7), make_frame(900, seed=8, drift=True)
    # WHEN the report is built
    report = {f.name: f for f in drift_report(ref, cur, spec).features}
    # THEN each numeric feature's KS, p-value and Wasserstein (over the reference std) are scipy's
    for name in ("normal", "counts", "tailed"):
        a, b = ref[name].to_numpy(), cur[name].to_numpy()
        ks = sst.ks_2samp(a, b)
        assert report[name].methods["ks"].statistic == pytest.approx(ks.statistic, abs=1e-9)
        assert report[name].methods["ks"].p_value == pytest.approx(ks.pvalue, abs=1e-9)
        w = sst.wasserstein_distance(a, b) / np.std(a, ddof=1)
        assert report[name].methods["wasserstein"].statistic == pytest.approx(w, abs=1e-9)
        assert report[name].exact
    # AND each categorical feature's chi-square and JS are scipy's on the aligned counts
    for name in ("swapped", "newcat"):
        table = pd.crosstab(
            np.r_[np.zeros(len(ref)), np.ones(len(cur))], np.r_[ref[name].to_numpy(), cur[name].to_numpy()]
        ).to_numpy()
        chi = sst.chi2_contingency(table, correction=False)
        assert report[name].methods["chi2"].statistic == pytest.approx(chi.statistic, abs=1e-9)
        assert report[name].methods["chi2"].p_value == pytest.approx(chi.pvalue, abs=1e-9)
        js = jensenshannon(table[0], table[1], base=2)
        assert report[name].methods["jensen_shannon"].statistic == pytest.approx(js, abs=1e-9)
    # AND the adjusted p-values are scipy's BH over the tested features
    tested = [f for f in report.values() if f.judged_by == "p_value"]
    adjusted = sst.false_discovery_control([f.p_value for f in tested], method="bh")
    assert [f.p_value_adjusted for f in tested] == pytest.approx(list(adjusted), abs=1e-12)


def test_profile_reference_is_exact_when_its_sample_holds_the_column(spec: ModelSpec) -> None:
    # GIVEN a training set small enough for the profile to keep every value
    from mlops.data.profile import profile_frame

    ref, cur = make_frame(3_000, seed=9), make_frame(800, seed=10, drift=True)
    from_data = {f.name: f for f in drift_report(ref, cur, spec).features}
    # WHEN compared through its stored profile
    from_profile = {f.name: f for f in drift_report(profile_frame(ref, spec), cur, spec).features}
    # THEN every statistic equals the one computed from the data
    for name, feature in from_data.items():
        for method, result in feature.methods.items():
            other = from_profile[name].methods[method]
            assert other.statistic == pytest.approx(result.statistic, abs=1e-9), (name, method)
            if result.p_value is not None:
                assert other.p_value == pytest.approx(result.p_value, abs=1e-9), (name, method)
        assert from_profile[name].exact
