"""Reading and typing training data: a dataset as a typed frame, the model's input columns, the target.

Its input is :func:`model_input` of a frame: the spec's features typed (numbers as float64,
booleans as 0/1, categories as canonical text, missing as NaN), each datetime feature replaced by
numeric columns (``<name>__days`` since 1970-01-01 and ``<name>__month``), and ``string``
features (identifiers) dropped. Training, evaluation and inference all go through
:func:`model_input` (the inference function through its twin without pandas,
:func:`mlops.training.onnx_model.feature_columns`), so a value means the same thing in each.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd

from mlops.data.validation import coerce
from mlops.errors import InputError
from mlops.spec.model import FeatureType, ModelSpec

DATETIME_PARTS = ("days", "month")
_NS_PER_DAY = 86_400 * 10**9


def load_training_frame(
    source: str | Path | IO[bytes], spec: ModelSpec, source_name: str | None = None
) -> pd.DataFrame:
    """Read a CSV or gzip CSV into a typed frame: the spec's features and target, nothing else.

    The bytes are read exactly as validation reads them (same parser, same missing-value
    strings), then typed by :func:`coerce_frame`. Rows the reader cannot parse are skipped, as
    validation reports them.

    Parameters
    ----------
    source
        A file path, or a binary stream with ``read(n)`` (an S3 ``StreamingBody``).
    spec
        The model spec (feature types, target).
    source_name
        Named in messages; defaults to the path.

    Returns
    -------
    pandas.DataFrame
        One column per feature and the target, typed; index 0..n-1 in file order.

    Raises
    ------
    InputError
        The data cannot be read, or a feature or the target column is missing from the header.
    """
    from mlops.data.validation.engine import read_as_text
    from mlops.data.validation.reader import CsvReader

    if isinstance(source, str | Path):
        path = Path(source)
        try:
            with path.open("rb") as handle:
                return load_training_frame(handle, spec, source_name or str(path))
        except OSError as exc:
            raise InputError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    name = source_name or "<stream>"
    wanted = [*spec.feature_names, spec.target.name]
    reader = CsvReader(source, name, wanted, read_as_text(spec))
    frames = [chunk.frame for chunk in reader.chunks()]
    if reader.fatal or reader.header is None:
        problems = "; ".join(f.message for f in reader.findings() if f.status == "failed") or "no header"
        raise InputError(f"{name}: cannot be read for training: {problems}")
    missing = [column for column in wanted if column not in reader.used]
    if missing:
        raise InputError(f"{name}: column(s) {', '.join(missing)} named in the spec are missing from the header")
    raw = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=wanted)
    return coerce_frame(raw, spec)


def coerce_frame(frame: pd.DataFrame, spec: ModelSpec) -> pd.DataFrame:
    """Type a frame's spec columns (features, and the target when present); others are left out.

    Idempotent: a typed frame comes back unchanged in value. Values that are not valid for their
    type become missing (validation is where they are reported).

    Parameters
    ----------
    frame
        Columns by name, as read from CSV (text or numbers) or built from JSON records.
    spec
        The model spec.

    Returns
    -------
    pandas.DataFrame
        float/int features as float64, bool as float64 0/1, category and string as canonical
        text (object, NaN when missing), datetime as ``datetime64[ns]`` (UTC, naive); a
        classification target as the spec's class values (object, NaN when not a class), a
        regression target as float64. The index is kept.
    """
    columns: dict[str, Any] = {}
    for feature in spec.features:
        if feature.name in frame.columns:
            columns[feature.name] = _coerce_feature(frame[feature.name], feature.type)
    target = spec.target.name
    if target in frame.columns:
        columns[target] = _coerce_target(frame[target], spec)
    return _frame(columns, frame.index)


def _frame(columns: Mapping[str, np.ndarray], index: pd.Index) -> pd.DataFrame:
    """A frame that keeps object columns as object (pandas 3 would infer its string dtype)."""
    series = {name: pd.Series(values, index=index, dtype=values.dtype) for name, values in columns.items()}
    return pd.DataFrame(series, index=index)


def _coerce_feature(series: pd.Series, kind: FeatureType) -> np.ndarray:
    if kind in (FeatureType.FLOAT, FeatureType.INT):
        parsed = coerce.numeric(series)
        values = parsed.values.astype(np.float64, copy=True)
        if parsed.bad is not None:
            values[parsed.bad] = np.nan
        return values
    if kind is FeatureType.DATETIME:
        if series.dtype.kind == "M":
            stamps = series.dt.tz_convert(None) if getattr(series.dt, "tz", None) is not None else series
            return np.asarray(stamps, dtype="datetime64[ns]")
        codes, uniques, _ = coerce.factorized(series)
        stamps_by_code = coerce.datetimes(uniques)
        out = np.full(len(series), np.datetime64("NaT"), dtype="datetime64[ns]")
        present = codes >= 0
        out[present] = stamps_by_code[codes[present]]
        return out
    codes, uniques, _ = coerce.factorized(series)
    present = codes >= 0
    if kind is FeatureType.BOOL:
        if series.dtype.kind == "b":
            return series.to_numpy().astype(np.float64)
        ok, truth = coerce.booleans(uniques)
        lookup = np.where(ok, truth.astype(np.float64), np.nan)
        values = np.full(len(series), np.nan)
        values[present] = lookup[codes[present]]
        return values
    # Identifiers are often all distinct and never used by the model: kept as read, not canonicalized.
    labels = uniques if kind is FeatureType.STRING else np.asarray([coerce.label(u) for u in uniques], dtype=object)
    text = np.full(len(series), np.nan, dtype=object)
    text[present] = labels[codes[present]]
    return text


def _coerce_target(series: pd.Series, spec: ModelSpec) -> np.ndarray:
    if spec.task == "regression":
        return _coerce_feature(series, FeatureType.FLOAT)
    classes = list(spec.target.classes or [])
    by_label = {coerce.label(c): c for c in classes}
    codes, uniques, _ = coerce.factorized(series)
    lookup = np.asarray([by_label.get(coerce.label(u), np.nan) for u in uniques], dtype=object)
    out = np.full(len(series), np.nan, dtype=object)
    present = codes >= 0
    out[present] = lookup[codes[present]]
    return out


def model_input(frame: pd.DataFrame, spec: ModelSpec) -> pd.DataFrame:
    """The columns a fitted pipeline takes, from raw or typed rows (training, evaluation, inference).

    Parameters
    ----------
    frame
        Rows with the spec's features by name (other columns are ignored).
    spec
        The model spec.

    Returns
    -------
    pandas.DataFrame
        Typed features in spec order; each datetime feature as ``<name>__days`` and
        ``<name>__month``; string features left out.

    Raises
    ------
    InputError
        A feature the model uses is missing from ``frame``.
    """
    missing = [f.name for f in spec.features if f.type is not FeatureType.STRING and f.name not in frame.columns]
    if missing:
        raise InputError(f"model input: feature(s) {', '.join(missing)} missing")
    columns: dict[str, np.ndarray] = {}
    for feature in spec.features:
        if feature.type is FeatureType.STRING:
            continue
        values = _coerce_feature(frame[feature.name], feature.type)
        if feature.type is FeatureType.DATETIME:
            columns.update(_datetime_parts(feature.name, values))
        else:
            columns[feature.name] = values
    return _frame(columns, frame.index)


def _input_columns(spec: ModelSpec, name: str) -> list[str]:
    if spec.feature(name).type is FeatureType.DATETIME:
        return [f"{name}__{part}" for part in DATETIME_PARTS]
    return [name]


def _datetime_parts(name: str, stamps: np.ndarray) -> dict[str, np.ndarray]:
    missing = np.isnat(stamps)
    ns = stamps.astype("int64").astype(np.float64)
    days = np.where(missing, np.nan, ns / _NS_PER_DAY)
    months = stamps.astype("datetime64[M]").astype("int64") % 12 + 1
    return {f"{name}__days": days, f"{name}__month": np.where(missing, np.nan, months.astype(np.float64))}


def _target_array(series: pd.Series, spec: ModelSpec) -> np.ndarray:
    """Labels as a homogeneous array (ints stay ints), so class order and dtype are stable."""
    if spec.task == "regression":
        return series.to_numpy(dtype=np.float64)
    values = series.tolist()
    if all(isinstance(v, int | np.integer) and not isinstance(v, bool | np.bool_) for v in values):
        return np.asarray(values, dtype=np.int64)
    if all(isinstance(v, bool | np.bool_) for v in values):
        return np.asarray(values, dtype=bool)
    if all(isinstance(v, int | float | np.number) for v in values):
        return np.asarray(values, dtype=np.float64)
    return np.asarray([str(v) for v in values], dtype=object)


def target_array(frame: pd.DataFrame, spec: ModelSpec) -> np.ndarray:
    """The target column of a typed frame as the array the model was fitted on."""
    return _target_array(frame[spec.target.name], spec)


def class_labels(spec: ModelSpec) -> list[Any]:
    """The spec's classes as the model sees them (same types as :func:`target_array`)."""
    return [_plain(v) for v in _target_array(pd.Series(list(spec.target.classes or []), dtype=object), spec)]


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value (JSON can hold it)."""
    return value.item() if isinstance(value, np.generic) else value
