"""The drift report: per-feature results and the dataset verdict (schema: docs/drift.md)."""

from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

DRIFT_SCHEMA_VERSION = "1"

FeatureStatus = Literal[
    "ok",  # compared, no drift
    "drifted",  # compared, drift
    "too_small",  # fewer current values than the window needs: never drift
    "no_reference",  # the reference has no values for it (all missing, or not profiled)
    "missing_column",  # the current window does not have the column
    "not_monitored",  # a type the engine does not compare (datetime, identifier-like strings)
]
Severity = Literal["none", "low", "medium", "high"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MethodResult(_Model):
    """One method's number for one feature; ``p_value`` only for tests (ks, chi2)."""

    statistic: float
    p_value: float | None = None


class MissingRate(_Model):
    """Share of missing values on each side; ``flagged`` when the change exceeds the limit."""

    reference: float
    current: float
    change: float
    limit: float
    flagged: bool


class CategoryChange(_Model):
    """Categories on one side only (``unseen`` are new in the window; lists show the most frequent)."""

    unseen: list[str] = Field(default_factory=list)
    unseen_count: int = 0
    unseen_fraction: float = 0.0
    vanished: list[str] = Field(default_factory=list)
    vanished_count: int = 0
    reference_truncated: bool = False


class Distribution(_Model):
    """What the HTML overlay draws: bins (numeric: edges; categorical: labels) and proportions."""

    kind: Literal["numeric", "categorical"]
    # "epoch_seconds": the edges are seconds since 1970-01-01 UTC (a datetime feature)
    unit: Literal["epoch_seconds"] | None = None
    edges: list[float] = Field(default_factory=list)
    labels: list[str] = Field(default_factory=list)
    reference: list[float]
    current: list[float]


class FeatureDrift(_Model):
    """The verdict on one feature (or on the model's predictions)."""

    name: str
    kind: Literal["numeric", "categorical", "other"]
    status: FeatureStatus
    drifted: bool = False
    method: str | None = None
    judged_by: Literal["p_value", "threshold"] | None = None
    statistic: float | None = None
    p_value: float | None = None
    p_value_adjusted: float | None = None
    alpha: float | None = None
    threshold: float | None = None
    score: float = 0.0
    severity: Severity = "none"
    reference_count: int = 0
    current_count: int = 0
    exact: bool = True
    methods: dict[str, MethodResult] = Field(default_factory=dict)
    missing: MissingRate | None = None
    categories: CategoryChange | None = None
    distribution: Distribution | None = None
    notes: list[str] = Field(default_factory=list)


MetricVerdict = Literal[
    "ok",  # judged: not shown to be worse than its tolerance
    "degraded",  # judged: worse than its tolerance with the stated confidence
    "insufficient_support",  # fewer than min_support rows behind it (predicted or actual positives, ...)
    "undefined",  # not computable on the window (one class only, no probabilities, ...)
    "not_judged",  # the window has fewer than min_labelled_rows labelled rows
]


class MetricChange(_Model):
    """One metric: the window's value against the registered one, with the interval of the change.

    ``change`` is ``current - registered`` (bounded metrics) or ``current / registered - 1``
    (``relative``: RMSE, MAE, log loss). ``interval`` is ``[low, high]`` of that change, each end a
    one-sided bound at ``confidence`` (which is already Bonferroni-adjusted over the metrics judged);
    ``null`` for an end that is unbounded.
    """

    name: str
    registered: float
    current: float | None
    change: float | None
    # None at an end: unbounded (Fieller's interval when the registered value is itself uncertain).
    interval: list[float | None] | None = None
    tolerance: float
    relative: bool
    support: int | None = None
    support_of: str = "labelled rows"
    confidence: float | None = None
    method: str | None = None
    verdict: MetricVerdict = "ok"
    degraded: bool
    reason: str = ""


class PerformanceDrift(_Model):
    """The spec's metrics on the labelled window against the registered holdout metrics."""

    status: Literal["ok", "degraded", "too_small"]
    rows: int
    confidence: float | None = None
    # The level of each metric's bound: 1 - (1 - confidence) / (metrics judged).
    metric_confidence: float | None = None
    min_labelled_rows: int | None = None
    min_support: int | None = None
    holdout_rows: int | None = None
    # What the registered side's sampling error was estimated from.
    holdout_basis: str = ""
    # Whether the served probabilities came with the labelled predictions (ROC AUC, log loss).
    probabilities: bool = False
    metrics: list[MetricChange] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)

    def summary(self) -> str:
        """One line: the status, the rows, and the degraded metrics (or why nothing was judged)."""
        worse = [m for m in self.metrics if m.degraded]
        text = f"performance: {self.status} on {self.rows} labelled row(s)"
        if worse:
            text += " (" + "; ".join(f"{m.name}: {m.reason}" for m in worse) + ")"
        elif self.status == "too_small" and self.notes:
            text += f" ({self.notes[0]})"
        return text


class DriftSettings(_Model):
    min_rows: int
    large_window_rows: int
    p_value: float
    psi_threshold: float
    distance_threshold: float
    max_missing_rate_change: float
    multiple_testing: Literal["benjamini-hochberg"] = "benjamini-hochberg"


class SideInfo(_Model):
    source: str
    rows: int
    exact: bool = True


class DriftReport(_Model):
    """A whole drift check; ``to_json`` is the document ``mlops drift --json`` prints."""

    schema_version: str = DRIFT_SCHEMA_VERSION
    model: str
    spec_fingerprint: str
    created_at: str
    reference: SideInfo
    current: SideInfo
    settings: DriftSettings
    verdict: Literal["drifted", "no_drift", "too_small"]
    drifted: bool
    drifted_features: list[str] = Field(default_factory=list)
    missing_rate_alerts: list[str] = Field(default_factory=list)
    drift_share: float = 0.0
    features: list[FeatureDrift] = Field(default_factory=list)
    prediction: FeatureDrift | None = None
    performance: PerformanceDrift | None = None
    notes: list[str] = Field(default_factory=list)
    seconds: float = 0.0

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.model_dump(mode="json"), indent=indent, allow_nan=False)

    def render_text(self) -> str:
        """A short human summary: the verdict, then one line per compared feature, worst first."""
        head = {
            "drifted": f"DRIFT: {len(self.drifted_features)} of {self.compared} feature(s) drifted",
            "no_drift": f"NO DRIFT: {self.compared} feature(s) compared",
            "too_small": f"TOO SMALL: {self.current.rows} row(s) in the window,"
            f" more than {self.settings.min_rows} needed",
        }[self.verdict]
        lines = [
            head,
            f"  reference {self.reference.source} ({self.reference.rows:,} rows)",
            f"  current   {self.current.source} ({self.current.rows:,} rows)",
        ]
        rows = list(self.features)
        if self.prediction is not None:
            rows.append(self.prediction)
        for feature in rows:
            lines.append("  " + _feature_line(feature))
        if self.missing_rate_alerts:
            lines.append("  missing-rate change: " + ", ".join(self.missing_rate_alerts))
        if self.performance is not None:
            lines.append("  " + self.performance.summary())
            for metric in self.performance.metrics:
                lines.append("    " + _metric_line(metric))
        return "\n".join(lines)

    @property
    def compared(self) -> int:
        return sum(1 for f in self.features if f.status in ("ok", "drifted"))


def _feature_line(feature: FeatureDrift) -> str:
    mark = "x" if feature.drifted else " "
    if feature.status not in ("ok", "drifted"):
        return f"[{mark}] {feature.name}: {feature.status.replace('_', ' ')}" + (
            f" ({feature.notes[0]})" if feature.notes else ""
        )
    if feature.judged_by == "p_value":
        adjusted = _num(feature.p_value_adjusted)
        judged = f"p={_num(feature.p_value)} (BH-adjusted {adjusted}, alpha {feature.alpha})"
    else:
        judged = f"threshold {feature.threshold}"
    extra = ""
    if feature.categories is not None and feature.categories.unseen_count:
        unseen = feature.categories.unseen_count
        extra = f"; {unseen} unseen categor{'y' if unseen == 1 else 'ies'}"
    measured = f"{feature.method}={_num(feature.statistic)}"
    return f"[{mark}] {feature.name}: {measured} {judged}, severity {feature.severity}{extra}"


def _metric_line(metric: MetricChange) -> str:
    mark = "x" if metric.degraded else " "
    measured = f"{_num(metric.registered)} -> {_num(metric.current)}"
    if metric.change is not None:
        measured += f" ({metric.change:+.1%})" if metric.relative else f" ({metric.change:+.3f})"
    return f"[{mark}] {metric.name}: {measured}, {metric.verdict.replace('_', ' ')}: {metric.reason}"


def _num(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.3g}"
