"""What a column's checks keep between chunks: tallies with examples, seen hashes, moments, the compiled plan."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from mlops.data.validation.report import Example
from mlops.spec.model import FeatureType

if TYPE_CHECKING:
    from mlops.data.profile import ColumnProfile


class Tally:
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
                self.examples.append(Example(row=int(rows[i]), value=shown_value(value), note=note))

    def add_one(self, row: int | None, value: Any, note: str | None = None) -> None:
        self.count += 1
        if len(self.examples) < self.limit:
            self.examples.append(Example(row=row, value=shown_value(value), note=note))


def shown_value(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None if value is None else "NaN"
    if isinstance(value, float | np.floating):
        number = float(value)
        return str(int(number)) if number.is_integer() and abs(number) < 1e16 else repr(number)
    text = str(value)
    return text if len(text) <= 200 else text[:197] + "..."


class SeenHashes:
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
class Moments:
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
class ColumnPlan:
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
    tallies: dict[str, Tally] = field(default_factory=dict)
    seen: SeenHashes | None = None
    moments: Moments | None = None
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


class LazyValues:
    """Index a pandas Series by position only when an example is taken."""

    def __init__(self, series: pd.Series) -> None:
        self._series = series

    def __getitem__(self, index: int) -> Any:
        return self._series.iat[int(index)]


class CodesView:
    """The value at a position of a factorized column, looked up only for examples."""

    def __init__(self, uniques: np.ndarray, codes: np.ndarray) -> None:
        self._uniques = uniques
        self._codes = codes

    def __getitem__(self, index: int) -> Any:
        code = int(self._codes[int(index)])
        return None if code < 0 else self._uniques[code]


def is_identifier(column: ColumnPlan, reference: ColumnProfile) -> bool:
    """An identifier's values are new by nature: a ``unique`` column, or free text (``string``) whose
    reference values were almost all distinct (as drift leaves identifier-like columns unmonitored)."""
    if column.seen is not None:
        return True
    stats = reference.categorical
    if column.type is not FeatureType.STRING or stats is None:
        return False
    counted = sum(stats.frequencies.values()) + stats.other_count
    return counted >= 50 and stats.distinct > 0.5 * counted


def bad_codes(codes: np.ndarray, ok: np.ndarray) -> np.ndarray:
    if not len(ok):
        return np.zeros(len(codes), dtype=bool)
    bad = ~ok[codes]
    bad &= codes >= 0
    return bad


def is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
