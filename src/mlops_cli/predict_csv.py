"""A CSV file of records for ``mlops predict``: each column typed by its feature in the serving spec."""

from __future__ import annotations

import csv
import gzip
from pathlib import Path
from typing import Any

from mlops.batch.rows import MISSING, csv_value
from mlops.errors import InputError
from mlops.registry.specs import SpecStore
from mlops.spec.model import FeatureType, parse_spec
from mlops_cli.common import AppContext
from mlops_cli.models_cmd import open_registry
from mlops_cli.predict_input import Row, open_text


def csv_rows(path: Path, spec: Any) -> list[Row]:
    """Records of a CSV (or gzip CSV) file, one per data row, typed by the spec's features."""
    missing = MISSING
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
                record = {f.name: csv_value(fields[i], f, missing) for f, i in used}
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
