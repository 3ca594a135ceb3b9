"""The drift engine: a current window against a reference, feature by feature, then a verdict.

Method per feature (``Feature.drift_method``; ``auto`` picks by type and window size):

===========  ===============================  ===========================================
type         window <= large_window_rows      window > large_window_rows
===========  ===============================  ===========================================
numeric      ``ks`` (p-value, BH-adjusted)    ``wasserstein`` / reference std >= threshold
categorical  ``chi2`` (p-value, BH-adjusted)  ``jensen_shannon`` (base 2) >= threshold
===========  ===============================  ===========================================

Numeric means float and int, and datetime read as seconds since 1970-01-01 UTC (what the model
reads, as days). ``psi`` (either type) is judged against ``psi_threshold``. Every applicable
method is computed and reported; only the chosen one decides. Windows (or features) with at
most ``min_rows`` values are ``too_small``, never drift. Missing-rate changes and unseen categories are
reported apart from the distribution test. Details and the report schema: docs/drift.md.

This module assembles the report and its verdict; the columns are made comparable in
:mod:`mlops.drift.sides` and each feature is compared in :mod:`mlops.drift.compare`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlops.drift import stats
from mlops.drift.compare import DriftOptions, _score, _Settings, compare_categorical, compare_feature, compare_numeric
from mlops.drift.estimates import Holdout
from mlops.drift.performance import performance_drift
from mlops.drift.report import (
    DriftReport,
    FeatureDrift,
    PerformanceDrift,
    SideInfo,
)
from mlops.drift.sides import (
    DATETIME_NOTE,
    CategoricalSide,
    NumericSide,
    Reference,
    ReferenceLike,
    Side,
    _kind,
    _side,
    as_reference,
    categorical_side,
    numeric_side,
    read_window,
)
from mlops.spec.model import FeatureType, ModelSpec
from mlops.training.threshold import DecisionThreshold

PREDICTION = "prediction"


def drift_report(
    reference: ReferenceLike,
    current: pd.DataFrame | str | Path,
    spec: ModelSpec,
    *,
    options: DriftOptions | None = None,
    current_source: str | None = None,
    reference_predictions: np.ndarray | pd.Series | None = None,
    current_predictions: np.ndarray | pd.Series | None = None,
    prediction_column: str | None = None,
    labels: np.ndarray | pd.Series | None = None,
    registered_metrics: Mapping[str, float] | None = None,
    probabilities: np.ndarray | None = None,
    model_classes: Sequence[Any] | None = None,
    holdout: Holdout | None = None,
    threshold: DecisionThreshold | None = None,
) -> DriftReport:
    """Compare a current window with a reference and give the per-feature and dataset verdicts.

    Parameters
    ----------
    reference
        A :class:`Reference`, a :class:`~mlops.data.profile.ReferenceProfile`, the training
        DataFrame, or a path to a saved profile (JSON) or the training data (CSV).
    current
        The window: a DataFrame (raw or typed columns by feature name) or a CSV path.
    spec
        The model spec: feature types, ``drift_method`` overrides and ``monitoring`` settings.
    options
        Engine settings the spec does not carry (:class:`DriftOptions`).
    current_source
        Named in the report (defaults to the path, or ``<dataframe>``).
    reference_predictions, current_predictions
        The model's outputs on each side, for prediction drift; or ``prediction_column`` names
        a column present in both frames.
    labels, registered_metrics
        Ground truth for the window's rows (aligned with ``current_predictions`` or the
        prediction column) and the registered holdout metrics: performance drift
        (:func:`mlops.drift.performance.performance_drift`, settings in the spec's
        ``monitoring.performance``).
    probabilities, model_classes, holdout
        For performance drift: the served class probabilities of those rows and the class of
        each column (ROC AUC, log loss), and what is known of the registered holdout.
    threshold
        The judged version's decision threshold (the champion's registry tag
        ``decision_threshold``, :meth:`DecisionThreshold.from_tags`): with ``probabilities`` the
        window's labels are judged at it, as its registered metrics were
        (:func:`mlops.drift.performance.performance_drift`).

    Returns
    -------
    DriftReport
        Features sorted worst first; ``drifted`` is True when a feature drifted (after
        Benjamini-Hochberg across the features judged by p-value), a missing rate changed
        beyond its limit, the predictions drifted or performance degraded.

    Examples
    --------
    >>> report = drift_report("train.csv", "window.csv", spec)  # doctest: +SKIP
    >>> report.verdict, report.drifted_features  # doctest: +SKIP
    ('drifted', ['monthly_charges'])
    """
    started = time.perf_counter()
    options = options or DriftOptions()
    settings = _Settings.of(spec, options)
    ref = as_reference(reference, spec)
    extra = [prediction_column] if prediction_column else []
    if isinstance(current, pd.DataFrame):
        frame, source = current, current_source or "<dataframe>"
    else:
        frame, source = read_window(current, spec, extra=extra), current_source or str(current)
    notes: list[str] = []
    if ref.model and ref.model != spec.name:
        notes.append(f"the reference was profiled for model {ref.model!r}, the spec is {spec.name!r}")
    elif ref.spec_fingerprint and ref.spec_fingerprint != spec.fingerprint():
        notes.append("the reference was profiled under another revision of the spec")

    features: list[FeatureDrift] = []
    for feature in spec.features:
        kind = _kind(feature.type)
        ref_side = ref.columns.get(feature.name)
        if kind == "categorical" and feature.type is FeatureType.STRING and _identifier_like(ref_side, options):
            features.append(
                FeatureDrift(
                    name=feature.name,
                    kind="categorical",
                    status="not_monitored",
                    notes=["identifier-like: almost every reference value is distinct"],
                )
            )
            continue
        cur_side = _side(frame[feature.name], feature.type) if feature.name in frame.columns else None
        if feature.name in ref.ranges and ref_side is None:
            result = _range_only(feature.name, ref.ranges[feature.name], cur_side)
        else:
            result = compare_feature(feature.name, kind, ref_side, cur_side, feature.drift_method, settings)
        if feature.type is FeatureType.DATETIME:
            result.notes.insert(0, DATETIME_NOTE)
            if result.distribution is not None:
                result.distribution.unit = "epoch_seconds"  # the chart labels its bins as dates
        features.append(result)

    prediction = None
    if prediction_column and current_predictions is None and prediction_column in frame.columns:
        current_predictions = frame[prediction_column].to_numpy()
        if isinstance(reference, pd.DataFrame) and prediction_column in reference.columns:
            reference_predictions = reference[prediction_column].to_numpy()
    if reference_predictions is not None and current_predictions is not None:
        prediction = prediction_drift(reference_predictions, current_predictions, spec, options=options)
    performance = None
    if labels is not None and registered_metrics is not None and current_predictions is not None:
        performance = performance_drift(
            labels,
            current_predictions,
            spec,
            registered_metrics,
            probabilities=probabilities,
            model_classes=model_classes,
            holdout=holdout,
            threshold=threshold,
        )

    return _verdict(spec, ref, source, len(frame), features, prediction, performance, settings, notes, started)


def _range_only(name: str, training_range: tuple[float, float], current: Side | None) -> FeatureDrift:
    """A datetime feature whose stored profile kept only its range: no test, the share outside it."""
    result = FeatureDrift(name=name, kind="numeric", status="no_reference")
    note = "the reference profile keeps only this feature's range (compare with the training data to test it)"
    if isinstance(current, NumericSide) and current.count:
        low, high = training_range
        inside = int(np.searchsorted(current.values, high, side="right") - np.searchsorted(current.values, low))
        result.current_count = current.count
        share = (current.count - inside) / current.count
        note += f": {share:.1%} of the window's values are outside the training range"
    result.notes.append(note)
    return result


def _identifier_like(side: Side | None, options: DriftOptions) -> bool:
    if not isinstance(side, CategoricalSide) or side.count < 50:
        return False
    return side.distinct > options.identifier_ratio * side.count


def _verdict(
    spec: ModelSpec,
    ref: Reference,
    source: str,
    rows: int,
    features: list[FeatureDrift],
    prediction: FeatureDrift | None,
    performance: PerformanceDrift | None,
    settings: _Settings,
    notes: list[str],
    started: float,
) -> DriftReport:
    tested = [f for f in features if f.judged_by == "p_value" and f.p_value is not None]
    if tested:
        adjusted = stats.benjamini_hochberg(np.array([f.p_value for f in tested]))
        for feature, value in zip(tested, adjusted, strict=True):
            feature.p_value_adjusted = float(value)
            _score(feature)
    too_small = rows <= settings.min_rows
    if too_small:
        for feature in features:
            if feature.status in ("ok", "drifted"):
                feature.status, feature.drifted, feature.severity = "too_small", False, "none"
        notes.append(f"{rows} row(s) in the window; more than {settings.min_rows} needed: never reported as drift")
    drifted = [f.name for f in features if f.drifted]
    alerts = [f.name for f in features if f.missing is not None and f.missing.flagged and not too_small]
    features.sort(key=lambda f: (not (f.drifted or f.name in alerts), -f.score, f.name))
    compared = sum(1 for f in features if f.status in ("ok", "drifted"))
    any_drift = bool(drifted or alerts or (prediction is not None and prediction.drifted))
    any_drift = any_drift or (performance is not None and performance.status == "degraded")
    any_drift = any_drift and not too_small
    return DriftReport(
        model=spec.name,
        spec_fingerprint=spec.fingerprint(),
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        reference=SideInfo(source=ref.source, rows=ref.rows, exact=ref.exact),
        current=SideInfo(source=source, rows=rows),
        settings=settings.public(),
        verdict="too_small" if too_small else "drifted" if any_drift else "no_drift",
        drifted=any_drift,
        drifted_features=drifted,
        missing_rate_alerts=alerts,
        drift_share=len(drifted) / compared if compared else 0.0,
        features=features,
        prediction=prediction,
        performance=performance,
        notes=notes,
        seconds=round(time.perf_counter() - started, 4),
    )


def prediction_drift(
    reference: np.ndarray | pd.Series,
    current: np.ndarray | pd.Series,
    spec: ModelSpec,
    *,
    options: DriftOptions | None = None,
) -> FeatureDrift:
    """Drift of the model's outputs: class labels (classification) or values (regression).

    Judged on its own (no multiple-testing adjustment), by the default method for its type and
    window size.
    """
    settings = _Settings.of(spec, options or DriftOptions())
    if spec.task == "regression":
        result = compare_numeric(PREDICTION, numeric_side(reference), numeric_side(current), "auto", settings)
    else:
        result = compare_categorical(
            PREDICTION, categorical_side(reference, "class"), categorical_side(current, "class"), "auto", settings
        )
    return result
