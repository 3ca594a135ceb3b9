"""What a retrain starts from: the model's recorded dataset versions and what the champion was trained on."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from mlops.data.catalog import DatasetCatalog

if TYPE_CHECKING:
    from mlops.data.datasets import DatasetVersion
    from mlops.registry.versions import Registry


RETRAIN_ACTOR = "pipeline:monitor"


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
