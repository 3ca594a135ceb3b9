"""A CSV file of records for ``mlops predict``: each column typed by its feature in the serving spec."""

from __future__ import annotations

import csv
import gzip
import re
from pathlib import Path
from typing import Any

from mlops.data.validation.coerce import FALSE_STRINGS, TRUE_STRINGS
from mlops.data.validation.reader import NA_STRINGS
from mlops.errors import InputError
from mlops.registry.specs import SpecStore
from mlops.spec.model import FeatureType, parse_spec
from mlops.values import canonical_label
from mlops_cli.common import AppContext
from mlops_cli.models_cmd import open_registry
from mlops_cli.predict_input import Row, open_text


def _csv_value(text: str, feature: Any, missing: frozenset[str]) -> Any:
    """A CSV field as its feature's JSON type; text the type cannot take is sent as is (the API names it)."""
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


def csv_rows(path: Path, spec: Any) -> list[Row]:
    """Records of a CSV (or gzip CSV) file, one per data row, typed by the spec's features."""
    missing = frozenset(NA_STRINGS)
    try:
        handle = open_text(path)
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    rows: list[Row] = []
    with handle:
        reader = csv.reader(handle)
        try:
            header = next(reader, None)
            if not header:
                raise InputError(f"{path}: the file is empty (the first line must name the columns)")
            where = {name: index for index, name in reversed(list(enumerate(header)))}
            used = [(f, where[f.name]) for f in spec.features if f.name in where]
            absent = [
                f.name
                for f in spec.features
                if f.name not in where and not f.nullable and f.type is not FeatureType.STRING
            ]
            if absent:
                raise InputError(
                    f"{path}: no column for feature(s) {', '.join(map(repr, absent))} of model {spec.name!r}"
                    f" (the file's columns: {', '.join(map(repr, header[:12]))}{', ...' if len(header) > 12 else ''})"
                )
            line = reader.line_num + 1
            for fields in reader:
                if not fields or fields == [""]:
                    line = reader.line_num + 1
                    continue
                if len(fields) != len(header):
                    raise InputError(f"{path}, line {line}: {len(fields)} fields where the header has {len(header)}")
                record = {f.name: _csv_value(fields[i], f, missing) for f, i in used}
                rows.append(Row(len(rows) + 1, line, record))
                line = reader.line_num + 1
        except csv.Error as exc:
            raise InputError(f"{path}, line {reader.line_num}: not valid CSV ({exc})") from None
        except (UnicodeDecodeError, EOFError, OSError, gzip.BadGzipFile) as exc:
            raise InputError(f"{path}: cannot be read ({exc})") from None
    if not rows:
        raise InputError(f"{path}: the file has a header but no data rows")
    return rows


def serving_spec(app: AppContext, model: str) -> Any:
    """The spec of the version that serves ``model`` (its champion), else its latest spec."""
    registry = open_registry(app)
    revision: int | None = None
    champion = registry.get_model(model).champion
    if champion is not None:
        revision = registry.get_version(model, champion).spec_revision
    stored = SpecStore(registry).get(model, revision)
    return parse_spec(stored.document, f"spec of {model} revision {stored.revision}")
