"""The gate: does a candidate meet the spec's thresholds and beat the champion?

Checks, in order: every threshold in ``spec.gates.metrics`` (``min`` and/or ``max``), then, when
``spec.gates.must_beat_champion`` and a champion's metrics are given, the primary metric against
the champion's (``LOWER_IS_BETTER`` metrics must go down). "Beat by at least δ" means an
improvement of at least ``spec.gates.min_improvement``; with δ = 0 the candidate must be strictly
better, because a tie is not an improvement. Optionally, disparate impact of the candidate's
predictions per protected attribute (groups smaller than ``spec.fairness.min_group_size`` were
left out by the evaluation) against ``spec.fairness.min_disparate_impact``: with
``spec.fairness.mode: gate`` a candidate is refused when the holdout shows its ratio is below
the minimum (the ratio's upper ``spec.fairness.confidence`` bound is below it, so noise on a small
holdout refuses no fair model); with ``report`` the check is recorded (``enforced`` False) and
refuses nothing. A decision threshold chosen for an objective (``training.threshold``) that no
threshold reached on the training rows refuses the candidate.

A missing or non-finite metric fails its threshold (a model is not let through on a metric that
could not be computed). Each failure is a sentence that names the metric, the value and the bound.

Examples
--------
>>> result = gate({"roc_auc": 0.81, "accuracy": 0.77}, spec, champion_metrics={"roc_auc": 0.80})  # doctest: +SKIP
>>> result.passed, result.reasons  # doctest: +SKIP
(True, [])
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from mlops.spec.model import LOWER_IS_BETTER, ModelSpec
from mlops.values import finite_number

# Float noise allowance when comparing an improvement with min_improvement (0.805 - 0.8 < 0.005).
_EPSILON = 1e-9


@dataclass
class GateResult:
    """The gate's verdict: ``passed``, a sentence per failure, and every check made."""

    passed: bool
    reasons: list[str] = field(default_factory=list)
    checks: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def gate(
    candidate_metrics: Mapping[str, Any],
    spec: ModelSpec,
    champion_metrics: Mapping[str, Any] | None = None,
    *,
    fairness: Mapping[str, Mapping[str, Any]] | None = None,
    compared_metrics: Mapping[str, Any] | None = None,
    decision_threshold: Mapping[str, Any] | None = None,
) -> GateResult:
    """Judge a candidate's metrics against the spec's gates and, optionally, the champion.

    Parameters
    ----------
    candidate_metrics
        Metric name to value on the holdout (``None`` when it could not be computed).
    spec
        The model spec (``gates``, ``fairness``, ``primary_metric``).
    champion_metrics
        The champion's metrics on the same holdout; ``None`` when there is no champion.
    compared_metrics
        The candidate's metrics on exactly the rows the champion was scored on (the holdout less
        the rows the champion trained on); ``candidate_metrics`` when not given.
    fairness
        ``Evaluation.fairness`` of the candidate; attributes with a ``disparate_impact`` are
        checked against ``spec.fairness.min_disparate_impact``, enforced only in ``gate`` mode.
    decision_threshold
        The candidate's decision threshold (:meth:`mlops.training.threshold.DecisionThreshold.to_dict`):
        one chosen for an objective that no threshold reached on the training rows is refused.

    Returns
    -------
    GateResult
        ``passed`` only if every enforced check passed; ``reasons`` names the ones that did not.
    """
    checks: list[dict[str, Any]] = []
    for metric, bound in spec.gates.metrics.items():
        value = finite_number(candidate_metrics.get(metric))
        if bound.min is not None:
            checks.append(_threshold(metric, value, "min", bound.min))
        if bound.max is not None:
            checks.append(_threshold(metric, value, "max", bound.max))

    if spec.gates.must_beat_champion and champion_metrics is not None:
        compared = compared_metrics if compared_metrics is not None else candidate_metrics
        checks.append(_champion(spec, compared, champion_metrics))

    for attribute, result in (fairness or {}).items():
        impact = finite_number(result.get("disparate_impact"))
        if impact is None:
            continue
        threshold = spec.fairness.min_disparate_impact
        # Refused only when the holdout shows the ratio is below the minimum: its upper
        # confidence bound (evaluations made before there was one: the point estimate).
        upper = finite_number(result.get("upper_bound"))
        passed = (upper if upper is not None else impact) >= threshold
        enforced = spec.fairness.mode == "gate"
        excluded = list(result.get("excluded_groups") or [])
        if upper is None:
            verdict = f"{'at least' if passed else 'below'} the minimum {_fmt(threshold)}"
        elif impact >= threshold:
            verdict = f"at least the minimum {_fmt(threshold)}"
        else:
            confidence = finite_number(result.get("confidence")) or spec.fairness.confidence
            verdict = f"below the minimum {_fmt(threshold)}, upper {confidence:.0%} bound {_fmt(upper)}: " + (
                "shown to be below it" if not passed else "not shown to be below it on this holdout"
            )
        checks.append(
            {
                "check": "fairness",
                "metric": "disparate_impact",
                "attribute": attribute,
                "value": impact,
                "upper_bound": upper,
                "threshold": threshold,
                "passed": passed,
                "enforced": enforced,
                "excluded_groups": excluded,
                "message": (
                    f"disparate impact across {attribute} is {_fmt(impact)} ({verdict})"
                    + (
                        f"; {len(excluded)} group(s) under {spec.fairness.min_group_size} rows not compared"
                        if excluded
                        else ""
                    )
                    + ("" if enforced else "; reported only (fairness.mode: report)")
                ),
            }
        )
    if decision_threshold and decision_threshold.get("method", "fixed") != "fixed":
        checks.append(_threshold_objective(decision_threshold))
    reasons = [check["message"] for check in checks if not check["passed"] and check.get("enforced", True)]
    return GateResult(passed=not reasons, reasons=reasons, checks=checks)


def _threshold_objective(threshold: Mapping[str, Any]) -> dict[str, Any]:
    """Did the decision threshold reach the spec's objective on the rows it was chosen on?"""
    method, wanted = threshold.get("method"), threshold.get("objective_value")
    chosen = threshold.get("chosen_on") or {}
    met = bool(threshold.get("met", True))
    value = finite_number(threshold.get("value"))
    where = f"out-of-fold predictions of {chosen.get('rows')} training rows"
    if method == "max_f1":
        message = f"decision threshold {_fmt(value or 0)} has the highest F1 ({_fmt(chosen.get('f1') or 0)}) on {where}"
    else:
        kind = "precision" if method == "min_precision" else "recall"
        reached = finite_number(chosen.get(kind))
        shown = "n/a" if reached is None else _fmt(reached)
        if met:
            message = f"decision threshold {_fmt(value or 0)} gives {kind} {shown} on {where}, at least {wanted}"
        else:
            message = (
                f"training.threshold: no decision threshold reaches {kind} >= {wanted} on {where}; the best is"
                f" {shown} (at {_fmt(value or 0)}): lower the objective or improve the model"
            )
    return {
        "check": "decision_threshold",
        "metric": method,
        "value": value,
        "threshold": wanted,
        "passed": met,
        "message": message,
    }


def improvement(metric: str, candidate: float, champion: float) -> float:
    """How much better the candidate is (positive is better), whichever way the metric points."""
    return champion - candidate if metric in LOWER_IS_BETTER else candidate - champion


def _threshold(metric: str, value: float | None, kind: str, bound: float) -> dict[str, Any]:
    check: dict[str, Any] = {"check": "threshold", "metric": metric, "value": value, "bound": kind, "threshold": bound}
    if value is None:
        check.update(passed=False, message=f"{metric} could not be computed, so its {kind} of {_fmt(bound)} is not met")
        return check
    passed = value >= bound if kind == "min" else value <= bound
    if passed:
        relation = "at least the minimum" if kind == "min" else "at most the maximum"
    else:
        relation = "below the minimum" if kind == "min" else "above the maximum"
    check.update(passed=passed, message=f"{metric} is {_fmt(value)}, {relation} {_fmt(bound)}")
    return check


def _champion(spec: ModelSpec, candidate: Mapping[str, Any], champion: Mapping[str, Any]) -> dict[str, Any]:
    metric = spec.primary_metric
    delta = spec.gates.min_improvement
    value, theirs = finite_number(candidate.get(metric)), finite_number(champion.get(metric))
    direction = "lower" if metric in LOWER_IS_BETTER else "higher"
    check: dict[str, Any] = {
        "check": "champion",
        "metric": metric,
        "value": value,
        "champion": theirs,
        "min_improvement": delta,
        "direction": f"{direction} is better",
    }
    if theirs is None:
        check.update(
            passed=True,
            improvement=None,
            message=f"the champion has no {metric} on this holdout, so there is nothing to beat",
        )
        return check
    if value is None:
        check.update(
            passed=False,
            improvement=None,
            message=(
                f"{metric} could not be computed for the candidate, so it cannot beat the champion's {_fmt(theirs)}"
            ),
        )
        return check
    gained = improvement(metric, value, theirs)
    passed = gained >= delta - _EPSILON if delta > 0 else gained > 0
    needed = f"by at least {_fmt(delta)}" if delta > 0 else "(any improvement)"
    verdict = "beats" if passed else "does not beat"
    check.update(
        passed=passed,
        improvement=gained,
        message=(
            f"{metric} is {_fmt(value)} against the champion's {_fmt(theirs)}: the candidate {verdict} it"
            f" {needed}, {direction} is better (improvement {_fmt(gained)})"
        ),
    )
    return check


def _fmt(value: float) -> str:
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.4g}"
