"""The exported ONNX model as both sides use it: the export's check and the inference function.

Owns the registry tags naming a version's ONNX file, the datetime range a model takes, the graph's
input tensors built from request records (:func:`feature_columns`, the same values as
:func:`mlops.training.frames.model_input`), running the graph (:class:`OnnxPredictor`), and training
rows as request records (:func:`records_from_frame`). numpy and onnxruntime only: no pandas,
scikit-learn or pydantic, so the inference function imports it on its cold path.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np

from mlops.spec.view import FeatureType, SpecView
from mlops.values import canonical_label as _canonical_label

if TYPE_CHECKING:
    from mlops.spec.model import ModelSpec

# The registry tags naming a version's ONNX file, and the category the graph takes for a null one.
ONNX_TAG_URI = "onnx_uri"
ONNX_TAG_SHA256 = "onnx_sha256"
MISSING_CATEGORY = "(missing)"
# Datetimes a model can take: the range of datetime64[ns], which training and serving both use
# (whole days inside it, in UTC). Outside it numpy wraps around and pandas gives NaT.
EARLIEST_DATETIME = datetime(1677, 9, 22)
LATEST_DATETIME = datetime(2262, 4, 10, 23, 59, 59, 999999)
_DATETIME_RANGE = (
    f"must be between {EARLIEST_DATETIME:%Y-%m-%d}T00:00:00Z and {LATEST_DATETIME:%Y-%m-%d}T23:59:59Z"
    " (UTC; the range a model's datetime features hold)"
)
_ONE_DAY = timedelta(days=1)


def utc_datetime(value: str) -> datetime:
    """A request's ISO 8601 date or date-time as a naive UTC datetime inside the model's range.

    Without an offset the time is UTC (as in training). An offset is applied without
    ``astimezone``: near the ends of the calendar (``0001-01-01T00:00:00+01:00``) that overflows.

    Raises
    ------
    ValueError
        Not ISO 8601, or outside ``EARLIEST_DATETIME`` .. ``LATEST_DATETIME`` once in UTC (the message
        says which; pydantic and :class:`RecordValidator` turn it into a 400 naming the field).
    """
    try:
        parsed = datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value)
    except ValueError:
        raise ValueError("must be an ISO 8601 date or date-time, for example 2026-10-01T12:00:00Z") from None
    local = parsed.replace(tzinfo=None)
    # An offset is under a day, so a local time within a day of the range converts without overflow.
    if not EARLIEST_DATETIME - _ONE_DAY <= local <= LATEST_DATETIME + _ONE_DAY:
        raise ValueError(_DATETIME_RANGE)
    offset = parsed.utcoffset()
    utc = local - offset if offset else local
    if not EARLIEST_DATETIME <= utc <= LATEST_DATETIME:
        raise ValueError(_DATETIME_RANGE)
    return utc


_NS_PER_DAY = 86_400 * 10**9


@dataclass
class Prediction:
    """What a model said about a batch: one prediction per record (and class probabilities)."""

    predictions: list[Any]
    probabilities: list[list[float]] | None = None
    classes: list[Any] | None = None


def _datetime64(value: str | None) -> np.datetime64:
    if value is None:
        return np.datetime64("NaT", "ns")
    return np.datetime64(utc_datetime(value), "ns")  # validated: inside the range datetime64[ns] holds


def feature_columns(records: Sequence[Mapping[str, Any]], spec: ModelSpec | SpecView) -> dict[str, np.ndarray]:
    """The model-input columns of validated records, without pandas (what the ONNX graph takes).

    Same values as :func:`mlops.training.frames.model_input`: numbers and booleans as float (missing
    NaN), categories as canonical text (missing ``"(missing)"``), each datetime as ``__days`` and
    ``__month``; string features left out. Shapes are ``[N, 1]``.
    """
    columns: dict[str, np.ndarray] = {}
    for feature in spec.features:
        name = feature.name
        kind = feature.type
        if kind is FeatureType.STRING:
            continue
        values = [r.get(name) for r in records]
        if kind in (FeatureType.FLOAT, FeatureType.INT, FeatureType.BOOL):
            # None becomes NaN; through float64 first, as float(v) would, then to the graph's float32.
            columns[name] = np.array(values, dtype=np.float64).astype(np.float32)
        elif kind is FeatureType.CATEGORY:
            # A batch repeats few distinct values: label each once (keyed by type too: True is not 1).
            keys = [(type(v), v) for v in values]
            labels = {k: MISSING_CATEGORY if k[1] is None else _canonical_label(k[1]) for k in set(keys)}
            columns[name] = np.array([labels[k] for k in keys], dtype=object)
        else:
            parsed = {v: _datetime64(v) for v in set(values)}
            stamps = np.array([parsed[v] for v in values], dtype="datetime64[ns]")
            missing = np.isnat(stamps)
            ns = stamps.astype("int64").astype(np.float64)
            months = stamps.astype("datetime64[M]").astype("int64") % 12 + 1
            columns[f"{name}__days"] = np.where(missing, np.nan, ns / _NS_PER_DAY).astype(np.float32)
            columns[f"{name}__month"] = np.where(missing, np.nan, months).astype(np.float32)
    return {k: v.reshape(-1, 1) for k, v in columns.items()}


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def class_values(labels: Iterable[Any], spec: ModelSpec | SpecView) -> list[Any]:
    """Model class labels as the spec writes them (so 1 comes back as 1, not "1")."""
    by_text = {_canonical_label(c): c for c in spec.target.classes or []}
    return [by_text.get(_canonical_label(_plain(c)), _plain(c)) for c in labels]


class OnnxPredictor:
    """An ONNX export (see :mod:`mlops.training.export`) run by onnxruntime: no scikit-learn, no code on load."""

    kind = "onnx"

    def __init__(self, data: bytes, spec: ModelSpec | SpecView) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(data, options, providers=["CPUExecutionProvider"])
        self.spec = spec
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.outputs = [o.name for o in self.session.get_outputs()]
        self.nbytes = 2 * len(data) + 64 * 1024
        self.classes: list[Any] | None = None
        meta = self.session.get_modelmeta().custom_metadata_map
        # The spec's column behind each graph input, in order (graph input names are identifiers
        # made from the column names); models exported before this record were named as-is.
        self.columns = json.loads(meta["columns"]) if "columns" in meta else list(self.inputs)
        if spec.task == "classification":
            labels = json.loads(meta["classes"]) if "classes" in meta else list(spec.target.classes or [])
            self.classes = class_values(labels, spec)

    def predict(self, records: Sequence[Mapping[str, Any]]) -> Prediction:
        columns = feature_columns(records, self.spec)
        feeds = {name: columns[column] for name, column in zip(self.inputs, self.columns, strict=True)}
        outputs = self.session.run(None, feeds)
        if self.classes is None:
            values = np.asarray(outputs[0], dtype=np.float64).ravel()
            return Prediction([float(v) for v in values])
        probabilities = np.asarray(outputs[self.outputs.index("probabilities")], dtype=np.float64)
        best = probabilities.argmax(axis=1)  # first maximum wins, as in scikit-learn
        return Prediction([self.classes[i] for i in best], probabilities.round(6).tolist(), self.classes)


def records_from_frame(frame: Any, spec: ModelSpec | SpecView) -> list[dict[str, Any]]:
    """Typed training rows (a frame from :func:`mlops.training.frames.coerce_frame`) as request records."""
    records: list[dict[str, Any]] = []
    names = [f.name for f in spec.features if f.name in frame.columns]
    kinds = {f.name: f.type for f in spec.features}
    for row in frame[names].itertuples(index=False, name=None):
        record: dict[str, Any] = {}
        for name, value in zip(names, row, strict=True):
            if value is None or (isinstance(value, float) and math.isnan(value)) or value is np.datetime64("NaT"):
                record[name] = None
                continue
            kind = kinds[name]
            if kind is FeatureType.DATETIME:
                record[name] = None if str(value) == "NaT" else str(np.datetime64(value, "s")) + "Z"
            elif kind is FeatureType.INT:
                record[name] = int(value)
            elif kind is FeatureType.BOOL:
                record[name] = bool(value)
            elif kind is FeatureType.FLOAT:
                record[name] = float(value)
            else:
                record[name] = _plain(value)
        records.append(record)
    return records
