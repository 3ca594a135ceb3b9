"""The drift engine: a current window against a reference, feature by feature, then a verdict.

Method per feature (``Feature.drift_method``; ``auto`` picks by type and window size):

===========  ===============================  ===========================================
type         window <= large_window_rows      window > large_window_rows
===========  ===============================  ===========================================
numeric      ``ks`` (p-value, BH-adjusted)    ``wasserstein`` / reference std >= threshold
categorical  ``chi2`` (p-value, BH-adjusted)  ``jensen_shannon`` (base 2) >= threshold
===========  ===============================  ===========================================

Numeric means float and int, and datetime read as seconds since 1970-01-01 UTC (what the model
reads, as days). ``psi`` (either type) is judged against ``psi_threshold``. Every applicable
method is computed and reported; only the chosen one decides. Windows (or features) with at
most ``min_rows`` values are ``too_small``, never drift. Missing-rate changes and unseen categories are
reported apart from the distribution test. Details and the report schema: docs/drift.md.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, TypeAlias

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from mlops.data.profile import ColumnProfile, ReferenceProfile
from mlops.data.validation import coerce
from mlops.drift import stats
from mlops.drift.performance import Holdout, performance_drift
from mlops.drift.report import (
    CategoryChange,
    DriftReport,
    DriftSettings,
    FeatureDrift,
    MethodResult,
    MissingRate,
    PerformanceDrift,
    SideInfo,
)
from mlops.errors import InputError
from mlops.spec.model import NUMERIC_TYPES, FeatureType, ModelSpec

OTHER = "(other)"
PREDICTION = "prediction"
MAX_SCORE = 1000.0
# Values drawn from a profile's quantile function when its sample does not hold the whole column.
PSEUDO_SAMPLE = 20_000
NS_PER_SECOND = 1_000_000_000
DATETIME_NOTE = "datetime compared as seconds since 1970-01-01 UTC (what the model reads, as days)"


class DriftOptions(BaseModel):
    """Engine settings the spec does not carry (the spec's ``monitoring`` section gives the rest)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_missing_rate_change: float = Field(default=0.1, gt=0, le=1)
    psi_bins: int = Field(default=10, ge=2, le=100)
    # A string feature whose reference has more distinct values than this share of its values is
    # an identifier: every new value is "unseen" by construction, so it is not compared.
    identifier_ratio: float = Field(default=0.5, gt=0, le=1)
    plot_bins: int = Field(default=30, ge=2, le=200)
    plot_categories: int = Field(default=20, ge=1, le=200)
    list_categories: int = Field(default=20, ge=1, le=1000)


# ------------------------------------------------------------------------------ column sides
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


# -------------------------------------------------------------------------------- reference
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


# ----------------------------------------------------------------------------------- reading
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


# ------------------------------------------------------------------------------ comparisons
@dataclass(frozen=True)
class _Settings:
    min_rows: int
    large_window_rows: int
    alpha: float
    psi_threshold: float
    distance_threshold: float
    options: DriftOptions

    @classmethod
    def of(cls, spec: ModelSpec, options: DriftOptions) -> _Settings:
        m = spec.monitoring
        return cls(m.min_rows, m.large_window_rows, m.p_value, m.psi_threshold, m.distance_threshold, options)

    def public(self) -> DriftSettings:
        return DriftSettings(
            min_rows=self.min_rows,
            large_window_rows=self.large_window_rows,
            p_value=self.alpha,
            psi_threshold=self.psi_threshold,
            distance_threshold=self.distance_threshold,
            max_missing_rate_change=self.options.max_missing_rate_change,
        )


def _missing(reference: Side, current: Side, settings: _Settings) -> MissingRate:
    ref_rate = reference.nulls / reference.rows if reference.rows else 0.0
    cur_rate = current.nulls / current.rows if current.rows else 0.0
    change = cur_rate - ref_rate
    limit = settings.options.max_missing_rate_change
    flagged = current.rows > settings.min_rows and abs(change) > limit
    return MissingRate(reference=ref_rate, current=cur_rate, change=change, limit=limit, flagged=flagged)


def _choose(method: str, kind: str, current_count: int, settings: _Settings) -> tuple[str, str, float]:
    """(method, judged_by, alpha-or-threshold) for a feature."""
    if method == "auto":
        large = current_count > settings.large_window_rows
        by_size = {"numeric": ("ks", "wasserstein"), "categorical": ("chi2", "jensen_shannon")}[kind]
        method = by_size[large]
    if method in ("ks", "chi2"):
        return method, "p_value", settings.alpha
    if method == "psi":
        return method, "threshold", settings.psi_threshold
    return method, "threshold", settings.distance_threshold


def _start(
    name: str, kind: str, reference: Side, current: Side, exact: bool, has_values: bool, settings: _Settings
) -> FeatureDrift:
    """A feature's result before any method: counts and missing rates, or why it is not compared."""
    result = FeatureDrift(
        name=name,
        kind=kind,
        status="ok",
        reference_count=reference.count,
        current_count=current.count,
        exact=exact,
        missing=_missing(reference, current, settings),
    )
    if reference.count == 0 or not has_values:
        result.status = "no_reference"
        result.notes.append("the reference has no values for this feature")
    elif current.count <= settings.min_rows:
        result.status = "too_small"
        result.notes.append(f"{current.count} value(s) in the window; more than {settings.min_rows} needed")
    return result


def compare_numeric(
    name: str, reference: NumericSide, current: NumericSide, method: str, settings: _Settings
) -> FeatureDrift:
    """Every numeric method on one column; the chosen one decides (p-values adjusted later)."""
    result = _start(name, "numeric", reference, current, reference.exact, len(reference.values) > 0, settings)
    if result.status != "ok":
        return result
    ref, cur = reference.values, current.values
    comparison = stats.compare_sorted(ref, cur)
    # A profile's reference stands for ``count`` values, whatever the size of what it kept.
    ks_p = stats.ks_p_value(comparison.ks_statistic, reference.count, len(cur))
    spread = reference.std
    if not spread > 0:
        # No reference spread to measure against: the window's own spread, else unit scale.
        spread = current.std if current.std > 0 else 1.0
        result.notes.append(
            f"zero-variance reference (every value {float(ref[0]):g}): Wasserstein is divided by"
            f" {'the window std' if current.std > 0 else '1'} ({spread:.4g})"
        )
    cuts = stats.bin_cuts(ref, settings.options.psi_bins)
    psi_value = stats.psi(stats.sorted_counts(ref, cuts), stats.sorted_counts(cur, cuts))
    result.methods = {
        "ks": MethodResult(statistic=comparison.ks_statistic, p_value=ks_p),
        "wasserstein": MethodResult(statistic=comparison.wasserstein / spread),
        "psi": MethodResult(statistic=psi_value),
    }
    if not reference.exact:
        result.notes.append(
            f"reference from the profile's quantiles ({reference.count:,} values): statistics are approximate"
        )
    result.distribution = _numeric_distribution(ref, cur, settings.options.plot_bins)
    return _decide(result, method, settings)


def compare_categorical(
    name: str, reference: CategoricalSide, current: CategoricalSide, method: str, settings: _Settings
) -> FeatureDrift:
    """Every categorical method on one column; unseen and vanished categories listed apart."""
    result = _start(name, "categorical", reference, current, not reference.truncated, True, settings)
    if result.status != "ok":
        return result
    ref_counts, cur_counts = reference.counts, current.counts
    limit = settings.options.list_categories
    if reference.truncated or reference.other:
        # The profile kept only the most frequent categories: the rest is one bucket on both sides.
        known = cur_counts.index.isin(ref_counts.index)
        cur_counts = pd.concat([cur_counts[known], pd.Series({OTHER: int(cur_counts[~known].sum())})])
        ref_counts = pd.concat([ref_counts, pd.Series({OTHER: reference.other})])
        changes = CategoryChange(reference_truncated=True)
        result.notes.append("the reference profile kept only its most frequent categories: unseen ones are not listed")
    else:
        unseen = cur_counts[~cur_counts.index.isin(ref_counts.index)].sort_values(ascending=False, kind="stable")
        vanished = ref_counts[~ref_counts.index.isin(cur_counts.index)].sort_values(ascending=False, kind="stable")
        changes = CategoryChange(
            unseen=[str(x) for x in unseen.index[:limit]],
            unseen_count=len(unseen),
            unseen_fraction=float(unseen.sum() / current.count),
            vanished=[str(x) for x in vanished.index[:limit]],
            vanished_count=len(vanished),
        )
    union = ref_counts.index.union(cur_counts.index, sort=False)
    p = ref_counts.reindex(union, fill_value=0).to_numpy(dtype=np.float64)
    q = cur_counts.reindex(union, fill_value=0).to_numpy(dtype=np.float64)
    pooled_p, pooled_q, pooled = stats.pool_sparse_categories(p, q)
    chi2_statistic, chi2_p, _ = stats.chi2_homogeneity(pooled_p, pooled_q)
    if pooled:
        result.notes.append(
            f"chi-square pooled {pooled} categor{'y' if pooled == 1 else 'ies'} too rare for it into one bucket"
            " (Cochran's rule: no expected count below 1, at most a fifth below 5)"
        )
    result.methods = {
        "chi2": MethodResult(statistic=chi2_statistic, p_value=chi2_p),
        "jensen_shannon": MethodResult(statistic=stats.jensen_shannon(p, q)),
        "psi": MethodResult(statistic=stats.psi(p, q)),
    }
    result.categories = changes
    result.distribution = _categorical_distribution(union, p, q, settings.options.plot_categories)
    return _decide(result, method, settings)


def _decide(result: FeatureDrift, method: str, settings: _Settings) -> FeatureDrift:
    kind = result.kind
    chosen, judged_by, level = _choose(method, kind, result.current_count, settings)
    applies = {"numeric": ("ks", "wasserstein", "psi"), "categorical": ("chi2", "jensen_shannon", "psi")}[kind]
    if chosen not in applies:  # a spec override that does not apply (chi2 on a datetime feature)
        result.notes.append(f"drift_method {chosen} does not apply to a {kind} comparison: the default decides")
        chosen, judged_by, level = _choose("auto", kind, result.current_count, settings)
    measured = result.methods[chosen]
    result.method, result.judged_by, result.statistic = chosen, judged_by, measured.statistic  # type: ignore[assignment]
    if judged_by == "p_value":
        result.p_value = measured.p_value
        result.alpha = level
        result.p_value_adjusted = measured.p_value  # replaced by the BH value across features
    else:
        result.threshold = level
    _score(result)
    if judged_by == "threshold" and result.drifted and result.current_count <= settings.large_window_rows:
        _noise_guard(result, settings)
    return result


def _noise_guard(result: FeatureDrift, settings: _Settings) -> None:
    """On a window of at most ``large_window_rows``, a distance is drift only if it is also real.

    A spec may ask for an effect-size method on any window; on a small one, sampling noise alone
    gives distances near the thresholds (a 400-row window of a mixture can sit at a normalized
    Wasserstein of 0.12 from its own population). So the feature's test (KS, chi-square) must
    also reject at ``p_value``; otherwise the feature is not drifted and the note says why.
    """
    test = "ks" if result.kind == "numeric" else "chi2"
    check = result.methods.get(test)
    if check is None or check.p_value is None or check.p_value < settings.alpha:
        return
    result.notes.append(
        f"{result.method} {result.statistic:.3g} reaches its threshold {result.threshold:g}, but on "
        f"{result.current_count} rows {test} finds no difference (p={check.p_value:.3g} >= {settings.alpha:g}): "
        "a distance sampling noise explains is not drift"
    )
    result.score = min(result.score, 0.99)
    result.drifted, result.status, result.severity = False, "ok", "low"


def _score(result: FeatureDrift) -> None:
    """Severity score: 1 at the decision boundary (statistic / threshold, or log p / log alpha)."""
    if result.judged_by == "threshold" and result.statistic is not None and result.threshold:
        score = result.statistic / result.threshold
    elif result.judged_by == "p_value" and result.p_value_adjusted is not None and result.alpha:
        score = math.log(max(result.p_value_adjusted, 1e-300)) / math.log(result.alpha)
    else:
        score = 0.0
    result.score = float(min(max(score, 0.0), MAX_SCORE))
    result.drifted = result.score >= 1.0
    result.status = "drifted" if result.drifted else "ok"
    if result.drifted:
        result.severity = "high" if result.score >= 2.0 else "medium"
    else:
        result.severity = "low" if result.score >= 0.5 else "none"


def _numeric_distribution(ref: np.ndarray, cur: np.ndarray, bins: int) -> Any:
    from mlops.drift.report import Distribution

    tails = np.array([0.005, 0.995])
    (ref_low, ref_high), (cur_low, cur_high) = stats.sorted_quantiles(ref, tails), stats.sorted_quantiles(cur, tails)
    low, high = float(min(ref_low, cur_low)), float(max(ref_high, cur_high))
    if not high > low:
        low, high = low - 0.5, high + 0.5
    edges = np.linspace(low, high, bins + 1)
    # Values outside the plotted range are counted in the outermost bins.
    ref_counts = stats.sorted_counts(ref, edges[1:-1])
    cur_counts = stats.sorted_counts(cur, edges[1:-1])
    return Distribution(
        kind="numeric",
        edges=[float(e) for e in edges],
        reference=[float(x) for x in ref_counts / len(ref)],
        current=[float(x) for x in cur_counts / len(cur)],
    )


def _categorical_distribution(labels: pd.Index, p: np.ndarray, q: np.ndarray, limit: int) -> Any:
    from mlops.drift.report import Distribution

    p, q = p / p.sum(), q / q.sum()
    order = np.argsort(-np.maximum(p, q), kind="stable")
    keep, rest = order[:limit], order[limit:]
    names = [str(labels[i]) for i in keep]
    ref, cur = [float(p[i]) for i in keep], [float(q[i]) for i in keep]
    if len(rest):
        names.append(f"{OTHER} {len(rest)} more")
        ref.append(float(p[rest].sum()))
        cur.append(float(q[rest].sum()))
    return Distribution(kind="categorical", labels=names, reference=ref, current=cur)


# ---------------------------------------------------------------------------------- entry
def compare_feature(
    name: str, kind: str, reference: Side | None, current: Side | None, method: str, settings: _Settings
) -> FeatureDrift:
    if current is None:
        return FeatureDrift(name=name, kind=kind, status="missing_column", notes=["the window has no such column"])
    if reference is None:
        return FeatureDrift(
            name=name,
            kind=kind,
            status="no_reference",
            current_count=current.count,
            notes=["not in the reference"],
        )
    if isinstance(reference, NumericSide) and isinstance(current, NumericSide):
        return compare_numeric(name, reference, current, method, settings)
    if isinstance(reference, CategoricalSide) and isinstance(current, CategoricalSide):
        return compare_categorical(name, reference, current, method, settings)
    return FeatureDrift(name=name, kind=kind, status="no_reference", notes=["the reference column has another type"])


def drift_report(
    reference: ReferenceLike,
    current: pd.DataFrame | str | Path,
    spec: ModelSpec,
    *,
    options: DriftOptions | None = None,
    current_source: str | None = None,
    reference_predictions: np.ndarray | pd.Series | None = None,
    current_predictions: np.ndarray | pd.Series | None = None,
    prediction_column: str | None = None,
    labels: np.ndarray | pd.Series | None = None,
    registered_metrics: Mapping[str, float] | None = None,
    probabilities: np.ndarray | None = None,
    model_classes: Sequence[Any] | None = None,
    holdout: Holdout | None = None,
) -> DriftReport:
    """Compare a current window with a reference and give the per-feature and dataset verdicts.

    Parameters
    ----------
    reference
        A :class:`Reference`, a :class:`~mlops.data.profile.ReferenceProfile`, the training
        DataFrame, or a path to a saved profile (JSON) or the training data (CSV).
    current
        The window: a DataFrame (raw or typed columns by feature name) or a CSV path.
    spec
        The model spec: feature types, ``drift_method`` overrides and ``monitoring`` settings.
    options
        Engine settings the spec does not carry (:class:`DriftOptions`).
    current_source
        Named in the report (defaults to the path, or ``<dataframe>``).
    reference_predictions, current_predictions
        The model's outputs on each side, for prediction drift; or ``prediction_column`` names
        a column present in both frames.
    labels, registered_metrics
        Ground truth for the window's rows (aligned with ``current_predictions`` or the
        prediction column) and the registered holdout metrics: performance drift
        (:func:`mlops.drift.performance.performance_drift`, settings in the spec's
        ``monitoring.performance``).
    probabilities, model_classes, holdout
        For performance drift: the served class probabilities of those rows and the class of
        each column (ROC AUC, log loss), and what is known of the registered holdout.

    Returns
    -------
    DriftReport
        Features sorted worst first; ``drifted`` is True when a feature drifted (after
        Benjamini-Hochberg across the features judged by p-value), a missing rate changed
        beyond its limit, the predictions drifted or performance degraded.

    Examples
    --------
    >>> report = drift_report("train.csv", "window.csv", spec)  # doctest: +SKIP
    >>> report.verdict, report.drifted_features  # doctest: +SKIP
    ('drifted', ['monthly_charges'])
    """
    started = time.perf_counter()
    options = options or DriftOptions()
    settings = _Settings.of(spec, options)
    ref = as_reference(reference, spec)
    extra = [prediction_column] if prediction_column else []
    if isinstance(current, pd.DataFrame):
        frame, source = current, current_source or "<dataframe>"
    else:
        frame, source = read_window(current, spec, extra=extra), current_source or str(current)
    notes: list[str] = []
    if ref.model and ref.model != spec.name:
        notes.append(f"the reference was profiled for model {ref.model!r}, the spec is {spec.name!r}")
    elif ref.spec_fingerprint and ref.spec_fingerprint != spec.fingerprint():
        notes.append("the reference was profiled under another revision of the spec")

    features: list[FeatureDrift] = []
    for feature in spec.features:
        kind = _kind(feature.type)
        ref_side = ref.columns.get(feature.name)
        if kind == "categorical" and feature.type is FeatureType.STRING and _identifier_like(ref_side, options):
            features.append(
                FeatureDrift(
                    name=feature.name,
                    kind="categorical",
                    status="not_monitored",
                    notes=["identifier-like: almost every reference value is distinct"],
                )
            )
            continue
        cur_side = _side(frame[feature.name], feature.type) if feature.name in frame.columns else None
        if feature.name in ref.ranges and ref_side is None:
            result = _range_only(feature.name, ref.ranges[feature.name], cur_side)
        else:
            result = compare_feature(feature.name, kind, ref_side, cur_side, feature.drift_method, settings)
        if feature.type is FeatureType.DATETIME:
            result.notes.insert(0, DATETIME_NOTE)
            if result.distribution is not None:
                result.distribution.unit = "epoch_seconds"  # the chart labels its bins as dates
        features.append(result)

    prediction = None
    if prediction_column and current_predictions is None and prediction_column in frame.columns:
        current_predictions = frame[prediction_column].to_numpy()
        if isinstance(reference, pd.DataFrame) and prediction_column in reference.columns:
            reference_predictions = reference[prediction_column].to_numpy()
    if reference_predictions is not None and current_predictions is not None:
        prediction = prediction_drift(reference_predictions, current_predictions, spec, options=options)
    performance = None
    if labels is not None and registered_metrics is not None and current_predictions is not None:
        performance = performance_drift(
            labels,
            current_predictions,
            spec,
            registered_metrics,
            probabilities=probabilities,
            model_classes=model_classes,
            holdout=holdout,
        )

    return _verdict(spec, ref, source, len(frame), features, prediction, performance, settings, notes, started)


def _range_only(name: str, training_range: tuple[float, float], current: Side | None) -> FeatureDrift:
    """A datetime feature whose stored profile kept only its range: no test, the share outside it."""
    result = FeatureDrift(name=name, kind="numeric", status="no_reference")
    note = "the reference profile keeps only this feature's range (compare with the training data to test it)"
    if isinstance(current, NumericSide) and current.count:
        low, high = training_range
        inside = int(np.searchsorted(current.values, high, side="right") - np.searchsorted(current.values, low))
        result.current_count = current.count
        share = (current.count - inside) / current.count
        note += f": {share:.1%} of the window's values are outside the training range"
    result.notes.append(note)
    return result


def _identifier_like(side: Side | None, options: DriftOptions) -> bool:
    if not isinstance(side, CategoricalSide) or side.count < 50:
        return False
    return side.distinct > options.identifier_ratio * side.count


def _verdict(
    spec: ModelSpec,
    ref: Reference,
    source: str,
    rows: int,
    features: list[FeatureDrift],
    prediction: FeatureDrift | None,
    performance: PerformanceDrift | None,
    settings: _Settings,
    notes: list[str],
    started: float,
) -> DriftReport:
    tested = [f for f in features if f.judged_by == "p_value" and f.p_value is not None]
    if tested:
        adjusted = stats.benjamini_hochberg(np.array([f.p_value for f in tested]))
        for feature, value in zip(tested, adjusted, strict=True):
            feature.p_value_adjusted = float(value)
            _score(feature)
    too_small = rows <= settings.min_rows
    if too_small:
        for feature in features:
            if feature.status in ("ok", "drifted"):
                feature.status, feature.drifted, feature.severity = "too_small", False, "none"
        notes.append(f"{rows} row(s) in the window; more than {settings.min_rows} needed: never reported as drift")
    drifted = [f.name for f in features if f.drifted]
    alerts = [f.name for f in features if f.missing is not None and f.missing.flagged and not too_small]
    features.sort(key=lambda f: (not (f.drifted or f.name in alerts), -f.score, f.name))
    compared = sum(1 for f in features if f.status in ("ok", "drifted"))
    any_drift = bool(drifted or alerts or (prediction is not None and prediction.drifted))
    any_drift = any_drift or (performance is not None and performance.status == "degraded")
    any_drift = any_drift and not too_small
    return DriftReport(
        model=spec.name,
        spec_fingerprint=spec.fingerprint(),
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        reference=SideInfo(source=ref.source, rows=ref.rows, exact=ref.exact),
        current=SideInfo(source=source, rows=rows),
        settings=settings.public(),
        verdict="too_small" if too_small else "drifted" if any_drift else "no_drift",
        drifted=any_drift,
        drifted_features=drifted,
        missing_rate_alerts=alerts,
        drift_share=len(drifted) / compared if compared else 0.0,
        features=features,
        prediction=prediction,
        performance=performance,
        notes=notes,
        seconds=round(time.perf_counter() - started, 4),
    )


# -------------------------------------------------------------------- predictions, performance
def prediction_drift(
    reference: np.ndarray | pd.Series,
    current: np.ndarray | pd.Series,
    spec: ModelSpec,
    *,
    options: DriftOptions | None = None,
) -> FeatureDrift:
    """Drift of the model's outputs: class labels (classification) or values (regression).

    Judged on its own (no multiple-testing adjustment), by the default method for its type and
    window size.
    """
    settings = _Settings.of(spec, options or DriftOptions())
    if spec.task == "regression":
        result = compare_numeric(PREDICTION, numeric_side(reference), numeric_side(current), "auto", settings)
    else:
        result = compare_categorical(
            PREDICTION, categorical_side(reference, "class"), categorical_side(current, "class"), "auto", settings
        )
    return result
