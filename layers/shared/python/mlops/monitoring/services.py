"""The monitor steps' configuration and clients, their metric points, and the monitor items they read."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import boto3

from mlops.errors import ConfigError
from mlops.monitoring.captures import utc_now
from mlops.monitoring.schedules import ScheduleTarget
from mlops.registry.keys import MONITOR_RUN_SK_PREFIX, model_items, monitor_key, sk_prefix
from mlops.registry.versions import Registry
from mlops.settings import Platform

MONITOR_ACTOR = "pipeline:monitor"


REPORT_PREFIX = "reports"


DEFAULT_INLINE_MAX_BYTES = 64 * 1024 * 1024


DEFAULT_INLINE_MAX_OBJECTS = 5_000


DEFAULT_SHARD_BYTES = 32 * 1024 * 1024


DEFAULT_SHARD_OBJECTS = 500


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


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
