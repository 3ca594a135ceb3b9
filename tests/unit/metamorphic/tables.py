"""CSV files as header + text fields, rearranged without touching a value, and the datasets to rearrange.

A permutation is made on the text of the file (the csv module reads and writes every field
as it stands), so the permuted file holds exactly the same values as the original, only in
another column or row order.

Real data comes from scikit-learn's bundled datasets (breast cancer: binary, with the target
moved to the first column as many real files have it; wine: three classes; diabetes: regression
on raw, unscaled values), in the order they ship in, each with a spec written here whose
constraints some real rows break, so that failing checks and their example rows are compared
too. The example generator's churn data adds the types the real sets lack (text, categories,
booleans, dates), with errors injected at known rows.
"""

from __future__ import annotations

import csv
import importlib.util
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd

from mlops.spec.model import ModelSpec, load_spec, parse_spec

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


@dataclass(frozen=True)
class Table:
    """A CSV file: its header and its records, every field as text."""

    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]

    @classmethod
    def parse(cls, data: bytes) -> Table:
        records = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
        return cls(tuple(records[0]), tuple(tuple(r) for r in records[1:]))

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> Table:
        return cls.parse(frame.to_csv(index=False).encode("utf-8"))

    def to_bytes(self) -> bytes:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(self.header)
        writer.writerows(self.rows)
        return out.getvalue().encode("utf-8")

    def with_columns(self, order: Sequence[str]) -> Table:
        """The same file with its columns in ``order`` (names from the header; others dropped)."""
        at = [self.header.index(name) for name in order]
        return Table(tuple(order), tuple(tuple(row[i] for i in at) for row in self.rows))

    def with_rows(self, order: Sequence[int]) -> Table:
        """The same file with its records in ``order`` (0-based positions)."""
        return Table(self.header, tuple(self.rows[i] for i in order))

    def with_column(self, name: str, values: Sequence[str], at: int) -> Table:
        """The same file with one more column inserted at position ``at``."""
        header = (*self.header[:at], name, *self.header[at:])
        rows = tuple((*row[:at], value, *row[at:]) for row, value in zip(self.rows, values, strict=True))
        return Table(header, rows)

    def with_cell(self, row: int, column: str, value: str) -> Table:
        """The same file with one field replaced (``row`` 0-based)."""
        i = self.header.index(column)
        rows = list(self.rows)
        rows[row] = (*rows[row][:i], value, *rows[row][i + 1 :])
        return Table(self.header, tuple(rows))

    def head(self, n: int) -> Table:
        return Table(self.header, self.rows[:n])

    def split(self, keep: Callable[[tuple[str, ...]], bool]) -> tuple[Table, Table]:
        """(rows where ``keep`` holds, the others)."""
        return (
            Table(self.header, tuple(r for r in self.rows if keep(r))),
            Table(self.header, tuple(r for r in self.rows if not keep(r))),
        )


@dataclass(frozen=True)
class Dataset:
    """A file, the spec it is checked against, and a simple estimator to train quickly."""

    name: str
    table: Table
    spec: ModelSpec


def _training(estimator: str, **params: Any) -> dict[str, Any]:
    return {"estimator": estimator, "params": params, "test_size": 0.25, "seed": 3}


@cache
def breast_cancer() -> Dataset:
    """569 rows, 30 float features, a 0/1 target moved to the first column."""
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame
    frame = frame[["target", *[c for c in frame.columns if c != "target"]]]
    limits: dict[str, dict[str, float]] = {
        "mean radius": {"max": 25.0},  # 5 real tumours are larger
        "mean area": {"min": 200.0},  # 4 real ones are smaller
        "worst concavity": {"max": 1.0},  # 3 real rows above
    }
    features = [{"name": c, "type": "float", **limits.get(c, {})} for c in frame.columns if c != "target"]
    spec = parse_spec(
        {
            "name": "breast-cancer",
            "task": "classification",
            "target": {"name": "target", "classes": [0, 1], "positive_class": 0},
            "features": features,
            "training": _training("sklearn.linear_model.LogisticRegression", max_iter=500),
        }
    )
    return Dataset("breast_cancer", Table.from_frame(frame), spec)


@cache
def wine() -> Dataset:
    """178 rows, 13 features (two of them whole numbers), three classes."""
    from sklearn.datasets import load_wine

    frame = load_wine(as_frame=True).frame
    features: list[dict[str, Any]] = []
    for column in frame.columns:
        if column == "target":
            continue
        feature: dict[str, Any] = {"name": column, "type": "int" if column in ("magnesium", "proline") else "float"}
        if column == "alcohol":
            feature["min"] = 11.5  # 4 real wines are weaker
        features.append(feature)
    spec = parse_spec(
        {
            "name": "wine",
            "task": "classification",
            "target": {"name": "target", "classes": [0, 1, 2], "min_class_fraction": 0.3},  # class 2: 27%
            "features": features,
            "row_count": {"min": 10},
            "training": _training("sklearn.ensemble.RandomForestClassifier", n_estimators=15, max_depth=4),
        }
    )
    return Dataset("wine", Table.from_frame(frame), spec)


@cache
def diabetes() -> Dataset:
    """442 rows, 10 raw (unscaled) features, a regression target in the last column."""
    from sklearn.datasets import load_diabetes

    frame = load_diabetes(as_frame=True, scaled=False).frame
    features: list[dict[str, Any]] = [
        {"name": "age", "type": "int", "min": 20},  # 3 real patients are younger
        {"name": "sex", "type": "int", "allowed": [1, 2]},
        {"name": "bmi", "type": "float", "max": 40},  # 2 real rows above
        *({"name": c, "type": "float"} for c in ("bp", "s1", "s2", "s3", "s4", "s5", "s6")),
    ]
    spec = parse_spec(
        {
            "name": "diabetes",
            "task": "regression",
            "target": {"name": "target"},
            "features": features,
            "row_count": {"min": 10},
            "training": _training("sklearn.linear_model.Ridge", alpha=1.0),
        }
    )
    return Dataset("diabetes", Table.from_frame(frame), spec)


def _generate(model: str, rows: int, seed: int) -> pd.DataFrame:
    module_spec = importlib.util.spec_from_file_location("example_generate", EXAMPLES / "generate.py")
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    frame: pd.DataFrame = module.generate(model, rows=rows, seed=seed)
    return frame


def churn_spec() -> ModelSpec:
    return load_spec(EXAMPLES / "specs" / "churn.yaml")


@cache
def churn(rows: int = 500, seed: int = 1) -> Dataset:
    """The example churn data as ``examples/generate.py churn --rows 500`` writes it."""
    return Dataset("churn", Table.from_frame(_generate("churn", rows, seed)), churn_spec())


@cache
def churn_with_errors() -> Dataset:
    """Churn rows with one error of each kind at a known row (and a repeated identifier)."""
    base = churn()
    table = base.table
    first_id = table.rows[0][table.header.index("customer_id")]
    for row, column, value in (
        (3, "tenure_months", "-4"),
        (7, "monthly_charges", "not a number"),
        (11, "contract", "monthly"),
        (19, "region", "EU"),
        (23, "senior", "maybe"),
        (29, "signup_date", "31/12/2020"),
        (31, "customer_id", first_id),
        (37, "support_calls", "2.5"),
        (41, "churned", "2"),
        (43, "internet_service", ""),
    ):
        table = table.with_cell(row, column, value)
    return Dataset("churn_with_errors", table, base.spec)


REAL = (breast_cancer, wine, diabetes)


def drift_sides(dataset: Dataset) -> tuple[Table, Table]:
    """A reference and a window that differ for real (one class or one age group against the rest)."""
    table = dataset.table
    column, value = {
        "breast_cancer": ("target", "1"),  # benign tumours (1) as the window, malignant as the reference
        "wine": ("target", "2"),
        "churn": ("contract", "month-to-month"),
        "churn_with_errors": ("contract", "month-to-month"),
    }.get(dataset.name, ("", ""))
    if column:
        i = table.header.index(column)
        window, reference = table.split(lambda row: row[i] == value)
        return reference, window
    i = table.header.index("age")  # diabetes: patients over 50 as the window
    window, reference = table.split(lambda row: float(row[i]) > 50)
    return reference, window
