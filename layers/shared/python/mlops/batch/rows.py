"""Input rows as request records: a CSV row's text typed by its feature, a JSON Lines row as sent.

A CSV row comes from the ItemReader as ``{header: text}``; each feature's text becomes the JSON
value the serving request models take (numbers, booleans, categories the spec writes as numbers),
and text a type cannot take is passed on as is so the serving validation names it. Columns the
spec does not name (an id, the target) are left out, as the training reader leaves them out.
The CLI's ``mlops predict --data FILE.csv`` types its records with the same :func:`csv_value`.

Examples
--------
>>> from mlops.spec.model import Feature
>>> csv_value("3", Feature(name="n", type="int"), frozenset({""}))
3
>>> csv_value("yes", Feature(name="b", type="bool"), frozenset({""}))
True
>>> csv_value("", Feature(name="x", type="float"), frozenset({""})) is None
True
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from mlops.spec.view import FeatureType
from mlops.values import FALSE_STRINGS, NA_STRINGS, TRUE_STRINGS, canonical_label

if TYPE_CHECKING:
    from mlops.spec.model import Feature, ModelSpec
    from mlops.spec.view import FeatureView, SpecView

MISSING = frozenset(NA_STRINGS)


def csv_value(text: str, feature: Feature | FeatureView, missing: frozenset[str] = MISSING) -> Any:
    """A CSV field as its feature's JSON type; text the type cannot take is returned as is."""
    if text in missing:
        return None
    kind = feature.type
    if kind in (FeatureType.FLOAT, FeatureType.INT):
        try:
            number = float(text)
        except ValueError:
            return text
        if kind is FeatureType.INT and number.is_integer() and abs(number) < 2**63:
            return int(text) if re.fullmatch(r"\s*[+-]?\d+\s*", text) else int(number)
        return number
    if kind is FeatureType.BOOL:
        lowered = text.strip().lower()
        return True if lowered in TRUE_STRINGS else False if lowered in FALSE_STRINGS else text
    if kind is FeatureType.CATEGORY and feature.allowed and not all(isinstance(a, str) for a in feature.allowed):
        label = canonical_label(text)
        return next((a for a in feature.allowed if canonical_label(a) == label), text)
    return text


class RowRefusedError(ValueError):
    """A row that is not a record at all (not an object, not text); ``field`` is ``""``."""

    def __init__(self, field: str, why: str) -> None:
        super().__init__(why)
        self.field = field
        self.why = why


class RowTyper:
    """Turns the ItemReader's rows into request records for one spec."""

    def __init__(self, spec: ModelSpec | SpecView) -> None:
        self.features: list[Feature | FeatureView] = list(spec.features)
        self.names = frozenset(f.name for f in self.features)

    def csv(self, values: Any) -> dict[str, Any]:
        """A CSV row (``{header: text}``) as a record of the spec's features (absent ones absent)."""
        if not isinstance(values, Mapping):
            raise RowRefusedError("", f"a CSV row is a set of named fields, not {type(values).__name__}")
        record: dict[str, Any] = {}
        for feature in self.features:
            text = values.get(feature.name)
            if text is not None:
                record[feature.name] = csv_value(str(text), feature)
        return record

    def jsonl(self, values: Any) -> dict[str, Any]:
        """A JSON Lines row (an object) as a record; keys the spec does not name are left out."""
        if not isinstance(values, Mapping):
            raise RowRefusedError("", f"a JSON Lines row must be a JSON object, not {type(values).__name__}")
        return {k: v for k, v in values.items() if k in self.names}
