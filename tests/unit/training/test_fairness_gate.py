"""The fairness gate judged by its error rates: fair models are rarely refused, unfair ones are.

The predictions' disparate impact is a ratio of two rates measured on a holdout; the gate refuses
only when the ratio's upper confidence bound is below the minimum. Simulated holdouts with known
rates measure how often that refuses a model at the minimum (at most 1 - confidence) and how often
it catches one far below it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from mlops.spec.model import ModelSpec, parse_spec
from mlops.training.evaluation import _disparate_impact, _ratio_upper_bound
from mlops.training.gate import gate


def spec(**fairness: Any) -> ModelSpec:
    return parse_spec(
        {
            "name": "m",
            "task": "classification",
            "target": {"name": "y", "classes": [0, 1]},
            "features": [{"name": "group", "type": "category"}, {"name": "x", "type": "float"}],
            "training": {"estimator": "sklearn.linear_model.LogisticRegression"},
            "gates": {"must_beat_champion": False},
            "fairness": {"protected_attributes": ["group"], **fairness},
        }
    )


def refusal_rate(p_low: float, p_high: float, n_low: int, n_high: int, minimum: float, draws: int = 4000) -> float:
    """Share of simulated holdouts whose disparate impact the gate refuses."""
    rng = np.random.default_rng(20261206)
    judged = spec(min_disparate_impact=minimum)
    refused = 0
    for x_low, x_high in zip(rng.binomial(n_low, p_low, draws), rng.binomial(n_high, p_high, draws), strict=True):
        rates = {"a": x_low / n_low, "b": x_high / n_high}
        result = _disparate_impact(rates, {"a": n_low, "b": n_high}, judged)
        refused += result["passed"] is False
    return refused / draws


@pytest.mark.parametrize(("n_low", "n_high"), [(40, 40), (120, 250), (1000, 3000)])
def test_a_model_exactly_at_the_minimum_is_refused_at_most_five_percent_of_the_time(n_low: int, n_high: int) -> None:
    # GIVEN a model whose true disparate impact is exactly the minimum (0.2 / 0.25 = 0.8)
    # WHEN judged on many holdouts of these group sizes
    rate = refusal_rate(0.2, 0.25, n_low, n_high, minimum=0.8)
    # THEN it is refused in at most 1 - confidence of them (plus simulation error, ~0.7% at 4000 draws)
    assert rate <= 0.05 + 0.01, rate


def test_a_fair_model_is_almost_never_refused_where_a_point_estimate_would_often_refuse_it() -> None:
    # GIVEN a model with equal rates (true disparate impact 1) and a holdout of 250 and 120 rows
    rng = np.random.default_rng(7)
    low, high = rng.binomial(120, 0.25, 4000) / 120, rng.binomial(250, 0.25, 4000) / 250
    point = np.minimum(low, high) / np.maximum(low, high)
    # WHEN judged by the bound THEN under 1% are refused; the point estimate alone would refuse >10%
    assert refusal_rate(0.25, 0.25, 120, 250, minimum=0.8) < 0.01
    assert float(np.mean(point < 0.8)) > 0.10


def test_a_clearly_unfair_model_is_refused_almost_always() -> None:
    # GIVEN a model whose true disparate impact is 0.5 (10% against 20%)
    # WHEN / THEN with 1000 holdout rows a group the gate refuses it in at least 95% of holdouts;
    # with 300 (30 against 60 positive predictions) in about three of four: the price of not
    # refusing fair models on noise, which a larger holdout pays down
    assert refusal_rate(0.10, 0.20, 1000, 1000, minimum=0.8) >= 0.95
    assert 0.6 <= refusal_rate(0.10, 0.20, 300, 300, minimum=0.8) < 0.95


def test_the_bound_matches_katz_on_a_worked_example_and_stays_finite_at_zero() -> None:
    # GIVEN 12 of 592 against 17 of 1347 (rates 2.03% and 1.26%): ratio 0.622
    # WHEN bounded one-sided at 95% (z = 1.6449)
    bound = _ratio_upper_bound(17, 1347, 12, 592, 0.95)
    # THEN it is exp(log(ratio) + z * sqrt(1/17 - 1/1347 + 1/12 - 1/592))
    expected = np.exp(np.log((17 / 1347) / (12 / 592)) + 1.6448536 * np.sqrt(1 / 17 - 1 / 1347 + 1 / 12 - 1 / 592))
    assert bound == pytest.approx(expected, rel=1e-6)
    # AND a group without a single positive prediction still gets a finite bound (0.5 per cell)
    assert 0 < _ratio_upper_bound(0, 100, 30, 100, 0.95) < 0.2
    # AND more comparisons widen it (Bonferroni over the pairs of compared groups)
    assert _ratio_upper_bound(17, 1347, 12, 592, 0.95, pairs=10) > bound


def test_small_groups_are_listed_but_never_decide_the_ratio() -> None:
    # GIVEN three groups, one of 4 rows with no positive prediction
    rates = {"a": 0.25, "b": 0.24, "tiny": 0.0}
    sizes = {"a": 400, "b": 300, "tiny": 4}
    # WHEN the disparate impact is computed with the default minimum group size (30)
    result = _disparate_impact(rates, sizes, spec())
    # THEN the tiny group is listed, not compared, and the ratio is the two large groups'
    assert result["excluded_groups"] == ["tiny"] and result["positive_rates"]["tiny"] == 0.0
    assert result["disparate_impact"] == pytest.approx(0.96) and result["passed"] is True
    assert result["groups_compared"] == ["b", "a"]
    # AND with groups of 1 allowed, the 4 rows decide it
    assert _disparate_impact(rates, sizes, spec(min_group_size=1))["disparate_impact"] == 0.0


def test_gate_uses_the_bound_and_the_mode() -> None:
    # GIVEN a point estimate under the minimum whose bound is above it, and one whose bound is below
    noisy = {"group": {"disparate_impact": 0.7, "upper_bound": 0.95, "confidence": 0.95}}
    shown = {"group": {"disparate_impact": 0.5, "upper_bound": 0.7, "confidence": 0.95}}
    older = {"group": {"disparate_impact": 0.7}}  # an evaluation made before bounds were recorded
    # WHEN gated in gate mode and in report mode
    gated, reported = spec(mode="gate"), spec(mode="report")
    # THEN only a bound below the minimum refuses, and only in gate mode
    assert gate({}, gated, fairness=noisy).passed
    assert "not shown to be below it on this holdout" in gate({}, gated, fairness=noisy).checks[0]["message"]
    refused = gate({}, gated, fairness=shown)
    assert not refused.passed and refused.reasons == [
        "disparate impact across group is 0.5 (below the minimum 0.8, upper 95% bound 0.7: shown to be below it)"
    ]
    assert gate({}, reported, fairness=shown).passed and gate({}, reported, fairness=shown).reasons == []
    assert gate({}, reported, fairness=shown).checks[0]["enforced"] is False
    # AND an older evaluation without a bound is judged on its point estimate, as before
    assert not gate({}, gated, fairness=older).passed
