"""The model catalog the API serves: which models exist, which versions serve, what they expect."""

from __future__ import annotations

from typing import Any

from mlops.errors import NotFoundError
from mlops.registry.specs import SpecStore
from mlops.registry.versions import Registry
from mlops.settings import Platform


def registry_from_env() -> Registry:
    """The registry named by the function's environment (a new client: the caller keeps it)."""
    import boto3

    return Registry.for_platform(boto3.client("dynamodb"), Platform.from_env())


def list_models(registry: Registry, *, next_token: str | None = None, limit: int = 50) -> dict[str, Any]:
    """A page of models with their serving aliases (archived models are left out)."""
    page = registry.list_models(limit=limit, next_token=next_token, include_archived=False)
    return {"models": [m.to_dict() for m in page.items], "next_token": page.next_token}


def describe_model(registry: Registry, model: str) -> dict[str, Any]:
    """A model's aliases, its serving versions and its input schema (from the latest spec)."""
    summary = registry.get_model(model)
    serving: dict[str, Any] = {}
    for alias in ("champion", "challenger"):
        version = summary.alias(alias)
        if version is not None:
            serving[alias] = registry.get_version(model, version).summary()
    try:
        revision = SpecStore(registry).get(model)
    except NotFoundError:
        schema = None
    else:
        spec = revision.spec()
        schema = {
            "spec_revision": revision.revision,
            "task": spec.task,
            "target": spec.target.name,
            "features": [f.model_dump(mode="json", exclude_defaults=True) for f in spec.features],
        }
    return {"model": summary.to_dict(), "serving": serving, "input_schema": schema}
