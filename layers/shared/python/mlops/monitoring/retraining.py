"""What a drift-triggered retrain trains on, so that it can change something.

A monitor run that asks for retraining (``monitoring.retrain_on_drift``) starts the training
pipeline only on data the champion has not learnt from (docs/monitoring.md, "When a retrain
starts"):

1. **a newer dataset version**: the newest recorded version of the model's dataset uploaded after
   the champion's own dataset (or, for a champion without recorded lineage, after the champion was
   registered), with other content (sha256), that no registered version was trained on and that
   no training run is working on now (its upload's own run, or the monitor's last retrain);
2. else **a dataset built from labelled captures**: the requests the inference API captured,
   joined by request id to the labels uploaded in the label lookback, that the champion's dataset
   does not hold yet, appended to the champion's dataset rows (so the model does not forget what
   it knew; the hash split keeps every old row on its side, so this is leakage-safe). It is
   written under ``datasets/<model>/`` as a normal dataset version (validated by the pipeline)
   and recorded with its lineage (``extra.lineage``, :data:`CAPTURES_SOURCE`).

Otherwise the retrain is skipped with a reason that names what was looked at.

Examples
--------
>>> choice = choose_retrain_data(services, "churn", champion_version=3, state={}, now=now)  # doctest: +SKIP
>>> choice.kind, choice.reason  # doctest: +SKIP
(None, "no dataset newer than the champion's (v3: datasets/churn/a.csv ..., uploaded ...) and no ...")
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from mlops.errors import InputError, NotFoundError

if TYPE_CHECKING:
    from mlops.data.datasets import DatasetVersion
    from mlops.monitoring.services import MonitorServices
    from mlops.registry.versions import Registry
    from mlops.spec.model import ModelSpec

CAPTURES_SOURCE = "captures+labels"
NEWER_SOURCE = "newer_dataset"
RETRAIN_ACTOR = "pipeline:monitor"
# S3 times are whole seconds: a label file modified this close to the base's listing may or may
# not have been listed, so only its key (in the base's lineage) tells.
_LISTING_SLACK = timedelta(seconds=2)


def _moment(text: Any) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(str(text))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def list_datasets(registry: Registry, model: str) -> list[DatasetVersion]:
    """Every recorded dataset version of ``model``."""
    from mlops.data.catalog import DatasetCatalog

    catalog = DatasetCatalog(registry)
    found: list[DatasetVersion] = []
    token = None
    while True:
        page = catalog.list(model, limit=100, next_token=token)
        found.extend(page.items)
        token = page.next_token
        if not token:
            return found


def training_upload(dataset: DatasetVersion, model: str) -> dict[str, Any]:
    """The training pipeline's ``upload`` input for a recorded dataset version."""
    return {
        "bucket": dataset.bucket,
        "key": dataset.key,
        "version_id": dataset.version_id,
        "model": model,
        "size": dataset.size,
        "uploader": RETRAIN_ACTOR,
        "event_time": None,
    }


def describe_dataset(dataset: DatasetVersion | Mapping[str, Any] | None) -> str:
    """``datasets/m/x.csv version abc…, uploaded 2026-…`` (what a reason names)."""
    if dataset is None:
        return "no recorded dataset"
    values = dataset if isinstance(dataset, Mapping) else dataset.to_dict()
    text = f"{values.get('key')} version {str(values.get('version_id'))[:16]}"
    when = values.get("uploaded_at")
    return f"{text}, uploaded {when}" if when else text


# ------------------------------------------------------------------------------------------ champion
@dataclass(frozen=True)
class ChampionData:
    """What the champion was trained on, and what every registered version was trained on."""

    version: int | None
    dataset: DatasetVersion | None
    ref: dict[str, Any] | None
    since: datetime | None
    trained_ids: dict[str, str] = field(default_factory=dict)
    trained_shas: dict[str, str] = field(default_factory=dict)

    @property
    def sha256(self) -> str | None:
        return (self.ref or {}).get("sha256") or (self.dataset.sha256 if self.dataset else None)

    def describe(self) -> str:
        name = f"v{self.version}" if self.version is not None else "the champion"
        if self.dataset is not None:
            return f"{name}: {describe_dataset(self.dataset)}"
        if self.ref:
            return f"{name}: {describe_dataset(self.ref)}"
        since = f", registered {_iso(self.since)}" if self.since else ""
        return f"{name}: no recorded training dataset{since}"

    def trained_on(self, dataset: DatasetVersion) -> str | None:
        """``v4 REJECTED`` when a registered version was trained on this dataset (or the same content)."""
        return self.trained_ids.get(str(dataset.version_id)) or self.trained_shas.get(dataset.sha256)


def champion_data(registry: Registry, model: str, version: int | None) -> ChampionData:
    """The champion's training dataset (its lineage) and the datasets of every registered version."""
    from mlops.data.catalog import DatasetCatalog

    trained_ids: dict[str, str] = {}
    trained_shas: dict[str, str] = {}
    champion = None
    for registered in registry.iter_versions(model):
        label = f"v{registered.version} {registered.status.value}"
        ref = registered.dataset_version or {}
        if ref.get("version_id"):
            trained_ids.setdefault(str(ref["version_id"]), label)
        if ref.get("sha256"):
            trained_shas.setdefault(str(ref["sha256"]), label)
        if version is not None and registered.version == int(version):
            champion = registered
    if champion is None:
        return ChampionData(version, None, None, None, trained_ids, trained_shas)
    lineage = dict(champion.dataset_version) if champion.dataset_version else None
    dataset = None
    if lineage and lineage.get("version_id"):
        dataset = DatasetCatalog(registry).find(model, str(lineage["version_id"]))
    since = _moment(dataset.uploaded_at) if dataset is not None else None
    if since is None:
        since = _moment(champion.created_at)
    return ChampionData(champion.version, dataset, lineage, since, trained_ids, trained_shas)


# ------------------------------------------------------------------------------------ newer datasets
def _execution_status(services: MonitorServices, name: str) -> str | None:
    """The status of the training execution ``name`` (None: there is none; UNKNOWN: cannot tell)."""
    arn = services.settings.training_state_machine_arn
    if not arn or services.sfn is None:
        return "UNKNOWN"
    execution_arn = arn.replace(":stateMachine:", ":execution:", 1) + f":{name}"
    try:
        return str(services.sfn.describe_execution(executionArn=execution_arn)["status"])
    except Exception as exc:
        if "ExecutionDoesNotExist" in type(exc).__name__ or "ExecutionDoesNotExist" in str(exc):
            return None
        return "UNKNOWN"


def _training_now(
    services: MonitorServices, dataset: DatasetVersion, model: str, state: Mapping[str, Any]
) -> str | None:
    """The name of a training run working on ``dataset`` now (its upload's run or the last retrain)."""
    from mlops.data.trigger import execution_name

    names = []
    if dataset.bucket and dataset.version_id:
        names.append(execution_name(dataset.bucket, dataset.key, dataset.version_id, model))
    last = state.get("last_retrain_upload") or {}
    if state.get("last_retrain_execution") and last.get("version_id") == dataset.version_id:
        names.append(str(state["last_retrain_execution"]))
    for name in dict.fromkeys(names):
        if _execution_status(services, name) == "RUNNING":
            return name
    return None


def _failed_validation(
    services: MonitorServices, model: str, dataset: DatasetVersion, spec: ModelSpec | None
) -> str | None:
    """The failed checks of the dataset's validation against the current spec, if it failed one.

    Validated again under the same spec it fails again: only a changed spec (another
    fingerprint) or no report at all (the run never validated it) makes it worth a run.
    """
    from mlops.storage import read_object
    from mlops.training.steps.services import report_key

    if spec is None or services.s3 is None or not dataset.version_id:
        return None
    try:
        document = json.loads(
            read_object(services.s3, services.bucket, report_key(model, dataset.version_id, "validation.json"))
        )
    except Exception:
        return None
    if not isinstance(document, dict) or document.get("valid") is not False:
        return None
    if document.get("spec_fingerprint") != spec.fingerprint():
        return None
    failed = [str(c.get("check")) for c in document.get("checks") or [] if c.get("status") == "failed"]
    return ", ".join(dict.fromkeys(failed[:5])) or str(document.get("error") or "invalid")


def newer_datasets(
    services: MonitorServices,
    model: str,
    champion: ChampionData,
    state: Mapping[str, Any],
    spec: ModelSpec | None = None,
) -> tuple[list[DatasetVersion], list[str]]:
    """Recorded dataset versions a retrain can learn something new from (newest first), and notes
    on the newer versions left out (same content as the champion's, trained already, training now,
    invalid under the current ``spec``)."""
    eligible: list[DatasetVersion] = []
    notes: list[str] = []
    datasets = [d for d in list_datasets(services.registry, model) if d.bucket and d.version_id]
    datasets.sort(key=lambda d: (_moment(d.uploaded_at) or datetime.min.replace(tzinfo=UTC), str(d.version_id)))
    own = (champion.ref or {}).get("version_id")
    for dataset in reversed(datasets):
        if own and dataset.version_id == own:
            continue  # the champion's own training data
        when = _moment(dataset.uploaded_at)
        # S3 times are whole seconds: the same second is not older (content and training tell).
        if champion.since is not None and (when is None or when < champion.since):
            continue
        if champion.sha256 and dataset.sha256 == champion.sha256:
            notes.append(f"{describe_dataset(dataset)} holds the same content as the champion's")
            continue
        trained = champion.trained_on(dataset)
        if trained:
            notes.append(f"{describe_dataset(dataset)} is trained already ({trained})")
            continue
        running = _training_now(services, dataset, model, state)
        if running:
            notes.append(f"{describe_dataset(dataset)} is being trained now ({running})")
            continue
        invalid = _failed_validation(services, model, dataset, spec)
        if invalid:
            notes.append(f"{describe_dataset(dataset)} failed validation against the current spec ({invalid})")
            continue
        eligible.append(dataset)
    return eligible, notes


# -------------------------------------------------------------------------------- labelled captures
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
    from mlops.data.labels import label_prefixes

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
    from mlops.monitoring.captures import find_capture_keys, read_records

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
    from mlops.data.labels import parse_labels
    from mlops.storage import read_object

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
    from mlops.data.validation.api import validate_stream

    source = f"the champion's {base_rows} row(s) + {labelled_rows} labelled capture(s)"
    report = validate_stream(io.BytesIO(body), spec, source, max_examples=1)
    if report.valid:
        return None
    failed = [c for c in report.checks if c.failed]
    shown = "; ".join(f"{c.check}{f' [{c.column}]' if c.column else ''}: {c.message}" for c in failed[:3])
    more = f" (and {len(failed) - 3} more)" if len(failed) > 3 else ""
    return f"the dataset they make ({source}) would fail validation: {shown}{more}"


# ------------------------------------------------------------------------------------------- choice
@dataclass(frozen=True)
class RetrainData:
    """What a retrain would train on: a recorded dataset, a dataset to build, or nothing (``reason``)."""

    kind: str | None  # NEWER_SOURCE, CAPTURES_SOURCE or None (skip)
    reason: str
    champion: ChampionData
    dataset: DatasetVersion | None = None
    build: CaptureDataset | None = None
    notes: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """What the audit event and the run item say about the data."""
        if self.kind == NEWER_SOURCE and self.dataset is not None:
            return {
                "source": NEWER_SOURCE,
                "key": self.dataset.key,
                "version_id": self.dataset.version_id,
                "sha256": self.dataset.sha256,
                "rows": self.dataset.rows,
                "uploaded_at": self.dataset.uploaded_at,
                "champion_dataset": describe_dataset(self.champion.dataset or self.champion.ref),
            }
        if self.kind == CAPTURES_SOURCE and self.build is not None:
            lineage = self.build.lineage
            return {
                "source": CAPTURES_SOURCE,
                "sha256": self.build.sha256,
                "rows": self.build.rows,
                "labelled_rows": self.build.labelled_rows,
                "base_rows": self.build.base_rows,
                "base_dataset": lineage.get("base_dataset"),
                "label_objects": len(lineage.get("label_objects") or []),
                "capture_objects": lineage.get("capture_objects"),
                "labels_window": lineage.get("labels_window"),
            }
        return {}


def choose_retrain_data(
    services: MonitorServices,
    model: str,
    *,
    champion_version: int | None,
    state: Mapping[str, Any],
    now: datetime,
    spec: ModelSpec | None = None,
) -> RetrainData:
    """A newer dataset version, else a dataset built from labelled captures, else why neither.

    ``spec`` is the spec the pipeline validates the data against (the latest revision by default).
    """
    champion = champion_data(services.registry, model, champion_version)
    missing_spec = None
    if spec is None:
        try:
            from mlops.registry.specs import SpecStore

            spec = SpecStore(services.registry).get(model).spec()
        except NotFoundError as exc:
            missing_spec = str(exc)
    eligible, notes = newer_datasets(services, model, champion, state, spec)
    if eligible:
        return RetrainData(NEWER_SOURCE, "", champion, dataset=eligible[0], notes=notes)
    newer = f"no dataset newer than the champion's ({champion.describe()})"
    if notes:
        newer += " that a retrain could learn from: " + "; ".join(notes)
    if services.s3 is None:
        return RetrainData(None, f"{newer}; captures are not readable here", champion, notes=notes)
    if spec is None:
        return RetrainData(None, f"{newer}; no spec to build a dataset with ({missing_spec})", champion, notes=notes)
    build, why = build_capture_dataset(services, model, spec, champion, now)
    if build is None:
        return RetrainData(None, f"{newer}, and no dataset from labelled captures: {why}", champion, notes=notes)
    same = _recorded_with(services.registry, model, build.sha256)
    claimed = (state.get("last_retrain_build") or {}).get("sha256")
    if same is not None or claimed == build.sha256:
        where = describe_dataset(same) if same is not None else "by a run still starting it"
        trained = champion.trained_on(same) if same is not None else None
        return RetrainData(
            None,
            f"{newer}, and the dataset the labelled captures make ({build.labelled_rows} labelled row(s)) "
            f"was built before ({where}{'; trained: ' + trained if trained else ''})",
            champion,
            notes=notes,
        )
    return RetrainData(CAPTURES_SOURCE, "", champion, build=build, notes=notes)


def _recorded_with(registry: Registry, model: str, sha256: str) -> DatasetVersion | None:
    return next((d for d in list_datasets(registry, model) if d.sha256 == sha256), None)


def record_capture_dataset(
    services: MonitorServices, model: str, key: str, version_id: str, body: bytes, lineage: Mapping[str, Any]
) -> DatasetVersion:
    """Record the written dataset version with its lineage (idempotent), as the pipeline would."""
    from mlops.data.catalog import DatasetCatalog
    from mlops.data.datasets import PLATFORM_SOURCE, DatasetVersion, scan_csv

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
    from mlops.data.trigger import parse_key
    from mlops.data.uploads import record_platform_upload

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
