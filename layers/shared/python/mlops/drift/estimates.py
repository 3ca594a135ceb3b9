"""One side of a performance comparison: a set of labelled rows, its metrics and their standard errors
(:class:`Estimator`: exact where a formula exists, a seeded bootstrap otherwise), and the registered
holdout (:class:`Holdout`: what is known of the rows the registered metrics were measured on).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mlops.drift.intervals import delong_variance, hanley_mcneil_variance, ovr_macro_auc_variance
from mlops.spec.model import ModelSpec
from mlops.values import canonical_label

# A bootstrap of more rows than this resamples a uniform subsample of them and scales its spread by
# sqrt(m / n) (the statistics are smooth: their spread falls as 1 / sqrt(n)); 1,000 resamples of
# 2,000 rows took 0.13 s on two busy cores.
MAX_BOOTSTRAP_ROWS = 2_000


# Indices drawn per block of bootstrap resamples (memory: 8 bytes each).
BOOTSTRAP_BLOCK = 2_000_000


# Probabilities are clipped as scikit-learn's log_loss clips them.
EPS = float(np.finfo(np.float64).eps)


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
