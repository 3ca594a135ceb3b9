"""Evaluation: a fitted pipeline's metrics on the holdout, overall and per protected-attribute slice.

Classification: accuracy, precision, recall, F1 (of ``spec.positive_class`` for two classes,
macro-averaged otherwise), ROC AUC (one-vs-rest for several classes), log loss and the
confusion matrix. With a decision threshold (:mod:`mlops.training.threshold`) the labels, so
accuracy, precision, recall, F1, the confusion matrix, slice metrics and positive rates, are the
threshold's; ROC AUC and log loss read the probabilities and do not change. Regression: RMSE,
MAE and R². A metric that is not defined on some rows (ROC AUC when only one class is present,
precision without a single positive prediction, R² of a constant target) is ``None`` with the
reason in ``notes``; evaluation never raises for it. Every number in :meth:`Evaluation.to_dict`
is finite or ``None``, so it is valid JSON and a valid DynamoDB item.

For classification each slice also reports its positive-prediction rate, and each protected
attribute its disparate impact (lowest slice rate over the highest, among slices of at least
``spec.fairness.min_group_size`` rows) with an upper confidence bound, checked against
``spec.fairness.min_disparate_impact``; the gate refuses a candidate whose bound is below it
when ``spec.fairness.mode`` is ``gate``.

Examples
--------
>>> evaluation = evaluate(result.pipeline, result.holdout, spec)  # doctest: +SKIP
>>> evaluation.metrics["roc_auc"]  # doctest: +SKIP
0.84
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mlops.errors import InputError
from mlops.spec.model import NUMERIC_TYPES, FeatureType, ModelSpec
from mlops.training.frames import class_labels, coerce_frame, model_input, target_array
from mlops.training.threshold import DecisionThreshold, threshold_labels
from mlops.values import finite_number

# A slice with fewer rows is reported, but flagged: its metrics are too noisy to act on.
MIN_SLICE_ROWS = 30
# Numeric protected attributes with more distinct values than this are cut into quartiles.
MAX_SLICE_VALUES = 10
MISSING_SLICE = "(missing)"


@dataclass
class SliceMetrics:
    """Metrics on the holdout rows where ``attribute`` has ``value``."""

    attribute: str
    value: str
    rows: int
    metrics: dict[str, float | None]
    notes: dict[str, str] = field(default_factory=dict)
    positive_rate: float | None = None
    small: bool = False


@dataclass
class Evaluation:
    """A model's evaluation on one holdout; ``to_dict`` is JSON-ready."""

    task: str
    rows: int
    metrics: dict[str, float | None]
    notes: dict[str, str] = field(default_factory=dict)
    positive_class: Any = None
    confusion_matrix: dict[str, Any] | None = None
    slices: list[SliceMetrics] = field(default_factory=list)
    fairness: dict[str, dict[str, Any]] = field(default_factory=dict)
    predict_seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["predict_seconds"] = round(self.predict_seconds, 4)
        return _json_ready(data)

    def finite_metrics(self) -> dict[str, float]:
        """Only the metrics that have a value (what a registry version stores)."""
        return {name: value for name, value in self.metrics.items() if value is not None}


def evaluate(
    pipeline: Any, holdout: pd.DataFrame, spec: ModelSpec, threshold: DecisionThreshold | None = None
) -> Evaluation:
    """Metrics of a fitted pipeline on holdout rows, overall and per protected-attribute value.

    Parameters
    ----------
    pipeline
        A fitted pipeline whose input is :func:`mlops.training.frames.model_input` (a candidate or the
        champion).
    holdout
        Holdout rows with the features and the target (raw or typed); rows without a valid
        target are not scored.
    spec
        The model spec (task, target, positive class, protected attributes).
    threshold
        The model's decision threshold (binary classification): labels from the probabilities by
        :func:`mlops.training.threshold.threshold_labels`; None: the model's own ``predict``.

    Returns
    -------
    Evaluation

    Raises
    ------
    InputError
        The holdout has no target column or no row with a valid target, or the model cannot
        score its rows (for example a champion trained on other features).
    """
    target = spec.target.name
    if target not in holdout.columns:
        raise InputError(f"{spec.name}: the holdout has no target column {target!r}")
    typed = coerce_frame(holdout, spec)
    typed = typed.loc[typed[target].notna()]
    if typed.empty:
        raise InputError(f"{spec.name}: the holdout has no row with a valid target")
    y_true = target_array(typed, spec)
    features = model_input(typed, spec)
    started = time.perf_counter()
    proba = None
    model_classes: list[Any] = []
    try:
        y_pred = np.asarray(pipeline.predict(features))
        if spec.task == "classification":
            proba = np.asarray(pipeline.predict_proba(features), dtype=np.float64)
            model_classes = list(pipeline.classes_)
            if threshold is not None:
                y_pred = threshold_labels(proba, np.asarray(pipeline.classes_), threshold)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        # A champion trained under another spec revision may expect other columns.
        raise InputError(f"{spec.name}: the model cannot score these rows: {exc}") from None
    seconds = time.perf_counter() - started

    scorer = _Scorer(spec, model_classes)
    metrics, notes = scorer.score(y_true, y_pred, proba)
    evaluation = Evaluation(
        task=spec.task,
        rows=len(typed),
        metrics=metrics,
        notes=notes,
        positive_class=spec.positive_class,
        predict_seconds=seconds,
    )
    if spec.task == "classification":
        labels = scorer.labels
        matrix = _confusion(y_true, y_pred, labels)
        evaluation.confusion_matrix = {"labels": labels, "matrix": matrix}

    for attribute in spec.fairness.protected_attributes:
        if attribute not in typed.columns:
            evaluation.fairness[attribute] = {"note": f"{attribute!r} is not in the holdout"}
            continue
        groups = _slice_labels(typed[attribute], spec.feature(attribute).type)
        rates: dict[str, float] = {}
        sizes: dict[str, int] = {}
        for value in _ordered_values(groups):
            mask = groups == value
            rows = int(mask.sum())
            slice_metrics, slice_notes = scorer.score(
                y_true[mask], y_pred[mask], None if proba is None else proba[mask]
            )
            positive_rate = scorer.positive_rate(y_pred[mask])
            if positive_rate is not None:
                rates[value] = positive_rate
                sizes[value] = rows
            evaluation.slices.append(
                SliceMetrics(
                    attribute=attribute,
                    value=value,
                    rows=rows,
                    metrics=slice_metrics,
                    notes=slice_notes,
                    positive_rate=positive_rate,
                    small=rows < MIN_SLICE_ROWS,
                )
            )
        if spec.task == "classification":
            evaluation.fairness[attribute] = _disparate_impact(rates, sizes, spec)
    return evaluation


class _Scorer:
    """Scores one set of rows; every undefined metric becomes ``None`` with a reason."""

    def __init__(self, spec: ModelSpec, model_classes: list[Any]) -> None:
        self.spec = spec
        self.model_classes = model_classes
        self.labels: list[Any] = []
        self.positive: Any = None
        if spec.task == "classification":
            spec_labels = class_labels(spec)
            extra = [c for c in (_plain(c) for c in model_classes) if c not in spec_labels]
            self.labels = [*spec_labels, *extra]
            positive = spec.positive_class
            self.positive = next((label for label in self.labels if str(label) == str(positive)), positive)

    def score(
        self, y_true: np.ndarray, y_pred: np.ndarray, proba: np.ndarray | None
    ) -> tuple[dict[str, float | None], dict[str, str]]:
        if self.spec.task == "regression":
            return _regression(y_true.astype(np.float64), y_pred.astype(np.float64))
        return self._classification(y_true, y_pred, proba)

    def positive_rate(self, y_pred: np.ndarray) -> float | None:
        if self.spec.task != "classification" or len(y_pred) == 0:
            return None
        return float(np.mean(_equals(y_pred, self.positive)))

    def _classification(
        self, y_true: np.ndarray, y_pred: np.ndarray, proba: np.ndarray | None
    ) -> tuple[dict[str, float | None], dict[str, str]]:
        from sklearn.metrics import log_loss, precision_recall_fscore_support, roc_auc_score

        names = ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss")
        metrics: dict[str, float | None] = dict.fromkeys(names)
        notes: dict[str, str] = {}
        rows = len(y_true)
        if rows == 0:
            return metrics, dict.fromkeys(names, "no rows")
        metrics["accuracy"] = float(np.mean(y_true == y_pred))
        binary = len(self.spec.target.classes or []) == 2
        if binary:
            true_pos = _equals(y_true, self.positive)
            pred_pos = _equals(y_pred, self.positive)
            tp = int(np.sum(true_pos & pred_pos))
            fp = int(np.sum(~true_pos & pred_pos))
            fn = int(np.sum(true_pos & ~pred_pos))
            if tp + fp:
                metrics["precision"] = tp / (tp + fp)
            else:
                notes["precision"] = f"undefined: no row is predicted {self.positive!r}"
            if tp + fn:
                metrics["recall"] = tp / (tp + fn)
            else:
                notes["recall"] = f"undefined: no row is {self.positive!r}"
            precision, recall = metrics["precision"], metrics["recall"]
            if precision is not None and recall is not None:
                metrics["f1"] = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
            else:
                notes["f1"] = "undefined: precision or recall is undefined"
        else:
            with np.errstate(all="ignore"):
                p, r, f, _ = precision_recall_fscore_support(
                    y_true, y_pred, labels=self.labels, average="macro", zero_division=np.nan
                )
            for name, value in (("precision", p), ("recall", r), ("f1", f)):
                metrics[name] = finite_number(value)
                if metrics[name] is None:
                    notes[name] = "undefined for every class on these rows"

        if proba is None:
            for name in ("roc_auc", "log_loss"):
                notes[name] = "the model gives no probabilities"
            return metrics, notes
        present = {_plain(v) for v in np.unique(y_true)}
        if len(present) < 2:
            notes["roc_auc"] = f"undefined: only one class ({next(iter(present))!r}) is present"
        else:
            absent = [label for label in self.labels if label not in present]
            try:
                if not binary and absent:
                    listing = ", ".join(repr(label) for label in absent)
                    raise ValueError(f"one-vs-rest needs every class, and {listing} is absent from these rows")
                if binary:
                    column = [str(c) for c in (_plain(c) for c in self.model_classes)].index(str(self.positive))
                    auc = roc_auc_score(_equals(y_true, self.positive), proba[:, column])
                else:
                    auc = roc_auc_score(y_true, proba, multi_class="ovr", labels=self.model_classes)
                metrics["roc_auc"] = finite_number(auc)
            except ValueError as exc:
                notes["roc_auc"] = f"undefined: {exc}"
        try:
            metrics["log_loss"] = finite_number(log_loss(y_true, proba, labels=self.model_classes))
        except ValueError as exc:
            notes["log_loss"] = f"undefined: {exc}"
        for name, value in metrics.items():
            if value is None and name not in notes:
                notes[name] = "undefined on these rows"
        return metrics, notes


def _regression(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[dict[str, float | None], dict[str, str]]:
    metrics: dict[str, float | None] = {"rmse": None, "mae": None, "r2": None}
    rows = len(y_true)
    if rows == 0:
        return metrics, dict.fromkeys(metrics, "no rows")
    notes: dict[str, str] = {}
    error = y_pred - y_true
    metrics["rmse"] = finite_number(np.sqrt(np.mean(error**2)))
    metrics["mae"] = finite_number(np.mean(np.abs(error)))
    if rows < 2:
        notes["r2"] = "undefined: needs at least two rows"
    else:
        total = float(np.sum((y_true - y_true.mean()) ** 2))
        if total == 0:
            notes["r2"] = "undefined: the target is constant on these rows"
        else:
            metrics["r2"] = finite_number(1 - float(np.sum(error**2)) / total)
    for name, value in metrics.items():
        if value is None and name not in notes:
            notes[name] = "not a finite number on these rows"
    return metrics, notes


def _confusion(y_true: np.ndarray, y_pred: np.ndarray, labels: list[Any]) -> list[list[int]]:
    index = {str(label): i for i, label in enumerate(labels)}
    matrix = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for actual, predicted in zip(y_true.tolist(), y_pred.tolist(), strict=True):
        i, j = index.get(str(actual)), index.get(str(predicted))
        if i is not None and j is not None:
            matrix[i, j] += 1
    return matrix.tolist()


def _slice_labels(series: pd.Series, kind: FeatureType) -> np.ndarray:
    """One text label per row: the value, a quartile range for many-valued numbers, or missing."""
    out = np.full(len(series), MISSING_SLICE, dtype=object)
    missing = series.isna().to_numpy()
    present = ~missing
    if kind is FeatureType.BOOL:
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
        out[present] = np.where(values[present] > 0.5, "true", "false")
        return out
    if kind in NUMERIC_TYPES or kind is FeatureType.DATETIME:
        if kind is FeatureType.DATETIME:
            values = series.dt.strftime("%Y-%m-%d").to_numpy(dtype=object)
            numbers = series.to_numpy(dtype="datetime64[ns]").astype("int64").astype(np.float64)
        else:
            numbers = series.to_numpy(dtype=np.float64, na_value=np.nan)
            values = np.asarray([_number_text(v) for v in numbers], dtype=object)
        distinct = np.unique(numbers[present])
        if len(distinct) <= MAX_SLICE_VALUES:
            out[present] = values[present]
            return out
        edges = np.unique(np.quantile(numbers[present], [0, 0.25, 0.5, 0.75, 1]))
        bins = np.clip(np.searchsorted(edges, numbers[present], side="right") - 1, 0, len(edges) - 2)
        low_text = {i: values[present][np.argmin(np.where(bins == i, numbers[present], np.inf))] for i in set(bins)}
        high_text = {i: values[present][np.argmax(np.where(bins == i, numbers[present], -np.inf))] for i in set(bins)}
        out[present] = [f"[{low_text[b]}, {high_text[b]}]" for b in bins]
        return out
    out[present] = series[present].astype(str).to_numpy(dtype=object)
    return out


def _ordered_values(groups: np.ndarray) -> list[str]:
    """Slice values in a stable order: quartile ranges by their lower bound, then text order."""
    values = sorted(set(groups.tolist()) - {MISSING_SLICE}, key=_slice_sort_key)
    return [*values, MISSING_SLICE] if MISSING_SLICE in groups else values


def _slice_sort_key(value: str) -> tuple[int, float, str]:
    head = value[1:].split(",")[0] if value.startswith("[") else value
    try:
        return (0, float(head), value)
    except ValueError:
        return (1, 0.0, value)


def _disparate_impact(rates: dict[str, float], sizes: dict[str, int], spec: ModelSpec) -> dict[str, Any]:
    """Lowest positive-prediction rate over the highest, among groups of ``min_group_size`` rows.

    Smaller groups keep their rate in ``positive_rates`` and are named in ``excluded_groups``:
    a handful of rows would otherwise decide the ratio. ``upper_bound`` is a one-sided
    ``fairness.confidence`` bound of the ratio of the two extreme groups' rates (Katz's log
    interval, 0.5 added to each count when one is zero, Bonferroni-corrected over every pair of
    compared groups, since the extreme pair is picked after looking). ``passed`` is False only
    when that bound is below the minimum: the holdout shows the ratio is below it, not noise. Whether
    that refuses the candidate is the gate's decision (``fairness.mode``).
    """
    fairness = spec.fairness
    compared = {group: rate for group, rate in rates.items() if sizes.get(group, 0) >= fairness.min_group_size}
    result: dict[str, Any] = {
        "positive_rates": rates,
        "group_rows": sizes,
        "min_disparate_impact": fairness.min_disparate_impact,
        "min_group_size": fairness.min_group_size,
        "excluded_groups": [group for group in rates if group not in compared],
        "mode": fairness.mode,
        "confidence": fairness.confidence,
    }
    if len(compared) < 2:
        note = f"fewer than two groups with at least {fairness.min_group_size} rows in the holdout"
        result.update(disparate_impact=None, upper_bound=None, passed=None, note=note)
        return result
    low = min(compared, key=lambda group: compared[group])
    high = max(compared, key=lambda group: compared[group])
    if compared[high] == 0:
        result.update(disparate_impact=None, upper_bound=None, passed=None, note="no group has a positive prediction")
        return result
    impact = compared[low] / compared[high]
    upper = _ratio_upper_bound(
        round(compared[low] * sizes[low]),
        sizes[low],
        round(compared[high] * sizes[high]),
        sizes[high],
        fairness.confidence,
        pairs=len(compared) * (len(compared) - 1) // 2,
    )
    result.update(
        disparate_impact=impact,
        upper_bound=upper,
        groups_compared=[low, high],
        passed=upper >= fairness.min_disparate_impact,
    )
    return result


def _ratio_upper_bound(x1: int, n1: int, x2: int, n2: int, confidence: float, pairs: int = 1) -> float:
    """One-sided upper confidence bound of (x1/n1) / (x2/n2), Katz's log method.

    ``pairs`` spreads the error over that many comparisons (Bonferroni). Zero counts take 0.5 on
    each cell of the two-by-two table (Haldane-Anscombe), so the bound is finite.
    """
    from statistics import NormalDist

    if x1 == 0 or x2 == 0:
        x1_, n1_, x2_, n2_ = x1 + 0.5, n1 + 1.0, x2 + 0.5, n2 + 1.0
    else:
        x1_, n1_, x2_, n2_ = float(x1), float(n1), float(x2), float(n2)
    log_ratio = math.log((x1_ / n1_) / (x2_ / n2_))
    se = math.sqrt(max(1 / x1_ - 1 / n1_ + 1 / x2_ - 1 / n2_, 0.0))
    z = NormalDist().inv_cdf(1 - (1 - confidence) / max(pairs, 1))
    return math.exp(log_ratio + z * se)


def _equals(values: np.ndarray, label: Any) -> np.ndarray:
    if values.dtype == object:
        return np.asarray([str(v) == str(label) for v in values.tolist()], dtype=bool)
    try:
        return np.asarray(values == label, dtype=bool)
    except (TypeError, ValueError):
        return np.asarray([str(v) == str(label) for v in values.tolist()], dtype=bool)


def _number_text(value: float) -> str:
    if not math.isfinite(value):
        return MISSING_SLICE
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _json_ready(value: Any) -> Any:
    """numpy scalars to Python, non-finite floats to None, recursively."""
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return value
