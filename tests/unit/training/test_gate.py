"""The gate: thresholds, beating the champion (both directions), and sentences that name the numbers."""

from __future__ import annotations

import json

from mlops.spec.model import ModelSpec
from mlops.training.gate import gate, improvement
from tests.unit.training.helpers import spec_with


def test_candidate_meeting_thresholds_without_champion_passes(churn_spec: ModelSpec) -> None:
    # GIVEN metrics above the churn spec's minimums and no champion
    # WHEN gated
    result = gate({"roc_auc": 0.82, "accuracy": 0.78}, churn_spec)
    # THEN it passes, with one check per bound and no champion check
    assert result.passed and result.reasons == []
    assert [(c["metric"], c["bound"]) for c in result.checks] == [("roc_auc", "min"), ("accuracy", "min")]
    json.dumps(result.to_dict(), allow_nan=False)


def test_threshold_failure_names_metric_value_and_bound(churn_spec: ModelSpec) -> None:
    # GIVEN an accuracy below the minimum and a ROC AUC that could not be computed
    # WHEN gated
    result = gate({"roc_auc": None, "accuracy": 0.65}, churn_spec)
    # THEN both fail with sentences naming metric, value and threshold
    assert not result.passed
    assert "roc_auc could not be computed, so its min of 0.75 is not met" in result.reasons
    assert "accuracy is 0.65, below the minimum 0.7" in result.reasons


def test_max_bound_for_an_error_metric(house_spec: ModelSpec) -> None:
    # GIVEN an RMSE above the house-prices maximum
    # WHEN gated
    result = gate({"r2": 0.9, "rmse": 180_000.0}, house_spec)
    # THEN the reason reads naturally, with thousands separators
    assert result.reasons == ["rmse is 180,000, above the maximum 150,000"]


def test_must_beat_champion_by_min_improvement(churn_spec: ModelSpec) -> None:
    # GIVEN the churn spec (min_improvement 0.005 on roc_auc) and a champion at 0.80
    champion = {"roc_auc": 0.80, "accuracy": 0.77}
    # WHEN candidates improve by 0.004, exactly 0.005, and 0.02
    too_little = gate({"roc_auc": 0.804, "accuracy": 0.77}, churn_spec, champion)
    exactly = gate({"roc_auc": 0.805, "accuracy": 0.77}, churn_spec, champion)
    plenty = gate({"roc_auc": 0.82, "accuracy": 0.77}, churn_spec, champion)
    # THEN only the first fails, and its reason names both values and the margin
    assert not too_little.passed and exactly.passed and plenty.passed
    [reason] = too_little.reasons
    assert "0.804" in reason and "champion's 0.8" in reason and "by at least 0.005" in reason
    assert exactly.checks[-1]["improvement"] > 0


def test_lower_is_better_metric_must_go_down(house_spec: ModelSpec) -> None:
    # GIVEN the house-prices spec (primary metric rmse, min_improvement 0) and a champion at 100,000
    champion = {"rmse": 100_000.0, "r2": 0.85}
    # WHEN one candidate's RMSE is lower, one higher, one equal
    better = gate({"rmse": 95_000.0, "r2": 0.86}, house_spec, champion)
    worse = gate({"rmse": 105_000.0, "r2": 0.84}, house_spec, champion)
    tie = gate({"rmse": 100_000.0, "r2": 0.85}, house_spec, champion)
    # THEN lower wins; a tie is not an improvement
    assert better.passed and better.checks[-1]["improvement"] == 5_000.0
    assert not worse.passed and "lower is better" in worse.reasons[0]
    assert not tie.passed
    assert improvement("rmse", 95.0, 100.0) == 5.0 and improvement("r2", 0.9, 0.8) > 0


def test_champion_check_is_skipped_when_disabled_or_champion_lacks_metric(churn_spec: ModelSpec) -> None:
    # GIVEN a spec that does not require beating the champion, and a champion without the metric
    relaxed = spec_with(churn_spec, gates={"must_beat_champion": False})
    candidate = {"roc_auc": 0.78, "accuracy": 0.75}
    # WHEN gated
    not_required = gate(candidate, relaxed, {"roc_auc": 0.9})
    nothing_to_beat = gate(candidate, churn_spec, {"roc_auc": None})
    # THEN both pass; the second records why
    assert not_required.passed and all(c["check"] != "champion" for c in not_required.checks)
    assert nothing_to_beat.passed and "nothing to beat" in nothing_to_beat.checks[-1]["message"]


def test_fairness_is_checked_when_given(churn_spec: ModelSpec) -> None:
    # GIVEN a disparate impact below the spec's 0.8 and an attribute where it was not computable
    fairness = {"senior": {"disparate_impact": 0.6}, "other": {"disparate_impact": None}}
    # WHEN gated with it
    result = gate({"roc_auc": 0.82, "accuracy": 0.78}, churn_spec, fairness=fairness)
    # THEN it fails on fairness only
    assert result.reasons == ["disparate impact across senior is 0.6 (below the minimum 0.8)"]
