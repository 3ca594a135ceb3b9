"""Comparing one feature: every method on one column (KS, normalized Wasserstein, PSI, chi-square,
Jensen-Shannon, missing rates, unseen categories), the chosen method's decision, the noise guard
and the score (:func:`compare_feature`), under :class:`DriftOptions`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from mlops.drift import stats
from mlops.drift.report import (
    CategoryChange,
    DriftSettings,
    FeatureDrift,
    MethodResult,
    MissingRate,
)
from mlops.drift.sides import OTHER, CategoricalSide, NumericSide, Side
from mlops.spec.model import ModelSpec

MAX_SCORE = 1000.0


class DriftOptions(BaseModel):
    """Engine settings the spec does not carry (the spec's ``monitoring`` section gives the rest)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_missing_rate_change: float = Field(default=0.1, gt=0, le=1)
    psi_bins: int = Field(default=10, ge=2, le=100)
    # A string feature whose reference has more distinct values than this share of its values is
    # an identifier: every new value is "unseen" by construction, so it is not compared.
    identifier_ratio: float = Field(default=0.5, gt=0, le=1)
    plot_bins: int = Field(default=30, ge=2, le=200)
    plot_categories: int = Field(default=20, ge=1, le=200)
    list_categories: int = Field(default=20, ge=1, le=1000)


@dataclass(frozen=True)
class _Settings:
    min_rows: int
    large_window_rows: int
    alpha: float
    psi_threshold: float
    distance_threshold: float
    options: DriftOptions

    @classmethod
    def of(cls, spec: ModelSpec, options: DriftOptions) -> _Settings:
        m = spec.monitoring
        return cls(m.min_rows, m.large_window_rows, m.p_value, m.psi_threshold, m.distance_threshold, options)

    def public(self) -> DriftSettings:
        return DriftSettings(
            min_rows=self.min_rows,
            large_window_rows=self.large_window_rows,
            p_value=self.alpha,
            psi_threshold=self.psi_threshold,
            distance_threshold=self.distance_threshold,
            max_missing_rate_change=self.options.max_missing_rate_change,
        )


def _missing(reference: Side, current: Side, settings: _Settings) -> MissingRate:
    ref_rate = reference.nulls / reference.rows if reference.rows else 0.0
    cur_rate = current.nulls / current.rows if current.rows else 0.0
    change = cur_rate - ref_rate
    limit = settings.options.max_missing_rate_change
    flagged = current.rows > settings.min_rows and abs(change) > limit
    return MissingRate(reference=ref_rate, current=cur_rate, change=change, limit=limit, flagged=flagged)


def _choose(method: str, kind: str, current_count: int, settings: _Settings) -> tuple[str, str, float]:
    """(method, judged_by, alpha-or-threshold) for a feature."""
    if method == "auto":
        large = current_count > settings.large_window_rows
        by_size = {"numeric": ("ks", "wasserstein"), "categorical": ("chi2", "jensen_shannon")}[kind]
        method = by_size[large]
    if method in ("ks", "chi2"):
        return method, "p_value", settings.alpha
    if method == "psi":
        return method, "threshold", settings.psi_threshold
    return method, "threshold", settings.distance_threshold


def _start(
    name: str, kind: str, reference: Side, current: Side, exact: bool, has_values: bool, settings: _Settings
) -> FeatureDrift:
    """A feature's result before any method: counts and missing rates, or why it is not compared."""
    result = FeatureDrift(
        name=name,
        kind=kind,
        status="ok",
        reference_count=reference.count,
        current_count=current.count,
        exact=exact,
        missing=_missing(reference, current, settings),
    )
    if reference.count == 0 or not has_values:
        result.status = "no_reference"
        result.notes.append("the reference has no values for this feature")
    elif current.count <= settings.min_rows:
        result.status = "too_small"
        result.notes.append(f"{current.count} value(s) in the window; more than {settings.min_rows} needed")
    return result


def compare_numeric(
    name: str, reference: NumericSide, current: NumericSide, method: str, settings: _Settings
) -> FeatureDrift:
    """Every numeric method on one column; the chosen one decides (p-values adjusted later)."""
    result = _start(name, "numeric", reference, current, reference.exact, len(reference.values) > 0, settings)
    if result.status != "ok":
        return result
    ref, cur = reference.values, current.values
    comparison = stats.compare_sorted(ref, cur)
    # A profile's reference stands for ``count`` values, whatever the size of what it kept.
    ks_p = stats.ks_p_value(comparison.ks_statistic, reference.count, len(cur))
    spread = reference.std
    if not spread > 0:
        # No reference spread to measure against: the window's own spread, else unit scale.
        spread = current.std if current.std > 0 else 1.0
        result.notes.append(
            f"zero-variance reference (every value {float(ref[0]):g}): Wasserstein is divided by"
            f" {'the window std' if current.std > 0 else '1'} ({spread:.4g})"
        )
    cuts = stats.bin_cuts(ref, settings.options.psi_bins)
    psi_value = stats.psi(stats.sorted_counts(ref, cuts), stats.sorted_counts(cur, cuts))
    result.methods = {
        "ks": MethodResult(statistic=comparison.ks_statistic, p_value=ks_p),
        "wasserstein": MethodResult(statistic=comparison.wasserstein / spread),
        "psi": MethodResult(statistic=psi_value),
    }
    if not reference.exact:
        result.notes.append(
            f"reference from the profile's quantiles ({reference.count:,} values): statistics are approximate"
        )
    result.distribution = _numeric_distribution(ref, cur, settings.options.plot_bins)
    return _decide(result, method, settings)


def compare_categorical(
    name: str, reference: CategoricalSide, current: CategoricalSide, method: str, settings: _Settings
) -> FeatureDrift:
    """Every categorical method on one column; unseen and vanished categories listed apart."""
    result = _start(name, "categorical", reference, current, not reference.truncated, True, settings)
    if result.status != "ok":
        return result
    ref_counts, cur_counts = reference.counts, current.counts
    limit = settings.options.list_categories
    if reference.truncated or reference.other:
        # The profile kept only the most frequent categories: the rest is one bucket on both sides.
        known = cur_counts.index.isin(ref_counts.index)
        cur_counts = pd.concat([cur_counts[known], pd.Series({OTHER: int(cur_counts[~known].sum())})])
        ref_counts = pd.concat([ref_counts, pd.Series({OTHER: reference.other})])
        changes = CategoryChange(reference_truncated=True)
        result.notes.append("the reference profile kept only its most frequent categories: unseen ones are not listed")
    else:
        unseen = cur_counts[~cur_counts.index.isin(ref_counts.index)].sort_values(ascending=False, kind="stable")
        vanished = ref_counts[~ref_counts.index.isin(cur_counts.index)].sort_values(ascending=False, kind="stable")
        changes = CategoryChange(
            unseen=[str(x) for x in unseen.index[:limit]],
            unseen_count=len(unseen),
            unseen_fraction=float(unseen.sum() / current.count),
            vanished=[str(x) for x in vanished.index[:limit]],
            vanished_count=len(vanished),
        )
    union = ref_counts.index.union(cur_counts.index, sort=False)
    p = ref_counts.reindex(union, fill_value=0).to_numpy(dtype=np.float64)
    q = cur_counts.reindex(union, fill_value=0).to_numpy(dtype=np.float64)
    pooled_p, pooled_q, pooled = stats.pool_sparse_categories(p, q)
    chi2_statistic, chi2_p, _ = stats.chi2_homogeneity(pooled_p, pooled_q)
    if pooled:
        result.notes.append(
            f"chi-square pooled {pooled} categor{'y' if pooled == 1 else 'ies'} too rare for it into one bucket"
            " (Cochran's rule: no expected count below 1, at most a fifth below 5)"
        )
    result.methods = {
        "chi2": MethodResult(statistic=chi2_statistic, p_value=chi2_p),
        "jensen_shannon": MethodResult(statistic=stats.jensen_shannon(p, q)),
        "psi": MethodResult(statistic=stats.psi(p, q)),
    }
    result.categories = changes
    result.distribution = _categorical_distribution(union, p, q, settings.options.plot_categories)
    return _decide(result, method, settings)


def _decide(result: FeatureDrift, method: str, settings: _Settings) -> FeatureDrift:
    kind = result.kind
    chosen, judged_by, level = _choose(method, kind, result.current_count, settings)
    applies = {"numeric": ("ks", "wasserstein", "psi"), "categorical": ("chi2", "jensen_shannon", "psi")}[kind]
    if chosen not in applies:  # a spec override that does not apply (chi2 on a datetime feature)
        result.notes.append(f"drift_method {chosen} does not apply to a {kind} comparison: the default decides")
        chosen, judged_by, level = _choose("auto", kind, result.current_count, settings)
    measured = result.methods[chosen]
    result.method, result.judged_by, result.statistic = chosen, judged_by, measured.statistic  # type: ignore[assignment]
    if judged_by == "p_value":
        result.p_value = measured.p_value
        result.alpha = level
        result.p_value_adjusted = measured.p_value  # replaced by the BH value across features
    else:
        result.threshold = level
    _score(result)
    if judged_by == "threshold" and result.drifted and result.current_count <= settings.large_window_rows:
        _noise_guard(result, settings)
    return result


def _noise_guard(result: FeatureDrift, settings: _Settings) -> None:
    """On a window of at most ``large_window_rows``, a distance is drift only if it is also real.

    A spec may ask for an effect-size method on any window; on a small one, sampling noise alone
    gives distances near the thresholds (a 400-row window of a mixture can sit at a normalized
    Wasserstein of 0.12 from its own population). So the feature's test (KS, chi-square) must
    also reject at ``p_value``; otherwise the feature is not drifted and the note says why.
    """
    test = "ks" if result.kind == "numeric" else "chi2"
    check = result.methods.get(test)
    if check is None or check.p_value is None or check.p_value < settings.alpha:
        return
    result.notes.append(
        f"{result.method} {result.statistic:.3g} reaches its threshold {result.threshold:g}, but on "
        f"{result.current_count} rows {test} finds no difference (p={check.p_value:.3g} >= {settings.alpha:g}): "
        "a distance sampling noise explains is not drift"
    )
    result.score = min(result.score, 0.99)
    result.drifted, result.status, result.severity = False, "ok", "low"


def _score(result: FeatureDrift) -> None:
    """Severity score: 1 at the decision boundary (statistic / threshold, or log p / log alpha)."""
    if result.judged_by == "threshold" and result.statistic is not None and result.threshold:
        score = result.statistic / result.threshold
    elif result.judged_by == "p_value" and result.p_value_adjusted is not None and result.alpha:
        score = math.log(max(result.p_value_adjusted, 1e-300)) / math.log(result.alpha)
    else:
        score = 0.0
    result.score = float(min(max(score, 0.0), MAX_SCORE))
    result.drifted = result.score >= 1.0
    result.status = "drifted" if result.drifted else "ok"
    if result.drifted:
        result.severity = "high" if result.score >= 2.0 else "medium"
    else:
        result.severity = "low" if result.score >= 0.5 else "none"


def _numeric_distribution(ref: np.ndarray, cur: np.ndarray, bins: int) -> Any:
    from mlops.drift.report import Distribution

    tails = np.array([0.005, 0.995])
    (ref_low, ref_high), (cur_low, cur_high) = stats.sorted_quantiles(ref, tails), stats.sorted_quantiles(cur, tails)
    low, high = float(min(ref_low, cur_low)), float(max(ref_high, cur_high))
    if not high > low:
        low, high = low - 0.5, high + 0.5
    edges = np.linspace(low, high, bins + 1)
    # Values outside the plotted range are counted in the outermost bins.
    ref_counts = stats.sorted_counts(ref, edges[1:-1])
    cur_counts = stats.sorted_counts(cur, edges[1:-1])
    return Distribution(
        kind="numeric",
        edges=[float(e) for e in edges],
        reference=[float(x) for x in ref_counts / len(ref)],
        current=[float(x) for x in cur_counts / len(cur)],
    )


def _categorical_distribution(labels: pd.Index, p: np.ndarray, q: np.ndarray, limit: int) -> Any:
    from mlops.drift.report import Distribution

    p, q = p / p.sum(), q / q.sum()
    order = np.argsort(-np.maximum(p, q), kind="stable")
    keep, rest = order[:limit], order[limit:]
    names = [str(labels[i]) for i in keep]
    ref, cur = [float(p[i]) for i in keep], [float(q[i]) for i in keep]
    if len(rest):
        names.append(f"{OTHER} {len(rest)} more")
        ref.append(float(p[rest].sum()))
        cur.append(float(q[rest].sum()))
    return Distribution(kind="categorical", labels=names, reference=ref, current=cur)


def compare_feature(
    name: str, kind: str, reference: Side | None, current: Side | None, method: str, settings: _Settings
) -> FeatureDrift:
    if current is None:
        return FeatureDrift(name=name, kind=kind, status="missing_column", notes=["the window has no such column"])
    if reference is None:
        return FeatureDrift(
            name=name,
            kind=kind,
            status="no_reference",
            current_count=current.count,
            notes=["not in the reference"],
        )
    if isinstance(reference, NumericSide) and isinstance(current, NumericSide):
        return compare_numeric(name, reference, current, method, settings)
    if isinstance(reference, CategoricalSide) and isinstance(current, CategoricalSide):
        return compare_categorical(name, reference, current, method, settings)
    return FeatureDrift(name=name, kind=kind, status="no_reference", notes=["the reference column has another type"])
