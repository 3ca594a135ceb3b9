"""Capture windows: which capture objects a window holds, their shards, and their records as a frame."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from mlops.spec.model import NUMERIC_TYPES, ModelSpec
from mlops.storage import read_object

CAPTURE_PREFIX = "captures"


# A window never reaches further back than this (the monitor was off, or windows were too small).
MAX_WINDOW = timedelta(days=31)


# Capture keys scanned to find labelled requests (labels arrive days after their predictions).
MAX_LABEL_SCAN_KEYS = 200_000


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def parse_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def plan_window(now: datetime, last_end: datetime | None, period: timedelta) -> tuple[datetime, datetime]:
    """``[start, now)``: since the last completed run's window end, else one period back.

    Never longer than :data:`MAX_WINDOW`, never empty-backwards (a last end in the future, from
    a skewed clock, falls back to one period).
    """
    start = now - period if last_end is None or last_end >= now else last_end
    return max(start, now - MAX_WINDOW), now


def _hour(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def capture_prefixes(model: str, start: datetime, end: datetime) -> list[str]:
    """The S3 prefixes that hold the window's captures: one per hour, or one per day when long."""
    if end - start > timedelta(hours=48):
        day = _hour(start).replace(hour=0)
        prefixes = []
        while day < end:
            prefixes.append(f"{CAPTURE_PREFIX}/{model}/{day:%Y/%m/%d}/")
            day += timedelta(days=1)
        return prefixes
    hour, prefixes = _hour(start), []
    while hour < end:
        prefixes.append(f"{CAPTURE_PREFIX}/{model}/{hour:%Y/%m/%d/%H}/")
        hour += timedelta(hours=1)
    return prefixes


_KEY_HOUR = re.compile(r"^captures/[^/]+/(\d{4})/(\d{2})/(\d{2})/(\d{2})/")


def key_hour(key: str) -> datetime | None:
    """The hour a capture key was written in (from its path)."""
    match = _KEY_HOUR.match(key)
    if not match:
        return None
    year, month, day, hour = (int(g) for g in match.groups())
    return datetime(year, month, day, hour, tzinfo=UTC)


def list_captures(s3: Any, bucket: str, model: str, start: datetime, end: datetime) -> list[tuple[str, int]]:
    """(key, size) of every capture object that may hold records of ``[start, end)``, in key order.

    Objects of the window's hours, except those written before ``start`` (an object is written
    after the request it records; S3 times are whole seconds, hence the slack).
    """
    first = _hour(start)
    written_after = start - timedelta(seconds=2)
    found: list[tuple[str, int]] = []
    paginator = s3.get_paginator("list_objects_v2")
    for prefix in capture_prefixes(model, start, end):
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                hour = key_hour(item["Key"])
                modified = item.get("LastModified")
                if modified is not None and modified < written_after:
                    continue
                if hour is not None and first <= hour < end:
                    found.append((item["Key"], int(item["Size"])))
    return sorted(found)


def make_shards(objects: Sequence[tuple[str, int]], *, max_bytes: int, max_objects: int) -> list[list[str]]:
    """Consecutive groups of keys, each at most ``max_bytes`` (or one object) and ``max_objects``."""
    shards: list[list[str]] = []
    current: list[str] = []
    size = 0
    for key, nbytes in objects:
        if current and (size + nbytes > max_bytes or len(current) >= max_objects):
            shards.append(current)
            current, size = [], 0
        current.append(key)
        size += nbytes
    if current:
        shards.append(current)
    return shards


def parse_capture(data: bytes, key: str) -> list[dict[str, Any]]:
    """The records of one capture object (JSON lines); broken lines are skipped."""
    records = []
    for line in data.decode("utf-8", errors="replace").splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and isinstance(record.get("input"), dict):
            records.append(record)
    return records


def read_records(
    s3: Any, bucket: str, keys: Iterable[str], start: datetime | None = None, end: datetime | None = None
) -> list[dict[str, Any]]:
    """The capture records of ``keys`` whose ``at`` lies in ``[start, end)`` (both optional)."""
    records: list[dict[str, Any]] = []
    for key in keys:
        for record in parse_capture(read_object(s3, bucket, key), key):
            if start is not None or end is not None:
                try:
                    at = parse_time(str(record.get("at")))
                except ValueError:
                    continue
                if (start is not None and at < start) or (end is not None and at >= end):
                    continue
            records.append(record)
    return records


def records_frame(records: Sequence[Mapping[str, Any]], spec: ModelSpec) -> Any:
    """A DataFrame of the spec's features (by name) from capture records; absent fields are missing."""
    # cold start: pandas (a large import) only where records become a frame; Plan never does
    import pandas as pd

    names = spec.feature_names
    columns: dict[str, list[Any]] = {name: [] for name in names}
    for record in records:
        values = record["input"]
        for name in names:
            columns[name].append(values.get(name))
    numeric = {f.name for f in spec.features if f.type in NUMERIC_TYPES}
    # Requests were validated by the inference API, so numeric fields hold numbers (or null): typed
    # columns halve the engine's time on large windows and give the same statistics.
    return pd.DataFrame(
        {
            name: pd.to_numeric(pd.Series(column, dtype=object), errors="coerce")
            if name in numeric
            else pd.Series(column, dtype=object)
            for name, column in columns.items()
        }
    )


def champion_predictions(records: Sequence[Mapping[str, Any]], champion: int) -> list[Any]:
    """The predictions the champion made in the window (canary answers are another model's)."""
    return [r.get("prediction") for r in records if as_int(r.get("version")) == champion]


def as_int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def find_capture_keys(
    s3: Any, bucket: str, model: str, request_ids: Iterable[str], start: datetime, end: datetime
) -> tuple[list[str], list[str]]:
    """(keys, notes): the capture objects of ``request_ids`` written from ``start`` to ``end``.

    Captures are named after their request id, so only keys are listed; at most
    :data:`MAX_LABEL_SCAN_KEYS` are scanned (a note says so when the scan stops early).
    """
    wanted = {_safe_request_id(rid) for rid in request_ids}
    keys: list[str] = []
    notes: list[str] = []
    scanned = 0
    paginator = s3.get_paginator("list_objects_v2")
    # Newest first: labels are most likely for recent predictions, so a scan cut short drops old days.
    for prefix in reversed(capture_prefixes(model, start, end + timedelta(hours=1))):
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                scanned += 1
                if item["Key"].rsplit("/", 1)[-1].removesuffix(".jsonl") in wanted:
                    keys.append(item["Key"])
        if scanned > MAX_LABEL_SCAN_KEYS:
            notes.append(f"capture scan stopped after {scanned} objects (the oldest days were not searched)")
            break
    return keys, notes


def _safe_request_id(request_id: str) -> str:
    """The file name serving gives a request's capture (see ``mlops.serving.service.capture_key``)."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in request_id) or "request"
