"""Which versions answer a model: champion, challenger, and the rollout mode (single, canary or shadow)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mlops.errors import InputError, NotFoundError
from mlops.registry.rollouts import get_rollout
from mlops.registry.versions import Registry
from mlops.serving.errors import ModelArchivedError, UnknownModelError


@dataclass
class Routing:
    """Which versions serve a model, as last read from the registry."""

    champion: int | None
    challenger: int | None
    mode: str  # single, canary or shadow
    share: float
    checked_at: float


@dataclass
class PredictResult:
    """A successful prediction: the response body and what the handler reports as metrics."""

    body: dict[str, Any]
    model: str
    version: int
    role: str  # champion or challenger (canary)
    records: int
    shadow_version: int | None = None
    shadow_error: str | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)


def read_routing(registry: Registry, model: str, now: float) -> Routing:
    """The model's serving versions as the registry has them now (``checked_at`` is ``now``).

    A challenger answers ``share`` of the requests only when the model's rollout item is a canary
    of that same challenger; any other challenger is a shadow (it predicts, never answers).

    Raises
    ------
    UnknownModelError
        The registry does not know the model (or its name cannot be one).
    ModelArchivedError
        The model is archived.
    """
    try:
        summary = registry.get_model(model)
    except (NotFoundError, InputError):
        raise UnknownModelError(f"model {model!r} does not exist", code="unknown_model") from None
    if summary.archived is not None:
        raise ModelArchivedError(
            f"model {model!r} is archived: it serves no predictions until `mlops models unarchive {model}`",
            code="model_archived",
        )
    mode, share = "single", 0.0
    if summary.challenger is not None:
        rollout = get_rollout(registry, model)
        if rollout.mode == "canary" and rollout.challenger == summary.challenger:
            mode, share = "canary", min(1.0, max(0.0, float(rollout.share)))
        else:
            mode = "shadow"
    return Routing(summary.champion, summary.challenger, mode, share, now)
