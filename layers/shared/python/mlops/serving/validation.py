"""The column-wise check of request records against a spec (numpy, no pydantic), and datetimes in range."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from mlops.spec.view import FeatureType, FeatureView, SpecView
from mlops.training.onnx_model import utc_datetime  # the datetime range a model takes

if TYPE_CHECKING:
    from mlops.spec.model import Feature, ModelSpec

# Numbers a model can take: scikit-learn's trees and the ONNX graph compute in float32, so a larger
# magnitude becomes infinity there (scikit-learn then refuses the whole batch).
FLOAT32_MAX = float(np.finfo(np.float32).max)


def iso_datetime(value: str) -> str:
    utc_datetime(value)
    return value


def numeric_bounds(feature: Feature | FeatureView) -> tuple[float, float]:
    """The spec's bounds of a number feature (as written), narrowed to what float32 holds."""
    low: float = -FLOAT32_MAX if feature.min is None or feature.min < -FLOAT32_MAX else feature.min
    high: float = FLOAT32_MAX if feature.max is None or feature.max > FLOAT32_MAX else feature.max
    return low, high


_NONE = type(None)


class RecordValidator:
    """Column-wise check of request records against a spec: accepts exactly what is surely valid.

    :meth:`validate` returns the records as the pydantic record model would dump them (every
    feature a key, floats as float) when every value is of the JSON type its feature takes and
    within its constraints; otherwise None, and the caller asks pydantic, which names each problem.
    It never accepts what the pydantic model refuses (a property test checks the two agree).
    """

    def __init__(self, spec: ModelSpec | SpecView) -> None:
        self.names = [f.name for f in spec.features]
        self.known = frozenset(self.names)
        optional = {f.name for f in spec.features if f.nullable or f.type is FeatureType.STRING}
        self.required = frozenset(self.known - optional)
        self.checks: list[tuple[str, Callable[[list[Any]], bool]]] = [
            (f.name, _column_check(f, f.name in optional)) for f in spec.features
        ]
        self.floats = [f.name for f in spec.features if f.type is FeatureType.FLOAT]

    def validate(self, records: list[Any]) -> list[dict[str, Any]] | None:
        """The records ready for the model, or None when any record needs a closer look.

        Records that hold every feature are returned themselves (ints of float features turned
        into floats in place); the others as new dicts with the missing optional features None.
        """
        known, required = self.known, self.required
        for record in records:
            if type(record) is not dict:
                return None
            keys = record.keys()
            if not (keys <= known and keys >= required):
                return None
        for name, check in self.checks:
            if not check([r.get(name) for r in records]):
                return None
        names, floats, count = self.names, self.floats, len(self.names)
        # A record with every feature is used as it is (the request's own dict); others are completed.
        out = [record if len(record) == count else {name: record.get(name) for name in names} for record in records]
        for name in floats:  # an int given for a float feature is a float, as pydantic dumps it
            for row in out:
                if type(row[name]) is int:
                    row[name] = float(row[name])
        return out


def _column_check(feature: Feature | FeatureView, optional: bool) -> Callable[[list[Any]], bool]:
    """A function that says whether one feature's values (a column) are surely valid."""
    kind = feature.type
    low, high = numeric_bounds(feature)
    extra: set[type] = {_NONE} if optional else set()
    pattern = re.compile(feature.regex) if feature.regex else None

    def typed(values: list[Any], allowed: set[type]) -> list[Any] | None:
        kinds = set(map(type, values))
        if not kinds <= allowed | extra:
            return None
        return [v for v in values if v is not None] if _NONE in kinds else values

    if kind is FeatureType.FLOAT:

        def check_float(values: list[Any]) -> bool:
            present = typed(values, {float, int})
            if present is None:
                return False
            if not present:
                return True
            try:
                column = np.asarray(present, dtype=np.float64)
            except (OverflowError, ValueError):
                return False
            if not np.isfinite(column).all():
                return False
            return bool(column.min() >= low and column.max() <= high)

        return check_float
    if kind is FeatureType.INT:
        if feature.allowed:
            choices = frozenset(int(v) for v in feature.allowed if not isinstance(v, bool))

            def check_int_choice(values: list[Any]) -> bool:
                present = typed(values, {int})
                return present is not None and all(v in choices for v in present)

            return check_int_choice

        def check_int(values: list[Any]) -> bool:
            present = typed(values, {int})
            if present is None:
                return False
            if not present:
                return True
            return min(present) >= low and max(present) <= high

        return check_int
    if kind is FeatureType.BOOL:
        return lambda values: typed(values, {bool}) is not None
    if kind is FeatureType.DATETIME:

        def check_datetime(values: list[Any]) -> bool:
            present = typed(values, {str})
            if present is None:
                return False
            try:
                for text in set(present):
                    iso_datetime(text)
            except ValueError:
                return False
            return True

        return check_datetime
    if kind is FeatureType.CATEGORY and feature.allowed:
        # Literal values match by value and JSON type here (True is not 1); pydantic judges the rest.
        choices_typed = frozenset((type(v), v) for v in feature.allowed)

        def check_choice(values: list[Any]) -> bool:
            if not optional and None in values:
                return False
            try:
                return all((type(v), v) in choices_typed for v in values if v is not None)
            except TypeError:  # an unhashable value (a list or an object)
                return False

        return check_choice

    def check_text(values: list[Any]) -> bool:
        present = typed(values, {str})
        if present is None:
            return False
        if pattern is not None:
            search = pattern.search
            return all(search(v) is not None for v in set(present))
        return True

    return check_text
