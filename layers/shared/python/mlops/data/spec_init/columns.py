"""The columns of a CSV as ``mlops spec init`` sees them: read once, distinct values counted block by block."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from mlops.data.validation import coerce
from mlops.data.validation.reader import CsvReader
from mlops.data.validation.report import Status
from mlops.errors import InputError

# A classification target may have at most this many classes.
MAX_CLASSES = 100
_INTEGER_TEXT = r"[+-]?\d+"
_BOOLEAN_TEXT = frozenset({"true", "false"})
SHOWN = 3  # non-numeric examples kept per column


@dataclass
class Column:
    """What one column held, accumulated block by block (counts are over distinct values)."""

    name: str
    rows: int = 0
    missing: int = 0
    # value -> rows, while at most MAX_CLASSES distinct values were seen (then None)
    counts: Counter[str] | None = field(default_factory=Counter)
    hashes: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.uint64))
    numbers: int = 0  # present values that are finite numbers
    integers: int = 0  # ... written as integers
    low: float = math.inf
    high: float = -math.inf
    texts: int = 0  # present values that are not numbers
    booleans: int = 0  # ... that are true/false
    datetimes: int = 0  # ... that are ISO 8601 dates or date-times
    first: np.datetime64 | None = None
    last: np.datetime64 | None = None
    shown: list[str] = field(default_factory=list)  # the smallest non-numeric values

    @property
    def present(self) -> int:
        return self.rows - self.missing

    @property
    def distinct(self) -> int:
        return len(self.hashes)

    def add(self, series: pd.Series) -> None:
        self.rows += len(series)
        present = series.dropna()
        self.missing += len(series) - len(present)
        if not len(present):
            return
        tally = present.value_counts(sort=False)
        values = tally.index.to_numpy(dtype=object)
        weights = tally.to_numpy(dtype=np.int64)
        self.hashes = np.union1d(self.hashes, pd.util.hash_array(values))
        if self.counts is not None:
            self.counts.update(dict(zip(values.tolist(), weights.tolist(), strict=True)))
            if len(self.counts) > MAX_CLASSES:
                self.counts = None
        text = pd.Series(values, dtype=object)
        parsed = np.asarray(pd.to_numeric(text, errors="coerce"), dtype=np.float64)
        number = np.isfinite(parsed)
        if number.any():
            self.numbers += int(weights[number].sum())
            whole = text.str.fullmatch(_INTEGER_TEXT).to_numpy(dtype=bool) & number
            self.integers += int(weights[whole].sum())
            self.low = min(self.low, float(parsed[number].min()))
            self.high = max(self.high, float(parsed[number].max()))
        if not number.all():
            words = values[~number]
            counts = weights[~number]
            self.texts += int(counts.sum())
            ok = np.fromiter((str(w).strip().lower() in _BOOLEAN_TEXT for w in words), dtype=bool, count=len(words))
            self.booleans += int(counts[ok].sum())
            stamps = coerce.datetimes(words)
            dated = ~np.isnat(stamps)
            if dated.any():
                self.datetimes += int(counts[dated].sum())
                low, high = stamps[dated].min(), stamps[dated].max()
                self.first = low if self.first is None else min(self.first, low)
                self.last = high if self.last is None else max(self.last, high)
            self.shown = sorted({*self.shown, *sorted(str(w) for w in words)[:SHOWN]})[:SHOWN]

    def sorted_values(self) -> list[str]:
        """The distinct values seen (only while they were counted), numbers in numeric order."""
        assert self.counts is not None
        if self.texts == 0:
            return sorted(self.counts, key=float)
        return sorted(self.counts)


# ------------------------------------------------------------------------------------------ reading
def read_columns(path: Path) -> tuple[list[str], dict[str, Column], int]:
    """The header, every column's accumulated values, and the row count; bad input raises InputError."""
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, not a CSV file")
    header = _header(path)
    columns = {name: Column(name) for name in header}
    try:
        with path.open("rb") as handle:
            reader = CsvReader(handle, str(path), header, set(header))
            for chunk in reader.chunks():
                for name, column in columns.items():
                    column.add(chunk.frame[name])
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    _refuse_findings(path, reader)
    if reader.records == 0:
        raise InputError(f"{path}: the file has a header but no data rows")
    return header, columns, reader.records


def _header(path: Path) -> list[str]:
    try:
        with path.open("rb") as handle:
            reader = CsvReader(handle, str(path), [], set())
            next(iter(reader.chunks()), None)  # the header is parsed before the first block is
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    _refuse_findings(path, reader)
    if reader.header is None:
        raise InputError(f"{path}: no header row")
    return list(reader.header)


def _refuse_findings(path: Path, reader: CsvReader) -> None:
    failed = [f for f in reader.findings() if f.status is Status.FAILED]
    if failed:
        lines = []
        for finding in failed[:5]:
            example = finding.examples[0] if finding.examples else None
            where = ""
            if example is not None and example.row is not None:
                where = f" (first at row {example.row}" + (f": {example.value!r}" if example.value else "") + ")"
            lines.append(f"{path}: {finding.message}{where}")
        raise InputError("\n".join(lines))
