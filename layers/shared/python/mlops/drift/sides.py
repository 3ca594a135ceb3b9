"""One column of either side of a drift comparison, ready to compare: a numeric column as its sorted
finite values (or a profile's sample), a categorical one as counts per label read the way validation
reads them; :class:`Reference`, the reference side (a frame or a stored profile) column by column;
and :func:`read_window`, the current side.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TypeAlias

import numpy as np
import pandas as pd

from mlops.data.profile import ColumnProfile, ReferenceProfile
from mlops.data.validation import coerce
from mlops.drift import stats
from mlops.errors import InputError
from mlops.spec.model import NUMERIC_TYPES, FeatureType, ModelSpec

OTHER = "(other)"


# Values drawn from a profile's quantile function when its sample does not hold the whole column.
PSEUDO_SAMPLE = 20_000


NS_PER_SECOND = 1_000_000_000


DATETIME_NOTE = "datetime compared as seconds since 1970-01-01 UTC (what the model reads, as days)"


@dataclass
class NumericSide:
    """A numeric column: sorted finite values (all of them, or a uniform sample) and counts."""

    values: np.ndarray
    count: int
    rows: int
    nulls: int
    std: float
    exact: bool = True


@dataclass
class CategoricalSide:
    """A categorical column: counts per category label (and a bucket for labels not kept)."""

    counts: pd.Series
    rows: int
    nulls: int
    other: int = 0
    truncated: bool = False
    distinct: int = 0

    @property
    def count(self) -> int:
        return int(self.counts.sum()) + self.other


Side = NumericSide | CategoricalSide


def _kind(feature_type: FeatureType) -> str:
    """``numeric`` (float, int, and datetime as epoch seconds) or ``categorical`` (the rest)."""
    if feature_type in NUMERIC_TYPES or feature_type is FeatureType.DATETIME:
        return "numeric"
    return "categorical"


def numeric_side(series: pd.Series | np.ndarray) -> NumericSide:
    """Sorted finite values of a column read as numbers (missing and non-numbers left out)."""
    series = series if isinstance(series, pd.Series) else pd.Series(np.asarray(series))
    parsed = coerce.numeric(series)
    return _sorted_side(parsed.values.astype(np.float64, copy=False))


def datetime_side(series: pd.Series | np.ndarray) -> NumericSide:
    """A datetime column as sorted seconds since 1970-01-01 UTC (missing and non-dates left out).

    Text is parsed as validation parses it (ISO 8601, naive means UTC); ``datetime64`` columns
    (with or without a time zone) are taken as they are.
    """
    return _sorted_side(datetime_seconds(series))


def datetime_seconds(series: pd.Series | np.ndarray) -> np.ndarray:
    """Seconds since 1970-01-01 UTC as float64, NaN where a value is missing or not a date/time."""
    series = series if isinstance(series, pd.Series) else pd.Series(np.asarray(series))
    if series.dtype.kind == "M" or isinstance(series.dtype, pd.DatetimeTZDtype):
        stamps = series.dt.tz_convert(None) if getattr(series.dt, "tz", None) is not None else series
        ns = np.asarray(stamps, dtype="datetime64[ns]")
    else:
        codes, uniques, _ = coerce.factorized(series)
        by_code = coerce.datetimes(uniques)
        ns = np.full(len(series), np.datetime64("NaT"), dtype="datetime64[ns]")
        present = codes >= 0
        ns[present] = by_code[codes[present]]
    seconds = ns.astype(np.int64).astype(np.float64) / NS_PER_SECOND
    seconds[np.isnat(ns)] = np.nan
    return seconds


def _sorted_side(values: np.ndarray) -> NumericSide:
    finite = np.isfinite(values)
    # Most columns have no missing value: sort them without first copying the finite ones out.
    kept = values if finite.all() else values[finite]
    ordered = np.sort(kept)
    return NumericSide(
        values=ordered, count=len(ordered), rows=len(values), nulls=len(values) - len(ordered), std=stats.std(ordered)
    )


def _category_counts(series: pd.Series) -> tuple[np.ndarray, np.ndarray, int]:
    """``(uniques as text, count of each, missing count)``, the way ``coerce.factorized`` reads them.

    The column is counted first (``Series.value_counts``: one hash pass, no per-row codes), and
    only its distinct values are then read as text by ``coerce.factorized``; their counts are
    summed per text. ``pandas.factorize`` of the whole column gives the same result 5-15x slower
    (it builds a code per row); a categorical column is read through its categories as validation
    reads it.
    """
    if isinstance(series.dtype, pd.CategoricalDtype):
        codes, uniques, null = coerce.factorized(series)
        present = codes >= 0
        return uniques, np.bincount(codes[present], minlength=len(uniques)), int(np.count_nonzero(null))
    counted = series.value_counts(sort=False, dropna=False)
    per_value = counted.to_numpy(dtype=np.int64)
    codes, uniques, null = coerce.factorized(pd.Series(counted.index.to_numpy(dtype=object), dtype=object))
    present = codes >= 0
    counts = np.bincount(codes[present], weights=per_value[present], minlength=len(uniques)).astype(np.int64)
    return uniques, counts, int(per_value[null].sum())


def categorical_side(series: pd.Series | np.ndarray, feature_type: FeatureType | str) -> CategoricalSide:
    """Counts per category, labelled the way the reference profile labels them."""
    series = series if isinstance(series, pd.Series) else pd.Series(np.asarray(series, dtype=object))
    uniques, counts, missing = _category_counts(series)
    if feature_type is FeatureType.BOOL:
        ok, truth = coerce.booleans(uniques)
        labels = np.where(truth, "true", "false").astype(object)
        labels[~ok] = ""
    elif feature_type == "class":
        labels = np.asarray([coerce.label(u) for u in uniques], dtype=object)
    else:
        labels = uniques
    # Sorted by label: the categories' order (and so every sum over them) must not follow row order.
    table = pd.Series(counts, index=pd.Index(labels, dtype=object)).groupby(level=0, sort=True).sum()
    invalid = int(table.get("", 0))
    table = table[(table.index != "") & (table > 0)].astype(np.int64)
    return CategoricalSide(counts=table, rows=len(series), nulls=missing + invalid, distinct=len(table))


def _side_from_profile(column: ColumnProfile) -> Side | None:
    if column.numeric is not None:
        stats_ = column.numeric
        sample = np.asarray(stats_.sample, dtype=np.float64)
        exact = len(sample) == stats_.count
        if not exact and len(stats_.quantiles) > 1:
            # The 0.1%-quantiles describe the column far better than the 5,000-value sample (whose own
            # KS distance to the column is ~0.012, the same for every window): evaluate their
            # piecewise-linear quantile function on a stratified grid of levels.
            size = min(stats_.count, PSEUDO_SAMPLE)
            levels = np.linspace(0.0, 1.0, len(stats_.quantiles))
            sample = np.interp((np.arange(size) + 0.5) / size, levels, np.asarray(stats_.quantiles))
        return NumericSide(
            values=sample,
            count=stats_.count,
            rows=column.rows,
            nulls=column.rows - stats_.count,
            std=stats_.std,
            exact=exact,
        )
    if column.categorical is not None:
        cats = column.categorical
        counts = pd.Series(cats.frequencies, dtype=np.int64)
        counts.index = pd.Index(list(cats.frequencies), dtype=object)
        counts = counts.sort_index()  # by label, as a window's categories are
        return CategoricalSide(
            counts=counts,
            rows=column.rows,
            nulls=column.null_count + column.invalid_count,
            other=cats.other_count,
            truncated=cats.truncated,
            distinct=cats.distinct,
        )
    return None


@dataclass
class Reference:
    """What the window is compared against, column by column.

    Built from the training data itself (:meth:`from_frame`, :meth:`load` of a CSV): every
    statistic is exact. Built from a stored :class:`ReferenceProfile` (:meth:`from_profile`):
    categorical counts, null rates and the std are exact; numeric comparisons use the profile's
    sorted uniform sample (exact when the column had at most that many values).
    """

    source: str
    rows: int
    columns: dict[str, Side]
    exact: bool
    model: str = ""
    spec_fingerprint: str = ""
    # Datetime columns of a profile that kept only their range: (min, max) in epoch seconds.
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, spec: ModelSpec, source: str = "<dataframe>") -> Reference:
        columns: dict[str, Side] = {}
        for feature in spec.features:
            if feature.name not in frame.columns:
                continue
            columns[feature.name] = _side(frame[feature.name], feature.type)
        return cls(source=source, rows=len(frame), columns=columns, exact=True, model=spec.name)

    @classmethod
    def from_profile(cls, profile: ReferenceProfile) -> Reference:
        columns: dict[str, Side] = {}
        ranges: dict[str, tuple[float, float]] = {}
        for name, column in profile.columns.items():
            if column.role != "feature":
                continue
            side = _side_from_profile(column)
            if side is not None:
                columns[name] = side
            elif column.datetime is not None:
                low, high = datetime_seconds(pd.Series([column.datetime.min, column.datetime.max], dtype=object))
                if np.isfinite(low) and np.isfinite(high):
                    ranges[name] = (float(low), float(high))
        exact = all(not isinstance(s, NumericSide) or s.exact for s in columns.values())
        exact = exact and all(not isinstance(s, CategoricalSide) or not s.truncated for s in columns.values())
        return cls(
            source=profile.source or "reference profile",
            rows=profile.row_count,
            columns=columns,
            exact=exact,
            model=profile.model,
            spec_fingerprint=profile.spec_fingerprint,
            ranges=ranges,
        )

    @classmethod
    def load(cls, path: str | Path, spec: ModelSpec) -> Reference:
        """A reference from a saved profile (JSON) or from the training data (CSV / gzip CSV)."""
        path = Path(path)
        try:
            with path.open("rb") as handle:
                head = handle.read(64).lstrip()
        except OSError as exc:
            raise InputError(f"{path}: cannot be read ({exc.strerror or exc})") from None
        if head.startswith(b"{"):
            return cls.from_profile(ReferenceProfile.load(path))
        return cls.from_frame(read_window(path, spec), spec, str(path))


ReferenceLike: TypeAlias = Reference | ReferenceProfile | pd.DataFrame | str | Path


def _side(column: pd.Series, feature_type: FeatureType) -> Side:
    if feature_type is FeatureType.DATETIME:
        return datetime_side(column)
    if feature_type in NUMERIC_TYPES:
        return numeric_side(column)
    return categorical_side(column, feature_type)


def as_reference(reference: ReferenceLike, spec: ModelSpec) -> Reference:
    """Accept a :class:`Reference`, a profile, a training DataFrame or a file path."""
    if isinstance(reference, Reference):
        return reference
    if isinstance(reference, ReferenceProfile):
        return Reference.from_profile(reference)
    if isinstance(reference, pd.DataFrame):
        return Reference.from_frame(reference, spec)
    return Reference.load(reference, spec)


def read_window(
    source: str | Path | IO[bytes], spec: ModelSpec, source_name: str | None = None, extra: Sequence[str] = ()
) -> pd.DataFrame:
    """Read a CSV / gzip CSV window as validation reads it: the spec's columns that are present.

    Parameters
    ----------
    source
        A path or a binary stream (an S3 ``StreamingBody``).
    spec
        The model spec (which columns, which are text).
    source_name
        Named in messages; defaults to the path.
    extra
        More columns to keep when present (the target, a prediction column, a request id).

    Raises
    ------
    InputError
        The data cannot be read, or none of the spec's features is in its header.
    """
    from mlops.data.validation.engine import read_as_text
    from mlops.data.validation.reader import CsvReader

    if isinstance(source, str | Path):
        path = Path(source)
        try:
            with path.open("rb") as handle:
                return read_window(handle, spec, source_name or str(path), extra)
        except OSError as exc:
            raise InputError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    name = source_name or "<stream>"
    wanted = list(dict.fromkeys([*spec.feature_names, spec.target.name, *extra]))
    reader = CsvReader(source, name, wanted, read_as_text(spec) | {c for c in extra if c != spec.target.name})
    frames = [chunk.frame for chunk in reader.chunks()]
    if reader.fatal or reader.header is None:
        problems = "; ".join(f.message for f in reader.findings() if f.status == "failed") or "no header"
        raise InputError(f"{name}: cannot be read: {problems}")
    present = [c for c in wanted if c in reader.used]
    if not any(f in reader.used for f in spec.feature_names):
        raise InputError(
            f"{name}: none of the spec's features ({', '.join(spec.feature_names[:5])}, ...) is in its header"
        )
    if not frames:
        return pd.DataFrame({c: pd.Series([], dtype=object) for c in present})
    return pd.concat(frames, ignore_index=True)[present]
