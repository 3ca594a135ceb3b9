"""A model's rollout item: how its challenger serves, read by the inference function.

The item is ``MODEL#<name>`` / ``ROLLOUT#current`` in the registry table
(:func:`mlops.registry.keys.rollout_key`); its attributes are described in
:mod:`mlops.deployment.rollout`, the only module that writes it. This module holds the item's shape
and the read, so that the inference function reads a rollout on its first canary request without
importing the deployment capability (pydantic, the approval flow): it imports only the standard
library and the registry.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from mlops.registry.keys import rollout_key
from mlops.registry.versions import Registry


@dataclass(frozen=True)
class Rollout:
    """How a model serves now (see :mod:`mlops.deployment.rollout`)."""

    model: str
    mode: str = "single"
    champion: int | None = None
    challenger: int | None = None
    share: float = 0.0
    execution: str | None = None
    updated_at: str | None = None
    updated_by: str | None = None
    revision: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> Rollout:
        values: dict[str, Any] = {name: item.get(name) for name in cls.__dataclass_fields__}
        values["history"] = list(item.get("history") or [])
        values["share"] = float(item.get("share") or 0.0)
        values["revision"] = int(item.get("revision") or 0)
        values["mode"] = str(item.get("mode") or "single")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def get_rollout(registry: Registry, model: str) -> Rollout:
    """The model's rollout item (a default ``single`` rollout if none was written yet)."""
    item = registry.store.get(registry.table, rollout_key(model))
    return Rollout.from_item(item) if item is not None else Rollout(model=model)
