"""Decision thresholds of binary classifiers: the one labelling rule, and the choice on training rows.

The rule (:func:`threshold_labels`): a row is labelled the positive class when the model's
probability of it, rounded to ``PROBABILITY_DECIMALS`` as the platform reports probabilities, is
at or above the threshold; otherwise the other class. Evaluation and the champion comparison
(:func:`mlops.training.evaluation.evaluate`), the holdout predictions kept for monitoring
(:func:`mlops.training.holdout.holdout_document`), the inference function
(:func:`mlops.serving.predictors.load_predictor`) and performance monitoring
(:func:`mlops.drift.performance.performance_drift`) all apply it, so a served label always agrees
with the probability served beside it, and monitoring recomputes exactly the labels served.

The choice (:func:`choose_threshold`, for ``training.threshold: {objective: ...}``): out-of-fold
probabilities of the training rows (``cross_val_predict`` over stratified, seeded folds of the
rows the model is fitted on), never the holdout the gate scores, so the holdout metrics stay an
unbiased estimate of the threshold's effect. Objectives: ``max_f1``; ``min_precision`` (the
highest recall among thresholds with precision at least the value); ``min_recall`` (the highest
precision among thresholds with recall at least the value). When no threshold reaches the
objective, the closest one is kept with ``met`` False and the gate refuses the candidate.

A registered version records its threshold in the registry tag ``decision_threshold`` (JSON:
:meth:`DecisionThreshold.to_dict`), which the inference function reads; the positive class is in
the record, so serving needs no more of the spec.

numpy only at import: the inference function imports this module on its cold path (scikit-learn
is imported by :func:`out_of_fold_probabilities` alone).

Examples
--------
>>> rule = DecisionThreshold(value=0.3, positive_class="Yes")
>>> threshold_labels(np.array([[0.75, 0.25], [0.7, 0.3], [0.1, 0.9]]), ["No", "Yes"], rule).tolist()
['No', 'Yes', 'Yes']
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from mlops.errors import InputError
from mlops.values import canonical_label

if TYPE_CHECKING:
    from mlops.spec.model import ModelSpec

THRESHOLD_TAG = "decision_threshold"
# Probabilities are reported (served, captured, kept for monitoring) with this many decimals;
# the rule reads them so, so a label can be checked against the probability beside it.
PROBABILITY_DECIMALS = 6
OBJECTIVES = ("max_f1", "min_precision", "min_recall")


@dataclass(frozen=True)
class DecisionThreshold:
    """A binary classifier's threshold and how it was set.

    Attributes
    ----------
    value
        The positive class is predicted when its probability is at or above this.
    positive_class
        The class the probability is of (as the model knows it).
    method
        ``fixed`` (the spec's number) or the objective it was chosen for.
    objective_value
        The precision or recall asked for (``min_precision``, ``min_recall``).
    met
        Whether the chosen threshold reaches the objective on the rows it was chosen on.
    chosen_on
        Where it was chosen: ``rows``, ``folds``, ``positives`` and ``precision``, ``recall``,
        ``f1`` there (out-of-fold predictions of the training rows); None when fixed.
    holdout
        ``precision``, ``recall`` and ``f1`` at the threshold on the holdout (the Evaluate step).
    """

    value: float
    positive_class: Any
    method: str = "fixed"
    objective_value: float | None = None
    met: bool = True
    chosen_on: dict[str, Any] | None = None
    holdout: dict[str, Any] | None = field(default=None, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def tag(self) -> str:
        """The registry tag's text (compact JSON)."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), default=str)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> DecisionThreshold | None:
        if not data or data.get("value") is None:
            return None
        known = {name: data[name] for name in cls.__dataclass_fields__ if name in data}
        return cls(**{**known, "value": float(data["value"])})

    @classmethod
    def from_tags(cls, tags: Mapping[str, Any] | None) -> DecisionThreshold | None:
        """A version's threshold from its registry tags (None: the model's own labels, arg-max)."""
        text = (tags or {}).get(THRESHOLD_TAG)
        if not text:
            return None
        return cls.from_dict(json.loads(text))

    def with_holdout(self, metrics: Mapping[str, Any]) -> DecisionThreshold:
        return replace(self, holdout={name: metrics.get(name) for name in ("precision", "recall", "f1")})

    def objective(self) -> str:
        """The objective in words (``precision >= 0.9``), or ``fixed``."""
        if self.method == "max_f1":
            return "highest F1"
        if self.method in ("min_precision", "min_recall"):
            kept, kind = ("recall", "precision") if self.method == "min_precision" else ("precision", "recall")
            return f"highest {kept} with {kind} >= {self.objective_value:g}"
        return "fixed in the spec"

    def describe(self) -> str:
        """One line: the value, the positive class, how it was chosen and what it gives."""
        positive = self.positive_class
        text = f"{self.value:g} (P({positive}) at or above it predicts {positive}; {self.objective()}"
        if self.chosen_on:
            chosen = self.chosen_on
            if chosen.get("in_sample"):  # an imported model: its own predictions, it cannot be refitted
                text += f", chosen on the imported model's predictions of {chosen.get('rows')} training rows"
                text += f" (not out-of-fold): {_scores(chosen)}"
            else:
                text += (
                    f", chosen on out-of-fold predictions of {chosen.get('rows')} training rows"
                    f" ({chosen.get('folds')} folds): {_scores(chosen)}"
                )
            if not self.met:
                text += "; the objective is NOT met"
        text += ")"
        if self.holdout:
            text += f"; holdout: {_scores(self.holdout)}"
        return text


def _scores(values: Mapping[str, Any]) -> str:
    return ", ".join(
        f"{name} {values[name]:.4g}" if isinstance(values.get(name), int | float) else f"{name} n/a"
        for name in ("precision", "recall", "f1")
    )


def positive_column(classes: Sequence[Any] | np.ndarray, positive: Any) -> int:
    """The column of ``positive`` among ``classes`` (labels compared as canonical text).

    Raises
    ------
    ValueError
        ``positive`` is not one of two classes.
    """
    wanted = canonical_label(positive)
    texts = [canonical_label(c.item() if isinstance(c, np.generic) else c) for c in classes]
    if len(texts) != 2 or wanted not in texts:
        raise ValueError(f"a decision threshold needs two classes including {positive!r}; the model has {texts}")
    return texts.index(wanted)


def reported(probabilities: np.ndarray) -> np.ndarray:
    """Probabilities as the platform reports them (rounded to ``PROBABILITY_DECIMALS``)."""
    return np.round(np.asarray(probabilities, dtype=np.float64), PROBABILITY_DECIMALS)


def positive_mask(probabilities: Any, classes: Sequence[Any] | np.ndarray, threshold: DecisionThreshold) -> np.ndarray:
    """True for each row whose reported probability of the positive class is at or above the threshold.

    ``probabilities`` has one column per class, in ``classes`` order.
    """
    proba = np.asarray(probabilities, dtype=np.float64)
    if proba.ndim != 2 or proba.shape[1] != len(classes):
        raise ValueError(f"probabilities need one column per class ({len(classes)}), got shape {proba.shape}")
    column = positive_column(classes, threshold.positive_class)
    return np.asarray(reported(proba[:, column]) >= threshold.value, dtype=bool)


def threshold_labels(
    probabilities: Any, classes: Sequence[Any] | np.ndarray, threshold: DecisionThreshold
) -> np.ndarray:
    """One label per row: the positive class where its reported probability is at or above the threshold.

    ``probabilities`` has one column per class, in ``classes`` order. The labels keep the type of
    ``classes`` (an array of ``classes_`` stays int or str).
    """
    positive = positive_mask(probabilities, classes, threshold)
    column = positive_column(classes, threshold.positive_class)
    return np.asarray(classes)[np.where(positive, column, 1 - column)]


# ----------------------------------------------------------------------------------- the choice
def rates(scores: np.ndarray, is_positive: np.ndarray) -> dict[str, np.ndarray]:
    """Precision, recall and F1 at every distinct score used as threshold (highest threshold first)."""
    order = np.argsort(-scores, kind="stable")
    ranked, hits = scores[order], is_positive[order].astype(np.int64)
    # the last row of each run of equal scores: a threshold labels the whole run at once
    ends = np.flatnonzero(np.r_[ranked[1:] != ranked[:-1], True])
    tp = np.cumsum(hits)[ends]
    predicted = ends + 1
    positives = int(hits.sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = tp / predicted
        recall = tp / positives if positives else np.full(len(tp), np.nan)
        f1 = 2 * tp / (predicted + positives)
    return {
        "threshold": ranked[ends],
        "tp": tp,
        "predicted": predicted,
        "precision": precision,
        "recall": recall,
        "f1": f1,
    }


def choose(
    scores: np.ndarray, is_positive: np.ndarray, objective: str, value: float | None
) -> tuple[int, bool, dict[str, np.ndarray]]:
    """The index (into :func:`rates`) of the threshold an objective picks, and whether it is met.

    ``scores`` are reported probabilities of the positive class, ``is_positive`` the truth.
    """
    table = rates(scores, is_positive)
    precision, recall, f1 = table["precision"], table["recall"], table["f1"]
    # Ties go to the higher threshold (fewer positive predictions), the first in the table's order.
    if objective == "max_f1":
        return int(np.argmax(f1)), True, table
    if objective not in ("min_precision", "min_recall") or value is None:
        raise ValueError(f"unknown threshold objective {objective!r} (one of {', '.join(OBJECTIVES)})")
    bound, kept = (precision, recall) if objective == "min_precision" else (recall, precision)
    feasible = bound >= value - 1e-12
    if feasible.any():
        best = np.max(kept[feasible])
        candidates = np.flatnonzero(feasible & (kept >= best - 1e-12))
        return int(candidates[np.argmax(bound[candidates])]), True, table
    # Unreachable: the threshold closest to the objective, best on the other rate among those.
    closest = np.flatnonzero(bound >= np.max(bound) - 1e-12)
    return int(closest[np.argmax(kept[closest])]), False, table


def out_of_fold_probabilities(
    pipeline: Any, x: Any, y: np.ndarray, folds: int, seed: int
) -> tuple[np.ndarray, list[Any]]:
    """Each training row's class probabilities from a copy of the pipeline fitted without it.

    Returns the probabilities (columns in sorted class order, as ``classes_``) and those classes.
    """
    # Here, not at the top: the inference function imports this module and never fits.
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    proba = cross_val_predict(pipeline, x, y, cv=splitter, method="predict_proba")
    return np.asarray(proba, dtype=np.float64), [_plain(c) for c in np.unique(y)]


def choose_threshold(pipeline: Any, x: Any, y: np.ndarray, spec: ModelSpec) -> DecisionThreshold | None:
    """The spec's decision threshold for a model fitted on ``x``, ``y`` (the training rows).

    A fixed threshold is taken as it is. An objective is applied to out-of-fold probabilities of
    these rows (``pipeline`` unfitted: each fold fits a copy).

    Raises
    ------
    InputError
        The training rows have fewer than two rows of a class (no stratified folds).
    """
    setting = spec.training.threshold
    if setting is None:
        return None
    positive = _model_positive(spec, y)
    if isinstance(setting, float | int):
        return DecisionThreshold(value=float(setting), positive_class=positive)
    is_positive, smallest = _positive_rows(y, positive)
    folds = min(setting.folds, smallest)
    proba, classes = out_of_fold_probabilities(pipeline, x, y, folds, spec.training.seed)
    scores = reported(proba[:, positive_column(classes, positive)])
    index, met, table = choose(scores, is_positive, setting.objective, setting.value)
    return DecisionThreshold(
        value=float(table["threshold"][index]),
        positive_class=positive,
        method=setting.objective,
        objective_value=setting.value,
        met=met,
        chosen_on={
            "rows": len(scores),
            "folds": folds,
            "positives": int(is_positive.sum()),
            **{name: _finite(table[name][index]) for name in ("precision", "recall", "f1")},
        },
    )


def _positive_rows(y: np.ndarray, positive: Any) -> tuple[np.ndarray, int]:
    """Which training rows are positive, and the smaller class's count (at least 2, or InputError)."""
    is_positive = np.asarray([canonical_label(v) for v in y.tolist()]) == canonical_label(positive)
    smallest = int(min(is_positive.sum(), (~is_positive).sum()))
    if smallest < 2:
        raise InputError(
            f"training.threshold: choosing a threshold needs at least 2 training rows of each class; the training"
            f" rows have {smallest} of {'the positive class' if is_positive.sum() == smallest else 'the other class'}"
        )
    return is_positive, smallest


def choose_threshold_for_fitted(model: Any, x: Any, y: np.ndarray, spec: ModelSpec) -> DecisionThreshold | None:
    """The spec's decision threshold for a model fitted elsewhere (an import), chosen on ``x``, ``y``.

    ``x``, ``y`` are the dataset version's training rows (the split's training side), never the
    holdout the gate scores. The model cannot be refitted on folds, so an objective reads its own
    probabilities of those rows: if it was trained on them they are in-sample and optimistic, which
    ``chosen_on`` says (``folds`` 0, ``in_sample`` True); the holdout metrics at the threshold,
    which the gate judges, are not affected by the choice.

    Raises
    ------
    InputError
        The training rows have fewer than two rows of a class, or the model gives no probabilities.
    """
    setting = spec.training.threshold
    if setting is None:
        return None
    positive = _model_positive(spec, y)
    if isinstance(setting, float | int):
        return DecisionThreshold(value=float(setting), positive_class=positive)
    is_positive, _ = _positive_rows(y, positive)
    if not callable(getattr(model, "predict_proba", None)):
        raise InputError(
            f"training.threshold: {setting.objective} needs class probabilities; the imported model gives none"
        )
    classes = [_plain(c) for c in getattr(model, "classes_", [])]
    scores = reported(np.asarray(model.predict_proba(x), dtype=np.float64)[:, positive_column(classes, positive)])
    index, met, table = choose(scores, is_positive, setting.objective, setting.value)
    return DecisionThreshold(
        value=float(table["threshold"][index]),
        positive_class=positive,
        method=setting.objective,
        objective_value=setting.value,
        met=met,
        chosen_on={
            "rows": len(scores),
            "folds": 0,
            "in_sample": True,
            "positives": int(is_positive.sum()),
            **{name: _finite(table[name][index]) for name in ("precision", "recall", "f1")},
        },
    )


def _model_positive(spec: ModelSpec, y: np.ndarray) -> Any:
    """The spec's positive class as the model knows it (the value in ``y``, typed as fitted)."""
    wanted = canonical_label(spec.positive_class)
    for value in np.unique(y).tolist():
        if canonical_label(value) == wanted:
            return _plain(value)
    return spec.positive_class


def _finite(value: Any) -> float | None:
    number = float(value)
    return number if np.isfinite(number) else None


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
