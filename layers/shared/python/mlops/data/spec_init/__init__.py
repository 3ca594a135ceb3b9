"""A starting model spec inferred from a CSV file (``mlops spec init``).

The file is read once (:mod:`.columns`) with the validation reader (:class:`mlops.data.validation.reader.CsvReader`:
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops.data.spec_init.columns import MAX_CLASSES, read_columns
from mlops.data.spec_init.render import Plan, render_spec
from mlops.data.spec_init.rules import (
    LOW_CARDINALITY,
    RANGE_MARGIN,
    Inferred,
    Task,
    infer_feature,
    infer_task,
    model_name,
    widened_range,
)
from mlops.data.validation import validate_file
from mlops.data.validation.reader import NA_STRINGS
from mlops.data.validation.report import Status
from mlops.errors import InputError
from mlops.spec.model import MODEL_NAME, ModelSpec, parse_spec_text


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
    header, columns, rows = read_columns(path)
    if target not in columns:
        raise InputError(f"{path}: no column {target!r}{_column_hint(target, header)}")
    long_names = [n for n in header if len(n) > 128 or not n]
    if long_names:
        shown = ", ".join(repr(n[:40]) for n in long_names[:3])
        raise InputError(f"{path}: column names must be 1 to 128 characters ({shown})")
    target_column = columns[target]
    try:
        chosen, reason = infer_task(target_column, task)
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None
    features = [infer_feature(columns[n]) for n in header if n != target]
    if not features:
        raise InputError(f"{path}: the only column is the target {target!r}; a model needs features")
    plan = Plan(name or model_name(path), path, rows, header, target_column, chosen, reason, features)
    return _check(plan)


def _check(plan: Plan) -> SpecDraft:
    # Rows are compared as the validator reads them (numbers as numbers): it counts the duplicates.
    counting = parse_spec_text(render_spec(plan, None), f"spec inferred from {plan.path}")
    report = validate_file(plan.path, counting)
    duplicates = sum(c.failing_count for c in report.checks if c.check == "dataset.duplicate_rows")
    text = render_spec(plan, duplicates)
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


__all__ = [
    "LOW_CARDINALITY",
    "MAX_CLASSES",
    "NA_STRINGS",
    "RANGE_MARGIN",
    "SpecDraft",
    "infer_spec",
    "model_name",
    "widened_range",
]
