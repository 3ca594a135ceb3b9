"""Mergeable window sketches: exact counts and moments, a uniform bottom-k sample of each numeric column.

One Distributed Map item sketches its shard (:func:`sketch_records`); Analyze merges the shards'
sketches into the frame it compares (:meth:`WindowSketch.frame`).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlops.errors import InputError
from mlops.monitoring.captures import champion_predictions, records_frame
from mlops.spec.model import NUMERIC_TYPES, FeatureType, ModelSpec

SKETCH_RESERVOIR = 100_000


def _column_kind(feature_type: FeatureType | str) -> str:
    if feature_type in NUMERIC_TYPES:
        return "numeric"
    if feature_type is FeatureType.DATETIME:
        return "datetime"  # sketched as seconds since the epoch, as the engine compares dates
    return "categorical"


@dataclass
class NumericSketch:
    """Exact count, moments and extremes; a uniform sample (bottom-k of random keys) of the values."""

    rows: int = 0
    count: int = 0
    mean: float = 0.0
    m2: float = 0.0
    min: float = math.inf
    max: float = -math.inf
    values: np.ndarray = field(default_factory=lambda: np.empty(0))
    keys: np.ndarray = field(default_factory=lambda: np.empty(0))

    def add(self, finite: np.ndarray, rows: int, keys: np.ndarray, capacity: int) -> None:
        self.rows += rows
        other = NumericSketch(rows=0, count=len(finite), values=finite, keys=keys)
        if len(finite):
            other.mean = float(finite.mean())
            other.m2 = float(((finite - other.mean) ** 2).sum())
            other.min, other.max = float(finite.min()), float(finite.max())
        self._combine(other, capacity)

    def merge(self, other: NumericSketch, capacity: int) -> None:
        self.rows += other.rows
        self._combine(other, capacity)

    def _combine(self, other: NumericSketch, capacity: int) -> None:
        if other.count:
            total = self.count + other.count
            delta = other.mean - self.mean
            self.m2 += other.m2 + delta * delta * self.count * other.count / total
            self.mean += delta * other.count / total
            self.count = total
            self.min, self.max = min(self.min, other.min), max(self.max, other.max)
        values = np.concatenate([self.values, other.values])
        keys = np.concatenate([self.keys, other.keys])
        if len(values) > capacity:
            keep = np.argpartition(keys, capacity)[:capacity]
            values, keys = values[keep], keys[keep]
        self.values, self.keys = values, keys

    @property
    def nulls(self) -> int:
        return self.rows - self.count

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "numeric",
            "rows": self.rows,
            "count": self.count,
            "mean": self.mean,
            "m2": self.m2,
            "min": self.min if self.count else None,
            "max": self.max if self.count else None,
            "values": self.values.tolist(),
            "keys": self.keys.tolist(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NumericSketch:
        return cls(
            rows=int(data["rows"]),
            count=int(data["count"]),
            mean=float(data["mean"]),
            m2=float(data["m2"]),
            min=float(data["min"]) if data.get("min") is not None else math.inf,
            max=float(data["max"]) if data.get("max") is not None else -math.inf,
            values=np.asarray(data["values"], dtype=np.float64),
            keys=np.asarray(data["keys"], dtype=np.float64),
        )


@dataclass
class CategoricalSketch:
    """Exact counts per category (as text) and missing values."""

    rows: int = 0
    nulls: int = 0
    counts: Counter[str] = field(default_factory=Counter)

    def merge(self, other: CategoricalSketch) -> None:
        self.rows += other.rows
        self.nulls += other.nulls
        self.counts.update(other.counts)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "categorical", "rows": self.rows, "nulls": self.nulls, "counts": dict(self.counts)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CategoricalSketch:
        return cls(rows=int(data["rows"]), nulls=int(data["nulls"]), counts=Counter(data["counts"]))


ColumnSketch = NumericSketch | CategoricalSketch


PREDICTION_COLUMN = "__prediction__"


@dataclass
class WindowSketch:
    """A mergeable summary of a capture window: every feature, plus the champion's predictions.

    ``merge`` is exact for rows, missing values, category counts, count, mean, variance, min and
    max; the numeric samples merge into a uniform sample of the union (bottom-k of independent
    uniform keys), so a merged sketch has the same distribution as one built in a single pass.
    """

    kinds: dict[str, str]
    capacity: int = SKETCH_RESERVOIR
    rows: int = 0
    columns: dict[str, ColumnSketch] = field(default_factory=dict)

    @classmethod
    def for_spec(cls, spec: ModelSpec, capacity: int = SKETCH_RESERVOIR) -> WindowSketch:
        kinds = {f.name: _column_kind(f.type) for f in spec.features}
        kinds[PREDICTION_COLUMN] = "numeric" if spec.task == "regression" else "categorical"
        return cls(kinds=kinds, capacity=capacity)

    def add_frame(self, frame: Any, predictions: Sequence[Any] = (), *, rng: np.random.Generator) -> None:
        """Add a chunk of features (by column name) and the champion's predictions in it."""
        # cold start: pandas (a large import) only where records become a frame; Plan never does
        import pandas as pd

        self.rows += len(frame)
        for name, kind in self.kinds.items():
            if kind == "other":
                continue  # a column the engine does not compare: only the row count matters
            if name == PREDICTION_COLUMN:
                series = pd.Series(list(predictions), dtype=object)
            elif name in frame.columns:
                series = frame[name]
            else:
                series = pd.Series([None] * len(frame), dtype=object)
            self._add_column(name, kind, series, rng)

    def _add_column(self, name: str, kind: str, series: Any, rng: np.random.Generator) -> None:
        # cold start: pandas (a large import) only where records become a frame; Plan never does
        from mlops.data.validation import coerce

        # cold start: all four monitor functions load this module; only Analyze compares (scipy, pandas)
        from mlops.drift.sides import datetime_seconds

        if kind in ("numeric", "datetime"):
            if kind == "datetime":
                values = datetime_seconds(series)
            else:
                values = coerce.numeric(series).values.astype(np.float64, copy=False)
            finite = values[np.isfinite(values)]
            sketch = self.columns.setdefault(name, NumericSketch())
            assert isinstance(sketch, NumericSketch)
            sketch.add(finite, len(values), rng.random(len(finite)), self.capacity)
            return
        codes, uniques, null = coerce.factorized(series)
        present = codes >= 0
        counts = np.bincount(codes[present], minlength=len(uniques))
        categorical = self.columns.setdefault(name, CategoricalSketch())
        assert isinstance(categorical, CategoricalSketch)
        categorical.rows += len(series)
        categorical.nulls += int(np.count_nonzero(null))
        for label, count in zip(uniques.tolist(), counts.tolist(), strict=True):
            if count:
                categorical.counts[str(label)] += int(count)

    def merge(self, other: WindowSketch) -> WindowSketch:
        """Add ``other`` (another shard of the same window) into this sketch; returns self."""
        self.rows += other.rows
        for name, sketch in other.columns.items():
            mine = self.columns.get(name)
            if mine is None:
                self.columns[name] = sketch
            elif isinstance(mine, NumericSketch) and isinstance(sketch, NumericSketch):
                mine.merge(sketch, self.capacity)
            elif isinstance(mine, CategoricalSketch) and isinstance(sketch, CategoricalSketch):
                mine.merge(sketch)
            else:
                raise InputError(f"sketch column {name!r} is numeric in one shard and categorical in another")
        return self

    def to_json(self) -> str:
        return json.dumps(
            {
                "rows": self.rows,
                "capacity": self.capacity,
                "kinds": self.kinds,
                "columns": {name: sketch.to_dict() for name, sketch in self.columns.items()},
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> WindowSketch:
        data = json.loads(text)
        columns: dict[str, ColumnSketch] = {}
        for name, column in data["columns"].items():
            columns[name] = (
                NumericSketch.from_dict(column) if column["kind"] == "numeric" else CategoricalSketch.from_dict(column)
            )
        return cls(kinds=dict(data["kinds"]), capacity=int(data["capacity"]), rows=int(data["rows"]), columns=columns)

    # ---------------------------------------------------------------------------------------------
    def frame(self, *, max_rows: int | None = None) -> tuple[Any, np.ndarray | None, bool]:
        """(features DataFrame, predictions, exact) standing for the window, column by column.

        Each column holds its values and its missing values in their true proportion (column
        order is meaningless: the engine compares columns one by one). With at most
        ``max_rows`` rows (default: the sample capacity) and every numeric column fully held in
        its sample, the frame is the window itself (``exact``); otherwise each column is scaled
        to ``max_rows`` rows: numeric values are evenly spaced order statistics of the sample,
        category counts are rounded by largest remainder (a category seen keeps at least one row).
        """
        # cold start: pandas (a large import) only where records become a frame; Plan never does
        import pandas as pd

        cap = max_rows or self.capacity
        rows = self.rows
        out_rows = min(rows, cap)
        exact = rows <= cap
        data: dict[str, Any] = {}
        predictions: np.ndarray | None = None
        for name, sketch in self.columns.items():
            column_rows = sketch.rows
            target = out_rows if name != PREDICTION_COLUMN else min(column_rows, cap)
            scale = target / column_rows if column_rows else 0.0
            if isinstance(sketch, NumericSketch):
                ordered = np.sort(sketch.values)
                exact = exact and len(ordered) == sketch.count
                keep = round(sketch.count * scale) if scale < 1 else sketch.count
                if keep < len(ordered):
                    positions = np.round(np.linspace(0, len(ordered) - 1, keep)).astype(int)
                    ordered = ordered[positions] if keep else ordered[:0]
                values: np.ndarray = np.concatenate([ordered, np.full(max(target - len(ordered), 0), np.nan)])
                column: Any = values[:target]
            else:
                labels = list(sketch.counts)
                counts = np.asarray([sketch.counts[k] for k in labels], dtype=np.float64)
                nonnull = round((column_rows - sketch.nulls) * scale) if scale < 1 else column_rows - sketch.nulls
                scaled = _largest_remainder(counts, nonnull) if scale < 1 else counts.astype(int)
                items: list[Any] = []
                for label, count in zip(labels, scaled.tolist(), strict=True):
                    items.extend([label] * int(count))
                items.extend([None] * max(target - len(items), 0))
                column = np.asarray(items[:target], dtype=object)
            if name == PREDICTION_COLUMN:
                predictions = column[pd.notna(column)] if len(column) else None
            elif self.kinds.get(name) == "datetime":
                data[name] = pd.Series(pd.to_datetime(column, unit="s"))  # back to dates, NaN as NaT
            else:
                data[name] = pd.Series(column)
        for name, kind in self.kinds.items():
            if kind == "other":
                data[name] = pd.Series([None] * out_rows, dtype=object)
        frame = pd.DataFrame(data) if data else pd.DataFrame(index=range(out_rows))
        return frame, predictions, exact


def _largest_remainder(counts: np.ndarray, total: int) -> np.ndarray:
    """Integer counts summing to ``total`` (about), proportional to ``counts``, none seen dropped to 0."""
    if counts.sum() <= 0 or total <= 0:
        return np.zeros(len(counts), dtype=int)
    exact = counts / counts.sum() * total
    floor = np.floor(exact).astype(int)
    rest = total - int(floor.sum())
    if rest > 0:
        floor[np.argsort(-(exact - floor), kind="stable")[:rest]] += 1
    floor[(floor == 0) & (counts > 0)] = 1
    return floor


def sketch_records(
    records: Sequence[Mapping[str, Any]],
    spec: ModelSpec,
    champion: int,
    *,
    capacity: int = SKETCH_RESERVOIR,
    seed: int | None = None,
) -> WindowSketch:
    """A :class:`WindowSketch` of capture records (one shard)."""
    sketch = WindowSketch.for_spec(spec, capacity)
    sketch.add_frame(
        records_frame(records, spec), champion_predictions(records, champion), rng=np.random.default_rng(seed)
    )
    return sketch
