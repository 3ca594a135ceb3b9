"""The approval and deployment domain on the in-memory registry, with in-memory Step Functions and CloudWatch."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops.data.catalog import DatasetCatalog
from mlops.data.datasets import DatasetVersion
from mlops.registry.specs import SpecStore
from mlops.registry.versions import Registry
from mlops.spec.model import parse_spec

ROOT = Path(__file__).resolve().parents[3]
UPLOADER = "arn:aws:iam::123456789012:user/bob"


@dataclass
class FakeStepFunctions:
    """Records task callbacks; ``fail_with`` makes the next one fail like a timed-out task."""

    calls: list[dict[str, Any]] = field(default_factory=list)
    fail_with: Exception | None = None

    def send_task_success(self, *, taskToken: str, output: str) -> Any:
        if self.fail_with is not None:
            raise self.fail_with
        self.calls.append({"token": taskToken, "output": output})
        return {}


@dataclass
class FakeCloudWatch:
    alarms: dict[str, dict[str, Any]] = field(default_factory=dict)

    def put_metric_alarm(self, **kwargs: Any) -> Any:
        self.alarms[kwargs["AlarmName"]] = {**kwargs, "StateValue": "INSUFFICIENT_DATA"}
        return {}

    def describe_alarms(self, **kwargs: Any) -> Any:
        names = kwargs.get("AlarmNames") or list(self.alarms)
        return {"MetricAlarms": [self.alarms[n] for n in names if n in self.alarms]}

    def set_state(self, name: str, state: str) -> None:
        self.alarms[name]["StateValue"] = state


def store_spec(registry: Registry, name: str = "churn", **changes: Any) -> None:
    document = yaml.safe_load((ROOT / "examples" / "specs" / "churn.yaml").read_text())
    document["name"] = name
    document.update(changes)
    SpecStore(registry).put(parse_spec(document), actor="alice")


def candidate(registry: Registry, name: str = "churn", *, uploader: str = UPLOADER, auc: float = 0.9) -> int:
    """A registered PENDING_APPROVAL version trained on a dataset ``uploader`` uploaded."""
    version_id = f"v{registry.get_model(name).latest_version + 1 if _exists(registry, name) else 1}"
    dataset = DatasetVersion(
        bucket="data",
        key=f"datasets/{name}/train.csv",
        version_id=version_id,
        sha256="0" * 64,
        size=10,
        rows=100,
        columns=["a"],
        column_types={"a": "int"},
        schema_fingerprint="f",
        uploaded_by=uploader,
        uploaded_at=None,
        model=name,
        uploader_source="upload-api",  # as the training pipeline records an upload through the API
    )
    DatasetCatalog(registry).record(name, dataset, actor="pipeline")
    version = registry.register_version(
        name,
        actor="pipeline:training",
        metrics={"roc_auc": auc},
        spec_revision=1,
        dataset_version=dataset.ref(),
        artifact_uri=f"s3://data/artifacts/{name}/model.pkl",
        artifact_sha256="a" * 64,
    )
    return version.version


def _exists(registry: Registry, name: str) -> bool:
    try:
        registry.get_model(name)
    except Exception:
        return False
    return True


@pytest.fixture
def registry() -> Registry:
    registry = Registry.in_memory()
    store_spec(registry)
    return registry


@pytest.fixture
def sfn() -> FakeStepFunctions:
    return FakeStepFunctions()


@pytest.fixture
def cloudwatch() -> FakeCloudWatch:
    return FakeCloudWatch()
