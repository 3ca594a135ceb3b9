"""What ``mlops spec init`` infers from one column: its type, nullability, allowed values or range; the task."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from mlops.data.spec_init.columns import MAX_CLASSES, SHOWN, Column
from mlops.data.validation import coerce
from mlops.errors import InputError

# Columns with at most this many distinct values list them in ``allowed`` (categories and
# integers); an integer target with at most this many is a classification target.
LOW_CARDINALITY = 20
# Ranges are the observed min/max widened by this share of the span on each side.
RANGE_MARGIN = 0.10

Task = Literal["classification", "regression"]

# Binary label pairs whose positive class is known; other binary targets take the rarer class.
_POSITIVE = {
    frozenset({"0", "1"}): "1",
    frozenset({"no", "yes"}): "yes",
    frozenset({"false", "true"}): "true",
    frozenset({"n", "y"}): "y",
    frozenset({"f", "t"}): "t",
}


@dataclass(frozen=True)
class Inferred:
    """One column of the spec, and the comment that says what was inferred."""

    name: str
    type: str
    nullable: bool
    comment: str
    allowed: list[Any] | None = None
    min: float | int | None = None
    max: float | int | None = None

    def entry(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"name": self.name, "type": self.type}
        if self.nullable:
            entry["nullable"] = True
        if self.allowed is not None:
            entry["allowed"] = self.allowed
        if self.min is not None:
            entry["min"] = self.min
        if self.max is not None:
            entry["max"] = self.max
        return entry


# ---------------------------------------------------------------------------------------- inferring
def _nice(value: float, resolution: float, up: bool) -> float:
    steps = value / resolution
    rounded = (math.ceil(steps - 1e-9) if up else math.floor(steps + 1e-9)) * resolution
    digits = max(0, -math.floor(math.log10(resolution)))
    return round(rounded, digits)


def widened_range(low: float, high: float, integer: bool) -> tuple[float | int, float | int]:
    """``low``/``high`` widened by :data:`RANGE_MARGIN` of the span, rounded outwards.

    The margin never takes a column without negative values below 0 (nor one without positive
    values above 0). A constant column is widened by the margin of its value (1 when it is 0).

    Examples
    --------
    >>> widened_range(0.0, 2654.3, integer=False)
    (0, 2920)
    >>> widened_range(1.0, 10.0, integer=True)
    (0, 11)
    >>> widened_range(-5.0, 5.0, integer=False)
    (-6, 6)
    """
    span = high - low
    margin = RANGE_MARGIN * (span if span > 0 else (abs(high) or 1.0))
    lo, hi = low - margin, high + margin
    if integer:
        lo_i, hi_i = math.floor(lo), math.ceil(hi)
        return (max(lo_i, 0) if low >= 0 else lo_i), (min(hi_i, 0) if high <= 0 else hi_i)
    # Three significant digits of the span, but never finer than float64 can hold at this magnitude.
    finest = max(span, margin, abs(low) * 1e-12, abs(high) * 1e-12, 1e-300)
    resolution = 10.0 ** (math.floor(math.log10(finest)) - 2)
    lo, hi = min(_nice(lo, resolution, up=False), low), max(_nice(hi, resolution, up=True), high)
    if low >= 0:
        lo = max(lo, 0.0)
    if high <= 0:
        hi = min(hi, 0.0)
    return _plain(lo), _plain(hi)


def _plain(value: float) -> float | int:
    return int(value) if float(value).is_integer() and abs(value) < 2**53 else value


def _listing(values: list[Any], limit: int = 6) -> str:
    shown = [repr(v) if isinstance(v, str) else str(v) for v in values[:limit]]
    return ", ".join(shown) + (f", ... ({len(values)} in all)" if len(values) > limit else "")


def number_text(value: float) -> str:
    return str(_plain(value)) if float(value).is_integer() else f"{value:.6g}"


def infer_feature(column: Column) -> Inferred:
    missing = f"; {column.missing:,} missing" if column.missing else ""
    nullable = column.missing > 0
    if column.present == 0:
        return Inferred(
            column.name,
            "string",
            True,
            f"every value is missing ({column.rows:,} rows): typed string, which the model does not use",
        )
    seen = f"{column.distinct:,} value{'s' if column.distinct != 1 else ''} seen"
    if column.texts == 0:
        integer = column.integers == column.numbers
        if integer and column.distinct <= LOW_CARDINALITY and column.counts is not None:
            allowed = [int(v) for v in column.sorted_values()]
            return Inferred(
                column.name,
                "int",
                nullable,
                f"int, {seen}{missing}; kept a number (see the note at the top)",
                allowed=allowed,
            )
        low, high = widened_range(column.low, column.high, integer)
        kind = "int" if integer else "float"
        return Inferred(
            column.name,
            kind,
            nullable,
            f"{kind}, {seen}, {number_text(column.low)} to {number_text(column.high)}{missing}",
            min=low,
            max=high,
        )
    if column.numbers == 0 and column.booleans == column.texts:
        return Inferred(column.name, "bool", nullable, f"bool, {seen}{missing}")
    if column.numbers == 0 and column.datetimes == column.texts and column.first is not None:
        first, last = (np.datetime_as_string(d, unit="s") for d in (column.first, column.last or column.first))
        return Inferred(column.name, "datetime", nullable, f"datetime (ISO 8601), {first} to {last}{missing}")
    mixed = ""
    if column.numbers:
        mixed = (
            f"; {column.numbers:,} values are numbers but {column.texts:,} are not"
            f" (e.g. {_listing(column.shown, SHOWN)}), so it is read as text"
        )
    if column.distinct <= LOW_CARDINALITY and column.counts is not None:
        allowed_text = column.sorted_values()
        return Inferred(
            column.name,
            "category",
            nullable,
            f"category, {seen}{missing}{mixed}",
            allowed=allowed_text,
        )
    if column.distinct == column.present:
        return Inferred(
            column.name,
            "string",
            nullable,
            f"string: every one of the {column.present:,} values differs (an identifier; the model does not use"
            f" string features){missing}{mixed}",
        )
    return Inferred(
        column.name,
        "category",
        nullable,
        f"category, {seen}: more than {LOW_CARDINALITY}, so no allowed list{missing}{mixed}",
    )


def infer_task(column: Column, task: Task | None) -> tuple[Task, str]:
    if column.present == 0:
        raise InputError(f"target {column.name!r}: every value is missing ({column.rows:,} rows)")
    if column.distinct < 2:
        only = next(iter(column.counts)) if column.counts else "?"
        raise InputError(
            f"target {column.name!r} has one value ({only!r} in {column.present:,} rows): a model needs at least two"
        )
    numeric = column.texts == 0
    integer = numeric and column.integers == column.numbers
    if task is None:
        if not numeric:
            task, reason = "classification", f"inferred: {column.name!r} holds text ({column.distinct:,} values)"
        elif integer and column.distinct <= LOW_CARDINALITY:
            task = "classification"
            reason = (
                f"inferred: {column.name!r} holds {column.distinct} distinct integers"
                f" (at most {LOW_CARDINALITY}: classes)"
            )
        else:
            kind = "integers" if integer else "numbers"
            task = "regression"
            reason = f"inferred: {column.name!r} holds {column.distinct:,} distinct {kind}"
        reason += "; --task sets it"
    else:
        reason = "given by --task"
    if task == "classification" and (column.counts is None or column.distinct > MAX_CLASSES):
        raise InputError(
            f"target {column.name!r} has {column.distinct:,} distinct values: classification takes at most"
            f" {MAX_CLASSES} classes" + (" (use --task regression for a number)" if numeric else "")
        )
    if task == "regression" and not numeric:
        raise InputError(
            f"target {column.name!r} holds values that are not numbers (e.g. {_listing(column.shown, SHOWN)}):"
            " a regression target must be numbers (use --task classification)"
        )
    return task, reason


def target_classes(column: Column) -> list[Any]:
    values = column.sorted_values()
    if column.texts == 0 and column.integers == column.numbers:
        return [int(v) for v in values]
    return values


def positive_class(column: Column, classes: list[Any]) -> tuple[Any, str]:
    assert column.counts is not None
    by_label = {coerce.label(c): c for c in classes}
    known = _POSITIVE.get(frozenset(label.lower() for label in by_label))
    if known is not None:
        positive = next(c for label, c in by_label.items() if label.lower() == known)
        return positive, f"positive class {positive!r}: the usual event of a {'/'.join(map(str, classes))} label"
    counts = {c: column.counts[str(c)] if str(c) in column.counts else _count(column, c) for c in classes}
    rarest = min(classes, key=lambda c: (counts[c], -classes.index(c)))
    share = counts[rarest] / max(column.present, 1)
    return rarest, f"positive class {rarest!r}: the rarer class ({share:.1%} of the labels); change it if needed"


def _count(column: Column, value: Any) -> int:
    assert column.counts is not None
    return sum(n for text, n in column.counts.items() if coerce.label(text) == coerce.label(value))


def model_name(path: Path) -> str:
    """A model name from a file name: ``Bike Share 2024.csv`` -> ``bike-share-2024``."""
    stem = path.name.split(".")[0].lower()
    name = re.sub(r"[^a-z0-9]+", "-", stem).strip("-")
    if not name or not name[0].isalpha():
        name = f"model-{name}".rstrip("-")
    return name[:63].rstrip("-")
