"""The checks: a spec compiled into per-column plans that run vectorized on each chunk.

Every check keeps a tally (failing count plus the first ``max_examples`` failing rows) that
grows chunk by chunk, so a dataset of any size is checked in one pass with bounded memory.
Uniqueness and duplicate rows across chunks keep 64-bit hashes of what was seen (16 bytes a
row), in sorted runs that are merged like a log-structured tree. What each column keeps between
chunks is in :mod:`.tallies`; the results the tallies become, in :mod:`.results`; the knobs outside
the spec, in :mod:`.options`.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mlops.data.validation import coerce
from mlops.data.validation.options import ValidationOptions
from mlops.data.validation.report import CheckResult, Example
from mlops.data.validation.results import all_results
from mlops.data.validation.tallies import (
    CodesView,
    ColumnPlan,
    LazyValues,
    Moments,
    SeenHashes,
    Tally,
    bad_codes,
    is_identifier,
    is_number,
    shown_value,
)
from mlops.spec.model import Feature, FeatureType, ModelSpec

if TYPE_CHECKING:
    from mlops.data.profile import ColumnProfile, ReferenceProfile


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
        self.columns: list[ColumnPlan] = [self._compile(f) for f in spec.features]
        self.target = self._compile_target()
        self.all_columns = [*self.columns, self.target]
        self.duplicate_rows = spec.validation.duplicate_rows
        self.duplicates = Tally(self.options.max_examples)
        self.seen_rows = SeenHashes() if self.duplicate_rows != "off" else None
        self.groups: dict[str, dict[str, list[int]]] = {a: {} for a in spec.fairness.protected_attributes}
        self.header: list[str] | None = None

    # --------------------------------------------------------------------------- compiling
    def _reference_for(self, name: str) -> ColumnProfile | None:
        if self.reference is None:
            return None
        return self.reference.columns.get(name)

    def _compile(self, feature: Feature) -> ColumnPlan:
        column = ColumnPlan(
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
                [float(v) for v in feature.allowed if not isinstance(v, str) or is_number(v)]
                if column.numeric
                else sorted({coerce.label(v) for v in feature.allowed} | {str(v) for v in feature.allowed})
            )
        if column.unique:
            column.seen = SeenHashes()
        if column.reference is not None and column.numeric:
            column.moments = Moments()
        return column

    def _compile_target(self) -> ColumnPlan:
        target = self.spec.target
        if self.spec.task == "classification":
            classes = [coerce.label(c) for c in target.classes or []]
            positive = self.spec.positive_class
            return ColumnPlan(
                name=target.name,
                type=FeatureType.CATEGORY,
                role="target",
                nullable=False,
                classes=classes,
                positive=coerce.label(positive) if positive is not None else None,
                reference=self._reference_for(target.name),
            )
        column = ColumnPlan(
            name=target.name,
            type=FeatureType.FLOAT,
            role="target",
            nullable=False,
            min=target.min,
            max=target.max,
            reference=self._reference_for(target.name),
        )
        if column.reference is not None:
            column.moments = Moments()
        return column

    def tally(self, column: ColumnPlan, check: str) -> Tally:
        found = column.tallies.get(check)
        if found is None:
            found = column.tallies[check] = Tally(self.options.max_examples)
        return found

    # ------------------------------------------------------------------------------ chunks
    def start(self, header: list[str]) -> None:
        """Record the dataset's columns (before the first chunk)."""
        self.header = [str(h) for h in header]
        present = set(self.header)
        for column in self.all_columns:
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
        if self.seen_rows is not None:
            self._duplicate_rows(frame, rows)
        if positive is not None and valid_label is not None:
            for attribute, groups in self.groups.items():
                if attribute in frame.columns:
                    self._fairness(groups, frame[attribute], positive, valid_label)

    def _feature(self, column: ColumnPlan, series: pd.Series, rows: np.ndarray) -> None:
        if column.numeric:
            self._numeric(column, series, rows)
        else:
            self._text(column, series, rows)

    def _nulls(self, column: ColumnPlan, null: np.ndarray | None, rows: np.ndarray) -> None:
        if column.reference is not None:
            column.ref_rows += len(rows)
            column.ref_nulls += int(np.count_nonzero(null)) if null is not None else 0
        if not column.nullable:
            self.tally(column, "nulls").add(null, rows, None)

    def _numeric(self, column: ColumnPlan, series: pd.Series, rows: np.ndarray) -> None:
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

    def _numeric_clean(self, column: ColumnPlan, series: pd.Series, rows: np.ndarray) -> bool:
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

    def _text(self, column: ColumnPlan, series: pd.Series, rows: np.ndarray) -> None:
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
                self.tally(column, "type").add(bad_codes(codes, ok), rows, CodesView(uniques, codes), "not a boolean")
            elif kind is FeatureType.DATETIME:
                ok = ~np.isnat(coerce.datetimes(uniques))
                self.tally(column, "type").add(
                    bad_codes(codes, ok), rows, CodesView(uniques, codes), "not an ISO 8601 date/time"
                )
            if column.regex is not None:
                pattern = column.regex
                ok = np.fromiter((pattern.fullmatch(u) is not None for u in uniques), dtype=bool, count=len(uniques))
                self.tally(column, "regex").add(bad_codes(codes, ok), rows, CodesView(uniques, codes))
        if column.allowed is not None:
            outside = ~(inside if inside is not None else series.isin(column.allowed).to_numpy())
            if null is not None:
                outside &= ~null
            self.tally(column, "allowed").add(outside, rows, LazyValues(series))
        if column.seen is not None:
            keep = ~null if null is not None else slice(None)
            values = series.to_numpy()[keep]
            self._unique(column, values, rows[keep], values)
        reference = column.reference
        if (
            reference is not None
            and reference.categorical is not None
            and not reference.categorical.truncated
            and not is_identifier(column, reference)
        ):
            known = list(reference.categorical.frequencies)
            if kind is FeatureType.BOOL and codes is not None and uniques is not None:
                # The profile keeps a boolean's canonical text ("true"/"false"), whatever spelling
                # the file used ("True", "1", "yes"): compare that; non-booleans fail column.type.
                ok, truth = coerce.booleans(uniques)
                labels = np.where(truth, "true", "false")
                unseen = bad_codes(codes, ~ok | np.isin(labels, known))
            else:
                unseen = ~series.isin(known).to_numpy()
            if null is not None:
                unseen &= ~null
            self.tally(column, "new_categories").add(unseen, rows, LazyValues(series))

    def _unique(self, column: ColumnPlan, values: np.ndarray, rows: np.ndarray, shown: Any) -> None:
        assert column.seen is not None
        tally = self.tally(column, "unique")
        if not len(values):
            return
        hashes = pd.util.hash_array(np.asarray(values))
        duplicate, first = column.seen.check_and_add(hashes, rows)
        for i in np.flatnonzero(duplicate)[: max(tally.limit - len(tally.examples), 0)]:
            tally.examples.append(
                Example(row=int(rows[i]), value=shown_value(shown[i]), note=f"also in row {int(first[i])}")
            )
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
        self.tally(column, "values").add(bad_codes(codes, known), rows, CodesView(uniques, codes))
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
        assert self.seen_rows is not None
        names = [c.name for c in self.all_columns if c.present]
        if not names:
            return
        hashes = pd.util.hash_pandas_object(frame[names], index=False).to_numpy()
        duplicate, first = self.seen_rows.check_and_add(hashes, rows)
        tally = self.duplicates
        room = max(tally.limit - len(tally.examples), 0)
        for i in np.flatnonzero(duplicate)[:room]:
            shown = ",".join("" if pd.isna(v) else (shown_value(v) or "") for v in frame[names].iloc[int(i)].tolist())
            tally.examples.append(
                Example(row=int(rows[i]), value=shown_value(shown), note=f"same as row {int(first[i])}")
            )
        tally.count += int(np.count_nonzero(duplicate))

    # ----------------------------------------------------------------------------- results
    def results(self) -> list[CheckResult]:
        """Every check's result (passed ones included) once all chunks were consumed."""
        return all_results(self)
