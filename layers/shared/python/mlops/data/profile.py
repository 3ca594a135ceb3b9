"""Reference profile: what the training data looked like, feature by feature.

Computed once from a model version's training data and stored with it; validation compares a
new dataset against it (mean/std shift, new categories, missing-rate change) and drift
detection compares captured inputs against it (KS, Wasserstein, PSI, chi-squared, Jensen-Shannon).

Numeric columns keep exact count, mean, std, min and max, plus quantiles at 0.1% resolution
(1001 levels), decile-edged histogram counts for PSI and a sorted uniform sample for two-sample
tests. Quantiles, histogram and sample come from a uniform sample of up to ``reservoir_size``
values (100,000 by default), so they are exact for columns with fewer values. Categorical
columns keep the frequency of every category (the most frequent ``max_categories`` when there are
more, with ``truncated`` set). Field by field documentation: ``docs/validation.md``.

Examples
--------
>>> profile = profile_frame(train_df, spec)  # doctest: +SKIP
>>> profile.save("reference.json")  # doctest: +SKIP
>>> ReferenceProfile.load("reference.json").columns["age"].numeric.mean  # doctest: +SKIP
41.2
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mlops.data.validation import coerce
from mlops.data.validation.engine import read_as_text
from mlops.data.validation.reader import CsvReader
from mlops.errors import InputError
from mlops.spec.model import FeatureType, ModelSpec, format_validation_error

PROFILE_SCHEMA_VERSION = "1"
QUANTILE_LEVELS = 1001
DEFAULT_RESERVOIR = 100_000
DEFAULT_SAMPLE = 5_000
DEFAULT_MAX_CATEGORIES = 1_000


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Histogram(_Model):
    """Counts of values in ``[edges[i], edges[i+1])`` (the last bin includes its upper edge)."""

    edges: list[float]
    counts: list[int]


class NumericStats(_Model):
    """Exact moments and extremes, fine quantiles, a PSI histogram and a sorted sample."""

    count: int
    mean: float
    std: float
    min: float
    max: float
    # quantiles[i] is the (i / (len - 1)) quantile: 1001 levels, 0.1% apart (linear interpolation).
    quantiles: list[float]
    histogram: Histogram
    sample: list[float] = Field(default_factory=list)
    sampled_from: int = 0
    exact_quantiles: bool = True


class CategoricalStats(_Model):
    """Category frequencies (as text), most frequent first."""

    frequencies: dict[str, int]
    distinct: int
    other_count: int = 0
    truncated: bool = False


class DatetimeStats(_Model):
    min: str
    max: str


class ColumnProfile(_Model):
    """One column: rows, missing values, and the statistics its type calls for."""

    name: str
    type: str
    role: Literal["feature", "target"] = "feature"
    rows: int
    null_count: int
    null_rate: float
    invalid_count: int = 0
    numeric: NumericStats | None = None
    categorical: CategoricalStats | None = None
    datetime: DatetimeStats | None = None


class ReferenceProfile(_Model):
    """The profile of one training dataset; JSON round-trips exactly."""

    schema_version: str = PROFILE_SCHEMA_VERSION
    model: str
    spec_fingerprint: str
    source: str = ""
    created_at: str = Field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    row_count: int
    columns: dict[str, ColumnProfile]

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.model_dump(mode="json"), indent=indent, allow_nan=False)

    @classmethod
    def from_json(cls, text: str | bytes, source: str = "profile") -> ReferenceProfile:
        """Parse a profile; raise :class:`InputError` naming the source when it is not one."""
        try:
            return cls.model_validate_json(text)
        except ValidationError as exc:
            errors = exc.errors()
            if errors and errors[0]["type"] == "json_invalid":
                raise InputError(f"{source}: not a reference profile: {errors[0]['msg']}") from None
            problems = format_validation_error(exc, source).splitlines()
            more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
            raise InputError("not a reference profile: " + "; ".join(problems[:5]) + more) from None

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json(indent=None), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> ReferenceProfile:
        path = Path(path)
        try:
            text = path.read_bytes()
        except OSError as exc:
            raise InputError(f"{path}: cannot be read ({exc.strerror or exc})") from None
        return cls.from_json(text, str(path))


class _NumericBuilder:
    def __init__(self, reservoir: int, rng: np.random.Generator) -> None:
        self.reservoir = reservoir
        self.rng = rng
        self.values = np.empty(0, dtype=np.float64)
        self.keys = np.empty(0, dtype=np.float64)
        self.count = 0
        self.mean = 0.0
        self.m2 = 0.0
        self.min = np.inf
        self.max = -np.inf

    def add(self, values: np.ndarray) -> None:
        n = len(values)
        if not n:
            return
        mean = float(values.mean())
        delta = mean - self.mean
        total = self.count + n
        self.m2 += float(((values - mean) ** 2).sum()) + delta * delta * self.count * n / total
        self.mean += delta * n / total
        self.count = total
        self.min = min(self.min, float(values.min()))
        self.max = max(self.max, float(values.max()))
        # Bottom-k by random key: a uniform sample without replacement, merged chunk by chunk.
        keys = self.rng.random(n)
        self.values = np.concatenate([self.values, values])
        self.keys = np.concatenate([self.keys, keys])
        if len(self.values) > self.reservoir:
            keep = np.argpartition(self.keys, self.reservoir)[: self.reservoir]
            self.values, self.keys = self.values[keep], self.keys[keep]

    def finish(self, sample_size: int) -> NumericStats | None:
        if not self.count:
            return None
        ordered = np.sort(self.values)
        quantiles = np.quantile(ordered, np.linspace(0, 1, QUANTILE_LEVELS))
        edges = np.unique(np.quantile(ordered, np.linspace(0, 1, 11)))
        if len(edges) < 2:
            edges = np.array([edges[0], edges[0]])
        counts, _ = np.histogram(ordered, bins=edges)
        scale = self.count / len(ordered)
        if len(self.values) > sample_size:
            sample = np.sort(self.rng.choice(ordered, size=sample_size, replace=False))
        else:
            sample = ordered
        return NumericStats(
            count=self.count,
            mean=self.mean,
            std=float(np.sqrt(self.m2 / (self.count - 1))) if self.count > 1 else 0.0,
            min=self.min,
            max=self.max,
            quantiles=[float(q) for q in quantiles],
            histogram=Histogram(edges=[float(e) for e in edges], counts=[round(c * scale) for c in counts.tolist()]),
            sample=[float(v) for v in sample],
            sampled_from=len(ordered),
            exact_quantiles=len(ordered) == self.count,
        )


class ProfileBuilder:
    """Builds a :class:`ReferenceProfile` chunk by chunk (``update``), then ``finish``.

    Values are read the way validation reads them (``mlops.data.validation.coerce``); values that are
    not valid for their type are counted in ``invalid_count`` and left out of the statistics.
    """

    def __init__(
        self,
        spec: ModelSpec,
        reservoir_size: int = DEFAULT_RESERVOIR,
        sample_size: int = DEFAULT_SAMPLE,
        max_categories: int = DEFAULT_MAX_CATEGORIES,
        seed: int = 0,
    ) -> None:
        self.spec = spec
        self.sample_size = sample_size
        self.max_categories = max_categories
        rng = np.random.default_rng(seed)
        self.rows = 0
        self._columns: list[tuple[str, FeatureType | str, Literal["feature", "target"]]] = [
            (f.name, f.type, "feature") for f in spec.features
        ]
        target_type: FeatureType | str = "class" if spec.task == "classification" else FeatureType.FLOAT
        self._columns.append((spec.target.name, target_type, "target"))
        # Datetime columns also get a numeric sketch, of seconds since the epoch (UTC): drift
        # compares dates as those numbers, so the reference needs their distribution, not only a range.
        self._numeric = {
            n: _NumericBuilder(reservoir_size, rng)
            for n, t, _ in self._columns
            if _is_numeric(t) or t is FeatureType.DATETIME
        }
        self._counts: dict[str, Counter[str]] = {n: Counter() for n, t, _ in self._columns if not _is_numeric(t)}
        self._truncated: set[str] = set()
        self._nulls: Counter[str] = Counter()
        self._invalid: Counter[str] = Counter()
        self._present: Counter[str] = Counter()
        self._times: dict[str, list[np.datetime64]] = {}

    def update(self, frame: pd.DataFrame) -> None:
        """Add one chunk (columns by name; missing columns are simply not profiled)."""
        self.rows += len(frame)
        for name, kind, _ in self._columns:
            if name not in frame.columns:
                continue
            series = frame[name]
            self._present[name] += len(series)
            if _is_numeric(kind):
                parsed = coerce.numeric(series)
                values = parsed.values.astype(np.float64, copy=False)
                finite = np.isfinite(values)
                nulls = int(np.count_nonzero(parsed.null)) if parsed.null is not None else 0
                self._nulls[name] += nulls
                self._invalid[name] += int(len(values) - np.count_nonzero(finite)) - nulls
                self._numeric[name].add(values[finite])
                continue
            codes, uniques, null = coerce.factorized(series)
            self._nulls[name] += int(np.count_nonzero(null))
            present = codes >= 0
            counts = np.bincount(codes[present], minlength=len(uniques))
            if kind == "class":
                labels = [coerce.label(u) for u in uniques]
            elif kind is FeatureType.BOOL:
                ok, value = coerce.booleans(uniques)
                labels = ["true" if v else "false" if o else "" for o, v in zip(ok, value, strict=True)]
            elif kind is FeatureType.DATETIME:
                parsed_times = coerce.datetimes(uniques)
                used = ~np.isnat(parsed_times) & (counts > 0)
                if used.any():
                    self._times.setdefault(name, []).extend([parsed_times[used].min(), parsed_times[used].max()])
                self._invalid[name] += int(counts[np.isnat(parsed_times)].sum())
                if len(uniques):
                    seconds = parsed_times.astype(np.int64).astype(np.float64) / 1e9
                    valid = present & ~np.isnat(parsed_times)[np.maximum(codes, 0)]
                    self._numeric[name].add(seconds[codes[valid]])
                continue
            else:
                labels = list(uniques)
            tally = self._counts[name]
            for lab, count in zip(labels, counts.tolist(), strict=True):
                if lab == "":
                    self._invalid[name] += count
                elif count:
                    tally[lab] += count
            if len(tally) > 20 * self.max_categories:
                # Keep memory bounded on identifier-like columns; the profile says it is partial.
                self._counts[name] = Counter(dict(_most_common(tally, 10 * self.max_categories)))
                self._truncated.add(name)

    def finish(self, source: str = "") -> ReferenceProfile:
        columns: dict[str, ColumnProfile] = {}
        for name, kind, role in self._columns:
            rows = self._present.get(name, 0)
            if not rows and name not in self._present:
                continue
            nulls = self._nulls.get(name, 0)
            profile = ColumnProfile(
                name=name,
                type=kind.value if isinstance(kind, FeatureType) else kind,
                role=role,
                rows=rows,
                null_count=nulls,
                null_rate=nulls / rows if rows else 0.0,
                invalid_count=self._invalid.get(name, 0),
            )
            if name in self._times:
                times = self._times[name]
                profile.datetime = DatetimeStats(min=str(min(times)), max=str(max(times)))
            if name in self._numeric:
                profile.numeric = self._numeric[name].finish(self.sample_size)
            elif name in self._counts:
                tally = self._counts[name]
                top = _most_common(tally, self.max_categories)
                kept = sum(c for _, c in top)
                profile.categorical = CategoricalStats(
                    frequencies=dict(top),
                    distinct=len(tally),
                    other_count=sum(tally.values()) - kept,
                    truncated=name in self._truncated or len(tally) > self.max_categories,
                )
            columns[name] = profile
        return ReferenceProfile(
            model=self.spec.name,
            spec_fingerprint=self.spec.fingerprint(),
            source=source,
            row_count=self.rows,
            columns=columns,
        )


def _most_common(tally: Counter[str], limit: int) -> list[tuple[str, int]]:
    """The ``limit`` most frequent categories, ties by label: the same whatever the row order
    (``Counter.most_common`` breaks ties by first appearance)."""
    return sorted(tally.items(), key=lambda item: (-item[1], item[0]))[:limit]


def _is_numeric(kind: FeatureType | str) -> bool:
    return kind in (FeatureType.FLOAT, FeatureType.INT)


def profile_frame(frame: pd.DataFrame, spec: ModelSpec, source: str = "<dataframe>", **kwargs: Any) -> ReferenceProfile:
    """Profile a training DataFrame (keyword arguments go to :class:`ProfileBuilder`)."""
    builder = ProfileBuilder(spec, **kwargs)
    builder.update(frame)
    return builder.finish(source)


def profile_stream(stream: IO[bytes], spec: ModelSpec, source: str, **kwargs: Any) -> ReferenceProfile:
    """Profile a CSV / gzip CSV byte stream in blocks, reading it as validation does.

    Raises
    ------
    InputError
        When the data cannot be read at all (empty, binary, no header).
    """
    builder = ProfileBuilder(spec, **kwargs)
    reader = CsvReader(stream, source, [*spec.feature_names, spec.target.name], read_as_text(spec))
    for chunk in reader.chunks():
        builder.update(chunk.frame)
    if reader.fatal or reader.header is None:
        problems = "; ".join(f.message for f in reader.findings() if f.status == "failed")
        raise InputError(f"{source}: cannot be profiled: {problems}")
    return builder.finish(source)


def profile_file(path: str | Path, spec: ModelSpec, **kwargs: Any) -> ReferenceProfile:
    """Profile a CSV / gzip CSV file; see :func:`profile_stream`."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            return profile_stream(handle, spec, str(path), **kwargs)
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror or exc})") from None
