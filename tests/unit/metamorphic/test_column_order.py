"""Columns are matched by header name: permuting a file's columns changes no answer.

Validation (every check, its failing rows and values), the dataset record's order-independent
fields, the reference profile, drift statistics (from the training CSV and from a stored
profile), monitoring windows built from capture records, and label files, on scikit-learn's
bundled datasets and on the example churn data with errors injected. Extra columns, where the
spec allows them, may stand anywhere; a missing column is a finding that names it.

The dataset record keeps the file's own column order in ``columns`` and its bytes' sha256 (both
naturally change with the order). Its schema fingerprint is defined over the sorted column
names, because every reader matches columns by name: the same columns in another order are the
same schema. Rows, size and column types do not change either.
"""

from __future__ import annotations

import io
import json
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlops.data.datasets import scan_csv
from mlops.data.labels import parse_labels
from mlops.data.profile import ReferenceProfile, profile_stream
from mlops.data.validation import ValidationReport, validate_frame, validate_stream
from mlops.drift import Reference, drift_report, read_window
from mlops.errors import InputError
from mlops.monitoring.captures import records_frame
from mlops.spec.model import ModelSpec, parse_spec
from mlops.training.frames import load_training_frame
from tests.unit.metamorphic import views
from tests.unit.metamorphic.tables import (
    Dataset,
    Table,
    breast_cancer,
    churn_with_errors,
    diabetes,
    drift_sides,
    wine,
)

DATASETS = [breast_cancer, wine, diabetes, churn_with_errors]
IDS = ["breast_cancer", "wine", "diabetes", "churn_with_errors"]
FAST = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FEWER = settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def validate(table: Table, spec: ModelSpec) -> ValidationReport:
    return validate_stream(io.BytesIO(table.to_bytes()), spec, "data.csv")


@cache
def validated(name: str) -> ValidationReport:
    dataset = _by_name(name)
    return validate(dataset.table, dataset.spec)


def _by_name(name: str) -> Dataset:
    return dict(zip(IDS, DATASETS, strict=True))[name]()


def allowing_extras(spec: ModelSpec) -> ModelSpec:
    return parse_spec({**spec.model_dump(mode="json"), "allow_extra_columns": True})


# ------------------------------------------------------------------------------------ validation
@pytest.mark.parametrize("name", IDS)
@FAST
@given(data=st.data())
def test_permuting_columns_changes_no_validation_check(name: str, data: st.DataObject) -> None:
    # GIVEN a real file (or churn with an error of each kind) and the same file with its columns permuted
    dataset = _by_name(name)
    order = data.draw(st.permutations(dataset.table.header), label="column order")
    # WHEN both are validated against the spec
    report = validate(dataset.table.with_columns(order), dataset.spec)
    # THEN every check has the same status, message, count, failing rows, values and details
    original = validated(name)
    assert views.validation(report) == views.validation(original)
    assert report.columns == list(order)


def test_the_checks_that_fail_on_real_data_are_the_ones_compared() -> None:
    # GIVEN the specs written for the real datasets, whose limits some real rows break
    # THEN the comparison above covers failing checks with example rows, not only passing ones
    failing = {name: {(c.check, c.column) for c in validated(name).failures} for name in IDS}
    assert ("column.max", "mean radius") in failing["breast_cancer"]
    assert ("column.min", "alcohol") in failing["wine"]
    assert ("column.max", "bmi") in failing["diabetes"]
    assert {c for c, _ in failing["churn_with_errors"]} >= {
        "column.unique",
        "column.min",
        "column.type",
        "column.allowed",
        "column.nulls",
        "column.regex",
        "target.values",
    }
    assert validated("churn_with_errors").find("column.regex", "region")[0].examples[0].row == 20


@pytest.mark.parametrize("name", IDS)
@FAST
@given(data=st.data())
def test_extra_columns_may_stand_anywhere_when_the_spec_allows_them(name: str, data: st.DataObject) -> None:
    # GIVEN the file with two extra columns inserted at any positions, its columns in any order
    dataset = _by_name(name)
    spec = allowing_extras(dataset.spec)
    order = data.draw(st.permutations(dataset.table.header), label="column order")
    table = dataset.table.with_columns(order)
    rows = len(table.rows)
    for extra in ("batch", "comment"):
        at = data.draw(st.integers(0, len(table.header)), label=f"{extra} position")
        table = table.with_column(extra, [f"{extra}-{i % 7}" for i in range(rows)], at)
    # WHEN validated with allow_extra_columns, and without
    allowed = validate(table, spec)
    refused = validate(table, dataset.spec)
    # THEN with it, every check is the original's (the extras are listed as ignored); without it,
    # only schema.unexpected_columns changes, and it names both extras
    original = {(c[0], c[1]): c for c in views.checks(validated(name))}
    for report in (allowed, refused):
        for check in views.checks(report):
            if check[0] != "schema.unexpected_columns":
                assert check == original[(check[0], check[1])]
    assert sorted(allowed.find("schema.unexpected_columns")[0].details["ignored"]) == ["batch", "comment"]
    assert allowed.valid == validated(name).valid
    unexpected = refused.find("schema.unexpected_columns")[0]
    assert unexpected.status == "failed" and "'batch'" in unexpected.message and "'comment'" in unexpected.message


@pytest.mark.parametrize("name", IDS)
@FAST
@given(data=st.data())
def test_a_missing_column_is_a_finding_naming_it_in_any_order(name: str, data: st.DataObject) -> None:
    # GIVEN the file without one of the spec's columns, the rest in any order
    dataset = _by_name(name)
    gone = data.draw(st.sampled_from([*dataset.spec.feature_names, dataset.spec.target.name]), label="dropped")
    rest = [c for c in dataset.table.header if c != gone]
    order = data.draw(st.permutations(rest), label="column order")
    # WHEN validated
    report = validate(dataset.table.with_columns(order), dataset.spec)
    # THEN the report is invalid and its finding names the missing column
    assert not report.valid and report.readable
    if gone == dataset.spec.target.name:
        finding = report.find("target.present")[0]
    else:
        finding = report.find("schema.missing_columns")[0]
        assert finding.details["missing"] == [gone]
    assert finding.status == "failed" and repr(gone) in finding.message
    # AND every other column's own checks are unchanged (values read from the right column)
    original = {(c[0], c[1]): c for c in views.checks(validated(name)) if c[1] not in (None, gone)}
    for check in views.checks(report):
        if check[1] not in (None, gone) and not check[0].startswith(("target.", "fairness.")):
            assert check == original[(check[0], check[1])]
    # AND training refuses the file naming the same column
    with pytest.raises(InputError, match=gone):
        load_training_frame(io.BytesIO(dataset.table.with_columns(order).to_bytes()), dataset.spec, "data.csv")


# ------------------------------------------------------------------------------ dataset records
@pytest.mark.parametrize("name", IDS)
@FAST
@given(data=st.data())
def test_permuting_columns_keeps_the_dataset_records_schema_rows_and_types(name: str, data: st.DataObject) -> None:
    # GIVEN a file and the same file with its columns permuted
    dataset = _by_name(name)
    order = data.draw(st.permutations(dataset.table.header), label="column order")
    original = scan_csv(io.BytesIO(dataset.table.to_bytes()))
    # WHEN each is scanned as a dataset version
    scan = scan_csv(io.BytesIO(dataset.table.with_columns(order).to_bytes()))
    # THEN rows, size, column types and the schema fingerprint are the same; the recorded column
    # order is the file's own, and the sha256 is of the file's bytes
    assert (scan.rows, scan.size, scan.column_types, scan.schema_fingerprint) == (
        original.rows,
        original.size,
        original.column_types,
        original.schema_fingerprint,
    )
    assert scan.columns == list(order)
    assert (scan.sha256 == original.sha256) == (list(order) == list(dataset.table.header))
    # AND the validation report carries the same schema fingerprint as the record
    assert validated(name).schema_fingerprint == original.schema_fingerprint


# ------------------------------------------------------------------------------------- profiles
@cache
def profiled(name: str) -> ReferenceProfile:
    dataset = _by_name(name)
    return profile_stream(io.BytesIO(dataset.table.to_bytes()), dataset.spec, "train.csv")


@pytest.mark.parametrize("name", IDS)
@FAST
@given(data=st.data())
def test_permuting_columns_changes_no_reference_profile(name: str, data: st.DataObject) -> None:
    # GIVEN a training file and the same file with its columns permuted
    dataset = _by_name(name)
    order = data.draw(st.permutations(dataset.table.header), label="column order")
    # WHEN each is profiled
    built = profile_stream(io.BytesIO(dataset.table.with_columns(order).to_bytes()), dataset.spec, "train.csv")
    # THEN the profiles are identical, statistic for statistic
    assert views.profile(built) == views.profile(profiled(name))


# ---------------------------------------------------------------------------------------- drift
@cache
def drift_of(name: str) -> dict[str, Any]:
    dataset = _by_name(name)
    reference, window = drift_sides(dataset)
    frame = read_window(io.BytesIO(reference.to_bytes()), dataset.spec)
    report = drift_report(
        Reference.from_frame(frame, dataset.spec),
        read_window(io.BytesIO(window.to_bytes()), dataset.spec),
        dataset.spec,
    )
    return views.drift(report)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("column_order")


@pytest.mark.parametrize("name", IDS)
@FEWER
@given(data=st.data())
def test_permuting_columns_changes_no_drift_statistic(name: str, data: st.DataObject, workdir: Path) -> None:
    # GIVEN a reference file and a window that differ for real, each with its columns permuted its own way
    dataset = _by_name(name)
    reference, window = drift_sides(dataset)
    reference = reference.with_columns(data.draw(st.permutations(reference.header), label="reference order"))
    window = window.with_columns(data.draw(st.permutations(window.header), label="window order"))
    (workdir / "reference.csv").write_bytes(reference.to_bytes())
    (workdir / "window.csv").write_bytes(window.to_bytes())
    # WHEN drift is computed from the reference CSV, as the command does
    report = drift_report(Reference.load(workdir / "reference.csv", dataset.spec), workdir / "window.csv", dataset.spec)
    # THEN every statistic, p-value, count and verdict is the one of the files in their own order
    assert views.drift(report) == drift_of(name)


@cache
def drift_against_profile(name: str) -> dict[str, Any]:
    dataset = _by_name(name)
    reference, window = drift_sides(dataset)
    report = drift_report(
        profile_stream(io.BytesIO(reference.to_bytes()), dataset.spec, "train.csv"),
        read_window(io.BytesIO(window.to_bytes()), dataset.spec),
        dataset.spec,
    )
    return views.drift(report)


@pytest.mark.parametrize("name", IDS)
@FEWER
@given(data=st.data())
def test_permuting_columns_changes_no_drift_against_a_stored_profile(name: str, data: st.DataObject) -> None:
    # GIVEN a profile of the permuted training file (as the pipeline stores it) and a permuted window
    dataset = _by_name(name)
    reference, window = drift_sides(dataset)
    permuted = reference.with_columns(data.draw(st.permutations(reference.header), label="reference order"))
    profile = profile_stream(io.BytesIO(permuted.to_bytes()), dataset.spec, "train.csv")
    saved = ReferenceProfile.from_json(profile.to_json())
    window_order = data.draw(st.permutations(window.header), label="window order")
    current = read_window(io.BytesIO(window.with_columns(window_order).to_bytes()), dataset.spec)
    # WHEN drift is computed against the profile
    report = drift_report(saved, current, dataset.spec)
    # THEN it equals the drift of the files in their own order against their own profile
    assert views.drift(report) == drift_against_profile(name)


def test_the_drift_compared_above_finds_real_drift() -> None:
    # GIVEN the reference/window pairs of the tests above (one class or age group against the rest)
    # THEN they hold real differences, so the comparison covers drifted features and their statistics
    assert drift_of("breast_cancer")["verdict"] == "drifted"
    assert len(drift_of("breast_cancer")["drifted_features"]) >= 10
    assert drift_of("wine")["verdict"] == "drifted"
    assert drift_of("diabetes")["drifted_features"]
    assert drift_of("diabetes")["verdict"] == "drifted"


@pytest.mark.parametrize("name", ["breast_cancer", "churn_with_errors"])
@FEWER
@given(data=st.data())
def test_dataframes_in_memory_are_matched_by_name_too(name: str, data: st.DataObject) -> None:
    # GIVEN the reference and window read into DataFrames, then their columns permuted
    dataset = _by_name(name)
    reference, window = drift_sides(dataset)
    ref_frame = read_window(io.BytesIO(reference.to_bytes()), dataset.spec)
    win_frame = read_window(io.BytesIO(window.to_bytes()), dataset.spec)
    ref_order = list(data.draw(st.permutations(list(ref_frame.columns)), label="reference order"))
    win_order = list(data.draw(st.permutations(list(win_frame.columns)), label="window order"))
    # WHEN validated and compared as frames
    validated_frame = validate_frame(win_frame[win_order], dataset.spec)
    report = drift_report(ref_frame[ref_order], win_frame[win_order], dataset.spec)
    # THEN the answers are those of the frames in spec order
    assert views.checks(validated_frame) == views.checks(validate_frame(win_frame, dataset.spec))
    assert views.drift(report) == views.drift(drift_report(ref_frame, win_frame, dataset.spec))


# ------------------------------------------------------------------------- monitoring windows
def _records(table: Table, spec: ModelSpec, order: list[str]) -> list[dict[str, Any]]:
    """Capture records as the inference API stores them: inputs by name, numbers as JSON numbers."""
    numeric = {f.name for f in spec.features if f.type.value in ("int", "float")}
    at = {name: table.header.index(name) for name in order}
    records = []
    for i, row in enumerate(table.rows):
        values = {name: float(row[at[name]]) if name in numeric and row[at[name]] else row[at[name]] for name in order}
        records.append({"request_id": f"r-{i}", "version": 1, "input": values, "prediction": 0})
    return records


@pytest.mark.parametrize("name", ["breast_cancer", "diabetes"])
@FEWER
@given(data=st.data())
def test_capture_records_give_the_same_window_whatever_their_key_order(name: str, data: st.DataObject) -> None:
    # GIVEN the window as capture records whose input keys come in any order (JSON objects have none)
    dataset = _by_name(name)
    reference, window = drift_sides(dataset)
    features = dataset.spec.feature_names
    order = data.draw(st.permutations(features), label="key order")
    # WHEN the monitor turns them into a window and compares it with the reference
    frame = records_frame(_records(window, dataset.spec, list(order)), dataset.spec)
    expected = records_frame(_records(window, dataset.spec, list(features)), dataset.spec)
    # THEN the window and every drift statistic are the same
    pd.testing.assert_frame_equal(frame, expected)
    ref = Reference.from_frame(read_window(io.BytesIO(reference.to_bytes()), dataset.spec), dataset.spec)
    assert views.drift(drift_report(ref, frame, dataset.spec)) == views.drift(drift_report(ref, expected, dataset.spec))


# ------------------------------------------------------------------------------------------ labels
@cache
def _label_rows() -> tuple[Table, ModelSpec]:
    dataset = breast_cancer()
    i = dataset.table.header.index("target")
    rows = tuple((f"r-{n // 2}", str(n % 2), row[i], f"note {n}") for n, row in enumerate(dataset.table.rows))
    return Table(("request_id", "index", "target", "comment"), rows), dataset.spec


@FAST
@given(data=st.data())
def test_label_files_are_read_by_name_in_any_column_or_key_order(data: st.DataObject) -> None:
    # GIVEN a label file (request id, index, the target, a comment) with its columns in any order
    table, spec = _label_rows()
    order = list(data.draw(st.permutations(table.header), label="column order"))
    expected = parse_labels(table.to_bytes(), "labels.csv", spec)
    # WHEN it is read as CSV, and as JSON Lines whose keys come in that order
    from_csv = parse_labels(table.with_columns(order).to_bytes(), "labels.csv", spec)
    lines = [json.dumps(dict(zip(order, row, strict=True))) for row in table.with_columns(order).rows]
    from_jsonl = parse_labels("\n".join(lines).encode(), "labels.jsonl", spec)
    # THEN the labels are the same, each joined to the same request and record
    assert from_csv == expected and from_jsonl == expected
    assert len(expected) == len(table.rows)


def test_a_label_file_without_the_target_names_it() -> None:
    # GIVEN a label file whose target column is missing, its other columns in another order
    table, spec = _label_rows()
    # WHEN it is read
    # THEN the error names the file, the row and the missing field
    with pytest.raises(InputError, match=r"labels.csv: row 2: field 'target' is missing"):
        parse_labels(table.with_columns(["comment", "request_id", "index"]).to_bytes(), "labels.csv", spec)
