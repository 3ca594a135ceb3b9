"""Ground truth for captured predictions: label files, their S3 layout, and the join by request id.

A label file is CSV or JSON Lines with a ``request_id`` column (the id the inference API answered
with), the spec's target column and, for batch requests, an optional ``index`` (the record's
position in the request; 0 when absent). Files live under
``labels/<model>/<yyyy>/<mm>/<dd>/<uuid>.<csv|jsonl>`` (the upload date, UTC); the monitor reads
the files of the last ``lookback_days`` and joins them to the captured predictions.

Examples
--------
>>> labels = parse_labels(b"request_id,churned\\nr-1,1\\n", "labels.csv", spec)  # doctest: +SKIP
>>> labels[0].request_id, labels[0].label  # doctest: +SKIP
('r-1', 1)
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from mlops.errors import InputError
from mlops.spec.model import ModelSpec
from mlops.storage import read_object
from mlops.values import canonical_label

LABEL_PREFIX = "labels"
DEFAULT_LOOKBACK_DAYS = 7
MAX_LABEL_ERRORS = 20


@dataclass(frozen=True)
class Label:
    """The true outcome of one captured prediction."""

    request_id: str
    index: int
    label: Any

    @property
    def key(self) -> tuple[str, int]:
        return (self.request_id, self.index)


def label_key(model: str, extension: str, at: datetime | None = None, name: str | None = None) -> str:
    """``labels/<model>/<yyyy>/<mm>/<dd>/<uuid>.<ext>`` for a file uploaded at ``at`` (UTC)."""
    at = at or datetime.now(UTC)
    return f"{LABEL_PREFIX}/{model}/{at:%Y/%m/%d}/{name or uuid.uuid4().hex}.{extension}"


def _check_label(spec: ModelSpec, value: Any) -> str | None:
    """A problem with one label value, or None."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return "is empty"
    if spec.task == "classification":
        classes = {canonical_label(c) for c in spec.target.classes or []}
        if canonical_label(value) not in classes:
            return f"{value!r} is not one of the target classes {sorted(classes)}"
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return f"{value!r} is not a number"
    if number != number:  # NaN
        return "is not a number"
    return None


def _rows(data: bytes, source: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, row) of a CSV or JSON Lines file, by its extension (or its first byte)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{source}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    is_jsonl = source.lower().endswith((".jsonl", ".ndjson", ".json")) or text.lstrip().startswith("{")
    if is_jsonl:
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as exc:
                raise InputError(f"{source}: line {number}: not JSON ({exc})") from None
            if not isinstance(row, dict):
                raise InputError(f"{source}: line {number}: a JSON object is needed, got {type(row).__name__}")
            yield number, row
        return
    reader = csv.DictReader(io.StringIO(text))
    for number, row in enumerate(reader, start=2):
        yield number, dict(row)


def file_format(source: str, data: bytes) -> str:
    """``jsonl`` or ``csv`` (the stored file's extension)."""
    lower = source.lower()
    if lower.endswith((".jsonl", ".ndjson", ".json")) or data.lstrip()[:1] == b"{":
        return "jsonl"
    return "csv"


def parse_labels(data: bytes, source: str, spec: ModelSpec) -> list[Label]:
    """Read and check a label file.

    Parameters
    ----------
    data
        The file's bytes (CSV with a header row, or JSON Lines).
    source
        Named in messages (the file's path or S3 key).
    spec
        The model's spec: the target column and its classes.

    Returns
    -------
    list of Label
        One per row; a later row for the same (request id, index) replaces an earlier one.

    Raises
    ------
    InputError
        Naming the file, row (line number) and field of every problem (the first 20).
    """
    target = spec.target.name
    errors: list[str] = []
    labels: dict[tuple[str, int], Label] = {}
    rows = 0
    for number, row in _rows(data, source):
        if len(errors) >= MAX_LABEL_ERRORS:
            break  # enough to act on; the rest of the file is not read
        rows += 1
        where = f"{source}: row {number}"
        missing = [name for name in ("request_id", target) if name not in row]
        if missing:
            errors.append(f"{where}: field {missing[0]!r} is missing (a label needs request_id and {target!r})")
            if rows == 1:
                break  # the header itself lacks it: every row would say so
            continue
        request_id = str(row["request_id"] or "").strip()
        if not request_id:
            errors.append(f"{where}: field 'request_id' is empty")
            continue
        index_value = row.get("index")
        index = 0
        if index_value not in (None, ""):
            try:
                index = int(str(index_value))
            except ValueError:
                errors.append(f"{where}: field 'index': {index_value!r} is not a whole number")
                continue
            if index < 0:
                errors.append(f"{where}: field 'index': {index} is negative")
                continue
        problem = _check_label(spec, row[target])
        if problem:
            errors.append(f"{where}: field {target!r} {problem}")
            continue
        labels[(request_id, index)] = Label(request_id, index, row[target])
    if errors:
        more = " (stopped at the first 20)" if len(errors) >= MAX_LABEL_ERRORS else ""
        raise InputError("\n".join(errors) + more)
    if not labels:
        raise InputError(f"{source}: no label rows (a header with request_id and {target!r}, then one row per label)")
    return list(labels.values())


def label_prefixes(model: str, start: datetime, end: datetime) -> list[str]:
    """The day prefixes under ``labels/<model>/`` from ``start`` to ``end`` (inclusive days)."""
    day = datetime(start.year, start.month, start.day, tzinfo=UTC)
    prefixes = []
    while day <= end:
        prefixes.append(f"{LABEL_PREFIX}/{model}/{day:%Y/%m/%d}/")
        day += timedelta(days=1)
    return prefixes


def list_keys(s3: Any, bucket: str, prefixes: Iterable[str]) -> list[tuple[str, int]]:
    """(key, size) of every object under the prefixes."""
    found: list[tuple[str, int]] = []
    paginator = s3.get_paginator("list_objects_v2")
    for prefix in prefixes:
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            found.extend((item["Key"], int(item["Size"])) for item in page.get("Contents", []))
    return found


def load_labels(
    s3: Any, bucket: str, model: str, spec: ModelSpec, *, now: datetime, lookback_days: float = DEFAULT_LOOKBACK_DAYS
) -> tuple[dict[tuple[str, int], Any], list[str]]:
    """Every label uploaded in the lookback: ``{(request_id, index): label}`` and notes.

    A stored file that no longer parses (written by hand, an older spec) is skipped with a note
    rather than failing the whole check.
    """
    keys = list_keys(s3, bucket, label_prefixes(model, now - timedelta(days=lookback_days), now))
    joined: dict[tuple[str, int], Any] = {}
    notes: list[str] = []
    for key, _ in sorted(keys):
        try:
            for label in parse_labels(read_object(s3, bucket, key), key, spec):
                joined[label.key] = label.label
        except InputError as exc:
            notes.append(f"labels file skipped: {str(exc).splitlines()[0]}")
    return joined, notes


def upload_labels(
    s3: Any, bucket: str, model: str, data: bytes, source: str, spec: ModelSpec, *, uploader: str
) -> tuple[str, list[Label]]:
    """Check a label file and upload it to ``labels/<model>/<date>/<uuid>.<ext>``; (key, labels)."""
    labels = parse_labels(data, source, spec)
    key = label_key(model, file_format(source, data))
    content_type = "application/x-ndjson" if key.endswith(".jsonl") else "text/csv"
    s3.put_object(Bucket=bucket, Key=key, Body=data, ContentType=content_type, Metadata={"uploaded-by": uploader})
    return key, labels
