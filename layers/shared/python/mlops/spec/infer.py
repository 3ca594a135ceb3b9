"""A starting model spec inferred from a CSV file (``mlops spec init``).

The file is read once with the validation reader (:class:`mlops.data.validation.reader.CsvReader`:
the same blocks, missing-value strings and reading checks as ``mlops validate``), every column
as text. Each column's distinct values are counted per block, so memory follows the number of
distinct values, not the number of rows. What is inferred, column by column:

- **type**: every present value a number written without a decimal point or exponent: ``int``;
  every value a finite number: ``float``; every value ``true``/``false`` (any case): ``bool``;
  every value an ISO 8601 date or date-time: ``datetime``; otherwise text: ``category``, or
  ``string`` (an identifier the model does not use) when every value differs and there are
  more than :data:`LOW_CARDINALITY` of them.
- **nullable**: the column has a missing value (an empty field, ``NA``, ``null``...: the
  reader's ``NA_STRINGS``).
- **allowed**: the values seen, for a ``category`` or ``int`` column with at most
  :data:`LOW_CARDINALITY` distinct values. Integer columns stay ``int`` (a number to the model:
  hours, counts, bands and 0/1 flags keep their order); their comment says how to make them a
  category when the numbers are labels.
- **min/max** (``float`` and ``int`` columns without ``allowed``, and a regression target): the
  observed range widened by :data:`RANGE_MARGIN` of its span on each side, rounded outwards, and
  never below 0 for a column without negative values (nor above 0 for one without positive values).
- **task** (unless given): classification when the target holds text, or integers with at most
  :data:`LOW_CARDINALITY` distinct values; regression otherwise.

Then the spec is checked on the same file with :func:`mlops.data.validation.validate_file`: rows that
repeat an earlier row make ``validation.duplicate_rows`` a warning (with the count), and anything
else that fails is returned in :attr:`SpecDraft.problems` (a target with missing labels, for
example), so the spec written validates the file it came from, or says why not.

Examples
--------
>>> draft = infer_spec("penguins.csv", target="species")  # doctest: +SKIP
>>> draft.task, draft.task_reason  # doctest: +SKIP
('classification', "inferred: 'species' holds text (3 values)")
>>> print(draft.text)  # doctest: +SKIP
"""

from __future__ import annotations

import difflib
import math
import re
import textwrap
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import yaml

from mlops.data.validation import coerce
from mlops.data.validation.reader import NA_STRINGS, CsvReader
from mlops.data.validation.report import Status
from mlops.errors import InputError
from mlops.spec.model import MODEL_NAME, ModelSpec, parse_spec_text

# Columns with at most this many distinct values list them in ``allowed`` (categories and
# integers); an integer target with at most this many is a classification target.
LOW_CARDINALITY = 20
# A classification target may have at most this many classes.
MAX_CLASSES = 100
# Ranges are the observed min/max widened by this share of the span on each side.
RANGE_MARGIN = 0.10
# ``row_count.min``: this many rows, or the file's row count when it has fewer.
MIN_ROWS = 100

Task = Literal["classification", "regression"]

ESTIMATOR: dict[str, str] = {
    "classification": "sklearn.ensemble.HistGradientBoostingClassifier",
    "regression": "sklearn.ensemble.HistGradientBoostingRegressor",
}
PARAMS: dict[str, Any] = {"max_iter": 200, "learning_rate": 0.1}
# A floor a useless model fails (0.5 is chance for ROC AUC, 0 is the mean for R²), not a target.
GATES: dict[str, tuple[str, str, float]] = {
    "classification": ("roc_auc", "roc_auc", 0.7),
    "regression": ("rmse", "r2", 0.5),
}
# Binary label pairs whose positive class is known; other binary targets take the rarer class.
_POSITIVE = {
    frozenset({"0", "1"}): "1",
    frozenset({"no", "yes"}): "yes",
    frozenset({"false", "true"}): "true",
    frozenset({"n", "y"}): "y",
    frozenset({"f", "t"}): "t",
}
_INTEGER_TEXT = r"[+-]?\d+"
_BOOLEAN_TEXT = frozenset({"true", "false"})
WIDTH = 100  # comment lines wrap here
_SHOWN = 3  # non-numeric examples kept per column


@dataclass
class _Column:
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
            self.shown = sorted({*self.shown, *sorted(str(w) for w in words)[:_SHOWN]})[:_SHOWN]

    def sorted_values(self) -> list[str]:
        """The distinct values seen (only while they were counted), numbers in numeric order."""
        assert self.counts is not None
        if self.texts == 0:
            return sorted(self.counts, key=float)
        return sorted(self.counts)


@dataclass(frozen=True)
class Inferred:
    """One column of the spec, and the comment that says what was inferred."""

    name: str
    type: str
    nullable: bool
    comment: str
    allowed: list[Any] | None = None
    min: float | int | None = None
    max: float | int | None = None

    def entry(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"name": self.name, "type": self.type}
        if self.nullable:
            entry["nullable"] = True
        if self.allowed is not None:
            entry["allowed"] = self.allowed
        if self.min is not None:
            entry["min"] = self.min
        if self.max is not None:
            entry["max"] = self.max
        return entry


@dataclass
class SpecDraft:
    """A starting spec: its YAML text (with comments), the parsed spec, and what was found."""

    text: str
    spec: ModelSpec
    task: Task
    task_reason: str
    rows: int
    columns: list[str]
    features: list[Inferred]
    duplicates: int
    # Checks the spec fails on its own file (empty when it validates), one line each.
    problems: list[str]

    def summary(self) -> dict[str, Any]:
        return {
            "model": self.spec.name,
            "task": self.task,
            "task_reason": self.task_reason,
            "target": self.spec.target.name,
            "rows": self.rows,
            "columns": self.columns,
            "features": [{**f.entry(), "comment": f.comment} for f in self.features],
            "duplicate_rows": self.duplicates,
            "problems": self.problems,
        }


# ------------------------------------------------------------------------------------------ reading
def _read(path: Path) -> tuple[list[str], dict[str, _Column], int]:
    """The header, every column's accumulated values, and the row count; bad input raises InputError."""
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, not a CSV file")
    header = _header(path)
    columns = {name: _Column(name) for name in header}
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


# ---------------------------------------------------------------------------------------- inferring
def _nice(value: float, resolution: float, up: bool) -> float:
    steps = value / resolution
    rounded = (math.ceil(steps - 1e-9) if up else math.floor(steps + 1e-9)) * resolution
    digits = max(0, -math.floor(math.log10(resolution)))
    return round(rounded, digits)


def widened_range(low: float, high: float, integer: bool) -> tuple[float | int, float | int]:
    """``low``/``high`` widened by :data:`RANGE_MARGIN` of the span, rounded outwards.

    The margin never takes a column without negative values below 0 (nor one without positive
    values above 0). A constant column is widened by the margin of its value (1 when it is 0).

    Examples
    --------
    >>> widened_range(0.0, 2654.3, integer=False)
    (0, 2920)
    >>> widened_range(1.0, 10.0, integer=True)
    (0, 11)
    >>> widened_range(-5.0, 5.0, integer=False)
    (-6, 6)
    """
    span = high - low
    margin = RANGE_MARGIN * (span if span > 0 else (abs(high) or 1.0))
    lo, hi = low - margin, high + margin
    if integer:
        lo_i, hi_i = math.floor(lo), math.ceil(hi)
        return (max(lo_i, 0) if low >= 0 else lo_i), (min(hi_i, 0) if high <= 0 else hi_i)
    # Three significant digits of the span, but never finer than float64 can hold at this magnitude.
    finest = max(span, margin, abs(low) * 1e-12, abs(high) * 1e-12, 1e-300)
    resolution = 10.0 ** (math.floor(math.log10(finest)) - 2)
    lo, hi = min(_nice(lo, resolution, up=False), low), max(_nice(hi, resolution, up=True), high)
    if low >= 0:
        lo = max(lo, 0.0)
    if high <= 0:
        hi = min(hi, 0.0)
    return _plain(lo), _plain(hi)


def _plain(value: float) -> float | int:
    return int(value) if float(value).is_integer() and abs(value) < 2**53 else value


def _listing(values: list[Any], limit: int = 6) -> str:
    shown = [repr(v) if isinstance(v, str) else str(v) for v in values[:limit]]
    return ", ".join(shown) + (f", ... ({len(values)} in all)" if len(values) > limit else "")


def _number(value: float) -> str:
    return str(_plain(value)) if float(value).is_integer() else f"{value:.6g}"


def _infer_feature(column: _Column) -> Inferred:
    missing = f"; {column.missing:,} missing" if column.missing else ""
    nullable = column.missing > 0
    if column.present == 0:
        return Inferred(
            column.name,
            "string",
            True,
            f"every value is missing ({column.rows:,} rows): typed string, which the model does not use",
        )
    seen = f"{column.distinct:,} value{'s' if column.distinct != 1 else ''} seen"
    if column.texts == 0:
        integer = column.integers == column.numbers
        if integer and column.distinct <= LOW_CARDINALITY and column.counts is not None:
            allowed = [int(v) for v in column.sorted_values()]
            return Inferred(
                column.name,
                "int",
                nullable,
                f"int, {seen}{missing}; kept a number (see the note at the top)",
                allowed=allowed,
            )
        low, high = widened_range(column.low, column.high, integer)
        kind = "int" if integer else "float"
        return Inferred(
            column.name,
            kind,
            nullable,
            f"{kind}, {seen}, {_number(column.low)} to {_number(column.high)}{missing}",
            min=low,
            max=high,
        )
    if column.numbers == 0 and column.booleans == column.texts:
        return Inferred(column.name, "bool", nullable, f"bool, {seen}{missing}")
    if column.numbers == 0 and column.datetimes == column.texts and column.first is not None:
        first, last = (np.datetime_as_string(d, unit="s") for d in (column.first, column.last or column.first))
        return Inferred(column.name, "datetime", nullable, f"datetime (ISO 8601), {first} to {last}{missing}")
    mixed = ""
    if column.numbers:
        mixed = (
            f"; {column.numbers:,} values are numbers but {column.texts:,} are not"
            f" (e.g. {_listing(column.shown, _SHOWN)}), so it is read as text"
        )
    if column.distinct <= LOW_CARDINALITY and column.counts is not None:
        allowed_text = column.sorted_values()
        return Inferred(
            column.name,
            "category",
            nullable,
            f"category, {seen}{missing}{mixed}",
            allowed=allowed_text,
        )
    if column.distinct == column.present:
        return Inferred(
            column.name,
            "string",
            nullable,
            f"string: every one of the {column.present:,} values differs (an identifier; the model does not use"
            f" string features){missing}{mixed}",
        )
    return Inferred(
        column.name,
        "category",
        nullable,
        f"category, {seen}: more than {LOW_CARDINALITY}, so no allowed list{missing}{mixed}",
    )


def _infer_task(column: _Column, task: Task | None) -> tuple[Task, str]:
    if column.present == 0:
        raise InputError(f"target {column.name!r}: every value is missing ({column.rows:,} rows)")
    if column.distinct < 2:
        only = next(iter(column.counts)) if column.counts else "?"
        raise InputError(
            f"target {column.name!r} has one value ({only!r} in {column.present:,} rows): a model needs at least two"
        )
    numeric = column.texts == 0
    integer = numeric and column.integers == column.numbers
    if task is None:
        if not numeric:
            task, reason = "classification", f"inferred: {column.name!r} holds text ({column.distinct:,} values)"
        elif integer and column.distinct <= LOW_CARDINALITY:
            task = "classification"
            reason = (
                f"inferred: {column.name!r} holds {column.distinct} distinct integers"
                f" (at most {LOW_CARDINALITY}: classes)"
            )
        else:
            kind = "integers" if integer else "numbers"
            task = "regression"
            reason = f"inferred: {column.name!r} holds {column.distinct:,} distinct {kind}"
        reason += "; --task sets it"
    else:
        reason = "given by --task"
    if task == "classification" and (column.counts is None or column.distinct > MAX_CLASSES):
        raise InputError(
            f"target {column.name!r} has {column.distinct:,} distinct values: classification takes at most"
            f" {MAX_CLASSES} classes" + (" (use --task regression for a number)" if numeric else "")
        )
    if task == "regression" and not numeric:
        raise InputError(
            f"target {column.name!r} holds values that are not numbers (e.g. {_listing(column.shown, _SHOWN)}):"
            " a regression target must be numbers (use --task classification)"
        )
    return task, reason


def _classes(column: _Column) -> list[Any]:
    values = column.sorted_values()
    if column.texts == 0 and column.integers == column.numbers:
        return [int(v) for v in values]
    return values


def _positive(column: _Column, classes: list[Any]) -> tuple[Any, str]:
    assert column.counts is not None
    by_label = {coerce.label(c): c for c in classes}
    known = _POSITIVE.get(frozenset(label.lower() for label in by_label))
    if known is not None:
        positive = next(c for label, c in by_label.items() if label.lower() == known)
        return positive, f"positive class {positive!r}: the usual event of a {'/'.join(map(str, classes))} label"
    counts = {c: column.counts[str(c)] if str(c) in column.counts else _count(column, c) for c in classes}
    rarest = min(classes, key=lambda c: (counts[c], -classes.index(c)))
    share = counts[rarest] / max(column.present, 1)
    return rarest, f"positive class {rarest!r}: the rarer class ({share:.1%} of the labels); change it if needed"


def _count(column: _Column, value: Any) -> int:
    assert column.counts is not None
    return sum(n for text, n in column.counts.items() if coerce.label(text) == coerce.label(value))


def model_name(path: Path) -> str:
    """A model name from a file name: ``Bike Share 2024.csv`` -> ``bike-share-2024``."""
    stem = path.name.split(".")[0].lower()
    name = re.sub(r"[^a-z0-9]+", "-", stem).strip("-")
    if not name or not name[0].isalpha():
        name = f"model-{name}".rstrip("-")
    return name[:63].rstrip("-")


# ---------------------------------------------------------------------------------------- rendering
def _flow(value: Any) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, sort_keys=False, allow_unicode=True, width=10**9)
    return text.removesuffix("\n...\n").strip()


def _comment(text: str, indent: str = "") -> str:
    """``# text``, wrapped at :data:`WIDTH` characters."""
    return "\n".join(
        textwrap.wrap(" ".join(text.split()), WIDTH, initial_indent=f"{indent}# ", subsequent_indent=f"{indent}# ")
    )


@dataclass(frozen=True)
class _Plan:
    name: str
    path: Path
    rows: int
    columns: list[str]
    target: _Column
    task: Task
    task_reason: str
    features: list[Inferred]


def _render(plan: _Plan, duplicates: int | None) -> str:
    target = plan.target
    lines = [
        _comment(
            f"A starting spec inferred by `mlops spec init` from {plan.path.name} ({plan.rows:,} rows,"
            f" {len(plan.columns)} columns). Read it before you use it: the types, allowed values and"
            " ranges say what this file holds, not what the data may hold. Format: docs/spec-format.md."
        ),
        _comment(
            f"Inferred: nullable where a value is missing; allowed values for columns with at most"
            f" {LOW_CARDINALITY} distinct values; min/max are the observed range widened by {RANGE_MARGIN:.0%}"
            " of its span on each side (never below 0 for a column without negative values). Columns of"
            " whole numbers are int, a number to the model (hours, counts, bands and 0/1 flags keep their"
            " order); where the numbers are only labels, make them type: category, and requests then send"
            ' them as strings ("3").'
        ),
        f"name: {_flow(plan.name)}",
        f"description: {_flow(f'Predicts {target.name} (from {plan.path.name})')}",
        _comment(plan.task_reason),
        f"task: {plan.task}",
        "target:",
        f"  name: {_flow(target.name)}",
    ]
    if plan.task == "classification":
        classes = _classes(target)
        lines.append(_comment(f"{len(classes)} classes seen in {target.present:,} labels", "  "))
        lines.append(f"  classes: {_flow(classes)}")
        if len(classes) == 2:
            positive, why = _positive(target, classes)
            lines.append(_comment(why, "  "))
            lines.append(f"  positive_class: {_flow(positive)}")
    else:
        low, high = widened_range(target.low, target.high, target.integers == target.numbers)
        lines.append(_comment(f"observed {_number(target.low)} to {_number(target.high)}", "  "))
        lines += [f"  min: {_flow(low)}", f"  max: {_flow(high)}"]
    if target.missing:
        lines.append(
            _comment(
                f"WARNING: {target.missing:,} rows have no {target.name}: a training dataset needs every label,"
                " so this file fails validation until they are dropped",
                "  ",
            )
        )
    lines.append("features:")
    for feature in plan.features:
        lines.append(_comment(feature.comment, "  "))
        lines.append(f"  - {_flow(feature.entry())}")
    minimum = min(plan.rows, MIN_ROWS)
    lines += [
        _comment(f"{plan.path.name} has {plan.rows:,} rows; a dataset with fewer than {minimum:,} is refused"),
        f"row_count: {{min: {minimum}}}",
        _comment(
            "Histogram gradient boosting: handles missing values itself, fast on Lambda; params are a start."
            " Rows are split by a hash of their content (training.split, docs/training-pipeline.md)."
        ),
        "training:",
        f"  estimator: {ESTIMATOR[plan.task]}",
        f"  params: {_flow(PARAMS)}",
        "  test_size: 0.2",
        "  seed: 42",
    ]
    primary, metric, floor = GATES[plan.task]
    lines += [
        _comment(
            f"A floor that a useless model fails, not a target: raise {metric} once you know what this model reaches."
        ),
        "gates:",
        f"  primary_metric: {primary}",
        "  metrics:",
        f"    {metric}: {{min: {floor}}}",
        "  must_beat_champion: true",
        "approval:",
        "  required: true",
        "  timeout_hours: 72",
        "  four_eyes: true               # whoever uploaded the data cannot approve the model trained on it",
        "deployment:",
        "  strategy: all_at_once",
        "monitoring:",
        "  schedule: rate(1 day)",
        "  retrain_on_drift: false",
    ]
    if duplicates:
        lines += [
            _comment(
                f"{duplicates:,} rows of {plan.path.name} repeat an earlier row exactly: reported, not refused"
                " (make it error if repeats mean a broken export)"
            ),
            "validation:",
            "  duplicate_rows: warning",
        ]
    elif duplicates is None:
        lines += ["validation:", "  duplicate_rows: warning"]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------- API
def infer_spec(
    path: str | Path,
    target: str,
    *,
    task: Task | None = None,
    name: str | None = None,
) -> SpecDraft:
    """Infer a starting spec for ``target`` from the CSV (or gzip CSV) at ``path``.

    Parameters
    ----------
    path
        The data file.
    target
        The column the model predicts.
    task
        ``classification`` or ``regression``; inferred from the target when None.
    name
        The model name (default: from the file name, see :func:`model_name`).

    Raises
    ------
    InputError
        The file cannot be read or holds no rows, has no column ``target``, or the target cannot
        be learnt (one value, every value missing, too many classes, text for a regression).
    """
    path = Path(path)
    if name is not None and not MODEL_NAME.match(name):
        raise InputError(
            f"--model {name!r}: a model name starts with a lowercase letter and holds only lowercase letters,"
            " digits and '-' (at most 63 characters)"
        )
    header, columns, rows = _read(path)
    if target not in columns:
        raise InputError(f"{path}: no column {target!r}{_column_hint(target, header)}")
    long_names = [n for n in header if len(n) > 128 or not n]
    if long_names:
        shown = ", ".join(repr(n[:40]) for n in long_names[:3])
        raise InputError(f"{path}: column names must be 1 to 128 characters ({shown})")
    target_column = columns[target]
    try:
        chosen, reason = _infer_task(target_column, task)
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None
    features = [_infer_feature(columns[n]) for n in header if n != target]
    if not features:
        raise InputError(f"{path}: the only column is the target {target!r}; a model needs features")
    plan = _Plan(name or model_name(path), path, rows, header, target_column, chosen, reason, features)
    return _check(plan)


def _check(plan: _Plan) -> SpecDraft:
    from mlops.data.validation import validate_file

    # Rows are compared as the validator reads them (numbers as numbers): it counts the duplicates.
    counting = parse_spec_text(_render(plan, None), f"spec inferred from {plan.path}")
    report = validate_file(plan.path, counting)
    duplicates = sum(c.failing_count for c in report.checks if c.check == "dataset.duplicate_rows")
    text = _render(plan, duplicates)
    spec = parse_spec_text(text, f"spec inferred from {plan.path}")
    problems = [
        f"{c.check}{f' [{c.column}]' if c.column else ''}: {c.message}"
        for c in report.checks
        if c.status is Status.FAILED and c.check != "dataset.duplicate_rows"
    ]
    return SpecDraft(
        text=text,
        spec=spec,
        task=plan.task,
        task_reason=plan.task_reason,
        rows=plan.rows,
        columns=plan.columns,
        features=plan.features,
        duplicates=duplicates,
        problems=problems,
    )


def _column_hint(target: str, header: list[str]) -> str:
    shown = ", ".join(repr(h) for h in header[:10]) + (f", ... ({len(header)} in all)" if len(header) > 10 else "")
    hint = f" (columns: {shown})"
    close = difflib.get_close_matches(target, header, n=1)
    if close:
        hint += f"; did you mean {close[0]!r}?"
    elif len(header) == 1 and " " in header[0]:
        hint += "; the header is one column with spaces in it: the file looks space-separated (save it comma-separated)"
    return hint


__all__ = ["LOW_CARDINALITY", "MAX_CLASSES", "NA_STRINGS", "RANGE_MARGIN", "SpecDraft", "infer_spec", "model_name"]
