"""The checks on generated frames: valid data passes, each constraint catches its violation."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest

from mlops.data.profile import profile_frame
from mlops.data.validation import (
    SCHEMA_VERSION,
    Status,
    ValidationOptions,
    ValidationReport,
    validate_frame,
    validate_stream,
)
from mlops.spec.model import ModelSpec, parse_spec


def make_frame(rows: int = 500, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "tenure": rng.integers(0, 100, rows),
            "spend": np.where(rng.random(rows) < 0.1, np.nan, rng.gamma(2.0, 30.0, rows)),
            "plan": pd.Series(rng.choice(["a", "b", "c"], rows), dtype="str"),
            "code": [f"AB{i}" for i in range(rows)],
            "churned": rng.integers(0, 2, rows),
        }
    )


def statuses(report: ValidationReport) -> dict[tuple[str, str | None], str]:
    return {(c.check, c.column): c.status.value for c in report.checks}


def test_generated_valid_frame_passes(small_spec: ModelSpec) -> None:
    # GIVEN a generated frame that meets every constraint
    frame = make_frame()
    # WHEN validated
    report = validate_frame(frame, small_spec)
    # THEN it is valid and every check passed
    assert report.valid, report.render_text()
    assert report.summary["failed"] == 0
    assert report.rows == 500
    assert "VALID" in report.render_text()


def test_valid_frame_through_csv_passes_too(small_spec: ModelSpec) -> None:
    # GIVEN the same frame written as CSV
    data = make_frame().to_csv(index=False).encode()
    # WHEN validated as a stream in small blocks
    report = validate_stream(io.BytesIO(data), small_spec, "gen.csv", block_size=1000)
    # THEN it is valid
    assert report.valid, report.render_text()


@pytest.mark.parametrize(
    ("column", "value", "check", "fragment"),
    [
        ("tenure", -1, "column.min", "below the minimum 0"),
        ("tenure", 101, "column.max", "above the maximum 100"),
        ("spend", -0.5, "column.min", "below the minimum 0"),
        ("spend", np.inf, "column.non_finite", "infinite"),
        ("plan", "z", "column.allowed", "not among the allowed [a, b, c]"),
        ("plan", None, "column.nulls", "missing value"),
        ("code", "ab1", "column.regex", "not matching /[A-Z]{2}\\d+/"),
        ("code", "AB0", "column.unique", "already in an earlier row"),
        ("churned", 3, "target.values", "not among the classes [0, 1]"),
    ],
)
def test_each_constraint_reports_its_row(
    small_spec: ModelSpec, column: str, value: object, check: str, fragment: str
) -> None:
    # GIVEN a valid frame with one bad value at row 43 (index 42)
    frame = make_frame()
    if isinstance(value, str) or value is None:
        frame[column] = frame[column].astype(object)
    else:
        frame[column] = frame[column].astype(float)
    frame.loc[42, column] = value
    # WHEN validated
    report = validate_frame(frame, small_spec)
    # THEN exactly that check fails, naming the row and the value
    result = report.find(check, column)[0]
    assert result.status is Status.FAILED
    assert fragment in result.message
    assert result.failing_count == 1
    assert result.examples[0].row == 43
    assert not report.valid


def test_type_coercion_reports_unreadable_values(small_spec: ModelSpec) -> None:
    # GIVEN number columns holding text and a fraction in an int column
    frame = make_frame(50).astype({"tenure": object, "spend": object})
    frame.loc[3, "tenure"] = "ten"
    frame.loc[4, "tenure"] = 2.5
    frame.loc[5, "spend"] = "12,5"
    # WHEN validated
    report = validate_frame(frame, small_spec)
    # THEN each is a type failure with its own note
    tenure = report.find("column.type", "tenure")[0]
    assert tenure.failing_count == 2
    assert [(e.row, e.value, e.note) for e in tenure.examples] == [
        (4, "ten", "not a number"),
        (5, "2.5", "not a whole number"),
    ]
    assert report.find("column.type", "spend")[0].examples[0].value == "12,5"


def test_max_examples_limits_examples_not_counts(small_spec: ModelSpec) -> None:
    # GIVEN 100 values below the minimum
    frame = make_frame()
    frame.loc[:99, "tenure"] = -5
    # WHEN validated with 3 examples per check
    report = validate_frame(frame, small_spec, max_examples=3)
    # THEN the count is complete and the examples are the first three rows
    result = report.find("column.min", "tenure")[0]
    assert result.failing_count == 100
    assert [e.row for e in result.examples] == [1, 2, 3]


def test_uniqueness_and_duplicate_rows_span_chunks(small_spec: ModelSpec) -> None:
    # GIVEN a CSV whose last row repeats the first one entirely (far apart, different chunks)
    frame = make_frame(300)
    frame = pd.concat([frame, frame.iloc[[0]]], ignore_index=True)
    data = frame.to_csv(index=False).encode()
    # WHEN validated in small blocks
    report = validate_stream(io.BytesIO(data), small_spec, "dup.csv", block_size=256)
    # THEN both the unique column and the duplicate row point back to row 1
    unique = report.find("column.unique", "code")[0]
    assert unique.failing_count == 1
    assert (unique.examples[0].row, unique.examples[0].note) == (301, "also in row 1")
    duplicate = report.find("dataset.duplicate_rows")[0]
    assert (duplicate.examples[0].row, duplicate.examples[0].note) == (301, "same as row 1")


def test_duplicate_rows_severity_comes_from_the_spec(small_spec: ModelSpec) -> None:
    # GIVEN a frame with a duplicated row and specs without unique columns, one per severity
    document = small_spec.model_dump(mode="json")
    document["features"] = [{**f, "unique": False} for f in document["features"]]
    specs = {
        severity: parse_spec({**document, "validation": {"duplicate_rows": severity}})
        for severity in ("error", "warning", "off")
    }
    frame = pd.concat([make_frame(20), make_frame(20).iloc[[5]]], ignore_index=True)
    # WHEN validated under each spec
    reports = {severity: validate_frame(frame, spec) for severity, spec in specs.items()}
    # THEN error fails, the warning does not fail the gate, and "off" does not run the check
    assert not reports["error"].valid and reports["error"].find("dataset.duplicate_rows")[0].failed
    assert reports["warning"].valid and reports["warning"].find("dataset.duplicate_rows")[0].status is Status.WARNING
    assert reports["off"].valid and not reports["off"].find("dataset.duplicate_rows")
    # AND each report records the setting in force
    assert {s: r.settings["duplicate_rows"] for s, r in reports.items() if r.settings} == {
        "error": "error",
        "warning": "warning",
        "off": "off",
    }
    # AND the severity is not a ValidationOptions knob any more (the spec is its one source)
    with pytest.raises(ValueError, match="duplicate_rows"):
        ValidationOptions(duplicate_rows="warning")  # type: ignore[call-arg]


def test_extra_columns_follow_the_spec_switch(small_spec: ModelSpec) -> None:
    # GIVEN a frame with an extra column
    frame = make_frame(20).assign(notes="x")
    # WHEN validated with and without allow_extra_columns
    strict = validate_frame(frame, small_spec)
    lenient = validate_frame(frame, small_spec.model_copy(update={"allow_extra_columns": True}))
    # THEN only the strict spec fails
    assert statuses(strict)[("schema.unexpected_columns", None)] == "failed"
    assert lenient.valid
    assert "1 extra column(s) ignored" in lenient.find("schema.unexpected_columns")[0].message


def test_class_balance_and_fairness(small_spec: ModelSpec) -> None:
    # GIVEN a spec with a class-balance floor and plan as a protected attribute
    spec = parse_spec(
        {
            **small_spec.model_dump(mode="json"),
            "target": {"name": "churned", "classes": [0, 1], "min_class_fraction": 0.3},
            "fairness": {"protected_attributes": ["plan"], "min_disparate_impact": 0.8},
        }
    )
    frame = make_frame(600)
    frame["churned"] = np.where(frame["plan"] == "a", 1, frame["churned"])  # plan a: always positive
    # WHEN validated
    report = validate_frame(frame, spec)
    # THEN the labels' disparate impact is a warning naming the groups (base rates are not a data
    # defect: the gate judges predictions), and balance details list the counts
    fairness = report.find("fairness.disparate_impact", "plan")[0]
    assert fairness.status is Status.WARNING and report.valid
    assert "label disparate impact" in fairness.message and "not refused" in fairness.message
    groups = fairness.details["groups"]
    assert groups["a"]["positive_rate"] == 1.0
    assert sum(g["rows"] for g in groups.values()) == 600
    assert fairness.details["disparate_impact"] < 0.8
    balance = report.find("target.class_balance")[0]
    assert balance.status is Status.PASSED
    assert sum(balance.details["counts"].values()) == 600


def test_regression_target_checks(small_spec: ModelSpec) -> None:
    # GIVEN a regression spec with target bounds
    spec = parse_spec(
        {
            **small_spec.model_dump(mode="json"),
            "task": "regression",
            "target": {"name": "churned", "min": 0, "max": 1},
            "training": {"estimator": "sklearn.linear_model.Ridge"},
        }
    )
    frame = make_frame(50).astype({"churned": object})
    frame.loc[1, "churned"] = 5
    frame.loc[2, "churned"] = "high"
    frame.loc[3, "churned"] = None
    # WHEN validated
    report = validate_frame(frame, spec)
    # THEN each target problem is reported at its row
    assert report.find("target.max")[0].examples[0].row == 2
    assert report.find("target.type")[0].examples[0].row == 3
    assert report.find("target.nulls")[0].examples[0].row == 4


def test_reference_checks_flag_shift_new_categories_and_missing_rate(small_spec: ModelSpec) -> None:
    # GIVEN a reference profile of training data and a new dataset that moved
    reference = profile_frame(make_frame(2000, seed=1), small_spec)
    current = make_frame(2000, seed=2)
    current["spend"] = current["spend"] * 3 + 50
    current.loc[:999, "spend"] = np.nan
    current["plan"] = current["plan"].astype(object)
    current.loc[:99, "plan"] = "d"
    spec = small_spec.model_copy(
        update={
            "features": [f.model_copy(update={"allowed": None}) if f.name == "plan" else f for f in small_spec.features]
        }
    )
    # WHEN validated against the reference
    report = validate_frame(current, spec, reference=reference)
    # THEN each statistical check names the column and the numbers
    assert report.reference_used
    assert report.find("reference.mean_shift", "spend")[0].status is Status.FAILED
    assert report.find("reference.std_shift", "spend")[0].status is Status.FAILED
    missing = report.find("reference.missing_rate", "spend")[0]
    assert missing.status is Status.FAILED and missing.details["missing_rate"] > 0.5
    assert "vs reference 1" in missing.message
    new = report.find("reference.new_categories", "plan")[0]
    assert new.failing_count == 100 and new.examples[0].value == "d"
    # AND unchanged columns pass
    assert report.find("reference.mean_shift", "tenure")[0].status is Status.PASSED


def test_same_distribution_passes_reference_checks(small_spec: ModelSpec) -> None:
    # GIVEN two samples of the same generator
    reference = profile_frame(make_frame(3000, seed=3), small_spec)
    # WHEN the second is validated against the first
    report = validate_frame(make_frame(3000, seed=4), small_spec, reference=reference)
    # THEN no reference check fails
    assert report.valid, report.render_text()
    assert len([c for c in report.checks if c.check.startswith("reference.")]) >= 8


def test_reference_severity_warning_does_not_fail(small_spec: ModelSpec) -> None:
    # GIVEN a shifted dataset and reference checks set to warn
    reference = profile_frame(make_frame(1000, seed=1), small_spec)
    current = make_frame(1000, seed=2)
    current["tenure"] = (current["tenure"] // 3).astype(int)
    # WHEN validated
    report = validate_frame(
        current, small_spec, reference=reference, options=ValidationOptions(reference_severity="warning")
    )
    # THEN the shift is a warning and the data is valid
    assert report.valid
    assert report.find("reference.mean_shift", "tenure")[0].status is Status.WARNING


def test_report_json_document_shape(small_spec: ModelSpec) -> None:
    # GIVEN a failing report
    frame = make_frame(30)
    frame.loc[0, "tenure"] = -1
    report = validate_frame(frame, small_spec)
    # WHEN serialized
    document = json.loads(report.to_json())
    # THEN the documented top-level fields are there and round-trip
    assert document["schema_version"] == SCHEMA_VERSION
    assert {
        "valid",
        "readable",
        "model",
        "spec_fingerprint",
        "source",
        "rows",
        "columns",
        "schema_fingerprint",
        "summary",
        "checks",
    } <= set(document)
    failed = [c for c in document["checks"] if c["status"] == "failed"]
    assert failed == [
        {
            "check": "column.min",
            "column": "tenure",
            "status": "failed",
            "message": "1 value below the minimum 0",
            "failing_count": 1,
            "examples": [{"row": 1, "value": "-1", "note": None}],
            "details": {},
        }
    ]
    assert ValidationReport.from_json(report.to_json()) == report


def test_bool_and_datetime_columns() -> None:
    # GIVEN a spec with bool and datetime features
    spec = parse_spec(
        {
            "name": "events",
            "task": "classification",
            "target": {"name": "y", "classes": ["no", "yes"]},
            "features": [{"name": "flag", "type": "bool"}, {"name": "at", "type": "datetime"}],
            "training": {"estimator": "sklearn.linear_model.LogisticRegression"},
        }
    )
    frame = pd.DataFrame(
        {
            "flag": ["true", "No", "1", "perhaps"],
            "at": ["2024-01-01", "2024-01-01T10:00:00+02:00", "2024-13-01", "2024-02-03 04:05"],
            "y": ["yes", "no", "yes", "no"],
        }
    )
    # WHEN validated
    report = validate_frame(frame, spec)
    # THEN only the unreadable values fail
    assert [(e.row, e.value) for e in report.find("column.type", "flag")[0].examples] == [(4, "perhaps")]
    assert [(e.row, e.value) for e in report.find("column.type", "at")[0].examples] == [(3, "2024-13-01")]
