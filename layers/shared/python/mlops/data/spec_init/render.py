"""The YAML text of an inferred spec, each inferred value with a comment that says why."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mlops.data.spec_init.columns import Column
from mlops.data.spec_init.rules import (
    LOW_CARDINALITY,
    RANGE_MARGIN,
    Inferred,
    Task,
    number_text,
    positive_class,
    target_classes,
    widened_range,
)

# ``row_count.min``: this many rows, or the file's row count when it has fewer.
MIN_ROWS = 100

ESTIMATOR: dict[str, str] = {
    "classification": "sklearn.ensemble.HistGradientBoostingClassifier",
    "regression": "sklearn.ensemble.HistGradientBoostingRegressor",
}
PARAMS: dict[str, Any] = {"max_iter": 200, "learning_rate": 0.1}
# A floor a useless model fails (0.5 is chance for ROC AUC, 0 is the mean for R²), not a target.
GATES: dict[str, tuple[str, str, float]] = {
    "classification": ("roc_auc", "roc_auc", 0.7),
    "regression": ("rmse", "r2", 0.5),
}
WIDTH = 100  # comment lines wrap here


# ---------------------------------------------------------------------------------------- rendering
def _flow(value: Any) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, sort_keys=False, allow_unicode=True, width=10**9)
    return text.removesuffix("\n...\n").strip()


def _comment(text: str, indent: str = "") -> str:
    """``# text``, wrapped at :data:`WIDTH` characters."""
    return "\n".join(
        textwrap.wrap(" ".join(text.split()), WIDTH, initial_indent=f"{indent}# ", subsequent_indent=f"{indent}# ")
    )


@dataclass(frozen=True)
class Plan:
    name: str
    path: Path
    rows: int
    columns: list[str]
    target: Column
    task: Task
    task_reason: str
    features: list[Inferred]


def render_spec(plan: Plan, duplicates: int | None) -> str:
    target = plan.target
    lines = [
        _comment(
            f"A starting spec inferred by `mlops spec init` from {plan.path.name} ({plan.rows:,} rows,"
            f" {len(plan.columns)} columns). Read it before you use it: the types, allowed values and"
            " ranges say what this file holds, not what the data may hold. Format: docs/spec-format.md."
        ),
        _comment(
            f"Inferred: nullable where a value is missing; allowed values for columns with at most"
            f" {LOW_CARDINALITY} distinct values; min/max are the observed range widened by {RANGE_MARGIN:.0%}"
            " of its span on each side (never below 0 for a column without negative values). Columns of"
            " whole numbers are int, a number to the model (hours, counts, bands and 0/1 flags keep their"
            " order); where the numbers are only labels, make them type: category, and requests then send"
            ' them as strings ("3").'
        ),
        f"name: {_flow(plan.name)}",
        f"description: {_flow(f'Predicts {target.name} (from {plan.path.name})')}",
        _comment(plan.task_reason),
        f"task: {plan.task}",
        "target:",
        f"  name: {_flow(target.name)}",
    ]
    if plan.task == "classification":
        classes = target_classes(target)
        lines.append(_comment(f"{len(classes)} classes seen in {target.present:,} labels", "  "))
        lines.append(f"  classes: {_flow(classes)}")
        if len(classes) == 2:
            positive, why = positive_class(target, classes)
            lines.append(_comment(why, "  "))
            lines.append(f"  positive_class: {_flow(positive)}")
    else:
        low, high = widened_range(target.low, target.high, target.integers == target.numbers)
        lines.append(_comment(f"observed {number_text(target.low)} to {number_text(target.high)}", "  "))
        lines += [f"  min: {_flow(low)}", f"  max: {_flow(high)}"]
    if target.missing:
        lines.append(
            _comment(
                f"WARNING: {target.missing:,} rows have no {target.name}: a training dataset needs every label,"
                " so this file fails validation until they are dropped",
                "  ",
            )
        )
    lines.append("features:")
    for feature in plan.features:
        lines.append(_comment(feature.comment, "  "))
        lines.append(f"  - {_flow(feature.entry())}")
    minimum = min(plan.rows, MIN_ROWS)
    lines += [
        _comment(f"{plan.path.name} has {plan.rows:,} rows; a dataset with fewer than {minimum:,} is refused"),
        f"row_count: {{min: {minimum}}}",
        _comment(
            "Histogram gradient boosting: handles missing values itself, fast on Lambda; params are a start."
            " Rows are split by a hash of their content (training.split, docs/training-pipeline.md)."
        ),
        "training:",
        f"  estimator: {ESTIMATOR[plan.task]}",
        f"  params: {_flow(PARAMS)}",
        "  test_size: 0.2",
        "  seed: 42",
    ]
    primary, metric, floor = GATES[plan.task]
    lines += [
        _comment(
            f"A floor that a useless model fails, not a target: raise {metric} once you know what this model reaches."
        ),
        "gates:",
        f"  primary_metric: {primary}",
        "  metrics:",
        f"    {metric}: {{min: {floor}}}",
        "  must_beat_champion: true",
        "approval:",
        "  required: true",
        "  timeout_hours: 72",
        "  four_eyes: true               # whoever uploaded the data cannot approve the model trained on it",
        "deployment:",
        "  strategy: all_at_once",
        "monitoring:",
        "  schedule: rate(1 day)",
        "  retrain_on_drift: false",
    ]
    if duplicates:
        lines += [
            _comment(
                f"{duplicates:,} rows of {plan.path.name} repeat an earlier row exactly: reported, not refused"
                " (make it error if repeats mean a broken export)"
            ),
            "validation:",
            "  duplicate_rows: warning",
        ]
    elif duplicates is None:
        lines += ["validation:", "  duplicate_rows: warning"]
    return "\n".join(lines) + "\n"
