"""``mlops predict M --data @FILE``: batches within the API's limits, input order, rows and lines named.

The API is replaced here by a fake with the same limits and answers (``send``); the whole command
against the local cloud's API is tests/e2e/test_predict_file.py.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlops.errors import InputError
from mlops.spec.model import ModelSpec, load_spec
from mlops_cli.predict_batches import (
    _ENVELOPE,
    Answer,
    _in_order,
    _locate,
    _TooLargeError,
    plan_batches,
    predict_batch,
)
from mlops_cli.predict_csv import csv_rows
from mlops_cli.predict_input import Row
from tests.conformance.datasets import BIKESHARE, PENGUINS


def body_bytes(sizes: list[int]) -> int:
    return _ENVELOPE + sum(sizes) + max(len(sizes) - 1, 0)


@given(
    sizes=st.lists(st.integers(1, 300), max_size=200),
    max_records=st.integers(1, 50),
    max_bytes=st.integers(_ENVELOPE + 300, 5000),
)
def test_batches_cover_every_record_once_in_order_within_the_limits(
    sizes: list[int], max_records: int, max_bytes: int
) -> None:
    batches = plan_batches(sizes, max_records, max_bytes)
    # every record exactly once, in input order
    assert [i for batch in batches for i in batch] == list(range(len(sizes)))
    for k, batch in enumerate(batches):
        chosen = [sizes[i] for i in batch]
        # within both limits: the body sent is exactly this many bytes
        assert len(batch) <= max_records and body_bytes(chosen) <= max_bytes
        # and greedy: the next record would have broken a limit
        if k + 1 < len(batches):
            grown = [*chosen, sizes[batch.stop]]
            assert len(grown) > max_records or body_bytes(grown) > max_bytes


def test_the_body_size_is_the_size_sent() -> None:
    records = [{"a": i, "b": "x" * i} for i in range(30)]
    parts = [json.dumps(r, separators=(",", ":")).encode() for r in records]
    sent: list[bytes] = []

    def send(body: bytes) -> dict[str, Any]:
        sent.append(body)
        return {"predictions": [0] * len(json.loads(body)["records"]), "request_id": "r", "version": 1}

    rows = [Row(i + 1, i + 2, r) for i, r in enumerate(records)]
    for batch in plan_batches([len(p) for p in parts], 1000, 400):
        predict_batch(send, rows[batch.start : batch.stop], parts[batch.start : batch.stop])
    assert all(len(body) <= 400 for body in sent) and len(sent) > 1
    assert [r for body in sent for r in json.loads(body)["records"]] == records


def test_a_record_over_the_byte_limit_is_named() -> None:
    with pytest.raises(ValueError, match="record of 500 bytes is over the 300-byte request limit") as caught:
        plan_batches([10, 500, 10], max_records=10, max_bytes=300)
    assert caught.value.args[1] == 1


class FakeApi:
    """The inference API's answers: one prediction per record (the record's ``x``), a request id per
    request; 413 over ``limit`` records; 400 naming ``record N`` for a record whose ``x`` is negative."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.requests: list[int] = []
        self.lock = threading.Lock()

    def __call__(self, body: bytes) -> dict[str, Any]:
        records = json.loads(body)["records"]
        with self.lock:
            self.requests.append(len(records))
            request_id = f"req-{len(self.requests)}"
        time.sleep(random.random() / 200)
        if len(records) > self.limit:
            raise _TooLargeError(f"batch of {len(records)} records; at most {self.limit} per request (HTTP 413)")
        bad = [i for i, r in enumerate(records) if r["x"] < 0]
        if bad:
            raise InputError(f"record {bad[0]}, field 'x': Input should be greater than or equal to 0 (HTTP 400)")
        return {"predictions": [r["x"] for r in records], "version": 3, "request_id": request_id}


def run_file(api: FakeApi, xs: list[int], batch_size: int, concurrency: int = 1) -> Iterator[Answer]:
    """The answers, lazily (a caller that stops reading stops the sending)."""
    rows = [Row(i + 1, i + 2, {"x": x}) for i, x in enumerate(xs)]
    parts = [json.dumps(r.record).encode() for r in rows]
    batches = plan_batches([len(p) for p in parts], batch_size, 10**6)

    def run(batch: range) -> Answer:
        return predict_batch(api, rows[batch.start : batch.stop], parts[batch.start : batch.stop])

    return _in_order(run, batches, concurrency)


@pytest.mark.parametrize("concurrency", [1, 4])
def test_predictions_come_back_in_input_order_with_their_request_ids(concurrency: int) -> None:
    api = FakeApi(limit=1000)
    xs = list(range(2500))
    answers = list(run_file(api, xs, batch_size=1000, concurrency=concurrency))
    predictions = [p for a in answers for p in a.predictions()]
    assert [p["prediction"] for p in predictions] == xs
    assert [p["row"] for p in predictions] == list(range(1, 2501))
    assert [p["line"] for p in predictions] == list(range(2, 2502))
    assert sorted(api.requests) == [500, 1000, 1000]
    ids = {p["request_id"] for p in predictions}
    assert len(ids) == 3 and all(p["version"] == 3 for p in predictions)


def test_a_413_splits_the_batch_and_keeps_the_order() -> None:
    # GIVEN a deployment whose limit (300) is below the batch size the CLI assumed (1000)
    api = FakeApi(limit=300)
    answers = list(run_file(api, list(range(1000)), batch_size=1000))
    # THEN the batch is halved until the API takes it, and every prediction is in order
    assert [p["prediction"] for a in answers for p in a.predictions()] == list(range(1000))
    [answer] = answers
    assert answer.error is None and [len(r["predictions"]) for r in answer.results] == [250] * 4
    assert api.requests == [1000, 500, 250, 250, 500, 250, 250]


def test_a_refused_batch_names_its_rows_and_lines_and_later_batches_are_not_sent() -> None:
    api = FakeApi(limit=1000)
    xs = list(range(2500))
    xs[1203] = -1  # row 1204, on line 1205 of the file
    rows_seen: list[int] = []
    failed = None
    for answer in run_file(api, xs, batch_size=500, concurrency=1):
        rows_seen += [p["row"] for p in answer.predictions()]
        if answer.error is not None:
            failed = answer
            break
    assert failed is not None and rows_seen == list(range(1, 1001))
    assert len(api.requests) == 3  # the fourth and fifth batches were never sent
    message = _locate(str(failed.error), failed.rows, 0)
    assert message.startswith("row 1204 (line 1205), field 'x': Input should be greater than or equal to 0")


# ------------------------------------------------------------------------------------------ CSV
@pytest.fixture(scope="module")
def penguins_spec() -> ModelSpec:
    return load_spec(PENGUINS.spec_path)


def test_csv_rows_are_typed_by_the_spec_and_keep_their_lines(tmp_path: Path, penguins_spec: ModelSpec) -> None:
    # GIVEN penguins as shipped (NA for missing values), with its year as an int feature
    path = tmp_path / "penguins.csv"
    path.write_bytes(PENGUINS.raw())
    rows = csv_rows(path, penguins_spec)
    frame = PENGUINS.frame()
    assert len(rows) == len(frame) and rows[0].line == 2 and rows[-1].line == len(frame) + 1
    # THEN each record holds the features only, as JSON types: NA as null, numbers as numbers
    first, missing = rows[0].record, rows[3].record
    assert set(first) == set(penguins_spec.feature_names)
    assert first["year"] == 2007 and isinstance(first["year"], int) and first["bill_length_mm"] == 39.1
    assert missing["bill_length_mm"] is None and missing["sex"] is None


def test_csv_lines_count_quoted_line_breaks(tmp_path: Path) -> None:
    spec = load_spec(BIKESHARE.spec_path)
    header, *lines = BIKESHARE.raw().decode().splitlines()
    # the weather of row 2 is written over two lines (a quoted line break): row 3 starts on line 5
    lines[1] = lines[1].replace('"clear"', '"clear\nsky"')
    path = tmp_path / "bikes.csv"
    path.write_text("\n".join([header, *lines[:3]]) + "\n")
    rows = csv_rows(path, spec)
    assert [(r.row, r.line) for r in rows] == [(1, 2), (2, 3), (3, 5)]
    assert rows[1].record["weathersit"] == "clear\nsky" and rows[0].record["hr"] == 0


def test_csv_without_a_feature_column_is_refused_naming_it(tmp_path: Path, penguins_spec: ModelSpec) -> None:
    path = tmp_path / "short.csv"
    path.write_text("island,bill_length_mm\nDream,40.1\n")
    with pytest.raises(InputError, match=r"short.csv: no column for feature\(s\) 'year' of model 'palmer-penguins'"):
        csv_rows(path, penguins_spec)


def test_csv_ragged_row_names_its_line(tmp_path: Path, penguins_spec: ModelSpec) -> None:
    header, first, second = PENGUINS.raw().decode().splitlines()[:3]
    path = tmp_path / "ragged.csv"
    path.write_text("\n".join([header, first, second + ",extra"]) + "\n")
    with pytest.raises(InputError, match=r"ragged\.csv, line 3: 9 fields where the header has 8"):
        csv_rows(path, penguins_spec)
