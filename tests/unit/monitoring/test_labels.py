"""Label files: CSV or JSON Lines, checked against the spec, every problem named by file, row and field."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mlops.data.labels import file_format, label_key, label_prefixes, parse_labels
from mlops.errors import InputError
from mlops.spec.model import ModelSpec


def test_csv_labels_with_optional_index(spec: ModelSpec) -> None:
    # GIVEN a CSV with request ids, the target and an index for a batch request
    data = b"request_id,churned,index\nr-1,1,\nr-2,0,3\n"
    # WHEN parsed THEN each label keeps its request id and record index (0 when absent)
    labels = parse_labels(data, "labels.csv", spec)
    assert [(lab.request_id, lab.index, lab.label) for lab in labels] == [("r-1", 0, "1"), ("r-2", 3, "0")]


def test_jsonl_labels(spec: ModelSpec) -> None:
    # GIVEN JSON Lines WHEN parsed THEN the same labels come out; a repeated id keeps the last one
    data = b'{"request_id": "r-1", "churned": 1}\n\n{"request_id": "r-1", "churned": 0}\n'
    labels = parse_labels(data, "labels.jsonl", spec)
    assert [(lab.request_id, lab.label) for lab in labels] == [("r-1", 0)]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"id,churned\nr-1,1\n", "labels.csv: row 2: field 'request_id' is missing"),
        (b"request_id,churned\nr-1,7\n", "labels.csv: row 2: field 'churned' '7' is not one of the target classes"),
        (b"request_id,churned\n,1\n", "labels.csv: row 2: field 'request_id' is empty"),
        (b"request_id,churned,index\nr-1,1,x\n", "labels.csv: row 2: field 'index': 'x' is not a whole number"),
        (b"request_id,churned\n", "labels.csv: no label rows"),
    ],
)
def test_bad_labels_are_named_by_file_row_and_field(spec: ModelSpec, data: bytes, message: str) -> None:
    # GIVEN a bad label file WHEN parsed THEN the error names where the problem is
    with pytest.raises(InputError) as caught:
        parse_labels(data, "labels.csv", spec)
    assert message in str(caught.value)


def test_broken_json_line_is_named(spec: ModelSpec) -> None:
    with pytest.raises(InputError, match=r"labels.jsonl: line 2: not JSON"):
        parse_labels(b'{"request_id": "a", "churned": 1}\n{oops\n', "labels.jsonl", spec)


def test_layout_of_label_objects() -> None:
    # GIVEN an upload time WHEN keys and day prefixes are made THEN they follow labels/<model>/<yyyy>/<mm>/<dd>/
    at = datetime(2026, 11, 22, 23, 59, tzinfo=UTC)
    assert label_key("churn", "csv", at, name="abc") == "labels/churn/2026/11/22/abc.csv"
    assert label_prefixes("churn", datetime(2026, 11, 20, 5, tzinfo=UTC), at) == [
        "labels/churn/2026/11/20/",
        "labels/churn/2026/11/21/",
        "labels/churn/2026/11/22/",
    ]
    assert file_format("x.ndjson", b"{}") == "jsonl" and file_format("x.txt", b"a,b") == "csv"


def test_a_file_of_bad_rows_is_reported_by_its_first_20(spec: ModelSpec) -> None:
    # GIVEN 500 rows with a label that is not a class
    data = b"request_id,churned\n" + b"".join(b"r-%d,7\n" % i for i in range(500))
    # WHEN parsed THEN the message names the first 20 rows only, and says it stopped
    with pytest.raises(InputError) as caught:
        parse_labels(data, "labels.csv", spec)
    lines = str(caught.value).splitlines()
    assert len(lines) == 20 and "row 21:" in lines[-1] and lines[-1].endswith("(stopped at the first 20)")
