"""Performance drift: a labelled window's metrics against the champion's registered holdout metrics.

A metric is ``degraded`` only when the data show, with the spec's confidence, that it is worse
than the registered value by more than its tolerance. Both numbers are estimates: the window's
from its labelled rows, the registered one from the holdout it was measured on. So each change
gets an interval that counts the sampling error of both sides:

===================================  =================================================================
metric                               interval of the change
===================================  =================================================================
accuracy; precision, recall (binary) Newcombe's hybrid score interval from two Wilson intervals
ROC AUC                              normal, DeLong variance on each side (served probabilities);
                                     Hanley-McNeil from the holdout's class counts when its scores
                                     were not kept; one-vs-rest macro: DeLong influence components
log loss                             the mean of per-row losses: s / sqrt(n) on each side
RMSE, MAE, R²                        seeded bootstrap of the rows (one count matrix times four sums)
F1; macro precision, recall, F1      seeded bootstrap of the confusion matrix (multinomial: the same
                                     law as resampling rows, in O(classes²) per resample)
===================================  =================================================================

Bounded metrics (accuracy, precision, recall, F1, ROC AUC, R²) are compared by absolute change,
normal on the difference (Newcombe for proportions); error metrics (RMSE, MAE, log loss) by
relative change, with Fieller's interval for ``current / registered``. Each side's standard
error is at least that of both sides' rows pooled at its size, so a holdout that happened to
hold none of a rare large error does not look exact. A metric is judged only with
``min_support`` rows behind it (predicted positives for precision, actual positives for recall
and F1, the rarer class for ROC AUC; the smallest class for macro averages), and the window
only with ``min_labelled_rows`` labelled rows. With ``k`` metrics judged, each bound is taken
at ``1 - (1 - confidence) / k`` (Bonferroni), so the chance that a window from the holdout's
own distribution is called degraded is at most ``1 - confidence`` whatever the correlation
between the metrics. Measured rates: docs/monitoring.md, "How performance is judged".

This module judges; each side's metrics and standard errors are estimated in
:mod:`mlops.drift.estimates` and the intervals' formulas are in :mod:`mlops.drift.intervals`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from statistics import NormalDist
from typing import Any, Literal

import numpy as np
import pandas as pd

from mlops.drift.estimates import Estimate, Estimator, Holdout, Rows, _aligned_proba, _codes, confusion_counts
from mlops.drift.intervals import fieller, newcombe
from mlops.drift.report import MetricChange, PerformanceDrift
from mlops.errors import InputError
from mlops.spec.model import METRICS, ModelSpec
from mlops.training.threshold import DecisionThreshold, threshold_labels
from mlops.values import canonical_label

# Metrics bounded in [0, 1] (and R², at most 1) are compared by absolute change, the others by relative change.
BOUNDED_METRICS = frozenset({"accuracy", "precision", "recall", "f1", "roc_auc", "r2"})


SUPPORT_OF = {
    "precision": "predicted positives",
    "recall": "actual positives",
    "f1": "actual positives",
    "roc_auc": "rows of the rarer class",
}


MACRO_SUPPORT_OF = {
    "precision": "predictions of the least predicted class",
    "recall": "rows of the smallest class",
    "f1": "rows of the smallest class",
    "roc_auc": "rows of the smallest class",
}


def _support(name: str, rows: Rows, labels: int, positive: int | None) -> tuple[int, str]:
    """The rows behind a metric in this window, and what they are."""
    if name not in SUPPORT_OF or rows.true_codes is None or rows.pred_codes is None:
        return len(rows), "labelled rows"
    actual = np.bincount(rows.true_codes[rows.true_codes >= 0], minlength=labels)
    predicted = np.bincount(rows.pred_codes[rows.pred_codes >= 0], minlength=labels)
    if positive is not None:
        value = {
            "precision": predicted[positive],
            "recall": actual[positive],
            "f1": actual[positive],
            "roc_auc": min(actual[positive], int(actual.sum()) - actual[positive]),
        }[name]
        return int(value), SUPPORT_OF[name]
    counts = predicted if name == "precision" else actual
    return int(counts.min()) if len(counts) else 0, MACRO_SUPPORT_OF[name]


def _rows(
    spec: ModelSpec,
    labels: Any,
    predictions: Any,
    probabilities: Any,
    model_classes: Sequence[Any] | None,
    class_list: Sequence[Any],
) -> Rows:
    """Labels and predictions typed as the target, rows with either missing left out."""
    from mlops.training.frames import coerce_frame

    target = spec.target.name
    y_true = coerce_frame(pd.DataFrame({target: np.asarray(labels, dtype=object)}), spec)[target]
    y_pred = coerce_frame(pd.DataFrame({target: np.asarray(predictions, dtype=object)}), spec)[target]
    if len(y_true) != len(y_pred):
        raise InputError(f"{len(y_true)} label(s) but {len(y_pred)} prediction(s): they must be aligned row by row")
    proba = None
    if probabilities is not None:
        proba = np.asarray(probabilities, dtype=np.float64)
        if proba.ndim != 2 or proba.shape[0] != len(y_true):
            raise InputError(
                f"{proba.shape[0] if proba.ndim else 0} row(s) of probabilities for {len(y_true)} label(s):"
                " they must be aligned row by row"
            )
        if model_classes is None or len(model_classes) != proba.shape[1]:
            raise InputError(
                f"probabilities have {proba.shape[1]} column(s) but model_classes names"
                f" {0 if model_classes is None else len(model_classes)}: give the class of each column"
            )
    known = (y_true.notna() & y_pred.notna()).to_numpy(copy=True)
    if proba is not None:
        known &= np.isfinite(proba).all(axis=1)
    # As the model was fitted on them (ints stay ints), so scikit-learn reads the classes alike.
    true_values, predicted = _target_values(y_true[known], spec), _target_values(y_pred[known], spec)
    if spec.task == "regression":
        return Rows(true_values.astype(np.float64), predicted.astype(np.float64))
    return Rows(
        true_values,
        predicted,
        proba=None if proba is None else proba[known],
        true_codes=_codes(true_values, class_list),
        pred_codes=_codes(predicted, class_list),
    )


def _target_values(series: pd.Series, spec: ModelSpec) -> np.ndarray:
    from mlops.training.frames import target_array

    return target_array(series.to_frame(), spec)


def performance_drift(
    labels: np.ndarray | pd.Series | Sequence[Any],
    predictions: np.ndarray | pd.Series | Sequence[Any],
    spec: ModelSpec,
    registered_metrics: Mapping[str, float],
    *,
    probabilities: np.ndarray | Sequence[Sequence[float]] | None = None,
    model_classes: Sequence[Any] | None = None,
    holdout: Holdout | None = None,
    threshold: DecisionThreshold | None = None,
) -> PerformanceDrift:
    """The spec's metrics on labelled window rows against the registered holdout metrics.

    Parameters
    ----------
    labels, predictions
        The window's ground truth and the model's answers, row by row (rows where either is
        missing are left out).
    spec
        The model spec: task, classes, and ``monitoring.performance`` (confidence, support,
        tolerances, bootstrap resamples).
    registered_metrics
        The version's registered holdout metrics (only these are compared).
    probabilities, model_classes
        The served class probabilities (one row per prediction) and the class of each column:
        ROC AUC and log loss need them.
    holdout
        What is known of the holdout behind ``registered_metrics`` (:class:`Holdout`); without
        it, the holdout is taken to be as large as the window.
    threshold
        The version's decision threshold (binary classification): with ``probabilities``, each
        row's predicted label is the threshold's (:func:`mlops.training.threshold.threshold_labels`,
        the rule the inference function applied), so label metrics are at the threshold the
        registered metrics were measured at.

    Returns
    -------
    PerformanceDrift
        ``degraded`` when some metric is worse than its tolerance with the spec's confidence
        (Bonferroni over the metrics judged); ``too_small`` below ``min_labelled_rows`` rows or
        when no metric had the support to be judged; ``ok`` otherwise.

    Examples
    --------
    >>> drift = performance_drift(y_true, y_pred, spec, version.metrics,  # doctest: +SKIP
    ...                           probabilities=proba, model_classes=[0, 1],
    ...                           holdout=Holdout.from_documents(predictions_json))
    >>> drift.status, [(m.name, m.verdict) for m in drift.metrics]  # doctest: +SKIP
    ('ok', [('accuracy', 'ok'), ('precision', 'insufficient_support'), ...])
    """
    from mlops.training.evaluation import _Scorer
    from mlops.training.frames import class_labels

    settings = spec.monitoring.performance
    holdout = holdout or Holdout()
    classes = list(model_classes) if model_classes is not None else (holdout.classes or class_labels(spec))
    # scikit-learn's log_loss reads probability columns in sorted class order: score in that order.
    try:
        scored_classes = sorted(classes)
    except TypeError:
        scored_classes = classes
    scorer = _Scorer(spec, scored_classes)
    relabelled = threshold is not None and probabilities is not None and model_classes is not None
    if relabelled:
        assert threshold is not None and probabilities is not None and model_classes is not None
        try:
            predictions = threshold_labels(probabilities, list(model_classes), threshold)
        except ValueError as exc:
            raise InputError(f"decision threshold: {exc}") from None
    window = _rows(spec, labels, predictions, probabilities, model_classes, scorer.labels)
    if window.proba is not None:
        window.proba = _aligned_proba(window.proba, classes, scorer.labels)
    positive = None
    if spec.task == "classification" and len(spec.target.classes or []) == 2:
        wanted = canonical_label(scorer.positive)
        positive = next(i for i, label in enumerate(scorer.labels) if canonical_label(label) == wanted)
    estimator = Estimator(spec, scorer.labels, positive, settings.bootstrap_resamples)
    rows = len(window)
    notes: list[str] = []
    if threshold is not None:
        notes.append(
            f"labels at the decision threshold {threshold.value:g} (P({threshold.positive_class}) at or above it)"
            + (", from the served probabilities" if relabelled else ", as served")
        )

    values, value_notes = scorer.score(
        window.y_true, window.y_pred, _scorer_proba(window, scored_classes, scorer.labels)
    )
    names = [n for n in METRICS[spec.task] if n in registered_metrics]
    changes: dict[str, MetricChange] = {}
    judged: list[str] = []
    for name in names:
        registered = float(registered_metrics[name])
        relative = name not in BOUNDED_METRICS
        tolerance = settings.tolerances.get(name, settings.max_error_increase if relative else settings.max_metric_drop)
        current = values.get(name)
        change = None if current is None else _change(current, registered, relative)
        support, support_of = _support(name, window, len(scorer.labels), positive)
        entry = MetricChange(
            name=name,
            registered=registered,
            current=current,
            change=change,
            tolerance=tolerance,
            relative=relative,
            support=support,
            support_of=support_of,
            verdict="not_judged",
            degraded=False,
        )
        changes[name] = entry
        if rows < settings.min_labelled_rows:
            entry.reason = f"{rows} labelled row(s); at least {settings.min_labelled_rows} are needed to judge"
        elif current is None:
            entry.verdict = "undefined"
            entry.reason = _undefined_reason(name, value_notes.get(name, "undefined on these rows"), window)
        elif support < settings.min_support:
            entry.verdict = "insufficient_support"
            entry.reason = f"{support} {support_of}; at least {settings.min_support} are needed to judge"
        else:
            judged.append(name)

    if rows < settings.min_labelled_rows:
        notes.append(
            f"{rows} labelled row(s) in the window; at least {settings.min_labelled_rows}"
            " (monitoring.performance.min_labelled_rows) are needed: never reported as degraded"
        )
        return _result("too_small", rows, settings, holdout, window, changes, notes, None)

    current_estimates = estimator.from_rows(window, judged)
    registered_estimates, holdout_rows, holdout_counts = _holdout_side(spec, estimator, holdout, judged, scorer.labels)
    if holdout_rows is not None:
        pooled = _pooled(window, holdout_rows)
        spread = estimator.from_rows(pooled, judged)
        for size, estimates in (
            (rows, current_estimates),
            (max(holdout.rows or 0, len(holdout_rows)), registered_estimates),
        ):
            estimates.update(_widest(estimates, {k: v.scaled(size / len(pooled)) for k, v in spread.items()}))
    elif holdout_counts is not None:
        both = confusion_counts(window, len(scorer.labels)) + holdout_counts
        current_estimates = _widest(current_estimates, estimator.from_confusion(both, judged, scale_to=rows))
        registered_estimates = _widest(
            registered_estimates, estimator.from_confusion(both, judged, scale_to=holdout.rows or holdout_counts.sum())
        )
    if "roc_auc" in judged and "roc_auc" not in registered_estimates and positive is not None:
        # The holdout's scores were not kept: Hanley-McNeil at the registered AUC, with the class
        # counts of its confusion matrix (or those it would have at the window's class shares).
        if holdout_counts is not None:
            counts = holdout_counts
        else:
            counts = confusion_counts(window, len(scorer.labels))
            counts = counts * ((holdout.rows or rows) / max(counts.sum(), 1))
        auc = estimator.hanley_mcneil(float(registered_metrics["roc_auc"]), counts)
        if auc is not None:
            registered_estimates["roc_auc"] = auc
    for name in list(judged):
        if current_estimates.get(name) is None or (
            current_estimates[name].se is None and current_estimates[name].trials is None
        ):
            changes[name].verdict = "undefined"
            changes[name].reason = "its sampling error cannot be estimated on these rows"
            judged.remove(name)

    if not judged:
        notes.append("no metric had the support to be judged: never reported as degraded")
        return _result("too_small", rows, settings, holdout, window, changes, notes, None)

    alpha = (1 - settings.confidence) / len(judged)
    level = 1 - alpha
    z = NormalDist().inv_cdf(level)
    for name in judged:
        entry = changes[name]
        assert entry.current is not None
        cur = current_estimates[name]
        reg = registered_estimates.get(name) or _as_large(cur, rows, holdout.rows or rows)
        low, high, method = _interval(entry.current, entry.registered, cur, reg, z, entry.relative)
        entry.interval = [low, high]
        entry.method = method
        entry.confidence = level
        # Bounded metrics are better when larger: the smallest drop the data allow; error metrics:
        # the smallest relative increase.
        worse_by = low if entry.relative else -(high if high is not None else math.inf)
        entry.degraded = worse_by > entry.tolerance
        entry.verdict = "degraded" if entry.degraded else "ok"
        entry.reason = _reason(entry, worse_by, level)
    degraded = any(changes[n].degraded for n in judged)
    return _result("degraded" if degraded else "ok", rows, settings, holdout, window, changes, notes, level)


def _scorer_proba(window: Rows, classes: Sequence[Any], labels: Sequence[Any]) -> np.ndarray | None:
    """Probabilities in the model's column order (what the evaluation scorer takes)."""
    if window.proba is None:
        return None
    position = {canonical_label(label): k for k, label in enumerate(labels)}
    return window.proba[:, [position[canonical_label(c)] for c in classes]]


def _undefined_reason(name: str, note: str, window: Rows) -> str:
    if name in ("roc_auc", "log_loss") and window.proba is None:
        return "no served probabilities came with these predictions"
    return note


def _change(current: float, registered: float, relative: bool) -> float:
    if relative:
        return current / registered - 1 if registered > 0 else (0.0 if current == registered else math.inf)
    return current - registered


def _as_large(estimate: Estimate, rows: int, holdout_rows: int) -> Estimate:
    """The window's estimate at the holdout's size: the holdout's spread when nothing changed."""
    return estimate.scaled(holdout_rows / rows)


def _holdout_side(
    spec: ModelSpec,
    estimator: Estimator,
    holdout: Holdout,
    names: Sequence[str],
    labels: Sequence[Any],
) -> tuple[dict[str, Estimate], Rows | None, np.ndarray | None]:
    """The registered side's own estimates, and its rows (or confusion matrix) when known."""
    if holdout.labels is not None and holdout.predictions is not None:
        rows = _rows(spec, holdout.labels, holdout.predictions, holdout.probabilities, holdout.classes, labels)
        if rows.proba is not None and holdout.classes is not None:
            rows.proba = _aligned_proba(rows.proba, holdout.classes, labels)
        if len(rows):
            return estimator.from_rows(rows, names, size=max(holdout.rows or 0, len(rows))), rows, None
    if holdout.confusion is not None and holdout.confusion_labels is not None and spec.task == "classification":
        index = _codes(np.asarray(holdout.confusion_labels, dtype=object), labels)
        if (index >= 0).all():
            counts = np.zeros((len(labels), len(labels)))
            counts[np.ix_(index, index)] = np.asarray(holdout.confusion, dtype=np.float64)
            if counts.sum() > 0:
                return estimator.from_confusion(counts, names, scale_to=holdout.rows or counts.sum()), None, counts
    return {}, None, None


def _pooled(window: Rows, other: Rows) -> Rows:
    """Both sides' rows together: what one distribution would give if nothing changed."""
    proba = None
    if window.proba is not None and other.proba is not None:
        proba = np.vstack([window.proba, other.proba])
    codes = None
    if window.true_codes is not None and other.true_codes is not None:
        codes = (np.concatenate([window.true_codes, other.true_codes]),)
    return Rows(
        np.concatenate([window.y_true, other.y_true]),
        np.concatenate([window.y_pred, other.y_pred]),
        proba=proba,
        true_codes=None if codes is None else codes[0],
        pred_codes=None
        if window.pred_codes is None or other.pred_codes is None
        else np.concatenate([window.pred_codes, other.pred_codes]),
    )


def _widest(own: dict[str, Estimate], pooled: Mapping[str, Estimate]) -> dict[str, Estimate]:
    """Each standard error at least the pooled rows' at the same size.

    A holdout (or window) that happened to hold none of a rare large error (a confident miss in
    log loss, an outlier in RMSE, the one misranked pair of an AUC near 1) would otherwise look
    exact; when nothing changed, both sides' spread is that of the pooled rows.
    """
    out = dict(own)
    for name, estimate in own.items():
        wide = pooled.get(name)
        if estimate.se is not None and wide is not None and wide.se is not None and wide.se > estimate.se:
            out[name] = Estimate(
                se=wide.se, method=estimate.method, successes=estimate.successes, trials=estimate.trials
            )
    return out


def _interval(
    current: float, registered: float, cur: Estimate, reg: Estimate, z: float, relative: bool
) -> tuple[float, float | None, str]:
    """``(low, high, method)`` of the change (current - registered, or current / registered - 1)."""
    if not relative and cur.trials is not None and reg.trials is not None and cur.trials > 0 and reg.trials > 0:
        low, high = newcombe(current, cur.trials, registered, reg.trials, z)
        return low, high, "newcombe (wilson)"
    se_cur = cur.se if cur.se is not None else _proportion_se(current, cur)
    se_reg = reg.se if reg.se is not None else _proportion_se(registered, reg)
    method = cur.method if cur.method == reg.method else f"{cur.method} / {reg.method}"
    if relative:
        low, open_high = fieller(current, registered, se_cur, se_reg, z)
        return low, open_high, f"{method}, fieller ratio"
    spread = z * math.hypot(se_cur, se_reg)
    change = current - registered
    return change - spread, change + spread, method


def _proportion_se(value: float, estimate: Estimate) -> float:
    trials = estimate.trials or 1.0
    return math.sqrt(value * (1 - value) / trials)


def _reason(entry: MetricChange, worse_by: float, level: float) -> str:
    at = f"at {level:.1%} confidence"
    if entry.relative:
        kind, shown, limit = "increase", f"{worse_by:+.1%}", f"{entry.tolerance:.0%}"
    else:
        kind, shown, limit = "drop", f"{worse_by:.3f}", f"{entry.tolerance:g}"
    if worse_by <= 0:
        return f"no {kind} shown {at} (tolerance {limit})"
    verdict = "beyond" if entry.degraded else "within"
    return f"{'an' if kind == 'increase' else 'a'} {kind} of at least {shown} {at}, {verdict} the tolerance {limit}"


def _result(
    status: Literal["ok", "degraded", "too_small"],
    rows: int,
    settings: Any,
    holdout: Holdout,
    window: Rows,
    changes: Mapping[str, MetricChange],
    notes: list[str],
    level: float | None,
) -> PerformanceDrift:
    return PerformanceDrift(
        status=status,
        rows=rows,
        confidence=settings.confidence,
        metric_confidence=level,
        min_labelled_rows=settings.min_labelled_rows,
        min_support=settings.min_support,
        holdout_rows=holdout.rows,
        holdout_basis=holdout.basis,
        probabilities=window.proba is not None,
        metrics=list(changes.values()),
        notes=notes,
    )
