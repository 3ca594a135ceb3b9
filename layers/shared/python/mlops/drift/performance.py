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
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any, Literal

import numpy as np
import pandas as pd

from mlops.drift.report import MetricChange, PerformanceDrift
from mlops.errors import InputError
from mlops.spec.model import METRICS, ModelSpec
from mlops.values import canonical_label

# Metrics bounded in [0, 1] (and R², at most 1) are compared by absolute change, the others by relative change.
BOUNDED_METRICS = frozenset({"accuracy", "precision", "recall", "f1", "roc_auc", "r2"})
# A bootstrap of more rows than this resamples a uniform subsample of them and scales its spread by
# sqrt(m / n) (the statistics are smooth: their spread falls as 1 / sqrt(n)); 1,000 resamples of
# 2,000 rows took 0.13 s on two busy cores.
MAX_BOOTSTRAP_ROWS = 2_000
# Indices drawn per block of bootstrap resamples (memory: 8 bytes each).
BOOTSTRAP_BLOCK = 2_000_000
# Probabilities are clipped as scikit-learn's log_loss clips them.
EPS = float(np.finfo(np.float64).eps)


# ------------------------------------------------------------------------------------------ intervals
def wilson(successes: float, trials: float, z: float) -> tuple[float, float]:
    """Wilson's score interval for a proportion (each end a one-sided bound at ``Phi(z)``)."""
    if trials <= 0:
        return 0.0, 1.0
    p = successes / trials
    z2 = z * z
    centre = (p + z2 / (2 * trials)) / (1 + z2 / trials)
    half = z / (1 + z2 / trials) * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials))
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe(p1: float, n1: float, p2: float, n2: float, z: float) -> tuple[float, float]:
    """Newcombe's hybrid score interval (his method 10) for ``p1 - p2``, independent samples.

    Each end is a one-sided bound at ``Phi(z)``. Newcombe (1998), Statistics in Medicine 17:873.
    """
    low1, high1 = wilson(p1 * n1, n1, z)
    low2, high2 = wilson(p2 * n2, n2, z)
    diff = p1 - p2
    return (
        diff - math.sqrt((p1 - low1) ** 2 + (high2 - p2) ** 2),
        diff + math.sqrt((high1 - p1) ** 2 + (p2 - low2) ** 2),
    )


def midranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n, ties given the mean of their ranks (as ``scipy.stats.rankdata(method='average')``)."""
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    upper = np.cumsum(counts)
    return (upper - (counts - 1) / 2.0)[inverse].astype(np.float64)


def delong_components(scores: np.ndarray, positive: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """``(auc, V10, V01)``: DeLong's structural components (fast midrank form, Sun and Xu 2014).

    ``V10[i]`` is the share of negatives positive ``i`` outranks (ties count half), ``V01[j]``
    the share of positives that outrank negative ``j``; the AUC is the mean of either.
    """
    pos, neg = scores[positive], scores[~positive]
    m, n = len(pos), len(neg)
    combined = midranks(scores)
    v10 = (combined[positive] - midranks(pos)) / n
    v01 = 1.0 - (combined[~positive] - midranks(neg)) / m
    return float(v10.mean()), v10, v01


def delong_variance(scores: np.ndarray, positive: np.ndarray) -> float:
    """DeLong, DeLong and Clarke-Pearson (1988): the variance of the empirical ROC AUC."""
    _, v10, v01 = delong_components(scores, positive)
    return float(np.var(v10, ddof=1) / len(v10) + np.var(v01, ddof=1) / len(v01))


def ovr_macro_auc_variance(proba: np.ndarray, codes: np.ndarray) -> float:
    """Variance of the one-vs-rest macro ROC AUC (the mean of each class's AUC against the rest).

    Each row's influence on the mean is the mean of its DeLong components over the classes
    (``(V10 - A) / m`` as a positive, ``(V01 - A) / n`` as a negative); the variance is the sum of
    their squares, rescaled by ``N / (N - 1)``. For two classes this is DeLong's variance.
    """
    rows, classes = proba.shape
    influence = np.zeros(rows)
    for k in range(classes):
        positive = codes == k
        auc, v10, v01 = delong_components(proba[:, k], positive)
        influence[positive] += (v10 - auc) / len(v10)
        influence[~positive] += (v01 - auc) / len(v01)
    influence /= classes
    return float(np.sum(influence**2) * rows / (rows - 1))


def hanley_mcneil_variance(auc: float, positives: float, negatives: float) -> float:
    """Hanley and McNeil (1982): the variance of an AUC from its value and the class counts alone."""
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    return (auc * (1 - auc) + (positives - 1) * (q1 - auc * auc) + (negatives - 1) * (q2 - auc * auc)) / max(
        positives * negatives, 1.0
    )


# ------------------------------------------------------------------------------------------ one side
@dataclass
class Estimate:
    """One side's metric: its standard error, or (proportions) the counts behind it."""

    se: float | None
    method: str
    successes: float | None = None
    trials: float | None = None

    def scaled(self, factor: float) -> Estimate:
        """The same estimate for ``factor`` times as many rows (standard error over sqrt(factor))."""
        return Estimate(
            se=None if self.se is None else self.se / math.sqrt(factor),
            method=self.method,
            successes=None if self.successes is None else self.successes * factor,
            trials=None if self.trials is None else self.trials * factor,
        )


@dataclass
class Rows:
    """Labelled rows of one side, coded against the scorer's class list (classification)."""

    y_true: np.ndarray
    y_pred: np.ndarray
    proba: np.ndarray | None = None  # columns in the order of the scorer's labels (classification)
    true_codes: np.ndarray | None = None
    pred_codes: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.y_true)


def _codes(values: np.ndarray, labels: Sequence[Any]) -> np.ndarray:
    """Each value's position in ``labels`` (compared as canonical text), -1 when absent."""
    if not len(values):
        return np.zeros(0, dtype=np.int64)
    index = {canonical_label(label): i for i, label in enumerate(labels)}
    codes, uniques = pd.factorize(pd.Series(values, dtype=object))
    lookup = np.asarray([index.get(canonical_label(u), -1) for u in uniques.tolist()] + [-1], dtype=np.int64)
    return lookup[codes]


def _aligned_proba(proba: np.ndarray | None, model_classes: Sequence[Any], labels: Sequence[Any]) -> np.ndarray | None:
    """Probability columns reordered to ``labels`` (a label the model never learnt gets zeros)."""
    if proba is None:
        return None
    column = {canonical_label(c): i for i, c in enumerate(model_classes)}
    out = np.zeros((proba.shape[0], len(labels)))
    for k, label in enumerate(labels):
        i = column.get(canonical_label(label))
        if i is not None:
            out[:, k] = proba[:, i]
    return out


def confusion_counts(rows: Rows, classes: int) -> np.ndarray:
    """``counts[actual, predicted]`` over the rows whose label and prediction are both known classes."""
    assert rows.true_codes is not None and rows.pred_codes is not None
    known = (rows.true_codes >= 0) & (rows.pred_codes >= 0)
    flat = rows.true_codes[known] * classes + rows.pred_codes[known]
    return np.bincount(flat, minlength=classes * classes).reshape(classes, classes).astype(np.float64)


def _confusion_metrics(counts: np.ndarray, positive: int | None) -> dict[str, np.ndarray]:
    """precision, recall and F1 of resampled confusion matrices ``counts[..., actual, predicted]``.

    ``positive`` given: of that class (binary); otherwise macro averages over the classes that
    are defined, as scikit-learn's ``zero_division=nan`` averages them.
    """
    diag = np.diagonal(counts, axis1=-2, axis2=-1)
    actual, predicted = counts.sum(axis=-1), counts.sum(axis=-2)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, diag / predicted, np.nan)
        recall = np.where(actual > 0, diag / actual, np.nan)
        f1 = np.where(actual + predicted > 0, 2 * diag / (actual + predicted), np.nan)
    if positive is not None:
        return {"precision": precision[..., positive], "recall": recall[..., positive], "f1": f1[..., positive]}
    with np.errstate(all="ignore"):
        return {
            "precision": _nanmean(precision),
            "recall": _nanmean(recall),
            "f1": _nanmean(f1),
        }


def _nanmean(values: np.ndarray) -> np.ndarray:
    finite = np.isfinite(values)
    total = np.where(finite, values, 0.0).sum(axis=-1)
    count = finite.sum(axis=-1)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _spread(draws: np.ndarray) -> float | None:
    """The standard deviation of bootstrap draws (None when too few are defined)."""
    finite = draws[np.isfinite(draws)]
    if len(finite) < max(10, len(draws) // 2):
        return None
    return float(np.std(finite, ddof=1))


class Estimator:
    """Standard errors (or proportion counts) of one side's metrics."""

    def __init__(self, spec: ModelSpec, labels: Sequence[Any], positive: int | None, resamples: int) -> None:
        self.spec = spec
        self.labels = list(labels)
        self.positive = positive
        self.resamples = resamples

    def rng(self) -> np.random.Generator:
        # Seeded per call: the same rows give the same report, whatever was estimated before.
        return np.random.default_rng(self.spec.training.seed)

    # -------------------------------------------------------------------------------- from rows
    def from_rows(self, rows: Rows, names: Sequence[str], *, size: float | None = None) -> dict[str, Estimate]:
        """Estimates for ``size`` rows like these (default: as many as there are).

        A larger ``size``: the rows are a uniform sample of a larger set (a stored holdout
        sample); a smaller one: the rows pool both sides, and the spread is wanted at one side's size.
        """
        n = len(rows)
        factor = 1.0 if size is None or n == 0 else size / n
        if self.spec.task == "regression":
            return {name: estimate.scaled(factor) for name, estimate in self._regression(rows, names).items()}
        counts = confusion_counts(rows, len(self.labels))
        out = self.from_confusion(counts, names, scale_to=counts.sum() * factor)
        if rows.proba is not None:
            scored = {"roc_auc": self._auc, "log_loss": self._log_loss}
            for name, estimate in scored.items():
                value = estimate(rows) if name in names else None
                if value is not None:
                    out[name] = value.scaled(factor)
        return out

    def from_confusion(
        self, counts: np.ndarray, names: Sequence[str], *, scale_to: float | None = None
    ) -> dict[str, Estimate]:
        """accuracy, precision, recall and F1 from a confusion matrix (``scale_to`` rows: its size)."""
        total = float(counts.sum())
        if total <= 0:
            return {}
        size = total if scale_to is None else float(scale_to)
        out: dict[str, Estimate] = {}
        diag = np.diagonal(counts)
        if "accuracy" in names:
            out["accuracy"] = Estimate(se=None, method="wilson", successes=diag.sum() / total * size, trials=size)
        binary = self.positive is not None
        if binary:
            p = self.positive
            assert p is not None
            tp, predicted, actual = counts[p, p], counts[:, p].sum(), counts[p, :].sum()
            share = size / total
            if "precision" in names and predicted > 0:
                out["precision"] = Estimate(se=None, method="wilson", successes=tp * share, trials=predicted * share)
            if "recall" in names and actual > 0:
                out["recall"] = Estimate(se=None, method="wilson", successes=tp * share, trials=actual * share)
        resampled = ("f1",) if binary else ("precision", "recall", "f1")
        wanted = [n for n in resampled if n in names]
        if wanted:
            # Resampling N rows is drawing N rows' cells from the observed cell shares.
            draws = (
                self.rng()
                .multinomial(round(size), counts.ravel() / total, size=self.resamples)
                .reshape(self.resamples, *counts.shape)
            )
            metrics = _confusion_metrics(draws.astype(np.float64), self.positive)
            for name in wanted:
                out[name] = Estimate(se=_spread(metrics[name]), method="bootstrap (confusion matrix)")
        return out

    def _auc(self, rows: Rows) -> Estimate | None:
        assert rows.proba is not None and rows.true_codes is not None
        codes = rows.true_codes
        if self.positive is not None:
            positive = codes == self.positive
            if positive.sum() < 2 or (~positive).sum() < 2:
                return None
            return Estimate(se=math.sqrt(delong_variance(rows.proba[:, self.positive], positive)), method="delong")
        known = codes >= 0
        if known.sum() < 3 or len(np.unique(codes[known])) < len(self.labels):
            return None
        if np.bincount(codes[known], minlength=len(self.labels)).min() < 2:
            return None
        variance = ovr_macro_auc_variance(rows.proba[known], codes[known])
        return Estimate(se=math.sqrt(variance), method="delong (one-vs-rest macro)")

    def _log_loss(self, rows: Rows) -> Estimate | None:
        assert rows.proba is not None and rows.true_codes is not None
        known = rows.true_codes >= 0
        if known.sum() < 2:
            return None
        proba = rows.proba[known]
        totals = proba.sum(axis=1, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            normalised = np.where(totals > 0, proba / totals, 1.0 / proba.shape[1])
        chosen = np.clip(normalised[np.arange(len(proba)), rows.true_codes[known]], EPS, 1 - EPS)
        losses = -np.log(chosen)
        return Estimate(se=float(np.std(losses, ddof=1) / math.sqrt(len(losses))), method="mean (s/sqrt(n))")

    def _regression(self, rows: Rows, names: Sequence[str]) -> dict[str, Estimate]:
        y = rows.y_true.astype(np.float64)
        error = rows.y_pred.astype(np.float64) - y
        n = len(y)
        if n < 3:
            return {}
        # Rows in a canonical order: the report does not depend on the order labels arrived in.
        order = np.lexsort((y, error))
        y, error = y[order], error[order]
        rng = self.rng()
        factor = 1.0
        if n > MAX_BOOTSTRAP_ROWS:
            keep = np.sort(rng.choice(n, size=MAX_BOOTSTRAP_ROWS, replace=False))
            y, error, factor = y[keep], error[keep], n / MAX_BOOTSTRAP_ROWS
            n = MAX_BOOTSTRAP_ROWS
        # Every statistic is a function of four sums, so a resample is its count of each row
        # (a row of W) and all resamples' sums are one product W @ [e², |e|, y, y²].
        y_mean = float(y.mean())
        centred = y - y_mean  # sums of squares from centred values: no cancellation
        columns = np.column_stack([error * error, np.abs(error), centred, centred * centred])
        sums = np.empty((self.resamples, 4))
        block = max(1, BOOTSTRAP_BLOCK // n)
        for start in range(0, self.resamples, block):
            size = min(block, self.resamples - start)
            index = rng.integers(0, n, size=(size, n)) + (np.arange(size) * n)[:, None]
            counts = np.bincount(index.ravel(), minlength=size * n).reshape(size, n)
            sums[start : start + size] = counts @ columns
        sse, sae, sy, syy = sums.T
        sst = syy - sy * sy / n
        with np.errstate(divide="ignore", invalid="ignore"):
            draws = {"rmse": np.sqrt(sse / n), "mae": sae / n, "r2": np.where(sst > 0, 1 - sse / sst, np.nan)}
        out = {}
        for name in ("rmse", "mae", "r2"):
            if name in names:
                se = _spread(draws[name])
                out[name] = Estimate(se=None if se is None else se / math.sqrt(factor), method="bootstrap (rows)")
        return out

    # ------------------------------------------------------------------ holdout without its rows
    def hanley_mcneil(self, auc: float, counts: np.ndarray) -> Estimate | None:
        """ROC AUC of a binary holdout known only by its confusion matrix (class counts)."""
        if self.positive is None:
            return None
        positives = float(counts[self.positive, :].sum())
        negatives = float(counts.sum() - positives)
        if positives < 2 or negatives < 2:
            return None
        return Estimate(se=math.sqrt(hanley_mcneil_variance(auc, positives, negatives)), method="hanley-mcneil")


# ---------------------------------------------------------------------------------------- the holdout
@dataclass
class Holdout:
    """What is known of the registered side: the holdout the registered metrics were measured on.

    Best: its labelled rows (a uniform sample of at most :data:`mlops.training.holdout.HOLDOUT_SAMPLE_ROWS`,
    with the predictions and probabilities), stored at registration by
    :func:`mlops.training.holdout.holdout_document`. Older
    versions: the confusion matrix of their evaluation, or only their holdout size. Where a
    metric's holdout spread is not known, it is taken as the window's at the holdout's size
    (the same rows' spread is what the comparison assumes when nothing changed).
    """

    rows: int | None = None
    labels: list[Any] | None = None
    predictions: list[Any] | None = None
    probabilities: list[list[float]] | None = None
    classes: list[Any] | None = None
    confusion_labels: list[Any] | None = None
    confusion: list[list[float]] | None = None

    @classmethod
    def from_documents(
        cls, predictions: Mapping[str, Any] | None = None, evaluation: Mapping[str, Any] | None = None
    ) -> Holdout:
        """From a version's ``predictions.json`` (:func:`holdout_document`) and ``evaluation.json``."""
        holdout = cls()
        if evaluation is not None:
            inner = evaluation.get("evaluation", evaluation)
            if isinstance(inner, Mapping):
                if isinstance(inner.get("rows"), int):
                    holdout.rows = int(inner["rows"])
                matrix = inner.get("confusion_matrix")
                if isinstance(matrix, Mapping) and matrix.get("labels") and matrix.get("matrix"):
                    holdout.confusion_labels = list(matrix["labels"])
                    holdout.confusion = [list(map(float, row)) for row in matrix["matrix"]]
        if predictions is not None:
            stored = predictions.get("predictions")
            rows = predictions.get("holdout_rows", predictions.get("rows"))
            if isinstance(rows, int) and rows > 0:
                holdout.rows = rows
            elif holdout.rows is None and isinstance(stored, list) and stored:
                holdout.rows = len(stored)
            labels = predictions.get("labels")
            if isinstance(labels, list) and isinstance(stored, list) and len(labels) == len(stored) and labels:
                holdout.labels, holdout.predictions = labels, stored
                proba = predictions.get("probabilities")
                if isinstance(proba, list) and len(proba) == len(labels) and predictions.get("classes"):
                    holdout.probabilities, holdout.classes = proba, list(predictions["classes"])
        return holdout

    @property
    def basis(self) -> str:
        if self.labels is not None:
            sample = len(self.labels)
            kept = "" if self.rows is None or sample >= self.rows else f" (a {sample:,}-row sample)"
            scores = " and probabilities" if self.probabilities is not None else ""
            return f"the holdout's {self.rows or sample:,} labelled rows with their predictions{scores}{kept}"
        if self.confusion is not None:
            return f"the holdout's confusion matrix ({self.rows or 0:,} rows)"
        if self.rows:
            return f"the holdout's size ({self.rows:,} rows); its spread taken as the window's"
        return "nothing recorded: the holdout is taken to be as large as the window"


# -------------------------------------------------------------------------------------------- judging
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


def fieller(
    current: float, registered: float, se_current: float, se_registered: float, z: float
) -> tuple[float, float | None]:
    """Fieller's interval for ``current / registered`` (independent estimates), as ``ratio - 1``.

    The ratios ``r`` with ``(current - r * registered)^2 <= z^2 (se_c^2 + r^2 se_r^2)``; each end a
    one-sided bound at ``Phi(z)``. When the registered value is not itself clearly above zero the
    set is unbounded: ``(-1, None)``, nothing can be shown.
    """
    a = registered**2 - (z * se_registered) ** 2
    if a <= 0:
        return -1.0, None
    root = current**2 * se_registered**2 + registered**2 * se_current**2 - (z * se_current * se_registered) ** 2
    spread = z * math.sqrt(max(root, 0.0))
    low, high = (current * registered - spread) / a, (current * registered + spread) / a
    return max(low, 0.0) - 1.0, high - 1.0


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
