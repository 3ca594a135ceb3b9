"""Every bad dataset in tests/data/bad gives its expected finding, with a clear message."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from mlops.data.validation import Status, validate_file
from mlops.spec.model import ModelSpec

BAD = Path(__file__).resolve().parents[2] / "data" / "bad"
GOOD = BAD.parent / "good.csv"


@dataclass(frozen=True)
class Expected:
    file: str
    check: str
    message: str  # a fragment the message must contain
    column: str | None = None
    rows: tuple[int, ...] = ()  # rows of the first examples, in order
    readable: bool = True
    status: Status = Status.FAILED


CORPUS = [
    Expected("empty.csv", "file.empty", "the file is empty (0 bytes)", readable=False),
    Expected("whitespace_only.csv", "file.empty", "only whitespace", readable=False),
    Expected("header_only.csv", "file.no_rows", "a header but no data rows"),
    Expected("binary.csv", "file.binary", "binary data, not CSV text", readable=False),
    Expected("nul_bytes.csv", "file.binary", "NUL byte at byte", readable=False),
    Expected("latin1.csv", "file.encoding", "not UTF-8", rows=(4,)),
    Expected("utf16.csv", "file.encoding", "UTF-16 encoded", readable=False),
    Expected("bom_utf8.csv", "file.bom", "byte order mark", status=Status.WARNING),
    Expected("ragged_too_many.csv", "file.ragged_rows", "other than the header's 9", rows=(5,)),
    Expected("ragged_too_few.csv", "file.ragged_rows", "other than the header's 9", rows=(3,)),
    Expected("duplicate_columns.csv", "file.duplicate_columns", "'age' at positions 2, 10"),
    Expected("semicolon.csv", "file.delimiter", "semicolon-separated (9 columns", readable=False),
    Expected("tab.csv", "file.delimiter", "tab-separated (9 columns", readable=False),
    Expected("quoted_newline.csv", "column.min", "below the minimum 0", "age", rows=(7,)),
    Expected("unterminated_quote.csv", "file.unterminated_quote", "never ends", rows=(21,)),
    Expected("inf_strings.csv", "column.non_finite", "1 infinite value", "income", rows=(3,)),
    Expected("neg_infinity.csv", "column.non_finite", "1 infinite value", "income", rows=(6,)),
    Expected("nan_string.csv", "column.nulls", "1 missing value", "age", rows=(2,)),
    Expected("very_long_line.csv.gz", "file.long_lines", "longer than 1,048,576 bytes", rows=(21,)),
    Expected("ten_thousand_columns.csv", "schema.unexpected_columns", "10,000 column(s) not in the spec"),
    Expected("missing_column.csv", "schema.missing_columns", "missing: 'income'"),
    Expected("missing_target.csv", "target.present", "the target column 'label' is missing", "label"),
    Expected("unexpected_column.csv", "schema.unexpected_columns", "not in the spec: 'notes'"),
    Expected("case_mismatch.csv", "schema.missing_columns", "found 'Age': names are case- and space-sensitive"),
    Expected("mixed_types.csv", "column.type", "cannot be read as int", "age", rows=(5,)),
    Expected("not_whole_number.csv", "column.type", "cannot be read as int", "age", rows=(8,)),
    Expected("null_required.csv", "column.nulls", "not nullable", "plan", rows=(3,)),
    Expected("na_in_category.csv", "column.nulls", "not nullable", "plan", rows=(9,)),
    Expected("below_min.csv", "column.min", "1 value below the minimum 0", "age", rows=(10,)),
    Expected("above_max.csv", "column.max", "1 value above the maximum 120", "age", rows=(11,)),
    Expected("not_allowed.csv", "column.allowed", "not among the allowed [basic, pro, team]", "plan", rows=(12,)),
    Expected("regex_mismatch.csv", "column.regex", "not matching", "email", rows=(13,)),
    Expected("duplicate_ids.csv", "column.unique", "already in an earlier row", "id", rows=(14,)),
    Expected("duplicate_rows.csv", "dataset.duplicate_rows", "1 row(s) repeat an earlier row", rows=(21,)),
    Expected("too_few_rows.csv", "dataset.row_count", "3 rows, fewer than the minimum 5"),
    Expected("too_many_rows.csv", "dataset.row_count", "1,001 rows, more than the maximum 1,000"),
    Expected("bad_bool.csv", "column.type", "cannot be read as bool", "active", rows=(15,)),
    Expected("bad_datetime.csv", "column.type", "cannot be read as datetime", "signup", rows=(16,)),
    Expected("target_invalid.csv", "target.values", "not among the classes [0, 1]", "label", rows=(17,)),
    Expected("target_null.csv", "target.nulls", "without a label", "label", rows=(18,)),
    Expected("class_imbalance.csv", "target.class_balance", "1 below the minimum share 10.0%", "label"),
    # The labels' disparate impact is reported, never refused (the gate judges predictions).
    Expected(
        "disparate_impact.csv",
        "fairness.disparate_impact",
        "label disparate impact 0.00 below 0.50",
        "region",
        status=Status.WARNING,
    ),
    Expected("gzip_truncated.csv.gz", "file.unreadable", "truncated file", readable=False),
    Expected("gzip_bad_value.csv.gz", "column.max", "above the maximum 120", "age", rows=(19,)),
    Expected("parquet.csv", "file.format", "Parquet is not supported", readable=False),
    Expected("zipped.csv", "file.format", "zip archive", readable=False),
    Expected("blank_header.csv", "file.header", "the header) is empty", readable=False),
    Expected("cr_line_endings.csv", "file.line_endings", "CR only", readable=False),
    Expected("blank_lines.csv", "column.min", "below the minimum 0", "age", rows=(8,)),
]


def test_corpus_has_forty_files_each_with_an_expectation() -> None:
    # GIVEN the corpus directory and the expectation table
    files = {p.name for p in BAD.iterdir()}
    # WHEN / THEN every file is covered exactly once and there are at least 40
    assert len(files) >= 40
    assert files == {e.file for e in CORPUS}
    assert len(CORPUS) == len(files)


@pytest.mark.parametrize("expected", CORPUS, ids=[e.file for e in CORPUS])
def test_bad_dataset_gives_expected_finding(expected: Expected, corpus_spec: ModelSpec) -> None:
    # GIVEN a dataset broken in one way
    path = BAD / expected.file
    # WHEN it is validated
    report = validate_file(path, corpus_spec)
    # THEN the expected finding is there, with its message and example rows
    found = [c for c in report.find(expected.check) if expected.column is None or c.column == expected.column]
    assert found, f"{expected.check} not reported; got {[(c.check, c.message) for c in report.failures]}"
    result = found[0]
    assert result.status is expected.status
    assert expected.message in result.message
    assert tuple(e.row for e in result.examples[: len(expected.rows)]) == expected.rows
    assert report.readable is expected.readable
    if expected.status is Status.FAILED:
        assert not report.valid
        assert result.failing_count >= 1
    # AND the report is valid JSON that renders without error
    assert report.from_json(report.to_json()) == report
    assert expected.check in report.render_text()


def test_bom_file_reads_header_correctly(corpus_spec: ModelSpec) -> None:
    # GIVEN a file that starts with a UTF-8 byte order mark
    # WHEN validated
    report = validate_file(BAD / "bom_utf8.csv", corpus_spec)
    # THEN the first column is found under its real name and the data is valid
    assert report.columns[0] == "id"
    assert report.valid
    assert report.source.encoding == "utf-8-sig"


def test_unreadable_inputs_run_no_data_checks(corpus_spec: ModelSpec) -> None:
    # GIVEN a file that cannot be read at all
    # WHEN validated
    report = validate_file(BAD / "binary.csv", corpus_spec)
    # THEN the only finding is the reading problem (no noise from checks that could not run)
    assert [c.check for c in report.checks] == ["file.binary"]
    assert report.rows == 0


def test_good_file_passes_every_check(corpus_spec: ModelSpec) -> None:
    # GIVEN the corpus's well-formed dataset
    # WHEN validated
    report = validate_file(GOOD, corpus_spec)
    # THEN it is valid with no failure or warning, and every kind of check ran
    assert report.valid, report.render_text()
    assert report.summary["failed"] == 0 and report.summary["warning"] == 0
    ran = {c.check for c in report.checks}
    assert {
        "column.type",
        "column.nulls",
        "column.min",
        "column.max",
        "column.allowed",
        "column.regex",
        "column.unique",
        "dataset.row_count",
        "dataset.duplicate_rows",
        "target.values",
        "target.class_balance",
        "fairness.disparate_impact",
        "schema.missing_columns",
    } <= ran
    assert report.rows == 20
