"""A retrain dataset built from labelled captures: the captured requests joined by request id to the
uploaded labels, that the champion's dataset does not hold yet, appended to its rows, validated,
written under ``datasets/<model>/`` and recorded with its lineage (:data:`CAPTURES_SOURCE`).
:mod:`mlops.monitoring.retraining` decides when this is what a retrain trains on.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from mlops.data.catalog import DatasetCatalog
from mlops.data.datasets import PLATFORM_SOURCE, DatasetVersion, scan_csv
from mlops.data.labels import label_prefixes, parse_labels
from mlops.data.trigger import parse_key
from mlops.data.uploads import record_platform_upload
from mlops.errors import InputError
from mlops.monitoring.captures import find_capture_keys, read_records
from mlops.storage import read_object

if TYPE_CHECKING:
    from mlops.data.datasets import DatasetVersion
    from mlops.monitoring.services import MonitorServices
    from mlops.registry.versions import Registry
    from mlops.spec.model import ModelSpec
from mlops.monitoring.champion import RETRAIN_ACTOR, ChampionData, _iso, _moment, list_datasets

CAPTURES_SOURCE = "captures+labels"


# S3 times are whole seconds: a label file modified this close to the base's listing may or may
# not have been listed, so only its key (in the base's lineage) tells.
_LISTING_SLACK = timedelta(seconds=2)


@dataclass(frozen=True)
class CaptureDataset:
    """A dataset built from labelled captures (after the champion's rows): the CSV and its lineage."""

    body: bytes
    sha256: str
    rows: int
    labelled_rows: int
    base_rows: int
    lineage: dict[str, Any]


def capture_dataset_key(model: str, now: datetime, sha256: str) -> str:
    """``datasets/<model>/captures-<timestamp>-<sha256 prefix>.csv``: a normal dataset upload key."""
    return f"datasets/{model}/captures-{now.astimezone(UTC):%Y%m%dT%H%M%SZ}-{sha256[:12]}.csv"


def _cell(value: Any) -> str:
    """A captured JSON value as CSV text the validation reader parses back to the same value."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ""
    if isinstance(value, int):
        return str(value)
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return str(value)


def capture_row(values: Mapping[str, Any], spec: ModelSpec, label: Any) -> list[str]:
    """One captured record (its ``input``) and its label as the CSV cells of a dataset row, in spec order.

    Each cell reads back as the value the request held, as validation, profiling and training
    read a dataset (a bool as ``true``/``false``, a category that looks like a number as its text).
    """
    return [_cell(values.get(name)) for name in spec.feature_names] + [_cell(label)]


def _label_files(s3: Any, bucket: str, model: str, start: datetime, end: datetime) -> list[tuple[str, datetime | None]]:
    """(key, last modified) of the label files uploaded from ``start``'s day to ``end``."""

    found = []
    paginator = s3.get_paginator("list_objects_v2")
    for prefix in label_prefixes(model, start, end):
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                modified = item.get("LastModified")
                found.append((str(item["Key"]), modified if isinstance(modified, datetime) else None))
    return sorted(found)


def _consumed(champion: ChampionData) -> tuple[set[str], datetime | None]:
    """The label files the champion's dataset holds already: (keys, every file modified before).

    A captures+labels dataset took every new label file of its lookback, after leaving out those
    its own base held: so every file modified before its listing is in the champion's data (or
    outside any later lookback), and its ``label_objects`` name the ones at the edge.
    """
    lineage = (champion.dataset.extra.get("lineage") if champion.dataset is not None else None) or {}
    if lineage.get("source") != CAPTURES_SOURCE:
        return set(), None
    listed = _moment(lineage.get("labels_listed_at"))
    return set(lineage.get("label_objects") or []), (listed - _LISTING_SLACK) if listed else None


def _base_rows(
    services: MonitorServices, champion: ChampionData, columns: list[str]
) -> tuple[list[list[str]], str | None]:
    """The champion's dataset rows, verbatim, in ``columns`` (by header name); or a note why not."""
    dataset = champion.dataset
    if dataset is None or not dataset.bucket or not dataset.version_id:
        return [], "the champion has no recorded training dataset to append to"
    where = f"s3://{dataset.bucket}/{dataset.key}?versionId={dataset.version_id}"
    try:
        body = services.s3.get_object(Bucket=dataset.bucket, Key=dataset.key, VersionId=dataset.version_id)["Body"]
        try:
            data = bytes(body.read())
        finally:
            body.close()
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        text = data.decode("utf-8-sig")
    except Exception as exc:  # the base is a convenience: its absence is noted, not fatal
        return [], f"{where} could not be read ({type(exc).__name__}: {str(exc)[:200]})"
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None) or []
    positions = {name.strip(): index for index, name in reversed(list(enumerate(header)))}
    missing = [c for c in columns if c not in positions]
    if missing:
        return [], f"{where} lacks the spec's column(s) {', '.join(missing)}"
    wanted = [positions[c] for c in columns]
    # Rows of another width are skipped, as the validation reader skips rows it cannot parse.
    rows = [[row[i] for i in wanted] for row in reader if len(row) == len(header)]
    return rows, None


def _labelled_rows(
    services: MonitorServices,
    model: str,
    spec: ModelSpec,
    labels: Mapping[tuple[str, int], Any],
    start: datetime,
    end: datetime,
) -> tuple[list[list[str]], int, list[str]]:
    """(rows, capture objects read, notes): each labelled captured record as spec columns + target."""

    keys, notes = find_capture_keys(
        services.s3, services.bucket, model, {rid for rid, _ in labels}, start - timedelta(days=1), end
    )
    joined: dict[tuple[str, int], tuple[str, list[str]]] = {}
    for record in read_records(services.s3, services.bucket, keys):
        try:
            key = (str(record.get("request_id")), int(record.get("index") or 0))
        except (TypeError, ValueError):
            continue
        if key not in labels or key in joined:
            continue
        joined[key] = (str(record.get("at") or ""), capture_row(record["input"], spec, labels[key]))
    ordered = sorted(joined.items(), key=lambda item: (item[1][0], item[0]))
    return [row for _, (_, row) in ordered], len(keys), notes


def build_capture_dataset(
    services: MonitorServices, model: str, spec: ModelSpec, champion: ChampionData, now: datetime
) -> tuple[CaptureDataset | None, str]:
    """A new dataset from the labelled captures the champion has not seen, or (None, why not).

    Labels are the files uploaded in the last ``label_lookback_days`` (as performance monitoring
    reads them) less those the champion's dataset holds already; each is joined by request id
    (and index) to its captured request, whichever version answered it. The CSV has the spec's
    features and target (in spec order): the champion's dataset rows first, verbatim, then the
    labelled captures in capture order. Enough means at least ``monitoring.min_rows`` labelled
    rows and a whole dataset within ``row_count``.
    """

    lookback = services.settings.label_lookback_days
    start = now - timedelta(days=lookback)
    window = f"the last {lookback:g} day(s)"
    consumed_keys, consumed_before = _consumed(champion)
    files = _label_files(services.s3, services.bucket, model, start, now)
    new_files = [
        key
        for key, modified in files
        if key not in consumed_keys and not (consumed_before and modified is not None and modified < consumed_before)
    ]
    if not files:
        return None, f"no labels uploaded in {window}"
    if not new_files:
        return None, f"the {len(files)} label file(s) of {window} are in the champion's dataset already"
    labels: dict[tuple[str, int], Any] = {}
    used: list[str] = []
    notes: list[str] = []
    for key in new_files:
        try:
            parsed = parse_labels(read_object(services.s3, services.bucket, key), key, spec)
        except InputError as exc:
            notes.append(f"labels file skipped: {str(exc).splitlines()[0]}")
            continue
        used.append(key)
        for label in parsed:
            labels[label.key] = label.label
    if not labels:
        return None, f"no readable labels in the {len(new_files)} new label file(s) of {window}"
    rows, capture_objects, scan_notes = _labelled_rows(services, model, spec, labels, start, now)
    notes.extend(scan_notes)
    needed = spec.monitoring.min_rows
    if len(rows) < needed:
        return None, (
            f"{len(rows)} labelled capture(s) in {window} ({len(labels)} new label(s)), "
            f"{needed} needed (monitoring.min_rows)"
        )
    columns = [*spec.feature_names, spec.target.name]
    base, base_note = _base_rows(services, champion, columns)
    total = len(base) + len(rows)
    if total < spec.row_count.min:
        return None, f"{total} row(s) with the labelled captures, {spec.row_count.min} needed (row_count.min)"
    if spec.row_count.max is not None and total > spec.row_count.max:
        return None, f"{total} row(s) with the labelled captures, at most {spec.row_count.max} allowed (row_count.max)"
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(base)
    writer.writerows(rows)
    body = out.getvalue().encode("utf-8")
    problem = _invalid(body, spec, len(base), len(rows))
    if problem:
        return None, problem
    sha256 = hashlib.sha256(body).hexdigest()
    base_dataset = champion.dataset
    lineage: dict[str, Any] = {
        "source": CAPTURES_SOURCE,
        "champion_version": champion.version,
        "base_dataset": (
            {
                "key": base_dataset.key,
                "version_id": base_dataset.version_id,
                "sha256": base_dataset.sha256,
                "rows": len(base),
            }
            if base_dataset is not None and base_note is None
            else None
        ),
        "base_rows": len(base),
        "labelled_rows": len(rows),
        "labels_window": {"start": _iso(start), "end": _iso(now)},
        "captures_window": {"start": _iso(start - timedelta(days=1)), "end": _iso(now)},
        "labels_listed_at": _iso(now),
        "label_objects": used,
        "capture_objects": capture_objects,
        "notes": ([base_note] if base_note else []) + notes[:10],
    }
    return CaptureDataset(body, sha256, total, len(rows), len(base), lineage), ""


def _invalid(body: bytes, spec: ModelSpec, base_rows: int, labelled_rows: int) -> str | None:
    """Why the built dataset would fail the pipeline's validation (the same checks), or None.

    A dataset that cannot pass Validate cannot change the model: it is not written, and the
    reason names the failed checks (a ``unique`` feature repeated between the champion's rows and
    the captures, labels of a class the spec does not have...).
    """
    # cold start: every monitor function loads this module; only a retrain on captures validates (pandas)
    from mlops.data.validation.api import validate_stream

    source = f"the champion's {base_rows} row(s) + {labelled_rows} labelled capture(s)"
    report = validate_stream(io.BytesIO(body), spec, source, max_examples=1)
    if report.valid:
        return None
    failed = [c for c in report.checks if c.failed]
    shown = "; ".join(f"{c.check}{f' [{c.column}]' if c.column else ''}: {c.message}" for c in failed[:3])
    more = f" (and {len(failed) - 3} more)" if len(failed) > 3 else ""
    return f"the dataset they make ({source}) would fail validation: {shown}{more}"


def _recorded_with(registry: Registry, model: str, sha256: str) -> DatasetVersion | None:
    return next((d for d in list_datasets(registry, model) if d.sha256 == sha256), None)


def record_capture_dataset(
    services: MonitorServices, model: str, key: str, version_id: str, body: bytes, lineage: Mapping[str, Any]
) -> DatasetVersion:
    """Record the written dataset version with its lineage (idempotent), as the pipeline would."""

    head = services.s3.head_object(Bucket=services.bucket, Key=key, VersionId=version_id)
    modified = head.get("LastModified")
    scan = scan_csv(io.BytesIO(body), source_name=f"s3://{services.bucket}/{key}")
    dataset = DatasetVersion(
        bucket=services.bucket,
        key=key,
        version_id=version_id,
        sha256=scan.sha256,
        size=scan.size,
        rows=scan.rows,
        columns=scan.columns,
        column_types=scan.column_types,
        schema_fingerprint=scan.schema_fingerprint,
        uploaded_by=RETRAIN_ACTOR,
        uploaded_at=modified.isoformat() if hasattr(modified, "isoformat") else None,
        model=model,
        extra={"lineage": dict(lineage)},
        uploader_source=PLATFORM_SOURCE,  # the platform wrote it (write_capture_dataset)
    )
    return DatasetCatalog(services.registry).record(model, dataset, actor=RETRAIN_ACTOR)


def write_capture_dataset(services: MonitorServices, key: str, body: bytes, sha256: str) -> str:
    """Write a built dataset to ``key``; returns its S3 version id.

    It is a dataset upload like any other: the bucket's event starts the training pipeline for it
    too (under the name the monitor starts it with, so only one of the two runs). The platform is
    recorded as its verified uploader first, through the same grant the upload API writes.
    """

    record_platform_upload(
        services.registry,
        parse_key(key)[0],
        services.bucket,
        key,
        sha256=sha256,
        size=len(body),
        actor=RETRAIN_ACTOR,
    )
    response = services.s3.put_object(
        Bucket=services.bucket,
        Key=key,
        Body=body,
        ContentType="text/csv",
        Metadata={"uploaded-by": RETRAIN_ACTOR, "source": CAPTURES_SOURCE, "sha256": sha256},
    )
    version_id = response.get("VersionId")
    if not version_id or version_id == "null":
        raise InputError(f"bucket {services.bucket!r} is not versioned: {key} has no version id to train on")
    return str(version_id)


def written_dataset(services: MonitorServices, key: str, sha256: str) -> tuple[str, bytes] | None:
    """(version id, bytes) of ``key`` if it holds the built content ``sha256`` (a retried run's write)."""
    try:
        head = services.s3.head_object(Bucket=services.bucket, Key=key)
    except Exception:
        return None
    version_id = head.get("VersionId")
    if (head.get("Metadata") or {}).get("sha256") != sha256 or not version_id or version_id == "null":
        return None
    body = services.s3.get_object(Bucket=services.bucket, Key=key, VersionId=version_id)["Body"]
    try:
        return str(version_id), bytes(body.read())
    finally:
        body.close()


def lineage_summary(lineage: Mapping[str, Any]) -> dict[str, Any]:
    """The lineage without its list of label files (for audit events and the monitor item)."""
    return {k: v for k, v in lineage.items() if k != "label_objects"} | {
        "label_objects": len(lineage.get("label_objects") or [])
    }
