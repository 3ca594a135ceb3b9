"""The checks: a spec compiled into per-column plans that run vectorized on each chunk.

Every check keeps a tally (failing count plus the first ``max_examples`` failing rows) that
grows chunk by chunk, so a dataset of any size is checked in one pass with bounded memory.
Uniqueness and duplicate rows across chunks keep 64-bit hashes of what was seen (16 bytes a
row), in sorted runs that are merged like a log-structured tree.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from mlops.data.validation import coerce
from mlops.data.validation.report import CheckResult, Example, Status
from mlops.spec.model import Feature, FeatureType, ModelSpec

if TYPE_CHECKING:
    from mlops.data.profile import ColumnProfile, ReferenceProfile


class ValidationOptions(BaseModel):
    """Knobs that are not part of the model spec (defaults are the platform's policy).

    The per-model settings come from the spec, never from here: ``validation.duplicate_rows``
    (error, warning or off) and ``fairness.min_group_size`` (see :func:`settings_in_force`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_examples: int = Field(default=5, ge=0, le=1000)
    # Reference checks: shift of the mean in reference standard deviations, ratio of standard
    # deviations, absolute change of the missing rate, share of rows holding unseen categories.
    reference_severity: Literal["error", "warning"] = "error"
    max_mean_shift: float = Field(default=0.5, gt=0)
    std_ratio_bounds: tuple[float, float] = (0.5, 2.0)
    max_missing_rate_change: float = Field(default=0.1, gt=0, le=1)
    max_new_category_fraction: float = Field(default=0.0, ge=0, le=1)


def settings_in_force(spec: ModelSpec) -> dict[str, Any]:
    """The spec's validation settings a report was made with (its ``settings`` block)."""
    fairness = spec.fairness
    return {
        "duplicate_rows": spec.validation.duplicate_rows,
        "fairness": {
            "mode": fairness.mode,
            "min_group_size": fairness.min_group_size,
            "min_disparate_impact": fairness.min_disparate_impact,
            "protected_attributes": list(fairness.protected_attributes),
        },
    }


class _Tally:
    __slots__ = ("count", "examples", "limit")

    def __init__(self, limit: int) -> None:
        self.count = 0
        self.examples: list[Example] = []
        self.limit = limit

    def add(self, mask: np.ndarray | None, rows: np.ndarray, values: Any, note: str | None = None) -> None:
        """Count ``mask``'s hits; keep the first examples (``values`` indexable like ``mask``)."""
        if mask is None:
            return
        hits = int(np.count_nonzero(mask))
        if not hits:
            return
        self.count += hits
        room = self.limit - len(self.examples)
        if room > 0:
            for i in np.flatnonzero(mask)[:room]:
                value = values[i] if values is not None else None
                self.examples.append(Example(row=int(rows[i]), value=_show(value), note=note))

    def add_one(self, row: int | None, value: Any, note: str | None = None) -> None:
        self.count += 1
        if len(self.examples) < self.limit:
            self.examples.append(Example(row=row, value=_show(value), note=note))


def _show(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None if value is None else "NaN"
    if isinstance(value, float | np.floating):
        number = float(value)
        return str(int(number)) if number.is_integer() and abs(number) < 1e16 else repr(number)
    text = str(value)
    return text if len(text) <= 200 else text[:197] + "..."


class _SeenHashes:
    """Set of 64-bit hashes with the row that first held each, checked and grown per chunk."""

    def __init__(self) -> None:
        self._runs: list[tuple[np.ndarray, np.ndarray]] = []

    def check_and_add(self, hashes: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For each hash: was it seen before (earlier chunk or earlier in this one), and where first."""
        n = len(hashes)
        order = np.argsort(hashes, kind="stable")
        sorted_hashes = hashes[order]
        sorted_rows = rows[order]
        first = np.ones(n, dtype=bool)
        first[1:] = sorted_hashes[1:] != sorted_hashes[:-1]
        group_start = np.maximum.accumulate(np.where(first, np.arange(n), 0))
        first_row = sorted_rows[group_start]
        duplicate = ~first
        seen_before = np.zeros(n, dtype=bool)
        for run_hashes, run_rows in reversed(self._runs):  # oldest run last: its row wins
            at = np.minimum(np.searchsorted(run_hashes, sorted_hashes), len(run_hashes) - 1)
            hit = run_hashes[at] == sorted_hashes
            seen_before |= hit
            first_row = np.where(hit, run_rows[at], first_row)
        duplicate |= seen_before
        new = first & ~seen_before
        if new.any():
            self._runs.append((sorted_hashes[new], sorted_rows[new]))
            while len(self._runs) > 1 and len(self._runs[-2][0]) <= 2 * len(self._runs[-1][0]):
                (h1, r1), (h2, r2) = self._runs[-2], self._runs[-1]
                merged_h = np.concatenate([h1, h2])
                merged_r = np.concatenate([r1, r2])
                merge_order = np.argsort(merged_h, kind="stable")
                self._runs[-2:] = [(merged_h[merge_order], merged_r[merge_order])]
        out_duplicate = np.empty(n, dtype=bool)
        out_duplicate[order] = duplicate
        out_first = np.empty(n, dtype=rows.dtype)
        out_first[order] = first_row
        return out_duplicate, out_first


@dataclass
class _Moments:
    """Count, mean and M2 merged chunk by chunk (Chan et al.), for the reference comparison."""

    count: int = 0
    mean: float = 0.0
    m2: float = 0.0

    def add(self, values: np.ndarray) -> None:
        if not len(values):
            return
        n = len(values)
        mean = float(values.mean())
        m2 = float(((values - mean) ** 2).sum())
        delta = mean - self.mean
        total = self.count + n
        self.mean += delta * n / total
        self.m2 += m2 + delta * delta * self.count * n / total
        self.count = total

    @property
    def std(self) -> float:
        return float(np.sqrt(self.m2 / (self.count - 1))) if self.count > 1 else 0.0


@dataclass
class _Column:
    """The compiled checks of one spec column (a feature or the target)."""

    name: str
    type: FeatureType
    role: Literal["feature", "target"]
    nullable: bool
    min: float | None = None
    max: float | None = None
    allowed: list[Any] | None = None
    regex: re.Pattern[str] | None = None
    unique: bool = False
    classes: list[str] | None = None
    positive: str | None = None
    reference: ColumnProfile | None = None
    tallies: dict[str, _Tally] = field(default_factory=dict)
    seen: _SeenHashes | None = None
    moments: _Moments | None = None
    class_counts: Counter[str] = field(default_factory=Counter)
    present: bool = True
    ref_rows: int = 0
    ref_nulls: int = 0

    @property
    def numeric(self) -> bool:
        return self.type in (FeatureType.FLOAT, FeatureType.INT)

    @property
    def prefix(self) -> str:
        return "target" if self.role == "target" else "column"


def read_as_text(spec: ModelSpec) -> set[str]:
    """Columns a reader should keep as text (everything whose type is not a number)."""
    names = {f.name for f in spec.features if f.type not in (FeatureType.FLOAT, FeatureType.INT)}
    if spec.task == "classification":
        names.add(spec.target.name)
    return names


class Validator:
    """Runs a spec's checks over chunks; ``results`` gives the findings once every chunk is in.

    Parameters
    ----------
    spec:
        The model spec whose constraints are checked.
    reference:
        Optional reference profile (from the champion's training data) for the statistical checks.
    options:
        Policy knobs not in the spec (example count, reference thresholds). Duplicate rows
        follow ``spec.validation.duplicate_rows``; fairness groups ``spec.fairness.min_group_size``.
    """

    def __init__(
        self, spec: ModelSpec, reference: ReferenceProfile | None = None, options: ValidationOptions | None = None
    ) -> None:
        self.spec = spec
        self.reference = reference
        self.options = options or ValidationOptions()
        self.rows = 0
        self.columns: list[_Column] = [self._compile(f) for f in spec.features]
        self.target = self._compile_target()
        self._all = [*self.columns, self.target]
        self.duplicate_rows = spec.validation.duplicate_rows
        self._duplicates = _Tally(self.options.max_examples)
        self._seen_rows = _SeenHashes() if self.duplicate_rows != "off" else None
        self._groups: dict[str, dict[str, list[int]]] = {a: {} for a in spec.fairness.protected_attributes}
        self.header: list[str] | None = None

    # --------------------------------------------------------------------------- compiling
    def _reference_for(self, name: str) -> ColumnProfile | None:
        if self.reference is None:
            return None
        return self.reference.columns.get(name)

    def _compile(self, feature: Feature) -> _Column:
        column = _Column(
            name=feature.name,
            type=feature.type,
            role="feature",
            nullable=feature.nullable,
            min=feature.min,
            max=feature.max,
            regex=re.compile(feature.regex) if feature.regex else None,
            unique=feature.unique,
            reference=self._reference_for(feature.name),
        )
        if feature.allowed is not None:
            column.allowed = (
                [float(v) for v in feature.allowed if not isinstance(v, str) or _is_number(v)]
                if column.numeric
                else sorted({coerce.label(v) for v in feature.allowed} | {str(v) for v in feature.allowed})
            )
        if column.unique:
            column.seen = _SeenHashes()
        if column.reference is not None and column.numeric:
            column.moments = _Moments()
        return column

    def _compile_target(self) -> _Column:
        target = self.spec.target
        if self.spec.task == "classification":
            classes = [coerce.label(c) for c in target.classes or []]
            positive = self.spec.positive_class
            return _Column(
                name=target.name,
                type=FeatureType.CATEGORY,
                role="target",
                nullable=False,
                classes=classes,
                positive=coerce.label(positive) if positive is not None else None,
                reference=self._reference_for(target.name),
            )
        column = _Column(
            name=target.name,
            type=FeatureType.FLOAT,
            role="target",
            nullable=False,
            min=target.min,
            max=target.max,
            reference=self._reference_for(target.name),
        )
        if column.reference is not None:
            column.moments = _Moments()
        return column

    def tally(self, column: _Column, check: str) -> _Tally:
        found = column.tallies.get(check)
        if found is None:
            found = column.tallies[check] = _Tally(self.options.max_examples)
        return found

    # ------------------------------------------------------------------------------ chunks
    def start(self, header: list[str]) -> None:
        """Record the dataset's columns (before the first chunk)."""
        self.header = [str(h) for h in header]
        present = set(self.header)
        for column in self._all:
            column.present = column.name in present

    def consume(self, frame: pd.DataFrame, rows: np.ndarray) -> None:
        """Check one chunk; ``rows`` holds each frame row's 1-based row number in the file."""
        self.rows += len(frame)
        if not len(frame):
            return
        positive: np.ndarray | None = None
        valid_label: np.ndarray | None = None
        if self.target.present:
            positive, valid_label = self._target(frame[self.target.name], rows)
        for column in self.columns:
            if column.present:
                self._feature(column, frame[column.name], rows)
        if self._seen_rows is not None:
            self._duplicate_rows(frame, rows)
        if positive is not None and valid_label is not None:
            for attribute, groups in self._groups.items():
                if attribute in frame.columns:
                    self._fairness(groups, frame[attribute], positive, valid_label)

    def _feature(self, column: _Column, series: pd.Series, rows: np.ndarray) -> None:
        if column.numeric:
            self._numeric(column, series, rows)
        else:
            self._text(column, series, rows)

    def _nulls(self, column: _Column, null: np.ndarray | None, rows: np.ndarray) -> None:
        if column.reference is not None:
            column.ref_rows += len(rows)
            column.ref_nulls += int(np.count_nonzero(null)) if null is not None else 0
        if not column.nullable:
            self.tally(column, "nulls").add(null, rows, None)

    def _numeric(self, column: _Column, series: pd.Series, rows: np.ndarray) -> None:
        if self._numeric_clean(column, series, rows):
            return
        parsed = coerce.numeric(series)
        values, null, bad = parsed.values, parsed.null, parsed.bad
        self._nulls(column, null, rows)
        type_tally = self.tally(column, "type")
        if bad is not None:
            raw = series.to_numpy()
            type_tally.add(bad, rows, raw, "not a number")
        checked = values.dtype.kind == "f"
        inf = np.zeros(0, dtype=bool)
        if checked:
            inf = np.isinf(values)
            self.tally(column, "non_finite").add(inf, rows, values)
            if column.type is FeatureType.INT:
                with np.errstate(invalid="ignore"):
                    fractional = (values != np.floor(values)) & ~inf
                if null is not None:
                    fractional &= ~null
                if bad is not None:
                    fractional &= ~bad
                type_tally.add(fractional, rows, values, "not a whole number")
        if column.min is not None or column.max is not None:
            # Infinite values are reported once, by non_finite, not again as out of range.
            finite = ~inf if checked else None
            if column.min is not None:
                below = values < column.min
                self.tally(column, "min").add(below & finite if finite is not None else below, rows, values)
            if column.max is not None:
                above = values > column.max
                self.tally(column, "max").add(above & finite if finite is not None else above, rows, values)
        if column.allowed is not None:
            outside = ~np.isin(values, column.allowed)
            if null is not None:
                outside &= ~null
            if bad is not None:
                outside &= ~bad
            self.tally(column, "allowed").add(outside, rows, values)
        if column.seen is not None:
            present = ~(null if null is not None else np.zeros(len(values), dtype=bool))
            if bad is not None:
                present &= ~bad
            self._unique(column, values[present], rows[present], values[present])
        if column.moments is not None:
            usable = np.isfinite(values) if checked else np.ones(len(values), dtype=bool)
            column.moments.add(values[usable].astype(np.float64, copy=False))

    def _numeric_clean(self, column: _Column, series: pd.Series, rows: np.ndarray) -> bool:
        """Fast path: two reductions prove a number column has nothing to report in this chunk.

        NaN and infinities propagate into min/max, so finite extremes inside the bounds mean no
        missing, infinite or out-of-range value. Only when they do not is any mask built.
        """
        kind = series.dtype.kind
        if kind not in "iuf" or not len(series) or column.allowed is not None or column.seen is not None:
            return False
        if column.moments is not None or (kind == "f" and column.type is FeatureType.INT):
            return False
        values = series.to_numpy()
        low, high = values.min(), values.max()
        if kind == "f" and not (np.isfinite(low) and np.isfinite(high)):
            return False
        if (column.min is not None and low < column.min) or (column.max is not None and high > column.max):
            return False
        self._nulls(column, None, rows)
        return True

    def _text(self, column: _Column, series: pd.Series, rows: np.ndarray) -> None:
        kind = column.type
        needs_codes = kind in (FeatureType.BOOL, FeatureType.DATETIME) or column.regex is not None
        codes: np.ndarray | None = None
        uniques: np.ndarray | None = None
        inside: np.ndarray | None = None
        null: np.ndarray | None
        if needs_codes:
            codes, uniques, null = coerce.factorized(series)
        elif column.allowed is not None:
            # One hash pass answers both questions when every value is allowed (missing ones
            # are not in the list); only a chunk with a miss pays for the separate null scan.
            inside = series.isin(column.allowed).to_numpy()
            null = None if inside.all() else series.isna().to_numpy()
        else:
            null = series.isna().to_numpy()
        self._nulls(column, null if null is not None and null.any() else None, rows)
        if codes is not None and uniques is not None:
            if kind is FeatureType.BOOL:
                ok, _ = coerce.booleans(uniques)
                self.tally(column, "type").add(_bad_codes(codes, ok), rows, _CodesView(uniques, codes), "not a boolean")
            elif kind is FeatureType.DATETIME:
                ok = ~np.isnat(coerce.datetimes(uniques))
                self.tally(column, "type").add(
                    _bad_codes(codes, ok), rows, _CodesView(uniques, codes), "not an ISO 8601 date/time"
                )
            if column.regex is not None:
                pattern = column.regex
                ok = np.fromiter((pattern.fullmatch(u) is not None for u in uniques), dtype=bool, count=len(uniques))
                self.tally(column, "regex").add(_bad_codes(codes, ok), rows, _CodesView(uniques, codes))
        if column.allowed is not None:
            outside = ~(inside if inside is not None else series.isin(column.allowed).to_numpy())
            if null is not None:
                outside &= ~null
            self.tally(column, "allowed").add(outside, rows, _Lazy(series))
        if column.seen is not None:
            keep = ~null if null is not None else slice(None)
            values = series.to_numpy()[keep]
            self._unique(column, values, rows[keep], values)
        reference = column.reference
        if (
            reference is not None
            and reference.categorical is not None
            and not reference.categorical.truncated
            and not _identifier(column, reference)
        ):
            known = list(reference.categorical.frequencies)
            if kind is FeatureType.BOOL and codes is not None and uniques is not None:
                # The profile keeps a boolean's canonical text ("true"/"false"), whatever spelling
                # the file used ("True", "1", "yes"): compare that; non-booleans fail column.type.
                ok, truth = coerce.booleans(uniques)
                labels = np.where(truth, "true", "false")
                unseen = _bad_codes(codes, ~ok | np.isin(labels, known))
            else:
                unseen = ~series.isin(known).to_numpy()
            if null is not None:
                unseen &= ~null
            self.tally(column, "new_categories").add(unseen, rows, _Lazy(series))

    def _unique(self, column: _Column, values: np.ndarray, rows: np.ndarray, shown: Any) -> None:
        assert column.seen is not None
        tally = self.tally(column, "unique")
        if not len(values):
            return
        hashes = pd.util.hash_array(np.asarray(values))
        duplicate, first = column.seen.check_and_add(hashes, rows)
        for i in np.flatnonzero(duplicate)[: max(tally.limit - len(tally.examples), 0)]:
            tally.examples.append(Example(row=int(rows[i]), value=_show(shown[i]), note=f"also in row {int(first[i])}"))
        tally.count += int(np.count_nonzero(duplicate))

    def _target(self, series: pd.Series, rows: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
        column = self.target
        if self.spec.task == "regression":
            self._numeric(column, series, rows)
            return None, None
        codes, uniques, null = coerce.factorized(series)
        self._nulls(column, null if null.any() else None, rows)
        labels = np.asarray([coerce.label(u) for u in uniques], dtype=object)
        classes = set(column.classes or [])
        known = np.fromiter((lab in classes for lab in labels), dtype=bool, count=len(labels))
        self.tally(column, "values").add(_bad_codes(codes, known), rows, _CodesView(uniques, codes))
        present = codes >= 0
        counts = np.bincount(codes[present], minlength=len(uniques))
        for lab, count, ok in zip(labels, counts.tolist(), known.tolist(), strict=True):
            if ok and count:
                column.class_counts[lab] += count
        if column.positive is None:
            return None, None
        is_positive = np.fromiter((lab == column.positive for lab in labels), dtype=bool, count=len(labels))
        valid = present.copy()
        valid[present] = known[codes[present]]
        positive = np.zeros(len(codes), dtype=bool)
        positive[valid] = is_positive[codes[valid]]
        return positive, valid

    def _fairness(
        self, groups: dict[str, list[int]], series: pd.Series, positive: np.ndarray, valid: np.ndarray
    ) -> None:
        codes, uniques, null = coerce.factorized(series)
        use = valid & ~null
        sizes = np.bincount(codes[use], minlength=len(uniques))
        positives = np.bincount(codes[use], weights=positive[use], minlength=len(uniques))
        for group, size, pos in zip(uniques.tolist(), sizes.tolist(), positives.tolist(), strict=True):
            if size:
                entry = groups.setdefault(str(group), [0, 0])
                entry[0] += int(size)
                entry[1] += int(pos)

    def _duplicate_rows(self, frame: pd.DataFrame, rows: np.ndarray) -> None:
        assert self._seen_rows is not None
        names = [c.name for c in self._all if c.present]
        if not names:
            return
        hashes = pd.util.hash_pandas_object(frame[names], index=False).to_numpy()
        duplicate, first = self._seen_rows.check_and_add(hashes, rows)
        tally = self._duplicates
        room = max(tally.limit - len(tally.examples), 0)
        for i in np.flatnonzero(duplicate)[:room]:
            shown = ",".join("" if pd.isna(v) else (_show(v) or "") for v in frame[names].iloc[int(i)].tolist())
            tally.examples.append(Example(row=int(rows[i]), value=_show(shown), note=f"same as row {int(first[i])}"))
        tally.count += int(np.count_nonzero(duplicate))

    # ----------------------------------------------------------------------------- results
    def results(self) -> list[CheckResult]:
        """Every check's result (passed ones included) once all chunks were consumed."""
        out: list[CheckResult] = []
        out.extend(self._schema_results())
        out.append(self._row_count_result())
        if self.duplicate_rows != "off":
            out.append(self._duplicates_result())
        for column in self._all:
            if column.present:
                out.extend(self._column_results(column))
        if self.target.present and self.spec.task == "classification" and not self.rows:
            out.append(
                CheckResult(
                    check="target.class_balance",
                    column=self.target.name,
                    status=Status.SKIPPED,
                    message="no rows to count",
                )
            )
        elif self.target.present and self.spec.task == "classification":
            out.append(self._balance_result())
            out.extend(self._fairness_results())
        elif self.spec.fairness.protected_attributes:
            out.extend(
                CheckResult(
                    check="fairness.disparate_impact",
                    column=a,
                    status=Status.SKIPPED,
                    message="disparate impact needs a classification target (present in the data)",
                )
                for a in self.spec.fairness.protected_attributes
            )
        if self.reference is not None:
            for column in self._all:
                if column.present and column.reference is not None:
                    out.extend(self._reference_results(column))
        return out

    def _schema_results(self) -> list[CheckResult]:
        header = self.header or []
        expected = [c.name for c in self._all]
        missing = [c for c in self.columns if not c.present]
        out: list[CheckResult] = []
        if missing:
            hints = [f"{c.name!r}{_hint(c.name, header)}" for c in missing]
            out.append(
                CheckResult(
                    check="schema.missing_columns",
                    status=Status.FAILED,
                    message=f"{len(missing)} required column(s) missing: {', '.join(hints)}",
                    failing_count=len(missing),
                    details={"missing": [c.name for c in missing]},
                )
            )
        else:
            out.append(
                CheckResult(
                    check="schema.missing_columns",
                    status=Status.PASSED,
                    message=f"all {len(self.columns)} feature columns present",
                )
            )
        target_name = self.target.name
        out.append(
            CheckResult(
                check="target.present", column=target_name, status=Status.PASSED, message="the target column is present"
            )
            if self.target.present
            else CheckResult(
                check="target.present",
                column=target_name,
                status=Status.FAILED,
                failing_count=1,
                message=f"the target column {target_name!r} is missing{_hint(target_name, header)}",
            )
        )
        known = set(expected)
        seen: set[str] = set()
        extra = []
        for name in header:
            if name not in known and name not in seen:
                extra.append(name)
            seen.add(name)
        if extra and not self.spec.allow_extra_columns:
            shown = ", ".join(repr(n) if n else "(unnamed)" for n in extra[:10])
            more = f" and {len(extra) - 10:,} more" if len(extra) > 10 else ""
            out.append(
                CheckResult(
                    check="schema.unexpected_columns",
                    status=Status.FAILED,
                    message=f"{len(extra):,} column(s) not in the spec: {shown}{more} "
                    "(set allow_extra_columns: true in the spec to accept them)",
                    failing_count=len(extra),
                    details={"unexpected": extra[:100]},
                )
            )
        else:
            message = (
                f"{len(extra):,} extra column(s) ignored (allow_extra_columns)" if extra else "no unexpected columns"
            )
            out.append(
                CheckResult(
                    check="schema.unexpected_columns",
                    status=Status.PASSED,
                    message=message,
                    details={"ignored": extra[:100]} if extra else {},
                )
            )
        return out

    def _row_count_result(self) -> CheckResult:
        bounds = self.spec.row_count
        high = f"{bounds.max:,}" if bounds.max is not None else "no maximum"
        ok = self.rows >= bounds.min and (bounds.max is None or self.rows <= bounds.max)
        if ok:
            message = f"{self.rows:,} rows (bounds {bounds.min:,} to {high})"
        elif self.rows < bounds.min:
            message = f"{self.rows:,} rows, fewer than the minimum {bounds.min:,}"
        else:
            message = f"{self.rows:,} rows, more than the maximum {high}"
        return CheckResult(
            check="dataset.row_count",
            status=Status.PASSED if ok else Status.FAILED,
            message=message,
            failing_count=0 if ok else 1,
            details={"rows": self.rows, "min": bounds.min, "max": bounds.max},
        )

    def _duplicates_result(self) -> CheckResult:
        tally = self._duplicates
        if not tally.count:
            return CheckResult(check="dataset.duplicate_rows", status=Status.PASSED, message="no duplicate rows")
        status = Status.FAILED if self.duplicate_rows == "error" else Status.WARNING
        return CheckResult(
            check="dataset.duplicate_rows",
            status=status,
            message=f"{tally.count:,} row(s) repeat an earlier row (compared on the spec's columns)"
            + ("" if status is Status.FAILED else "; reported only (validation.duplicate_rows: warning)"),
            failing_count=tally.count,
            examples=tally.examples,
            details={"severity": self.duplicate_rows},
        )

    def _column_results(self, column: _Column) -> list[CheckResult]:
        out: list[CheckResult] = []
        prefix = column.prefix
        tallies = column.tallies

        def result(check: str, ok_message: str, fail_message: str, details: dict[str, Any] | None = None) -> None:
            tally = tallies.get(check) or _Tally(0)
            failed = tally.count > 0
            out.append(
                CheckResult(
                    check=f"{prefix}.{check}",
                    column=column.name,
                    status=Status.FAILED if failed else Status.PASSED,
                    message=fail_message.replace("{n}", f"{tally.count:,}").replace(
                        "{s}", "" if tally.count == 1 else "s"
                    )
                    if failed
                    else ok_message,
                    failing_count=tally.count,
                    examples=tally.examples,
                    details=details or {},
                )
            )

        type_name = column.type.value
        if column.role == "target" and self.spec.task == "classification":
            classes = ", ".join(column.classes or [])
            result("nulls", "no missing labels", "{n} row{s} without a label (the target may not be missing)")
            result(
                "values",
                f"every label is one of the classes [{classes}]",
                f"{{n}} label{{s}} not among the classes [{classes}]",
            )
            return out
        if column.numeric or column.type in (FeatureType.BOOL, FeatureType.DATETIME):
            result("type", f"every value is a valid {type_name}", f"{{n}} value{{s}} cannot be read as {type_name}")
        if not column.nullable:
            result("nulls", "no missing values", "{n} missing value{s} (the column is not nullable)")
        if "non_finite" in tallies or column.type is FeatureType.FLOAT:
            result("non_finite", "no infinite values", "{n} infinite value{s} (inf, -inf)")
        if column.min is not None:
            result("min", f"all values >= {_num(column.min)}", f"{{n}} value{{s}} below the minimum {_num(column.min)}")
        if column.max is not None:
            result("max", f"all values <= {_num(column.max)}", f"{{n}} value{{s}} above the maximum {_num(column.max)}")
        if column.allowed is not None:
            listed = _listing([_num(v) if isinstance(v, float) else v for v in column.allowed])
            result("allowed", f"every value is one of {listed}", f"{{n}} value{{s}} not among the allowed {listed}")
        if column.regex is not None:
            result(
                "regex",
                f"every value matches /{column.regex.pattern}/",
                f"{{n}} value{{s}} not matching /{column.regex.pattern}/ (the whole value must match)",
            )
        if column.unique:
            result("unique", "every value is unique", "{n} value{s} already in an earlier row (must be unique)")
        return out

    def _balance_result(self) -> CheckResult:
        counts = self.target.class_counts
        total = sum(counts.values())
        classes = self.target.classes or []
        fractions = {c: (counts.get(c, 0) / total if total else 0.0) for c in classes}
        details: dict[str, Any] = {"counts": {c: counts.get(c, 0) for c in classes}, "fractions": fractions}
        floor = self.spec.target.min_class_fraction
        shown = ", ".join(f"{c}: {counts.get(c, 0):,} ({fractions[c]:.1%})" for c in classes)
        if floor is None:
            return CheckResult(
                check="target.class_balance",
                column=self.target.name,
                status=Status.PASSED,
                message=f"class counts {shown} (no balance bound in the spec)",
                details=details,
            )
        details["min_class_fraction"] = floor
        low = [c for c in classes if fractions[c] < floor]
        if low:
            return CheckResult(
                check="target.class_balance",
                column=self.target.name,
                status=Status.FAILED,
                failing_count=len(low),
                message=f"class(es) {', '.join(low)} below the minimum share {floor:.1%}: {shown}",
                details=details,
            )
        return CheckResult(
            check="target.class_balance",
            column=self.target.name,
            status=Status.PASSED,
            message=f"every class at least {floor:.1%}: {shown}",
            details=details,
        )

    def _fairness_results(self) -> list[CheckResult]:
        """Disparate impact of the dataset's labels per protected attribute: reported, never failed.

        Base rates that differ between groups are a fact about the world the data describes, not
        a defect of the data, so a low ratio is a warning here; the gate judges the candidate's
        predictions (``fairness.mode``). Groups below ``fairness.min_group_size`` rows are listed
        but take no part in the ratio: a category seen once would otherwise decide it.
        """
        out: list[CheckResult] = []
        fairness = self.spec.fairness
        threshold = fairness.min_disparate_impact
        min_size = fairness.min_group_size
        positive = self.target.positive
        for attribute, groups in self._groups.items():
            check = "fairness.disparate_impact"
            if not any(c.name == attribute and c.present for c in self.columns):
                out.append(
                    CheckResult(
                        check=check,
                        column=attribute,
                        status=Status.SKIPPED,
                        message="the protected attribute column is missing",
                    )
                )
                continue
            ordered = sorted(groups.items(), key=lambda item: (-item[1][0], item[0]))
            table = {
                g: {"rows": n, "positives": p, "positive_rate": (p / n if n else 0.0), "compared": n >= min_size}
                for g, (n, p) in ordered[:100]
            }
            rates = {g: p / n for g, (n, p) in ordered if n >= min_size}
            small = [g for g, (n, _) in ordered if n < min_size]
            details: dict[str, Any] = {
                "groups": table,
                "positive_class": positive,
                "min_disparate_impact": threshold,
                "min_group_size": min_size,
                "excluded_groups": small[:100],
                "of": "labels",
            }
            excluded = (
                f"; {len(small):,} group(s) under {min_size:,} rows listed, not compared ({_listing(small, 5)})"
                if small
                else ""
            )
            if len(rates) < 2:
                out.append(
                    CheckResult(
                        check=check,
                        column=attribute,
                        status=Status.SKIPPED,
                        details=details,
                        message=f"fewer than two groups with at least {min_size:,} rows "
                        f"(fairness.min_group_size): nothing to compare{excluded}",
                    )
                )
                continue
            low_group = min(rates, key=lambda g: rates[g])
            high_group = max(rates, key=lambda g: rates[g])
            ratio = rates[low_group] / rates[high_group] if rates[high_group] > 0 else 1.0
            details["disparate_impact"] = ratio
            low_rows, high_rows = groups[low_group][0], groups[high_group][0]
            summary = (
                f"positive rate ({positive}) {rates[low_group]:.1%} for {low_group!r} "
                f"({low_rows:,} rows) vs {rates[high_group]:.1%} for {high_group!r} "
                f"({high_rows:,} rows){excluded}"
            )
            below = ratio < threshold
            out.append(
                CheckResult(
                    check=check,
                    column=attribute,
                    status=Status.WARNING if below else Status.PASSED,
                    failing_count=1 if below else 0,
                    details=details,
                    message=(
                        f"label disparate impact {ratio:.2f} below {threshold:.2f}: {summary}. Reported, not "
                        f"refused: these are the data's base rates; the gate checks the model's predictions "
                        f"(fairness.mode: {fairness.mode})"
                        if below
                        else f"label disparate impact {ratio:.2f} (minimum {threshold:.2f}): {summary}"
                    ),
                )
            )
        return out

    def _reference_results(self, column: _Column) -> list[CheckResult]:
        reference = column.reference
        assert reference is not None
        options = self.options
        bad = Status.FAILED if options.reference_severity == "error" else Status.WARNING
        out: list[CheckResult] = []

        def add(check: str, failed: bool, message: str, details: dict[str, Any], tally: _Tally | None = None) -> None:
            out.append(
                CheckResult(
                    check=f"reference.{check}",
                    column=column.name,
                    status=bad if failed else Status.PASSED,
                    message=message,
                    failing_count=(tally.count if tally else 1) if failed else 0,
                    examples=tally.examples if tally and failed else [],
                    details=details,
                )
            )

        moments = column.moments
        if moments is not None and reference.numeric is not None and moments.count:
            ref = reference.numeric
            scale = ref.std if ref.std > 0 else 1.0
            shift = abs(moments.mean - ref.mean) / scale
            add(
                "mean_shift",
                shift > options.max_mean_shift,
                f"mean {moments.mean:.4g} vs reference {ref.mean:.4g}: {shift:.2f} reference std "
                f"(limit {options.max_mean_shift})",
                {"mean": moments.mean, "reference_mean": ref.mean, "shift_in_std": shift},
            )
            low, high = options.std_ratio_bounds
            ratio = moments.std / ref.std if ref.std > 0 else (1.0 if moments.std == 0 else float("inf"))
            add(
                "std_shift",
                not (low <= ratio <= high),
                f"std {moments.std:.4g} vs reference {ref.std:.4g}: ratio {ratio:.2f} (bounds {low} to {high})",
                {"std": moments.std, "reference_std": ref.std, "ratio": ratio if np.isfinite(ratio) else None},
            )
        rows, nulls = column.ref_rows, column.ref_nulls
        if column.role == "target" and self.spec.task == "classification":
            rows = nulls = 0  # labels may not be missing at all: target.nulls covers it
        if rows:
            rate = nulls / rows
            change = abs(rate - reference.null_rate)
            add(
                "missing_rate",
                change > options.max_missing_rate_change,
                f"missing rate {rate:.1%} vs reference {reference.null_rate:.1%} "
                f"(change limit {options.max_missing_rate_change:.0%})",
                {"missing_rate": rate, "reference_missing_rate": reference.null_rate},
            )
        tally = column.tallies.get("new_categories")
        if tally is not None:
            fraction = tally.count / self.rows if self.rows else 0.0
            add(
                "new_categories",
                tally.count > 0 and fraction > options.max_new_category_fraction,
                f"{tally.count:,} value(s) ({fraction:.2%} of rows) are categories the reference never saw"
                if tally.count
                else "no categories the reference never saw",
                {"fraction": fraction},
                tally,
            )
        return out


class _Lazy:
    """Index a pandas Series by position only when an example is taken."""

    def __init__(self, series: pd.Series) -> None:
        self._series = series

    def __getitem__(self, index: int) -> Any:
        return self._series.iat[int(index)]


class _CodesView:
    """The value at a position of a factorized column, looked up only for examples."""

    def __init__(self, uniques: np.ndarray, codes: np.ndarray) -> None:
        self._uniques = uniques
        self._codes = codes

    def __getitem__(self, index: int) -> Any:
        code = int(self._codes[int(index)])
        return None if code < 0 else self._uniques[code]


def _identifier(column: _Column, reference: ColumnProfile) -> bool:
    """An identifier's values are new by nature: a ``unique`` column, or free text (``string``) whose
    reference values were almost all distinct (as drift leaves identifier-like columns unmonitored)."""
    if column.seen is not None:
        return True
    stats = reference.categorical
    if column.type is not FeatureType.STRING or stats is None:
        return False
    counted = sum(stats.frequencies.values()) + stats.other_count
    return counted >= 50 and stats.distinct > 0.5 * counted


def _bad_codes(codes: np.ndarray, ok: np.ndarray) -> np.ndarray:
    if not len(ok):
        return np.zeros(len(codes), dtype=bool)
    bad = ~ok[codes]
    bad &= codes >= 0
    return bad


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _listing(values: list[Any], limit: int = 10) -> str:
    shown = ", ".join(str(v) for v in values[:limit])
    return f"[{shown}{', ...' if len(values) > limit else ''}]"


def _hint(name: str, header: list[str]) -> str:
    """' (did you mean ...)' for a near miss in the header: case, spaces, small typos."""
    folded = name.strip().lower()
    for candidate in header:
        if candidate.strip().lower() == folded:
            return f" (found {candidate!r}: names are case- and space-sensitive)"
    import difflib

    close = difflib.get_close_matches(name, header[:2000], n=1, cutoff=0.8)
    return f" (did you mean {close[0]!r}?)" if close else ""
