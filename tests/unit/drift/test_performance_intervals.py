"""The interval maths of performance drift, against references: scipy, published tables, brute force."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pytest
from scipy.stats import binomtest, rankdata
from sklearn.metrics import f1_score, roc_auc_score

from mlops.drift.estimates import Estimator, Rows
from mlops.drift.intervals import (
    delong_components,
    delong_variance,
    fieller,
    hanley_mcneil_variance,
    midranks,
    newcombe,
    ovr_macro_auc_variance,
    wilson,
)
from mlops.spec.model import parse_spec

Z95 = NormalDist().inv_cdf(0.975)


@pytest.mark.parametrize(("successes", "trials"), [(0, 10), (3, 10), (10, 10), (56, 70), (1, 250), (499, 500)])
def test_wilson_equals_scipy(successes: int, trials: int) -> None:
    # GIVEN scipy's Wilson interval (two-sided 95%)
    reference = binomtest(successes, trials).proportion_ci(confidence_level=0.95, method="wilson")
    # WHEN ours is computed with the same z
    low, high = wilson(successes, trials, Z95)
    # THEN both ends agree
    assert low == pytest.approx(reference.low, abs=1e-12)
    assert high == pytest.approx(reference.high, abs=1e-12)


# Newcombe (1998), Statistics in Medicine 17:873-890, Table II, method 10 (hybrid score, no
# continuity correction): 95% intervals for the difference of two independent proportions.
NEWCOMBE_TABLE_II = [
    ((56, 70, 48, 80), (0.0524, 0.3339)),
    ((9, 10, 3, 10), (0.1705, 0.8090)),
    ((5, 56, 0, 29), (-0.0381, 0.1926)),
    ((0, 10, 0, 20), (-0.1611, 0.2775)),
    ((0, 10, 0, 10), (-0.2775, 0.2775)),
    ((10, 10, 0, 20), (0.6791, 1.0000)),
    ((10, 10, 0, 10), (0.6075, 1.0000)),
]


@pytest.mark.parametrize(("counts", "expected"), NEWCOMBE_TABLE_II)
def test_newcombe_reproduces_the_published_table(
    counts: tuple[int, int, int, int], expected: tuple[float, float]
) -> None:
    a, m, b, n = counts
    low, high = newcombe(a / m, m, b / n, n, Z95)
    assert (round(low, 4), round(high, 4)) == pytest.approx(expected, abs=1.5e-4)


@pytest.mark.parametrize(("p", "n1", "n2"), [(0.8, 50, 120), (0.7, 50, 50), (0.5, 40, 200), (0.95, 60, 60)])
def test_newcombe_one_sided_bounds_cover_by_simulation(p: float, n1: int, n2: int) -> None:
    # GIVEN two samples of one proportion (no difference), 5,000 times
    rng = np.random.default_rng(3)
    z = NormalDist().inv_cdf(0.95)
    a, b = rng.binomial(n1, p, 5_000), rng.binomial(n2, p, 5_000)
    # WHEN the one-sided 95% bounds of p1 - p2 are computed each time
    bounds = np.array([newcombe(x / n1, n1, y / n2, n2, z) for x, y in zip(a, b, strict=True)])
    # THEN each misses the true difference (0) about 5% of the time: a score interval on a
    # binomial lattice is near, not exactly at, its level (Newcombe's own finding)
    assert np.mean(bounds[:, 1] < 0) <= 0.065
    assert np.mean(bounds[:, 0] > 0) <= 0.065


def test_midranks_equal_scipy_rankdata() -> None:
    values = np.random.default_rng(0).integers(0, 20, 500).astype(float)
    np.testing.assert_array_equal(midranks(values), rankdata(values, method="average"))


def _brute_delong(scores: np.ndarray, positive: np.ndarray) -> tuple[float, float]:
    """The definition, O(m n): psi(x, y) = 1 if x > y, 1/2 if equal."""
    x, y = scores[positive], scores[~positive]
    psi = (x[:, None] > y[None, :]) + 0.5 * (x[:, None] == y[None, :])
    v10, v01 = psi.mean(axis=1), psi.mean(axis=0)
    return float(psi.mean()), float(v10.var(ddof=1) / len(x) + v01.var(ddof=1) / len(y))


def test_delong_equals_its_definition_and_sklearn_auc() -> None:
    # GIVEN scores with ties
    rng = np.random.default_rng(1)
    positive = rng.random(400) < 0.3
    scores = np.round(rng.normal(positive * 0.8, 1.0), 1)
    # WHEN the fast midrank form is computed
    auc, _, _ = delong_components(scores, positive)
    variance = delong_variance(scores, positive)
    # THEN it equals the O(mn) definition, and the AUC equals scikit-learn's
    brute_auc, brute_variance = _brute_delong(scores, positive)
    assert auc == pytest.approx(brute_auc, abs=1e-12) == pytest.approx(roc_auc_score(positive, scores))
    assert variance == pytest.approx(brute_variance, rel=1e-10)


def _rank_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """The Mann-Whitney form of the AUC, from scipy's ranks (scikit-learn's AUC: see above)."""
    m, n = int(positive.sum()), int((~positive).sum())
    return float((rankdata(scores)[positive].sum() - m * (m + 1) / 2) / (m * n))


def test_delong_matches_the_spread_of_the_auc_over_repeated_samples() -> None:
    # GIVEN 2,000 samples of 150 rows (30% positive) from one binormal model
    rng = np.random.default_rng(2)
    aucs, variances = [], []
    for _ in range(2_000):
        positive = rng.random(150) < 0.3
        scores = rng.normal(positive * 1.2, 1.0)
        aucs.append(_rank_auc(scores, positive))
        variances.append(delong_variance(scores, positive))
    # THEN DeLong's standard error is the AUC's actual spread (within 6%)
    assert math.sqrt(np.mean(variances)) == pytest.approx(np.std(aucs), rel=0.06)


def test_ovr_macro_variance_matches_the_spread_of_the_macro_auc() -> None:
    # GIVEN 800 samples of 200 rows from three overlapping classes, scored by softmax
    rng = np.random.default_rng(4)
    aucs, variances = [], []
    for _ in range(800):
        codes = rng.choice(3, size=200, p=[0.5, 0.3, 0.2])
        logits = rng.normal(0, 1.0, (200, 3)) + np.eye(3)[codes] * 1.5
        proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        aucs.append(np.mean([_rank_auc(proba[:, k], codes == k) for k in range(3)]))
        variances.append(ovr_macro_auc_variance(proba, codes))
    # THEN the influence-function standard error is the macro AUC's spread (within 8%)
    assert math.sqrt(np.mean(variances)) == pytest.approx(np.std(aucs), rel=0.08)
    # AND the macro AUC is scikit-learn's one-vs-rest AUC
    assert aucs[-1] == pytest.approx(roc_auc_score(codes, proba, multi_class="ovr"), abs=1e-12)


def test_ovr_macro_variance_of_two_classes_is_delong() -> None:
    rng = np.random.default_rng(5)
    codes = (rng.random(300) < 0.4).astype(int)
    p1 = 1 / (1 + np.exp(-rng.normal(codes * 1.5 - 0.5, 1.0)))
    proba = np.column_stack([1 - p1, p1])
    assert ovr_macro_auc_variance(proba, codes) == pytest.approx(delong_variance(p1, codes == 1), rel=0.02)


@pytest.mark.parametrize(("m", "n"), [(10, 10), (30, 70), (200, 50)])
def test_hanley_mcneil_at_chance_is_the_exact_mann_whitney_variance(m: int, n: int) -> None:
    # At AUC 0.5 (no ties) the Mann-Whitney statistic's variance is (m + n + 1) / (12 m n).
    assert hanley_mcneil_variance(0.5, m, n) == pytest.approx((m + n + 1) / (12 * m * n), rel=1e-12)


def test_fieller_ends_solve_its_quadratic_and_approach_the_delta_method() -> None:
    # GIVEN a ratio of two estimates
    current, registered, se_c, se_r, z = 0.30, 0.25, 0.02, 0.015, 1.96
    low, high = fieller(current, registered, se_c, se_r, z)
    assert high is not None
    # THEN each end r solves (c - r R)^2 = z^2 (se_c^2 + r^2 se_r^2)
    for end in (low + 1, high + 1):
        assert (current - end * registered) ** 2 == pytest.approx(z**2 * (se_c**2 + end**2 * se_r**2), rel=1e-9)
    # AND with tiny standard errors it is the delta method's interval
    low, high = fieller(current, registered, 1e-5, 1e-5, z)
    delta = z * (current / registered) * math.hypot(1e-5 / current, 1e-5 / registered)
    assert low == pytest.approx(current / registered - 1 - delta, abs=1e-7)
    # AND a registered value not clearly above zero gives an unbounded set: nothing is shown
    assert fieller(current, 0.01, se_c, 0.02, z) == (-1.0, None)


def test_confusion_bootstrap_equals_a_row_bootstrap_of_f1() -> None:
    # GIVEN 300 labelled binary rows
    rng = np.random.default_rng(6)
    truth = rng.random(300) < 0.35
    predicted = np.where(rng.random(300) < 0.8, truth, ~truth)
    spec = parse_spec(
        {
            "name": "m",
            "task": "classification",
            "target": {"name": "y", "classes": [0, 1]},
            "features": [{"name": "x", "type": "float"}],
            "training": {"estimator": "sklearn.linear_model.LogisticRegression"},
        }
    )
    codes_true, codes_pred = truth.astype(np.int64), predicted.astype(np.int64)
    rows = Rows(codes_true, codes_pred, true_codes=codes_true, pred_codes=codes_pred)
    # WHEN F1's spread comes from the multinomial confusion-matrix bootstrap
    estimate = Estimator(spec, [0, 1], 1, 4_000).from_rows(rows, ["f1"])["f1"]
    # THEN it equals resampling the rows themselves (F1 = 2 TP / (2 TP + FP + FN), as scikit-learn's)
    index = rng.integers(0, 300, size=(4_000, 300))
    t, q = codes_true[index], codes_pred[index]
    tp, fp, fn = (t & q).sum(axis=1), (~t.astype(bool) & q.astype(bool)).sum(axis=1), (t & (1 - q)).sum(axis=1)
    draws = 2 * tp / (2 * tp + fp + fn)
    assert draws[0] == pytest.approx(f1_score(t[0], q[0]))
    assert estimate.se == pytest.approx(np.std(draws, ddof=1), rel=0.05)


def test_regression_bootstrap_matches_the_spread_over_repeated_samples() -> None:
    # GIVEN 400 windows of 120 rows with normal errors
    rng = np.random.default_rng(7)
    spec = parse_spec(
        {
            "name": "r",
            "task": "regression",
            "target": {"name": "y"},
            "features": [{"name": "x", "type": "float"}],
            "training": {"estimator": "sklearn.linear_model.Ridge"},
        }
    )
    estimator = Estimator(spec, [], None, 500)
    values: dict[str, list[float]] = {"rmse": [], "mae": [], "r2": []}
    spreads: dict[str, list[float]] = {"rmse": [], "mae": [], "r2": []}
    for _ in range(400):
        y = rng.normal(10, 3, 120)
        error = rng.normal(0, 1.5, 120)
        rows = Rows(y, y + error)
        values["rmse"].append(math.sqrt(np.mean(error**2)))
        values["mae"].append(float(np.mean(np.abs(error))))
        values["r2"].append(1 - float(np.sum(error**2) / np.sum((y - y.mean()) ** 2)))
        for name, estimate in estimator.from_rows(rows, list(spreads)).items():
            assert estimate.se is not None
            spreads[name].append(estimate.se)
    # THEN each bootstrap standard error is the metric's actual spread (within 10%; the Monte
    # Carlo error of 400 samples is ~4%)
    for name in spreads:
        assert float(np.mean(spreads[name])) == pytest.approx(np.std(values[name]), rel=0.10), name
