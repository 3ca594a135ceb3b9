"""The dataset catalog: dataset version records in the registry table (``MODEL#<name>`` /
``DATASET#<version id>``), written once in one transaction with their audit event, never changed."""

from __future__ import annotations

from mlops.data.datasets import DatasetVersion
from mlops.errors import ConflictError, InputError, NotFoundError
from mlops.registry.audit import decode_token, encode_token
from mlops.registry.keys import (
    DATASET_SK_PREFIX,
    dataset_key,
    model_items,
    model_partition,
    sk_prefix,
)
from mlops.registry.tables import Condition, ConditionFailedError, Put
from mlops.registry.versions import Registry, ResultPage, check_actor, check_model_name


class DatasetCatalog:
    """Dataset version records in the registry table, written once and audited.

    Parameters
    ----------
    registry
        The registry whose table, store, clock and audit trail to use.
    """

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def record(
        self, model: str, dataset: DatasetVersion, *, actor: str, request_id: str | None = None
    ) -> DatasetVersion:
        """Store a dataset version for ``model`` (idempotent for the same content).

        Raises
        ------
        InputError
            The dataset has no S3 version id.
        ConflictError
            The version id is recorded already with different content.
        """
        check_model_name(model)
        check_actor(actor)
        if not dataset.version_id:
            raise InputError(f"{dataset.key}: only S3 object versions can be recorded (no version id)")
        existing = self.find(model, dataset.version_id)
        if existing is not None:
            return self._same_or_conflict(existing, dataset)
        now = self.registry.clock()
        record = DatasetVersion(**{**dataset.to_dict(), "model": model})
        item = {**dataset_key(model, dataset.version_id), "kind": "dataset", **record.to_dict(), "recorded_at": now}
        try:
            self.registry.audit.append(
                model,
                actor=actor,
                action="dataset.record",
                subject=f"model/{model}/dataset/{dataset.version_id}",
                after=record.ref(),
                request_id=request_id,
                with_ops=[
                    Put(self.registry.table, item, Condition(item_exists=False)),
                    self.registry.touch_model(model, actor, now),
                ],
            )
        except ConditionFailedError:
            # Recorded by someone else in the meantime.
            again = self.find(model, dataset.version_id)
            if again is None:
                raise
            return self._same_or_conflict(again, dataset)
        return record

    @staticmethod
    def _same_or_conflict(existing: DatasetVersion, dataset: DatasetVersion) -> DatasetVersion:
        if existing.sha256 != dataset.sha256:
            raise ConflictError(
                f"dataset version {dataset.version_id} of {existing.model!r} is recorded with sha256 "
                f"{existing.sha256[:12]}..., not {dataset.sha256[:12]}...; records are never overwritten"
            )
        return existing

    def find(self, model: str, version_id: str) -> DatasetVersion | None:
        item = self.registry.store.get(self.registry.table, dataset_key(model, version_id))
        return DatasetVersion.from_item(item) if item is not None else None

    def get(self, model: str, version_id: str) -> DatasetVersion:
        """One recorded dataset version. Raises NotFoundError if there is none."""
        check_model_name(model)
        found = self.find(model, version_id)
        if found is None:
            raise NotFoundError(f"model {model!r} has no dataset version {version_id}")
        return found

    def list(self, model: str, *, limit: int = 20, next_token: str | None = None) -> ResultPage:
        """Recorded dataset versions of a model (in version-id order, as S3 gives no time order)."""
        check_model_name(model)
        start = decode_token(next_token, model_partition(model)) if next_token else None
        page = self.registry.store.query(
            self.registry.table, model_items(model), sk_prefix=sk_prefix(DATASET_SK_PREFIX), limit=limit, start=start
        )
        token = encode_token(page.last_key) if page.last_key and len(page.items) == limit else None
        return ResultPage([DatasetVersion.from_item(item) for item in page.items], token)
