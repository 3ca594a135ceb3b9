"""The deployed drift check: schedules, capture windows, mergeable sketches, reports, metrics, retraining.

One monitor run is one execution of the monitoring state machine for one model:

``plan``
    The champion, its monitoring spec and the window (since the last completed run, else one
    schedule period; at most :data:`MAX_WINDOW`); lists the capture objects in it and writes
    them, cut into shards, to ``<run prefix>shards.json``. Small windows are analyzed in one
    function (``inline``); windows above ``inline_max_bytes`` / ``inline_max_objects`` go through
    a Distributed Map over that file (``distributed``).
``sketch``
    One shard: its capture records as a :class:`WindowSketch` (exact counts, missing values,
    categories and moments; a uniform bottom-k sample of each numeric column), written to
    ``<run prefix>sketches/<index>.json``.
``analyze``
    The window (all records, or the merged sketches) against the champion's registered reference
    profile with :func:`mlops.drift.drift_report`; prediction drift against the champion's
    holdout predictions; performance drift when labels were uploaded. Writes
    ``reports/<model>/v<version>/drift/<timestamp>.json`` and ``.html``, a run item and the
    per-model monitor item (audited together), publishes to SNS on drift, and starts retraining
    when the spec asks for it, at most once per cooldown (a conditional write on the monitor item)
    and only on data the champion has not learnt from (:mod:`mlops.monitoring.retraining`).
``record_failure``
    A failed run: a FAILED run item and an audit event.

Per-model schedules are EventBridge Scheduler schedules named after the model in the group
``mlops-<environment>-monitoring``; :func:`sync_schedule` creates, updates or deletes one from
the spec. Details: docs/monitoring.md.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from mlops.errors import ConfigError, InputError, NotFoundError
from mlops.registry import failures
from mlops.registry.keys import MONITOR_RUN_SK_PREFIX, model_items, monitor_key, monitor_run_key, sk_prefix
from mlops.registry.tables import ABSENT, Condition, ConditionFailedError, Put, Update
from mlops.registry.versions import Registry
from mlops.spec.model import NUMERIC_TYPES, FeatureType, ModelSpec
from mlops.storage import read_object, read_uri

MONITOR_ACTOR = "pipeline:monitor"
CAPTURE_PREFIX = "captures"
REPORT_PREFIX = "reports"
# A window never reaches further back than this (the monitor was off, or windows were too small).
MAX_WINDOW = timedelta(days=31)
DEFAULT_INLINE_MAX_BYTES = 64 * 1024 * 1024
DEFAULT_INLINE_MAX_OBJECTS = 5_000
DEFAULT_SHARD_BYTES = 32 * 1024 * 1024
DEFAULT_SHARD_OBJECTS = 500
SKETCH_RESERVOIR = 100_000
# Capture keys scanned to find labelled requests (labels arrive days after their predictions).
MAX_LABEL_SCAN_KEYS = 200_000
_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_UNITS = {"minute": 60, "hour": 3600, "day": 86400}


def utc_now() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _parse_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# ----------------------------------------------------------------------------------------- schedules


def schedule_input(model: str) -> dict[str, str]:
    """What a scheduled execution of the monitor state machine receives."""
    return {"model": model, "trigger": "schedule"}


def _not_found(exc: Exception) -> bool:
    code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
    return code in ("ResourceNotFoundException", "NotFoundException")


def sync_schedule(
    scheduler: Any, group: str, model: str, spec: ModelSpec, target_arn: str, role_arn: str
) -> dict[str, Any]:
    """Make the model's schedule match its spec: create, update, leave alone or delete it.

    Parameters
    ----------
    scheduler
        A boto3 ``scheduler`` client.
    group
        The schedule group (:func:`schedule_group_name`); it must exist (the stack creates it).
    model, spec
        The model and the spec whose ``monitoring`` section decides (``enabled``, ``schedule``).
    target_arn, role_arn
        The monitor state machine, and the role Scheduler assumes to start it.

    Returns
    -------
    dict
        ``{"model", "group", "action", "expression"}`` with ``action`` one of ``created``,
        ``updated``, ``unchanged``, ``deleted``, ``absent``.

    Examples
    --------
    >>> sync_schedule(boto3.client("scheduler"), "mlops-dev-monitoring", "churn", spec,
    ...               machine_arn, role_arn)["action"]  # doctest: +SKIP
    'created'
    """
    from botocore.exceptions import ClientError

    monitoring = spec.monitoring
    try:
        current: dict[str, Any] | None = scheduler.get_schedule(Name=model, GroupName=group)
    except ClientError as exc:
        if not _not_found(exc):
            raise
        current = None
    result: dict[str, Any] = {"model": model, "group": group, "expression": monitoring.schedule}
    if not monitoring.enabled:
        if current is None:
            return {**result, "action": "absent"}
        try:
            scheduler.delete_schedule(Name=model, GroupName=group)
        except ClientError as exc:
            if not _not_found(exc):
                raise
        return {**result, "action": "deleted"}
    target = {"Arn": target_arn, "RoleArn": role_arn, "Input": json.dumps(schedule_input(model), sort_keys=True)}
    wanted: dict[str, Any] = {
        "Name": model,
        "GroupName": group,
        "ScheduleExpression": monitoring.schedule,
        "ScheduleExpressionTimezone": "UTC",
        "FlexibleTimeWindow": {"Mode": "OFF"},
        "Target": target,
        "State": "ENABLED",
        "Description": f"mlops drift check of {model} ({monitoring.schedule})",
    }
    if current is None:
        scheduler.create_schedule(**wanted)
        return {**result, "action": "created"}
    have = current.get("Target") or {}
    same = (
        current.get("ScheduleExpression") == monitoring.schedule
        and current.get("State") == "ENABLED"
        and have.get("Arn") == target_arn
        and have.get("RoleArn") == role_arn
        and _same_json(have.get("Input"), target["Input"])
    )
    if same:
        return {**result, "action": "unchanged"}
    scheduler.update_schedule(**wanted)
    return {**result, "action": "updated"}


def set_schedule_state(scheduler: Any, group: str, model: str, *, enabled: bool) -> dict[str, Any]:
    """Pause (``enabled=False``) or resume a model's schedule, keeping its expression and target.

    What ``mlops models archive`` and ``unarchive`` do to the drift checks: an archived model's
    schedule stays, disabled, so unarchiving needs nothing the deployment alone knows.

    Returns
    -------
    dict
        ``{"model", "group", "action"}`` with ``action`` one of ``disabled``, ``enabled``,
        ``unchanged`` or ``absent`` (the model has no schedule).
    """
    from botocore.exceptions import ClientError

    result: dict[str, Any] = {"model": model, "group": group}
    try:
        current = scheduler.get_schedule(Name=model, GroupName=group)
    except ClientError as exc:
        if not _not_found(exc):
            raise
        return {**result, "action": "absent"}
    state = "ENABLED" if enabled else "DISABLED"
    if current.get("State") == state:
        return {**result, "action": "unchanged"}
    keep = ("ScheduleExpression", "ScheduleExpressionTimezone", "FlexibleTimeWindow", "Target", "Description")
    scheduler.update_schedule(
        Name=model, GroupName=group, State=state, **{k: current[k] for k in keep if current.get(k) is not None}
    )
    return {**result, "action": state.lower()}


def _same_json(a: Any, b: Any) -> bool:
    try:
        return bool(json.loads(a or "null") == json.loads(b or "null"))
    except ValueError:
        return False


@dataclass(frozen=True)
class ScheduleTarget:
    """Where schedules go and what they start (``MONITOR_*`` variables of the functions that sync)."""

    group: str
    state_machine_arn: str
    role_arn: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ScheduleTarget | None:
        """None when the variables are not set (monitoring not deployed with this function)."""
        env = os.environ if environ is None else environ
        values = [env.get(n, "") for n in ("MONITOR_SCHEDULE_GROUP", "MONITOR_STATE_MACHINE_ARN")]
        role = env.get("MONITOR_SCHEDULER_ROLE_ARN", "")
        if not all(values) or not role:
            return None
        return cls(group=values[0], state_machine_arn=values[1], role_arn=role)


def monitoring_spec(registry: Registry, model: str, spec_revision: int | None) -> ModelSpec:
    """The champion's spec (its features) with the latest spec revision's ``monitoring`` section.

    Monitoring settings apply from the next run after ``mlops spec put``, without retraining.
    """
    from mlops.registry.specs import SpecStore

    store = SpecStore(registry)
    latest = store.get(model).spec()
    if spec_revision is None:
        return latest
    try:
        champion_spec = store.get(model, spec_revision).spec()
    except NotFoundError:
        return latest
    return champion_spec.model_copy(update={"monitoring": latest.monitoring})


def sync_champion_schedule(registry: Registry, model: str, *, scheduler: Any, target: ScheduleTarget) -> dict[str, Any]:
    """:func:`sync_schedule` for a model's champion (the deployment calls this when it sets one).

    An archived model's schedule is kept disabled instead (``mlops models unarchive`` resumes it).
    """
    if registry.get_model(model).archived is not None:
        return set_schedule_state(scheduler, target.group, model, enabled=False)
    champion = registry.get_by_alias(model, "champion")
    spec = monitoring_spec(registry, model, champion.spec_revision)
    return sync_schedule(scheduler, target.group, model, spec, target.state_machine_arn, target.role_arn)


def sync_schedule_from_env(registry: Registry, model: str) -> dict[str, Any]:
    """What the deployment functions call after a champion change; never raises.

    Returns ``{"action": "not_configured"}`` without the ``MONITOR_*`` variables, and
    ``{"action": "failed", "error": ...}`` when Scheduler refused (the next monitor run heals it).
    """
    target = ScheduleTarget.from_env()
    if target is None:
        return {"model": model, "action": "not_configured"}
    try:
        import boto3

        return sync_champion_schedule(registry, model, scheduler=boto3.client("scheduler"), target=target)
    except Exception as exc:  # a schedule problem must not undo a deployment
        return {"model": model, "action": "failed", "error": f"{type(exc).__name__}: {exc}"}


# ------------------------------------------------------------------------------------------- windows
def schedule_period(expression: str) -> timedelta:
    """The interval of a ``rate(...)`` expression; for ``cron(...)``, an hour or a day.

    A cron expression whose hour field is ``*`` or a step (``*/2``) counts as hourly; every other
    cron expression as daily.
    """
    match = _RATE.match(expression.strip())
    if match:
        value, unit = int(match.group(1)), match.group(2).rstrip("s")
        return timedelta(seconds=value * _UNITS[unit])
    if expression.startswith("cron(") and expression.endswith(")"):
        fields = expression[5:-1].split()
        if len(fields) >= 2 and (fields[1] == "*" or "/" in fields[1]):
            return timedelta(hours=1)
        return timedelta(days=1)
    raise InputError(f"{expression!r} is not a schedule expression (rate(...) or cron(...))")


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


# ------------------------------------------------------------------------------------------- records
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
                    at = _parse_time(str(record.get("at")))
                except ValueError:
                    continue
                if (start is not None and at < start) or (end is not None and at >= end):
                    continue
            records.append(record)
    return records


def records_frame(records: Sequence[Mapping[str, Any]], spec: ModelSpec) -> Any:
    """A DataFrame of the spec's features (by name) from capture records; absent fields are missing."""
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
    return [r.get("prediction") for r in records if _as_int(r.get("version")) == champion]


def _as_int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


# ------------------------------------------------------------------------------------------- sketches
def _column_kind(feature_type: FeatureType | str) -> str:
    if feature_type in NUMERIC_TYPES:
        return "numeric"
    if feature_type is FeatureType.DATETIME:
        return "datetime"  # sketched as seconds since the epoch, as the engine compares dates
    return "categorical"


@dataclass
class NumericSketch:
    """Exact count, moments and extremes; a uniform sample (bottom-k of random keys) of the values."""

    rows: int = 0
    count: int = 0
    mean: float = 0.0
    m2: float = 0.0
    min: float = math.inf
    max: float = -math.inf
    values: np.ndarray = field(default_factory=lambda: np.empty(0))
    keys: np.ndarray = field(default_factory=lambda: np.empty(0))

    def add(self, finite: np.ndarray, rows: int, keys: np.ndarray, capacity: int) -> None:
        self.rows += rows
        other = NumericSketch(rows=0, count=len(finite), values=finite, keys=keys)
        if len(finite):
            other.mean = float(finite.mean())
            other.m2 = float(((finite - other.mean) ** 2).sum())
            other.min, other.max = float(finite.min()), float(finite.max())
        self._combine(other, capacity)

    def merge(self, other: NumericSketch, capacity: int) -> None:
        self.rows += other.rows
        self._combine(other, capacity)

    def _combine(self, other: NumericSketch, capacity: int) -> None:
        if other.count:
            total = self.count + other.count
            delta = other.mean - self.mean
            self.m2 += other.m2 + delta * delta * self.count * other.count / total
            self.mean += delta * other.count / total
            self.count = total
            self.min, self.max = min(self.min, other.min), max(self.max, other.max)
        values = np.concatenate([self.values, other.values])
        keys = np.concatenate([self.keys, other.keys])
        if len(values) > capacity:
            keep = np.argpartition(keys, capacity)[:capacity]
            values, keys = values[keep], keys[keep]
        self.values, self.keys = values, keys

    @property
    def nulls(self) -> int:
        return self.rows - self.count

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "numeric",
            "rows": self.rows,
            "count": self.count,
            "mean": self.mean,
            "m2": self.m2,
            "min": self.min if self.count else None,
            "max": self.max if self.count else None,
            "values": self.values.tolist(),
            "keys": self.keys.tolist(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NumericSketch:
        return cls(
            rows=int(data["rows"]),
            count=int(data["count"]),
            mean=float(data["mean"]),
            m2=float(data["m2"]),
            min=float(data["min"]) if data.get("min") is not None else math.inf,
            max=float(data["max"]) if data.get("max") is not None else -math.inf,
            values=np.asarray(data["values"], dtype=np.float64),
            keys=np.asarray(data["keys"], dtype=np.float64),
        )


@dataclass
class CategoricalSketch:
    """Exact counts per category (as text) and missing values."""

    rows: int = 0
    nulls: int = 0
    counts: Counter[str] = field(default_factory=Counter)

    def merge(self, other: CategoricalSketch) -> None:
        self.rows += other.rows
        self.nulls += other.nulls
        self.counts.update(other.counts)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "categorical", "rows": self.rows, "nulls": self.nulls, "counts": dict(self.counts)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CategoricalSketch:
        return cls(rows=int(data["rows"]), nulls=int(data["nulls"]), counts=Counter(data["counts"]))


ColumnSketch = NumericSketch | CategoricalSketch
PREDICTION_COLUMN = "__prediction__"


@dataclass
class WindowSketch:
    """A mergeable summary of a capture window: every feature, plus the champion's predictions.

    ``merge`` is exact for rows, missing values, category counts, count, mean, variance, min and
    max; the numeric samples merge into a uniform sample of the union (bottom-k of independent
    uniform keys), so a merged sketch has the same distribution as one built in a single pass.
    """

    kinds: dict[str, str]
    capacity: int = SKETCH_RESERVOIR
    rows: int = 0
    columns: dict[str, ColumnSketch] = field(default_factory=dict)

    @classmethod
    def for_spec(cls, spec: ModelSpec, capacity: int = SKETCH_RESERVOIR) -> WindowSketch:
        kinds = {f.name: _column_kind(f.type) for f in spec.features}
        kinds[PREDICTION_COLUMN] = "numeric" if spec.task == "regression" else "categorical"
        return cls(kinds=kinds, capacity=capacity)

    def add_frame(self, frame: Any, predictions: Sequence[Any] = (), *, rng: np.random.Generator) -> None:
        """Add a chunk of features (by column name) and the champion's predictions in it."""
        import pandas as pd

        self.rows += len(frame)
        for name, kind in self.kinds.items():
            if kind == "other":
                continue  # a column the engine does not compare: only the row count matters
            if name == PREDICTION_COLUMN:
                series = pd.Series(list(predictions), dtype=object)
            elif name in frame.columns:
                series = frame[name]
            else:
                series = pd.Series([None] * len(frame), dtype=object)
            self._add_column(name, kind, series, rng)

    def _add_column(self, name: str, kind: str, series: Any, rng: np.random.Generator) -> None:
        from mlops.data.validation import coerce
        from mlops.drift.engine import datetime_seconds

        if kind in ("numeric", "datetime"):
            if kind == "datetime":
                values = datetime_seconds(series)
            else:
                values = coerce.numeric(series).values.astype(np.float64, copy=False)
            finite = values[np.isfinite(values)]
            sketch = self.columns.setdefault(name, NumericSketch())
            assert isinstance(sketch, NumericSketch)
            sketch.add(finite, len(values), rng.random(len(finite)), self.capacity)
            return
        codes, uniques, null = coerce.factorized(series)
        present = codes >= 0
        counts = np.bincount(codes[present], minlength=len(uniques))
        categorical = self.columns.setdefault(name, CategoricalSketch())
        assert isinstance(categorical, CategoricalSketch)
        categorical.rows += len(series)
        categorical.nulls += int(np.count_nonzero(null))
        for label, count in zip(uniques.tolist(), counts.tolist(), strict=True):
            if count:
                categorical.counts[str(label)] += int(count)

    def merge(self, other: WindowSketch) -> WindowSketch:
        """Add ``other`` (another shard of the same window) into this sketch; returns self."""
        self.rows += other.rows
        for name, sketch in other.columns.items():
            mine = self.columns.get(name)
            if mine is None:
                self.columns[name] = sketch
            elif isinstance(mine, NumericSketch) and isinstance(sketch, NumericSketch):
                mine.merge(sketch, self.capacity)
            elif isinstance(mine, CategoricalSketch) and isinstance(sketch, CategoricalSketch):
                mine.merge(sketch)
            else:
                raise InputError(f"sketch column {name!r} is numeric in one shard and categorical in another")
        return self

    def to_json(self) -> str:
        return json.dumps(
            {
                "rows": self.rows,
                "capacity": self.capacity,
                "kinds": self.kinds,
                "columns": {name: sketch.to_dict() for name, sketch in self.columns.items()},
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> WindowSketch:
        data = json.loads(text)
        columns: dict[str, ColumnSketch] = {}
        for name, column in data["columns"].items():
            columns[name] = (
                NumericSketch.from_dict(column) if column["kind"] == "numeric" else CategoricalSketch.from_dict(column)
            )
        return cls(kinds=dict(data["kinds"]), capacity=int(data["capacity"]), rows=int(data["rows"]), columns=columns)

    # ---------------------------------------------------------------------------------------------
    def frame(self, *, max_rows: int | None = None) -> tuple[Any, np.ndarray | None, bool]:
        """(features DataFrame, predictions, exact) standing for the window, column by column.

        Each column holds its values and its missing values in their true proportion (column
        order is meaningless: the engine compares columns one by one). With at most
        ``max_rows`` rows (default: the sample capacity) and every numeric column fully held in
        its sample, the frame is the window itself (``exact``); otherwise each column is scaled
        to ``max_rows`` rows: numeric values are evenly spaced order statistics of the sample,
        category counts are rounded by largest remainder (a category seen keeps at least one row).
        """
        import pandas as pd

        cap = max_rows or self.capacity
        rows = self.rows
        out_rows = min(rows, cap)
        exact = rows <= cap
        data: dict[str, Any] = {}
        predictions: np.ndarray | None = None
        for name, sketch in self.columns.items():
            column_rows = sketch.rows
            target = out_rows if name != PREDICTION_COLUMN else min(column_rows, cap)
            scale = target / column_rows if column_rows else 0.0
            if isinstance(sketch, NumericSketch):
                ordered = np.sort(sketch.values)
                exact = exact and len(ordered) == sketch.count
                keep = round(sketch.count * scale) if scale < 1 else sketch.count
                if keep < len(ordered):
                    positions = np.round(np.linspace(0, len(ordered) - 1, keep)).astype(int)
                    ordered = ordered[positions] if keep else ordered[:0]
                values: np.ndarray = np.concatenate([ordered, np.full(max(target - len(ordered), 0), np.nan)])
                column: Any = values[:target]
            else:
                labels = list(sketch.counts)
                counts = np.asarray([sketch.counts[k] for k in labels], dtype=np.float64)
                nonnull = round((column_rows - sketch.nulls) * scale) if scale < 1 else column_rows - sketch.nulls
                scaled = _largest_remainder(counts, nonnull) if scale < 1 else counts.astype(int)
                items: list[Any] = []
                for label, count in zip(labels, scaled.tolist(), strict=True):
                    items.extend([label] * int(count))
                items.extend([None] * max(target - len(items), 0))
                column = np.asarray(items[:target], dtype=object)
            if name == PREDICTION_COLUMN:
                predictions = column[pd.notna(column)] if len(column) else None
            elif self.kinds.get(name) == "datetime":
                data[name] = pd.Series(pd.to_datetime(column, unit="s"))  # back to dates, NaN as NaT
            else:
                data[name] = pd.Series(column)
        for name, kind in self.kinds.items():
            if kind == "other":
                data[name] = pd.Series([None] * out_rows, dtype=object)
        frame = pd.DataFrame(data) if data else pd.DataFrame(index=range(out_rows))
        return frame, predictions, exact


def _largest_remainder(counts: np.ndarray, total: int) -> np.ndarray:
    """Integer counts summing to ``total`` (about), proportional to ``counts``, none seen dropped to 0."""
    if counts.sum() <= 0 or total <= 0:
        return np.zeros(len(counts), dtype=int)
    exact = counts / counts.sum() * total
    floor = np.floor(exact).astype(int)
    rest = total - int(floor.sum())
    if rest > 0:
        floor[np.argsort(-(exact - floor), kind="stable")[:rest]] += 1
    floor[(floor == 0) & (counts > 0)] = 1
    return floor


def sketch_records(
    records: Sequence[Mapping[str, Any]],
    spec: ModelSpec,
    champion: int,
    *,
    capacity: int = SKETCH_RESERVOIR,
    seed: int | None = None,
) -> WindowSketch:
    """A :class:`WindowSketch` of capture records (one shard)."""
    sketch = WindowSketch.for_spec(spec, capacity)
    sketch.add_frame(
        records_frame(records, spec), champion_predictions(records, champion), rng=np.random.default_rng(seed)
    )
    return sketch


# ------------------------------------------------------------------------------------------ services
@dataclass(frozen=True)
class MonitorSettings:
    """The monitor function's configuration (its environment variables)."""

    schedule: ScheduleTarget | None = None
    training_state_machine_arn: str | None = None
    notifications_topic_arn: str | None = None
    inline_max_bytes: int = DEFAULT_INLINE_MAX_BYTES
    inline_max_objects: int = DEFAULT_INLINE_MAX_OBJECTS
    shard_bytes: int = DEFAULT_SHARD_BYTES
    shard_objects: int = DEFAULT_SHARD_OBJECTS
    label_lookback_days: float = 7.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> MonitorSettings:
        env = os.environ if environ is None else environ

        def number(name: str, default: float) -> float:
            text = env.get(name)
            if not text:
                return default
            try:
                value = float(text)
            except ValueError:
                raise ConfigError(f"environment variable {name}={text!r} is not a number") from None
            if value < 0:
                raise ConfigError(f"environment variable {name}={text!r} must not be negative")
            return value

        return cls(
            schedule=ScheduleTarget.from_env(env),
            training_state_machine_arn=env.get("TRAINING_STATE_MACHINE_ARN") or None,
            notifications_topic_arn=env.get("NOTIFICATIONS_TOPIC_ARN") or None,
            inline_max_bytes=int(number("MONITOR_INLINE_MAX_BYTES", DEFAULT_INLINE_MAX_BYTES)),
            inline_max_objects=int(number("MONITOR_INLINE_MAX_OBJECTS", DEFAULT_INLINE_MAX_OBJECTS)),
            shard_bytes=max(1, int(number("MONITOR_SHARD_BYTES", DEFAULT_SHARD_BYTES))),
            shard_objects=max(1, int(number("MONITOR_SHARD_OBJECTS", DEFAULT_SHARD_OBJECTS))),
            label_lookback_days=number("MONITOR_LABEL_LOOKBACK_DAYS", 7.0),
        )


@dataclass(frozen=True)
class MonitorServices:
    """The clients and names the monitor steps use (from the function's environment by default)."""

    bucket: str
    registry: Registry
    s3: Any
    settings: MonitorSettings = field(default_factory=MonitorSettings)
    sfn: Any = None
    sns: Any = None
    scheduler: Any = None
    clock: Callable[[], datetime] = utc_now

    @classmethod
    def from_env(cls) -> MonitorServices:
        import boto3

        from mlops.settings import Platform

        platform = Platform.from_env()
        registry = Registry.for_platform(boto3.client("dynamodb"), platform)
        return cls(
            bucket=platform.data_bucket,
            registry=registry,
            s3=boto3.client("s3"),
            settings=MonitorSettings.from_env(),
            sfn=boto3.client("stepfunctions"),
            sns=boto3.client("sns"),
            scheduler=boto3.client("scheduler"),
        )


@dataclass(frozen=True)
class MetricPoint:
    """One CloudWatch value (namespace MLOps); ``dimensions`` besides the function's ``service``."""

    name: str
    value: float
    unit: str = "None"
    dimensions: dict[str, str] = field(default_factory=dict)


def get_monitor_state(registry: Registry, model: str) -> dict[str, Any]:
    """The per-model monitor item (last window end, last verdict, last retraining); {} if none."""
    return registry.store.get(registry.table, monitor_key(model)) or {}


def list_monitor_runs(registry: Registry, model: str, *, limit: int = 20) -> list[dict[str, Any]]:
    """The newest monitor run items of a model, newest first."""
    page = registry.store.query(
        registry.table, model_items(model), sk_prefix=sk_prefix(MONITOR_RUN_SK_PREFIX), forward=False, limit=limit
    )
    return page.items


def report_prefix(model: str, version: int, stamp: str) -> str:
    """``reports/<model>/v<version>/drift/<stamp>``: the report (``.json``/``.html``) and run files (``/``)."""
    return f"{REPORT_PREFIX}/{model}/v{version}/drift/{stamp}"


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


# -------------------------------------------------------------------------------------------- plan
def plan_run(event: Mapping[str, Any], services: MonitorServices) -> dict[str, Any]:
    """The Plan state: champion, spec, window, capture objects and the inline/distributed choice.

    ``event`` is the execution input (``{"model", "trigger"}``), or ``{"input": <that>,
    "execution_name": ...}`` as the state machine passes it.
    """
    event = {**(event.get("input") or {}), **{k: v for k, v in event.items() if k != "input"}}
    model = str(event.get("model") or "")
    if not model:
        raise InputError("the monitor needs {'model': <name>} as input")
    registry = services.registry
    registry.ensure_active(model)  # an archived model is not monitored (its schedule is disabled)
    champion = registry.get_by_alias(model, "champion")
    spec = monitoring_spec(registry, model, champion.spec_revision)
    now = services.clock()
    run_id = str(event.get("run_id") or event.get("execution_name") or f"run-{_stamp(now)}")
    schedule = _heal_schedule(services, model, spec)
    base = {
        "model": model,
        "version": champion.version,
        "spec_revision": champion.spec_revision,
        "run_id": run_id,
        "trigger": str(event.get("trigger") or "manual"),
        "schedule": schedule,
    }
    if not spec.monitoring.enabled:
        return {**base, "mode": "disabled", "shards": 0, "objects": 0, "bytes": 0}
    state = get_monitor_state(registry, model)
    last_end = _parse_time(state["last_window_end"]) if state.get("last_window_end") else None
    start, end = plan_window(now, last_end, schedule_period(spec.monitoring.schedule))
    objects = list_captures(services.s3, services.bucket, model, start, end)
    total = sum(size for _, size in objects)
    settings = services.settings
    # The input may force the Distributed Map path (``mlops monitor run --distributed``, tests).
    forced = bool(event.get("distributed"))
    large = forced or total > settings.inline_max_bytes or len(objects) > settings.inline_max_objects
    shard_objects = max(1, int(event.get("shard_objects") or settings.shard_objects))
    shards = make_shards(
        objects,
        max_bytes=settings.shard_bytes if large else max(total, 1),
        max_objects=shard_objects if large else max(len(objects), 1),
    )
    prefix = report_prefix(model, champion.version, _stamp(now))
    shards_key = f"{prefix}/shards.json"
    items = [
        {
            "index": index,
            "keys": keys,
            "sketch_key": f"{prefix}/sketches/{index:05d}.json",
            "model": model,
            "version": champion.version,
            "spec_revision": champion.spec_revision,
            "window": {"start": _iso(start), "end": _iso(end)},
        }
        for index, keys in enumerate(shards)
    ]
    services.s3.put_object(
        Bucket=services.bucket, Key=shards_key, Body=json.dumps(items).encode(), ContentType="application/json"
    )
    return {
        **base,
        "mode": "distributed" if large and items else "inline",
        "window": {"start": _iso(start), "end": _iso(end)},
        "planned_at": _iso(now),
        # What the window started from: the run advances the window end only if it is still this.
        "previous_window_end": state.get("last_window_end"),
        "prefix": prefix,
        "shards_key": shards_key,
        "shards": len(items),
        "objects": len(objects),
        "bytes": total,
    }


def _heal_schedule(services: MonitorServices, model: str, spec: ModelSpec) -> dict[str, Any]:
    target = services.settings.schedule
    if target is None or services.scheduler is None:
        return {"action": "not_configured"}
    try:
        return sync_schedule(services.scheduler, target.group, model, spec, target.state_machine_arn, target.role_arn)
    except Exception as exc:  # the drift check still runs; the next run tries again
        return {"action": "failed", "error": f"{type(exc).__name__}: {exc}"[:500]}


# ------------------------------------------------------------------------------------------ sketch
def sketch_shard(event: Mapping[str, Any], services: MonitorServices) -> dict[str, Any]:
    """The Sketch state (one Distributed Map item): a shard's records -> its sketch in S3."""
    from mlops.registry.specs import SpecStore

    item = event.get("item") or event
    model = str(item["model"])
    revision = item.get("spec_revision")
    spec = SpecStore(services.registry).get(model, int(revision) if revision is not None else None).spec()
    window = item["window"]
    records = read_records(
        services.s3, services.bucket, item["keys"], _parse_time(window["start"]), _parse_time(window["end"])
    )
    sketch = sketch_records(records, spec, int(item["version"]), seed=int(item["index"]))
    services.s3.put_object(
        Bucket=services.bucket,
        Key=item["sketch_key"],
        Body=sketch.to_json().encode(),
        ContentType="application/json",
    )
    return {"index": item["index"], "rows": sketch.rows, "sketch_key": item["sketch_key"]}


# ----------------------------------------------------------------------------------------- analyze
@dataclass
class Window:
    """What the analysis compares: the window's features, the champion's predictions, exactness."""

    frame: Any
    predictions: Any
    rows: int
    exact: bool
    notes: list[str] = field(default_factory=list)


def _load_shards(services: MonitorServices, shards_key: str) -> list[dict[str, Any]]:
    return list(json.loads(read_object(services.s3, services.bucket, shards_key)))


def window_inline(services: MonitorServices, plan: Mapping[str, Any], spec: ModelSpec) -> Window:
    """Every record of the window, read by this function."""
    import numpy as np

    window = plan["window"]
    keys = [key for shard in _load_shards(services, plan["shards_key"]) for key in shard["keys"]]
    records = read_records(services.s3, services.bucket, keys, _parse_time(window["start"]), _parse_time(window["end"]))
    predictions = champion_predictions(records, int(plan["version"]))
    frame = records_frame(records, spec)
    return Window(frame, np.asarray([p for p in predictions if p is not None], dtype=object), len(records), True)


def window_from_sketches(services: MonitorServices, plan: Mapping[str, Any], spec: ModelSpec) -> Window:
    """The merged shard sketches of a distributed run."""
    merged: WindowSketch | None = None
    for shard in _load_shards(services, plan["shards_key"]):
        sketch = WindowSketch.from_json(read_object(services.s3, services.bucket, shard["sketch_key"]))
        merged = sketch if merged is None else merged.merge(sketch)
    if merged is None:
        merged = WindowSketch.for_spec(spec)
    frame, predictions, exact = merged.frame()
    notes = [f"merged from {plan['shards']} shard sketch(es) of {merged.rows} row(s)"]
    if not exact:
        notes.append(
            f"the window ({merged.rows} rows) is compared through uniform samples of at most "
            f"{merged.capacity} values per numeric column (counts are exact)"
        )
    return Window(frame, predictions, merged.rows, exact, notes)


def version_document(services: MonitorServices, champion: Any, tag: str) -> dict[str, Any] | None:
    """The JSON document a version's tag points at (``predictions_uri``, ``evaluation_uri``), or None."""
    uri = (champion.tags or {}).get(tag)
    if not uri or not str(uri).startswith("s3://"):
        return None
    document = json.loads(read_uri(services.s3, str(uri)))
    return document if isinstance(document, dict) else None


def reference_predictions(services: MonitorServices, champion: Any, document: Mapping[str, Any] | None = None) -> Any:
    """The champion's predictions on its holdout (registered as ``predictions_uri``), or None."""
    document = document if document is not None else version_document(services, champion, "predictions_uri")
    if document is None:
        return None
    return np.asarray(document.get("predictions") or [], dtype=object)


def registered_holdout(services: MonitorServices, champion: Any, predictions: Mapping[str, Any] | None) -> Any:
    """What is known of the holdout behind the champion's registered metrics (a ``Holdout``).

    Versions registered since performance monitoring judges uncertainty keep the holdout's labels,
    predictions and probabilities in ``predictions.json``; older ones have the confusion matrix and
    size of their evaluation (``evaluation_uri``).
    """
    from mlops.drift import Holdout

    evaluation = None
    if predictions is None or not predictions.get("labels"):
        evaluation = version_document(services, champion, "evaluation_uri")
    return Holdout.from_documents(predictions, evaluation)


@dataclass
class LabelledWindow:
    """Uploaded labels joined to the champion's captured answers, row by row."""

    labels: list[Any] = field(default_factory=list)
    predictions: list[Any] = field(default_factory=list)
    # The served class probabilities of each joined row (None unless every joined row has them).
    probabilities: list[list[float]] | None = None
    notes: list[str] = field(default_factory=list)


def labelled_predictions(
    services: MonitorServices, model: str, spec: ModelSpec, champion: int, now: datetime
) -> LabelledWindow:
    """Uploaded labels joined by ``(request_id, index)`` to the champion's captured answers.

    A capture holds the prediction and, for a classifier, the probabilities it served (see
    ``mlops.serving.service.capture_lines``): both are kept, so ROC AUC and log loss can be compared.
    """
    from mlops.data.labels import load_labels

    lookback = services.settings.label_lookback_days
    labels, notes = load_labels(services.s3, services.bucket, model, spec, now=now, lookback_days=lookback)
    window = LabelledWindow(notes=notes)
    if not labels:
        return window
    keys, scan_notes = find_capture_keys(
        services.s3, services.bucket, model, {rid for rid, _ in labels}, now - timedelta(days=lookback + 1), now
    )
    notes.extend(scan_notes)
    probabilities: list[Any] = []
    for record in read_records(services.s3, services.bucket, keys):
        if _as_int(record.get("version")) != champion:
            continue
        label = labels.get((str(record.get("request_id")), int(record.get("index") or 0)))
        if label is not None:
            window.labels.append(label)
            window.predictions.append(record.get("prediction"))
            probabilities.append(record.get("probabilities"))
    if spec.task == "classification" and window.labels:
        widths = {len(p) if isinstance(p, list) else 0 for p in probabilities}
        if len(widths) == 1 and widths != {0}:
            window.probabilities = probabilities
        else:
            notes.append("some joined captures have no served probabilities: ROC AUC and log loss not compared")
    return window


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


def analyze_run(
    event: Mapping[str, Any], services: MonitorServices, *, request_id: str | None = None
) -> dict[str, Any]:
    """The Analyze state: report, run item, metrics, notification and (maybe) retraining.

    Returns
    -------
    dict
        ``model``, ``version``, ``verdict``, ``drifted``, ``drifted_features``, ``rows``,
        ``report_key``, ``html_key``, ``retrain`` and ``metrics`` (a list of
        :class:`MetricPoint` as dicts, emitted by the handler).
    """
    from mlops.drift import drift_report, render_html

    plan = event.get("plan") or event
    model, version, run_id = str(plan["model"]), int(plan["version"]), str(plan["run_id"])
    registry = services.registry
    champion = registry.get_version(model, version)
    spec = monitoring_spec(registry, model, champion.spec_revision)
    profile = _reference_profile(services, champion)
    window = (
        window_from_sketches(services, plan, spec)
        if plan.get("mode") == "distributed"
        else window_inline(services, plan, spec)
    )
    now = services.clock()
    predictions_document = version_document(services, champion, "predictions_uri")
    ref_predictions = reference_predictions(services, champion, predictions_document)
    current_predictions = window.predictions if window.predictions is not None and len(window.predictions) else None
    labelled = labelled_predictions(services, model, spec, version, now)
    labels, label_notes = labelled.labels, labelled.notes
    report = drift_report(
        profile,
        window.frame,
        spec,
        current_source=f"captures {plan['window']['start']} .. {plan['window']['end']}",
        reference_predictions=ref_predictions if current_predictions is not None else None,
        current_predictions=current_predictions if ref_predictions is not None else None,
    )
    if labels:
        from mlops.drift import performance_drift

        holdout = registered_holdout(services, champion, predictions_document)
        probabilities = labelled.probabilities
        if probabilities is not None and (holdout.classes is None or len(holdout.classes) != len(probabilities[0])):
            label_notes.append(
                "the version does not record the class of each probability column: ROC AUC and log loss not compared"
            )
            probabilities = None
        report.performance = performance_drift(
            np.asarray(labels, dtype=object),
            np.asarray(labelled.predictions, dtype=object),
            spec,
            champion.metrics,
            probabilities=None if probabilities is None else np.asarray(probabilities, dtype=np.float64),
            model_classes=holdout.classes if probabilities is not None else None,
            holdout=holdout,
        )
        if report.performance.status == "degraded" and report.verdict == "no_drift":
            report.verdict, report.drifted = "drifted", True
    report.current.rows = window.rows
    report.current.exact = window.exact
    report.notes.extend(window.notes + label_notes)
    if ref_predictions is None:
        report.notes.append("no registered holdout predictions for this version: prediction drift not checked")
    if not labels:
        report.notes.append("no labels joined to this window's predictions: performance drift not checked")

    prefix = str(plan.get("prefix") or report_prefix(model, version, _stamp(now)))
    report_key, html_key = f"{prefix}.json", f"{prefix}.html"
    services.s3.put_object(
        Bucket=services.bucket, Key=report_key, Body=report.to_json().encode(), ContentType="application/json"
    )
    services.s3.put_object(
        Bucket=services.bucket,
        Key=html_key,
        Body=render_html(report).encode(),
        ContentType="text/html; charset=utf-8",
    )
    features = [f for f in report.features if f.status in ("ok", "drifted")]
    score = max([f.score for f in features] + ([report.prediction.score] if report.prediction else []) + [0.0])
    if report.verdict == "too_small":
        score = 0.0
    summary: dict[str, Any] = {
        "model": model,
        "version": version,
        "run_id": run_id,
        "trigger": plan.get("trigger", "manual"),
        "verdict": report.verdict,
        "drifted": report.drifted,
        "drifted_features": list(report.drifted_features),
        "missing_rate_alerts": list(report.missing_rate_alerts),
        "prediction_drifted": bool(report.prediction and report.prediction.drifted),
        "performance": report.performance.status if report.performance else None,
        "rows": window.rows,
        "score": score,
        "mode": plan.get("mode", "inline"),
        "objects": plan.get("objects"),
        "shards": plan.get("shards"),
        "window": plan["window"],
        "report_key": report_key,
        "html_key": html_key,
        "bucket": services.bucket,
    }
    retrain: dict[str, Any] = {"action": "not_requested"}
    if report.drifted and spec.monitoring.retrain_on_drift:
        retrain = maybe_retrain(
            services, model, now=now, cooldown_hours=spec.monitoring.cooldown_hours, run=summary, request_id=request_id
        )
    summary["retrain"] = retrain
    _record_run(services, summary, plan, now=now, request_id=request_id)
    if report.drifted and services.sns is not None and services.settings.notifications_topic_arn:
        services.sns.publish(
            TopicArn=services.settings.notifications_topic_arn,
            Subject=f"MLOps: drift in {model} v{version}"[:100],
            Message=json.dumps({"event": "model.drifted", **summary}, default=str),
        )
    summary["metrics"] = [asdict(p) for p in drift_metrics(summary, report)]
    return summary


def _reference_profile(services: MonitorServices, champion: Any) -> Any:
    from mlops.data.profile import ReferenceProfile

    uri = (champion.tags or {}).get("profile_uri")
    if not uri or not str(uri).startswith("s3://"):
        raise NotFoundError(
            f"model {champion.model!r} version {champion.version} has no registered reference profile (profile_uri)"
        )
    return ReferenceProfile.from_json(read_uri(services.s3, str(uri)), source=str(uri))


def drift_metrics(summary: Mapping[str, Any], report: Any) -> list[MetricPoint]:
    """Per model ``DriftScore``, ``DriftedFeatures``, ``ChampionVersion``, ``WindowRows``; per feature
    ``FeatureDriftScore``; the aggregate ``ModelsDrifted`` (service dimension only)."""
    model = str(summary["model"])
    dims = {"model": model}
    points = [
        MetricPoint("DriftScore", float(summary["score"]), "None", dims),
        MetricPoint("DriftedFeatures", float(len(summary["drifted_features"])), "Count", dims),
        MetricPoint("ChampionVersion", float(summary["version"]), "None", dims),
        MetricPoint("WindowRows", float(summary["rows"]), "Count", dims),
    ]
    for feature in report.features:
        if feature.status in ("ok", "drifted", "too_small"):
            points.append(
                MetricPoint("FeatureDriftScore", float(feature.score), "None", {**dims, "feature": feature.name})
            )
    points.append(MetricPoint("ModelsDrifted", 1.0 if summary["drifted"] else 0.0, "Count", {}))
    return points


def _record_run(
    services: MonitorServices,
    summary: Mapping[str, Any],
    plan: Mapping[str, Any],
    *,
    now: datetime,
    request_id: str | None,
) -> None:
    """The run item and the monitor item, with one audit event, in one transaction (once per run)."""
    registry = services.registry
    model = str(summary["model"])
    started = str(plan.get("planned_at") or _iso(now))
    run = {
        **monitor_run_key(model, started, str(summary["run_id"])),
        "kind": "monitor_run",
        "status": "SUCCEEDED",
        "finished_at": _iso(now),
        **{k: v for k, v in summary.items() if k not in ("metrics",)},
        "score": _decimal_safe(summary["score"]),
    }
    state_set: dict[str, Any] = {
        "last_run": str(summary["run_id"]),
        "last_run_at": _iso(now),
        "last_verdict": summary["verdict"],
        "last_report_key": summary["report_key"],
        "champion_version": summary["version"],
    }
    with contextlib.suppress(ConditionFailedError):  # a retried Analyze: this run is recorded already
        registry.audit.append(
            model,
            actor=MONITOR_ACTOR,
            action="monitor.run",
            subject=f"model/{model}/version/{summary['version']}/monitor/{summary['run_id']}",
            after={k: summary[k] for k in ("verdict", "drifted_features", "rows", "report_key", "trigger")},
            request_id=request_id,
            with_ops=[
                Put(registry.table, run, Condition(item_exists=False)),
                Update(registry.table, monitor_key(model), set=state_set),
            ],
        )
    if summary["verdict"] != "too_small":
        # Too-small windows are not consumed: the next run's window starts where this one did.
        # The end moves only from where this run's window began: a run overlapping a newer one
        # (a manual check during a scheduled one) never moves it back.
        previous = plan.get("previous_window_end")
        with contextlib.suppress(ConditionFailedError):
            registry.store.write(
                Update(
                    registry.table,
                    monitor_key(model),
                    set={"last_window_end": summary["window"]["end"]},
                    condition=Condition(equals={"last_window_end": previous if previous else ABSENT}),
                )
            )


def _decimal_safe(value: float) -> float:
    return float(value) if math.isfinite(value) else 0.0


# ----------------------------------------------------------------------------------------- retrain
def latest_dataset(registry: Registry, model: str) -> dict[str, Any] | None:
    """The newest recorded dataset version of ``model`` as a training ``upload`` (or None).

    A retrain does not simply take it: :func:`mlops.monitoring.retraining.choose_retrain_data` decides.
    """
    from mlops.monitoring.retraining import list_datasets, training_upload

    datasets = [d for d in list_datasets(registry, model) if d.bucket and d.version_id]
    if not datasets:
        return None
    return training_upload(max(datasets, key=lambda d: d.uploaded_at or ""), model)


def retrain_execution_name(model: str, moment: datetime) -> str:
    """``<model>-retrain-<timestamp>``: unique, and listed with the model's runs (``<model>-`` prefix)."""
    return f"{model[:50]}-retrain-{moment.astimezone(UTC):%Y%m%dT%H%M%S%f}"[:80]


def cooldown_until(state: Mapping[str, Any], cooldown_hours: float) -> datetime | None:
    """When the cooldown after the last retraining ends (None: no retraining yet)."""
    last = state.get("last_retrain_at")
    if not last:
        return None
    return _parse_time(str(last)) + timedelta(hours=cooldown_hours)


# What a claim writes on the monitor item, and a released claim removes.
_CLAIM_FIELDS = ("last_retrain_run", "last_retrain_execution", "last_retrain_upload", "last_retrain_build")


def _release(registry: Registry, model: str, previous: Any) -> Update:
    """Undo a claim whole: the cooldown (back to ``previous``) and this run's marks."""
    return Update(
        registry.table,
        monitor_key(model),
        set={"last_retrain_at": previous} if previous else {},
        remove=_CLAIM_FIELDS + (() if previous else ("last_retrain_at",)),
    )


def maybe_retrain(
    services: MonitorServices,
    model: str,
    *,
    now: datetime,
    cooldown_hours: float,
    run: Mapping[str, Any],
    request_id: str | None = None,
    spec: ModelSpec | None = None,
) -> dict[str, Any]:
    """Start retraining when it can change something, at most once per cooldown.

    What it trains on is :func:`mlops.monitoring.retraining.choose_retrain_data`'s choice: the newest dataset
    version newer than the champion's that nothing was trained on, else a new dataset built from
    labelled captures (written under ``datasets/<model>/`` and recorded with its lineage). With
    neither, nothing starts and no version number is spent: ``monitor.retrain_skipped`` says why.

    The claim is a conditional write on the model's monitor item (``last_retrain_at`` must still
    be what this run read); of two concurrent runs only one can win it. For a newer dataset the
    claim commits with the audit event ``monitor.retrain_started``; for a built dataset the claim
    comes first (so no second run writes one), then the object, its record, the execution (named
    as the upload's own run, so the bucket's event for the object cannot start a second one), and
    the audit event. A run inside the cooldown appends ``monitor.retrain_skipped`` naming when the
    cooldown ends.

    Returns
    -------
    dict
        ``{"action": "started" | "skipped" | "failed", ...}``: the execution name and ``data``
        (what it trains on), or ``reason`` (and ``code``: ``cooldown``, ``no_new_data``,
        ``no_pipeline``) or the error.
    """
    from mlops.monitoring.retraining import CAPTURES_SOURCE, capture_dataset_key, choose_retrain_data, training_upload

    registry = services.registry
    subject = f"model/{model}/retrain"
    evidence = {
        "run_id": run.get("run_id"),
        "version": run.get("version"),
        "drifted_features": list(run.get("drifted_features") or []),
        "report_key": run.get("report_key"),
    }
    for _ in range(3):
        state = get_monitor_state(registry, model)
        if state.get("last_retrain_run") == run.get("run_id"):
            # This run claimed the retraining before (a retried Analyze): make sure it was started.
            if state.get("last_retrain_execution"):
                return _ensure_started(services, model, str(state["last_retrain_execution"]), evidence, state)
            if state.get("last_retrain_build"):
                return _resume_capture_retrain(services, model, state, evidence, request_id=request_id)
        until = cooldown_until(state, cooldown_hours)
        if until is not None and now < until:
            registry.audit.append(
                model,
                actor=MONITOR_ACTOR,
                action="monitor.retrain_skipped",
                subject=subject,
                after={**evidence, "reason": "cooldown", "cooldown_until": _iso(until)},
                request_id=request_id,
            )
            return {"action": "skipped", "reason": "cooldown", "cooldown_until": _iso(until)}
        arn = services.settings.training_state_machine_arn
        if not arn or services.sfn is None:
            reason = "no training pipeline configured"
            registry.audit.append(
                model,
                actor=MONITOR_ACTOR,
                action="monitor.retrain_skipped",
                subject=subject,
                after={**evidence, "reason": reason, "code": "no_pipeline"},
                request_id=request_id,
            )
            return {"action": "skipped", "reason": reason, "code": "no_pipeline"}
        choice = choose_retrain_data(
            services, model, champion_version=_as_int(run.get("version")), state=state, now=now, spec=spec
        )
        if choice.kind is None:
            registry.audit.append(
                model,
                actor=MONITOR_ACTOR,
                action="monitor.retrain_skipped",
                subject=subject,
                after={**evidence, "reason": choice.reason, "code": "no_new_data"},
                request_id=request_id,
            )
            return {"action": "skipped", "reason": choice.reason, "code": "no_new_data"}
        previous = state.get("last_retrain_at")
        condition = Condition(equals={"last_retrain_at": previous if previous else ABSENT})
        data = choice.summary()
        if choice.kind == CAPTURES_SOURCE and choice.build is not None:
            build = choice.build
            key = capture_dataset_key(model, now, build.sha256)
            claim = Update(
                registry.table,
                monitor_key(model),
                set={
                    "last_retrain_at": _iso(now),
                    "last_retrain_run": run.get("run_id"),
                    "last_retrain_build": {"key": key, "sha256": build.sha256, "lineage": build.lineage},
                },
                remove=("last_retrain_execution", "last_retrain_upload"),
                condition=condition,
            )
            try:
                registry.store.write(claim)
            except ConditionFailedError:
                continue  # another run claimed it in between: read again (it is now in its cooldown)
            return _start_capture_retrain(
                services,
                model,
                key,
                build.body,
                build.sha256,
                build.lineage,
                {**evidence, "data": data},
                previous,
                request_id,
            )
        assert choice.dataset is not None
        upload = training_upload(choice.dataset, model)
        name = retrain_execution_name(model, now)
        claim = Update(
            registry.table,
            monitor_key(model),
            set={
                "last_retrain_at": _iso(now),
                "last_retrain_run": run.get("run_id"),
                "last_retrain_execution": name,
                "last_retrain_upload": upload,
            },
            remove=("last_retrain_build",),
            condition=condition,
        )
        try:
            registry.audit.append(
                model,
                actor=MONITOR_ACTOR,
                action="monitor.retrain_started",
                subject=subject,
                after={
                    **evidence,
                    "execution_name": name,
                    "dataset": upload,
                    "data": data,
                    "cooldown_hours": cooldown_hours,
                },
                request_id=request_id,
                with_ops=[claim],
            )
        except ConditionFailedError:
            continue  # another run claimed it in between: read again (it is now in its cooldown)
        try:
            response = services.sfn.start_execution(
                stateMachineArn=arn, name=name, input=_retrain_input(upload, {**evidence, "data": data})
            )
        except Exception as exc:
            return _retrain_failed(registry, model, evidence, previous, request_id, exc, execution_name=name)
        return {"action": "started", "execution_name": name, "execution_arn": response["executionArn"], "data": data}
    return {"action": "skipped", "reason": "concurrent runs kept claiming the retraining"}


def _retrain_failed(
    registry: Registry,
    model: str,
    evidence: Mapping[str, Any],
    previous: Any,
    request_id: str | None,
    exc: Exception,
    **where: Any,
) -> dict[str, Any]:
    """Audit a retrain that could not start and release its claim (the cooldown and the run's mark)."""
    registry.audit.append(
        model,
        actor=MONITOR_ACTOR,
        action="monitor.retrain_failed",
        subject=f"model/{model}/retrain",
        after={**evidence, **where, "error": f"{type(exc).__name__}: {exc}"[:1000]},
        request_id=request_id,
        with_ops=[_release(registry, model, previous)],
    )
    return {"action": "failed", "error": str(exc)[:500], **where}


def _retrain_input(upload: Mapping[str, Any], evidence: Mapping[str, Any]) -> str:
    return json.dumps({"upload": upload, "trigger": {"kind": "drift", **evidence}}, default=str)


def _training_execution_arn(services: MonitorServices, name: str) -> str:
    arn = str(services.settings.training_state_machine_arn)
    return arn.replace(":stateMachine:", ":execution:", 1) + f":{name}"


def _already_exists(exc: Exception) -> bool:
    return "ExecutionAlreadyExists" in type(exc).__name__ or "ExecutionAlreadyExists" in str(exc)


def _start_capture_retrain(
    services: MonitorServices,
    model: str,
    key: str,
    body: bytes,
    sha256: str,
    lineage: Mapping[str, Any],
    evidence: Mapping[str, Any],
    previous: Any,
    request_id: str | None,
    *,
    version_id: str | None = None,
) -> dict[str, Any]:
    """Write the claimed dataset (unless ``version_id`` says it is written), record it, start its run, audit.

    The execution is named as the object's own upload run (:func:`mlops.data.trigger.execution_name`):
    whichever starts first, this call or the bucket's event, the other is refused by name, so the
    dataset trains exactly once.
    """
    from mlops.data.trigger import execution_name
    from mlops.monitoring.retraining import (
        lineage_summary,
        record_capture_dataset,
        training_upload,
        write_capture_dataset,
    )

    registry = services.registry
    subject = f"model/{model}/retrain"
    name = None
    try:
        if version_id is None:
            version_id = write_capture_dataset(services, key, body, sha256)
        dataset = record_capture_dataset(services, model, key, version_id, body, lineage)
        upload = training_upload(dataset, model)
        name = execution_name(services.bucket, key, version_id, model)
        try:
            response = services.sfn.start_execution(
                stateMachineArn=services.settings.training_state_machine_arn,
                name=name,
                input=_retrain_input(upload, evidence),
            )
            execution_arn = str(response["executionArn"])
        except Exception as exc:
            if not _already_exists(exc):
                raise
            execution_arn = _training_execution_arn(services, name)  # the bucket's event started it first
    except Exception as exc:
        return _retrain_failed(
            registry, model, evidence, previous, request_id, exc, dataset_key=key, execution_name=name
        )
    data = {**(evidence.get("data") or {}), "key": key, "version_id": version_id}
    registry.audit.append(
        model,
        actor=MONITOR_ACTOR,
        action="monitor.retrain_started",
        subject=subject,
        after={
            **evidence,
            "execution_name": name,
            "dataset": upload,
            "data": data,
            "lineage": lineage_summary(lineage),
        },
        request_id=request_id,
        with_ops=[
            Update(
                registry.table,
                monitor_key(model),
                set={"last_retrain_execution": name, "last_retrain_upload": upload},
                remove=("last_retrain_build",),
            )
        ],
    )
    return {"action": "started", "execution_name": name, "execution_arn": execution_arn, "data": data}


def _resume_capture_retrain(
    services: MonitorServices,
    model: str,
    state: Mapping[str, Any],
    evidence: Mapping[str, Any],
    *,
    request_id: str | None,
) -> dict[str, Any]:
    """A retried Analyze whose first attempt claimed a built dataset but did not finish starting it.

    The object written already (same sha256) is recorded and started by its name; a claim that
    died before writing is released (the next drifted run builds again).
    """
    from mlops.monitoring.retraining import CAPTURES_SOURCE, written_dataset

    build = state["last_retrain_build"]
    key, sha256 = str(build["key"]), str(build["sha256"])
    previous = None  # the cooldown this claim replaced is unknown now: a release ends it
    written = written_dataset(services, key, sha256)
    if written is None:
        services.registry.audit.append(
            model,
            actor=MONITOR_ACTOR,
            action="monitor.retrain_failed",
            subject=f"model/{model}/retrain",
            after={**evidence, "dataset_key": key, "error": "the run stopped before writing its dataset"},
            request_id=request_id,
            with_ops=[_release(services.registry, model, previous)],
        )
        return {"action": "failed", "error": "the run stopped before writing its dataset", "dataset_key": key}
    version_id, body = written
    result = _start_capture_retrain(
        services,
        model,
        key,
        body,
        sha256,
        dict(build.get("lineage") or {}),
        {**evidence, "data": {"source": CAPTURES_SOURCE, "sha256": sha256}},
        previous,
        request_id,
        version_id=version_id,
    )
    return {**result, "repeat": True}


def _ensure_started(
    services: MonitorServices,
    model: str,
    name: str,
    evidence: Mapping[str, Any],
    state: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Start the claimed execution ``name`` if it does not exist yet (StartExecution by name is idempotent).

    A retried Analyze whose first attempt claimed the retraining and then failed before (or after)
    starting it lands here: an execution of that name already running or done means started. It
    trains on the dataset the claim names (``last_retrain_upload``).
    """
    arn = services.settings.training_state_machine_arn
    upload = (state or {}).get("last_retrain_upload") or latest_dataset(services.registry, model)
    if services.sfn is None or not arn or upload is None:
        return {"action": "started", "execution_name": name, "repeat": True}
    try:
        response = services.sfn.start_execution(stateMachineArn=arn, name=name, input=_retrain_input(upload, evidence))
    except Exception as exc:
        if _already_exists(exc):
            return {"action": "started", "execution_name": name, "repeat": True}
        return {"action": "failed", "error": str(exc)[:500], "execution_name": name}
    return {"action": "started", "execution_name": name, "execution_arn": response["executionArn"], "repeat": True}


# ---------------------------------------------------------------------------------------- failures
def record_monitor_failure(
    event: Mapping[str, Any], services: MonitorServices, *, request_id: str | None = None
) -> dict[str, Any]:
    """A failed run: a FAILED run item and a ``monitor.failed`` audit event, written together, once."""
    registry = services.registry
    state = event.get("state") or event
    plan = state.get("plan") or {}
    model = str(plan.get("model") or state.get("model") or "") or "_platform"
    failure = state.get("failure") or {}
    now = services.clock()
    run_id = str(event.get("execution_name") or plan.get("run_id") or request_id or "unknown")
    record = {
        "step": failure.get("step"),
        **failures.failure_fields(failure.get("error"), cause_limit=4000),
        "execution": event.get("execution"),
    }
    item = {
        **monitor_run_key(model, _iso(now), run_id),
        "kind": "monitor_run",
        "status": "FAILED",
        "run_id": run_id,
        "model": model,
        "trigger": plan.get("trigger") or state.get("trigger"),
        **{k: v for k, v in record.items() if v is not None},
    }
    return failures.record_failure(
        registry,
        model,
        actor=MONITOR_ACTOR,
        action="monitor.failed",
        subject=f"model/{model}/monitor/{run_id}",
        record=record,
        item=item,
        request_id=request_id,
    )


# --------------------------------------------------------------------------------------------- CLI
def monitor_execution_name(model: str, moment: datetime | None = None) -> str:
    """A unique name for a manual run: ``<model>-manual-<timestamp>``."""
    moment = moment or utc_now()
    return f"{model[:50]}-manual-{moment.astimezone(UTC):%Y%m%dT%H%M%S%f}"[:80]


def start_monitor_run(
    sfn: Any,
    state_machine_arn: str,
    model: str,
    *,
    trigger: str = "manual",
    distributed: bool = False,
    shard_objects: int | None = None,
) -> dict[str, Any]:
    """Start the monitor state machine for ``model`` now; ``{"execution_name", "execution_arn"}``.

    ``distributed`` forces the Distributed Map path whatever the window's size (with shards of
    at most ``shard_objects`` capture objects when given).
    """
    name = monitor_execution_name(model)
    document: dict[str, Any] = {"model": model, "trigger": trigger}
    if distributed:
        document["distributed"] = True
    if shard_objects:
        document["shard_objects"] = int(shard_objects)
    response = sfn.start_execution(stateMachineArn=state_machine_arn, name=name, input=json.dumps(document))
    return {"execution_name": name, "execution_arn": response["executionArn"]}
